"""One server per backend for the whole bad-input suite: SQLite, PostgreSQL, MariaDB and
the file store, each seeded once with an experiment, a run with data and an artifact, a
registered model with a version and an alias, and a logged model.

PostgreSQL and MariaDB get a private database per session (dropped afterwards); a
database that cannot be reached skips its cases through ``service_unavailable`` (CI
fails instead).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

sys.path.insert(0, os.path.dirname(__file__))

from badinput_support import (  # noqa: E402 - needs the path above
    API,
    API3,
    PROXY,
    SEED_TRACE,
    Probe,
    Seed,
)

PG_ADMIN = os.environ.get("TRACKLOG_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
MYSQL_ADMIN = os.environ.get("TRACKLOG_TEST_MYSQL_URL", "mysql+pymysql://root@127.0.0.1:3306/test")
BACKENDS = ["sqlite", "postgresql", "mysql", "file"]


def _seed(client: httpx.Client) -> Seed:
    def call(method: str, path: str, **kw) -> dict:
        r = client.request(method, API + path, **kw)
        assert r.status_code == 200, (path, r.text)
        return r.json()

    exp = call("POST", "/experiments/create", json={
        "name": "badinput-seed", "tags": [{"key": "team", "value": "a"}]})["experiment_id"]
    run = call("POST", "/runs/create", json={"experiment_id": exp, "start_time": 1000,
                                             "run_name": "seed"})["run"]["info"]
    call("POST", "/runs/log-batch", json={
        "run_id": run["run_id"], "params": [{"key": "p", "value": "1"}],
        "metrics": [{"key": "m", "value": 1.0, "timestamp": 1000, "step": 0}],
        "tags": [{"key": "t", "value": "x"}]})
    art = run["artifact_uri"].split("mlflow-artifacts:/", 1)[1].strip("/")
    r = client.put(f"{PROXY}/artifacts/{art}/seed.txt", content=b"seed")
    assert r.status_code == 200, r.text
    lm = call("POST", "/logged-models", json={"experiment_id": exp, "name": "seedmodel"})
    assessment = "a-none"
    started = client.post(f"{API3}/traces", json={"trace": {"trace_info": {
        "trace_id": SEED_TRACE, "request_time": "2026-01-01T00:00:00Z", "state": "OK",
        "trace_location": {"mlflow_experiment": {"experiment_id": exp}}}}})
    if started.status_code == 200:  # stores without traces answer 404
        assessment = client.post(f"{API3}/traces/{SEED_TRACE}/assessments", json={
            "assessment": {"assessment_name": "seed", "feedback": {"value": 1}}},
        ).json()["assessment"]["assessment_id"]
    seed = Seed(exp, run["run_id"], "badinput-model", lm["model"]["info"]["model_id"], art,
                assessment=assessment)
    if client.post(API + "/registered-models/create",
                   json={"name": seed.model}).status_code == 200:
        call("POST", "/model-versions/create", json={
            "name": seed.model, "source": run["artifact_uri"] + "/model",
            "run_id": run["run_id"]})
        call("POST", "/registered-models/alias",
             json={"name": seed.model, "alias": "champion", "version": "1"})
    return seed


@pytest.fixture(scope="session", params=BACKENDS)
def bad_server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
               serve, private_database) -> Iterator[tuple[str, object, Path]]:
    backend = request.param
    # The server's directory sits deep inside a box of its own, so a path that escapes
    # it by several levels still lands where the paths test looks, and nowhere else.
    tmp = tmp_path_factory.mktemp(f"badinput-{backend}").joinpath(*"abcdefgh")
    tmp.mkdir(parents=True)
    if backend == "sqlite":
        uri = f"sqlite:///{tmp / 'tracklog.db'}"
    elif backend == "file":
        uri = f"file://{tmp / 'mlruns'}"
    else:
        uri = private_database(PG_ADMIN if backend == "postgresql" else MYSQL_ADMIN, backend)
    server = serve(tmp, uri)
    yield backend, server, tmp
    server.stop()


@pytest.fixture(scope="session")
def probe(bad_server) -> Iterator[Probe]:
    backend, server, tmp = bad_server
    with httpx.Client(base_url=server.url, timeout=60) as client:
        yield Probe(client, _seed(client), tmp, backend)
