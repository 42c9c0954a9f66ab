"""Bad input never becomes a 5xx or a stored record, on every backend: integers outside
int64, NUL characters, bodies that are not JSON objects (NaN literals, deep nesting, wrong
content types); and a real internal error shows only a request id.

Each test runs against a real server on SQLite, PostgreSQL, MariaDB and the file store.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.testclient import TestClient

from tracklog.config import ServerConfig
from tracklog.plugins import hookimpl, register_plugin, unregister_plugin
from tracklog.server import create_app, rule

MARIADB_ADMIN_URL = os.environ.get("TRACKLOG_TEST_MYSQL_URL",
                                   "mysql+pymysql://root@127.0.0.1:3306/test")
INT64_MAX = 2**63 - 1
MAX_DOUBLE = 1.7976931348623157e308
API = "/api/2.0/mlflow"


@pytest.fixture(scope="module")
def mariadb_uri(private_database) -> str:
    return private_database(MARIADB_ADMIN_URL, "mariadb")


@pytest.fixture(scope="module", params=["sqlite", "postgresql", "mariadb", "file"])
def backend(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
            serve) -> Iterator[Any]:
    tmp = tmp_path_factory.mktemp(f"bad-input-{request.param}")
    uri = {
        "sqlite": lambda: f"sqlite:///{tmp / 'tracklog.db'}",
        "postgresql": lambda: request.getfixturevalue("postgres_uri"),
        "mariadb": lambda: request.getfixturevalue("mariadb_uri"),
        "file": lambda: f"file:{tmp / 'mlruns'}",
    }[request.param]()
    srv = serve(tmp, uri)
    yield srv
    srv.stop()


@pytest.fixture
def http(backend) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=backend.url + API, timeout=30) as c:
        yield c


def refused(response: httpx.Response, field: str, code: str = "INVALID_PARAMETER_VALUE"
            ) -> str:
    """A JSON 4xx with ``code`` whose message names ``field``; returns the message."""
    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body["error_code"] == code, body
    assert field in body["message"], body
    return body["message"]


def new_run(http: httpx.Client) -> tuple[str, str]:
    exp = http.post("/experiments/create", json={"name": f"bad-{uuid.uuid4().hex}"})
    exp_id = exp.json()["experiment_id"]
    run = http.post("/runs/create", json={"experiment_id": exp_id, "start_time": 1})
    return exp_id, run.json()["run"]["info"]["run_id"]


def token(offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"offset": offset}).encode()).decode()


def test_integers_beyond_int64_are_refused_before_writing(http: httpx.Client) -> None:
    exp_id, run_id = new_run(http)
    # (-2**63 - 1 would arrive as the double -2**63: JSON numbers past 2**64 are doubles.)
    for bad in (INT64_MAX + 1, 2**64, -(2**64), 1e20, str(2**63), str(-(2**63) - 1)):
        refused(http.post("/runs/create", json={"experiment_id": exp_id, "start_time": bad}),
                "start_time")
        refused(http.post("/runs/update", json={"run_id": run_id, "end_time": bad}),
                "end_time")
        refused(http.post("/runs/log-metric", json={
            "run_id": run_id, "key": "m", "value": 1, "timestamp": bad, "step": 0}),
            "timestamp")
        refused(http.post("/runs/log-metric", json={
            "run_id": run_id, "key": "m", "value": 1, "timestamp": 1, "step": bad}), "step")
        refused(http.post("/runs/log-batch", json={"run_id": run_id, "metrics": [
            {"key": "m", "value": 1, "timestamp": 1, "step": 0},
            {"key": "m", "value": 2, "timestamp": bad, "step": 0}]}), "metrics[1].timestamp")
        refused(http.post("/runs/search", json={"experiment_ids": [exp_id],
                                                "max_results": bad}), "max_results")
        refused(http.get("/metrics/get-history", params={
            "run_id": run_id, "metric_key": "m", "max_results": str(bad)}), "max_results")
    for offset in (2**63, 2**70, -1):
        refused(http.post("/runs/search", json={"experiment_ids": [exp_id],
                                                "page_token": token(offset)}), "page token")
    # Nothing was written, and the experiment and the run still read back.
    runs = http.post("/runs/search", json={"experiment_ids": [exp_id]})
    assert runs.status_code == 200, runs.text
    assert [r["info"]["run_id"] for r in runs.json()["runs"]] == [run_id]
    run = http.get("/runs/get", params={"run_id": run_id}).json()["run"]
    assert "end_time" not in run["info"] and set(run["data"]) == {"tags"}
    assert http.get("/metrics/get-history", params={"run_id": run_id, "metric_key": "m"}
                    ).json() == {}
    # int64's extremes are fine.
    assert http.post("/runs/log-metric", json={
        "run_id": run_id, "key": "m", "value": 1, "timestamp": INT64_MAX,
        "step": -(2**63)}).status_code == 200
    history = http.get("/metrics/get-history", params={
        "run_id": run_id, "metric_key": "m", "max_results": str(INT64_MAX)}).json()
    assert [(m["timestamp"], m["step"]) for m in history["metrics"]] == [
        (INT64_MAX, -(2**63))]


def test_nul_is_refused_everywhere(http: httpx.Client) -> None:
    exp_id, run_id = new_run(http)
    name = f"nul-{uuid.uuid4().hex}"
    refused(http.post("/experiments/create", json={"name": name + "\x00"}), "'name'")
    refused(http.post("/runs/set-tag", json={"run_id": run_id, "key": "t",
                                             "value": "a\x00b"}), "'value'")
    refused(http.post("/runs/log-parameter", json={"run_id": run_id, "key": "p",
                                                   "value": "\x00"}), "'value'")
    refused(http.post("/runs/log-batch", json={"run_id": run_id, "tags": [
        {"key": "ok", "value": "x"}, {"key": "t", "value": "\x00"}]}), "tags[1].value")
    refused(http.get("/runs/get", params={"run_id": "a\x00"}), "'run_id'")
    refused(http.get("/logged-models/m-%00x"), "'model_id'")
    refused(http.patch("/logged-models/m-%00x/tags", json={"tags": []}), "'model_id'")
    refused(http.get("/experiments/get-by-name", params={"experiment_name": name + "\x00"}),
            "'experiment_name'")
    # An escaped backslash before "u0000" is text, not a NUL.
    literal = http.post("/runs/set-tag", json={"run_id": run_id, "key": "t",
                                               "value": "\\u0000"})
    assert literal.status_code == 200, literal.text
    run = http.get("/runs/get", params={"run_id": run_id}).json()["run"]
    assert "params" not in run["data"]
    assert {t["key"]: t["value"] for t in run["data"]["tags"]}["t"] == "\\u0000"
    found = http.get("/experiments/get-by-name", params={"experiment_name": name})
    assert found.status_code == 404


def test_bodies_that_are_not_json_objects_are_refused(http: httpx.Client) -> None:
    _, run_id = new_run(http)
    json_type = {"content-type": "application/json"}
    for literal in (b"NaN", b"Infinity", b"-Infinity"):
        body = b'{"run_id": "%s", "key": "m", "value": %s, "timestamp": 1}' % (
            run_id.encode(), literal)
        message = refused(http.post("/runs/log-metric", content=body, headers=json_type),
                          "NaN")
        assert '"NaN"' in message and "run_id" not in message
    refused(http.post("/runs/log-metric", content=b'{"run_id": ', headers=json_type),
            "not valid JSON")
    refused(http.post("/runs/log-metric", content=b"[1, 2]", headers=json_type),
            "must be a JSON object")
    refused(http.post("/runs/log-metric", content=b'"text"', headers=json_type),
            "must be a JSON object")
    for ctype in ("text/plain", "application/x-www-form-urlencoded"):
        refused(http.post("/runs/set-tag", headers={"content-type": ctype},
                          content=json.dumps({"run_id": run_id, "key": "t", "value": "v"})),
                "Content-Type")
    # Non-finite values as strings (what the MLflow client sends) keep working.
    for value in ("NaN", "Infinity", "-Infinity"):
        ok = http.post("/runs/log-metric", json={"run_id": run_id, "key": value.lower(),
                                                 "value": value, "timestamp": 1})
        assert ok.status_code == 200, ok.text
    run = http.get("/runs/get", params={"run_id": run_id}).json()["run"]
    assert "tags" not in run["data"] or "t" not in {t["key"] for t in run["data"]["tags"]}
    values = {m["key"]: m["value"] for m in run["data"]["metrics"]}
    # ±inf come back as such or clamped to the largest double, as MLflow's SQL store does.
    assert values["nan"] == "NaN"
    assert values["infinity"] in ("Infinity", MAX_DOUBLE)
    assert values["-infinity"] in ("-Infinity", -MAX_DOUBLE)


def test_deep_nesting_is_refused_at_the_decoder(http: httpx.Client) -> None:
    _, run_id = new_run(http)
    json_type = {"content-type": "application/json"}
    for depth in (65, 1000, 5000):
        for opener, closer in (("[", "]"), ('{"a":', "}")):
            deep = opener * depth + "1" + closer * depth
            body = f'{{"run_id": "{run_id}", "key": "t", "value": {deep}}}'.encode()
            refused(http.post("/runs/set-tag", content=body, headers=json_type),
                    "nests deeper than 64")
    # Brackets inside strings neither hide nesting nor count as nesting.
    sneaky = '["]}", ' * 100 + "1" + "]" * 100
    body = f'{{"run_id": "{run_id}", "key": "t", "value": {sneaky}}}'.encode()
    refused(http.post("/runs/set-tag", content=body, headers=json_type),
            "nests deeper than 64")
    # Within the cap a nested value is an ordinary type error naming the field, and
    # brackets inside strings do not count.
    shallow = "[" * 60 + "1" + "]" * 60
    body = f'{{"run_id": "{run_id}", "key": "t", "value": {shallow}}}'.encode()
    refused(http.post("/runs/set-tag", content=body, headers=json_type), "'value'")
    text = "[" * 200 + "]" * 200
    ok = http.post("/runs/set-tag", json={"run_id": run_id, "key": "brackets", "value": text})
    assert ok.status_code == 200, ok.text
    run = http.get("/runs/get", params={"run_id": run_id}).json()["run"]
    assert {t["key"]: t["value"] for t in run["data"]["tags"]}["brackets"] == text


def test_mlflow_client_gets_a_4xx_it_does_not_retry(backend) -> None:
    """The real client's NUL tag and NaN metric: a 400 outside the client's retry list for
    the first, the value itself for the second (the client sends NaN as "NaN")."""
    import math

    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException
    from mlflow.utils.request_utils import _TRANSIENT_FAILURE_RESPONSE_CODES

    client = MlflowClient(backend.url)
    exp_id = client.create_experiment(f"client-{uuid.uuid4().hex}")
    run_id = client.create_run(exp_id).info.run_id
    with pytest.raises(MlflowException) as info:
        client.set_tag(run_id, "t", "a\x00b")
    assert info.value.error_code == "INVALID_PARAMETER_VALUE"
    assert info.value.get_http_status_code() == 400
    assert 400 not in _TRANSIENT_FAILURE_RESPONSE_CODES
    client.log_metric(run_id, "m", math.nan, timestamp=1, step=0)
    assert math.isnan(client.get_run(run_id).data.metrics["m"])


def test_internal_error_shows_a_request_id_only(tmp_path: Path, serve) -> None:
    """A real failure inside the store (its SQLite database lost a table under it): the
    body says "internal error" with a request id, also sent as X-Request-Id; the SQL and
    the database path are only in the server log, under the same id."""
    db = tmp_path / "tracklog.db"
    srv = serve(tmp_path, f"sqlite:///{db}")
    try:
        with httpx.Client(base_url=srv.url + API, timeout=30) as http:
            _, run_id = new_run(http)
            with sqlite3.connect(db) as conn:
                conn.execute("DROP TABLE params")
            r = http.post("/runs/log-parameter", json={"run_id": run_id, "key": "p",
                                                       "value": "secret-value"})
        assert r.status_code == 500
        request_id = r.headers["x-request-id"]
        assert len(request_id) == 32
        assert r.json() == {"error_code": "INTERNAL_ERROR",
                            "message": f"internal error (request id {request_id})"}
        log = srv.log.read_text()
        assert f"request id {request_id}" in log
        assert "no such table: params" in log and "Traceback" in log
    finally:
        srv.stop()
    for leak in ("params", "secret-value", str(tmp_path), "INSERT", "sqlite"):
        assert leak not in r.text


class FailingRoutePlugin:
    """A plugin route that fails with a message holding a path and SQL."""

    @hookimpl
    def register_routes(self, app):
        @rule("read")
        async def boom(request):
            raise RuntimeError("/srv/tracklog/secret.db: SELECT password FROM users")

        app.add_route("/plugin/boom", boom, methods=["GET"])


def test_plugin_route_failure_is_the_same_json_500(tmp_path: Path, caplog) -> None:
    """An exception escaping a plugin route (outside tracklog's RPC endpoints) gets the
    same body and header, not Starlette's plain-text 500."""
    register_plugin(FailingRoutePlugin(), "test-failing-route")
    try:
        app = create_app(ServerConfig(backend_store_uri=f"sqlite:///{tmp_path}/t.db",
                                      artifacts_destination=str(tmp_path / "artifacts"),
                                      allowed_hosts=["testserver"]))
        with caplog.at_level(logging.ERROR, logger="tracklog.server"), \
                TestClient(app, raise_server_exceptions=False) as http:
            r = http.get("/plugin/boom")
    finally:
        unregister_plugin("test-failing-route")
    assert r.status_code == 500
    request_id = r.headers["x-request-id"]
    assert r.json() == {"error_code": "INTERNAL_ERROR",
                        "message": f"internal error (request id {request_id})"}
    assert "secret" not in r.text and "SELECT" not in r.text
    assert f"request id {request_id}" in caplog.text and "SELECT password" in caplog.text
