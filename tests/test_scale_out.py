"""Scaling out: three tracklog servers on one PostgreSQL database, as replicas behind a load
balancer would be. Whatever one server writes, every other reads at once; writes spread
over all of them are neither lost nor doubled; no server answers from a cache what
another has since changed."""

from __future__ import annotations

import subprocess
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from mlflow import MlflowClient
from mlflow.entities import Metric, Param
from mlflow.exceptions import MlflowException

from tests.conftest import PG_ADMIN_URL, Server, start_server
from tracklog.testing.server import TRACKLOG

REPLICAS = 3


@pytest.fixture(scope="module")
def replicas(private_database, tmp_path_factory: pytest.TempPathFactory
             ) -> Iterator[list[Server]]:
    uri = private_database(PG_ADMIN_URL, "postgresql")
    shared = tmp_path_factory.mktemp("scale-out")
    # Started together on an empty database, as a deployment rolls replicas out: one of
    # them creates the schema, the others wait for it and then use it.
    servers: list[Server] = []
    try:
        with ThreadPoolExecutor(REPLICAS) as pool:
            starting = [pool.submit(start_server, _own_dir(shared, i), uri,
                                    "--artifacts-destination", str(shared / "artifacts"))
                        for i in range(REPLICAS)]
            failure = None
            for future in starting:
                try:
                    servers.append(future.result())
                except Exception as exc:  # the started ones are still stopped below
                    failure = failure or exc
        if failure is not None:
            raise failure
        yield servers
    finally:
        for s in servers:
            s.stop()


def _own_dir(root: Path, i: int) -> Path:
    path = root / f"replica-{i}"
    path.mkdir()
    return path


@pytest.fixture(scope="module")
def clients(replicas: list[Server]) -> list[MlflowClient]:
    return [MlflowClient(s.url) for s in replicas]


def _name(what: str) -> str:
    return f"{what}-{uuid.uuid4().hex[:8]}"


def test_batches_spread_over_replicas_are_neither_lost_nor_doubled(clients):
    exp = clients[0].create_experiment(_name("spread"))
    run_id = clients[0].create_run(exp).info.run_id
    batches, per_batch = 24, 250

    def write(b: int) -> None:
        client = clients[b % REPLICAS]
        metrics = [Metric("loss", float(b * per_batch + i), 1_000 + b * per_batch + i,
                          b * per_batch + i) for i in range(per_batch)]
        metrics.append(Metric(f"batch-{b}", 1.0, 1, 0))
        client.log_batch(run_id, metrics=metrics, params=[Param(f"p{b}", str(b))])

    with ThreadPoolExecutor(6) as pool:
        list(pool.map(write, range(batches)))

    total = batches * per_batch
    for client in clients:
        history = client.get_metric_history(run_id, "loss")
        steps = sorted(m.step for m in history)
        assert steps == list(range(total))  # every point once
        run = client.get_run(run_id)
        assert run.data.metrics["loss"] == float(total - 1)  # the newest of all replicas
        assert len(run.data.params) == batches
        assert sum(k.startswith("batch-") for k in run.data.metrics) == batches


def test_what_one_replica_writes_the_others_read_at_once(clients):
    a, b, c = clients
    exp = a.create_experiment(_name("visible"))
    run_id = a.create_run(exp, tags={"team": "x"}).info.run_id
    assert b.get_run(run_id).data.tags["team"] == "x"
    b.log_metric(run_id, "acc", 0.5, timestamp=5, step=1)
    assert [m.value for m in c.get_metric_history(run_id, "acc")] == [0.5]
    c.set_tag(run_id, "team", "y")
    assert a.get_run(run_id).data.tags["team"] == "y"
    a.set_terminated(run_id, "FINISHED")
    assert b.get_run(run_id).info.status == "FINISHED"
    found = c.search_runs([exp], "metrics.acc > 0.1 and tags.team = 'y'")
    assert [r.info.run_id for r in found] == [run_id]


def test_registry_alias_moved_on_one_replica_is_seen_on_the_others(clients):
    a, b, c = clients
    name = _name("model")
    a.create_registered_model(name)
    v1 = a.create_model_version(name, "mlflow-artifacts:/m/1").version
    v2 = a.create_model_version(name, "mlflow-artifacts:/m/2").version
    a.set_registered_model_alias(name, "champion", v1)
    assert b.get_model_version_by_alias(name, "champion").version == v1
    b.set_registered_model_alias(name, "champion", v2)
    assert a.get_model_version_by_alias(name, "champion").version == v2
    assert c.get_model_version_by_alias(name, "champion").version == v2
    c.delete_registered_model_alias(name, "champion")
    with pytest.raises(MlflowException):
        a.get_model_version_by_alias(name, "champion")
    # Deleted and created again under the same name on another replica: a new model.
    b.delete_registered_model(name)
    c.create_registered_model(name, description="second")
    assert a.get_registered_model(name).description == "second"
    assert a.search_model_versions(f"name = '{name}'") == []


def test_no_replica_logs_through_a_stale_cache(replicas, clients):
    a, b, c = clients
    exp_name = _name("stale")
    exp = a.create_experiment(exp_name)
    run_id = a.create_run(exp).info.run_id
    b.log_metric(run_id, "loss", 1.0, timestamp=1, step=0)  # b now knows the series

    # Deleted on one replica: the others refuse writes at once, and take them again
    # after a restore made on a third.
    a.delete_run(run_id)
    with pytest.raises(MlflowException) as refused:
        b.log_metric(run_id, "loss", 2.0, timestamp=2, step=1)
    assert refused.value.error_code == "INVALID_PARAMETER_VALUE"
    c.restore_run(run_id)
    b.log_metric(run_id, "loss", 3.0, timestamp=3, step=2)
    assert [m.value for m in c.get_metric_history(run_id, "loss")] == [1.0, 3.0]

    # Purged by another process altogether: a write through b finds no run, not a
    # series it remembers.
    a.delete_run(run_id)
    a.delete_experiment(exp)
    _gc(replicas[0], "--experiment-ids", exp)
    with pytest.raises(MlflowException) as gone:
        b.log_metric(run_id, "loss", 4.0, timestamp=4, step=3)
    assert gone.value.error_code == "RESOURCE_DOES_NOT_EXIST"

    # The name is free again: a new experiment made through c is what a and b resolve.
    new = c.create_experiment(exp_name)
    assert new != exp
    assert a.get_experiment_by_name(exp_name).experiment_id == new
    new_run = b.create_run(new).info.run_id
    b.log_metric(new_run, "loss", 5.0, timestamp=5, step=0)
    assert [m.value for m in a.get_metric_history(new_run, "loss")] == [5.0]


def _gc(server: Server, *options: str) -> None:
    started = time.monotonic()
    out = subprocess.run(
        [TRACKLOG, "gc", "--backend-store-uri", server.backend, "--artifacts-destination",
         str(server.artifacts), *options],
        capture_output=True, text=True, timeout=60,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert time.monotonic() - started < 60
