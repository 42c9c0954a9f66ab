"""Plugin registration for tracklog-artifacts-sftp (paramiko is imported only when a
repository is created)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from tracklog.plugins import hookimpl

if TYPE_CHECKING:
    from tracklog.artifacts import ArtifactRepository


def _factory(artifact_uri: str) -> ArtifactRepository:
    from tracklog_artifacts_sftp.repository import SFTPArtifactRepository

    return SFTPArtifactRepository(artifact_uri)


@hookimpl
def register_artifact_repositories(
    register: Callable[[str, Callable[[str], ArtifactRepository]], None],
) -> None:
    """Serve ``sftp://user@host[:port]/path`` with an
    :class:`~tracklog_artifacts_sftp.repository.SFTPArtifactRepository`."""
    register("sftp", _factory)
