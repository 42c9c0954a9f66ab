"""WebHDFS: the NameNode's REST API (``/webhdfs/v1``), spoken with httpx.

Written against the Hadoop WebHDFS REST specification with httpx rather than through a
WebHDFS client library: the protocol is a handful of calls, httpx streams request and
response bodies both ways and shares a connection pool between threads, and the Python
WebHDFS clients are thinly maintained (HdfsCLI's last release is from 2023) or write in
buffered blocks (fsspec). ``CREATE`` and ``OPEN`` are the specification's two
steps: the NameNode answers ``307`` with a DataNode URL and the body goes to (or comes
from) there. Errors are the ``RemoteException`` JSON objects HDFS sends; listings use
``LISTSTATUS_BATCH`` pages (Hadoop 2.8+), falling back to ``LISTSTATUS``.

Authentication is Hadoop's simple (pseudo) authentication: ``user.name`` from the URI's
user, else ``HADOOP_USER_NAME``, else the local user. Kerberos (SPNEGO) is not spoken;
a delegation token in ``TRACKLOG_WEBHDFS_DELEGATION_TOKEN`` is sent instead of the user
name where the cluster hands them out.
"""

from __future__ import annotations

import getpass
import io
import os
import threading
from collections.abc import Iterator
from typing import Any, BinaryIO, cast
from urllib.parse import quote

import httpx

from tracklog.artifacts.base import CHUNK_SIZE, ReadableStream
from tracklog_artifacts_hdfs.filesystem import FileSystem, HDFSError, Kind, Status

DELEGATION_TOKEN = "TRACKLOG_WEBHDFS_DELEGATION_TOKEN"
DEFAULT_PORT = 9870

_KINDS = {
    "FileNotFoundException": Kind.NOT_FOUND,
    "AccessControlException": Kind.PERMISSION,
    "SecurityException": Kind.UNAUTHENTICATED,
    "AuthenticationException": Kind.UNAUTHENTICATED,
    "InvalidToken": Kind.UNAUTHENTICATED,
    "ParentNotDirectoryException": Kind.PARENT_IS_FILE,
    "FileAlreadyExistsException": Kind.EXISTS,
    "StandbyException": Kind.UNAVAILABLE,
    "RetriableException": Kind.UNAVAILABLE,
    "SafeModeException": Kind.UNAVAILABLE,
    "IllegalArgumentException": Kind.INVALID,
    "UnsupportedOperationException": Kind.INVALID,
}


def _one_line(text: object) -> str:
    return " ".join(str(text).split())[:300]


def _status(raw: dict[str, Any]) -> Status:
    return Status(
        name=raw.get("pathSuffix", ""),
        is_dir=raw.get("type") == "DIRECTORY",
        size=int(raw.get("length", 0)),
        mtime=int(raw.get("modificationTime", 0)) / 1000,
    )


