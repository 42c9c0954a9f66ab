"""The file store's model registry against MLflow's own file-based registry, both ways, over
one ``mlruns/models`` directory, and its guards on names that would leave the directory.

MLflow's ``FileStore`` runs in a subprocess (tests/registry_side.py). Each side's view is
reduced to the same JSON-able snapshot and the two must be equal.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tracklog.errors import ErrorCode, TracklogError
from tracklog.search import parse_model_version_filter
from tracklog_store_file.store import FileStore, open_store

from .conftest import mlflow_env

SIDE = Path(__file__).with_name("registry_side.py")
RUN_ID = "a" * 32


def mlflow_registry(command: str, root: Path, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, str(SIDE), command, str(root), *args],
        env=mlflow_env(MLFLOW_TRACKING_URI=f"file:{root}"),
        cwd=root.parent,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    return done.stdout


def snapshot(store: FileStore) -> dict:
    """What tracklog reads, in the shape registry_side.read() prints."""
    out = {}
    for rm in store.search_registered_models(max_results=1000):
        versions = {}
        for mv in store.search_model_versions(
            filter=parse_model_version_filter(f"name = '{rm.name}'"), max_results=1000
        ):
            versions[mv.version] = {
                "stage": mv.current_stage,
                "source": mv.source,
                "run_id": mv.run_id,
                "run_link": mv.run_link,
                "description": mv.description,
                "status": mv.status.value,
                "tags": mv.tags,
                "aliases": sorted(mv.aliases),
                "download_uri": store.get_model_version_download_uri(rm.name, mv.version),
            }
        out[rm.name] = {
            "description": rm.description,
            "tags": rm.tags,
            "aliases": {a.alias: a.version for a in rm.aliases},
            "latest": {mv.current_stage: mv.version for mv in rm.latest_versions},
            "versions": versions,
        }
    return out


def write_with_tracklog(store: FileStore) -> None:
    """The scenario of registry_side.write(), through tracklog's store."""
    name = "churn model"
    store.create_registered_model(
        name, tags=[("team", "ml"), ("nested/key", "x")], description="predicts churn"
    )
    store.create_model_version(name, "s3://bucket/churn/1", run_id=RUN_ID,
                               tags=[("quality", "good")], run_link="http://runs/1",
                               description="first")
    for v in (2, 3, 4):
        store.create_model_version(name, f"s3://bucket/churn/{v}")
    store.transition_model_version_stage(name, "1", "Production", False)
    store.transition_model_version_stage(name, "2", "Staging", False)
    store.set_registered_model_alias(name, "champion", "1")
    store.set_registered_model_alias(name, "challenger", "2")
    store.set_registered_model_alias(name, "doomed", "3")
    store.delete_model_version(name, "3")
    store.update_model_version(name, "4", "fourth")
    store.set_model_version_tag(name, "2", "note", "second")
    store.create_registered_model("empty")
    store.create_registered_model("prompt-like", tags=[("mlflow.prompt.is_prompt", "true")])


EXPECTED = {
    "churn model": {
        "description": "predicts churn",
        "tags": {"team": "ml", "nested/key": "x"},
        "aliases": {"champion": "1", "challenger": "2"},
        "latest": {"Production": "1", "Staging": "2", "None": "4"},
        "versions": {
            "1": {"stage": "Production", "source": "s3://bucket/churn/1", "run_id": RUN_ID,
                  "run_link": "http://runs/1", "description": "first", "status": "READY",
                  "tags": {"quality": "good"}, "aliases": ["champion"],
                  "download_uri": "s3://bucket/churn/1"},
            "2": {"stage": "Staging", "source": "s3://bucket/churn/2", "run_id": None,
                  "run_link": "", "description": "", "status": "READY",
                  "tags": {"note": "second"}, "aliases": ["challenger"],
                  "download_uri": "s3://bucket/churn/2"},
            "4": {"stage": "None", "source": "s3://bucket/churn/4", "run_id": None,
                  "run_link": "", "description": "fourth", "status": "READY", "tags": {},
                  "aliases": [], "download_uri": "s3://bucket/churn/4"},
        },
    },
    "empty": {"description": "", "tags": {}, "aliases": {}, "latest": {}, "versions": {}},
}


