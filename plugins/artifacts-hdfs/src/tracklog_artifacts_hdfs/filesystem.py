"""The file-system interface the repository is written against, and its errors.

Two implementations: :class:`~tracklog_artifacts_hdfs.webhdfs.WebHDFS` (the NameNode's
REST API over HTTP) and :class:`~tracklog_artifacts_hdfs.libhdfs.LibHDFS` (Hadoop's
native client through pyarrow). Paths are absolute HDFS paths. Implementations raise
:class:`HDFSError` with a kind the repository maps to an MLflow error code; the message
is one line and carries no credential.
"""

from __future__ import annotations

import abc
import enum
from collections.abc import Iterable
from dataclasses import dataclass
from typing import BinaryIO

from tracklog.artifacts.base import ReadableStream


class Kind(enum.Enum):
    NOT_FOUND = "not found"
    PERMISSION = "permission denied"
    UNAUTHENTICATED = "unauthenticated"
    PARENT_IS_FILE = "a parent is a file"
    EXISTS = "already exists"
    UNAVAILABLE = "unavailable"
    INVALID = "invalid"
    OTHER = "failed"


class HDFSError(Exception):
    def __init__(self, kind: Kind, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


@dataclass(frozen=True)
class Status:
    name: str  # the last path component ("" for the path asked about)
    is_dir: bool
    size: int
    mtime: float  # seconds since the epoch


class FileSystem(abc.ABC):
    """What the repository needs of HDFS."""

    @abc.abstractmethod
    def status(self, path: str) -> Status | None:
        """The file or directory at ``path``, None if nothing is there."""

    @abc.abstractmethod
    def list(self, path: str) -> Iterable[Status]:
        """Entries directly under directory ``path``; raises NOT_FOUND if it is
        missing."""

    @abc.abstractmethod
    def open(self, path: str) -> BinaryIO:
        """A readable stream of file ``path``."""

    @abc.abstractmethod
    def create(self, path: str, stream: ReadableStream) -> None:
        """Write everything read from ``stream`` as new file ``path`` (parents made)."""

    @abc.abstractmethod
    def mkdirs(self, path: str) -> None:
        """Make directory ``path`` and its parents; PARENT_IS_FILE if one is a file."""

    @abc.abstractmethod
    def rename(self, src: str, dst: str) -> bool:
        """Move ``src`` to ``dst``; False (HDFS's answer) if ``dst`` exists."""

    @abc.abstractmethod
    def delete(self, path: str, recursive: bool) -> bool:
        """Delete ``path``; False if nothing was there."""

    def close(self) -> None:  # noqa: B027 - optional
        """Release connections."""
