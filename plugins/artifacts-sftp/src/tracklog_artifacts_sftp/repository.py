"""Artifacts in a directory of an SFTP server under ``sftp://user@host[:port]/path``.

Uploads stream into a temporary file beside the target (pipelined writes) and are
renamed over it (``posix-rename@openssh.com``), so a reader sees the old file or the new
one; missing directories are made on the way. Downloads stream through a bounded window
of read-ahead requests. Listings are one ``READDIR`` with sizes; deletes walk the tree.
"""

from __future__ import annotations

import errno
import io
import posixpath
import stat
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import BinaryIO, cast

import paramiko  # type: ignore[import-untyped]  # ships no hints; types-paramiko is not pinned

from tracklog import errors
from tracklog.artifacts import ArtifactRepository
from tracklog.artifacts.base import CHUNK_SIZE, PROBE_PREFIX, ReadableStream
from tracklog.entities import FileInfo
from tracklog_artifacts_sftp.connection import Connection, Pool, pool_for, resolve_target
from tracklog_artifacts_sftp.failures import translate
from tracklog_artifacts_sftp.location import parse_sftp_uri

#: Name prefix of the temporary files uploads are written to before the rename.
TEMP_PREFIX = ".tracklog-tmp-"
_INTERNAL = (TEMP_PREFIX, PROBE_PREFIX)
#: Bytes of read requests in flight for a download (one SFTP request reads 32 KiB).
READ_AHEAD = 8 * 1024 * 1024


def _missing(exc: OSError) -> bool:
    return exc.errno == errno.ENOENT


