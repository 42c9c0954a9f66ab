"""Built-in plugin: artifacts in local or network-mounted directories (`file:`, plain paths)."""

from tracklog.plugins import hookimpl


def _factory(artifact_uri: str):
    from tracklog.artifacts.local import LocalArtifactRepository

    return LocalArtifactRepository(artifact_uri)


@hookimpl
def register_artifact_repositories(register):
    register("file", _factory)
