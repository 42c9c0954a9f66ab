"""The built-in repository for local and network-mounted (NFS, SMB) directories."""

from __future__ import annotations

import os
import shutil
import tempfile
from typing import BinaryIO
from urllib.parse import unquote, urlparse
from urllib.request import url2pathname

from tracklog import errors
from tracklog.artifacts.base import CHUNK_SIZE, ArtifactRepository
from tracklog.entities import FileInfo


def local_path_of(uri: str) -> str:
    """The absolute directory a ``file:`` URI or a plain path names."""
    parsed = urlparse(uri)
    if parsed.scheme == "file":
        if parsed.netloc not in ("", "localhost"):
            raise errors.invalid(f"file: URIs with a remote host are not supported: {uri!r}")
        path = url2pathname(unquote(parsed.path)) if parsed.path else ""
        if not parsed.path.startswith("/"):  # file:relative/dir
            path = uri[len("file:") :]
        return os.path.abspath(path)
    return os.path.abspath(uri)


def _copy(stream: BinaryIO, out: BinaryIO) -> None:
    """Copy in whole chunks, one write each, through one reused buffer."""
    readinto = getattr(stream, "readinto", None)
    if readinto is None:
        shutil.copyfileobj(stream, out, CHUNK_SIZE)
        return
    buffer = bytearray(CHUNK_SIZE)
    view = memoryview(buffer)
    while n := readinto(buffer):
        out.write(view[:n])


class LocalArtifactRepository(ArtifactRepository):
    """Files under a local directory. Writes go to a temporary file beside the target and
    are renamed into place, so a reader sees the old file or the new one, never half."""

    def __init__(self, artifact_uri: str) -> None:
        super().__init__(artifact_uri)
        self.root = local_path_of(artifact_uri)

    def _abs(self, path: str) -> str:
        full = os.path.join(self.root, *path.split("/")) if path else self.root
        # The path is already safe; this also refuses symlinks that lead outside the root.
        real_root = os.path.realpath(self.root)
        real = os.path.realpath(full)
        if real != real_root and not real.startswith(real_root + os.sep):
            raise errors.invalid(f"Invalid artifact path: '{path}' leaves the artifact root")
        return full

    def _stat(self, path: str) -> FileInfo | None:
        full = self._abs(path)
        if os.path.isdir(full):
            return FileInfo(path, True)
        if os.path.isfile(full):
            return FileInfo(path, False, os.path.getsize(full))
        if path == "":
            return FileInfo("", True)
        return None

    def _list(self, path: str) -> list[FileInfo]:
        full = self._abs(path)
        try:
            entries = list(os.scandir(full))
        except (FileNotFoundError, NotADirectoryError):
            return []
        out = []
        for entry in entries:
            if entry.name.startswith(".tracklog-tmp-"):
                continue
            rel = f"{path}/{entry.name}" if path else entry.name
            if entry.is_dir():
                out.append(FileInfo(rel, True))
            else:
                out.append(FileInfo(rel, False, entry.stat().st_size))
        return out

    def _open(self, path: str) -> BinaryIO:
        try:
            return open(self._abs(path), "rb")
        except (FileNotFoundError, IsADirectoryError):
            raise errors.not_found(f"No such artifact: '{path}'") from None

    def _write(self, path: str, stream: BinaryIO) -> None:
        full = self._abs(path)
        parent = os.path.dirname(full)
        try:
            os.makedirs(parent, exist_ok=True)
        except (FileExistsError, NotADirectoryError):
            raise errors.invalid(
                f"Invalid artifact path: a parent of '{path}' is a file"
            ) from None
        if os.path.isdir(full):
            raise errors.invalid(f"Invalid artifact path: '{path}' is a directory")
        fd, tmp = tempfile.mkstemp(prefix=".tracklog-tmp-", dir=parent)
        try:
            with os.fdopen(fd, "wb") as out:
                _copy(stream, out)
            os.replace(tmp, full)
        except BaseException:
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass
            raise

    def _mkdir(self, path: str) -> None:
        os.makedirs(self._abs(path), exist_ok=True)

    def _delete(self, path: str) -> None:
        full = self._abs(path)
        if os.path.isdir(full) and not os.path.islink(full):
            if path == "":
                for entry in os.scandir(full):
                    self._delete(entry.name)
            else:
                shutil.rmtree(full)
        elif os.path.lexists(full):
            os.unlink(full)
