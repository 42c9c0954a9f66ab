"""The tracking kit can fail: each mutant breaks one rule of a real store, and the kit test
for that rule must pass on the real store and fail on the mutant.

The real store is whatever the installed plugins provide for ``sqlite://`` (tracklog-store-sql
in this repository), found through ``resolve_store`` like any caller does; without such a
plugin these tests skip.
"""

from __future__ import annotations

import math
import threading
import time

import pytest

from tracklog.entities import MAX_DOUBLE, LifecycleStage, PagedList, Param, RunData, ViewType
from tracklog.errors import ErrorCode, TracklogError
from tracklog.plugins import resolve_store
from tracklog.search import parse_model_version_filter, parse_run_order_by
from tracklog.search.ast import Comparison, Identifier, Kind, Op
from tracklog.stores import TrackingStore
from tracklog.testing.mutants import Mutants

mutant = Mutants()


@mutant("log_batch writes metrics before checking params", "test_param_conflict_writes_nothing")
def _non_atomic(base: type) -> type:
    class M(base):
        def log_batch(self, run_id, metrics=(), params=(), tags=()):
            super().log_batch(run_id, metrics=metrics)
            super().log_batch(run_id, params=params, tags=tags)

    return M


@mutant("history in reverse order", "test_history_order")
def _reversed_history(base: type) -> type:
    class M(base):
        def get_metric_history(self, run_id, metric_key, max_results=None, page_token=None):
            page = super().get_metric_history(run_id, metric_key, max_results, page_token)
            return PagedList(reversed(page), page.token)

    return M


@mutant("latest metric chosen by timestamp", "test_latest_value_is_max_step_timestamp_value")
def _latest_by_time(base: type) -> type:
    class M(base):
        def get_run(self, run_id):
            run = super().get_run(run_id)
            metrics = {}
            for key in run.data.metrics:
                history = super().get_metric_history(run_id, key)
                metrics[key] = max(history, key=lambda m: (m.timestamp, m.value))
            run.data = RunData(metrics, run.data.params, run.data.tags)
            return run

    return M


@mutant("non-finite values clamped to 1e308", "test_non_finite_values_round_trip")
def _finite_only(base: type) -> type:
    class M(base):
        def get_metric_history(self, run_id, metric_key, max_results=None, page_token=None):
            page = super().get_metric_history(run_id, metric_key, max_results, page_token)
            for m in page:
                if math.isinf(m.value) or abs(m.value) == MAX_DOUBLE:
                    object.__setattr__(m, "value", math.copysign(1e308, m.value))
            return page

    return M


@mutant("unknown run history raises", "test_unknown_key_or_run_is_empty")
def _history_of_unknown_run(base: type) -> type:
    class M(base):
        def get_metric_history(self, run_id, metric_key, max_results=None, page_token=None):
            self.get_run(run_id)
            return super().get_metric_history(run_id, metric_key, max_results, page_token)

    return M


def _rewrite_ops(flt, mapping):
    return tuple(Comparison(c.ident, mapping.get(c.op, c.op), c.value) for c in flt)


@mutant("LIKE is case-insensitive", "test_filter_params")
def _like_is_ilike(base: type) -> type:
    class M(base):
        def search_runs(self, experiment_ids, filter=(), *args, **kwargs):
            flt = _rewrite_ops(filter, {Op.LIKE: Op.ILIKE})
            return super().search_runs(experiment_ids, flt, *args, **kwargs)

    return M


@mutant("dataset comparisons ignored", "test_filter_datasets")
def _no_datasets(base: type) -> type:
    class M(base):
        def search_runs(self, experiment_ids, filter=(), *args, **kwargs):
            flt = tuple(c for c in filter if c.ident.kind is not Kind.DATASET)
            return super().search_runs(experiment_ids, flt, *args, **kwargs)

    return M


@mutant("default order is oldest first", "test_order_by_truth_table")
def _oldest_first(base: type) -> type:
    class M(base):
        def search_runs(self, experiment_ids, filter=(), run_view_type=ViewType.ACTIVE_ONLY,
                        max_results=1000, order_by=(), page_token=None):
            order = order_by or parse_run_order_by(["start_time ASC"])
            return super().search_runs(experiment_ids, filter, run_view_type, max_results,
                                       order, page_token)

    return M


