"""What a store refuses before writing anything: integers outside int64, text holding NUL,
page tokens pointing past any page it hands out."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable

import pytest

from tracklog.entities import ExperimentTag, Metric, Param, RunTag
from tracklog.errors import ErrorCode, TracklogError
from tracklog.stores import TrackingStore

from ._base import KitBase, new_experiment, new_run, unique

INT64_MAX = 2**63 - 1
INT64_MIN = -(2**63)


def _refused(call: Callable[..., object], *fields: str) -> str:
    """Run ``call``; it must raise INVALID_PARAMETER_VALUE whose message names a field."""
    with pytest.raises(TracklogError) as info:
        call()
    assert info.value.error_code == ErrorCode.INVALID_PARAMETER_VALUE, info.value
    assert any(f in info.value.message for f in fields), info.value.message
    return info.value.message


def _token(offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"offset": offset}).encode()).decode()


class BoundsTests(KitBase):
    """Every integer the protocol carries is an int64 and no backend stores NUL alike: a
    store refuses such input with INVALID_PARAMETER_VALUE naming the field, writes nothing,
    and stays readable."""

    def test_start_time_beyond_int64_refused(self, store: TrackingStore) -> None:
        """``create_run`` with a start time outside int64 writes no run; the extremes of
        int64 round-trip."""
        exp_id = new_experiment(store)
        for bad in (INT64_MAX + 1, INT64_MIN - 1, 2**64):
            _refused(lambda bad=bad: store.create_run(exp_id, "u", bad), "start_time")
        assert list(store.search_runs([exp_id])) == []
        run = store.create_run(exp_id, "u", INT64_MAX)
        assert store.get_run(run.info.run_id).info.start_time == INT64_MAX
        assert [r.info.start_time for r in store.search_runs([exp_id])] == [INT64_MAX]

    def test_end_time_beyond_int64_refused(self, store: TrackingStore) -> None:
        """``update_run_info`` with an end time outside int64 leaves the run as it was."""
        run_id = new_run(store).info.run_id
        _refused(lambda: store.update_run_info(run_id, end_time=INT64_MAX + 1), "end_time")
        assert store.get_run(run_id).info.end_time is None
        store.update_run_info(run_id, end_time=INT64_MAX)
        assert store.get_run(run_id).info.end_time == INT64_MAX

    def test_metric_beyond_int64_refuses_the_whole_batch(self, store: TrackingStore) -> None:
        """A batch holding one point with a timestamp or step outside int64 writes nothing
        (neither its good points nor its params); int64's extremes round-trip."""
        run_id = new_run(store).info.run_id
        good = Metric("m", 1.0, 5, 0)
        for bad, field in ((Metric("m", 2.0, INT64_MAX + 1, 0), "timestamp"),
                           (Metric("m", 2.0, 1, INT64_MIN - 1), "step"),
                           (Metric("m", 2.0, 1, 2**64), "step")):
            _refused(lambda bad=bad: store.log_batch(
                run_id, metrics=[good, bad], params=[Param("p", "v")]), field)
        run = store.get_run(run_id)
        assert run.data.metrics == {} and run.data.params == {}
        assert list(store.get_metric_history(run_id, "m")) == []
        store.log_batch(run_id, metrics=[Metric("m", 3.0, INT64_MAX, INT64_MIN)])
        history = store.get_metric_history(run_id, "m")
        assert [(m.timestamp, m.step, m.value) for m in history] == [
            (INT64_MAX, INT64_MIN, 3.0)]
        assert store.get_run(run_id).data.metrics["m"].timestamp == INT64_MAX

    def test_forged_page_offsets_refused(self, store: TrackingStore) -> None:
        """A page token whose offset lies beyond int64 (or below zero) is
        INVALID_PARAMETER_VALUE, and a history page as large as int64 allows is simply
        the whole history."""
        exp_id = new_experiment(store)
        run_id = store.create_run(exp_id, "u", 1).info.run_id
        for offset in (2**63, 2**70, -1):
            token = _token(offset)
            _refused(lambda t=token: store.search_runs([exp_id], page_token=t), "token")
            _refused(lambda t=token: store.search_experiments(page_token=t), "token")
        store.log_batch(run_id, metrics=[Metric("m", float(i), i, i) for i in range(3)])
        page = store.get_metric_history(run_id, "m", max_results=INT64_MAX)
        assert [m.step for m in page] == [0, 1, 2] and page.token is None
        assert len(store.search_runs([exp_id], max_results=INT64_MAX)) == 1

    def test_text_with_nul_refused(self, store: TrackingStore) -> None:
        """Names, values and tags holding NUL are refused and not written; looking an id
        or a name up with NUL finds nothing."""
        name = unique("nul") + "\x00x"
        _refused(lambda: store.create_experiment(name), "name")
        assert store.get_experiment_by_name(name) is None
        _refused(lambda: store.create_experiment(
            unique("nul"), tags=[ExperimentTag("t", "a\x00b")]), "tag")
        exp_id = new_experiment(store)
        _refused(lambda: store.set_experiment_tag(exp_id, ExperimentTag("t", "a\x00b")), "tag")
        assert "t" not in store.get_experiment(exp_id).tags
        _refused(lambda: store.create_run(exp_id, "u", 1, tags=[RunTag("t", "a\x00")]), "tag")
        _refused(lambda: store.create_run(exp_id, "u", 1, run_name="r\x00"), "run_name")
        assert list(store.search_runs([exp_id])) == []
        run_id = store.create_run(exp_id, "u", 1).info.run_id
        _refused(lambda: store.log_batch(
            run_id, metrics=[Metric("m", 1.0, 1, 0)], params=[Param("p", "a\x00b")]), "param")
        _refused(lambda: store.log_batch(run_id, tags=[RunTag("t", "\x00")]), "tag")
        run = store.get_run(run_id)
        assert run.data.params == {} and run.data.metrics == {} and "t" not in run.data.tags
        with pytest.raises(TracklogError) as info:
            store.get_run(run_id + "\x00")
        assert info.value.error_code == ErrorCode.RESOURCE_DOES_NOT_EXIST
