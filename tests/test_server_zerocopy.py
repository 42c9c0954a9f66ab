"""Zero-copy file responses: on plain TCP, GET requests are offered the ASGI extension
``http.response.zerocopysend`` and a file's bytes go from the file to the socket. Served
by a real uvicorn server with tracklog's protocol; read back by real clients, slow ones
and ones that leave halfway included."""

from __future__ import annotations

import contextlib
import io
import logging
import os
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from tracklog.server.protocol import ZEROCOPY, TracklogHttpProtocol
from tracklog.server.streams import StreamResponse
from tracklog.testing.tls import self_signed

SIZE = 24 * 1024 * 1024 + 17  # several times what a loopback socket buffers
SMALL = 30_000  # less than the transport buffers before it pauses the sender


class App:
    """Answers GET /file (the whole file, or ?offset=&count= of it, after its first
    ?head= bytes and before ?tail= bytes, both sent the ordinary way), GET /stream (the
    same file as a stream that is no file), GET /whole (its bytes in one message), GET
    /small (its first SMALL bytes) and POST /echo; records which requests were offered
    the extension."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offered: dict[str, bool] = {}
        self.wrapper: Wrapper | None = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        offered = ZEROCOPY in scope.get("extensions", {})
        self.offered[f"{scope['method']} {scope['path']}"] = offered
        query = dict(p.split("=") for p in scope["query_string"].decode().split("&") if p)
        if scope["path"] == "/file":
            with open(self.path, "rb") as f:
                offset = int(query.get("offset", 0))
                count = int(query.get("count", SIZE - offset))
                tail = b"t" * int(query.get("tail", 0))
                head = self.path.read_bytes()[:int(query.get("head", 0))]
                await send({"type": "http.response.start", "status": 200, "headers": [
                    (b"content-length", str(len(head) + count + len(tail)).encode())]})
                if head:
                    await send({"type": "http.response.body", "body": head,
                                "more_body": True})
                await send({"type": ZEROCOPY, "file": f, "offset": offset, "count": count,
                            "more_body": bool(tail)})
                if tail:
                    await send({"type": "http.response.body", "body": tail})
        elif scope["path"] in ("/whole", "/small"):
            data = self.path.read_bytes()[:None if scope["path"] == "/whole" else SMALL]
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-length", str(len(data)).encode())]})
            await send({"type": "http.response.body", "body": data})
        elif scope["path"] == "/download":  # as the artifact routes answer
            stream = open(self.path, "rb")  # noqa: SIM115 - the response closes it
            await StreamResponse(stream, None, {})(scope, receive, send)
        elif scope["path"] == "/stream":
            data = self.path.read_bytes()
            await StreamResponse(io.BytesIO(data), len(data), {})(scope, receive, send)
        else:
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-length", b"2")]})
            await send({"type": "http.response.body", "body": b"ok"})


class Wrapper:
    """A plugin's middleware that records the types of the messages the app sends;
    with ``opt_out`` it first removes the zero-copy extension from the scope."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.opt_out = False
        self.seen: list[str] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if self.opt_out and scope["type"] == "http":
            scope["extensions"] = {k: v for k, v in scope.get("extensions", {}).items()
                                   if k != ZEROCOPY}
        self.seen = []

        async def recorded(message: Any) -> None:
            self.seen.append(message["type"])
            await send(message)

        await self.app(scope, receive, recorded)


@contextlib.contextmanager
def _serving(folder: Path, **tls: Any) -> Iterator[tuple[str, App, bytes]]:
    """The test app behind tracklog's protocol in a uvicorn server in a thread; with
    ``ssl_keyfile`` and ``ssl_certfile``, over TLS."""
    path = folder / "blob.bin"
    data = os.urandom(SIZE)
    path.write_bytes(data)
    app = App(path)
    wrapper = Wrapper(app)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    # No logging configuration of its own: its errors reach the tests' log capture.
    config = uvicorn.Config(wrapper, http=TracklogHttpProtocol, loop="uvloop", lifespan="off",
                            log_config=None, access_log=False, **tls)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    assert server.started
    app.wrapper = wrapper
    scheme = "https" if tls else "http"
    try:
        yield f"{scheme}://127.0.0.1:{sock.getsockname()[1]}", app, data
    finally:
        server.should_exit = True
        thread.join(10)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, App, bytes]]:
    with _serving(tmp_path_factory.mktemp("zerocopy")) as serving:
        yield serving


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_a_file_arrives_whole_at_a_slow_reader(served):
    """The reader pauses while the first megabytes arrive: the socket fills, the server
    waits for it to drain and goes on where it stopped."""
    url, app, data = served
    got = bytearray()
    with httpx.stream("GET", f"{url}/file", timeout=60) as r:
        assert int(r.headers["content-length"]) == SIZE
        for piece in r.iter_bytes(1024 * 1024):
            got += piece
            if len(got) < 6 * 1024 * 1024:
                time.sleep(0.05)
    assert bytes(got) == data
    assert app.offered["GET /file"] is True


