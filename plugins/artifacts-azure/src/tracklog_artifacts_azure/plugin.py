"""Plugin registration for tracklog-artifacts-azure (azure is imported only by the factory)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from tracklog.plugins import hookimpl

if TYPE_CHECKING:
    from tracklog.artifacts import ArtifactRepository


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
