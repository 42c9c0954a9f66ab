"""Plugin registration: the ``gs`` scheme. google.cloud is imported only when a
repository is created."""

from tracklog.plugins import hookimpl
from tracklog_artifacts_gcs.settings import PRESIGNED_TTL_OPTION


def _factory(artifact_uri: str):
    from tracklog_artifacts_gcs.repository import GCSArtifactRepository

    return GCSArtifactRepository(artifact_uri)


@hookimpl
def register_artifact_repositories(register):
    register("gs", _factory)


@hookimpl
def register_options(register):
    register(PRESIGNED_TTL_OPTION)
