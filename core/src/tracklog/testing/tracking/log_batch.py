"""log_batch: the write primitive, its atomicity and its limits."""

from __future__ import annotations

import pytest

from tracklog.entities import Metric, MetricColumns, Param, RunTag
from tracklog.errors import ErrorCode, TracklogError
from tracklog.stores import TrackingStore

from ._base import KitBase, metric, new_run, params, points, tags


class LogBatchTests(KitBase):
    """``log_batch`` writes params, metrics and tags together or not at all."""

    def test_log_batch_writes_everything(self, store: TrackingStore) -> None:
        """Metrics, params and tags of one batch all read back."""
        run_id = new_run(store).info.run_id
        store.log_batch(
            run_id,
            metrics=[metric("loss", 0.5, 10, 0), metric("loss", 0.25, 20, 1),
                     metric("acc", 0.75, 10, 0)],
            params=params(lr="0.01", layers="3"),
            tags=tags(team="vision", note=""),
        )
        data = store.get_run(run_id).data
        assert {k: m.value for k, m in data.metrics.items()} == {"loss": 0.25, "acc": 0.75}
        assert (data.metrics["loss"].timestamp, data.metrics["loss"].step) == (20, 1)
        assert data.params == {"lr": "0.01", "layers": "3"}
        assert data.tags["team"] == "vision" and data.tags["note"] == ""
        assert points(store.get_metric_history(run_id, "loss")) == [(10, 0, 0.5), (20, 1, 0.25)]

    def test_empty_batch_is_accepted(self, store: TrackingStore) -> None:
        """An empty batch succeeds and changes nothing."""
        run = new_run(store)
        store.log_batch(run.info.run_id)
        store.log_batch(run.info.run_id, metrics=[], params=[], tags=[])
        after = store.get_run(run.info.run_id)
        assert after.data.metrics == {} and after.data.params == {}
        assert after.data.tags == run.data.tags

    def test_param_conflict_writes_nothing(self, store: TrackingStore) -> None:
        """A batch whose param conflicts with a logged value is rejected as a whole."""
        run_id = new_run(store).info.run_id
        store.log_param(run_id, Param("lr", "0.1"))
        with pytest.raises(TracklogError) as excinfo:
            store.log_batch(
                run_id,
                metrics=[metric("loss", 1.0)],
                params=[Param("new", "x"), Param("lr", "0.2")],
                tags=[RunTag("t", "v")],
            )
        assert excinfo.value.error_code == ErrorCode.INVALID_PARAMETER_VALUE
        data = store.get_run(run_id).data
        assert data.params == {"lr": "0.1"}
        assert data.metrics == {}
        assert "t" not in data.tags
        assert store.get_metric_history(run_id, "loss") == []

    def test_batch_repeating_logged_params_is_noop(self, store: TrackingStore) -> None:
        """Re-sending params with their logged values succeeds and writes the rest."""
        run_id = new_run(store).info.run_id
        store.log_batch(run_id, params=params(a="1", b="2"))
        store.log_batch(run_id, params=params(a="1", c="3"), metrics=[metric("m", 1.0)])
        data = store.get_run(run_id).data
        assert data.params == {"a": "1", "b": "2", "c": "3"}
        assert data.metrics["m"].value == 1.0

    def test_batch_at_protocol_limits(self, store: TrackingStore) -> None:
        """A batch of 1000 metric points, then 100 params and 100 tags, is stored completely."""
        run_id = new_run(store).info.run_id
        store.log_batch(run_id, metrics=[
            Metric(f"m{i % 10}", float(i), 1000 + i, i // 10) for i in range(1000)])
        store.log_batch(run_id, params=[Param(f"p{i}", str(i)) for i in range(100)],
                        tags=[RunTag(f"t{i}", str(i)) for i in range(100)])
        data = store.get_run(run_id).data
        assert len(data.metrics) == 10
        assert data.metrics["m3"].value == 993.0 and data.metrics["m3"].step == 99
        assert data.params == {f"p{i}": str(i) for i in range(100)}
        assert all(data.tags[f"t{i}"] == str(i) for i in range(100))
        history = store.get_metric_history(run_id, "m7")
        assert points(history) == [(1000 + i, i // 10, float(i)) for i in range(7, 1000, 10)]

    def test_batch_as_metric_columns(self, store: TrackingStore) -> None:
        """The server hands a batch of plain points over as ``MetricColumns`` (a sequence
        of Metric held column by column): it writes as the same points in a list would."""
        run_id = new_run(store).info.run_id
        store.log_batch(run_id, metrics=MetricColumns(
            ["m", "m", "acc", "m"], [9.0, 3.0, 0.5, 7.0], [100, 50, 10, 10], [1, 2, 0, 0]))
        data = store.get_run(run_id).data
        assert {k: (m.value, m.timestamp, m.step) for k, m in data.metrics.items()} == {
            "m": (3.0, 50, 2), "acc": (0.5, 10, 0)}
        assert sorted(points(store.get_metric_history(run_id, "m"))) == [
            (10, 0, 7.0), (50, 2, 3.0), (100, 1, 9.0)]

    def test_batch_sets_run_name(self, store: TrackingStore) -> None:
        """A mlflow.runName tag inside a batch renames the run."""
        run_id = new_run(store, run_name="old").info.run_id
        store.log_batch(run_id, tags=[RunTag("mlflow.runName", "new")])
        assert store.get_run(run_id).info.run_name == "new"

    def test_batch_latest_within_one_batch(self, store: TrackingStore) -> None:
        """Several points of one key in one batch: the latest is max (step, timestamp, value)."""
        run_id = new_run(store).info.run_id
        store.log_batch(run_id, metrics=[
            metric("m", 9.0, 100, 1), metric("m", 1.0, 50, 2), metric("m", 3.0, 50, 2),
            metric("m", 7.0, 10, 0)])
        latest = store.get_run(run_id).data.metrics["m"]
        assert (latest.value, latest.timestamp, latest.step) == (3.0, 50, 2)
