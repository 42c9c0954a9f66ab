"""Slow, idle and oversized requests on a real server: they never starve the JSON routes,
idle ones are cut off with 408 leaving nothing behind, oversized headers get 431."""

from __future__ import annotations

import socket
import time
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from tests.conftest import read_until_closed

PROXY = "/api/2.0/mlflow-artifacts/artifacts"
CHUNK = 1024 * 1024
MAX_HEADER = 64 * 1024  # the documented default of --max-header-size


def _port(url: str) -> int:
    return int(url.rsplit(":", 1)[1].split("/", 1)[0])


def _open(url: str, head: str) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", _port(url)), timeout=30)
    s.sendall(head.encode())
    return s


def _put_head(url: str, path: str, length: int) -> str:
    return (f"PUT {PROXY}/{path} HTTP/1.1\r\nHost: 127.0.0.1:{_port(url)}\r\n"
            f"Content-Type: application/octet-stream\r\nContent-Length: {length}\r\n\r\n")


def _response(s: socket.socket) -> tuple[int, bytes]:
    """Status and body of the answer; the server must close the connection after it."""
    head, _, body = read_until_closed(s).partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


def _files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def test_slow_uploads_do_not_starve_json_routes(tmp_path, launch):
    """More stalled uploads than the worker thread pool (40) — trickling ones that never
    complete a chunk, and ones that sent a chunk and then stalled — and a JSON route still
    answers at once."""
    srv = launch(tmp_path)
    try:
        _stall_uploads_and_query(srv)
        # The clients left: every partial upload is discarded.
        deadline = time.monotonic() + 20
        while _files(srv.artifacts) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _files(srv.artifacts) == []
    finally:
        srv.stop()


def _stall_uploads_and_query(srv) -> None:
    sockets = []
    try:
        for i in range(45):
            s = _open(srv.url, _put_head(srv.url, f"slow/trickle-{i}.bin", 10 * CHUNK))
            s.sendall(b"x")
            sockets.append(s)
        for i in range(45):
            s = _open(srv.url, _put_head(srv.url, f"slow/stalled-{i}.bin", 10 * CHUNK))
            s.sendall(b"y" * (CHUNK + 4096))
            sockets.append(s)
        time.sleep(0.5)  # let the server start every upload before the JSON request
        with httpx.Client(base_url=srv.url, timeout=15) as http:
            r = http.get("/api/2.0/mlflow/experiments/get", params={"experiment_id": "0"})
            assert r.status_code == 200
            r = http.post("/api/2.0/mlflow/experiments/create", json={"name": "unstarved"})
            assert r.status_code == 200
    finally:
        for s in sockets:
            s.close()


@pytest.fixture(scope="module")
def impatient(tmp_path_factory: pytest.TempPathFactory, launch):
    """A server with one-second header and body timeouts."""
    srv = launch(tmp_path_factory.mktemp("impatient"), "--body-timeout", "1",
                 "--header-timeout", "1")
    yield srv
    srv.stop()


@pytest.mark.parametrize("sent", [1, 2 * CHUNK + 100], ids=["before-first-chunk", "mid-write"])
def test_idle_upload_body_gets_408_and_leaves_nothing(impatient, sent):
    path = f"idle-{sent}/model.bin"
    with _open(impatient.url, _put_head(impatient.url, path, 8 * CHUNK)) as s:
        s.sendall(b"z" * sent)
        status, body = _response(s)
    assert status == 408, body
    assert b"no data" in body
    assert [f for f in _files(impatient.artifacts) if f.startswith(f"idle-{sent}/")] == []
    r = httpx.get(impatient.url + PROXY, params={"path": f"idle-{sent}"})
    assert r.status_code == 200 and r.json().get("files", []) == []
    assert httpx.get(impatient.url + "/health").status_code == 200


def test_idle_json_body_gets_408(impatient):
    head = (f"POST /api/2.0/mlflow/experiments/create HTTP/1.1\r\n"
            f"Host: 127.0.0.1:{_port(impatient.url)}\r\nContent-Type: application/json\r\n"
            "Content-Length: 100\r\n\r\n")
    with _open(impatient.url, head) as s:
        s.sendall(b'{"name": "idle')
        status, body = _response(s)
    assert status == 408, body
    r = httpx.get(impatient.url + "/api/2.0/mlflow/experiments/get-by-name",
                  params={"experiment_name": "idle"})
    assert r.status_code == 404


def test_slow_but_steady_upload_is_never_cut_off(impatient):
    """The body timeout is for idleness: an upload taking three times as long as it, but
    never pausing that long, is stored whole."""
    pieces = [bytes([65 + i]) * 1000 for i in range(10)]
    with _open(impatient.url, _put_head(impatient.url, "steady/f.bin", 10_000)) as s:
        for piece in pieces:
            s.sendall(piece)
            time.sleep(0.3)
        s.shutdown(socket.SHUT_WR)
        status, body = _response_keepalive(s)
    assert status == 200, body
    assert httpx.get(impatient.url + PROXY + "/steady/f.bin").content == b"".join(pieces)


