"""Metrics: history order, de-duplication, the latest value, non-finite values, paging."""

from __future__ import annotations

import math
import uuid

import pytest

from tracklog.entities import Metric
from tracklog.errors import ErrorCode, TracklogError
from tracklog.stores import TrackingStore

from ._base import KitBase, collect_pages, metric, new_run, points, same_float


class MetricTests(KitBase):
    """Metric history and the per-key latest value that runs expose."""

    def test_history_order(self, store: TrackingStore) -> None:
        """History is ordered by timestamp, then step, then value, whatever the logging order."""
        run_id = new_run(store).info.run_id
        logged = [(30, 1, 0.5), (10, 2, 9.0), (10, 2, -1.0), (10, -3, 4.0), (20, 0, 1.0),
                  (10, 2, 3.5)]
        for ts, step, value in logged:
            store.log_metric(run_id, metric("loss", value, ts, step))
        assert points(store.get_metric_history(run_id, "loss")) == sorted(logged)

    def test_history_entries_carry_key(self, store: TrackingStore) -> None:
        """History points are Metric objects of the asked key, default step 0."""
        run_id = new_run(store).info.run_id
        store.log_metric(run_id, Metric("acc", 0.5, 1234))
        store.log_metric(run_id, Metric("other", 0.1, 1234))
        history = store.get_metric_history(run_id, "acc")
        assert [(m.key, m.value, m.timestamp, m.step) for m in history] == [("acc", 0.5, 1234, 0)]
        assert history.token is None

    def test_exact_duplicates_stored_once(self, store: TrackingStore) -> None:
        """A point identical in key, value, timestamp and step is stored once."""
        run_id = new_run(store).info.run_id
        store.log_metric(run_id, metric("m", 1.0, 10, 1))
        store.log_metric(run_id, metric("m", 1.0, 10, 1))
        store.log_batch(run_id, metrics=[metric("m", 1.0, 10, 1), metric("m", 1.0, 10, 1)])
        store.log_metric(run_id, metric("m", 2.0, 10, 1))
        store.log_metric(run_id, metric("m", 1.0, 11, 1))
        store.log_metric(run_id, metric("m", 1.0, 10, 2))
        assert points(store.get_metric_history(run_id, "m")) == [
            (10, 1, 1.0), (10, 1, 2.0), (10, 2, 1.0), (11, 1, 1.0)]

    def test_nan_duplicates_stored_once(self, store: TrackingStore) -> None:
        """A NaN point logged twice (same key, timestamp and step) is stored once, like a
        finite one: NaN counts as equal to NaN here (as MLflow)."""
        run_id = new_run(store).info.run_id
        store.log_metric(run_id, metric("m", math.nan, 10, 1))
        store.log_metric(run_id, metric("m", math.nan, 10, 1))
        store.log_batch(run_id, metrics=[metric("m", math.nan, 10, 1),
                                         metric("m", math.nan, 10, 1),
                                         metric("m", math.nan, 10, 2)])
        store.log_metric(run_id, metric("m", 0.0, 10, 1))
        history = store.get_metric_history(run_id, "m")
        assert sorted((m.timestamp, m.step, math.isnan(m.value)) for m in history) == [
            (10, 1, False), (10, 1, True), (10, 2, True)]

    def test_latest_value_is_max_step_timestamp_value(self, store: TrackingStore) -> None:
        """The run's metric is the point with the greatest (step, timestamp, value)."""
        run_id = new_run(store).info.run_id

        def latest() -> tuple[int, int, float]:
            m = store.get_run(run_id).data.metrics["m"]
            return (m.step, m.timestamp, m.value)

        store.log_metric(run_id, metric("m", 1.0, 5, 3))
        assert latest() == (3, 5, 1.0)
        store.log_metric(run_id, metric("m", 9.0, 4, 3))  # older timestamp, same step
        assert latest() == (3, 5, 1.0)
        store.log_metric(run_id, metric("m", 0.5, 5, 3))  # same step and time, smaller value
        assert latest() == (3, 5, 1.0)
        store.log_metric(run_id, metric("m", 2.0, 5, 3))  # same step and time, larger value
        assert latest() == (3, 5, 2.0)
        store.log_metric(run_id, metric("m", -7.0, 1, 4))  # later step wins over time
        assert latest() == (4, 1, -7.0)
        store.log_metric(run_id, metric("m", 100.0, 99, 2))  # earlier step never wins
        assert latest() == (4, 1, -7.0)
        assert store.get_run(run_id).data.metrics["m"].key == "m"

    def test_non_finite_values_round_trip(self, store: TrackingStore) -> None:
        """NaN stays NaN; +-inf come back as +-inf or as MLflow's +-max double."""
        run_id = new_run(store).info.run_id
        values = {"nan": math.nan, "pinf": math.inf, "ninf": -math.inf, "big": 1e308,
                  "neg": -0.0}
        for key, value in values.items():
            store.log_metric(run_id, metric(key, value, 10, 0))
        latest = store.get_run(run_id).data.metrics
        for key, value in values.items():
            assert same_float(latest[key].value, value), (key, latest[key].value)
            (point,) = store.get_metric_history(run_id, key)
            assert same_float(point.value, value), (key, point.value)

    def test_nan_does_not_hide_history(self, store: TrackingStore) -> None:
        """NaN points sit in the history between finite ones and can be the latest value."""
        run_id = new_run(store).info.run_id
        store.log_batch(run_id, metrics=[metric("m", 1.0, 1, 0), metric("m", math.nan, 2, 1),
                                         metric("m", 3.0, 3, 2)])
        assert store.get_run(run_id).data.metrics["m"].value == 3.0
        history = store.get_metric_history(run_id, "m")
        assert [m.timestamp for m in history] == [1, 2, 3]
        assert math.isnan(history[1].value)
        store.log_metric(run_id, metric("m", math.nan, 4, 5))
        assert math.isnan(store.get_run(run_id).data.metrics["m"].value)

    def test_history_paging(self, store: TrackingStore) -> None:
        """Pages cover every point exactly once, in order; the last page has no token."""
        run_id = new_run(store).info.run_id
        logged = [metric("m", float(i % 7), 1000 + i // 2, i % 3) for i in range(53)]
        store.log_batch(run_id, metrics=logged)
        expected = sorted((m.timestamp, m.step, m.value) for m in logged)
        pages = collect_pages(lambda token: store.get_metric_history(
            run_id, "m", max_results=10, page_token=token))
        assert [len(p) for p in pages] == [10, 10, 10, 10, 10, 3]
        assert [pt for page in pages for pt in points(page)] == expected
        everything = store.get_metric_history(run_id, "m")
        assert points(everything) == expected and everything.token is None
        exact = store.get_metric_history(run_id, "m", max_results=53)
        assert len(exact) == 53 and exact.token is None
        first = store.get_metric_history(run_id, "m", max_results=52)
        assert first.token is not None
        rest = store.get_metric_history(run_id, "m", max_results=52, page_token=first.token)
        assert points(rest) == expected[52:] and rest.token is None

    def test_history_garbage_token_rejected(self, store: TrackingStore) -> None:
        """A page token the store did not produce is INVALID_PARAMETER_VALUE."""
        run_id = new_run(store).info.run_id
        store.log_metric(run_id, metric("m", 1.0))
        with pytest.raises(TracklogError) as excinfo:
            store.get_metric_history(run_id, "m", max_results=1, page_token="%%garbage%%")
        assert excinfo.value.error_code == ErrorCode.INVALID_PARAMETER_VALUE

    def test_unknown_key_or_run_is_empty(self, store: TrackingStore) -> None:
        """History of an unknown key or an unknown run is empty, not an error."""
        run_id = new_run(store).info.run_id
        store.log_metric(run_id, metric("m", 1.0))
        unknown_key = store.get_metric_history(run_id, "nope")
        assert list(unknown_key) == [] and unknown_key.token is None
        unknown_run = store.get_metric_history(uuid.uuid4().hex, "m")
        assert list(unknown_run) == [] and unknown_run.token is None
        assert list(store.get_metric_history(run_id, "M")) == []

    def test_metrics_belong_to_their_run(self, store: TrackingStore) -> None:
        """Points of one run never show in another run's history or latest values."""
        exp_run = new_run(store)
        other = new_run(store, exp_run.info.experiment_id).info.run_id
        store.log_metric(exp_run.info.run_id, metric("m", 1.0))
        store.log_metric(other, metric("m", 2.0))
        assert points(store.get_metric_history(other, "m")) == [(1000, 0, 2.0)]
        assert store.get_run(exp_run.info.run_id).data.metrics["m"].value == 1.0

    def test_sampled_history_keeps_shape(self, store: TrackingStore) -> None:
        """A history thinned for a chart holds real points of it, ordered by step, at
        most as many as asked, with the first, the last and the extremes kept; a short
        history and a step range come back whole (within the range)."""
        run_id = new_run(store).info.run_id
        history = [metric("loss", 1 / (s + 1), 1_000 + 1_000 * s, s) for s in range(3_000)]
        history[1_234] = metric("loss", 99.0, history[1_234].timestamp, 1_234)
        history[2_345] = metric("loss", -99.0, history[2_345].timestamp, 2_345)
        for i in range(0, len(history), 1000):
            store.log_batch(run_id, metrics=history[i:i + 1000])
        got = store.sample_metric_history(run_id, "loss", 200)
        logged = {(p.step, p.timestamp): p.value for p in history}
        assert 4 <= len(got) <= 200
        assert all(logged[(p.step, p.timestamp)] == p.value for p in got)
        steps = [p.step for p in got]
        assert steps == sorted(steps) and steps[0] == 0 and steps[-1] == 2_999
        assert {1_234, 2_345} <= set(steps)
        short = store.sample_metric_history(run_id, "loss", 5_000, 10, 19)
        assert [p.step for p in short] == list(range(10, 20))
        assert store.sample_metric_history(run_id, "nope", 200) == []
