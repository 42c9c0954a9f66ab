"""The built-in routes without path parameters are answered ahead of Starlette's
middleware stack unless CORS, metrics, authorization or a plugin's middleware is on:
their answers, refusals and deadlines must be those of the full stack."""

from __future__ import annotations

import socket
from pathlib import Path

import httpx
import pytest

from tests.conftest import read_until_closed
from tracklog.config import ServerConfig
from tracklog.server.app import create_app

API = "/api/2.0/mlflow"


def test_fast_path_is_on_only_without_other_middleware(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 'fast.db'}"
    assert create_app(ServerConfig(backend_store_uri=store)).fast_path is not None
    for extra in ({"cors_allowed_origins": ["http://elsewhere.example"]},
                  {"expose_prometheus": str(tmp_path / "metrics")}):
        app = create_app(ServerConfig(backend_store_uri=store, **extra))
        assert app.fast_path is None, extra


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory, launch):
    """The same server twice: with the fast path, and with the full stack (CORS on for
    an origin no request below comes from)."""
    fast = launch(tmp_path_factory.mktemp("fast"), "--header-timeout", "1")
    full = launch(tmp_path_factory.mktemp("full"), "--header-timeout", "1",
                  "--cors-allowed-origins", "http://elsewhere.example")
    yield fast, full
    fast.stop()
    full.stop()


def _answer(url: str, method: str, path: str, *, content: bytes | None = None,
            headers: dict[str, str] | None = None, params: dict[str, str] | None = None
            ) -> tuple[int, object]:
    r = httpx.request(method, url + path, content=content, headers=headers, params=params,
                      timeout=30)
    try:
        body: object = r.json()
    except ValueError:
        body = r.content
    return r.status_code, body


JSON = {"Content-Type": "application/json"}

CASES = [
    ("POST", f"{API}/runs/log-metric", b'{"run_id": "nope", "key": "m", "value": 1, '
     b'"timestamp": 1}', JSON, None),
    ("POST", f"{API}/runs/log-metric", b'{"key": "m", "value": 1, "timestamp": 1}', JSON, None),
    ("POST", f"{API}/runs/log-metric", b'{"run_id": "x", "key": "m", "value": "a"}', JSON, None),
    ("POST", f"{API}/runs/log-metric", b'{"run_id": "x", ', JSON, None),
    ("POST", f"{API}/runs/log-metric", b'[1, 2]', JSON, None),
    ("POST", f"{API}/runs/log-metric", b'{"run_id": "a\\u0000b"}', JSON, None),
    ("POST", f"{API}/runs/log-metric", b'{"run_id": "x"}', {"Content-Type": "text/csv"}, None),
    ("POST", f"{API}/runs/log-metric", b"", JSON, None),
    ("POST", f"{API}/runs/create", b'{"experiment_id": "424242"}', JSON, None),
    ("POST", f"{API}/runs/create", b'{"start_time": "soon"}', JSON, None),
    ("POST", f"{API}/runs/update", b'{"status": "FINISHED"}', JSON, None),
    ("POST", f"{API}/runs/update", b'{"run_id": "nope", "end_time": 1}', JSON, None),
    ("POST", f"{API}/runs/log-batch", b'{"run_id": "x", "metrics": [1]}', JSON, None),
    ("GET", f"{API}/runs/get", None, None, {"run_id": "nope"}),
    ("GET", f"{API}/runs/get", None, None, {"run_id": "a\x00b"}),
    ("GET", f"{API}/runs/get", None, None, None),
    ("GET", f"{API}/experiments/get-by-name", None, None, {"experiment_name": "none"}),
    ("POST", f"{API}/experiments/create", b'{"name": ""}', JSON, None),
    ("POST", f"{API}/runs/log-metric", b'{}', {**JSON, "Host": "rebind.example"}, None),
    ("POST", f"{API}/runs/log-metric", b'{}', {**JSON, "Origin": "http://evil.example"}, None),
    ("POST", f"{API}/runs/log-metric", b'{}', {"Content-Type": "text/plain",
                                              "Sec-Fetch-Site": "cross-site"}, None),
    ("POST", f"{API}/runs/log-metric", b'{}', {**JSON, "Content-Length": str(64 * 2**20)},
     None),
]


@pytest.mark.parametrize("method,path,content,headers,params", CASES,
                         ids=[f"{i}-{c[1].rsplit('/', 1)[1]}" for i, c in enumerate(CASES)])
def test_bad_requests_get_the_full_stacks_answer(pair, method, path, content, headers, params):
    fast, full = pair
    if headers and "Content-Length" in headers:
        raw = [_raw_status(s.url, method, path, headers) for s in pair]
        assert raw[0] == raw[1] and raw[0][0] == 400
        return
    want = _answer(full.url, method, path, content=content, headers=headers, params=params)
    got = _answer(fast.url, method, path, content=content, headers=headers, params=params)
    assert got == want
    assert 400 <= got[0] < 500


def _raw_status(url: str, method: str, path: str, headers: dict[str, str]
                ) -> tuple[int, bytes]:
    """A request declaring a body larger than allowed, without sending it."""
    port = int(url.rsplit(":", 1)[1])
    head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n" + "".join(
        f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        s.sendall(head.encode())
        data = b""
        while b"\r\n\r\n" not in data or not data.endswith(b"}"):
            piece = s.recv(65536)
            if not piece:
                break
            data += piece
    status_line, _, rest = data.partition(b"\r\n")
    return int(status_line.split(b" ", 2)[1]), rest.partition(b"\r\n\r\n")[2]


def test_good_requests_get_the_same_answers(pair):
    for server in pair:
        with httpx.Client(base_url=server.url + API, timeout=30) as http:
            exp = http.post("/experiments/create", json={"name": "same"}).json()
            run = http.post("/runs/create", json={"experiment_id": exp["experiment_id"],
                                                  "start_time": 5}).json()["run"]
            run_id = run["info"]["run_id"]
            r = http.post("/runs/log-metric", json={"run_id": run_id, "key": "m",
                                                    "value": 1.5, "timestamp": 7, "step": 2})
            assert (r.status_code, r.content, r.headers["content-type"]) == \
                (200, b"{}", "application/json")
            r = http.post("/runs/update", json={"run_id": run_id, "status": "FINISHED",
                                                "end_time": 9})
            assert r.json()["run_info"]["status"] == "FINISHED"
            got = http.get("/runs/get", params={"run_id": run_id}).json()["run"]
            assert got["data"]["metrics"] == [{"key": "m", "value": 1.5, "timestamp": 7,
                                               "step": 2}]


def test_header_deadline_applies_to_each_request_on_a_connection(pair):
    """After a request answered in time, the next one on the same connection whose
    headers stall is still cut off with 408."""
    fast, _ = pair
    port = int(fast.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        s.sendall(f"GET /health HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
        first = s.recv(65536)
        assert first.startswith(b"HTTP/1.1 200")
        s.sendall(f"GET /health HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nX-Slow: ".encode())
        data = read_until_closed(s)
    assert data.startswith(b"HTTP/1.1 408"), data
    assert b"headers" in data