class SFTPArtifactRepository(ArtifactRepository):
    """Files under a directory of an SFTP server. Connection settings come from the URI,
    the user's SSH configuration and the environment (see
    :mod:`tracklog_artifacts_sftp.connection`); they are checked here, at creation."""

    def __init__(self, artifact_uri: str) -> None:
        super().__init__(artifact_uri)
        self.location = parse_sftp_uri(artifact_uri)
        self.target = resolve_target(self.location)
        self.pool: Pool = pool_for(self.target)

    # -- helpers ------------------------------------------------------------------------

    def _abs(self, path: str) -> str:
        root = self.location.root
        if not path:
            return root
        return f"{root}/{path}" if root != "/" else f"/{path}"

    def _uri_of(self, path: str) -> str:
        shown = self.location.display
        return f"{shown}/{path}" if path else shown

    @contextmanager
    def _session(self, action: str, path: str) -> Iterator[paramiko.SFTPClient]:
        try:
            with self.pool.borrow() as sftp:
                yield sftp
        except errors.TracklogError:
            raise
        except _SourceFailed as exc:
            raise exc.original from None  # the caller's stream, not the server, failed
        except Exception as exc:
            raise translate(exc, self._uri_of(path), action, self.target) from None

    def _makedirs(self, sftp: paramiko.SFTPClient, directory: str, path: str) -> None:
        """Create ``directory`` and its missing parents. OpenSSH answers a mkdir of
        something that exists with a bare "Failure": the state after it decides."""
        missing: list[str] = []
        current = directory
        while True:
            try:
                st = sftp.stat(current)
            except OSError as exc:
                if not _missing(exc):
                    raise
                missing.append(current)
                parent = posixpath.dirname(current)
                if parent in (current, ""):
                    break
                current = parent
                continue
            if not stat.S_ISDIR(st.st_mode or 0):
                raise errors.invalid(f"Invalid artifact path: a parent of '{path}' is a file")
            break
        for created in reversed(missing):
            try:
                sftp.mkdir(created)
            except OSError as failure:
                try:
                    st = sftp.stat(created)  # made meanwhile by a concurrent upload?
                except OSError:
                    raise failure from None
                if not stat.S_ISDIR(st.st_mode or 0):
                    raise errors.invalid(
                        f"Invalid artifact path: a parent of '{path}' is a file"
                    ) from None

    # -- the contract -------------------------------------------------------------------

    def _stat(self, path: str) -> FileInfo | None:
        with self._session("stat", path) as sftp:
            try:
                st = sftp.stat(self._abs(path))
            except OSError as exc:
                if not _missing(exc):
                    raise
                # A root that does not exist yet is an empty directory: uploads make it.
                return FileInfo("", True) if path == "" else None
        if stat.S_ISDIR(st.st_mode or 0):
            return FileInfo(path, True)
        if path == "":
            return FileInfo("", False, st.st_size)  # refused by verify()
        return FileInfo(path, False, st.st_size) if stat.S_ISREG(st.st_mode or 0) else None

    def _list(self, path: str) -> list[FileInfo]:
        full = self._abs(path)
        out: list[FileInfo] = []
        with self._session("list", path) as sftp:
            try:
                entries = sftp.listdir_attr(full)
            except OSError as exc:
                if _missing(exc):
                    return []
                raise
            for entry in entries:
                name = entry.filename
                if name.startswith(_INTERNAL):
                    continue
                mode = entry.st_mode or 0
                if stat.S_ISLNK(mode):
                    try:
                        entry = sftp.stat(f"{full}/{name}")
                    except OSError:
                        continue  # dangling
                    mode = entry.st_mode or 0
                rel = f"{path}/{name}" if path else name
                if stat.S_ISDIR(mode):
                    out.append(FileInfo(rel, True))
                elif stat.S_ISREG(mode):
                    out.append(FileInfo(rel, False, entry.st_size))
        return out

    def _open(self, path: str) -> BinaryIO:
        try:
            conn = self.pool.acquire()
        except Exception as exc:
            raise translate(exc, self._uri_of(path), "read", self.target) from None
        try:
            handle = conn.sftp.open(self._abs(path), "rb")
            size = handle.stat().st_size or 0
        except BaseException as exc:
            self.pool.release(conn, reuse=type(exc) is OSError)
            if isinstance(exc, OSError) and _missing(exc):
                raise errors.not_found(f"No such artifact: '{path}'") from None
            if isinstance(exc, Exception):
                raise translate(exc, self._uri_of(path), "read", self.target) from None
            raise
        # An io.RawIOBase: a readable binary file.
        return cast(BinaryIO, _Reader(self, conn, handle, size, path))

    def _write(self, path: str, stream: ReadableStream) -> None:
        full = self._abs(path)
        parent = posixpath.dirname(full)
        with self._session("upload", path) as sftp:
            try:
                if stat.S_ISDIR(sftp.stat(full).st_mode or 0):
                    raise errors.invalid(f"Invalid artifact path: '{path}' is a directory")
            except OSError as exc:
                if not _missing(exc):
                    raise
            self._makedirs(sftp, parent, path)
            temp = f"{parent}/{TEMP_PREFIX}{uuid.uuid4().hex}"
            try:
                with sftp.open(temp, "wb") as out:
                    out.set_pipelined(True)
                    _copy(stream, out)
                self._replace(sftp, temp, full)
            except BaseException:
                try:
                    sftp.remove(temp)
                except Exception:
                    pass  # never made, or the connection is gone: the sweep removes it
                raise

    @staticmethod
    def _replace(sftp: paramiko.SFTPClient, temp: str, full: str) -> None:
        try:
            sftp.posix_rename(temp, full)
            return
        except OSError as exc:
            if type(exc) is not OSError:
                raise
        # A server without OpenSSH's rename extension: plain SFTP rename refuses to
        # replace, so the old file goes first (a reader may briefly find nothing).
        try:
            sftp.remove(full)
        except OSError as exc:
            if not _missing(exc):
                raise
        sftp.rename(temp, full)

    def _mkdir(self, path: str) -> None:
        with self._session("mkdir", path) as sftp:
            self._makedirs(sftp, self._abs(path), path)

    def _delete(self, path: str) -> None:
        full = self._abs(path)
        with self._session("delete", path) as sftp:
            try:
                st = sftp.lstat(full)
            except OSError as exc:
                if _missing(exc):
                    return
                raise
            if stat.S_ISDIR(st.st_mode or 0):
                _remove_tree(sftp, full, keep=path == "")
            else:
                _quietly(sftp.remove, full)

    # -- operations ---------------------------------------------------------------------

    def remove_stale_temp_files(self, older_than: float) -> int:
        """Remove upload temporaries and write probes not modified for ``older_than``
        seconds anywhere below the root (an interrupted upload leaves one behind)."""
        cutoff = time.time() - older_than
        removed = 0
        with self._session("sweep", "") as sftp:
            pending = [self.location.root]
            while pending:
                directory = pending.pop()
                try:
                    entries = sftp.listdir_attr(directory)
                except OSError:
                    continue
                for entry in entries:
                    mode = entry.st_mode or 0
                    full = f"{directory.rstrip('/')}/{entry.filename}"
                    if stat.S_ISDIR(mode):
                        pending.append(full)
                    elif (entry.filename.startswith(_INTERNAL) and stat.S_ISREG(mode)
                          and (entry.st_mtime or 0) < cutoff):
                        try:
                            sftp.remove(full)
                            removed += 1
                        except OSError:
                            continue
        return removed