def test_registry_written_by_mlflow_reads_back_in_tracklog(tmp_path: Path) -> None:
    root = tmp_path / "mlruns"
    mlflow_registry("write", root)
    store = open_store(str(root))
    assert snapshot(store) == EXPECTED
    assert json.loads(mlflow_registry("read", root)) == EXPECTED
    # The deleted version 3 keeps its number; prompts are still read by name.
    assert store.create_model_version("churn model", "s3://bucket/churn/5").version == "5"
    assert store.get_model_version_by_alias("churn model", "champion").version == "1"
    assert store.get_registered_model("prompt-like").tags == {"mlflow.prompt.is_prompt": "true"}
    with pytest.raises(TracklogError) as excinfo:
        store.get_model_version("churn model", "3")
    assert excinfo.value.error_code == ErrorCode.RESOURCE_DOES_NOT_EXIST


def test_registry_written_by_tracklog_opens_in_mlflow(tmp_path: Path) -> None:
    root = tmp_path / "mlruns"
    store = open_store(str(root))
    write_with_tracklog(store)
    assert snapshot(store) == EXPECTED
    assert json.loads(mlflow_registry("read", root)) == EXPECTED
    # MLflow numbers its next version after tracklog's, the deleted one included ...
    assert mlflow_registry("add-version", root, "churn model", "s3://x").strip() == "5"
    # ... and tracklog after MLflow's.
    assert store.create_model_version("churn model", "s3://y").version == "6"
    assert store.get_model_version("churn model", "5").source == "s3://x"


def test_renamed_model_keeps_versions_tags_and_aliases_for_mlflow(tmp_path: Path) -> None:
    root = tmp_path / "mlruns"
    store = open_store(str(root))
    write_with_tracklog(store)
    store.rename_registered_model("churn model", "retention model")
    expected = {("retention model" if k == "churn model" else k): v for k, v in EXPECTED.items()}
    assert snapshot(store) == expected
    assert json.loads(mlflow_registry("read", root)) == expected
    assert not (root / "models" / "churn model").exists()


@pytest.mark.parametrize(
    "bad", ["../escape", "a/b", "a\\b", ".hidden", "..", "nul\x00name", "x" * 256, "é" * 128]
)
def test_unsafe_model_names_are_refused_without_writing(tmp_path: Path, bad: str) -> None:
    root = tmp_path / "mlruns"
    store = open_store(str(root))
    store.create_registered_model("ok")
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    for call in (lambda: store.create_registered_model(bad),
                 lambda: store.rename_registered_model("ok", bad)):
        with pytest.raises(TracklogError) as excinfo:
            call()
        assert excinfo.value.error_code == ErrorCode.INVALID_PARAMETER_VALUE
        assert "name" in excinfo.value.message
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before
    assert [m.name for m in store.search_registered_models()] == ["ok"]


def test_unreadable_version_is_a_404_and_left_out_of_searches(tmp_path: Path) -> None:
    root = tmp_path / "mlruns"
    store = open_store(str(root))
    store.create_registered_model("m")
    store.create_model_version("m", "s3://a")
    store.create_model_version("m", "s3://b")
    (root / "models" / "m" / "version-1" / "meta.yaml").write_text("version: [unclosed\n")
    with pytest.raises(TracklogError) as excinfo:
        store.get_model_version("m", "1")
    assert excinfo.value.error_code == ErrorCode.RESOURCE_DOES_NOT_EXIST
    assert str(root) not in excinfo.value.message
    found = store.search_model_versions(filter=parse_model_version_filter("name = 'm'"))
    assert [v.version for v in found] == ["2"]
    # The unreadable folder still holds its number.
    assert store.create_model_version("m", "s3://c").version == "3"


def test_opening_a_store_writes_no_registry_folder(tmp_path: Path) -> None:
    root = tmp_path / "mlruns"
    store = open_store(str(root))
    assert store.search_registered_models() == []
    assert not (root / "models").exists()
