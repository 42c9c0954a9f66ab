"""On a store that queues writes (the SQL store on SQLite), the small write routes hand
their write to the store's writer from the event loop, with no worker thread between:
answers and errors are those of the synchronous path. A request alone in the server
lets the store make its write at once, on the loop; one among others never does."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from starlette.testclient import TestClient

from tracklog.config import ServerConfig
from tracklog.server import create_app
from tracklog.server.protocol import TracklogHttpProtocol

API = "/api/2.0/mlflow"


@pytest.fixture
def served(in_process: tuple[TestClient, Any]) -> tuple[TestClient, Any]:
    http, store = in_process

    def synchronous(*_args: Any, **_kwargs: Any) -> None:
        raise AssertionError("a queued route called the synchronous store method")

    # The queued routes must not reach these; reads still work.
    for name in ("log_batch", "create_run", "update_run_info"):
        setattr(store, name, synchronous)
    return http, store


def post(http: TestClient, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    r = http.post(API + path, json=body)
    return r.status_code, r.json()


def test_queued_routes_answer_and_read_back(served) -> None:
    http, store = served
    status, created = post(http, "/runs/create", {
        "experiment_id": "0", "start_time": 11, "run_name": "queued",
        "tags": [{"key": "t", "value": "v"}]})
    assert status == 200
    run = created["run"]
    run_id = run["info"]["run_id"]
    assert run["info"]["run_name"] == "queued" and run["info"]["start_time"] == 11

    assert post(http, "/runs/log-metric",
                {"run_id": run_id, "key": "m", "value": 0.5, "timestamp": 5, "step": 1}) \
        == (200, {})
    assert post(http, "/runs/log-parameter", {"run_id": run_id, "key": "p", "value": "1"}) \
        == (200, {})
    assert post(http, "/runs/set-tag", {"run_id": run_id, "key": "k", "value": "x"}) \
        == (200, {})
    assert post(http, "/runs/log-batch", {"run_id": run_id, "metrics": [
        {"key": "m", "value": 1.5, "timestamp": 6, "step": 2}]}) == (200, {})
    assert post(http, "/runs/log-batch", {"run_id": run_id}) == (200, {})
    status, updated = post(http, "/runs/update",
                           {"run_id": run_id, "status": "FINISHED", "end_time": 99})
    assert status == 200
    assert updated["run_info"]["status"] == "FINISHED"
    assert updated["run_info"]["end_time"] == 99

    got = http.get(f"{API}/runs/get", params={"run_id": run_id}).json()["run"]
    assert got["info"] == updated["run_info"]
    assert {p["key"]: p["value"] for p in got["data"]["params"]} == {"p": "1"}
    tags = {t["key"]: t["value"] for t in got["data"]["tags"]}
    assert tags["t"] == "v" and tags["k"] == "x"
    history = http.get(f"{API}/metrics/get-history",
                       params={"run_id": run_id, "metric_key": "m"}).json()["metrics"]
    assert [(m["timestamp"], m["step"], m["value"]) for m in history] == \
        [(5, 1, 0.5), (6, 2, 1.5)]


def test_queued_routes_refuse_as_the_synchronous_ones(served) -> None:
    http, store = served
    missing = "0" * 32
    status, body = post(http, "/runs/log-metric",
                        {"run_id": missing, "key": "m", "value": 1, "timestamp": 1, "step": 0})
    assert status == 404 and body["error_code"] == "RESOURCE_DOES_NOT_EXIST"
    assert missing in body["message"]

    status, body = post(http, "/runs/create", {"experiment_id": "12345"})
    assert status == 404 and body["error_code"] == "RESOURCE_DOES_NOT_EXIST"
    status, body = post(http, "/runs/update", {"run_id": missing, "status": "FAILED"})
    assert status == 404 and body["error_code"] == "RESOURCE_DOES_NOT_EXIST"

    run_id = post(http, "/runs/create", {"experiment_id": "0"})[1]["run"]["info"]["run_id"]
    assert post(http, "/runs/log-parameter", {"run_id": run_id, "key": "p", "value": "a"}) \
        == (200, {})
    status, body = post(http, "/runs/log-batch", {
        "run_id": run_id, "params": [{"key": "p", "value": "b"}],
        "metrics": [{"key": "m", "value": 1, "timestamp": 1, "step": 0}]})
    assert status == 400 and body["error_code"] == "INVALID_PARAMETER_VALUE"
    # Refused by validation on the loop, before anything is queued.
    status, body = post(http, "/runs/log-metric",
                        {"run_id": run_id, "key": "m", "value": "x", "timestamp": 1})
    assert status == 400 and "value" in body["message"]

    post(http, "/runs/delete", {"run_id": run_id})
    status, body = post(http, "/runs/set-tag", {"run_id": run_id, "key": "k", "value": "v"})
    assert status == 400 and body["error_code"] == "INVALID_PARAMETER_VALUE"
    assert store.get_metric_history(run_id, "m") == []


@contextlib.contextmanager
def _live(tmp_path: Path) -> Iterator[tuple[str, Any]]:
    """The app in a real uvicorn server (tracklog's protocol) in a thread."""
    app = create_app(ServerConfig(backend_store_uri=f"sqlite:///{tmp_path}/live.db",
                                  artifacts_destination=str(tmp_path / "artifacts")))
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, http=TracklogHttpProtocol, loop="uvloop",
                                           log_config=None, access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    assert server.started
    try:
        yield f"127.0.0.1:{sock.getsockname()[1]}", app.state.tracklog.store
    finally:
        server.should_exit = True
        thread.join(10)


def test_a_write_is_made_at_once_only_when_its_request_is_alone(tmp_path: Path) -> None:
    """Alone, a run creation is offered ``now``; while another request is in progress
    (a search whose body is still arriving) it is queued as usual, and answers the
    same; once that request is answered, ``now`` again."""
    with _live(tmp_path) as (address, store):
        asked: list[bool] = []
        real = store.submit_create_run

        def spy(*args: Any, **kwargs: Any) -> bool:
            asked.append(kwargs.get("now", False))
            return real(*args, **kwargs)

        store.submit_create_run = spy
        with httpx.Client(base_url=f"http://{address}{API}") as http:
            def create(name: str) -> dict[str, Any]:
                r = http.post("/runs/create", json={"experiment_id": "0", "run_name": name})
                assert r.status_code == 200, r.text
                run = r.json()["run"]
                got = http.get("/runs/get", params={"run_id": run["info"]["run_id"]})
                assert got.json()["run"]["info"] == run["info"]
                return run

            assert create("alone")["info"]["run_name"] == "alone"
            assert asked == [True]

            body = json.dumps({"experiment_ids": ["0"], "max_results": 5}).encode()
            with socket.create_connection(tuple(address.split(":"))) as slow:  # type: ignore[arg-type]
                slow.sendall(b"POST /api/2.0/mlflow/runs/search HTTP/1.1\r\n"
                             b"Host: " + address.encode() + b"\r\n"
                             b"Content-Type: application/json\r\n"
                             b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n"
                             + body[:5])
                time.sleep(0.3)  # its headers are in: the request is in progress
                assert create("among others")["info"]["run_name"] == "among others"
                assert asked == [True, False]
                slow.sendall(body[5:])
                slow.settimeout(10)
                answer = b""
                while b"\r\n\r\n" not in answer:
                    answer += slow.recv(65536)
                assert answer.startswith(b"HTTP/1.1 200")
            time.sleep(0.1)
            create("alone again")
            assert asked == [True, False, True]


def test_a_point_read_alone_is_answered_on_the_event_loop(tmp_path: Path) -> None:
    """runs/get alone in the server runs in the event loop's thread; with another
    request in progress, in a worker thread as every read; the answers are the same."""
    with _live(tmp_path) as (address, store):
        threads: list[str] = []
        real = store.get_run

        def spy(run_id: str) -> Any:
            threads.append(threading.current_thread().name)
            return real(run_id)

        store.get_run = spy
        with httpx.Client(base_url=f"http://{address}{API}") as http:
            run_id = http.post("/runs/create", json={"experiment_id": "0"}) \
                .json()["run"]["info"]["run_id"]
            alone = http.get("/runs/get", params={"run_id": run_id})
            missing = http.get("/runs/get", params={"run_id": "0" * 32})
            assert alone.status_code == 200 and missing.status_code == 404
            assert missing.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"
            body = json.dumps({"experiment_ids": ["0"], "max_results": 5}).encode()
            with socket.create_connection(tuple(address.split(":"))) as slow:  # type: ignore[arg-type]
                slow.sendall(b"POST /api/2.0/mlflow/runs/search HTTP/1.1\r\n"
                             b"Host: " + address.encode() + b"\r\n"
                             b"Content-Type: application/json\r\n"
                             b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n")
                time.sleep(0.3)
                among = http.get("/runs/get", params={"run_id": run_id})
                slow.sendall(body)
            assert among.json() == alone.json()
        assert len(threads) == 3
        assert not threads[0].startswith("tracklog-worker")
        assert threads[0] == threads[1]
        assert threads[2].startswith("tracklog-worker")