@mutant("runs lacking the sort key come first", "test_order_by_truth_table")
def _missing_first(base: type) -> type:
    class M(base):
        def search_runs(self, experiment_ids, filter=(), run_view_type=ViewType.ACTIVE_ONLY,
                        max_results=1000, order_by=(), page_token=None):
            page = super().search_runs(experiment_ids, filter, run_view_type, max_results,
                                       order_by, page_token)
            if order_by and order_by[0].ident.kind is Kind.PARAM:
                key = order_by[0].ident.key
                page = PagedList(sorted(page, key=lambda r: key in r.data.params), page.token)
            return page

    return M


@mutant("a page after the first drops a run", "test_search_runs_pages_cover_every_run_once")
def _lossy_pages(base: type) -> type:
    class M(base):
        def search_runs(self, *args, **kwargs):
            page = super().search_runs(*args, **kwargs)
            if kwargs.get("page_token"):
                return PagedList(page[1:], page.token)
            return page

    return M


@mutant("a full last page still carries a token", "test_token_only_when_more_results")
def _token_on_last_page(base: type) -> type:
    class M(base):
        def search_runs(self, experiment_ids, *args, page_token=None, max_results=1000,
                        **kwargs):
            if page_token == "end":
                return PagedList([], None)
            page = super().search_runs(experiment_ids, *args, page_token=page_token,
                                       max_results=max_results, **kwargs)
            if page.token is None and len(page) == max_results:
                page.token = "end"
            return page

    return M


@mutant("a long filter loses its last comparisons", "test_filter_at_the_complexity_cap")
def _truncated_filter(base: type) -> type:
    class M(base):
        def search_runs(self, experiment_ids, filter=(), *args, **kwargs):
            return super().search_runs(experiment_ids, filter[:64], *args, **kwargs)

    return M


@mutant("orderings past the fifth key ignored", "test_order_by_at_the_complexity_cap")
def _truncated_order(base: type) -> type:
    class M(base):
        def search_runs(self, experiment_ids, filter=(), run_view_type=ViewType.ACTIVE_ONLY,
                        max_results=1000, order_by=(), page_token=None):
            return super().search_runs(experiment_ids, filter, run_view_type, max_results,
                                       order_by[:5], page_token)

    return M


@mutant("deleting a missing tag succeeds", "test_delete_tag")
def _lenient_delete_tag(base: type) -> type:
    class M(base):
        def delete_tag(self, run_id, key):
            try:
                super().delete_tag(run_id, key)
            except TracklogError as exc:
                if exc.error_code != ErrorCode.RESOURCE_DOES_NOT_EXIST:
                    raise

    return M


@mutant("generated names lack the mlflow.runName tag", "test_generated_run_name")
def _no_name_tag(base: type) -> type:
    class M(base):
        def create_run(self, experiment_id, user_id, start_time, tags=(), run_name=None):
            run = super().create_run(experiment_id, user_id, start_time, tags, run_name)
            self.delete_tag(run.info.run_id, "mlflow.runName")
            return self.get_run(run.info.run_id)

    return M


@mutant("deleted runs accept metrics", "test_writes_to_deleted_run_rejected")
def _writable_deleted_runs(base: type) -> type:
    class M(base):
        def log_batch(self, run_id, metrics=(), params=(), tags=()):
            deleted = self.get_run(run_id).info.lifecycle_stage == LifecycleStage.DELETED
            if deleted and metrics and not params and not tags:
                self.restore_run(run_id)
                super().log_batch(run_id, metrics=metrics)
                self.delete_run(run_id)
                return
            super().log_batch(run_id, metrics, params, tags)

    return M


@mutant("experiment names match case-insensitively", "test_get_experiment_by_name_is_exact")
def _case_insensitive_names(base: type) -> type:
    class M(base):
        def get_experiment_by_name(self, name):
            found = super().get_experiment_by_name(name)
            if found is None:
                for exp in self.search_experiments(view_type=ViewType.ALL):
                    if exp.name.lower() == name.lower():
                        return exp
            return found

    return M


@mutant("experiment search ignores the view type", "test_search_experiments_view_type")
def _all_experiments(base: type) -> type:
    class M(base):
        def search_experiments(self, view_type=ViewType.ACTIVE_ONLY, *args, **kwargs):
            return super().search_experiments(ViewType.ALL, *args, **kwargs)

    return M


