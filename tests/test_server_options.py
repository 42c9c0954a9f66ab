"""`tracklog server` options: --static-prefix with the real client, CORS and host lists,
Prometheus metrics, options from TRACKLOG_* variables and an --env-file."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import mlflow
import pytest


@pytest.fixture(scope="module")
def prefixed(tmp_path_factory: pytest.TempPathFactory, launch) -> Iterator:
    tmp = tmp_path_factory.mktemp("prefixed")
    env_file = tmp / "server.env"
    env_file.write_text(
        "# options not given on the command line\n"
        "TRACKLOG_ALLOWED_HOSTS=myhost.example,*.corp.example\n"
        f'TRACKLOG_EXPOSE_PROMETHEUS="{tmp / "prom"}"\n'
    )
    srv = launch(
        tmp, "--env-file", str(env_file), prefix="/tl",
        env={"TRACKLOG_CORS_ALLOWED_ORIGINS": "http://good.example"},
    )
    yield srv
    srv.stop()


def test_static_prefix_with_real_client(prefixed, tmp_path):
    mlflow.set_tracking_uri(prefixed.url)
    client = mlflow.MlflowClient(prefixed.url)
    mlflow.set_experiment(f"prefixed-{uuid.uuid4().hex}")
    with mlflow.start_run() as run:
        mlflow.log_metric("m", 3.0)
        mlflow.log_text("prefixed", "p.txt")
    assert client.get_run(run.info.run_id).data.metrics == {"m": 3.0}
    assert mlflow.artifacts.load_text(f"runs:/{run.info.run_id}/p.txt") == "prefixed"
    assert httpx.get(prefixed.url + "/health").text == "OK"
    assert httpx.get(prefixed.base + "/health").status_code == 404
    r = httpx.get(prefixed.base + "/api/2.0/mlflow/experiments/get?experiment_id=0")
    assert r.status_code == 404 and r.json()["error_code"] == "ENDPOINT_NOT_FOUND"


def test_cors_and_allowed_hosts_from_env(prefixed):
    url = prefixed.url + "/api/2.0/mlflow/experiments/create"
    r = httpx.options(url, headers={"origin": "http://good.example",
                                    "access-control-request-method": "POST"})
    assert r.status_code == 200
    assert r.headers["access-control-allow-origin"] == "http://good.example"
    r = httpx.post(url, json={"name": f"cors-{uuid.uuid4().hex}"},
                   headers={"origin": "http://good.example"})
    assert r.status_code == 200
    assert r.headers["access-control-allow-origin"] == "http://good.example"
    r = httpx.post(url, json={"name": "x"}, headers={"origin": "http://bad.example"})
    assert r.status_code == 403
    r = httpx.options(url, headers={"origin": "http://bad.example",
                                    "access-control-request-method": "POST"})
    assert r.status_code == 403 and r.json()["error_code"] == "PERMISSION_DENIED"
    r = httpx.post(url, content=b'{"name": "y"}', headers={
        "origin": "http://good.example", "content-type": "text/plain"})
    assert r.status_code == 403
    for host in ("myhost.example", "api.corp.example:8080"):
        assert httpx.get(prefixed.url + "/health", headers={"host": host}).status_code == 200
    assert httpx.get(prefixed.url + "/health", headers={"host": "corp.example.evil"}
                     ).status_code == 403


def test_prometheus_metrics(prefixed):
    httpx.get(prefixed.url + "/api/2.0/mlflow/experiments/get?experiment_id=0")
    body = httpx.get(prefixed.url + "/metrics").text
    assert "tracklog_http_requests_total" in body
    assert 'route="/tl/api/2.0/mlflow/experiments/get"' in body


def test_workers_serve_one_store(tmp_path, launch):
    """--workers (here from TRACKLOG_WORKERS) runs the app factory in each worker process."""
    srv = launch(tmp_path, env={"TRACKLOG_WORKERS": "2"})
    try:
        api = f"{srv.url}/api/2.0/mlflow"
        with httpx.Client() as http:
            ids = [http.post(f"{api}/experiments/create", json={"name": f"w-{i}"}).json()[
                "experiment_id"] for i in range(6)]
            names = {http.get(f"{api}/experiments/get", params={"experiment_id": i}).json()[
                "experiment"]["name"] for i in ids}
        assert names == {f"w-{i}" for i in range(6)}
        assert srv.process.poll() is None
    finally:
        srv.stop()
    log = srv.log.read_text()
    assert log.count("Started server process") >= 2, log[-2000:]
