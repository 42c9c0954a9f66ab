"""Plugin registration for tracklog-artifacts-azure (azure is imported only by the factory)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from tracklog.options import Option
from tracklog.plugins import hookimpl

if TYPE_CHECKING:
    from tracklog.artifacts import ArtifactRepository


DOWNLOAD_TTL = Option(
    "artifacts-azure", "presigned-download-ttl", int, 300,
    "Seconds a presigned Azure download URL stays valid.",
    env=("MLFLOW_PRESIGNED_DOWNLOAD_URL_TTL_SECONDS",), minimum=1,
)
UPLOAD_TTL = Option(
    "artifacts-azure", "upload-url-ttl", int, 3600,
    "Seconds an Azure multipart part URL stays valid.",
    env=("TRACKLOG_AZURE_UPLOAD_URL_TTL",), minimum=1,
)


def _factory(artifact_uri: str) -> ArtifactRepository:
    from tracklog_artifacts_azure.factory import open_repository

    return open_repository(artifact_uri)


@hookimpl
def register_artifact_repositories(
    register: Callable[[str, Callable[[str], ArtifactRepository]], None],
) -> None:
    """Serve ``wasbs://`` and ``abfss://`` URIs from Azure Blob Storage."""
    register("wasbs", _factory)
    register("abfss", _factory)


@hookimpl
def register_options(register: Callable[[Option], None]) -> None:
    register(DOWNLOAD_TTL)
    register(UPLOAD_TTL)
