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
    "safe_relpath",
]

