"""The trace part of the tracking kit can fail: each mutant breaks one rule of a real trace
store, and the kit test for that rule must pass on the real store and fail on the mutant.

The real store is whatever the installed plugins provide for ``sqlite://`` (tracklog-store-sql
in this repository), found through ``resolve_store``; without such a plugin these tests skip.
"""

from __future__ import annotations

import pytest

from tracklog.entities import PagedList
from tracklog.errors import TracklogError
from tracklog.plugins import resolve_store
from tracklog.search.ast import Kind
from tracklog.stores import TRACE_ARTIFACT_LOCATION_TAG, TraceStore, TrackingStore
from tracklog.testing.mutants import Mutants

mutant = Mutants()


@mutant("the artifact location tag is left out", "test_start_and_get_trace")
def _no_location(base: type) -> type:
    class M(base):
        def get_trace_info(self, trace_id):
            info = super().get_trace_info(trace_id)
            info.tags.pop(TRACE_ARTIFACT_LOCATION_TAG, None)
            return info

    return M


@mutant("tag comparisons are ignored", "test_search_filter_truth_table")
def _no_tag_filters(base: type) -> type:
    class M(base):
        def search_traces(self, experiment_ids, filter=(), *args, **kwargs):
            kept = tuple(c for c in filter if c.ident.kind is not Kind.TAG)
            return super().search_traces(experiment_ids, kept, *args, **kwargs)

    return M


@mutant("the default order is oldest first", "test_search_order")
def _oldest_first(base: type) -> type:
    class M(base):
        def search_traces(self, experiment_ids, filter=(), max_results=100, order_by=(),
                          page_token=None):
            page = super().search_traces(experiment_ids, filter, max_results, order_by,
                                         page_token)
            return page if order_by else PagedList(reversed(page), page.token)

    return M


@mutant("a full last page still carries a token", "test_search_pages_cover_every_trace_once")
def _token_on_last_page(base: type) -> type:
    class M(base):
        def search_traces(self, experiment_ids, filter=(), max_results=100, order_by=(),
                          page_token=None):
            if page_token == "end":
                return PagedList([], None)
            page = super().search_traces(experiment_ids, filter, max_results, order_by,
                                         page_token)
            if page.token is None and len(page) == max_results:
                page.token = "end"
            return page

    return M


@mutant("deleting by age ignores max_traces", "test_delete_traces")
def _unbounded_delete(base: type) -> type:
    class M(base):
        def delete_traces(self, experiment_id, max_timestamp_millis=None, max_traces=None,
                          trace_ids=()):
            return super().delete_traces(experiment_id, max_timestamp_millis, None, trace_ids)

    return M


@mutant("deleting a missing trace tag succeeds", "test_trace_tags")
def _lenient_tag_delete(base: type) -> type:
    class M(base):
        def delete_trace_tag(self, trace_id, key):
            try:
                super().delete_trace_tag(trace_id, key)
            except TracklogError:
                pass

    return M


@mutant("links to runs are dropped", "test_traces_found_by_run")
def _no_links(base: type) -> type:
    class M(base):
        def link_traces_to_run(self, trace_ids, run_id):
            self.get_run(run_id)  # still refuses unknown runs

    return M


@mutant("an update turns feedback into an expectation", "test_assessments")
def _kind_change(base: type) -> type:
    class M(base):
        def update_assessment(self, trace_id, assessment_id, name=None, kind=None,
                              value=None, rationale=None, metadata=None):
            return super().update_assessment(trace_id, assessment_id, name, None, value,
                                             rationale, metadata)

    return M


@mutant("a deleted experiment's traces stay searchable", "test_deleted_experiment_refuses_"
        "writes_and_hides_traces")
def _searchable_deleted(base: type) -> type:
    class M(base):
        def search_traces(self, experiment_ids, *args, **kwargs):
            deleted = [e for e in experiment_ids
                       if self.get_experiment(e).lifecycle_stage == "deleted"]
            for e in deleted:
                self.restore_experiment(e)
            try:
                return super().search_traces(experiment_ids, *args, **kwargs)
            finally:
                for e in deleted:
                    self.delete_experiment(e)

    return M


def _sqlite_store(tmp_path) -> TrackingStore:
    try:
        store = resolve_store(f"sqlite:///{tmp_path}/kit.db", str(tmp_path / "artifacts"))
    except TracklogError as exc:
        pytest.skip(f"no installed plugin provides sqlite:// stores: {exc.message}")
    if not isinstance(store, TraceStore):
        store.close()
        pytest.skip("the sqlite:// store does not declare traces")
    return store


@pytest.mark.parametrize("name", mutant.names())
def test_kit_catches_trace_mutant(name: str, tmp_path) -> None:
    """The kit test aimed at a rule passes on the real store and fails on its mutant."""
    mutant.check(name, _sqlite_store, tmp_path)