@mutant("dataset inputs listed twice", "test_datasets_deduplicated_by_name_and_digest")
def _duplicated_inputs(base: type) -> type:
    class M(base):
        def get_run(self, run_id):
            run = super().get_run(run_id)
            run.inputs.dataset_inputs = run.inputs.dataset_inputs * 2
            return run

    return M


@mutant("deleted logged models stay visible", "test_delete_logged_model")
def _visible_deleted_models(base: type) -> type:
    class M(base):
        def get_logged_model(self, model_id, allow_deleted=False):
            return super().get_logged_model(model_id, allow_deleted=True)

    return M


@mutant("archive_existing_versions ignored", "test_stage_transitions")
def _no_archiving(base: type) -> type:
    class M(base):
        def transition_model_version_stage(self, name, version, stage, archive_existing_versions):
            return super().transition_model_version_stage(name, version, stage, False)

    return M


@mutant("restoring an experiment skips runs deleted before it",
        "test_experiment_delete_cascades_to_runs")
def _partial_restore(base: type) -> type:
    class M(base):
        def delete_experiment(self, experiment_id):
            self.earlier = [r.info.run_id for r in self.search_runs(
                [experiment_id], run_view_type=ViewType.DELETED_ONLY)]
            super().delete_experiment(experiment_id)

        def restore_experiment(self, experiment_id):
            super().restore_experiment(experiment_id)
            for run_id in getattr(self, "earlier", ()):
                self.delete_run(run_id)

    return M


@mutant("deleting the default experiment quietly does nothing",
        "test_default_experiment_cannot_be_deleted")
def _quiet_default_delete(base: type) -> type:
    class M(base):
        def delete_experiment(self, experiment_id):
            if experiment_id != "0":
                super().delete_experiment(experiment_id)

    return M


@mutant("registered model search lists prompts", "test_registry_search_hides_prompts")
def _prompts_listed(base: type) -> type:
    prompts = Comparison(Identifier(Kind.TAG, "mlflow.prompt.is_prompt"), Op.EQ, "true")

    class M(base):
        def search_registered_models(self, filter=(), *args, **kwargs):
            found = list(super().search_registered_models(filter, *args, **kwargs))
            if not any(c.ident == prompts.ident for c in filter):
                found += super().search_registered_models(filter + (prompts,), *args, **kwargs)
            return PagedList(sorted(found, key=lambda m: m.name), None)

    return M


@mutant("concurrent version registrations refused", "test_concurrent_model_versions")
def _contended_versions(base: type) -> type:
    # What a store without a row lock does under contention: one registration at a time
    # wins, the ones overlapping it are refused with a conflict.
    busy = threading.Lock()

    class M(base):
        def create_model_version(self, name, source, *args, **kwargs):
            if not busy.acquire(blocking=False):
                raise TracklogError(f"Could not allocate a version number for model {name!r}",
                                    ErrorCode.RESOURCE_CONFLICT)
            try:
                time.sleep(0.05)  # keep the slot long enough for the others to overlap it
                return super().create_model_version(name, source, *args, **kwargs)
            finally:
                busy.release()

    return M


INT64_MAX = 2**63 - 1


def _fits(value: int) -> bool:
    return -(2**63) <= value <= INT64_MAX


@mutant("start times beyond int64 clamped", "test_start_time_beyond_int64_refused")
def _clamped_start(base: type) -> type:
    class M(base):
        def create_run(self, experiment_id, user_id, start_time, tags=(), run_name=None):
            if start_time is not None and not _fits(start_time):
                start_time = INT64_MAX if start_time > 0 else -(2**63)
            return super().create_run(experiment_id, user_id, start_time, tags, run_name)

    return M


@mutant("end times beyond int64 ignored", "test_end_time_beyond_int64_refused")
def _ignored_end(base: type) -> type:
    class M(base):
        def update_run_info(self, run_id, run_status=None, end_time=None, run_name=None):
            if end_time is not None and not _fits(end_time):
                end_time = None
            return super().update_run_info(run_id, run_status, end_time, run_name)

    return M


