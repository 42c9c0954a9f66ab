"""The kit's import and purge sections, and what a migration reads, can fail: each mutant
breaks one rule of the real SQL store's capability, and the kit test for that rule passes
on the real store and fails on the mutant (as the core's tracking-kit mutants do)."""

from __future__ import annotations

import pytest

from tracklog.entities import LifecycleStage, RunTag
from tracklog.errors import TracklogError
from tracklog.importing import INCOMPLETE_TAG
from tracklog.plugins import resolve_store
from tracklog.stores import TrackingStore
from tracklog.testing.mutants import Mutants
from tracklog_store_sql.schema import runs

mutant = Mutants()


@mutant("import_experiment hands out a new id", "test_import_keeps_ids_times_and_stages")
def _new_ids(base: type) -> type:
    class M(base):
        def import_experiment(self, experiment):
            self.create_experiment(experiment.name, experiment.artifact_location)
            return True

    return M


@mutant("finish_import leaves runs active", "test_import_keeps_ids_times_and_stages")
def _stage_ignored(base: type) -> type:
    class M(base):
        def finish_import(self, run_id, lifecycle_stage):
            super().finish_import(run_id, LifecycleStage.ACTIVE)

    return M


@mutant("existing_runs calls incomplete runs complete", "test_import_runs_writes_whole_runs")
def _all_complete(base: type) -> type:
    class M(base):
        def existing_runs(self, run_ids):
            return dict.fromkeys(super().existing_runs(run_ids), True)

    return M


@mutant("import_run marks nothing (the mark comes in a later write)",
        "test_an_imported_run_is_incomplete_until_finished")
def _unmarked(base: type) -> type:
    class M(base):
        def import_run(self, info):
            super().import_run(info)
            self.delete_tag(info.run_id, INCOMPLETE_TAG)

    return M


@mutant("finish_import leaves the mark", "test_an_imported_run_is_incomplete_until_finished")
def _mark_left(base: type) -> type:
    class M(base):
        def finish_import(self, run_id, lifecycle_stage):
            super().finish_import(run_id, lifecycle_stage)
            self.set_tag(run_id, RunTag(INCOMPLETE_TAG, "true"))

    return M


@mutant("imported_runs leaves a run's NaN points out",
        "test_imported_runs_reads_back_runs_and_histories")
def _nan_dropped(base: type) -> type:
    class M(base):
        def imported_runs(self, run_ids):
            for run, columns in super().imported_runs(run_ids):
                kept = {k: [p for p in zip(*c, strict=True) if p[2] == p[2]]
                        for k, c in columns.items()}
                yield run, {k: tuple(zip(*p, strict=True)) if p else ((), (), ())
                            for k, p in kept.items()}

    return M


@mutant("experiment_trace_ids sees active experiments only (as searches do)",
        "test_experiment_trace_ids_reach_deleted_experiments")
def _active_traces_only(base: type) -> type:
    from tracklog.stores import TraceStore

    class M(base):
        def experiment_trace_ids(self, experiment_id):
            return TraceStore.experiment_trace_ids(self, experiment_id)

    return M


@mutant("run_experiments leaves deleted runs out (an active-only search)",
        "test_run_experiments_names_each_runs_experiment")
def _active_runs_only(base: type) -> type:
    class M(base):
        def run_experiments(self, run_ids):
            return {rid: eid for rid, eid in super().run_experiments(run_ids).items()
                    if self.get_run(rid).info.lifecycle_stage == LifecycleStage.ACTIVE}

    return M


@mutant("history_columns cuts a history off at the limit instead of saying it is longer",
        "test_history_columns_read_whole_short_histories")
def _cut_off(base: type) -> type:
    class M(base):
        def history_columns(self, run_id, key, limit):
            whole = super().history_columns(run_id, key, 10**9)
            return tuple(c[:limit] for c in whole)

    return M


@mutant("purge_run deletes live runs first", "test_live_records_are_refused")
def _purges_live(base: type) -> type:
    class M(base):
        def purge_run(self, run_id):
            if self.get_run(run_id).info.lifecycle_stage == LifecycleStage.ACTIVE:
                self.delete_run(run_id)
            super().purge_run(run_id)

    return M


@mutant("deleted_runs ignores the cutoff", "test_cutoff_keeps_recent_deletions")
def _no_cutoff(base: type) -> type:
    class M(base):
        def deleted_runs(self, deleted_before, experiment_ids=None):
            return super().deleted_runs(None, experiment_ids)

    return M


@mutant("purge_experiment leaves its runs",
        "test_purged_experiment_takes_its_runs_and_frees_its_name")
def _runs_left(base: type) -> type:
    class M(base):
        def purge_experiment(self, experiment_id):
            # Hides the experiment's runs in the Default experiment instead of removing
            # them, so the experiment row itself can go.
            with self.db.write() as conn:
                conn.execute(runs.update().where(runs.c.experiment_id == int(experiment_id))
                             .values(experiment_id=0))
            super().purge_experiment(experiment_id)

    return M


def _sqlite_store(tmp_path) -> TrackingStore:
    try:
        return resolve_store(f"sqlite:///{tmp_path}/kit.db", str(tmp_path / "artifacts"))
    except TracklogError as exc:
        pytest.skip(f"no installed plugin provides sqlite:// stores: {exc.message}")


@pytest.mark.parametrize("name", mutant.names())
def test_kit_catches_mutant(name: str, tmp_path) -> None:
    mutant.check(name, _sqlite_store, tmp_path)
