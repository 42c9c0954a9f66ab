"""Plugin registration for tracklog-artifacts-azure (azure is imported only by the factory)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from tracklog.plugins import hookimpl
from tracklog_artifacts_azure.options import DOWNLOAD_TTL, UPLOAD_TTL

if TYPE_CHECKING:
    from tracklog.artifacts import ArtifactRepository
    from tracklog.options import Option


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
