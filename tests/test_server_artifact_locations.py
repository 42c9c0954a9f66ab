"""Artifact locations on the way in (experiments/create) and on the way out (a stored
location the server would fetch): 400 naming the field, never a 500, never a request to
a metadata service."""

from __future__ import annotations

import socket
import time
import uuid

import pytest

from tracklog.plugins import resolve_store

API = "/api/2.0/mlflow"

REFUSED = [
    ("file:///x%00y", "control characters"),
    ("file:///x%0ay", "control characters"),
    ("\\\\fileserver\\share\\mlruns", "Windows paths"),
    ("C:\\mlruns", "Windows paths"),
    ("//fileserver/share", "network path"),
    ("file://fileserver/share", "remote host"),
    ("runs:/abc/model", "runs:/"),
    ("http://[::1/x", "malformed URI"),
    ("s3://bucket/a/%2e%2e/b", "'..'"),
    ("http://169.254.169.254/latest/meta-data", "link-local"),
    ("http://2852039166/latest", "link-local"),
    ("wasbs://c@[::ffff:a9fe:a9fe]/p", "link-local"),
    ("http://[fe80::1]/x", "link-local"),
    ("sftp://metadata.google.internal/x", "metadata service"),
    ("mlflow-artifacts:/1/4f2a/artifacts", "inside a run's artifact directory"),
]

ACCEPTED = [
    "sftp://deploy@10.1.2.3/srv/mlflow",
    "s3://ml-artifacts/team",
    "gs://000/bucket-names-are-not-hosts",
    "http://minio.internal:9000/bucket",
    "http://127.0.0.1:9000/bucket",
    "file:///srv/shared/mlruns",
    "/srv/shared/mlruns",
    "dbfs:/databricks/mlflow",
    "mlflow-artifacts:/team-a",
]


@pytest.mark.parametrize("location, reason", REFUSED)
def test_bad_locations_are_refused_at_create(api, location, reason):
    name = f"loc-{uuid.uuid4().hex}"
    r = api.post(f"{API}/experiments/create",
                 json={"name": name, "artifact_location": location})
    assert r.status_code == 400, r.text
    body = r.json()
    assert body["error_code"] == "INVALID_PARAMETER_VALUE"
    assert "'artifact_location'" in body["message"] and reason in body["message"]
    missing = api.get(f"{API}/experiments/get-by-name", params={"experiment_name": name})
    assert missing.status_code == 404


@pytest.mark.parametrize("location", ACCEPTED)
def test_company_locations_are_accepted(api, location):
    """Private-network and loopback hosts, internal endpoints, unhandled schemes."""
    r = api.post(f"{API}/experiments/create",
                 json={"name": f"loc-{uuid.uuid4().hex}", "artifact_location": location})
    assert r.status_code == 200, r.text
    got = api.get(f"{API}/experiments/get", params={"experiment_id": r.json()["experiment_id"]})
    stored = got.json()["experiment"]["artifact_location"]
    # The file store keeps plain paths as file: URIs, as MLflow's does.
    assert stored in (location, f"file://{location}")


def test_mlflow_client_gets_the_refusal(client):
    from mlflow.exceptions import MlflowException

    with pytest.raises(MlflowException, match="control characters") as excinfo:
        client.create_experiment(f"nul-{uuid.uuid4().hex}", artifact_location="file:///x%00y")
    assert excinfo.value.error_code == "INVALID_PARAMETER_VALUE"


@pytest.mark.parametrize("location", ["file:///x%00y", "http://169.254.169.254/latest"])
def test_stored_bad_location_is_refused_not_fetched(api, sqlite_server, location):
    """A location already in the store (written before these rules, or by another tool)
    makes the run's artifact routes answer 400 naming it, not 500."""
    store = resolve_store(sqlite_server.backend, "mlflow-artifacts:/")
    try:
        exp = store.create_experiment(f"old-{uuid.uuid4().hex}", location, [])
    finally:
        store.close()
    run = api.post(f"{API}/runs/create", json={"experiment_id": exp,
                                               "start_time": int(time.time() * 1000)})
    run_id = run.json()["run"]["info"]["run_id"]
    for r in (api.get(f"{API}/artifacts/list", params={"run_id": run_id}),
              api.get("/get-artifact", params={"run_id": run_id, "path": "m.txt"})):
        assert r.status_code == 400, r.text
        assert "'artifact_uri'" in r.json()["message"]


def test_dataset_sources_are_never_fetched(api):
    """log-inputs stores a dataset source as text: the server connects to nothing, so
    sources are not restricted (a listening socket sees no connection)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    port = listener.getsockname()[1]
    try:
        exp = api.post(f"{API}/experiments/create",
                       json={"name": f"ds-{uuid.uuid4().hex}"}).json()["experiment_id"]
        run_id = api.post(f"{API}/runs/create", json={"experiment_id": exp}).json()[
            "run"]["info"]["run_id"]
        source = f'{{"url": "http://127.0.0.1:{port}/data.csv"}}'
        r = api.post(f"{API}/runs/log-inputs", json={"run_id": run_id, "datasets": [{
            "dataset": {"name": "d", "digest": "abc", "source_type": "http",
                        "source": source}}]})
        assert r.status_code == 200, r.text
        got = api.get(f"{API}/runs/get", params={"run_id": run_id}).json()
        assert got["run"]["inputs"]["dataset_inputs"][0]["dataset"]["source"] == source
        listener.setblocking(False)
        with pytest.raises(BlockingIOError):
            listener.accept()
    finally:
        listener.close()
