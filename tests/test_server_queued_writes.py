"""On a store that queues writes (the SQL store on SQLite), the small write routes hand
their write to the store's writer from the event loop, with no worker thread between:
answers and errors are those of the synchronous path."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from tracklog.config import ServerConfig
from tracklog.server import create_app

API = "/api/2.0/mlflow"


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[TestClient, Any]]:
    app = create_app(ServerConfig(backend_store_uri=f"sqlite:///{tmp_path}/q.db",
                                  artifacts_destination=str(tmp_path / "artifacts"),
                                  allowed_hosts=["testserver"]))
    with TestClient(app, raise_server_exceptions=False) as http:
        store = app.state.tracklog.store

        def synchronous(*_args: Any, **_kwargs: Any) -> None:
            raise AssertionError("a queued route called the synchronous store method")

        # The queued routes must not reach these; reads still work.
        for name in ("log_batch", "create_run", "update_run_info"):
            setattr(store, name, synchronous)
        yield http, store


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
