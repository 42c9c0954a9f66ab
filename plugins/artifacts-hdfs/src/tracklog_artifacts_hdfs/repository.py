"""Artifacts in an HDFS directory, one repository over the file-system interface of
:mod:`tracklog_artifacts_hdfs.filesystem`:

- ``webhdfs://namenode:9870/path`` (``webhdfs://user@namenode:9870/path`` for another
  ``user.name``) through the NameNode's REST API;
- ``hdfs://namenode:8020/path``, ``hdfs:///path`` and ``viewfs://cluster/path`` through
  libhdfs.

Uploads are written to a temporary file beside the target and renamed over it (HDFS
renames do not replace, so the old file is deleted just before): readers see a whole
file, never one under construction. Downloads stream; listings are one level with
sizes; deletes are HDFS's recursive delete.
"""

from __future__ import annotations

import posixpath
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import BinaryIO
from urllib.parse import urlsplit

from tracklog import errors
from tracklog.artifacts import ArtifactRepository
from tracklog.artifacts.base import PROBE_PREFIX, ReadableStream
from tracklog.entities import FileInfo
from tracklog.errors import ErrorCode, TracklogError
from tracklog_artifacts_hdfs.filesystem import FileSystem, HDFSError, Kind

#: Name prefix of the temporary files uploads are written to before the rename.
TEMP_PREFIX = ".tracklog-tmp-"
_INTERNAL = (TEMP_PREFIX, PROBE_PREFIX)

_CODES = {
    Kind.NOT_FOUND: ErrorCode.RESOURCE_DOES_NOT_EXIST,
    Kind.PERMISSION: ErrorCode.PERMISSION_DENIED,
    Kind.UNAUTHENTICATED: ErrorCode.UNAUTHENTICATED,
    Kind.PARENT_IS_FILE: ErrorCode.INVALID_PARAMETER_VALUE,
    Kind.EXISTS: ErrorCode.RESOURCE_ALREADY_EXISTS,
    Kind.UNAVAILABLE: ErrorCode.TEMPORARILY_UNAVAILABLE,
    Kind.INVALID: ErrorCode.INVALID_PARAMETER_VALUE,
    Kind.OTHER: ErrorCode.IO_ERROR,
}


def open_filesystem(uri: str) -> tuple[FileSystem, str, str]:
    """``(file system, root path, URI to show)`` for an HDFS artifact URI."""
    try:
        parsed = urlsplit(uri)
        port = parsed.port
    except ValueError as exc:
        raise errors.invalid(f"Malformed HDFS artifact URI: {exc}") from None
    if parsed.scheme not in ("webhdfs", "hdfs", "viewfs"):
        raise errors.invalid("Not an HDFS artifact URI (webhdfs://, hdfs:// or viewfs://)")
    if parsed.query or parsed.fragment:
        raise errors.invalid("HDFS artifact URIs take no query or fragment")
    if parsed.password is not None:
        raise errors.invalid("HDFS artifact URIs take no password (HDFS has none: use "
                             "Kerberos or a delegation token)")
    root = parsed.path.rstrip("/") or "/"
    if any(part in (".", "..") for part in root.split("/")) or "//" in root:
        raise errors.invalid("HDFS artifact URI paths must be normalised (no '.', '..', '//')")
    if parsed.scheme == "webhdfs":
        from tracklog_artifacts_hdfs import webhdfs

        if not parsed.hostname:
            raise errors.invalid("webhdfs:// URIs name the NameNode: webhdfs://host:port/path")
        fs: FileSystem = webhdfs.shared(parsed.hostname, port or webhdfs.DEFAULT_PORT,
                                        parsed.username)
    else:
        from tracklog_artifacts_hdfs.libhdfs import LibHDFS

        fs = LibHDFS(parsed.scheme, parsed.hostname, port)
    return fs, root, uri


