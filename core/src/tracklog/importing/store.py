"""The import capability a store offers: records written with their own ids, times
and lifecycle stages, and read back for verification."""

from __future__ import annotations

import abc
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from tracklog import errors
from tracklog.entities import (
    Experiment,
    LifecycleStage,
    LoggedModel,
    LoggedModelInput,
    Metric,
    MetricColumns,
    ModelVersion,
    Param,
    RegisteredModel,
    Run,
    RunInfo,
    RunTag,
    TraceInfo,
)

#: Marks a run whose copy has begun but not finished.
INCOMPLETE_TAG = "tracklog.migration.incomplete"
#: Points per write: large enough for bulk inserts, small enough to keep memory flat.
BATCH_POINTS = 10_000
_PARAMS_TAGS_PER_BATCH = 100


class ImportStore(abc.ABC):
    """The capability to write records with their own ids, times and lifecycle stages.

    A store offers it by inheriting this class next to :class:`TrackingStore`. Params,
    tags and metric histories of an imported run are then written with the store's
    usual ``log_batch``, which must accept them while the run is being imported, whatever
    its final status and lifecycle stage."""

    @abc.abstractmethod
    def import_experiment(self, experiment: Experiment) -> bool:
        """Create ``experiment`` with its id, name, artifact location, lifecycle stage,
        times and tags. Returns False, changing nothing, when an experiment with this id
        and name exists already; an existing id or name belonging to another experiment is
        INVALID_PARAMETER_VALUE. Later experiments created normally get ids above every
        imported one."""

    @abc.abstractmethod
    def import_run(self, info: RunInfo) -> None:
        """Create the run described by ``info`` (its id, experiment, name, user, status,
        times and artifact URI) in the ACTIVE stage, so its data can be logged; or, if it
        exists, make it ACTIVE again. Either way the run carries :data:`INCOMPLETE_TAG`
        from the same write on, so an import stopped at any point after it is found
        incomplete and redone; :meth:`finish_import` removes the mark."""

    @abc.abstractmethod
    def finish_import(self, run_id: str, lifecycle_stage: LifecycleStage) -> None:
        """Give an imported run its final lifecycle stage (DELETED keeps it restorable
        and in reach of garbage collection, as a run deleted through the API) and remove
        its :data:`INCOMPLETE_TAG`, in one write."""

    def existing_runs(self, run_ids: Sequence[str]) -> dict[str, bool]:
        """Which of ``run_ids`` exist here: run id -> True when complete, False when an
        interrupted import left it marked with :data:`INCOMPLETE_TAG`. This default
        reads each run; stores override it with one query."""
        from tracklog.errors import TracklogError

        out: dict[str, bool] = {}
        for run_id in run_ids:
            try:
                tags = self.get_run(run_id).data.tags  # type: ignore[attr-defined]
            except TracklogError as exc:
                if exc.error_code != "RESOURCE_DOES_NOT_EXIST":
                    raise
                continue
            out[run_id] = INCOMPLETE_TAG not in tags
        return out

    def run_experiments(self, run_ids: Sequence[str]) -> dict[str, str]:
        """The experiment holding each of ``run_ids`` that exists here (whatever its
        lifecycle stage): run id -> experiment id; ids of no run are left out. A
        migration checks with it that no run it is about to write belongs to another
        experiment. This default reads each run; stores override it with one query."""
        out: dict[str, str] = {}
        for run_id in run_ids:
            try:
                info = self.get_run(run_id).info  # type: ignore[attr-defined]
            except errors.TracklogError as exc:
                if exc.error_code != "RESOURCE_DOES_NOT_EXIST":
                    raise
                continue
            out[run_id] = info.experiment_id
        return out

    def history_columns(self, run_id: str, key: str, limit: int) -> HistoryColumns | None:
        """The run's history of ``key`` as columns (timestamps, steps, values; NaN as
        NaN) when it holds at most ``limit`` points, else None. A migration out of this
        store reads histories so, and streams the longer ones through
        ``get_metric_history``. This default reads ``get_metric_history``; stores
        override it with no :class:`Metric` per point."""
        points = self.get_metric_history(  # type: ignore[attr-defined]
            run_id, key, max_results=limit + 1)
        return None if len(points) > limit else history_columns(points)

    def imported_runs(self, run_ids: Sequence[str]) -> Iterator[ImportedRunColumns]:
        """Runs of ``run_ids`` as stored (those that exist, in any order), each with its
        full metric histories as columns, for a migration to verify what it wrote. This
        default reads each run and its histories through the store contract; stores
        override it with a few queries for all of them and no :class:`Metric` per
        point."""
        for run_id in run_ids:
            try:
                run = self.get_run(run_id)  # type: ignore[attr-defined]
            except errors.TracklogError as exc:
                if exc.error_code != "RESOURCE_DOES_NOT_EXIST":
                    raise
                continue
            yield run, {key: history_columns(
                self.get_metric_history(run_id, key))  # type: ignore[attr-defined]
                for key in run.data.metrics}

    def import_logged_model(self, model: LoggedModel) -> bool:
        """Create ``model`` whole (one transaction) with its id, experiment, times,
        status, lifecycle stage, tags, params and metrics. Returns False, changing
        nothing, when a model with this id exists already. A store that cannot keep
        logged models leaves this NOT_IMPLEMENTED and they are not copied."""
        raise errors.not_implemented("This store cannot import logged models")

    def import_registered_model(
        self, model: RegisteredModel, versions: Sequence[ModelVersion]
    ) -> bool:
        """Create a registered model whole (one transaction): its tags and aliases, and
        ``versions`` with their numbers, times, source, run id, status, stage and tags.
        Returns False, changing nothing, when the name exists already."""
        raise errors.not_implemented("This store cannot import registered models")

    def import_trace(self, trace: TraceInfo) -> bool:
        """Create a trace whole (one transaction) with its id, times, state, tags,
        metadata and assessments (ids and times kept); the ``mlflow.artifactLocation``
        tag is this store's own. Returns False, changing nothing, when the trace exists
        already."""
        raise errors.not_implemented("This store cannot import traces")

    def refresh_statistics(self) -> None:  # noqa: B027 - optional, a no-op by default
        """Refresh what the store's query planner knows of its tables; called once at
        the end of every migration into the store (not a dry run). A database server
        whose statistics are left as they were before a bulk load (PostgreSQL with
        autovacuum off, or before it gets to them) plans searches over the filled
        tables as if they were empty, which can make a search take seconds instead of
        milliseconds. This default does nothing: a store without a planner, or whose
        planner keeps its statistics up to date, needs no more."""

    def import_runs(self, runs: Sequence[ImportedRun]) -> None:
        """Write runs that do not exist here yet, whole: info, params, tags and every
        metric point, each with its final lifecycle stage. Stores override this with one
        transaction for all of them (a batch then lands whole or not at all); this
        default writes them one after the other, each marked incomplete until done."""
        for item in runs:
            _write_whole(self, item)


