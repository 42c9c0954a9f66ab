"""``tracklog server --backend-store-uri <mlruns>`` serving a directory MLflow wrote, read
(and written) by the real MLflow client over HTTP."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tracklog.entities import ViewType
from tracklog_store_file.store import open_store

CLIENT = """
import json, sys
from mlflow.entities import ViewType
from mlflow.tracking import MlflowClient

client = MlflowClient()
exps = client.search_experiments(view_type=ViewType.ALL)
ids = [e.experiment_id for e in exps]
hits = client.search_runs(ids, "metrics.loss < 0.6 and params.lr = '0.01'",
                          order_by=["metrics.loss ASC"])
(parent,) = hits
history = client.get_metric_history(parent.info.run_id, "loss")
client.log_metric(parent.info.run_id, "served", 1.25, timestamp=42, step=3)
client.set_tag(parent.info.run_id, "via", "server")
print(json.dumps({
    "experiments": sorted([e.experiment_id, e.name, e.lifecycle_stage] for e in exps),
    "hits": [r.info.run_id for r in hits],
    "params": dict(parent.data.params),
    "history": [[m.timestamp, m.step, m.value] for m in history],
    "models": sorted(m.model_id for m in client.search_logged_models(ids)),
}))
"""


REGISTRY_CLIENT = """
import json, sys
from mlflow.tracking import MlflowClient

client = MlflowClient()
run = client.create_run(client.create_experiment("registry-e2e"))
client.create_registered_model("served model", tags={"team": "ml"}, description="d")
first = client.create_model_version("served model", "s3://bucket/v1", run_id=run.info.run_id)
second = client.create_model_version("served model", "s3://bucket/v2", tags={"q": "ok"})
client.set_registered_model_alias("served model", "champion", second.version)
client.transition_model_version_stage("served model", first.version, "Production")
by_alias = client.get_model_version_by_alias("served model", "champion")
model = client.get_registered_model("served model")
found = client.search_model_versions("name = 'served model'")
print(json.dumps({
    "versions": [first.version, second.version],
    "by_alias": [by_alias.version, by_alias.source, dict(by_alias.tags), list(by_alias.aliases)],
    "aliases": dict(model.aliases),
    "latest": sorted([v.current_stage, v.version] for v in model.latest_versions),
    "search": sorted(v.version for v in found),
    "run_id": run.info.run_id,
}))
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(MLFLOW_ALLOW_FILE_STORE="true", MLFLOW_DISABLE_TELEMETRY="true", **extra)
    return env


@contextlib.contextmanager
def _serving(backend_store_uri: str, tmp_path: Path) -> Iterator[str]:
    """``tracklog server --backend-store-uri <uri>`` on a free port, until the block ends."""
    port = _free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tracklog",
            "server",
            "--backend-store-uri",
            backend_store_uri,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--artifacts-destination",
            str(tmp_path / "artifacts"),
        ],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                pytest.fail(f"tracklog server exited: {proc.stdout.read() if proc.stdout else ''}")
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("tracklog server did not answer /health within 60 s")
            time.sleep(0.1)  # readiness poll, not a timing assumption
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture
def server(mlflow_dir: Path, tmp_path: Path) -> Iterator[str]:
    with _serving(str(mlflow_dir), tmp_path) as url:
        yield url


def test_server_serves_an_mlflow_directory_to_the_mlflow_client(
    server: str, mlflow_dir: Path
) -> None:
    done = subprocess.run(
        [sys.executable, "-c", CLIENT],
        env=_env(MLFLOW_TRACKING_URI=server),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    seen = json.loads(done.stdout)

    store = open_store(str(mlflow_dir))
    exps = store.search_experiments(view_type=ViewType.ALL)
    assert seen["experiments"] == sorted(
        [e.experiment_id, e.name, e.lifecycle_stage.value] for e in exps
    )
    (parent,) = [
        r for r in store.search_runs([e.experiment_id for e in exps]) if r.info.run_name == "parent"
    ]
    assert seen["hits"] == [parent.info.run_id]
    assert seen["params"] == {"lr": "0.01", "opt/name": "adam", "empty": ""}
    assert seen["history"] == [[1_700_000_000_000 + s, s, 1.0 / (s + 1)] for s in range(5)]
    assert len(seen["models"]) == 1
    # What the client wrote through the server landed in MLflow's layout.
    after = store.get_run(parent.info.run_id)
    assert after.data.metrics["served"].value == 1.25 and after.data.metrics["served"].step == 3
    assert after.data.tags["via"] == "server"
    exp_dir = mlflow_dir / parent.info.experiment_id / parent.info.run_id
    assert (exp_dir / "metrics" / "served").read_text() == "42 1.25 3\n"


def test_registry_through_the_server_with_the_mlflow_client(tmp_path: Path) -> None:
    """The real MLflow client registers a model on a server over ``file:<dir>``, sets an
    alias and reads it back; the registry lands on disk in MLflow's layout."""
    root = tmp_path / "mlruns"
    with _serving(f"file:{root}", tmp_path) as url:
        done = subprocess.run(
            [sys.executable, "-c", REGISTRY_CLIENT],
            env=_env(MLFLOW_TRACKING_URI=url),
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=300,
        )
    assert done.returncode == 0, done.stderr[-4000:]
    seen = json.loads(done.stdout)
    assert seen["versions"] == ["1", "2"]
    assert seen["by_alias"] == ["2", "s3://bucket/v2", {"q": "ok"}, ["champion"]]
    assert seen["aliases"] == {"champion": "2"}
    assert seen["latest"] == [["None", "2"], ["Production", "1"]]
    assert seen["search"] == ["1", "2"]
    assert (root / "models" / "served model" / "aliases" / "champion").read_text() == "2"
    store = open_store(str(root))
    assert store.get_model_version("served model", "1").run_id == seen["run_id"]
    assert store.get_model_version_by_alias("served model", "champion").version == "2"
    assert store.get_registered_model("served model").tags == {"team": "ml"}
