"""The real MLflow client (mlflow-skinny 3.17.2) against `tracklog server`, end to end.

Every test runs once per backend of the ``server`` fixture (SQLite, PostgreSQL).
"""

from __future__ import annotations

import hashlib
import math
import os
import time
import uuid

import httpx
import mlflow
import pytest
from mlflow.entities import Metric, Param, RunTag, ViewType
from mlflow.exceptions import MlflowException, RestException
from mlflow.pyfunc.model import PythonModel


def test_set_experiment_creates_then_reuses(client):
    name = f"exp-{uuid.uuid4().hex}"
    first = mlflow.set_experiment(name)
    again = mlflow.set_experiment(name)
    assert first.experiment_id == again.experiment_id
    got = client.get_experiment(first.experiment_id)
    assert got.name == name
    assert got.lifecycle_stage == "active"
    assert got.artifact_location == f"mlflow-artifacts:/{first.experiment_id}"
    assert client.get_experiment_by_name(f"missing-{uuid.uuid4().hex}") is None


def test_default_experiment_and_duplicate_name(client):
    assert client.get_experiment("0").name == "Default"
    name = f"dup-{uuid.uuid4().hex}"
    client.create_experiment(name)
    with pytest.raises(MlflowException) as info:
        client.create_experiment(name)
    assert info.value.error_code == "RESOURCE_ALREADY_EXISTS"


def test_run_lifecycle_and_nested_runs(client, experiment_id):
    with mlflow.start_run(run_name="parent") as parent:
        with mlflow.start_run(run_name="child", nested=True) as child:
            pass
    got_parent = client.get_run(parent.info.run_id)
    got_child = client.get_run(child.info.run_id)
    assert got_parent.info.run_name == "parent"
    assert got_parent.info.status == "FINISHED"
    assert got_parent.info.end_time is not None
    assert got_parent.info.experiment_id == experiment_id
    assert got_child.data.tags["mlflow.parentRunId"] == parent.info.run_id
    assert got_child.info.artifact_uri == (
        f"mlflow-artifacts:/{experiment_id}/{child.info.run_id}/artifacts"
    )
    unnamed = client.create_run(experiment_id)
    assert unnamed.info.run_name
    assert unnamed.data.tags["mlflow.runName"] == unnamed.info.run_name
    client.set_terminated(unnamed.info.run_id, "KILLED")
    assert client.get_run(unnamed.info.run_id).info.status == "KILLED"


def test_params_truncation_and_immutability(client, experiment_id):
    long_value = "v" * 7000
    with mlflow.start_run() as run:
        mlflow.log_param("lr", 0.01)
        mlflow.log_params({"exact": "e" * 6000, "long": long_value, "empty": ""})
        mlflow.log_param("lr", 0.01)  # same value again: a no-op
        with pytest.raises(MlflowException) as info:
            mlflow.log_param("lr", 0.02)
    assert info.value.error_code == "INVALID_PARAMETER_VALUE"
    assert "Changing param values is not allowed" in str(info.value)
    params = client.get_run(run.info.run_id).data.params
    assert params["lr"] == "0.01"
    assert params["exact"] == "e" * 6000
    assert params["long"] == "v" * 6000
    assert params["empty"] == ""


def test_metrics_steps_nan_inf_and_history(client, experiment_id):
    with mlflow.start_run() as run:
        for step in range(5):
            mlflow.log_metric("loss", 1.0 / (step + 1), step=step)
        mlflow.log_metric("nan", float("nan"))
        mlflow.log_metric("inf", float("inf"))
        mlflow.log_metric("neginf", float("-inf"))
        mlflow.log_metrics({"acc": 0.5, "f1": 0.25}, step=3)
    data = client.get_run(run.info.run_id).data
    assert data.metrics["loss"] == pytest.approx(0.2)
    assert math.isnan(data.metrics["nan"])
    assert data.metrics["inf"] > 1e308
    assert data.metrics["neginf"] < -1e308
    assert data.metrics["acc"] == 0.5
    history = client.get_metric_history(run.info.run_id, "loss")
    assert [m.step for m in history] == [0, 1, 2, 3, 4]
    assert [m.value for m in history] == pytest.approx([1, 0.5, 1 / 3, 0.25, 0.2])
    assert client.get_metric_history(run.info.run_id, "never-logged") == []


def test_tags_set_and_delete(client, experiment_id):
    with mlflow.start_run() as run:
        mlflow.set_tag("team", "a")
        mlflow.set_tags({"team": "b", "long": "t" * 9000})
    run_id = run.info.run_id
    tags = client.get_run(run_id).data.tags
    assert tags["team"] == "b"
    assert tags["long"] == "t" * 8000
    client.delete_tag(run_id, "team")
    assert "team" not in client.get_run(run_id).data.tags
    with pytest.raises(MlflowException) as info:
        client.delete_tag(run_id, "team")
    assert info.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    client.set_tag(run_id, "mlflow.runName", "renamed")
    assert client.get_run(run_id).info.run_name == "renamed"


