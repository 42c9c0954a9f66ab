"""The on-disk format, the plugin registration and the factory's artifact root."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tracklog.entities import (
    Dataset,
    DatasetInput,
    ExperimentTag,
    InputTag,
    LoggedModelOutput,
    Metric,
    Param,
    RunStatus,
    RunTag,
)
from tracklog.errors import ErrorCode, TracklogError
from tracklog.plugins import resolve_store
from tracklog.stores import registry_of, traces_of
from tracklog_store_file import yamlio
from tracklog_store_file.store import FileStore, open_store


def test_plugin_module_registers_file_without_importing_yaml() -> None:
    code = (
        "import sys\n"
        "import tracklog_store_file.plugin as p\n"
        "seen = []\n"
        "p.register_tracking_stores(lambda scheme, factory: seen.append(scheme))\n"
        "assert seen == ['file'], seen\n"
        "assert 'yaml' not in sys.modules and 'tracklog_store_file.store' not in sys.modules\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_default_artifact_root_prefixes_experiment_ids(tmp_path: Path) -> None:
    store = resolve_store(f"file://{tmp_path}/mlruns", "s3://bucket/art/")
    assert store.get_experiment("0").artifact_location == "s3://bucket/art/0"
    exp = store.create_experiment("e")
    assert store.get_experiment(exp).artifact_location == f"s3://bucket/art/{exp}"
    run = store.create_run(exp, "me", 1)
    assert run.info.artifact_uri == f"s3://bucket/art/{exp}/{run.info.run_id}/artifacts"
    local = store.create_experiment("local", artifact_location=str(tmp_path / "elsewhere"))
    assert store.get_experiment(local).artifact_location == (tmp_path / "elsewhere").as_uri()


def test_files_are_laid_out_as_mlflow_writes_them(tmp_path: Path) -> None:
    root = tmp_path / "mlruns"
    store = open_store(str(root))
    exp = store.create_experiment("layout", tags=[ExperimentTag("a/b", "v")])
    run = store.create_run(exp, "me", 123, run_name="named")
    rid = run.info.run_id
    store.log_batch(
        rid,
        metrics=[Metric("x/y", 0.5, 10, 2), Metric("x/y", 0.5, 10, 2), Metric("n", 1e-5, 11, 0)],
        params=[Param("p/q", "val")],
        tags=[RunTag("t", "line\n")],
    )
    ds = Dataset("d", "dig", "local", '{"uri": "/x"}')
    store.log_inputs(rid, [DatasetInput(ds, (InputTag("mlflow.data.context", "train"),))])
    model = store.create_logged_model(exp, name="m")
    store.log_outputs(rid, [LoggedModelOutput(model.model_id, 4)])
    store.update_run_info(rid, RunStatus.FINISHED, end_time=456)

    exp_meta = yaml.safe_load((root / exp / "meta.yaml").read_text())
    assert set(exp_meta) == {
        "artifact_location",
        "creation_time",
        "effective_trace_archival_retention",
        "experiment_id",
        "last_update_time",
        "lifecycle_stage",
        "name",
        "trace_location",
        "workspace",
    }
    assert exp_meta["experiment_id"] == exp and len(exp) == 18
    assert (root / exp / "tags" / "a" / "b").read_text() == "v"
    run_dir = root / exp / rid
    meta = yaml.safe_load((run_dir / "meta.yaml").read_text())
    assert meta == {
        "artifact_uri": f"{(root / exp).as_uri()}/{rid}/artifacts",
        "deleted_time": None,
        "end_time": 456,
        "entry_point_name": "",
        "experiment_id": exp,
        "lifecycle_stage": "active",
        "run_id": rid,
        "run_name": "named",
        "source_name": "",
        "source_type": 4,
        "source_version": "",
        "start_time": 123,
        "status": 3,
        "tags": [],
        "user_id": "me",
    }
    assert (run_dir / "meta.yaml").read_text().startswith("artifact_uri: ")  # sorted keys
    assert (run_dir / "metrics" / "x" / "y").read_text() == "10 0.5 2\n"  # stored once
    assert (run_dir / "metrics" / "n").read_text() == "11 1e-05 0\n"
    assert (run_dir / "params" / "p" / "q").read_text() == "val"
    assert (run_dir / "tags" / "t").read_text() == "line\n"
    assert (run_dir / "tags" / "mlflow.runName").read_text() == "named"
    assert (run_dir / "artifacts").is_dir()
    (input_dir,) = (run_dir / "inputs").iterdir()
    edge = yaml.safe_load((input_dir / "meta.yaml").read_text())
    assert edge["source_type"] == "DATASET" and edge["tags"] == {"mlflow.data.context": "train"}
    dataset = yaml.safe_load(
        (root / exp / "datasets" / edge["source_id"] / "meta.yaml").read_text()
    )
    assert dataset == {
        "digest": "dig",
        "name": "d",
        "profile": None,
        "schema": None,
        "source": '{"uri": "/x"}',
        "source_type": "local",
    }
    out = yaml.safe_load((run_dir / "outputs" / model.model_id / "meta.yaml").read_text())
    assert out["destination_type"] == "MODEL_OUTPUT" and out["step"] == 4
    model_meta = yaml.safe_load((root / exp / "models" / model.model_id / "meta.yaml").read_text())
    assert model_meta["status"] == 1 and model_meta["lifecycle_stage"] == "active"

    store.delete_experiment(exp)
    assert not (root / exp).exists()
    trashed = yaml.safe_load((root / ".trash" / exp / "meta.yaml").read_text())
    assert trashed["lifecycle_stage"] == "deleted"
    run_meta = yaml.safe_load((root / ".trash" / exp / rid / "meta.yaml").read_text())
    assert run_meta["lifecycle_stage"] == "deleted" and isinstance(run_meta["deleted_time"], int)
    assert store.get_run(rid).info.lifecycle_stage.value == "deleted"


def test_legacy_run_meta_is_understood(tmp_path: Path) -> None:
    """Very old MLflow stores: integer experiment ids, run_uuid, no run_name, 2-field lines."""
    root = tmp_path / "mlruns"
    store = open_store(str(root))
    exp_dir = root / "7"
    (exp_dir / ("b" * 32) / "metrics").mkdir(parents=True)
    (exp_dir / "meta.yaml").write_text(
        "artifact_location: /old/7\nexperiment_id: 7\nlifecycle_stage: active\nname: old\n"
    )
    run_dir = exp_dir / ("b" * 32)
    (run_dir / "meta.yaml").write_text(
        f"artifact_uri: /old/7/{'b' * 32}/artifacts\nend_time: null\nexperiment_id: 7\n"
        f"run_uuid: {'b' * 32}\nstart_time: 5\nstatus: 3\nuser_id: u\n"
    )
    (run_dir / "tags").mkdir()
    (run_dir / "tags" / "mlflow.runName").write_text("legacy-name")
    (run_dir / "metrics" / "acc").write_text("100 0.5\n200 0.75\n")
    exp = store.get_experiment("7")
    assert exp.name == "old" and exp.creation_time is None
    run = store.get_run("b" * 32)
    assert run.info.run_name == "legacy-name" and run.info.status == RunStatus.FINISHED
    assert run.data.metrics["acc"].value == 0.75 and run.data.metrics["acc"].step == 0


def test_registry_and_traces_are_served(tmp_path: Path) -> None:
    store = open_store(str(tmp_path / "mlruns"))
    assert store.store_type == "FileStore"
    assert registry_of(store) is store
    assert traces_of(store) is store


def test_store_sections_define_disjoint_members() -> None:
    """The sections FileStore is assembled from never define the same member: one would
    silently hide the other's behind the method resolution order."""
    owners: dict[str, list[str]] = {}
    for section in FileStore.__mro__[1:]:
        if section.__module__.startswith("tracklog_store_file."):
            for member in vars(section):
                if not member.startswith("__") and member != "_abc_impl":
                    owners.setdefault(member, []).append(section.__name__)
    assert {m: o for m, o in owners.items() if len(o) > 1} == {}


