"""Lifecycle: run view types and experiment deletion cascading to runs."""

from __future__ import annotations

import pytest

from tracklog.entities import LifecycleStage, ViewType
from tracklog.errors import ErrorCode, TracklogError
from tracklog.stores import TrackingStore

from ._base import KitBase, metric, new_experiment, new_run


class LifecycleTests(KitBase):
    """What soft deletion of runs and experiments does to reads, writes and searches."""

    def test_run_view_types(self, store: TrackingStore) -> None:
        """ACTIVE_ONLY, DELETED_ONLY and ALL select runs by lifecycle stage."""
        exp_id = new_experiment(store)
        live = new_run(store, exp_id).info.run_id
        dead = new_run(store, exp_id).info.run_id
        store.delete_run(dead)

        def found(view: ViewType) -> set[str]:
            return {r.info.run_id for r in store.search_runs([exp_id], run_view_type=view)}

        assert found(ViewType.ACTIVE_ONLY) == {live}
        assert found(ViewType.DELETED_ONLY) == {dead}
        assert found(ViewType.ALL) == {live, dead}
        store.restore_run(dead)
        assert found(ViewType.ACTIVE_ONLY) == {live, dead}
        assert found(ViewType.DELETED_ONLY) == set()

    def test_experiment_delete_cascades_to_runs(self, store: TrackingStore) -> None:
        """Deleting an experiment deletes its runs; restoring it restores every one of
        them, also runs deleted on their own before the experiment (as MLflow's stores)."""
        exp_id = new_experiment(store)
        run_ids = {new_run(store, exp_id).info.run_id for _ in range(3)}
        early = new_run(store, exp_id).info.run_id
        store.delete_run(early)
        other = new_run(store).info.run_id
        store.delete_experiment(exp_id)
        for run_id in run_ids | {early}:
            assert store.get_run(run_id).info.lifecycle_stage == LifecycleStage.DELETED
        assert store.get_run(other).info.lifecycle_stage == LifecycleStage.ACTIVE
        assert list(store.search_runs([exp_id])) == []
        deleted = store.search_runs([exp_id], run_view_type=ViewType.DELETED_ONLY)
        assert {r.info.run_id for r in deleted} == run_ids | {early}
        store.restore_experiment(exp_id)
        for run_id in run_ids | {early}:
            assert store.get_run(run_id).info.lifecycle_stage == LifecycleStage.ACTIVE
        assert {r.info.run_id for r in store.search_runs([exp_id])} == run_ids | {early}
        assert list(store.search_runs([exp_id], run_view_type=ViewType.DELETED_ONLY)) == []
        store.log_metric(early, metric("m", 1.0))
        assert store.get_run(early).data.metrics["m"].value == 1.0

    def test_runs_of_deleted_experiment_reject_writes(self, store: TrackingStore) -> None:
        """After the experiment is deleted its runs refuse writes but stay readable."""
        exp_id = new_experiment(store)
        run_id = new_run(store, exp_id).info.run_id
        store.log_metric(run_id, metric("m", 1.0))
        store.delete_experiment(exp_id)
        with pytest.raises(TracklogError) as excinfo:
            store.log_metric(run_id, metric("m", 2.0, 2000))
        assert excinfo.value.error_code == ErrorCode.INVALID_PARAMETER_VALUE
        assert [m.value for m in store.get_metric_history(run_id, "m")] == [1.0]
        assert store.get_run(run_id).data.metrics["m"].value == 1.0

    def test_deleted_run_found_by_id_in_all_view(self, store: TrackingStore) -> None:
        """A deleted run is found by a run_id filter under ALL, not under ACTIVE_ONLY."""
        from ._base import run_filter

        exp_id = new_experiment(store)
        run_id = new_run(store, exp_id).info.run_id
        store.delete_run(run_id)
        flt = run_filter(f"attributes.run_id = '{run_id}'")
        assert list(store.search_runs([exp_id], filter=flt)) == []
        found = store.search_runs([exp_id], filter=flt, run_view_type=ViewType.ALL)
        assert [r.info.run_id for r in found] == [run_id]
        assert found[0].info.lifecycle_stage == LifecycleStage.DELETED

    def test_close_is_idempotent(self, store: TrackingStore) -> None:
        """close() may be called more than once."""
        exp_id = new_experiment(store)
        assert store.get_experiment(exp_id).experiment_id == exp_id
        store.close()
        store.close()
