"""Run inputs (datasets, models) and outputs (models)."""

from __future__ import annotations

import uuid

import pytest

from tracklog.entities import (
    Dataset,
    DatasetInput,
    InputTag,
    LoggedModelInput,
    LoggedModelOutput,
    Run,
)
from tracklog.errors import ErrorCode, TracklogError
from tracklog.stores import TrackingStore

from ._base import KitBase, new_experiment, new_run

CONTEXT = "mlflow.data.context"


def dataset_view(run: Run) -> set[tuple]:
    """Every dataset input of ``run`` as a hashable tuple, input tags as a sorted tuple."""
    return {
        (d.dataset.name, d.dataset.digest, d.dataset.source_type, d.dataset.source,
         d.dataset.schema, d.dataset.profile, tuple(sorted((t.key, t.value) for t in d.tags)))
        for d in run.inputs.dataset_inputs
    }


class InputTests(KitBase):
    """``log_inputs`` and ``log_outputs``, read back through ``get_run``."""

    def test_log_dataset_inputs(self, store: TrackingStore) -> None:
        """Datasets with all their fields and input tags read back on the run."""
        run_id = new_run(store).info.run_id
        train = Dataset("train", "abc123", "local", "/data/train.csv",
                        schema='{"mlflow_colspec": []}', profile='{"num_rows": 10}')
        evaluation = Dataset("eval", "def456", "http", "https://example.com/eval.csv")
        store.log_inputs(run_id, datasets=[
            DatasetInput(train, (InputTag(CONTEXT, "training"), InputTag("extra", "x"))),
            DatasetInput(evaluation, (InputTag(CONTEXT, "evaluation"),)),
        ])
        assert dataset_view(store.get_run(run_id)) == {
            ("train", "abc123", "local", "/data/train.csv", '{"mlflow_colspec": []}',
             '{"num_rows": 10}', (("extra", "x"), (CONTEXT, "training"))),
            ("eval", "def456", "http", "https://example.com/eval.csv", None, None,
             ((CONTEXT, "evaluation"),)),
        }

    def test_datasets_deduplicated_by_name_and_digest(self, store: TrackingStore) -> None:
        """The same name and digest is one input however often logged; a new digest is another."""
        run_id = new_run(store).info.run_id
        ds = DatasetInput(Dataset("d", "v1", "local", "/d"), (InputTag(CONTEXT, "training"),))
        store.log_inputs(run_id, datasets=[ds])
        store.log_inputs(run_id, datasets=[ds])
        store.log_inputs(run_id, datasets=[ds, ds])
        assert {(d.dataset.name, d.dataset.digest)
                for d in store.get_run(run_id).inputs.dataset_inputs} == {("d", "v1")}
        assert len(store.get_run(run_id).inputs.dataset_inputs) == 1
        store.log_inputs(run_id, datasets=[
            DatasetInput(Dataset("d", "v2", "local", "/d"), (InputTag(CONTEXT, "training"),))])
        inputs = store.get_run(run_id).inputs.dataset_inputs
        assert sorted((d.dataset.name, d.dataset.digest) for d in inputs) == [
            ("d", "v1"), ("d", "v2")]

    def test_dataset_shared_by_runs(self, store: TrackingStore) -> None:
        """One dataset logged to two runs shows on both, each with its own input tags."""
        exp_id = new_experiment(store)
        a, b, c = (new_run(store, exp_id).info.run_id for _ in range(3))
        dataset = Dataset("shared", "h", "local", "/s")
        store.log_inputs(a, datasets=[DatasetInput(dataset, (InputTag(CONTEXT, "training"),))])
        store.log_inputs(b, datasets=[DatasetInput(dataset, (InputTag(CONTEXT, "evaluation"),))])
        for run_id, context in ((a, "training"), (b, "evaluation")):
            (only,) = store.get_run(run_id).inputs.dataset_inputs
            assert only.dataset.name == "shared"
            assert {t.key: t.value for t in only.tags} == {CONTEXT: context}
        assert store.get_run(c).inputs.dataset_inputs == []

    def test_model_inputs_and_outputs(self, store: TrackingStore) -> None:
        """Models a run consumed and produced read back with their ids and steps."""
        exp_id = new_experiment(store)
        run_id = new_run(store, exp_id).info.run_id
        consumed = store.create_logged_model(exp_id, name="upstream").model_id
        produced = store.create_logged_model(exp_id, name="mine", source_run_id=run_id).model_id
        later = store.create_logged_model(exp_id, name="later", source_run_id=run_id).model_id
        store.log_inputs(run_id, models=[LoggedModelInput(consumed)])
        store.log_outputs(run_id, [LoggedModelOutput(produced, 0)])
        store.log_outputs(run_id, [LoggedModelOutput(later, 7)])
        run = store.get_run(run_id)
        assert [m.model_id for m in run.inputs.model_inputs] == [consumed]
        assert sorted((m.model_id, m.step) for m in run.outputs.model_outputs) == sorted(
            [(produced, 0), (later, 7)])
        assert run.inputs.dataset_inputs == []

    def test_log_inputs_empty_and_unknown_run(self, store: TrackingStore) -> None:
        """An empty call is fine; an unknown run is RESOURCE_DOES_NOT_EXIST."""
        run_id = new_run(store).info.run_id
        store.log_inputs(run_id)
        assert store.get_run(run_id).inputs.dataset_inputs == []
        with pytest.raises(TracklogError) as excinfo:
            store.log_inputs(uuid.uuid4().hex, datasets=[
                DatasetInput(Dataset("d", "v", "local", "/d"))])
        assert excinfo.value.error_code == ErrorCode.RESOURCE_DOES_NOT_EXIST