def test_log_batch_of_1000_metrics(client, experiment_id):
    run = client.create_run(experiment_id)
    now = int(time.time() * 1000)
    metrics = [Metric("m", float(i), now + i, i) for i in range(1000)]
    client.log_batch(run.info.run_id, metrics=metrics,
                     params=[Param("p", "1")], tags=[RunTag("t", "x")])
    history = client.get_metric_history(run.info.run_id, "m")
    assert len(history) == 1000
    assert [m.step for m in history] == list(range(1000))
    got = client.get_run(run.info.run_id)
    assert got.data.metrics["m"] == 999.0
    assert got.data.params == {"p": "1"}


def test_search_runs_filters_and_order(client, experiment_id):
    ids = {}
    for i, (lr, model) in enumerate([("0.1", "cnn"), ("0.01", "CNN-big"), ("0.001", "rnn")]):
        with mlflow.start_run(run_name=f"run-{i}") as run:
            mlflow.log_param("lr", lr)
            mlflow.set_tag("model", model)
            mlflow.log_metric("acc", i / 10)
        ids[i] = run.info.run_id
    exp = [experiment_id]

    def names(filter_string: str, order_by=None) -> list[str]:
        runs = client.search_runs(exp, filter_string, order_by=order_by)
        return [r.info.run_name for r in runs]

    assert names("metrics.acc > 0.05", ["metrics.acc DESC"]) == ["run-2", "run-1"]
    assert names("params.lr = '0.01'") == ["run-1"]
    assert sorted(names("tags.model LIKE 'cnn%'")) == ["run-0"]
    assert sorted(names("tags.model ILIKE 'cnn%'")) == ["run-0", "run-1"]
    assert sorted(names(f"attributes.run_id IN ('{ids[0]}', '{ids[2]}')")) == ["run-0", "run-2"]
    assert names("attributes.run_name = 'run-1'") == ["run-1"]
    assert names("params.missing = 'x'") == []
    assert names("", ["params.lr ASC"]) == ["run-2", "run-1", "run-0"]
    frame = mlflow.search_runs(experiment_ids=exp, filter_string="metrics.acc >= 0.1",
                               order_by=["metrics.acc ASC"])
    assert list(frame["tags.mlflow.runName"]) == ["run-1", "run-2"]
    with pytest.raises(MlflowException) as info:
        client.search_runs(exp, "metrics.acc = 'x'")
    assert info.value.error_code == "INVALID_PARAMETER_VALUE"


def test_metric_order_and_filters_with_nan(client, experiment_id):
    """As MLflow: sorting by a metric puts its numbers first, then NaN, then the runs
    without the metric, in both directions; NaN fails > and < but satisfies !=."""
    for name, value in [("low", 1.0), ("nan", math.nan), ("none", None), ("high", 2.0)]:
        with mlflow.start_run(run_name=name):
            if value is not None:
                mlflow.log_metric("m", value)
    exp = [experiment_id]

    def names(filter_string: str = "", order_by=None) -> list[str]:
        return [r.info.run_name for r in client.search_runs(exp, filter_string,
                                                            order_by=order_by)]

    assert names(order_by=["metrics.m ASC"]) == ["low", "high", "nan", "none"]
    assert names(order_by=["metrics.m DESC"]) == ["high", "low", "nan", "none"]
    assert sorted(names("metrics.m != 1")) == ["high", "nan"]
    assert sorted(names("metrics.m > 0")) == ["high", "low"]
    assert names("metrics.m < 1") == []


def test_search_pagination_over_250_runs(client, experiment_id):
    now = int(time.time() * 1000)
    for i in range(250):
        client.create_run(experiment_id, start_time=now + i)
    seen: list[str] = []
    token = None
    pages = 0
    while True:
        page = client.search_runs([experiment_id], max_results=100, page_token=token)
        seen.extend(r.info.run_id for r in page)
        pages += 1
        token = page.token
        if not token:
            break
    assert pages == 3
    assert len(seen) == len(set(seen)) == 250
    starts = [client.get_run(r).info.start_time for r in (seen[0], seen[-1])]
    assert starts == [now + 249, now]


