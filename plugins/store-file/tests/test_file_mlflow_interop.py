"""Interoperability with the real MLflow client, both ways, over one ``mlruns`` directory.

MLflow runs in a subprocess (tests/mlflow_side.py) so its global state never leaks into
other tests. Each side's view of the directory is reduced to the same JSON-able snapshot
and the two snapshots must be equal.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tracklog.entities import (
    Dataset,
    DatasetInput,
    ExperimentTag,
    InputTag,
    LoggedModelOutput,
    LoggedModelParameter,
    LoggedModelStatus,
    LoggedModelTag,
    Metric,
    Param,
    RunStatus,
    RunTag,
    ViewType,
)
from tracklog.search.ast import Comparison, Identifier, Kind, Op, OrderBy
from tracklog_store_file.store import FileStore, open_store


def _float(value: float) -> str:
    return repr(float(value))


_MODEL_STATUS = {
    LoggedModelStatus.LOGGED_MODEL_STATUS_UNSPECIFIED: "UNSPECIFIED",
    LoggedModelStatus.LOGGED_MODEL_PENDING: "PENDING",
    LoggedModelStatus.LOGGED_MODEL_READY: "READY",
    LoggedModelStatus.LOGGED_MODEL_UPLOAD_FAILED: "FAILED",
}


def snapshot(store: FileStore) -> dict:
    """What tracklog reads, in the shape mlflow_side.snapshot() prints."""
    out: dict = {"experiments": {}, "runs": {}, "models": {}}
    exps = store.search_experiments(view_type=ViewType.ALL)
    for e in exps:
        out["experiments"][e.experiment_id] = {
            "name": e.name,
            "artifact_location": e.artifact_location,
            "lifecycle_stage": e.lifecycle_stage.value,
            "tags": e.tags,
            "creation_time": e.creation_time,
            "last_update_time": e.last_update_time,
        }
    ids = [e.experiment_id for e in exps]
    for r in store.search_runs(ids, run_view_type=ViewType.ALL):
        info = r.info
        out["runs"][info.run_id] = {
            "experiment_id": info.experiment_id,
            "run_name": info.run_name,
            "user_id": info.user_id,
            "status": info.status.value,
            "start_time": info.start_time,
            "end_time": info.end_time,
            "artifact_uri": info.artifact_uri,
            "lifecycle_stage": info.lifecycle_stage.value,
            "params": r.data.params,
            "tags": r.data.tags,
            "metrics": {k: _float(m.value) for k, m in r.data.metrics.items()},
            "history": {
                k: sorted(
                    [m.timestamp, m.step, _float(m.value)]
                    for m in store.get_metric_history(info.run_id, k)
                )
                for k in r.data.metrics
            },
            "datasets": sorted(
                [
                    d.dataset.name,
                    d.dataset.digest,
                    d.dataset.source_type,
                    d.dataset.source,
                    d.dataset.schema,
                    d.dataset.profile,
                    {t.key: t.value for t in d.tags},
                ]
                for d in r.inputs.dataset_inputs
            ),
            "model_inputs": sorted(m.model_id for m in r.inputs.model_inputs),
            "model_outputs": sorted([m.model_id, m.step] for m in r.outputs.model_outputs),
        }
    for m in store.search_logged_models(ids, max_results=1000):
        out["models"][m.model_id] = {
            "experiment_id": m.experiment_id,
            "name": m.name,
            "artifact_location": m.artifact_location,
            "status": _MODEL_STATUS[m.status],
            "model_type": m.model_type,
            "source_run_id": m.source_run_id,
            "tags": m.tags,
            "params": m.params,
            "metrics": sorted(
                [
                    x.key,
                    _float(x.value),
                    x.step,
                    x.timestamp,
                    x.dataset_name,
                    x.dataset_digest,
                    x.run_id,
                ]
                for x in m.metrics
            ),
            "creation_timestamp": m.creation_timestamp,
        }
    return json.loads(json.dumps(out, sort_keys=True))


def as_mlflow_reads(snap: dict) -> dict:
    """``snap`` with MLflow's reader quirk applied: its file store parses a metric line
    that names a dataset (``ts value step name digest``) with step 0. tracklog keeps the
    logged step; the tests assert that separately."""
    out = json.loads(json.dumps(snap))
    for run in out["runs"].values():
        for key in DATASET_METRICS & set(run["history"]):
            run["history"][key] = [[ts, 0, v] for ts, _, v in run["history"][key]]
    return out


DATASET_METRICS = {"acc", "rmse"}


def tracklog_search(store: FileStore) -> dict:
    """The queries of mlflow_side.search(), as parsed ASTs."""
    ids = [e.experiment_id for e in store.search_experiments(view_type=ViewType.ALL)]

    def run_ids(flt=(), order=()) -> list[str]:
        return [r.info.run_id for r in store.search_runs(ids, filter=flt, order_by=order)]

    metric_loss = Identifier(Kind.METRIC, "loss")
    return {
        "loss_lt": run_ids((Comparison(metric_loss, Op.LT, 0.6),), (OrderBy(metric_loss, True),)),
        "param": run_ids((Comparison(Identifier(Kind.PARAM, "lr"), Op.EQ, "0.01"),)),
        "tag_like": run_ids((Comparison(Identifier(Kind.TAG, "stage"), Op.LIKE, "tr%"),)),
        "name": run_ids((Comparison(Identifier(Kind.ATTRIBUTE, "run_name"), Op.EQ, "child"),)),
        "all_by_name": run_ids(order=(OrderBy(Identifier(Kind.ATTRIBUTE, "run_name"), False),)),
    }


def test_directory_written_by_mlflow_reads_back_identically(mlflow_dir: Path, run_mlflow) -> None:
    root = mlflow_dir
    seen_by_mlflow = run_mlflow("read", root)
    before = sorted((p, p.stat().st_mtime_ns) for p in root.rglob("*"))
    store = open_store(f"file://{root}")
    mine = snapshot(store)
    assert sorted((p, p.stat().st_mtime_ns) for p in root.rglob("*")) == before  # unchanged
    assert as_mlflow_reads(mine) == seen_by_mlflow["snapshot"]
    assert tracklog_search(store) == seen_by_mlflow["search"]

    # Spot checks that the data set really covers what the comparison claims to cover.
    exps = {e["name"]: e for e in mine["experiments"].values()}
    assert exps["interop-gone"]["lifecycle_stage"] == "deleted"
    assert exps["interop-b-renamed"]["artifact_location"] == "file:///tmp/interop-art"
    assert exps["interop-a"]["tags"] == {"team": "vision", "nested/key": "x"}
    runs = {r["run_name"]: r for r in mine["runs"].values()}
    parent = runs["parent"]
    assert parent["history"]["loss"] == [
        [1_700_000_000_000 + s, s, _float(1.0 / (s + 1))] for s in range(5)
    ]
    assert parent["metrics"]["a/b/c"] == "3.5"
    assert parent["metrics"]["odd"] == "nan" and parent["metrics"]["big"] == "inf"
    assert parent["params"] == {"lr": "0.01", "opt/name": "adam", "empty": ""}
    assert parent["tags"]["note"] == "multi\nline: text"
    assert parent["tags"]["unicode"] == "héllo ✓"
    assert parent["status"] == "FINISHED" and parent["end_time"] == 1_700_000_009_000
    assert parent["datasets"][0][0] == "train-set"
    assert parent["datasets"][0][-1] == {"mlflow.data.context": "training"}
    assert runs["child"]["tags"]["mlflow.parentRunId"] in mine["runs"]
    assert runs["child"]["status"] == "FAILED"
    assert runs["doomed"]["lifecycle_stage"] == "deleted"
    assert runs["in-gone"]["lifecycle_stage"] == "deleted"
    (model,) = mine["models"].values()
    assert model["status"] == "READY" and model["params"] == {"depth": "3"}
    assert model["metrics"][0][:3] == ["acc", "0.75", 2]
    assert parent["history"]["acc"] == [[1_700_000_000_200, 2, "0.75"]]
    # Latest-value bookkeeping agrees with the history.
    run = store.get_run(parent_id := next(k for k, v in mine["runs"].items() if v is parent))
    assert run.data.metrics["loss"].step == 4
    assert store.get_metric_history(parent_id, "loss", max_results=2).token is not None


def write_with_tracklog(store: FileStore) -> dict[str, str]:
    exp_a = store.create_experiment(
        "tl-a", tags=[ExperimentTag("team", "nlp"), ExperimentTag("deep/key", "1")]
    )
    exp_b = store.create_experiment("tl-b", artifact_location="file:///tmp/tl-art")
    gone = store.create_experiment("tl-gone")
    store.rename_experiment(exp_b, "tl-b-renamed")

    parent = store.create_run(
        exp_a, "alice", 1_700_000_000_000, tags=[RunTag("stage", "train")], run_name="parent"
    ).info.run_id
    store.log_batch(
        parent,
        metrics=[Metric("loss", 1.0 / (s + 1), 1_700_000_000_000 + s, s) for s in range(5)]
        + [
            Metric("a/b/c", 3.5, 10, 0),
            Metric("odd", float("nan"), 5, 0),
            Metric("big", float("-inf"), 6, 0),
        ],
        params=[Param("lr", "0.01"), Param("opt/name", "adam"), Param("empty", "")],
        tags=[RunTag("note", "multi\nline: 'quoted'"), RunTag("unicode", "日本 ✓")],
    )
    dataset = Dataset(
        "eval-set",
        "d1g3st",
        "s3",
        '{"uri": "s3://b/e.csv"}',
        schema='{"mlflow_colspec": []}',
        profile='{"num_rows": 3}',
    )
    store.log_inputs(parent, [DatasetInput(dataset, (InputTag("mlflow.data.context", "eval"),))])
    model = store.create_logged_model(
        exp_a,
        name="reg",
        source_run_id=parent,
        tags=[LoggedModelTag("flavor", "torch")],
        params=[LoggedModelParameter("layers", "4")],
        model_type="regressor",
    )
    store.log_batch(
        parent,
        metrics=[
            Metric(
                "rmse",
                0.25,
                1_700_000_000_300,
                3,
                model_id=model.model_id,
                dataset_name="eval-set",
                dataset_digest="d1g3st",
            )
        ],
    )
    store.finalize_logged_model(model.model_id, LoggedModelStatus.LOGGED_MODEL_READY)
    store.log_outputs(parent, [LoggedModelOutput(model.model_id, 3)])
    store.update_run_info(parent, RunStatus.FINISHED, end_time=1_700_000_009_000)

    child = store.create_run(
        exp_a,
        "bob",
        1_700_000_001_000,
        tags=[RunTag("mlflow.parentRunId", parent)],
        run_name="child",
    )
    store.log_batch(child.info.run_id, metrics=[Metric("loss", 0.5, 1_700_000_001_000, 7)])
    store.update_run_info(child.info.run_id, RunStatus.KILLED)

    doomed = store.create_run(exp_a, "carol", 1_700_000_002_000, run_name="doomed").info.run_id
    store.log_batch(doomed, params=[Param("p", "1")])
    store.delete_run(doomed)

    other = store.create_run(exp_b, "dave", 1_700_000_003_000, run_name="in-b").info.run_id
    store.log_batch(other, metrics=[Metric("loss", 2.0, 1_700_000_003_000, 1)])

    in_gone = store.create_run(gone, "erin", 1_700_000_004_000, run_name="in-gone").info.run_id
    store.log_batch(in_gone, params=[Param("k", "v")])
    store.delete_experiment(gone)
    return {"parent": parent, "model": model.model_id}


def test_directory_written_by_tracklog_opens_in_mlflow(tmp_path: Path, run_mlflow) -> None:
    root = tmp_path / "mlruns"
    store = open_store(str(root))
    ids = write_with_tracklog(store)
    mine = snapshot(store)
    seen_by_mlflow = run_mlflow("read", root)
    assert seen_by_mlflow["snapshot"] == as_mlflow_reads(mine)
    assert seen_by_mlflow["search"] == tracklog_search(store)

    parent = mine["runs"][ids["parent"]]
    assert parent["metrics"]["big"] == "-inf"
    assert parent["tags"]["note"] == "multi\nline: 'quoted'"
    assert parent["datasets"] == [
        [
            "eval-set",
            "d1g3st",
            "s3",
            '{"uri": "s3://b/e.csv"}',
            '{"mlflow_colspec": []}',
            '{"num_rows": 3}',
            {"mlflow.data.context": "eval"},
        ]
    ]
    assert parent["model_outputs"] == [[ids["model"], 3]]
    assert parent["history"]["rmse"] == [[1_700_000_000_300, 3, "0.25"]]
    assert mine["models"][ids["model"]]["metrics"] == [
        ["rmse", "0.25", 3, 1_700_000_000_300, "eval-set", "d1g3st", ids["parent"]]
    ]
    assert {e["name"]: e["lifecycle_stage"] for e in mine["experiments"].values()} == {
        "Default": "active",
        "tl-a": "active",
        "tl-b-renamed": "active",
        "tl-gone": "deleted",
    }


def test_both_tools_write_one_directory(mlflow_dir: Path, run_mlflow) -> None:
    """MLflow writes, tracklog adds to MLflow's runs, MLflow reads tracklog's additions."""
    root = mlflow_dir
    store = open_store(str(root))
    exp = store.get_experiment_by_name("interop-a")
    assert exp is not None
    (parent,) = [r for r in store.search_runs([exp.experiment_id]) if r.info.run_name == "parent"]
    store.log_batch(
        parent.info.run_id,
        metrics=[Metric("loss", 0.1, 1_700_000_000_999, 9)],
        tags=[RunTag("added_by", "tracklog")],
    )
    store.set_experiment_tag(exp.experiment_id, ExperimentTag("touched", "yes"))
    seen = run_mlflow("read", root)["snapshot"]
    assert seen == as_mlflow_reads(snapshot(store))
    run = seen["runs"][parent.info.run_id]
    assert run["metrics"]["loss"] == "0.1"
    assert run["history"]["loss"][-1] == [1_700_000_000_999, 9, "0.1"]
    assert run["tags"]["added_by"] == "tracklog"
    assert seen["experiments"][exp.experiment_id]["tags"]["touched"] == "yes"


@pytest.mark.parametrize("form", ["absolute-uri", "relative-uri", "plain"])
def test_uri_forms_open_the_same_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, form: str
) -> None:
    monkeypatch.chdir(tmp_path)
    uri = {
        "absolute-uri": f"file://{tmp_path}/runs",
        "relative-uri": "file:runs",
        "plain": "./runs",
    }[form]
    from tracklog.plugins import resolve_store

    store = resolve_store(uri)
    assert isinstance(store, FileStore)
    assert store.root == str(tmp_path / "runs")
    assert store.get_experiment("0").artifact_location == (tmp_path / "runs" / "0").as_uri()
    assert (tmp_path / "runs" / "0" / "meta.yaml").is_file()