def _response_keepalive(s: socket.socket) -> tuple[int, bytes]:
    data = b""
    while b"\r\n\r\n" not in data:
        piece = s.recv(65536)
        if not piece:
            break
        data += piece
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


def test_headers_must_arrive_in_time(impatient):
    with _open(impatient.url, f"GET /health HTTP/1.1\r\nHost: 127.0.0.1:"
                              f"{_port(impatient.url)}\r\nX-Slow: ") as s:
        status, body = _response(s)
    assert status == 408 and b"headers" in body
    with socket.create_connection(("127.0.0.1", _port(impatient.url)), timeout=30) as s:
        assert s.recv(100) == b""  # a connection that never sends a request is closed
    assert httpx.get(impatient.url + "/health").status_code == 200


def test_header_size_limit(sqlite_server):
    url = sqlite_server.url
    fits = "a" * (MAX_HEADER - 4096)
    assert httpx.get(url + "/health", headers={"x-big": fits}).status_code == 200
    for size in (MAX_HEADER + 1, 16 * CHUNK):
        head = f"GET /health HTTP/1.1\r\nHost: 127.0.0.1:{_port(url)}\r\nX-Big: "
        with _open(url, head) as s:
            try:
                for _ in range(0, size, 65536):
                    s.sendall(b"b" * 65536)
                s.sendall(b"\r\n\r\n")
            except (BrokenPipeError, ConnectionResetError):
                pass  # refused and closed before the client finished sending
            try:
                status, body = _response(s)
            except ConnectionResetError:
                pytest.fail(f"a {size}-byte header was reset without an answer")
        assert status == 431, body
    many = {f"x-h{i}": "v" for i in range(MAX_HEADER // 8)}
    assert httpx.get(url + "/health", headers=many).status_code == 431
    assert httpx.get(url + "/health").status_code == 200


def _rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS")) / 1024


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads RSS from /proc")
def test_long_histories_read_at_once_keep_the_server_small(launch, tmp_path: Path) -> None:
    """Eight unpaged reads of a 100,000-point history at once: each is encoded a chunk at
    a time and at most two are held at once, so the server grows by far less than eight
    whole histories as entities and dicts (over 40 MiB each) would take. The answers are
    the whole history, byte for byte the same each time."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    api = "/api/2.0/mlflow"
    srv = launch(tmp_path)
    try:
        with httpx.Client(base_url=srv.url, timeout=120) as http:
            exp = http.post(f"{api}/experiments/create", json={"name": "long"}).json()
            run = http.post(f"{api}/runs/create", json={"experiment_id": exp["experiment_id"]})
            run_id = run.json()["run"]["info"]["run_id"]
            for start in range(0, 100_000, 1000):
                http.post(f"{api}/runs/log-batch", json={"run_id": run_id, "metrics": [
                    {"key": "loss", "value": 1 / (i + 1), "timestamp": i + 1, "step": i}
                    for i in range(start, start + 1000)]}).raise_for_status()
            query = {"run_id": run_id, "metric_key": "loss"}
            first = http.get(f"{api}/metrics/get-history", params=query)
        points = first.json()["metrics"]
        assert [p["step"] for p in points] == list(range(100_000))
        assert points[-1] == {"key": "loss", "value": 1e-05, "timestamp": 100_000,
                              "step": 99_999}
        assert int(first.headers["content-length"]) == len(first.content)

        pid = srv.process.pid
        before = peak = _rss_mib(pid)
        done = threading.Event()

        def sample() -> None:
            nonlocal peak
            while not done.wait(0.02):
                peak = max(peak, _rss_mib(pid))

        def read(_: int) -> bytes:
            with httpx.Client(base_url=srv.url, timeout=300) as client:
                return client.get(f"{api}/metrics/get-history", params=query).content

        def at_once(reader: Any, n: int) -> list[bytes]:
            nonlocal before, peak
            done.clear()
            before = peak = _rss_mib(pid)
            sampler = threading.Thread(target=sample)
            sampler.start()
            try:
                with ThreadPoolExecutor(n) as pool:
                    return list(pool.map(reader, range(n)))
            finally:
                done.set()
                sampler.join()

        bodies = at_once(read, 8)
        assert all(body == first.content for body in bodies)
        # Eight at once as dicts took 230 MiB more; chunked and two at a time, about 55.
        assert peak - before < 110, (before, peak)

        # The client's own page size: 32 pages of 25,000 points at once took about 50 MiB
        # more when all were read together; four at a time, 10 to 20.
        page_query = {**query, "max_results": 25_000}

        def read_page(_: int) -> bytes:
            with httpx.Client(base_url=srv.url, timeout=300) as client:
                return client.get(f"{api}/metrics/get-history", params=page_query).content

        pages = at_once(read_page, 32)
        page = orjson.loads(pages[0])
        assert [p["step"] for p in page["metrics"]] == list(range(25_000))
        assert page["next_page_token"] and all(body == pages[0] for body in pages)
        assert peak - before < 40, (before, peak)
    finally:
        srv.stop()


def test_run_searches_wait_their_turn(tmp_path: Path) -> None:
    """Twelve searches at once: at most SEARCHES_AT_ONCE run in the store together, the
    rest wait and are answered in full; a write is not held up behind them."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from starlette.testclient import TestClient

    from tracklog.config import ServerConfig
    from tracklog.server import create_app
    from tracklog.server.routes.runs import SEARCHES_AT_ONCE

    api = "/api/2.0/mlflow"
    app = create_app(ServerConfig(backend_store_uri=f"sqlite:///{tmp_path}/g.db",
                                  allowed_hosts=["testserver"]))
    with TestClient(app) as http:
        store = app.state.tracklog.store
        run_id = http.post(f"{api}/runs/create", json={"experiment_id": "0"}) \
            .json()["run"]["info"]["run_id"]
        lock = threading.Lock()
        running = most = finished = 0

        def counting(search: Any) -> Any:
            def counted(*args: Any, **kwargs: Any) -> Any:
                nonlocal running, most, finished
                with lock:
                    running += 1
                    most = max(most, running)
                try:
                    time.sleep(0.2)
                    return search(*args, **kwargs)
                finally:
                    with lock:
                        running -= 1
                        finished += 1

            return counted

        # On SQLite the route asks for the encoded page; either way it is counted.
        store.search_runs = counting(store.search_runs)
        store.search_runs_encoded = counting(store.search_runs_encoded)

        def find(_: int) -> list[str]:
            r = http.post(f"{api}/runs/search", json={"experiment_ids": ["0"]})
            assert r.status_code == 200, r.text
            return [run["info"]["run_id"] for run in r.json()["runs"]]

        with ThreadPoolExecutor(12) as pool:
            found = pool.map(find, range(12))
            time.sleep(0.1)  # the searches are in, most of them waiting
            logged = http.post(f"{api}/runs/log-parameter",
                               json={"run_id": run_id, "key": "p", "value": "v"})
            searched_before_write = finished
            assert all(ids == [run_id] for ids in found)
        assert most == SEARCHES_AT_ONCE
        assert logged.status_code == 200
        # The write went past the waiting searches (three rounds of 0.2 s).
        assert searched_before_write < 12, searched_before_write


def test_a_large_read_leaves_nothing_for_the_collector(tmp_path: Path) -> None:
    """A search answering 1,000 runs builds tens of thousands of objects; the cyclic
    collector stays paused until they are encoded and freed, so the searches start
    (almost) no collection, where resuming it with the page alive started at least one
    per search. The answers are whole."""
    import gc

    from starlette.testclient import TestClient

    from tracklog.config import ServerConfig
    from tracklog.entities import Metric
    from tracklog.perf import settle_heap
    from tracklog.server import create_app

    app = create_app(ServerConfig(backend_store_uri=f"sqlite:///{tmp_path}/c.db",
                                  allowed_hosts=["testserver"]))
    store = app.state.tracklog.store
    for i in range(1000):
        run_id = store.create_run("0", "u", i).info.run_id
        store.log_batch(run_id, [Metric("score", float(i), 1, 0)])
    body = {"experiment_ids": ["0"], "order_by": ["metrics.score DESC"],
            "max_results": 1000}
    collections = [0]

    def counted(phase: str, _info: Any) -> None:
        if phase == "start":
            collections[0] += 1

    threshold = gc.get_threshold()
    with TestClient(app) as http:
        settle_heap()  # as a server process does once started
        try:
            first = http.post("/api/2.0/mlflow/runs/search", json=body)
            runs = orjson.loads(first.content)["runs"]
            assert [r["data"]["metrics"][0]["value"] for r in runs] == \
                [float(i) for i in range(999, -1, -1)]
            gc.callbacks.append(counted)
            for _ in range(20):
                again = http.post("/api/2.0/mlflow/runs/search", json=body)
                assert again.content == first.content
        finally:
            if counted in gc.callbacks:
                gc.callbacks.remove(counted)
            gc.unfreeze()
            gc.set_threshold(*threshold)
    assert collections[0] < 10, collections


def test_downloads_at_once_arrive_whole(sqlite_server) -> None:
    """Ten downloads of one file at once, each sent from the file to its socket by the
    kernel: every one arrives byte for byte."""
    import os
    from concurrent.futures import ThreadPoolExecutor

    data = os.urandom(3 * CHUNK + 17)
    url = f"{sqlite_server.url}{PROXY}/at-once/blob.bin"
    assert httpx.put(url, content=data, timeout=60).status_code == 200

    def fetch(_: int) -> bytes:
        with httpx.stream("GET", url, timeout=60) as r:
            assert r.status_code == 200
            assert int(r.headers["content-length"]) == len(data)
            return b"".join(r.iter_bytes(64 * 1024))

    with ThreadPoolExecutor(10) as pool:
        bodies = list(pool.map(fetch, range(10)))
    assert all(body == data for body in bodies)
