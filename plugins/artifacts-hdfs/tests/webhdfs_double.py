"""TEST DOUBLE: a WebHDFS endpoint over a local directory, for tests only.

No NameNode can run where these tests run, so this stands in for one. It follows the
Hadoop WebHDFS REST API (``/webhdfs/v1/<path>?op=…``) as far as the plugin's calls go,
and as a real cluster answers them:

- a NameNode and a DataNode on two ports: ``CREATE`` (PUT), ``APPEND`` (POST) and
  ``OPEN`` (GET) answer ``307 Temporary Redirect`` at the NameNode with a DataNode URL
  (carrying ``namenoderpcaddress``), where the body is sent or read; ``CREATE`` answers
  ``201 Created``;
- ``GETFILESTATUS``, ``LISTSTATUS``, ``LISTSTATUS_BATCH`` (``startAfter``, pages of
  ``page_size`` entries, ``remainingEntries``), ``MKDIRS``, ``RENAME`` (``false`` when
  the destination exists, moved inside a destination directory), ``DELETE``
  (``recursive``), ``GETHOMEDIRECTORY``;
- errors as ``{"RemoteException": {"exception", "javaClassName", "message"}}`` with the
  status Hadoop's ``ExceptionHandler`` gives: FileNotFoundException 404,
  IllegalArgumentException 400, AccessControlException 403, and other IOExceptions
  (FileAlreadyExistsException, ParentNotDirectoryException,
  PathIsNotEmptyDirectoryException) 403;
- simple authentication: ``user.name`` (``dr.who`` without one); directories listed in
  ``owners`` are writable only by their owner, like HDFS permissions ``rwxr-xr-x``;
- request bodies with ``Content-Length`` or ``Transfer-Encoding: chunked``.

``batch=False`` plays a cluster older than Hadoop 2.8, which does not know
``LISTSTATUS_BATCH``.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, quote, unquote, urlencode, urlsplit

PREFIX = "/webhdfs/v1"
JAVA = {
    "FileNotFoundException": ("java.io.FileNotFoundException", 404),
    "IllegalArgumentException": ("java.lang.IllegalArgumentException", 400),
    "AccessControlException": ("org.apache.hadoop.security.AccessControlException", 403),
    "FileAlreadyExistsException": ("org.apache.hadoop.fs.FileAlreadyExistsException", 403),
    "ParentNotDirectoryException": ("org.apache.hadoop.fs.ParentNotDirectoryException", 403),
    "PathIsNotEmptyDirectoryException": (
        "org.apache.hadoop.fs.PathIsNotEmptyDirectoryException", 403),
}


class RemoteError(Exception):
    def __init__(self, exception: str, message: str) -> None:
        super().__init__(message)
        self.exception, self.message = exception, message


class WebHDFSDouble:
    def __init__(self, root: Path, page_size: int = 1000, batch: bool = True,
                 owners: dict[str, str] | None = None) -> None:
        self.root = root
        self.page_size = page_size
        self.batch = batch
        self.owners = owners or {}
        self.requests: list[tuple[str, str, str]] = []  # (role, method, op)
        self.namenode = ThreadingHTTPServer(("127.0.0.1", 0), self._handler("namenode"))
        self.datanode = ThreadingHTTPServer(("127.0.0.1", 0), self._handler("datanode"))
        self.namenode.daemon_threads = self.datanode.daemon_threads = True
        self.port = self.namenode.server_address[1]
        self._threads = [threading.Thread(target=s.serve_forever, daemon=True)
                         for s in (self.namenode, self.datanode)]

    def start(self) -> WebHDFSDouble:
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        for server in (self.namenode, self.datanode):
            server.shutdown()
            server.server_close()

    # -- the file system ----------------------------------------------------------------

    def local(self, path: str) -> Path:
        parts = [p for p in path.split("/") if p]
        if any(p in (".", "..") for p in parts):
            raise RemoteError("IllegalArgumentException", f"Invalid path name {path}")
        return self.root.joinpath(*parts)

    @staticmethod
    def status(local: Path, suffix: str = "") -> dict:
        st = local.stat()
        is_dir = local.is_dir()
        return {"accessTime": int(st.st_atime * 1000), "blockSize": 134217728,
                "childrenNum": len(os.listdir(local)) if is_dir else 0, "fileId": st.st_ino,
                "group": "supergroup", "length": 0 if is_dir else st.st_size,
                "modificationTime": int(st.st_mtime * 1000), "owner": "hdfs",
                "pathSuffix": suffix, "permission": "755" if is_dir else "644",
                "replication": 0 if is_dir else 3, "storagePolicy": 0,
                "type": "DIRECTORY" if is_dir else "FILE"}

    def check_write(self, path: str, user: str) -> None:
        for prefix, owner in self.owners.items():
            if (path == prefix or path.startswith(prefix.rstrip("/") + "/")) and user != owner:
                raise RemoteError(
                    "AccessControlException",
                    f"Permission denied: user={user}, access=WRITE, "
                    f'inode="{prefix}":{owner}:supergroup:drwxr-xr-x')

    def mkdirs(self, path: str) -> None:
        local = self.local(path)
        current = self.root
        for part in local.relative_to(self.root).parts:
            current = current / part
            if current.exists() and not current.is_dir():
                raise RemoteError("FileAlreadyExistsException",
                                  f"Path is not a directory: /{current.relative_to(self.root)}")
        local.mkdir(parents=True, exist_ok=True)

    def _handler(self, role: str):
        double = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self):
                super().setup()
                # Headers and body go in separate writes: without this, Nagle's algorithm
                # and delayed ACKs hold every answer back by ~40 ms.
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def log_message(self, *args):  # quiet
                pass

            def _send_json(self, status: int, body: dict, headers: dict | None = None):
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            def _error(self, err: RemoteError):
                java, status = JAVA.get(err.exception, ("java.io.IOException", 403))
                self._send_json(status, {"RemoteException": {
                    "exception": err.exception, "javaClassName": java,
                    "message": err.message}})

            def _body_chunks(self):
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    while True:
                        size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                        if size == 0:
                            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                                pass
                            return
                        left = size
                        while left:
                            chunk = self.rfile.read(min(left, 1 << 20))
                            if not chunk:
                                return
                            left -= len(chunk)
                            yield chunk
                        self.rfile.readline()
                else:
                    left = int(self.headers.get("Content-Length") or 0)
                    while left:
                        chunk = self.rfile.read(min(left, 1 << 20))
                        if not chunk:
                            return
                        left -= len(chunk)
                        yield chunk

            def _handle(self, method: str):
                url = urlsplit(self.path)
                params = {k: v[0] for k, v in parse_qs(url.query).items()}
                op = params.get("op", "").upper()
                double.requests.append((role, method, op))
                body = self._body_chunks()
                try:
                    if not url.path.startswith(PREFIX):
                        raise RemoteError("IllegalArgumentException", f"Bad path {url.path}")
                    path = unquote(url.path[len(PREFIX):]) or "/"
                    user = params.get("user.name", "dr.who")
                    if role == "datanode":
                        self._datanode(method, op, path, params, user, body)
                    else:
                        self._namenode(method, op, path, params, user)
                except RemoteError as err:
                    for _ in body:  # the request body is not wanted: drain it
                        pass
                    self._error(err)

            def do_GET(self):
                self._handle("GET")

            def do_PUT(self):
                self._handle("PUT")

            def do_POST(self):
                self._handle("POST")

            def do_DELETE(self):
                self._handle("DELETE")

            def _redirect(self, path: str, params: dict):
                port = double.datanode.server_address[1]
                query = urlencode({**params, "namenoderpcaddress": f"127.0.0.1:{double.port}"})
                location = f"http://127.0.0.1:{port}{PREFIX}{quote(path)}?{query}"
                self.send_response(307)
                self.send_header("Location", location)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def _namenode(self, method, op, path, params, user):
                local = double.local(path)
                if method == "GET" and op == "GETFILESTATUS":
                    if not local.exists():
                        raise RemoteError("FileNotFoundException", f"File does not exist: {path}")
                    return self._send_json(200, {"FileStatus": double.status(local)})
                if method == "GET" and op == "GETHOMEDIRECTORY":
                    return self._send_json(200, {"Path": f"/user/{user}"})
                if method == "GET" and (op == "LISTSTATUS" or (op == "LISTSTATUS_BATCH"
                                                               and double.batch)):
                    if not local.exists():
                        raise RemoteError("FileNotFoundException", f"File {path} does not exist.")
                    if not local.is_dir():
                        entries = [double.status(local)]
                    else:
                        names = sorted(os.listdir(local), key=lambda n: n.encode())
                        entries = [double.status(local / n, n) for n in names]
                    if op == "LISTSTATUS":
                        return self._send_json(200, {"FileStatuses": {"FileStatus": entries}})
                    after = params.get("startAfter")
                    if after is not None:
                        entries = [e for e in entries
                                   if e["pathSuffix"].encode() > after.encode()]
                    page = entries[: double.page_size]
                    return self._send_json(200, {"DirectoryListing": {
                        "partialListing": {"FileStatuses": {"FileStatus": page}},
                        "remainingEntries": len(entries) - len(page)}})
                if method == "GET" and op == "OPEN":
                    if not local.is_file():
                        raise RemoteError("FileNotFoundException", f"File does not exist: {path}"
                                          if not local.exists() else f"Path is not a file: {path}")
                    return self._redirect(path, params)
                if method == "PUT" and op == "CREATE":
                    double.check_write(path, user)
                    return self._redirect(path, params)
                if method == "POST" and op == "APPEND":
                    double.check_write(path, user)
                    if not local.is_file():
                        raise RemoteError("FileNotFoundException",
                                          f"failed to append to non-existent file {path}")
                    return self._redirect(path, params)
                if method == "PUT" and op == "MKDIRS":
                    double.check_write(path, user)
                    double.mkdirs(path)
                    return self._send_json(200, {"boolean": True})
                if method == "PUT" and op == "RENAME":
                    destination = params.get("destination", "")
                    double.check_write(path, user)
                    double.check_write(destination, user)
                    target = double.local(destination)
                    if target.is_dir():
                        target = target / local.name
                    ok = (local.exists() and not target.exists() and target.parent.is_dir()
                          and local != double.root)
                    if ok:
                        os.rename(local, target)
                    return self._send_json(200, {"boolean": ok})
                if method == "DELETE" and op == "DELETE":
                    double.check_write(path, user)
                    if not local.exists() or local == double.root:
                        return self._send_json(200, {"boolean": False})
                    if local.is_dir():
                        if os.listdir(local) and params.get("recursive") != "true":
                            raise RemoteError("PathIsNotEmptyDirectoryException",
                                              f"`{path} is non empty': Directory is not empty")
                        shutil.rmtree(local)
                    else:
                        local.unlink()
                    return self._send_json(200, {"boolean": True})
                raise RemoteError("IllegalArgumentException",
                                  f'Invalid value for webhdfs parameter "op": No enum constant '
                                  f"org.apache.hadoop.hdfs.web.resources.GetOpParam.Op.{op}")

            def _datanode(self, method, op, path, params, user, body):
                if "namenoderpcaddress" not in params:
                    raise RemoteError("IllegalArgumentException",
                                      "namenoderpcaddress is not specified.")
                local = double.local(path)
                if method == "PUT" and op == "CREATE":
                    if local.is_dir():
                        raise RemoteError("FileAlreadyExistsException",
                                          f"{path} already exists as a directory")
                    if local.exists() and params.get("overwrite", "false") != "true":
                        raise RemoteError("FileAlreadyExistsException",
                                          f"{path} for client 127.0.0.1 already exists")
                    double.mkdirs(str(Path(path).parent))
                    with open(local, "wb") as out:
                        for chunk in body:
                            out.write(chunk)
                    self.send_response(201)
                    self.send_header("Location", f"hdfs://127.0.0.1:{double.port}{path}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return None
                if method == "POST" and op == "APPEND":
                    with open(local, "ab") as out:
                        for chunk in body:
                            out.write(chunk)
                    self.send_response(200)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return None
                if method == "GET" and op == "OPEN":
                    offset = int(params.get("offset", 0))
                    size = local.stat().st_size
                    length = int(params.get("length", size - offset))
                    length = max(0, min(length, size - offset))
                    self.send_response(200)
                    self.send_header("Content-Type", "application/octet-stream")
                    self.send_header("Content-Length", str(length))
                    self.end_headers()
                    with open(local, "rb") as f:
                        f.seek(offset)
                        while length:
                            chunk = f.read(min(length, 1 << 20))
                            if not chunk:
                                break
                            self.wfile.write(chunk)
                            length -= len(chunk)
                    return None
                raise RemoteError("IllegalArgumentException", f"Invalid operation {op}")

        return Handler
