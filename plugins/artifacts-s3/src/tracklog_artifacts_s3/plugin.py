"""Plugin registration for tracklog-artifacts-s3 (boto3 is imported only when a repository
is created)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from tracklog.plugins import hookimpl
from tracklog_artifacts_s3.settings import PRESIGNED_TTL

if TYPE_CHECKING:
    from tracklog.artifacts import ArtifactRepository
    from tracklog.options import Option


def _factory(artifact_uri: str) -> ArtifactRepository:
    from tracklog_artifacts_s3.repository import S3ArtifactRepository

    return S3ArtifactRepository(artifact_uri)


@hookimpl
def register_artifact_repositories(
    register: Callable[[str, Callable[[str], ArtifactRepository]], None],
) -> None:
    """Serve ``s3://bucket/prefix`` with an
    :class:`~tracklog_artifacts_s3.repository.S3ArtifactRepository`."""
    register("s3", _factory)


@hookimpl
def register_options(register: Callable[[Option], None]) -> None:
    register(PRESIGNED_TTL)
