"""What a migration reads: the source protocol, and any tracklog store as a source."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any, Protocol

from tracklog.entities import (
    Experiment,
    LoggedModel,
    Metric,
    ModelVersion,
    RegisteredModel,
    Run,
    TraceInfo,
    ViewType,
)
from tracklog.importing.store import HistoryColumns, ImportStore
from tracklog.search.tokens import all_pages
from tracklog.stores import TRACE_ARTIFACT_LOCATION_TAG, TrackingStore


class MigrationSource(Protocol):
    """What a migration reads. Iterators may stream from the source; nothing requires the
    whole source in memory."""

    def describe(self) -> str: ...

    def experiments(self) -> Iterator[Experiment]: ...

    def runs(self, experiment_id: str) -> Iterator[Run]:
        """Every run of the experiment (deleted ones too), with params, tags and latest
        metrics; histories come from :meth:`history`."""
        ...

    def history(self, run_id: str, key: str) -> Iterable[Metric]: ...

    def close(self) -> None: ...

    # Optional: history_columns(run_id, key, limit) -> HistoryColumns | None: a history
    #   as columns when it holds at most ``limit`` points, else None (then read through
    #   history()); a source that offers it spares a Metric per point read.
    # Optional: a source without one of these has none of that kind.
    #   logged_models(experiment_id) -> Iterator[LoggedModel], with params, tags and
    #       metrics (deleted ones too where the source can tell);
    #   traces(experiment_id) -> Iterator[TraceInfo], with tags, metadata, assessments;
    #   registered_models() -> Iterator[tuple[RegisteredModel, list[ModelVersion]]];
    #   spans(trace_id) -> bytes | None: a trace's traces.json when the source keeps spans
    #       in its database;
    #   artifact_tree(uri) -> Tree | None: a location read through the source itself (a
    #       server's artifact proxy).


#: Trace tags a tracking server keeps for itself (where it put the spans).
_SPANS_LOCATION_TAG = "mlflow.trace.spansLocation"
_SERVER_TRACE_TAGS = frozenset({TRACE_ARTIFACT_LOCATION_TAG, _SPANS_LOCATION_TAG,
                                "mlflow.trace.archiveLocation",
                                "mlflow.trace.archivalFailure"})


def _chunked(items: Iterable, size: int) -> Iterator[list]:
    chunk: list = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


class StoreSource:
    """Any tracklog store, read through the store contract."""

    def __init__(self, store: TrackingStore, uri: str) -> None:
        self.store, self.uri = store, uri

    def describe(self) -> str:
        return self.uri

    def experiments(self) -> Iterator[Experiment]:
        yield from all_pages(lambda token: self.store.search_experiments(
            ViewType.ALL, max_results=1000, page_token=token))

    def runs(self, experiment_id: str) -> Iterator[Run]:
        yield from all_pages(lambda token: self.store.search_runs(
            [experiment_id], run_view_type=ViewType.ALL, max_results=1000, page_token=token))

    def history(self, run_id: str, key: str) -> Iterable[Metric]:
        return self.store.get_metric_history(run_id, key)

    def history_columns(self, run_id: str, key: str, limit: int) -> HistoryColumns | None:
        if isinstance(self.store, ImportStore):
            return self.store.history_columns(run_id, key, limit)
        # The capability's default, which reads through the store contract.
        return ImportStore.history_columns(self.store, run_id, key, limit)  # type: ignore[arg-type]

    def logged_models(self, experiment_id: str) -> Iterator[LoggedModel]:
        from tracklog.gc import PurgeStore

        yield from all_pages(lambda token: self.store.search_logged_models(
            [experiment_id], max_results=1000, page_token=token))
        # Searches leave deleted models out; a store that can collect them lists them.
        if isinstance(self.store, PurgeStore):
            for model in self.store.deleted_logged_models(None, [experiment_id]):
                # Read whole: the listing may leave params, tags and metrics out.
                yield self.store.get_logged_model(model.model_id, allow_deleted=True)

    def traces(self, experiment_id: str) -> Iterator[TraceInfo]:
        from tracklog.stores import has_traces

        if not has_traces(self.store):
            return
        store: Any = self.store
        # Those of deleted experiments too, which searches skip; read whole, with their
        # assessments.
        for ids in _chunked(store.experiment_trace_ids(experiment_id), 100):
            yield from store.batch_get_trace_infos(ids)

    def registered_models(self) -> Iterator[tuple[RegisteredModel, list[ModelVersion]]]:
        from tracklog.stores import ModelRegistryStore

        if not isinstance(self.store, ModelRegistryStore):
            return
        reg = self.store
        versions: dict[str, list[ModelVersion]] = {}
        for v in all_pages(lambda token: reg.search_model_versions(max_results=10_000,
                                                                page_token=token)):
            versions.setdefault(v.name, []).append(v)
        for m in all_pages(lambda token: reg.search_registered_models(max_results=1000,
                                                                   page_token=token)):
            yield reg.get_registered_model(m.name), versions.get(m.name, [])

    def close(self) -> None:
        self.store.close()