def test_delete_and_restore(client, experiment_id):
    run = client.create_run(experiment_id)
    run_id = run.info.run_id
    client.delete_run(run_id)
    assert client.get_run(run_id).info.lifecycle_stage == "deleted"
    assert client.search_runs([experiment_id]) == []
    deleted = client.search_runs([experiment_id], run_view_type=ViewType.DELETED_ONLY)
    assert [r.info.run_id for r in deleted] == [run_id]
    with pytest.raises(MlflowException) as info:
        client.log_param(run_id, "x", "1")
    assert info.value.error_code == "INVALID_PARAMETER_VALUE"
    client.restore_run(run_id)
    assert client.get_run(run_id).info.lifecycle_stage == "active"
    client.delete_experiment(experiment_id)
    assert client.get_experiment(experiment_id).lifecycle_stage == "deleted"
    client.restore_experiment(experiment_id)
    assert client.get_experiment(experiment_id).lifecycle_stage == "active"


def test_artifacts_text_dict_and_nested_listing(client, experiment_id, tmp_path):
    (tmp_path / "tree" / "inner").mkdir(parents=True)
    (tmp_path / "tree" / "a.txt").write_text("alpha")
    (tmp_path / "tree" / "inner" / "b.txt").write_text("beta")
    single = tmp_path / "single.bin"
    single.write_bytes(bytes(range(256)))
    with mlflow.start_run() as run:
        mlflow.log_text("hello", "notes/hello.txt")
        mlflow.log_dict({"k": [1, 2]}, "cfg/config.json")
        mlflow.log_artifact(str(single))
        mlflow.log_artifacts(str(tmp_path / "tree"), "tree")
    run_id = run.info.run_id
    top = {f.path: f for f in client.list_artifacts(run_id)}
    assert set(top) == {"notes", "cfg", "single.bin", "tree"}
    assert top["tree"].is_dir and top["single.bin"].file_size == 256
    assert [f.path for f in client.list_artifacts(run_id, "tree/inner")] == ["tree/inner/b.txt"]
    assert mlflow.artifacts.load_text(f"runs:/{run_id}/notes/hello.txt") == "hello"
    assert mlflow.artifacts.load_dict(f"runs:/{run_id}/cfg/config.json") == {"k": [1, 2]}
    local = client.download_artifacts(run_id, "tree", str(tmp_path / "down"))
    assert open(os.path.join(local, "inner", "b.txt")).read() == "beta"


def test_50mb_artifact_round_trip(client, experiment_id, tmp_path):
    payload = tmp_path / "big.bin"
    chunk = os.urandom(1024 * 1024)
    digest = hashlib.sha256()
    with open(payload, "wb") as f:
        for i in range(50):
            block = chunk[i:] + chunk[:i]
            f.write(block)
            digest.update(block)
    with mlflow.start_run() as run:
        mlflow.log_artifact(str(payload), "blobs")
    out = client.download_artifacts(run.info.run_id, "blobs/big.bin", str(tmp_path / "dl"))
    assert os.path.getsize(out) == 50 * 1024 * 1024
    got = hashlib.sha256()
    with open(out, "rb") as f:
        while block := f.read(1 << 20):
            got.update(block)
    assert got.hexdigest() == digest.hexdigest()


def test_log_input_dataset(client, experiment_id):
    from mlflow.data.http_dataset_source import HTTPDatasetSource
    from mlflow.data.meta_dataset import MetaDataset

    # MetaDataset declares `profile` abstract in its type hints but is instantiable.
    dataset = MetaDataset(  # type: ignore[abstract]
        HTTPDatasetSource("http://example.com/d.csv"), name="d", digest="abc"
    )
    with mlflow.start_run() as run:
        mlflow.log_input(dataset, context="training")
        mlflow.log_input(dataset, context="training")
    inputs = client.get_run(run.info.run_id).inputs.dataset_inputs
    assert len(inputs) == 1
    assert inputs[0].dataset.name == "d"
    assert inputs[0].dataset.digest == "abc"
    assert {t.key: t.value for t in inputs[0].tags}["mlflow.data.context"] == "training"
    found = client.search_runs([experiment_id], "datasets.context = 'training'")
    assert [r.info.run_id for r in found] == [run.info.run_id]


class _Doubler(PythonModel):
    def predict(self, context, model_input, params=None):
        return [2 * x for x in model_input]


def test_pyfunc_log_register_and_load(client, experiment_id):
    name = f"model-{uuid.uuid4().hex[:8]}"
    with mlflow.start_run() as run:
        mlflow.log_param("alpha", "1")
        info = mlflow.pyfunc.log_model(name="model", python_model=_Doubler(),
                                       pip_requirements=[])
    logged = client.get_logged_model(info.model_id)
    assert logged.status == "READY"
    assert logged.source_run_id == run.info.run_id
    version = mlflow.register_model(info.model_uri, name)
    assert version.version == "1"
    assert version.status == "READY"
    again = mlflow.register_model(f"runs:/{run.info.run_id}/model", name)
    assert again.version == "2"
    loaded = mlflow.pyfunc.load_model(f"models:/{name}/1")
    assert list(loaded.predict([1, 2, 3])) == [2, 4, 6]
    assert client.get_registered_model(name).name == name
    client.set_registered_model_alias(name, "champion", "2")
    assert client.get_model_version_by_alias(name, "champion").version == "2"
    tags = client.get_logged_model(info.model_id).tags
    assert name in tags.get("mlflow.modelVersions", "")


