"""Plugin registration for tracklog-artifacts-hdfs (httpx and pyarrow are imported only
when a repository is created)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from tracklog.plugins import hookimpl

if TYPE_CHECKING:
    from tracklog.artifacts import ArtifactRepository


def _factory(artifact_uri: str) -> ArtifactRepository:
    from tracklog_artifacts_hdfs.repository import HDFSArtifactRepository

    return HDFSArtifactRepository(artifact_uri)


@hookimpl
def register_artifact_repositories(
    register: Callable[[str, Callable[[str], ArtifactRepository]], None],
) -> None:
    """Serve ``webhdfs://`` (REST), ``hdfs://`` and ``viewfs://`` (libhdfs) with an
    :class:`~tracklog_artifacts_hdfs.repository.HDFSArtifactRepository`."""
    for scheme in ("webhdfs", "hdfs", "viewfs"):
        register(scheme, _factory)
