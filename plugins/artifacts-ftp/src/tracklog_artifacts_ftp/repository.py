"""Artifacts in a directory of an FTP or FTPS server under ``ftp[s]://user@host/path``.

Passive mode, binary transfers. Uploads stream into a temporary file beside the target
(``STOR``) and are renamed over it (``RNFR``/``RNTO``), so a reader sees the old file or
the new one; missing directories are made on the way. Downloads stream from the data
connection. Listings are ``MLSD`` where offered, else parsed ``LIST`` (see
:mod:`tracklog_artifacts_ftp.listing`). A 550 reply says only "no": what exists is
looked at before deciding what it meant.
"""

from __future__ import annotations

import ftplib
import io
import posixpath
import socket
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import BinaryIO, cast

from tracklog import errors
from tracklog.artifacts import ArtifactRepository
from tracklog.artifacts.base import CHUNK_SIZE, PROBE_PREFIX, ReadableStream
from tracklog.entities import FileInfo
from tracklog_artifacts_ftp import listing
from tracklog_artifacts_ftp.connection import Connection, Pool, parse_target, pool_for
from tracklog_artifacts_ftp.failures import translate

#: Name prefix of the temporary files uploads are written to before the rename.
TEMP_PREFIX = ".tracklog-tmp-"
_INTERNAL = (TEMP_PREFIX, PROBE_PREFIX)


class _SourceFailed(Exception):
    def __init__(self, original: BaseException) -> None:
        super().__init__(original)
        self.original = original


def _is_dir(ftp: ftplib.FTP, full: str) -> bool:
    try:
        ftp.cwd(full)
        return True
    except ftplib.error_perm:
        return False


class FTPArtifactRepository(ArtifactRepository):
    """Files under a directory of an FTP (``ftp://``) or explicit-FTPS (``ftps://``)
    server; the login comes from the URI or ``~/.netrc`` (see
    :mod:`tracklog_artifacts_ftp.connection`)."""

    def __init__(self, artifact_uri: str) -> None:
        super().__init__(artifact_uri)
        self.target = parse_target(artifact_uri)
        self.pool: Pool = pool_for(self.target)

    # -- helpers ------------------------------------------------------------------------

    def _abs(self, path: str) -> str:
        root = self.target.root
        if not path:
            return root
        return f"{root}/{path}" if root != "/" else f"/{path}"

    def _uri_of(self, path: str) -> str:
        shown = self.target.display
        return f"{shown}/{path}" if path else shown

    @contextmanager
    def _session(self, action: str, path: str) -> Iterator[Connection]:
        try:
            with self.pool.borrow() as conn:
                yield conn
        except errors.TracklogError:
            raise
        except _SourceFailed as exc:
            raise exc.original from None
        except Exception as exc:
            raise translate(exc, self._uri_of(path), action, self.target) from None

    def _entry(self, conn: Connection, full: str) -> listing.Entry | None:
        ftp = conn.ftp
        if "MLST" in conn.features:
            try:
                answer = ftp.sendcmd(f"MLST {full}")
            except ftplib.error_perm:
                return None
            for line in answer.splitlines()[1:-1]:
                entries = listing.mlsd_facts(line.strip())
                if entries is not None:
                    return entries
            return None
        return listing.probe(ftp, full)

    def _entries(self, conn: Connection, full: str) -> list[listing.Entry] | None:
        """The entries of directory ``full``; None if it is no directory."""
        ftp = conn.ftp
        if "MLST" in conn.features:
            try:
                return listing.mlsd(ftp, full)
            except ftplib.error_perm:
                return None
        if not _is_dir(ftp, full):
            return None
        return listing.list_current(ftp)

    def _makedirs(self, conn: Connection, directory: str, path: str) -> None:
        ftp = conn.ftp
        missing: list[str] = []
        current = directory
        while current not in ("/", "") and not _is_dir(ftp, current):
            missing.append(current)
            current = posixpath.dirname(current)
        for created in reversed(missing):
            try:
                ftp.mkd(created)
            except ftplib.error_perm as failure:
                if _is_dir(ftp, created):
                    continue  # made meanwhile by a concurrent upload
                found = self._entry(conn, created)
                if found is not None and not found.is_dir:
                    raise errors.invalid(
                        f"Invalid artifact path: a parent of '{path}' is a file") from None
                raise failure

    # -- the contract -------------------------------------------------------------------

    def _stat(self, path: str) -> FileInfo | None:
        with self._session("stat", path) as conn:
            if path == "":
                # A root that does not exist yet is an empty directory: uploads make it.
                if _is_dir(conn.ftp, self._abs("")) or self._entry(conn, self._abs("")) is None:
                    return FileInfo("", True)
                return FileInfo("", False, 0)  # refused by verify()
            entry = self._entry(conn, self._abs(path))
            if entry is not None and entry.is_link:
                entry = listing.probe(conn.ftp, self._abs(path))
        if entry is None:
            return None
        return FileInfo(path, True) if entry.is_dir else FileInfo(path, False, entry.size)

    def _list(self, path: str) -> list[FileInfo]:
        full = self._abs(path)
        out = []
        with self._session("list", path) as conn:
            for entry in self._entries(conn, full) or []:
                if entry.name.startswith(_INTERNAL):
                    continue
                if entry.is_link:
                    resolved = listing.probe(conn.ftp, f"{full}/{entry.name}")
                    if resolved is None:
                        continue
                    entry = listing.Entry(entry.name, resolved.is_dir, resolved.size)
                rel = f"{path}/{entry.name}" if path else entry.name
                out.append(FileInfo(rel, True) if entry.is_dir
                           else FileInfo(rel, False, entry.size))
        return out

    def _open(self, path: str) -> BinaryIO:
        try:
            conn = self.pool.acquire()
        except Exception as exc:
            raise translate(exc, self._uri_of(path), "read", self.target) from None
        try:
            data = conn.ftp.transfercmd(f"RETR {self._abs(path)}")
        except BaseException as exc:
            self.pool.release(conn, reuse=isinstance(exc, ftplib.error_perm))
            if isinstance(exc, Exception):
                raise translate(exc, self._uri_of(path), "read", self.target) from None
            raise
        # An io.RawIOBase: a readable binary file.
        return cast(BinaryIO, _Reader(self, conn, data, path))

    def _write(self, path: str, stream: ReadableStream) -> None:
        full = self._abs(path)
        parent = posixpath.dirname(full)
        with self._session("upload", path) as conn:
            ftp = conn.ftp
            if _is_dir(ftp, full):
                raise errors.invalid(f"Invalid artifact path: '{path}' is a directory")
            self._makedirs(conn, parent, path)
            temp = f"{parent.rstrip('/')}/{TEMP_PREFIX}{uuid.uuid4().hex}"
            try:
                _store(ftp, temp, stream)
                self._replace(conn, temp, full)
            except BaseException:
                try:
                    ftp.delete(temp)
                except Exception:
                    pass  # never made, or the connection is gone: the sweep removes it
                raise

    def _replace(self, conn: Connection, temp: str, full: str) -> None:
        try:
            conn.ftp.rename(temp, full)
            return
        except ftplib.error_perm as failure:
            found = self._entry(conn, full)
            if found is None or found.is_dir:
                raise failure from None
        # A server whose rename does not replace: the old file goes first.
        conn.ftp.delete(full)
        conn.ftp.rename(temp, full)

    def _mkdir(self, path: str) -> None:
        with self._session("mkdir", path) as conn:
            self._makedirs(conn, self._abs(path), path)

    def _delete(self, path: str) -> None:
        full = self._abs(path)
        with self._session("delete", path) as conn:
            if path and not _is_dir(conn.ftp, full):
                try:
                    conn.ftp.delete(full)
                except ftplib.error_perm as failure:
                    if self._entry(conn, full) is not None:
                        raise failure from None  # there, yet not deleted
                return
            self._remove_tree(conn, full, keep=path == "")

    def _remove_tree(self, conn: Connection, directory: str, keep: bool) -> None:
        ftp = conn.ftp
        entries = self._entries(conn, directory)
        if entries is None:
            return
        for entry in entries:
            full = f"{directory.rstrip('/')}/{entry.name}"
            if entry.is_dir:
                self._remove_tree(conn, full, keep=False)
            else:
                try:
                    ftp.delete(full)
                except ftplib.error_perm as failure:
                    if self._entry(conn, full) is not None:
                        raise failure from None
        if not keep:
            try:
                ftp.rmd(directory)
            except ftplib.error_perm as failure:
                if _is_dir(ftp, directory):
                    raise failure from None