def _quietly(func, full: str) -> None:
    try:
        func(full)
    except OSError as exc:
        if not _missing(exc):
            raise


def _remove_tree(sftp: paramiko.SFTPClient, directory: str, keep: bool) -> None:
    """Delete everything below ``directory`` (symlinks as links, never followed), then
    the directory itself unless ``keep``. Entries gone meanwhile are not an error."""
    try:
        entries = sftp.listdir_attr(directory)
    except OSError as exc:
        if _missing(exc):
            return
        raise
    for entry in entries:
        full = f"{directory.rstrip('/')}/{entry.filename}"
        if stat.S_ISDIR(entry.st_mode or 0):
            _remove_tree(sftp, full, keep=False)
        else:
            _quietly(sftp.remove, full)
    if not keep:
        _quietly(sftp.rmdir, directory)


class _SourceFailed(Exception):
    def __init__(self, original: BaseException) -> None:
        super().__init__(original)
        self.original = original


def _copy(stream: ReadableStream, out: paramiko.SFTPFile) -> None:
    while True:
        try:
            chunk = stream.read(CHUNK_SIZE)
        except Exception as exc:
            raise _SourceFailed(exc) from exc
        if not chunk:
            return
        out.write(chunk)


class _Reader(io.RawIOBase):
    """A file of the server, read ahead in windows of :data:`READ_AHEAD` bytes. It holds
    its pooled connection until closed."""

    def __init__(self, repo: SFTPArtifactRepository, conn: Connection,
                 handle: paramiko.SFTPFile, size: int, path: str) -> None:
        super().__init__()
        self._repo, self._conn, self._handle = repo, conn, handle
        self._size, self._path = size, path
        self._offset = 0  # of the next window
        self._window: Iterator[bytes] = iter(())  # read only while _pending > 0
        self._pending = 0  # pieces of the window not read yet
        self._piece = b""
        self._released = False

    def readable(self) -> bool:
        return True

    def _next_piece(self) -> bytes:
        if self._pending == 0:
            if self._offset >= self._size:
                return b""
            end = min(self._offset + READ_AHEAD, self._size)
            step = paramiko.SFTPFile.MAX_REQUEST_SIZE
            chunks = [(o, min(step, end - o)) for o in range(self._offset, end, step)]
            self._window = self._handle.readv(chunks)
            self._pending = len(chunks)
            self._offset = end
        self._pending -= 1
        try:
            piece = next(self._window)
        except Exception as exc:
            self._fail()
            raise translate(exc, self._repo._uri_of(self._path), "read",
                            self._repo.target) from None
        if not piece:  # the file shrank under us
            self._pending = 0
            self._offset = self._size
        return piece

    def read(self, size: int = -1) -> bytes:
        if self.closed:
            raise ValueError("read of a closed file")
        parts: list[bytes] = []
        wanted = size if size is not None and size >= 0 else float("inf")
        got = 0
        while got < wanted:
            if not self._piece:
                self._piece = self._next_piece()
                if not self._piece:
                    break
            take = self._piece if got + len(self._piece) <= wanted else (
                self._piece[: int(wanted - got)])
            self._piece = self._piece[len(take):]
            parts.append(take)
            got += len(take)
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def readinto(self, buffer) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def _fail(self) -> None:
        if not self._released:
            self._released = True
            self._repo.pool.release(self._conn, reuse=False)

    def close(self) -> None:
        if not self._released:
            self._released = True
            reuse = False
            try:
                # Answers to the window's requests still come: take them (at most
                # READ_AHEAD bytes), so the session is clean for its next borrower.
                while self._pending > 0:
                    self._pending -= 1
                    next(self._window)
                self._handle.close()
                reuse = True
            except Exception:
                pass
            self._repo.pool.release(self._conn, reuse=reuse)
        super().close()