def test_only_gets_are_offered_it(served):
    url, app, _ = served
    assert httpx.post(f"{url}/echo", content=b"x").text == "ok"
    assert httpx.head(f"{url}/echo").status_code == 200
    assert app.offered["POST /echo"] is False
    assert app.offered["HEAD /echo"] is False


def test_part_of_a_file_then_ordinary_body_on_one_connection(served):
    """A slice of the file followed by bytes sent the ordinary way, twice on one
    keep-alive connection: offsets, order and lengths hold."""
    url, _, data = served
    with httpx.Client(base_url=url, timeout=60) as http:
        for offset, count in ((5, 3 * 1024 * 1024), (SIZE - 1000, 1000)):
            r = http.get("/file", params={"offset": offset, "count": count, "tail": 7})
            assert r.content == data[offset:offset + count] + b"t" * 7


def test_a_stream_that_is_no_file_is_sent_in_chunks(served):
    url, app, data = served
    assert httpx.get(f"{url}/stream", timeout=60).content == data
    assert app.offered["GET /stream"] is True  # offered, and declined for lack of a file


def test_a_reader_that_leaves_halfway_leaves_nothing_open(served, caplog):
    """Clients that close after the first piece: the server goes on serving without an
    error, and every descriptor it opened for them (sockets, the duplicates it sends
    through) is closed."""
    url, _, data = served
    caplog.set_level(logging.WARNING)
    before = _open_fds()
    for _ in range(5):
        with httpx.stream("GET", f"{url}/file", timeout=60) as r:
            next(r.iter_bytes(64 * 1024))
    deadline = time.monotonic() + 10
    while _open_fds() > before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _open_fds() <= before
    assert httpx.get(f"{url}/file", timeout=60).content == data
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []


def test_pipelined_answers_keep_their_order(served):
    """Three pipelined requests on one connection, read only after a pause: a large
    answer, a small one and a file, each whole and in its place."""
    url, _, data = served
    port = int(url.rsplit(":", 1)[1])
    count = 1_000_000
    with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
        sock.sendall(b"GET /whole HTTP/1.1\r\nHost: x\r\n\r\n"
                     b"GET /small HTTP/1.1\r\nHost: x\r\n\r\n"
                     b"GET /file?offset=3&count=%d HTTP/1.1\r\nHost: x\r\n\r\n" % count)
        time.sleep(1.0)
        received = bytearray()
        while len(received) < SIZE + SMALL + count + 300:
            piece = sock.recv(1024 * 1024)
            if not piece:
                break
            received += piece
            if received.endswith(data[3:3 + count]):
                break
    bodies = []
    rest = bytes(received)
    for size in (SIZE, SMALL, count):
        head, rest = rest.split(b"\r\n\r\n", 1)
        assert b" 200 " in head
        bodies.append(rest[:size])
        rest = rest[size:]
    assert bodies == [data, data[:SMALL], data[3:3 + count]]


def test_a_file_behind_bytes_still_queued_keeps_its_place(served):
    """The file follows bytes of the same answer sent the ordinary way, most of which
    still wait in the transport's buffer (the reader is slow): it goes out through the
    transport after them, not straight to the socket ahead of them."""
    url, _, data = served
    got = bytearray()
    with httpx.stream("GET", f"{url}/file", params={"head": SIZE, "offset": 5,
                                                     "count": 2_000_000}, timeout=60) as r:
        for piece in r.iter_bytes(1024 * 1024):
            got += piece
            if len(got) < 2 * 1024 * 1024:
                time.sleep(0.1)
    assert bytes(got) == data + data[5:2_000_005]


def test_a_middleware_sees_the_file_message_or_opts_out(served):
    """A download answered as the artifact routes answer it: a wrapper passing messages
    through sees the file go as one zero-copy message; one that removes the extension
    from the scope gets the same bytes in ordinary body messages."""
    url, app, data = served
    wrapper = app.wrapper
    try:
        assert httpx.get(f"{url}/download", timeout=60).content == data
        assert wrapper.seen == ["http.response.start", ZEROCOPY]
        wrapper.opt_out = True
        assert httpx.get(f"{url}/download", timeout=60).content == data
        assert ZEROCOPY not in wrapper.seen
        assert wrapper.seen[0] == "http.response.start"
        assert set(wrapper.seen[1:]) == {"http.response.body"}
    finally:
        wrapper.opt_out = False


def test_over_tls_a_download_goes_in_ordinary_messages(tmp_path):
    """The kernel cannot send a file through TLS: the extension is not offered, and the
    artifact routes' answer arrives whole in ordinary body messages."""
    cert, key = self_signed(tmp_path)
    with _serving(tmp_path, ssl_certfile=str(cert), ssl_keyfile=str(key)) as (url, app, data):
        with httpx.Client(verify=ssl.create_default_context(cafile=str(cert)),
                          timeout=60) as http:
            assert http.get(f"{url}/download").content == data
        assert app.offered["GET /download"] is False
        assert app.wrapper is not None
        assert set(app.wrapper.seen) == {"http.response.start", "http.response.body"}