@mutant("out-of-range metric points dropped", "test_metric_beyond_int64_refuses_the_whole_batch")
def _dropped_points(base: type) -> type:
    class M(base):
        def log_batch(self, run_id, metrics=(), params=(), tags=()):
            metrics = [m for m in metrics if _fits(m.timestamp) and _fits(m.step)]
            super().log_batch(run_id, metrics, params, tags)

    return M


@mutant("forged page offsets read as the first page", "test_forged_page_offsets_refused")
def _lenient_tokens(base: type) -> type:
    class M(base):
        def search_runs(self, experiment_ids, *args, page_token=None, **kwargs):
            try:
                return super().search_runs(experiment_ids, *args, page_token=page_token,
                                           **kwargs)
            except TracklogError:
                return super().search_runs(experiment_ids, *args, **kwargs)

    return M


@mutant("stage transitions archive what they saw before writing",
        "test_concurrent_stage_transitions")
def _stale_archive(base: type) -> type:
    # Archiving outside the transition's transaction, from a view read beforehand.
    class M(base):
        def transition_model_version_stage(self, name, version, stage, archive_existing_versions):
            if not archive_existing_versions:
                return super().transition_model_version_stage(name, version, stage, False)
            seen = [v.version for v in self.search_model_versions(
                parse_model_version_filter(f"name = '{name}'"), max_results=1000)
                if v.current_stage == stage and v.version != str(version)]
            time.sleep(0.05)  # the others read the same view meanwhile
            for other in seen:
                super().transition_model_version_stage(name, other, "Archived", False)
            return super().transition_model_version_stage(name, version, stage, False)

    return M


@mutant("NUL stripped from param values", "test_text_with_nul_refused")
def _stripped_nul(base: type) -> type:
    class M(base):
        def log_batch(self, run_id, metrics=(), params=(), tags=()):
            params = [Param(p.key, p.value.replace("\x00", "")) for p in params]
            super().log_batch(run_id, metrics, params, tags)

    return M


@mutant("tags kept in the store object, never written", "test_reopened_store_sees_everything")
def _unwritten_tags(base: type) -> type:
    # A write-back cache that is never flushed: this store object sees its tags, no other.
    class M(base):
        def set_tag(self, run_id, tag):
            self.__dict__.setdefault("pending", {}).setdefault(run_id, {})[tag.key] = tag.value

        def get_run(self, run_id):
            run = super().get_run(run_id)
            run.data.tags.update(self.__dict__.get("pending", {}).get(run_id, {}))
            return run

    return M


@mutant("get_run hands out its cached runs", "test_returned_entities_are_snapshots")
def _shared_runs(base: type) -> type:
    class M(base):
        def get_run(self, run_id):
            cache = self.__dict__.setdefault("runs", {})
            if run_id not in cache:
                cache[run_id] = super().get_run(run_id)
            return cache[run_id]

    return M


@mutant("get_registered_model hands out its cached models",
        "test_returned_entities_are_snapshots")
def _shared_registered_models(base: type) -> type:
    class M(base):
        def get_registered_model(self, name):
            cache = self.__dict__.setdefault("models", {})
            if name not in cache:
                cache[name] = super().get_registered_model(name)
            return cache[name]

    return M


@mutant("batches overlapping another are dropped", "test_concurrent_batches")
def _overlapping_batches_dropped(base: type) -> type:
    # What a store sharing one unguarded connection between threads can do: a batch that
    # runs while another is in flight is silently lost.
    busy = threading.Lock()

    class M(base):
        def log_batch(self, run_id, metrics=(), params=(), tags=()):
            if not busy.acquire(blocking=False):
                return
            try:
                time.sleep(0.002)  # long enough for the other threads to overlap it
                super().log_batch(run_id, metrics, params, tags)
            finally:
                busy.release()

    return M


@mutant("NaN points never de-duplicated", "test_nan_duplicates_stored_once")
def _nan_kept_twice(base: type) -> type:
    # As a store comparing stored values with = would do: NaN = NaN is false, so every
    # NaN point logged again is stored again.
    class M(base):
        def log_batch(self, run_id, metrics=(), params=(), tags=()):
            logged = self.__dict__.setdefault("nans", [])
            logged += [(run_id, m) for m in metrics if math.isnan(m.value)]
            super().log_batch(run_id, metrics, params, tags)

        def log_metric(self, run_id, metric):
            self.log_batch(run_id, metrics=[metric])

        def get_metric_history(self, run_id, metric_key, max_results=None, page_token=None):
            page = super().get_metric_history(run_id, metric_key, max_results, page_token)
            out = []
            for m in page:
                same = [n for r, n in self.__dict__.get("nans", ()) if r == run_id
                        and (n.key, n.timestamp, n.step) == (m.key, m.timestamp, m.step)]
                out += [m] * (len(same) if math.isnan(m.value) and same else 1)
            return PagedList(out, page.token)

    return M


