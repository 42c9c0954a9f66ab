"""The real MLflow client's side of the interoperability tests, run in a subprocess.

    python mlflow_side.py write      # fill $MLFLOW_TRACKING_URI with a known data set
    python mlflow_side.py read       # print, as JSON, what MLflow reads there and the run
                                     # ids its own search returns for a few queries

The environment must carry MLFLOW_TRACKING_URI=file:<dir> and MLFLOW_ALLOW_FILE_STORE=true.
"""

from __future__ import annotations

import json
import sys

import mlflow
from mlflow.entities import Metric, Param, RunTag, ViewType
from mlflow.tracking import MlflowClient


def write() -> None:
    import pandas as pd

    client = MlflowClient()
    exp_a = client.create_experiment("interop-a", tags={"team": "vision", "nested/key": "x"})
    exp_b = client.create_experiment("interop-b", artifact_location="file:///tmp/interop-art")
    gone = client.create_experiment("interop-gone", tags={"why": "old"})
    client.rename_experiment(exp_b, "interop-b-renamed")

    parent = client.create_run(exp_a, run_name="parent", tags={"stage": "train"})
    pid = parent.info.run_id
    client.log_batch(
        pid,
        metrics=[Metric("loss", 1.0 / (s + 1), 1_700_000_000_000 + s, s) for s in range(5)]
        + [
            Metric("a/b/c", 3.5, 1_700_000_000_100, 0),
            Metric("odd", float("nan"), 5, 0),
            Metric("big", float("inf"), 6, 0),
        ],
        params=[Param("lr", "0.01"), Param("opt/name", "adam"), Param("empty", "")],
        tags=[RunTag("note", "multi\nline: text"), RunTag("unicode", "héllo ✓")],
    )
    frame = pd.DataFrame({"x": [1, 2, 3], "y": [0, 1, 0]})
    from mlflow.data.pandas_dataset import from_pandas

    dataset = from_pandas(frame, name="train-set", source="s3://bucket/train.csv")
    client.log_inputs(
        pid,
        [
            mlflow.entities.DatasetInput(
                dataset._to_mlflow_entity(),
                [mlflow.entities.InputTag("mlflow.data.context", "training")],
            )
        ],
    )
    model = client.create_logged_model(
        exp_a,
        name="clf",
        source_run_id=pid,
        tags={"flavor": "sklearn"},
        params={"depth": "3"},
        model_type="classifier",
    )
    client.log_batch(
        pid,
        metrics=[
            Metric(
                "acc",
                0.75,
                1_700_000_000_200,
                2,
                model_id=model.model_id,
                dataset_name="train-set",
                dataset_digest=dataset.digest,
            )
        ],
    )
    client.finalize_logged_model(model.model_id, mlflow.entities.LoggedModelStatus.READY)
    client.set_terminated(pid, "FINISHED", end_time=1_700_000_009_000)

    child = client.create_run(exp_a, run_name="child", tags={"mlflow.parentRunId": pid})
    client.log_metric(child.info.run_id, "loss", 0.5, timestamp=1_700_000_001_000, step=7)
    client.set_terminated(child.info.run_id, "FAILED")

    doomed = client.create_run(exp_a, run_name="doomed")
    client.log_param(doomed.info.run_id, "p", "1")
    client.delete_run(doomed.info.run_id)

    other = client.create_run(exp_b, run_name="in-b")
    client.log_metric(other.info.run_id, "loss", 2.0, step=1)

    in_gone = client.create_run(gone, run_name="in-gone")
    client.log_param(in_gone.info.run_id, "k", "v")
    client.delete_experiment(gone)


def _float(value: float) -> str:
    return repr(float(value))


def snapshot() -> dict:
    client = MlflowClient()
    out: dict = {"experiments": {}, "runs": {}, "models": {}}
    exps = client.search_experiments(view_type=ViewType.ALL)
    for e in exps:
        out["experiments"][e.experiment_id] = {
            "name": e.name,
            "artifact_location": e.artifact_location,
            "lifecycle_stage": e.lifecycle_stage,
            "tags": dict(e.tags),
            "creation_time": e.creation_time,
            "last_update_time": e.last_update_time,
        }
    ids = [e.experiment_id for e in exps]
    for r in client.search_runs(ids, run_view_type=ViewType.ALL, max_results=1000):
        assert r.inputs is not None  # the client always fills it
        info = r.info
        out["runs"][info.run_id] = {
            "experiment_id": info.experiment_id,
            "run_name": info.run_name,
            "user_id": info.user_id,
            "status": info.status,
            "start_time": info.start_time,
            "end_time": info.end_time,
            "artifact_uri": info.artifact_uri,
            "lifecycle_stage": info.lifecycle_stage,
            "params": dict(r.data.params),
            "tags": dict(r.data.tags),
            "metrics": {k: _float(v) for k, v in r.data.metrics.items()},
            "history": {
                k: sorted(
                    [m.timestamp, m.step, _float(m.value)]
                    for m in client.get_metric_history(info.run_id, k)
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
            "model_outputs": sorted(
                [m.model_id, m.step] for m in (r.outputs.model_outputs if r.outputs else [])
            ),
        }
    for m in client.search_logged_models(ids):
        assert m.metrics is not None  # the client always fills it
        out["models"][m.model_id] = {
            "experiment_id": m.experiment_id,
            "name": m.name,
            "artifact_location": m.artifact_location,
            "status": str(m.status),
            "model_type": m.model_type,
            "source_run_id": m.source_run_id,
            "tags": dict(m.tags),
            "params": dict(m.params),
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
    return out


def search() -> dict:
    client = MlflowClient()
    ids = [e.experiment_id for e in client.search_experiments(view_type=ViewType.ALL)]
    queries = {
        "loss_lt": ("metrics.loss < 0.6", ["metrics.loss ASC"]),
        "param": ("params.lr = '0.01'", []),
        "tag_like": ("tags.stage LIKE 'tr%'", []),
        "name": ("attributes.run_name = 'child'", []),
        "all_by_name": ("", ["attributes.run_name DESC"]),
    }
    return {
        key: [r.info.run_id for r in client.search_runs(ids, flt, order_by=order)]
        for key, (flt, order) in queries.items()
    }


if __name__ == "__main__":
    command = sys.argv[1]
    if command == "write":
        write()
    else:
        print(json.dumps({"snapshot": snapshot(), "search": search()}, sort_keys=True))