class HDFSArtifactRepository(ArtifactRepository):
    """Files under an HDFS directory, through WebHDFS or libhdfs alike."""

    def __init__(self, artifact_uri: str, fs: FileSystem | None = None) -> None:
        super().__init__(artifact_uri)
        opened, self.root, self.shown = open_filesystem(artifact_uri)
        self.fs = fs or opened

    def _abs(self, path: str) -> str:
        if not path:
            return self.root
        return f"{self.root}/{path}" if self.root != "/" else f"/{path}"

    def _uri_of(self, path: str) -> str:
        return f"{self.shown.rstrip('/')}/{path}" if path else self.shown

    @contextmanager
    def _doing(self, action: str, path: str) -> Iterator[None]:
        try:
            yield
        except HDFSError as exc:
            raise TracklogError(f"HDFS {action} {self._uri_of(path)} failed: {exc.message}",
                                _CODES[exc.kind]) from None

    # -- the contract -------------------------------------------------------------------

    def _stat(self, path: str) -> FileInfo | None:
        with self._doing("stat", path):
            found = self.fs.status(self._abs(path))
        if found is None:
            # A root that does not exist yet is an empty directory: uploads make it.
            return FileInfo("", True) if path == "" else None
        if found.is_dir:
            return FileInfo(path, True)
        return FileInfo(path, False, found.size)

    def _list(self, path: str) -> list[FileInfo]:
        out = []
        with self._doing("list", path):
            try:
                for entry in self.fs.list(self._abs(path)):
                    if entry.name.startswith(_INTERNAL):
                        continue
                    rel = f"{path}/{entry.name}" if path else entry.name
                    out.append(FileInfo(rel, True) if entry.is_dir
                               else FileInfo(rel, False, entry.size))
            except HDFSError as exc:
                if exc.kind is Kind.NOT_FOUND:
                    return []
                raise
        return out

    def _open(self, path: str) -> BinaryIO:
        with self._doing("read", path):
            try:
                return self.fs.open(self._abs(path))
            except HDFSError as exc:
                if exc.kind is Kind.NOT_FOUND:
                    raise errors.not_found(f"No such artifact: '{path}'") from None
                raise

    def _write(self, path: str, stream: ReadableStream) -> None:
        full = self._abs(path)
        parent = posixpath.dirname(full)
        temp = f"{parent.rstrip('/')}/{TEMP_PREFIX}{uuid.uuid4().hex}"
        with self._doing("upload", path):
            existing = self.fs.status(full)
            if existing is not None and existing.is_dir:
                raise errors.invalid(f"Invalid artifact path: '{path}' is a directory")
            try:
                self.fs.mkdirs(parent)
            except HDFSError as exc:
                if exc.kind in (Kind.PARENT_IS_FILE, Kind.EXISTS):
                    raise errors.invalid(
                        f"Invalid artifact path: a parent of '{path}' is a file") from None
                raise
            try:
                self.fs.create(temp, stream)
                if not self.fs.rename(temp, full):
                    # HDFS renames never replace: the old file goes, then the new one in.
                    self.fs.delete(full, recursive=False)
                    if not self.fs.rename(temp, full):
                        raise HDFSError(Kind.OTHER, "the rename into place was refused")
            except BaseException:
                try:
                    self.fs.delete(temp, recursive=False)
                except Exception:
                    pass  # the sweep at the next start removes it
                raise

    def _mkdir(self, path: str) -> None:
        with self._doing("mkdir", path):
            try:
                self.fs.mkdirs(self._abs(path))
            except HDFSError as exc:
                if exc.kind in (Kind.PARENT_IS_FILE, Kind.EXISTS):
                    raise errors.invalid(
                        f"Invalid artifact path: a parent of '{path}' is a file") from None
                raise

    def _delete(self, path: str) -> None:
        full = self._abs(path)
        with self._doing("delete", path):
            if path:
                self.fs.delete(full, recursive=True)
                return
            try:
                entries = list(self.fs.list(full))
            except HDFSError as exc:
                if exc.kind is Kind.NOT_FOUND:
                    return
                raise
            for entry in entries:  # the root itself stays
                self.fs.delete(f"{full.rstrip('/')}/{entry.name}", recursive=True)

    # -- operations ---------------------------------------------------------------------

    def remove_stale_temp_files(self, older_than: float) -> int:
        """Remove upload temporaries and write probes not modified for ``older_than``
        seconds anywhere below the root."""
        cutoff = time.time() - older_than
        removed = 0
        pending = [self.root]
        with self._doing("sweep", ""):
            while pending:
                directory = pending.pop()
                try:
                    entries = list(self.fs.list(directory))
                except HDFSError:
                    continue
                for entry in entries:
                    full = f"{directory.rstrip('/')}/{entry.name}"
                    if entry.is_dir:
                        pending.append(full)
                    elif entry.name.startswith(_INTERNAL) and entry.mtime < cutoff:
                        if self.fs.delete(full, recursive=False):
                            removed += 1
        return removed
