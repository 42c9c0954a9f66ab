"""Runs: create (ids, generated names, the mlflow.runName tag), get, update, delete/restore,
writes to deleted runs, unknown runs."""

from __future__ import annotations

import re
import uuid

import pytest

from tracklog.entities import (
    DatasetInput,
    LifecycleStage,
    LoggedModelOutput,
    RunStatus,
    RunTag,
)
from tracklog.errors import ErrorCode, TracklogError
from tracklog.stores import TrackingStore

from ._base import KitBase, error_code, metric, new_experiment, new_run, params, tags

RUN_ID = re.compile(r"^[0-9a-f]{32}$")
GENERATED_NAME = re.compile(r"^[a-z]+(?:-[a-z]+)+-\d{1,4}$")  # adjectives include "go-to"


class RunTests(KitBase):
    """Run creation, naming, reads, partial updates, soft delete and write gating."""

    def test_create_run(self, store: TrackingStore) -> None:
        """A new run is RUNNING and active, with a 32-hex id and the experiment's artifact root."""
        exp_id = new_experiment(store)
        location = store.get_experiment(exp_id).artifact_location.rstrip("/")
        run = store.create_run(exp_id, "alice", 1_700_000_000_123, tags=tags(a="1"))
        info = run.info
        assert RUN_ID.match(info.run_id), info.run_id
        assert info.experiment_id == exp_id
        assert info.user_id == "alice"
        assert info.status == RunStatus.RUNNING
        assert info.start_time == 1_700_000_000_123
        assert info.end_time is None
        assert info.lifecycle_stage == LifecycleStage.ACTIVE
        assert info.artifact_uri == f"{location}/{info.run_id}/artifacts"
        assert run.data.tags["a"] == "1"
        assert run.data.metrics == {} and run.data.params == {}
        again = store.get_run(info.run_id)
        assert again.info == info
        assert again.data.tags == run.data.tags

    def test_artifact_uri_follows_custom_location(self, store: TrackingStore) -> None:
        """Runs and logged models live under a user-given experiment artifact location."""
        exp_id = new_experiment(store, artifact_location="s3://bucket/some/prefix")
        run_id = new_run(store, exp_id).info.run_id
        assert store.get_run(run_id).info.artifact_uri == (
            f"s3://bucket/some/prefix/{run_id}/artifacts")
        model = store.create_logged_model(exp_id, name="m")
        assert model.artifact_location == (
            f"s3://bucket/some/prefix/models/{model.model_id}/artifacts")

    def test_run_ids_are_unique(self, store: TrackingStore) -> None:
        """Twenty runs get twenty different ids."""
        exp_id = new_experiment(store)
        ids = {new_run(store, exp_id).info.run_id for _ in range(20)}
        assert len(ids) == 20

    def test_generated_run_name(self, store: TrackingStore) -> None:
        """Without a name the store generates adjective-animal-NNN and sets mlflow.runName."""
        run = new_run(store)
        assert GENERATED_NAME.match(run.info.run_name), run.info.run_name
        assert run.data.tags["mlflow.runName"] == run.info.run_name
        stored = store.get_run(run.info.run_id)
        assert stored.info.run_name == run.info.run_name
        assert stored.data.tags["mlflow.runName"] == run.info.run_name

    def test_run_name_argument_sets_tag(self, store: TrackingStore) -> None:
        """run_name also becomes the mlflow.runName tag."""
        run = new_run(store, run_name="my run")
        stored = store.get_run(run.info.run_id)
        assert stored.info.run_name == "my run"
        assert stored.data.tags["mlflow.runName"] == "my run"

    def test_run_name_tag_sets_name(self, store: TrackingStore) -> None:
        """A mlflow.runName tag alone names the run; the same name twice is fine."""
        run = new_run(store, tags=[RunTag("mlflow.runName", "from-tag")])
        assert store.get_run(run.info.run_id).info.run_name == "from-tag"
        both = new_run(store, run_name="same", tags=[RunTag("mlflow.runName", "same")])
        stored = store.get_run(both.info.run_id)
        assert stored.info.run_name == "same"
        assert stored.data.tags["mlflow.runName"] == "same"

    def test_run_name_tag_mismatch_rejected(self, store: TrackingStore) -> None:
        """run_name and a different mlflow.runName tag is INVALID_PARAMETER_VALUE; no run made."""
        exp_id = new_experiment(store)
        with pytest.raises(TracklogError) as excinfo:
            store.create_run(
                exp_id, "u", 1, tags=[RunTag("mlflow.runName", "b")], run_name="a"
            )
        assert excinfo.value.error_code == ErrorCode.INVALID_PARAMETER_VALUE
        assert list(store.search_runs([exp_id])) == []

    def test_create_run_in_unknown_or_deleted_experiment(self, store: TrackingStore) -> None:
        """Unknown experiment: RESOURCE_DOES_NOT_EXIST; deleted: INVALID_PARAMETER_VALUE."""
        with pytest.raises(TracklogError) as excinfo:
            store.create_run("987654321", "u", 1)
        assert excinfo.value.error_code == ErrorCode.RESOURCE_DOES_NOT_EXIST
        exp_id = new_experiment(store)
        store.delete_experiment(exp_id)
        with pytest.raises(TracklogError) as excinfo:
            store.create_run(exp_id, "u", 1)
        assert excinfo.value.error_code == ErrorCode.INVALID_PARAMETER_VALUE

    def test_create_run_in_default_experiment(self, store: TrackingStore) -> None:
        """Runs can be created in the Default experiment "0"."""
        run = store.create_run("0", "u", 5)
        assert store.get_run(run.info.run_id).info.experiment_id == "0"

    def test_update_run_info_partial(self, store: TrackingStore) -> None:
        """update_run_info changes only the fields given and returns the new info."""
        run = new_run(store, run_name="before")
        run_id = run.info.run_id
        info = store.update_run_info(run_id, run_status=RunStatus.FINISHED)
        assert (info.status, info.end_time, info.run_name) == (RunStatus.FINISHED, None, "before")
        info = store.update_run_info(run_id, end_time=1_700_000_999_000)
        assert (info.status, info.end_time, info.run_name) == (
            RunStatus.FINISHED, 1_700_000_999_000, "before")
        info = store.update_run_info(run_id, run_name="after")
        assert (info.status, info.end_time, info.run_name) == (
            RunStatus.FINISHED, 1_700_000_999_000, "after")
        stored = store.get_run(run_id)
        assert stored.info == info
        assert stored.data.tags["mlflow.runName"] == "after"
        info = store.update_run_info(run_id, run_status=RunStatus.RUNNING)
        assert store.get_run(run_id).info.status == RunStatus.RUNNING
        assert info.start_time == run.info.start_time

    def test_every_run_status_round_trips(self, store: TrackingStore) -> None:
        """Any status can be set in any order; the store enforces no state machine."""
        run_id = new_run(store).info.run_id
        for status in (RunStatus.KILLED, RunStatus.SCHEDULED, RunStatus.FAILED,
                       RunStatus.FINISHED, RunStatus.RUNNING):
            store.update_run_info(run_id, run_status=status)
            assert store.get_run(run_id).info.status == status

    def test_set_run_name_tag_renames_run(self, store: TrackingStore) -> None:
        """Setting the mlflow.runName tag renames the run."""
        run_id = new_run(store, run_name="first").info.run_id
        store.set_tag(run_id, RunTag("mlflow.runName", "second"))
        stored = store.get_run(run_id)
        assert stored.info.run_name == "second"
        assert stored.data.tags["mlflow.runName"] == "second"

    def test_delete_and_restore_run(self, store: TrackingStore) -> None:
        """Delete is soft: the run is still readable, marked deleted, and restore revives it."""
        run = new_run(store)
        run_id = run.info.run_id
        store.log_batch(run_id, metrics=[metric("m", 1.0)], params=params(p="v"))
        store.delete_run(run_id)
        deleted = store.get_run(run_id)
        assert deleted.info.lifecycle_stage == LifecycleStage.DELETED
        assert deleted.data.params == {"p": "v"}
        assert [m.value for m in store.get_metric_history(run_id, "m")] == [1.0]
        store.restore_run(run_id)
        restored = store.get_run(run_id)
        assert restored.info.lifecycle_stage == LifecycleStage.ACTIVE
        assert restored.data.metrics["m"].value == 1.0

    def test_writes_to_deleted_run_rejected(self, store: TrackingStore) -> None:
        """Every write to a deleted run is INVALID_PARAMETER_VALUE and changes nothing."""
        from tracklog.entities import Dataset

        run = new_run(store, run_name="frozen", tags=tags(keep="1"))
        run_id = run.info.run_id
        model_id = store.create_logged_model(run.info.experiment_id).model_id
        store.delete_run(run_id)
        dataset = DatasetInput(Dataset("ds", "abc", "local", "/tmp/ds"))
        writes = {
            "log_batch metrics": lambda: store.log_batch(run_id, metrics=[metric("m", 1.0)]),
            "log_batch params": lambda: store.log_batch(run_id, params=params(p="v")),
            "log_batch tags": lambda: store.log_batch(run_id, tags=tags(t="v")),
            "log_metric": lambda: store.log_metric(run_id, metric("m", 1.0)),
            "log_param": lambda: store.log_param(run_id, params(p="v")[0]),
            "set_tag": lambda: store.set_tag(run_id, RunTag("t", "v")),
            "delete_tag": lambda: store.delete_tag(run_id, "keep"),
            "update_run_info": lambda: store.update_run_info(
                run_id, run_status=RunStatus.FINISHED, end_time=5, run_name="x"),
            "log_inputs": lambda: store.log_inputs(run_id, datasets=[dataset]),
            "log_outputs": lambda: store.log_outputs(run_id, [LoggedModelOutput(model_id, 0)]),
        }
        codes = {name: error_code(write) for name, write in writes.items()}
        wrong = {n: c for n, c in codes.items() if c != ErrorCode.INVALID_PARAMETER_VALUE}
        assert not wrong, f"expected INVALID_PARAMETER_VALUE, got {wrong}"
        store.restore_run(run_id)
        after = store.get_run(run_id)
        assert after.data.metrics == {} and after.data.params == {}
        assert after.data.tags.get("keep") == "1" and "t" not in after.data.tags
        assert after.info.run_name == "frozen" and after.info.status == RunStatus.RUNNING
        assert after.info.end_time is None
        assert after.inputs.dataset_inputs == [] and after.outputs.model_outputs == []
        assert store.get_metric_history(run_id, "m") == []

    def test_status_does_not_gate_writes(self, store: TrackingStore) -> None:
        """A FINISHED run still accepts metrics, params and tags."""
        run_id = new_run(store).info.run_id
        store.update_run_info(run_id, run_status=RunStatus.FINISHED, end_time=10)
        store.log_batch(run_id, metrics=[metric("m", 2.0)], params=params(p="1"),
                        tags=tags(t="x"))
        data = store.get_run(run_id).data
        assert data.metrics["m"].value == 2.0
        assert data.params == {"p": "1"} and data.tags["t"] == "x"

    def test_unknown_run_rejected(self, store: TrackingStore) -> None:
        """Reads and writes on an unknown run id are RESOURCE_DOES_NOT_EXIST."""
        run_id = uuid.uuid4().hex
        calls = {
            "get_run": lambda: store.get_run(run_id),
            "update_run_info": lambda: store.update_run_info(run_id, run_status=RunStatus.FAILED),
            "delete_run": lambda: store.delete_run(run_id),
            "restore_run": lambda: store.restore_run(run_id),
            "log_batch": lambda: store.log_batch(run_id, metrics=[metric("m", 1.0)]),
            "log_param": lambda: store.log_param(run_id, params(p="v")[0]),
            "set_tag": lambda: store.set_tag(run_id, RunTag("t", "v")),
            "delete_tag": lambda: store.delete_tag(run_id, "t"),
        }
        codes = {name: error_code(call) for name, call in calls.items()}
        wrong = {n: c for n, c in codes.items() if c != ErrorCode.RESOURCE_DOES_NOT_EXIST}
        assert not wrong, f"expected RESOURCE_DOES_NOT_EXIST, got {wrong}"
