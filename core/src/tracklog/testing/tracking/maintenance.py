"""Kit sections for the maintenance capabilities: :class:`tracklog.importing.ImportStore`
(``tracklog migrate``) and :class:`tracklog.gc.PurgeStore` (``tracklog gc``). A store
without the capability skips its section with the reason."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import pytest

from tracklog.entities import Experiment, LifecycleStage, RunInfo, RunStatus
from tracklog.errors import ErrorCode, TracklogError
from tracklog.gc import PurgeStore
from tracklog.importing import ImportStore

from ._base import KitBase, error_code, metric, new_experiment, new_run, params, tags, unique


def _imports(call: Callable[[], bool]) -> bool:
    """Whether an optional import capability took the record (True, as it must the first
    time); a store without it answers NOT_IMPLEMENTED."""
    try:
        created = call()
    except TracklogError as exc:
        if exc.error_code != ErrorCode.NOT_IMPLEMENTED:
            raise
        return False
    assert created is True
    return True


#: A value with what array literals, CSV and SQL quote or escape.
_ODD = 'say "hi", {x}\\ \'NULL\'\n\tend'


def _need(store: object, capability: type) -> None:
    if not isinstance(store, capability):
        pytest.skip(f"store does not declare {capability.__name__}")


class ImportTests(KitBase):
    """Records written with their own ids, times and lifecycle stages."""

    def _experiment(self, eid: str = "77") -> Experiment:
        return Experiment(eid, unique("imported"), f"/elsewhere/{eid}",
                          LifecycleStage.ACTIVE, {"team": "a"}, 1_600_000_000_000,
                          1_600_000_000_500)

    def test_import_keeps_ids_times_and_stages(self, store):
        """An imported experiment and run keep their ids, names, times, status and final
        stage; their data is logged in between."""
        _need(store, ImportStore)
        exp = self._experiment()
        assert store.import_experiment(exp) is True
        got = store.get_experiment("77")
        assert (got.name, got.artifact_location, got.tags) == (exp.name,
                                                                exp.artifact_location,
                                                                exp.tags)
        assert got.creation_time == exp.creation_time
        info = RunInfo("ab" * 16, "77", "old-run", "ana", RunStatus.FAILED,
                       1_600_000_001_000, 1_600_000_002_000, "/elsewhere/77/run/artifacts")
        store.import_run(info)
        store.log_batch(info.run_id, metrics=[metric("loss", 0.5, 1_600_000_001_500, 3)],
                        params=params(lr="0.1"), tags=tags(k="v"))
        store.finish_import(info.run_id, LifecycleStage.DELETED)
        run = store.get_run(info.run_id)
        assert dataclasses.replace(run.info, lifecycle_stage=LifecycleStage.ACTIVE,
                                   run_name="old-run") == info
        assert run.info.lifecycle_stage == LifecycleStage.DELETED
        assert run.data.params == {"lr": "0.1"} and run.data.tags["k"] == "v"
        assert [p.step for p in store.get_metric_history(info.run_id, "loss")] == [3]
        # New experiments never collide with imported ids.
        fresh = new_experiment(store)
        assert fresh != "77"
        assert store.get_experiment("77").name == exp.name

    def test_import_is_repeatable_and_conflicts_are_refused(self, store):
        """Importing the same experiment twice is a no-op; a clashing id or name is refused."""
        _need(store, ImportStore)
        exp = self._experiment("78")
        assert store.import_experiment(exp) is True
        assert store.import_experiment(exp) is False
        clash = dataclasses.replace(exp, name=unique("other"))
        assert error_code(lambda: store.import_experiment(clash)) \
            == ErrorCode.INVALID_PARAMETER_VALUE
        same_name = dataclasses.replace(exp, experiment_id="79")
        assert error_code(lambda: store.import_experiment(same_name)) \
            == ErrorCode.INVALID_PARAMETER_VALUE

    def test_importing_a_run_again_reopens_it(self, store):
        """A resumed migration imports a run again: it is active until finished anew."""
        _need(store, ImportStore)
        info = RunInfo("cd" * 16, "0", "again", "u", RunStatus.FINISHED, 1, 2, "/x")
        store.import_run(info)
        store.finish_import(info.run_id, LifecycleStage.DELETED)
        store.import_run(info)  # a resumed migration writes the run again
        store.log_batch(info.run_id, params=params(p="1"))
        store.finish_import(info.run_id, LifecycleStage.ACTIVE)
        run = store.get_run(info.run_id)
        assert run.info.lifecycle_stage == LifecycleStage.ACTIVE
        assert run.data.params == {"p": "1"}

    def test_an_imported_run_is_incomplete_until_finished(self, store):
        """import_run marks the run incomplete in the same write that creates (or
        reopens) it, so a migration stopped right after finds it incomplete and writes it
        again; finish_import removes the mark."""
        _need(store, ImportStore)
        from tracklog.importing import INCOMPLETE_TAG

        info = RunInfo("ef" * 16, "0", "marked", "u", RunStatus.FINISHED, 1, 2, "/x")
        store.import_run(info)
        assert store.existing_runs([info.run_id]) == {info.run_id: False}
        assert INCOMPLETE_TAG in store.get_run(info.run_id).data.tags
        store.finish_import(info.run_id, LifecycleStage.ACTIVE)
        assert store.existing_runs([info.run_id]) == {info.run_id: True}
        assert INCOMPLETE_TAG not in store.get_run(info.run_id).data.tags
        store.import_run(info)  # resumed: incomplete again until finished anew
        assert store.existing_runs([info.run_id]) == {info.run_id: False}
        store.finish_import(info.run_id, LifecycleStage.DELETED)
        assert store.existing_runs([info.run_id]) == {info.run_id: True}


    def test_import_runs_writes_whole_runs(self, store):
        """import_runs writes whole runs with their stages and points; existing_runs tells
        complete runs from incomplete ones."""
        _need(store, ImportStore)
        from tracklog.entities import Run, RunData
        from tracklog.importing import INCOMPLETE_TAG, ImportedRun

        def imported(rid: str, stage: LifecycleStage) -> ImportedRun:
            info = RunInfo(rid, "0", f"n-{rid[:4]}", "u", RunStatus.FINISHED, 10, 20, "/a",
                           stage)
            data = RunData(params={"p": rid[:6]}, tags={"mlflow.runName": f"n-{rid[:4]}"})
            points = [metric("loss", float(s), 100 + s, s) for s in range(50)]
            points.append(metric("loss", float("nan"), 200, 60))
            return ImportedRun(Run(info, data), points)

        a, b = "1a" * 16, "2b" * 16
        store.import_runs([imported(a, LifecycleStage.ACTIVE),
                           imported(b, LifecycleStage.DELETED)])
        got_a, got_b = store.get_run(a), store.get_run(b)
        assert got_b.info.lifecycle_stage == LifecycleStage.DELETED
        assert (got_a.info.status, got_a.info.start_time, got_a.info.end_time) == (
            RunStatus.FINISHED, 10, 20)
        assert got_a.data.params == {"p": a[:6]}
        history = list(store.get_metric_history(a, "loss"))
        assert len(history) == 51 and history[-1].step == 60
        assert got_a.data.metrics["loss"].step == 60  # the latest is the NaN point
        marked = "3c" * 16
        store.import_run(RunInfo(marked, "0", "m", "u", RunStatus.RUNNING, 1, None, "/m"))
        assert INCOMPLETE_TAG not in got_a.data.tags
        assert store.existing_runs([a, b, marked, "9" * 32]) == {a: True, b: True,
                                                                  marked: False}


    def test_run_experiments_names_each_runs_experiment(self, store):
        """run_experiments answers the experiment of each existing run, deleted runs
        and runs of deleted experiments included; unknown ids are left out."""
        _need(store, ImportStore)
        first, second = new_experiment(store), new_experiment(store)
        a = new_run(store, first).info.run_id
        b = new_run(store, second).info.run_id
        deleted = new_run(store, first).info.run_id
        store.delete_run(deleted)
        gone = new_experiment(store)
        in_gone = new_run(store, gone).info.run_id
        store.delete_experiment(gone)
        assert store.run_experiments([a, b, deleted, in_gone, "9" * 32, "it's"]) == {
            a: first, b: second, deleted: first, in_gone: gone}
        assert store.run_experiments([]) == {}

    def test_history_columns_read_whole_short_histories(self, store):
        """history_columns hands a history over as columns (NaN as NaN) when it holds at
        most ``limit`` points, None when it holds more, and empty columns for a key the
        run never logged."""
        _need(store, ImportStore)
        import math

        rid = new_run(store, new_experiment(store)).info.run_id
        store.log_batch(rid, metrics=[metric("loss", float(s), 100 + s, s) for s in range(5)]
                        + [metric("loss", math.nan, 99, 7)])
        got = store.history_columns(rid, "loss", 6)
        assert got is not None
        points = sorted(zip(*got, strict=True))
        assert points[0][:2] == (99, 7) and math.isnan(points[0][2])
        assert points[1:] == [(100 + s, s, float(s)) for s in range(5)]
        assert store.history_columns(rid, "loss", 5) is None
        assert [list(c) for c in store.history_columns(rid, "other", 5)] == [[], [], []]

    def test_statistics_refresh_after_an_import(self, store):
        """refresh_statistics, called at the end of a migration, leaves every record as
        it was and the store usable for reads and writes."""
        _need(store, ImportStore)
        from tracklog.entities import Run, RunData
        from tracklog.importing import ImportedRun

        rid = "6f" * 16
        info = RunInfo(rid, "0", "n", "u", RunStatus.FINISHED, 10, 20, "/a")
        store.import_runs([ImportedRun(Run(info, RunData(params={"p": "1"})),
                                       [metric("loss", 0.5, 100, 1)])])
        store.refresh_statistics()
        assert store.get_run(rid).data.params == {"p": "1"}
        assert [p.value for p in store.get_metric_history(rid, "loss")] == [0.5]
        new = new_run(store, new_experiment(store)).info.run_id
        store.log_batch(new, metrics=[metric("loss", 1.0, 1, 0)])
        assert store.get_run(new).data.metrics["loss"].value == 1.0

    def test_imported_runs_reads_back_runs_and_histories(self, store):
        """imported_runs reads runs back with their params, tags, latest metrics and
        every point of every history as columns (NaN as NaN), runs in any order; an id
        that names no run is left out."""
        _need(store, ImportStore)
        import math

        from tracklog.entities import Run, RunData
        from tracklog.importing import ImportedRun

        a, b = "4d" * 16, "5e" * 16
        for rid, n in ((a, 30), (b, 3)):
            info = RunInfo(rid, "0", f"n-{rid[:4]}", "u", RunStatus.FINISHED, 10, 20, "/a")
            data = RunData(params={"p": rid[:6], "odd": _ODD},
                           tags={"mlflow.runName": f"n-{rid[:4]}", "odd": _ODD, "none": ""})
            points = [metric("loss", float(s), 100 + s, s) for s in range(n)]
            points += [metric("acc", math.nan, 5, 1), metric("acc", 0.5, 5, 0)]
            store.import_runs([ImportedRun(Run(info, data), points)])
        got = dict(((run.info.run_id, (run, columns))
                    for run, columns in store.imported_runs([b, "9" * 32, a])))
        assert set(got) == {a, b}
        run, columns = got[a]
        assert run.data.params == {"p": a[:6], "odd": _ODD}
        assert (run.data.tags["odd"], run.data.tags["none"]) == (_ODD, "")
        assert set(run.data.metrics) == {"loss", "acc"}
        assert set(columns) == {"loss", "acc"}
        ts, steps, values = columns["loss"]
        assert sorted(zip(ts, steps, values, strict=True)) == [
            (100 + s, s, float(s)) for s in range(30)]
        acc = sorted(zip(*columns["acc"], strict=True), key=lambda p: p[1])
        assert acc[0] == (5, 0, 0.5) and acc[1][:2] == (5, 1) and math.isnan(acc[1][2])
        assert len(got[b][1]["loss"][0]) == 3

    def test_import_logged_model_trace_and_registered_model(self, store):
        """Logged models, traces (with assessments) and registered models (with versions,
        tags and aliases) keep their ids, times and states; importing one again is a
        no-op that returns False."""
        _need(store, ImportStore)
        from tracklog.entities import (
            Assessment,
            AssessmentKind,
            LoggedModel,
            LoggedModelStatus,
            ModelVersion,
            RegisteredModel,
            RegisteredModelAlias,
            TraceInfo,
            TraceState,
        )
        from tracklog.stores import ModelRegistryStore, TraceStore

        importer: ImportStore = store
        exp = self._experiment("81")
        importer.import_experiment(exp)
        model = LoggedModel(
            "m-" + "a1" * 16, "81", "clf", "/elsewhere/81/models/m/artifacts", 1_600_000_000_100,
            1_600_000_000_200, LoggedModelStatus.LOGGED_MODEL_READY, "classifier", None,
            None, {"flavor": "sk"}, {"depth": "3"},
            [metric("acc", 0.5, 1_600_000_000_150, 2, model_id="m-" + "a1" * 16,
                    run_id="ef" * 16)])
        if _imports(lambda: importer.import_logged_model(model)):
            assert store.import_logged_model(model) is False
            got = store.get_logged_model(model.model_id)
            assert (got.name, got.status, got.params, got.tags, got.creation_timestamp,
                    got.model_type) == (model.name, model.status, model.params, model.tags,
                                        model.creation_timestamp, model.model_type)
            assert [(m.key, m.value, m.step) for m in got.metrics] == [("acc", 0.5, 2)]
        tid = "tr-" + "b2" * 16
        trace = TraceInfo(tid, "81", 1_600_000_000_300, 40, TraceState.OK, "q", "a",
                          None, {"mlflow.sourceRun": "ef" * 16}, {"kept": "1"},
                          [Assessment("a-" + "c3" * 16, tid, "quality",
                                      AssessmentKind.FEEDBACK, {"value": 0.8},
                                      create_time=5, last_update_time=6)])
        if isinstance(store, TraceStore) and _imports(lambda: importer.import_trace(trace)):
            assert importer.import_trace(trace) is False
            got_trace = store.get_trace_info(tid)
            assert (got_trace.request_time, got_trace.state, got_trace.trace_metadata) == (
                trace.request_time, trace.state, trace.trace_metadata)
            assert got_trace.tags["kept"] == "1"
            [a] = got_trace.assessments
            assert (a.assessment_id, a.value, a.create_time) == (
                "a-" + "c3" * 16, {"value": 0.8}, 5)
        name = unique("reg")
        versions = [ModelVersion(name, v, 10 * int(v), 11 * int(v), f"runs:/x/{v}",
                                 tags={"v": v}) for v in ("1", "3")]
        model_entry = RegisteredModel(name, 10, 33, "d", None, [], {"o": "a"},
                                      [RegisteredModelAlias("best", "3")])
        if isinstance(store, ModelRegistryStore) and _imports(
                lambda: importer.import_registered_model(model_entry, versions)):
            assert importer.import_registered_model(model_entry, versions) is False
            got_reg = store.get_registered_model(name)
            assert (got_reg.tags, got_reg.creation_timestamp,
                    [(x.alias, x.version) for x in got_reg.aliases]) == (
                {"o": "a"}, 10, [("best", "3")])
            mv = store.get_model_version(name, "3")
            assert (mv.source, mv.tags, mv.creation_timestamp) == ("runs:/x/3", {"v": "3"}, 30)
            # A version registered after the import takes the next number.
            assert store.create_model_version(name, "runs:/y/m").version == "4"


class PurgeTests(KitBase):
    """Deleted records found and removed for good; live ones never."""

    def test_purged_run_is_gone_and_its_neighbour_stays(self, store):
        """A purged run and its data are gone; its neighbour is untouched; purging twice
        does nothing."""
        _need(store, PurgeStore)
        exp = new_experiment(store)
        doomed, neighbour = new_run(store, exp), new_run(store, exp)
        for r in (doomed, neighbour):
            store.log_batch(r.info.run_id, metrics=[metric("loss", 1.0)],
                            params=params(p="1"), tags=tags(t="x"))
        store.delete_run(doomed.info.run_id)
        assert doomed.info.run_id in {i.run_id for i in store.deleted_runs(None, [exp])}
        assert neighbour.info.run_id not in {i.run_id for i in store.deleted_runs(None)}
        store.purge_run(doomed.info.run_id)
        assert error_code(lambda: store.get_run(doomed.info.run_id)) \
            == ErrorCode.RESOURCE_DOES_NOT_EXIST
        assert list(store.get_metric_history(doomed.info.run_id, "loss")) == []
        assert doomed.info.run_id not in {i.run_id for i in store.deleted_runs(None)}
        store.purge_run(doomed.info.run_id)  # again: nothing to do
        kept = store.get_run(neighbour.info.run_id)
        assert kept.data.params == {"p": "1"} and "loss" in kept.data.metrics
        assert len(list(store.get_metric_history(neighbour.info.run_id, "loss"))) == 1

    def test_live_records_are_refused(self, store):
        """Live runs and experiments are never purged."""
        _need(store, PurgeStore)
        run = new_run(store)
        assert error_code(lambda: store.purge_run(run.info.run_id)) \
            == ErrorCode.INVALID_PARAMETER_VALUE
        assert store.get_run(run.info.run_id).info.lifecycle_stage == LifecycleStage.ACTIVE
        exp = new_experiment(store)
        assert error_code(lambda: store.purge_experiment(exp)) \
            == ErrorCode.INVALID_PARAMETER_VALUE
        assert store.get_experiment(exp).lifecycle_stage == LifecycleStage.ACTIVE

    def test_cutoff_keeps_recent_deletions(self, store):
        """Only runs deleted at or before the cutoff are found."""
        _need(store, PurgeStore)
        run = new_run(store)
        store.delete_run(run.info.run_id)
        assert run.info.run_id not in {i.run_id for i in store.deleted_runs(0)}
        assert run.info.run_id in {i.run_id for i in store.deleted_runs(2**62)}

    def test_purged_experiment_takes_its_runs_and_frees_its_name(self, store):
        """A purged experiment takes its runs and logged models with it and frees its name."""
        _need(store, PurgeStore)
        exp = new_experiment(store)
        name = store.get_experiment(exp).name
        run = new_run(store, exp)
        store.log_batch(run.info.run_id, metrics=[metric("m", 2.0)])
        model = store.create_logged_model(exp, name="m")
        store.delete_experiment(exp)
        assert exp in {e.experiment_id for e in store.deleted_experiments(None)}
        store.purge_experiment(exp)
        assert error_code(lambda: store.get_experiment(exp)) \
            == ErrorCode.RESOURCE_DOES_NOT_EXIST
        assert error_code(lambda: store.get_run(run.info.run_id)) \
            == ErrorCode.RESOURCE_DOES_NOT_EXIST
        assert error_code(lambda: store.get_logged_model(model.model_id, allow_deleted=True)) \
            == ErrorCode.RESOURCE_DOES_NOT_EXIST
        assert store.get_experiment_by_name(name) is None
        store.create_experiment(name)

    def test_purged_logged_model_is_gone(self, store):
        """A purged logged model is gone, even for allow_deleted reads."""
        _need(store, PurgeStore)
        exp = new_experiment(store)
        model = store.create_logged_model(exp, name="m")
        store.delete_logged_model(model.model_id)
        assert model.model_id in {m.model_id for m in store.deleted_logged_models(None)}
        store.purge_logged_model(model.model_id)
        assert error_code(lambda: store.get_logged_model(model.model_id, allow_deleted=True)) \
            == ErrorCode.RESOURCE_DOES_NOT_EXIST
