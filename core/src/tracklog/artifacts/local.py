"""The built-in repository for local and network-mounted (NFS, SMB) directories."""

from __future__ import annotations

import errno
import os
import shutil
import stat
import tempfile
import time
from typing import BinaryIO
from urllib.parse import unquote, urlparse
from urllib.request import url2pathname

from tracklog import errors
from tracklog.artifacts.base import CHUNK_SIZE, PROBE_PREFIX, ArtifactRepository, ReadableStream
from tracklog.entities import FileInfo

#: Name prefix of the temporary files uploads are written to before the rename.
TEMP_PREFIX = ".tracklog-tmp-"
#: Files that are never artifacts: hidden from listings, swept when stale.
_INTERNAL = (TEMP_PREFIX, PROBE_PREFIX)


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


#: Bytes per write of an upload: a server holds one such buffer per upload in progress
#: (32 by default), and 1 MiB buffers wrote no faster.
_COPY_BUFFER = 256 * 1024


def _copy(stream: ReadableStream, out: BinaryIO) -> None:
    """Copy in whole chunks, one write each, through one reused buffer."""
    readinto = getattr(stream, "readinto", None)
    if readinto is None:
        shutil.copyfileobj(stream, out, CHUNK_SIZE)
        return
    buffer = bytearray(_COPY_BUFFER)
    view = memoryview(buffer)
    while n := readinto(buffer):
        out.write(view[:n])


class LocalArtifactRepository(ArtifactRepository):
    """Files under a local directory. Writes go to a temporary file beside the target and
    are renamed into place, so a reader sees the old file or the new one, never half.

    Listings skip symlinks that dangle or lead outside the root (opening them is refused
    too), and the temporary files of uploads in progress."""

    def __init__(self, artifact_uri: str) -> None:
        super().__init__(artifact_uri)
        self.root = local_path_of(artifact_uri)

    def _abs(self, path: str) -> str:
        full = os.path.join(self.root, *path.split("/")) if path else self.root
        # The path is already safe; this also refuses symlinks that lead outside the root.
        if not self._inside(os.path.realpath(full)):
            raise errors.invalid(f"Invalid artifact path: '{path}' leaves the artifact root")
        return full

    def _inside(self, real: str) -> bool:
        real_root = os.path.realpath(self.root)
        return real == real_root or real.startswith(real_root.rstrip(os.sep) + os.sep)

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
            if entry.name.startswith(_INTERNAL):
                continue
            try:
                if entry.is_symlink() and not self._inside(os.path.realpath(entry.path)):
                    continue
                st = entry.stat()  # follows a symlink inside the root
            except OSError:  # dangling, or gone since the scan
                continue
            rel = f"{path}/{entry.name}" if path else entry.name
            if stat.S_ISDIR(st.st_mode):
                out.append(FileInfo(rel, True))
            elif stat.S_ISREG(st.st_mode):
                out.append(FileInfo(rel, False, st.st_size))
        return out

    def _open(self, path: str) -> BinaryIO:
        try:
            return open(self._abs(path), "rb")
        except (FileNotFoundError, IsADirectoryError):
            raise errors.not_found(f"No such artifact: '{path}'") from None

    def _make_parents(self, parent: str, path: str) -> list[str]:
        """Create the missing directories down to ``parent``; returns them deepest first
        so a failed write can remove exactly what it created."""
        missing = []
        current = parent
        while not os.path.isdir(current):
            missing.append(current)
            up = os.path.dirname(current)
            if up == current:
                break
            current = up
        created: list[str] = []
        try:
            for directory in reversed(missing):
                try:
                    os.mkdir(directory)
                except FileExistsError:
                    if not os.path.isdir(directory):
                        raise errors.invalid(
                            f"Invalid artifact path: a parent of '{path}' is a file"
                        ) from None
                    continue
                created.insert(0, directory)
        except BaseException:
            _remove_empty(created)
            raise
        return created

    def _write(self, path: str, stream: ReadableStream) -> None:
        full = self._abs(path)
        parent = os.path.dirname(full)
        if os.path.isdir(full):
            raise errors.invalid(f"Invalid artifact path: '{path}' is a directory")
        created: list[str] = []
        try:
            for attempt in range(3):
                created += self._make_parents(parent, path)
                try:
                    fd, tmp = tempfile.mkstemp(prefix=TEMP_PREFIX, dir=parent)
                    break
                except FileNotFoundError:
                    # A concurrent failed write removed the directory it had created.
                    if attempt == 2:
                        raise
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
        except BaseException as exc:
            _remove_empty(created)
            if isinstance(exc, OSError) and exc.errno == errno.ENAMETOOLONG:
                raise errors.invalid(
                    f"Invalid artifact path: '{path}' is too long for the file system"
                ) from None
            raise

    def _mkdir(self, path: str) -> None:
        os.makedirs(self._abs(path), exist_ok=True)

    def _delete(self, path: str) -> None:
        full = self._abs(path)
        if os.path.isdir(full) and not os.path.islink(full):
            if path == "":
                for entry in os.scandir(full):
                    self._delete(entry.name)
                self._remove_empty_root()
            else:
                shutil.rmtree(full)
        elif os.path.lexists(full):
            os.unlink(full)

    def _remove_empty_root(self) -> None:
        """A repository deleted whole leaves no directory behind: its root goes, and the
        folder holding it when nothing else is left there (a run's or a logged model's
        folder around its ``artifacts``)."""
        for d in (self.root, os.path.dirname(self.root.rstrip(os.sep))):
            try:
                os.rmdir(d)
            except OSError:
                return

    # -- start-up ----------------------------------------------------------------------

    def verify(self, probe_write: bool = False) -> None:
        """Also, always and cheaply: the root (or, while it does not exist yet, its
        nearest existing ancestor) is a directory this process may write to."""
        existing = self.root
        while not os.path.lexists(existing):
            up = os.path.dirname(existing)
            if up == existing:
                break
            existing = up
        where = "it" if existing == self.root else f"its parent {existing}"
        if not os.path.isdir(existing):
            what = "a broken symlink" if not os.path.exists(existing) else "a file"
            raise self._unusable(f"{where} is {what}, not a directory")
        if not os.access(existing, os.W_OK | os.X_OK):
            raise self._unusable(f"{where} is not writable by this process")
        super().verify(probe_write)

    def remove_stale_temp_files(self, older_than: float) -> int:
        """Remove upload temporaries (``.tracklog-tmp-*``, and write probes a crash
        interrupted) not modified for ``older_than`` seconds anywhere below the root,
        walking without recursion and without following symlinks; returns how many."""
        cutoff = time.time() - older_than
        removed = 0
        pending = [self.root]
        while pending:
            directory = pending.pop()
            try:
                entries = list(os.scandir(directory))
            except OSError:
                continue
            for entry in entries:
                try:
                    if entry.is_dir(follow_symlinks=False):
                        pending.append(entry.path)
                    elif (entry.name.startswith(_INTERNAL)
                          and entry.is_file(follow_symlinks=False)
                          and entry.stat(follow_symlinks=False).st_mtime < cutoff):
                        os.unlink(entry.path)
                        removed += 1
                except OSError:
                    continue  # removed by another worker, or unreadable: not ours to fix
        return removed


def _remove_empty(directories: list[str]) -> None:
    """Remove directories a failed write created, deepest first, stopping at the first
    one that another writer has put something in meanwhile."""
    for directory in directories:
        try:
            os.rmdir(directory)
        except OSError:
            return
