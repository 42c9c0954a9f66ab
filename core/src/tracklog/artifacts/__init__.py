"""Artifact repositories: the contract, path safety, the built-in local repository."""

from tracklog.artifacts.base import (
    ArtifactRepository,
    CompletedPart,
    MultipartUploadRepository,
    PartCredential,
    PresignedDownloadRepository,
    ReadableStream,
)
from tracklog.artifacts.paths import safe_relpath

__all__ = [
    "ArtifactRepository",
    "CompletedPart",
    "MultipartUploadRepository",
    "PartCredential",
    "PresignedDownloadRepository",
    "ReadableStream",
    "resolve_repository",
    "safe_relpath",
]


def resolve_repository(artifact_uri: str) -> ArtifactRepository:
    """The repository for ``artifact_uri`` through the installed plugins; an unknown scheme
    raises an error that lists installed schemes and names the distribution to install."""
    from tracklog import plugins

    return plugins.artifact_repository_factory(artifact_uri)(artifact_uri)
