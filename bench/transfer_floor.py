"""The floor of an artifact transfer through the MLflow client: the same upload and
download, made by the client's own artifact repository, against a server that only
moves the bytes between the socket and a file (asyncio, no HTTP framework, nothing
else). Whatever tracklog's transfer takes beyond this floor is tracklog's own time.

``bench/server_bench.py`` runs it beside tracklog's transfers; on its own::

    .venv/bin/python bench/transfer_floor.py --mb 200
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

PREFIX = "/api/2.0/mlflow-artifacts/artifacts"
PIECE = 1024 * 1024


class FloorServer:
    """A keep-alive HTTP/1.1 server in a process of its own (in this one it would
    contend with the client for the GIL): PUT writes the body to a file as it arrives,
    a listing answers ``{}`` (a file, not a directory), GET of a file sends a file of
    ``size`` bytes, anything else 404."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.port = 0
        self.process: subprocess.Popen[str] | None = None

    def __enter__(self) -> FloorServer:
        self.directory = tempfile.mkdtemp(prefix="tracklog-floor-server-")
        self.process = subprocess.Popen(
            [sys.executable, __file__, "--serve", str(self.size), "--dir", self.directory],
            stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
        assert self.process.stdout is not None
        self.port = int(self.process.stdout.readline())
        return self

    def __exit__(self, *_exc: object) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(10)
            shutil.rmtree(self.directory, ignore_errors=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def serve(size: int, directory: str) -> None:
    """Serve until terminated; the port goes to stdout."""
    stored = os.path.join(directory, "stored.bin")
    with open(stored, "wb") as f:
        for _ in range(size // PIECE):
            f.write(os.urandom(PIECE))
        f.write(os.urandom(size % PIECE))
    loop = asyncio.new_event_loop()
    server = loop.run_until_complete(
        loop.create_server(lambda: _Connection(directory), "127.0.0.1", 0))
    print(server.sockets[0].getsockname()[1], flush=True)
    loop.run_forever()


class _Connection(asyncio.Protocol):
    def __init__(self, directory: str) -> None:
        self.directory = directory
        self.out: BinaryIO | None = None
        self.transport: asyncio.Transport
        self.head = bytearray()
        self.left = -1  # body bytes still to come; -1 while reading the head
        self.request = ("", "")
        self.sending: BinaryIO | None = None
        self.paused = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        while data:
            if self.left < 0:
                self.head += data
                end = self.head.find(b"\r\n\r\n")
                if end < 0:
                    return
                data = bytes(self.head[end + 4:])
                lines = self.head[:end].decode("latin-1").split("\r\n")
                self.head = bytearray()
                method, target, _ = lines[0].split(" ", 2)
                self.request = (method, target.split("?", 1)[0])
                self.left = 0
                for line in lines[1:]:
                    name, _, value = line.partition(":")
                    if name.strip().lower() == "content-length":
                        self.left = int(value)
                if method == "PUT":
                    self.out = open(os.path.join(self.directory, "upload.bin"), "wb")
            take = min(len(data), self.left)
            self.left -= take
            if self.out is not None:
                self.out.write(data if take == len(data) else data[:take])
            data = data[take:]
            if self.left == 0:
                self.left = -1
                if self.out is not None:
                    self.out.close()
                    self.out = None
                self.answer(*self.request)

    def answer(self, method: str, path: str) -> None:
        if method == "PUT" and path.startswith(PREFIX + "/") or \
                method == "GET" and path == PREFIX:
            self.transport.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                                 b"Content-Length: 2\r\n\r\n{}")
        elif method == "GET" and path.startswith(PREFIX + "/"):
            stored = os.path.join(self.directory, "stored.bin")
            self.transport.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream"
                                 b"\r\nContent-Length: %d\r\n\r\n" % os.path.getsize(stored))
            self.sending = open(stored, "rb")
            self.send_more()
        else:
            self.transport.write(b"HTTP/1.1 404 Not Found\r\nContent-Type: application/json"
                                 b"\r\nContent-Length: 2\r\n\r\n{}")

    def send_more(self) -> None:
        while self.sending is not None and not self.paused:
            piece = self.sending.read(PIECE)
            if not piece:
                self.sending.close()
                self.sending = None
                return
            self.transport.write(piece)

    def pause_writing(self) -> None:
        self.paused = True

    def resume_writing(self) -> None:
        self.paused = False
        self.send_more()


def _median(fn: Callable[[], None], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def measure(size_mb: int, tmp: Path, repeat: int = 3) -> tuple[float, float]:
    """Median seconds of the client's upload and download of ``size_mb`` MB against the
    floor server."""
    from mlflow.store.artifact.http_artifact_repo import HttpArtifactRepository

    size = size_mb * 1024 * 1024
    src = tmp / "floor" / "payload.bin"
    src.parent.mkdir(parents=True, exist_ok=True)
    with open(src, "wb") as f:
        f.write(os.urandom(size))
    dst = tmp / "floor-down"
    try:
        with FloorServer(size) as server:
            repo = HttpArtifactRepository(f"{server.url}{PREFIX}/floor")
            up = _median(lambda: repo.log_artifact(str(src), "blob"), repeat)
            got: list[str] = []

            def download() -> None:
                shutil.rmtree(dst, ignore_errors=True)
                dst.mkdir()
                got.append(repo.download_artifacts("blob/payload.bin", str(dst)))

            down = _median(download, repeat)
        assert os.path.getsize(got[-1]) == size
        return up, down
    finally:
        shutil.rmtree(src.parent, ignore_errors=True)
        shutil.rmtree(dst, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mb", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--dir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve is not None:
        serve(args.serve, args.dir)
        return
    tmp = Path(tempfile.mkdtemp(prefix="tracklog-floor-"))
    try:
        up, down = measure(args.mb, tmp, args.repeat)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"floor: {args.mb} MB upload {up * 1000:.1f} ms, download {down * 1000:.1f} ms "
          f"(median of {args.repeat})")


if __name__ == "__main__":
    main()
