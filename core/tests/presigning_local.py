"""A local repository with presigned multipart uploads and downloads, for the kit's own
tests: a small HTTP server in a thread serves HMAC-signed, expiring URLs, so every kit
test about presigned URLs runs for real against it (expiry included)."""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import shutil
import tempfile
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, quote, urlparse

from tracklog import errors
from tracklog.artifacts import (
    MultipartUploadRepository,
    PartCredential,
    PresignedDownloadRepository,
)
from tracklog.artifacts.local import LocalArtifactRepository

_KEY = secrets.token_bytes(32)
_server: ThreadingHTTPServer | None = None
_lock = threading.Lock()


def _signature(method: str, file: str, expires: int) -> str:
    return hmac.new(_KEY, f"{method}\n{file}\n{expires}".encode(), hashlib.sha256).hexdigest()


class _Handler(BaseHTTPRequestHandler):
    def _checked_file(self, method: str) -> str | None:
        query = parse_qs(urlparse(self.path).query)
        file, expires, sig = (query.get(k, [""])[0] for k in ("file", "expires", "sig"))
        if not hmac.compare_digest(sig, _signature(method, file, int(expires or 0))):
            self.send_error(403, "bad signature")
            return None
        if time.time() > int(expires):
            self.send_error(403, "expired")
            return None
        return file

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        file = self._checked_file("GET")
        if file is None:
            return
        with open(file, "rb") as f:
            data = f.read()
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_PUT(self) -> None:  # noqa: N802
        file = self._checked_file("PUT")
        if file is None:
            return
        if not os.path.isdir(os.path.dirname(file)):
            self.send_error(404, "no such upload")
            return
        data = self.rfile.read(int(self.headers["Content-Length"]))
        with open(file, "wb") as f:
            f.write(data)
        self.send_response(200)
        self.send_header("ETag", f'"{hashlib.md5(data).hexdigest()}"')
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


def _base_url() -> str:
    global _server
    with _lock:
        if _server is None:
            _server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
            _server.daemon_threads = True
            threading.Thread(target=_server.serve_forever, daemon=True).start()
        return f"http://127.0.0.1:{_server.server_address[1]}"


def _url(method: str, file: str, lifetime: int) -> str:
    expires = int(time.time()) + lifetime
    sig = _signature(method, file, expires)
    return f"{_base_url()}/?file={quote(file)}&expires={expires}&sig={sig}"


class PresigningLocalRepository(
    LocalArtifactRepository, MultipartUploadRepository, PresignedDownloadRepository
):
    """Parts are staged outside the root, so an upload in flight is never listed."""

    def __init__(self, artifact_uri: str) -> None:
        super().__init__(artifact_uri)
        self.staging = os.path.join(tempfile.gettempdir(), "tracklog-kit-uploads")
        os.makedirs(self.staging, exist_ok=True)

    def _parts_dir(self, upload_id: str) -> str:
        if not upload_id.isalnum():
            raise errors.invalid(f"Invalid upload id: {upload_id!r}")
        return os.path.join(self.staging, upload_id)

    def create_multipart_upload(self, path, num_parts):
        upload_id = uuid.uuid4().hex
        os.makedirs(self._parts_dir(upload_id))
        return upload_id, [
            PartCredential(n, _url("PUT", os.path.join(self._parts_dir(upload_id), str(n)),
                                   3600), {})
            for n in range(1, num_parts + 1)
        ]

    def complete_multipart_upload(self, path, upload_id, parts):
        folder = self._parts_dir(upload_id)
        if not os.path.isdir(folder):
            raise errors.not_found(f"No such upload: {upload_id}")
        files = [os.path.join(folder, str(p.part_number))
                 for p in sorted(parts, key=lambda p: p.part_number)]
        with tempfile.TemporaryFile() as joined:
            for name in files:
                with open(name, "rb") as part:
                    shutil.copyfileobj(part, joined)
            joined.seek(0)
            self.write_artifact(path, joined)
        shutil.rmtree(folder)

    def abort_multipart_upload(self, path, upload_id):
        shutil.rmtree(self._parts_dir(upload_id), ignore_errors=True)

    def presigned_download_url(self, path):
        info = self.file_info(path)
        if info is None or info.is_dir:
            raise errors.not_found(f"No such artifact: '{path}'")
        return _url("GET", self._abs(info.path), self.presigned_url_lifetime), {}, info.file_size