def _store(ftp: ftplib.FTP, remote: str, stream: ReadableStream) -> None:
    """STOR from ``stream`` in chunks; a failing stream closes the transfer and is
    raised as :class:`_SourceFailed` once the server has answered."""
    conn = ftp.transfercmd(f"STOR {remote}")
    failed: BaseException | None = None
    try:
        while True:
            try:
                chunk = stream.read(CHUNK_SIZE)
            except Exception as exc:
                failed = exc
                break
            if not chunk:
                break
            conn.sendall(chunk)
        if failed is None and hasattr(conn, "unwrap"):
            conn.unwrap()
    finally:
        conn.close()
    if failed is not None:
        try:
            ftp.voidresp()
        except ftplib.Error:
            pass
        raise _SourceFailed(failed) from failed
    ftp.voidresp()


class _Reader(io.RawIOBase):
    """A ``RETR`` data connection. Read to the end, the server's final reply is taken
    and the control connection goes back to the pool; closed earlier, it is dropped."""

    def __init__(self, repo: FTPArtifactRepository, conn: Connection, data: socket.socket,
                 path: str) -> None:
        super().__init__()
        self._repo, self._conn, self._data, self._path = repo, conn, data, path
        self._eof = False
        self._released = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        if self._eof:
            return 0
        try:
            n = self._data.recv_into(buffer)
        except Exception as exc:
            self._finish(reuse=False)
            raise translate(exc, self._repo._uri_of(self._path), "read",
                            self._repo.target) from None
        if n == 0:
            self._eof = True
        return n

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            return self.readall()
        buffer = bytearray(size)
        view = memoryview(buffer)
        got = 0
        # Fill the buffer (the server reads whole chunks) unless the file ends.
        while got < size:
            n = self.readinto(view[got:])
            if n == 0:
                break
            got += n
        return bytes(view[:got])

    def _finish(self, reuse: bool) -> None:
        if self._released:
            return
        self._released = True
        try:
            if reuse and hasattr(self._data, "unwrap"):
                self._data.unwrap()
        except OSError:
            reuse = False
        try:
            self._data.close()
        except OSError:
            reuse = False
        if reuse:
            try:
                self._conn.ftp.voidresp()
            except (ftplib.Error, OSError, EOFError):
                reuse = False
        self._repo.pool.release(self._conn, reuse)

    def close(self) -> None:
        self._finish(reuse=self._eof)
        super().close()