#: A metric history as columns: timestamps, steps and values (NaN as NaN), in any order.
HistoryColumns = tuple[Sequence[int], Sequence[int], Sequence[float]]
#: A run read back with its metric histories by key.
ImportedRunColumns = tuple[Run, dict[str, HistoryColumns]]


def history_columns(points: Iterable[Metric]) -> HistoryColumns:
    """A history's points as columns (one C-level transposition of the named tuples)."""
    if isinstance(points, MetricColumns):
        return points.timestamps, points.steps, points.values
    points = points if isinstance(points, Sequence) else list(points)
    if not points:
        return (), (), ()
    _, values, timestamps, steps, *_ = zip(*points, strict=True)
    return timestamps, steps, values


@dataclass
class ImportedRun:
    """A run to import: its info, params and tags (in ``run``) and all its points (a
    :class:`~tracklog.entities.MetricColumns` when they were read as columns)."""

    run: Run
    metrics: Sequence[Metric]


#: A store written to by an import: a TrackingStore that is an ImportStore (which a type
#: cannot say without an intersection type).
_Destination = Any


def _has_io(run: Run) -> bool:
    return bool(run.inputs.dataset_inputs or run.inputs.model_inputs
                or run.outputs.model_outputs)


def _write_io(dest: _Destination, run: Run) -> None:
    """Dataset and model inputs and model outputs, logged while the run is active."""
    rid = run.info.run_id
    if run.inputs.dataset_inputs or run.inputs.model_inputs:
        dest.log_inputs(rid, run.inputs.dataset_inputs,
                        [LoggedModelInput(m.model_id) for m in run.inputs.model_inputs])
    if run.outputs.model_outputs:
        dest.log_outputs(rid, run.outputs.model_outputs)


def _write_whole(dest: _Destination, item: ImportedRun) -> None:
    info, data = item.run.info, item.run.data
    dest.import_run(info)  # marked incomplete until finish_import
    params = [Param(k, v) for k, v in sorted(data.params.items())]
    tags = [RunTag(k, v) for k, v in sorted(data.tags.items())]
    for i in range(0, max(len(params), len(tags)), _PARAMS_TAGS_PER_BATCH):
        dest.log_batch(info.run_id, params=params[i:i + _PARAMS_TAGS_PER_BATCH],
                       tags=tags[i:i + _PARAMS_TAGS_PER_BATCH])
    metrics = list(item.metrics)  # columns turned into points once, not per slice
    for i in range(0, len(metrics), 1000):
        dest.log_batch(info.run_id, metrics=metrics[i:i + 1000])
    _write_io(dest, item.run)
    dest.finish_import(info.run_id, info.lifecycle_stage)