class WebHDFS(FileSystem):
    """One NameNode's REST API; thread-safe (one httpx client, its connection pool)."""

    def __init__(self, host: str, port: int, user: str | None, scheme: str = "http") -> None:
        self.base = f"{scheme}://{host}:{port}/webhdfs/v1"
        self.where = f"{host}:{port}"
        token = os.environ.get(DELEGATION_TOKEN)
        self.auth: dict[str, str] = ({"delegation": token} if token else
                                     {"user.name": user or os.environ.get("HADOOP_USER_NAME")
                                      or getpass.getuser()})
        self.client = httpx.Client(timeout=httpx.Timeout(60, connect=10),
                                   limits=httpx.Limits(max_connections=64,
                                                       max_keepalive_connections=16))
        self._batch = True  # LISTSTATUS_BATCH until the server says it does not know it

    # -- requests ---------------------------------------------------------------------

    def _url(self, path: str) -> str:
        return self.base + quote(path, safe="/")

    def _call(self, method: str, path: str, op: str, **params: Any) -> httpx.Response:
        query = {"op": op, **self.auth, **{k: v for k, v in params.items() if v is not None}}
        try:
            response = self.client.request(method, self._url(path), params=query)
        except httpx.HTTPError as exc:
            raise self._transport_error(exc) from None
        self._check(response)
        return response

    def _transport_error(self, exc: httpx.HTTPError) -> HDFSError:
        if isinstance(exc, httpx.ConnectError):
            return HDFSError(Kind.UNAVAILABLE, f"cannot connect to {self.where}")
        if isinstance(exc, httpx.TimeoutException):
            return HDFSError(Kind.UNAVAILABLE, f"{self.where} did not answer in time")
        return HDFSError(Kind.UNAVAILABLE, f"{type(exc).__name__} talking to {self.where}")

    @staticmethod
    def _check(response: httpx.Response) -> None:
        if response.status_code < 400:
            return
        response.read()
        try:
            remote = response.json()["RemoteException"]
            name = remote.get("exception", "")
            message = _one_line(remote.get("message", ""))
        except (ValueError, KeyError, TypeError):
            name, message = "", f"HTTP {response.status_code}"
        kind = _KINDS.get(name)
        if kind is None:
            kind = {401: Kind.UNAUTHENTICATED, 403: Kind.PERMISSION,
                    404: Kind.NOT_FOUND, 503: Kind.UNAVAILABLE}.get(response.status_code,
                                                                      Kind.OTHER)
        raise HDFSError(kind, f"{name}: {message}" if name else message)

    def _redirect(self, method: str, path: str, op: str, **params: Any) -> str:
        """The DataNode URL of the first step of CREATE, APPEND or OPEN."""
        response = self._call(method, path, op, **params)
        location = response.headers.get("location")
        if response.status_code not in (307, 302, 303) or not location:
            raise HDFSError(Kind.OTHER, f"{op} got HTTP {response.status_code} without a "
                            "redirect to a DataNode")
        return location

    # -- the interface ----------------------------------------------------------------

    def status(self, path: str) -> Status | None:
        try:
            return _status(self._call("GET", path, "GETFILESTATUS").json()["FileStatus"])
        except HDFSError as exc:
            if exc.kind is Kind.NOT_FOUND:
                return None
            raise

    def list(self, path: str) -> Iterator[Status]:
        if self._batch:
            try:
                yield from self._list_batches(path)
                return
            except HDFSError as exc:
                if exc.kind is not Kind.INVALID or "LISTSTATUS_BATCH" not in exc.message:
                    raise
                self._batch = False  # Hadoop before 2.8
        body = self._call("GET", path, "LISTSTATUS").json()
        for raw in body["FileStatuses"]["FileStatus"]:
            yield _status(raw)

    def _list_batches(self, path: str) -> Iterator[Status]:
        after = None
        while True:
            body = self._call("GET", path, "LISTSTATUS_BATCH", startAfter=after).json()
            listing = body["DirectoryListing"]
            page = listing["partialListing"]["FileStatuses"]["FileStatus"]
            for raw in page:
                yield _status(raw)
            if not listing.get("remainingEntries") or not page:
                return
            after = page[-1]["pathSuffix"]

    def open(self, path: str) -> BinaryIO:
        location = self._redirect("GET", path, "OPEN")
        try:
            response = self.client.send(self.client.build_request("GET", location),
                                        stream=True)
        except httpx.HTTPError as exc:
            raise self._transport_error(exc) from None
        try:
            self._check(response)
        except BaseException:
            response.close()
            raise
        return cast(BinaryIO, _ResponseStream(response, self))  # an io.RawIOBase

    def create(self, path: str, stream: ReadableStream) -> None:
        location = self._redirect("PUT", path, "CREATE", overwrite="false")

        def body() -> Iterator[bytes]:
            while chunk := stream.read(CHUNK_SIZE):
                yield chunk

        try:
            response = self.client.put(location, content=body(),
                                       headers={"content-type": "application/octet-stream"})
        except httpx.HTTPError as exc:
            raise self._transport_error(exc) from None
        self._check(response)

    def mkdirs(self, path: str) -> None:
        if not self._call("PUT", path, "MKDIRS").json().get("boolean"):
            raise HDFSError(Kind.OTHER, f"MKDIRS {path} returned false")

    def rename(self, src: str, dst: str) -> bool:
        return bool(self._call("PUT", src, "RENAME", destination=dst).json().get("boolean"))

    def delete(self, path: str, recursive: bool) -> bool:
        return bool(self._call("DELETE", path, "DELETE",
                               recursive="true" if recursive else "false").json().get("boolean"))

    def close(self) -> None:
        self.client.close()


class _ResponseStream(io.RawIOBase):
    """A streamed DataNode response as a binary file."""

    def __init__(self, response: httpx.Response, fs: WebHDFS) -> None:
        super().__init__()
        self._response = response
        self._chunks = response.iter_raw(CHUNK_SIZE)
        self._fs = fs
        self._buffer = b""

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            return b"".join([self._take(), *self._rest()])
        while not self._buffer:
            try:
                self._buffer = next(self._chunks)
            except StopIteration:
                return b""
            except httpx.HTTPError as exc:
                raise self._fs._transport_error(exc) from None
        out, self._buffer = self._buffer[:size], self._buffer[size:]
        return out

    def _take(self) -> bytes:
        out, self._buffer = self._buffer, b""
        return out

    def _rest(self) -> Iterator[bytes]:
        try:
            yield from self._chunks
        except httpx.HTTPError as exc:
            raise self._fs._transport_error(exc) from None

    def readinto(self, buffer) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        self._response.close()
        super().close()


_clients: dict[tuple[object, ...], WebHDFS] = {}
_clients_lock = threading.Lock()


def shared(host: str, port: int, user: str | None, scheme: str = "http") -> WebHDFS:
    """One client per NameNode, user and token (repositories are made per request)."""
    key = (host, port, user, scheme, os.environ.get(DELEGATION_TOKEN, ""),
           os.environ.get("HADOOP_USER_NAME", ""))
    with _clients_lock:
        fs = _clients.get(key)
        if fs is None:
            if len(_clients) >= 16:
                _clients.pop(next(iter(_clients))).close()
            fs = _clients[key] = WebHDFS(host, port, user, scheme)
        return fs