@mutant("NaN metrics sort after the runs without them", "test_order_by_truth_table")
def _nan_with_missing(base: type) -> type:
    class M(base):
        def search_runs(self, experiment_ids, filter=(), run_view_type=ViewType.ACTIVE_ONLY,
                        max_results=1000, order_by=(), page_token=None):
            page = super().search_runs(experiment_ids, filter, run_view_type, max_results,
                                       order_by, page_token)
            if order_by and order_by[0].ident.kind is Kind.METRIC:
                key = order_by[0].ident.key

                def rank(run):
                    m = run.data.metrics.get(key)
                    return 1 if m is None else 2 if math.isnan(m.value) else 0

                page = PagedList(sorted(page, key=rank), page.token)
            return page

    return M


@mutant("NaN never satisfies !=", "test_filter_metrics")
def _nan_fails_ne(base: type) -> type:
    class M(base):
        def search_runs(self, experiment_ids, filter=(), *args, **kwargs):
            page = super().search_runs(experiment_ids, filter, *args, **kwargs)
            keys = [c.ident.key for c in filter if c.ident.kind is Kind.METRIC and c.op is Op.NE]
            kept = [r for r in page if not any(
                k in r.data.metrics and math.isnan(r.data.metrics[k].value) for k in keys)]
            return PagedList(kept, page.token)

    return M


@mutant("an unknown alias is RESOURCE_DOES_NOT_EXIST", "test_aliases")
def _alias_not_found(base: type) -> type:
    class M(base):
        def get_model_version_by_alias(self, name, alias):
            try:
                return super().get_model_version_by_alias(name, alias)
            except TracklogError as exc:
                raise TracklogError(exc.message, ErrorCode.RESOURCE_DOES_NOT_EXIST) from None

    return M


@mutant("a queued batch is reported before it is written", "test_queued_batch_reads_back")
def _queued_reported_early(base: type) -> type:
    class M(base):
        def submit_log_batch(self, run_id, metrics, params, tags, done):
            done(None, None)
            return super().submit_log_batch(run_id, metrics, params, tags,
                                            lambda _r, _e: None)

    return M


@mutant("a queued write's error reported as success", "test_queued_errors_are_the_synchronous_ones")
def _queued_error_swallowed(base: type) -> type:
    class M(base):
        def submit_log_batch(self, run_id, metrics, params, tags, done):
            return super().submit_log_batch(run_id, metrics, params, tags,
                                            lambda r, _e: done(r, None))

    return M


@mutant("a queued write reported twice", "test_many_queued_from_one_thread")
def _queued_told_twice(base: type) -> type:
    class M(base):
        def submit_log_batch(self, run_id, metrics, params, tags, done):
            def twice(result, error):
                done(result, error)
                done(result, error)

            return super().submit_log_batch(run_id, metrics, params, tags, twice)

    return M


@mutant("a queued run creation reports another start time",
        "test_queued_create_and_update")
def _queued_create_wrong(base: type) -> type:
    class M(base):
        def submit_create_run(self, experiment_id, user_id, start_time, tags, run_name, done):
            return super().submit_create_run(experiment_id, user_id, (start_time or 0) + 1,
                                             tags, run_name, done)

    return M


def _sqlite_store(tmp_path) -> TrackingStore:
    try:
        return resolve_store(f"sqlite:///{tmp_path}/kit.db", str(tmp_path / "artifacts"))
    except TracklogError as exc:
        pytest.skip(f"no installed plugin provides sqlite:// stores: {exc.message}")


@pytest.mark.parametrize("name", mutant.names())
def test_kit_catches_mutant(name: str, tmp_path) -> None:
    """The kit test aimed at a rule passes on the real store and fails on its mutant
    (an assertion, a pytest.raises that did not raise, or an unexpected error)."""
    mutant.check(name, _sqlite_store, tmp_path)
