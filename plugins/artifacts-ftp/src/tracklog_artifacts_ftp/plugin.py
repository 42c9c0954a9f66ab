"""Plugin registration for tracklog-artifacts-ftp (ftplib is imported only when a
repository is created)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from tracklog.plugins import hookimpl

if TYPE_CHECKING:
    from tracklog.artifacts import ArtifactRepository


def _factory(artifact_uri: str) -> ArtifactRepository:
    from tracklog_artifacts_ftp.repository import FTPArtifactRepository

    return FTPArtifactRepository(artifact_uri)


@hookimpl
def register_artifact_repositories(
    register: Callable[[str, Callable[[str], ArtifactRepository]], None],
) -> None:
    """Serve ``ftp://`` and ``ftps://`` (explicit TLS) with an
    :class:`~tracklog_artifacts_ftp.repository.FTPArtifactRepository`."""
    register("ftp", _factory)
    register("ftps", _factory)