def test_unsafe_keys_are_refused_without_writing(tmp_path: Path) -> None:
    root = tmp_path / "mlruns"
    store = open_store(str(root))
    rid = store.create_run("0", "me", 1).info.run_id
    for bad in ("../escape", "/abs", "a//b", "a/./b"):
        with pytest.raises(TracklogError) as excinfo:
            store.log_batch(rid, params=[Param("ok", "1"), Param(bad, "x")])
        assert excinfo.value.error_code == ErrorCode.INVALID_PARAMETER_VALUE
        assert bad in excinfo.value.message
    assert store.get_run(rid).data.params == {}
    assert not (root / "0" / "escape").exists()
    store.log_batch(rid, metrics=[Metric("a", 1.0, 1, 0)])
    for batch in (
        {"metrics": [Metric("a/b", 1.0, 1, 0)]},
        {
            "params": [Param("x", "1")],
            "metrics": [Metric("b", 1.0, 1, 0), Metric("b/c", 1.0, 1, 0)],
        },
        {"params": [Param("y", "1")], "tags": [RunTag("t/u", "1"), RunTag("t", "2")]},
    ):
        with pytest.raises(TracklogError) as excinfo:
            store.log_batch(rid, **batch)
        assert excinfo.value.error_code == ErrorCode.INVALID_PARAMETER_VALUE
    run = store.get_run(rid)
    assert run.data.params == {} and set(run.data.metrics) == {"a"}
    assert set(run.data.tags) == {"mlflow.runName"}


def test_store_works_with_the_pure_python_yaml(tmp_path: Path) -> None:
    try:
        yamlio.set_backend("pure")
        store = open_store(str(tmp_path / "mlruns"))
        exp = store.create_experiment("pure")
        rid = store.create_run(exp, "me", 1, run_name="é").info.run_id
    finally:
        yamlio.set_backend("libyaml")
    assert open_store(str(tmp_path / "mlruns")).get_run(rid).info.run_name == "é"