def test_versions_from_logged_models_name_their_run(client, experiment_id):
    """A version registered from a logged model (``models:/m-...``) carries the run that
    logged the model, as MLflow fills it in: through ``log_model(registered_model_name=)``
    and through ``register_model``."""
    name = f"model-{uuid.uuid4().hex[:8]}"
    with mlflow.start_run() as run:
        info = mlflow.pyfunc.log_model(name="model", python_model=_Doubler(),
                                       pip_requirements=[], registered_model_name=name)
    run_id = run.info.run_id
    assert info.model_uri == f"models:/{info.model_id}"
    first = client.get_model_version(name, "1")
    assert (first.run_id, first.source) == (run_id, info.model_uri)
    second = mlflow.register_model(info.model_uri, name)
    assert second.run_id == run_id
    assert client.get_model_version(name, "2").run_id == run_id
    found = client.search_model_versions(f"run_id = '{run_id}'")
    assert sorted(v.version for v in found) == ["1", "2"]


def test_unknown_alias_is_a_bad_parameter(client, server):
    """As MLflow: an alias the model lacks is INVALID_PARAMETER_VALUE (HTTP 400); an
    unknown model stays RESOURCE_DOES_NOT_EXIST (HTTP 404)."""
    name = f"model-{uuid.uuid4().hex[:8]}"
    client.create_registered_model(name)
    with pytest.raises(MlflowException) as info:
        client.get_model_version_by_alias(name, "nope")
    assert info.value.error_code == "INVALID_PARAMETER_VALUE"
    url = f"{server.url}/api/2.0/mlflow/registered-models/alias"
    answer = httpx.get(url, params={"name": name, "alias": "nope"})
    assert (answer.status_code, answer.json()["error_code"]) == (400, "INVALID_PARAMETER_VALUE")
    answer = httpx.get(url, params={"name": f"{name}-missing", "alias": "nope"})
    assert (answer.status_code, answer.json()["error_code"]) == (404, "RESOURCE_DOES_NOT_EXIST")


def test_error_codes_the_client_branches_on(client, experiment_id):
    with pytest.raises(RestException) as unknown_run:
        client.get_run(uuid.uuid4().hex)
    assert unknown_run.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    with pytest.raises(MlflowException) as unknown_experiment:
        client.get_experiment("987654321")
    assert unknown_experiment.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    with pytest.raises(MlflowException) as bad_key:
        client.log_metric(client.create_run(experiment_id).info.run_id, "bad$key", 1.0)
    assert bad_key.value.error_code == "INVALID_PARAMETER_VALUE"


def test_tracing_degrades_cleanly(client, experiment_id):
    """The server has no trace routes: traced code still runs and its run is intact."""

    @mlflow.trace
    def double(x: int) -> int:
        return 2 * x

    with mlflow.start_run() as run:
        assert double(21) == 42
        mlflow.log_metric("after_trace", 1.0)
    mlflow.flush_trace_async_logging()
    assert client.get_run(run.info.run_id).data.metrics == {"after_trace": 1.0}


def test_experiment_search_rename_and_tags(client):
    prefix = f"xs-{uuid.uuid4().hex[:8]}"
    ids = [client.create_experiment(f"{prefix}-{i}", tags={"team": "a" if i else "b"})
           for i in range(3)]
    found = mlflow.search_experiments(filter_string=f"name LIKE '{prefix}%'",
                                      order_by=["name DESC"])
    assert [e.experiment_id for e in found] == ids[::-1]
    tagged = client.search_experiments(filter_string=f"name LIKE '{prefix}%' AND tags.team = 'a'")
    assert sorted(e.experiment_id for e in tagged) == sorted(ids[1:])
    client.rename_experiment(ids[0], f"{prefix}-renamed")
    client.set_experiment_tag(ids[0], "note", "n")
    got = client.get_experiment(ids[0])
    assert got.name == f"{prefix}-renamed" and got.tags["note"] == "n"
    client.delete_experiment_tag(ids[0], "note")
    assert "note" not in client.get_experiment(ids[0]).tags
    client.delete_experiment(ids[2])
    active = client.search_experiments(filter_string=f"name LIKE '{prefix}%'")
    assert ids[2] not in [e.experiment_id for e in active]
    deleted = client.search_experiments(view_type=ViewType.DELETED_ONLY,
                                        filter_string=f"name LIKE '{prefix}%'")
    assert [e.experiment_id for e in deleted] == [ids[2]]
