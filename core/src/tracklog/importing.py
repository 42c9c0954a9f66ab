"""Copying tracking data between stores with ids kept: the import capability a store
may offer, the sources a migration reads, and the migration itself.

A migration walks a :class:`MigrationSource` experiment by experiment and run by run and
writes each into an :class:`ImportStore`. Ids, names, times, statuses and lifecycle
stages are kept, so the client's links and ``runs:/`` URIs stay valid. It is resumable:
a run is first written with the marker tag :data:`INCOMPLETE_TAG`, its params, tags and
full metric histories follow in batches (each write is idempotent: the same param, tag
or point written twice is stored once), and the marker goes last. A run found complete
in the destination is skipped; one found with the marker is written again. At the end
each copied run is verified: counts and a checksum of its params and metric histories,
read back from both sides.

Besides runs (with their dataset inputs and logged-model inputs and outputs), a migration
copies logged models, traces (infos, tags, metadata, assessments) and the model registry
(registered models with their tags and aliases, versions with their tags), where both
the source and the destination have them. Each of those is written in one transaction
by the destination, so one found there is complete and skipped.
"""

from __future__ import annotations

import abc
import base64
import hashlib
import itertools
import json
import operator
import struct
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Protocol

from tracklog import errors
from tracklog.entities import (
    MAX_DOUBLE,
    Experiment,
    LifecycleStage,
    LoggedModel,
    LoggedModelInput,
    Metric,
    ModelVersion,
    Param,
    RegisteredModel,
    Run,
    RunInfo,
    RunTag,
    TraceInfo,
    ViewType,
)
from tracklog.perf import gc_paused
from tracklog.search.tokens import all_pages
from tracklog.stores import TRACE_ARTIFACT_LOCATION_TAG, TrackingStore

if TYPE_CHECKING:
    from tracklog.artifacts.copying import ArtifactCopier, Tree

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
        exists, make it ACTIVE again. :meth:`finish_import` sets its final stage."""

    @abc.abstractmethod
    def finish_import(self, run_id: str, lifecycle_stage: LifecycleStage) -> None:
        """Give an imported run its final lifecycle stage (DELETED keeps it restorable
        and in reach of garbage collection, as a run deleted through the API)."""

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

    def imported_runs(self, run_ids: Sequence[str]) -> Iterator[ImportedRunColumns]:
        """Runs of ``run_ids`` as stored, each with its full metric histories as columns,
        for a migration to verify what it wrote. This default reads each run and its
        histories through the store contract; stores override it with a few queries for
        all of them and no :class:`Metric` per point."""
        for run_id in run_ids:
            run = self.get_run(run_id)  # type: ignore[attr-defined]
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
    points = points if isinstance(points, Sequence) else list(points)
    if not points:
        return (), (), ()
    _, values, timestamps, steps, *_ = zip(*points, strict=True)
    return timestamps, steps, values


@dataclass
class ImportedRun:
    """A run to import: its info, params and tags (in ``run``) and all its points."""

    run: Run
    metrics: list[Metric]


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
    dest.import_run(info)
    dest.log_batch(info.run_id, tags=[RunTag(INCOMPLETE_TAG, "true")])
    params = [Param(k, v) for k, v in sorted(data.params.items())]
    tags = [RunTag(k, v) for k, v in sorted(data.tags.items())]
    for i in range(0, max(len(params), len(tags)), _PARAMS_TAGS_PER_BATCH):
        dest.log_batch(info.run_id, params=params[i:i + _PARAMS_TAGS_PER_BATCH],
                       tags=tags[i:i + _PARAMS_TAGS_PER_BATCH])
    for i in range(0, len(item.metrics), 1000):
        dest.log_batch(info.run_id, metrics=item.metrics[i:i + 1000])
    _write_io(dest, item.run)
    dest.delete_tag(info.run_id, INCOMPLETE_TAG)
    dest.finish_import(info.run_id, info.lifecycle_stage)


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

    # Optional: a source without one of these has none of that kind.
    #   logged_models(experiment_id) -> Iterator[LoggedModel], with params, tags and
    #       metrics (deleted ones too where the source can tell);
    #   traces(experiment_id) -> Iterator[TraceInfo], with tags, metadata, assessments;
    #   registered_models() -> Iterator[tuple[RegisteredModel, list[ModelVersion]]];
    #   spans(trace_id) -> bytes | None: a trace's traces.json when the source keeps spans
    #       in its database;
    #   artifact_tree(uri) -> Tree | None: a location read through the source itself (a
    #       server's artifact proxy).


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
        for page in _chunked(all_pages(lambda token: store.search_traces(
                [experiment_id], max_results=500, page_token=token)), 100):
            # Searches may leave assessments out: read them whole.
            yield from store.batch_get_trace_infos([t.trace_id for t in page])

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


@dataclass
class Report:
    """What a migration did (or, with ``dry_run``, would do)."""

    experiments: int = 0
    experiments_skipped: int = 0
    runs: int = 0
    runs_skipped: int = 0
    params: int = 0
    tags: int = 0
    points: int = 0
    logged_models: int = 0
    traces: int = 0
    registered_models: int = 0
    model_versions: int = 0
    #: Logged models, traces and registered models found complete in the destination.
    others_skipped: int = 0
    mismatches: list[str] = field(default_factory=list)
    #: Runs left behind because their ids belong to runs of other experiments in the
    #: destination, one line each.
    conflicts: list[str] = field(default_factory=list)
    #: Kinds the destination cannot hold, left behind.
    not_copied: list[str] = field(default_factory=list)


#: Told after each run: a short line of counts so far.
Progress = Callable[[str], None]


def migrate(
    source: MigrationSource,
    dest: TrackingStore,
    dry_run: bool = False,
    verify: bool = True,
    progress: Progress = lambda _: None,
    new_experiment_ids: bool = False,
    artifacts: ArtifactCopier | None = None,
) -> Report:
    """Copy everything ``source`` holds into ``dest`` (see the module docstring).

    With ``new_experiment_ids``, experiments are created in ``dest`` as new ones (found
    again by name when resuming) and their runs moved under the new ids; run ids are
    kept either way. ``artifacts``, when given, copies the artifacts of each run, logged
    model and trace (with spans a source keeps in its database) after its record."""
    if not dry_run and not isinstance(dest, ImportStore):
        raise errors.invalid(
            f"The destination store ({type(dest).__name__}) cannot import records with "
            f"their ids"
        )
    report = Report()
    exps = list(source.experiments())
    if not dry_run and not new_experiment_ids:
        _check_conflicts(dest, exps)
    targets: dict[str, str] = {}
    for exp in exps:
        target = exp.experiment_id
        if dry_run:
            report.experiments += 1
        elif new_experiment_ids:
            target, created = _recreate_experiment(dest, exp)
            report.experiments += created
            report.experiments_skipped += not created
        elif dest.import_experiment(exp):  # type: ignore[attr-defined]
            report.experiments += 1
        else:
            report.experiments_skipped += 1
        targets[exp.experiment_id] = target
    # Logged models before runs: runs name them as inputs and outputs.
    for exp in exps:
        _copy_others(source, dest, "logged_models", exp.experiment_id,
                     targets[exp.experiment_id], report, dry_run, verify, artifacts)
    for exp in exps:
        target = targets[exp.experiment_id]
        for chunk in _chunked(source.runs(exp.experiment_id), _RUNS_PER_CHECK):
            if target != exp.experiment_id:
                chunk = [replace(r, info=replace(r.info, experiment_id=target))
                         for r in chunk]
            _copy_chunk(source, dest, chunk, report, dry_run, verify, progress,
                        artifacts)
    for exp in exps:
        _copy_others(source, dest, "traces", exp.experiment_id, targets[exp.experiment_id],
                     report, dry_run, verify, artifacts)
    _copy_others(source, dest, "registered_models", None, None, report, dry_run, verify,
                 None)
    return report


def _check_conflicts(dest: TrackingStore, exps: Sequence[Experiment]) -> None:
    """Refuse, before anything is written, experiments whose id or name is taken in
    ``dest`` by another experiment."""
    for exp in exps:
        try:
            there = dest.get_experiment(exp.experiment_id)
        except errors.TracklogError as exc:
            if exc.error_code != "RESOURCE_DOES_NOT_EXIST":
                raise
        else:
            if there.name != exp.name:
                raise errors.invalid(
                    f"Experiment id {exp.experiment_id} is taken by {there.name!r} in the "
                    f"destination; cannot import {exp.name!r} under it (an empty "
                    f"destination, or --new-experiment-ids, avoids this)")
            continue
        named = dest.get_experiment_by_name(exp.name)
        if named is not None:
            raise errors.invalid(
                f"An experiment named {exp.name!r} exists in the destination under id "
                f"{named.experiment_id}, not {exp.experiment_id}")


def _copy_others(source: MigrationSource, dest: _Destination, kind: str,
                 experiment_id: str | None, target: str | None, report: Report,
                 dry_run: bool, verify: bool,
                 artifacts: ArtifactCopier | None) -> None:
    """Copy the logged models, traces or registered models the source offers; each is
    written whole, so one already in ``dest`` is skipped."""
    read = getattr(source, kind, None)
    if read is None or kind in report.not_copied:
        return
    items = read() if experiment_id is None else read(experiment_id)
    for item in items:
        original = item
        if kind == "traces":
            # The source server's own bookkeeping tags; the destination sets its own.
            item = replace(item, tags={k: v for k, v in item.tags.items()
                                       if k not in _SERVER_TRACE_TAGS})
        if kind != "registered_models" and target != experiment_id:
            item = replace(item, experiment_id=target)
        if not dry_run:
            try:
                if kind == "logged_models":
                    created = dest.import_logged_model(item)
                elif kind == "traces":
                    created = dest.import_trace(item)
                else:
                    created = dest.import_registered_model(*item)
            except errors.TracklogError as exc:
                if exc.error_code != "NOT_IMPLEMENTED":
                    raise
                report.not_copied.append(kind)
                return
            if not created:
                report.others_skipped += 1
        else:
            created = True
        if created:
            if kind == "logged_models":
                report.logged_models += 1
            elif kind == "traces":
                report.traces += 1
            else:
                report.registered_models += 1
                report.model_versions += len(item[1])
        if dry_run:
            continue
        if verify:
            mismatch = _verify_other(dest, kind, item)
            if mismatch:
                report.mismatches.append(mismatch)
        if artifacts is not None and kind == "logged_models":
            artifacts.copy("logged model", item.artifact_location,
                           dest.get_logged_model(item.model_id,
                                                 allow_deleted=True).artifact_location)
        elif artifacts is not None and kind == "traces":
            _copy_trace_artifacts(source, dest, original, artifacts)


#: Trace tags a tracking server keeps for itself (where it put the spans).
_SPANS_LOCATION_TAG = "mlflow.trace.spansLocation"
_SERVER_TRACE_TAGS = frozenset({TRACE_ARTIFACT_LOCATION_TAG, _SPANS_LOCATION_TAG,
                                "mlflow.trace.archiveLocation",
                                "mlflow.trace.archivalFailure"})


def _copy_trace_artifacts(source: MigrationSource, dest: _Destination, trace: TraceInfo,
                          artifacts: ArtifactCopier) -> None:
    """A trace's spans: from the source's database where it keeps them there, else the
    files under its artifact location."""
    there = dest.get_trace_info(trace.trace_id).tags.get(TRACE_ARTIFACT_LOCATION_TAG)
    if not there:
        return
    spans = getattr(source, "spans", None)
    data = spans(trace.trace_id) if spans is not None else None
    if data is not None:
        artifacts.put(there, "traces.json", data)
        return
    here = trace.tags.get(TRACE_ARTIFACT_LOCATION_TAG)
    if here:
        artifacts.copy("trace", here, there)


def _verify_other(dest: _Destination, kind: str, item: Any) -> str | None:
    if kind == "logged_models":
        got = dest.get_logged_model(item.model_id, allow_deleted=True)
        for name in ("name", "status", "params", "tags", "lifecycle_stage",
                     "creation_timestamp", "source_run_id"):
            if getattr(got, name) != getattr(item, name):
                return f"logged model {item.model_id}: {name} differs"
        if len(got.metrics) != len(item.metrics):
            return f"logged model {item.model_id}: metrics differ"
        return None
    if kind == "traces":
        got = dest.get_trace_info(item.trace_id)
        mine = {k: v for k, v in got.tags.items() if k not in _SERVER_TRACE_TAGS}
        theirs = {k: v for k, v in item.tags.items() if k not in _SERVER_TRACE_TAGS}
        if (mine, got.trace_metadata, got.request_time, got.state) != (
                theirs, item.trace_metadata, item.request_time, item.state):
            return f"trace {item.trace_id}: tags, metadata, time or state differ"
        if sorted(a.assessment_id for a in got.assessments) != sorted(
                a.assessment_id for a in item.assessments):
            return f"trace {item.trace_id}: assessments differ"
        return None
    model, versions = item
    got_model = dest.get_registered_model(model.name)
    if got_model.tags != model.tags or sorted(
            (a.alias, a.version) for a in got_model.aliases) != sorted(
            (a.alias, a.version) for a in model.aliases):
        return f"registered model {model.name}: tags or aliases differ"
    for v in versions:
        got = dest.get_model_version(model.name, v.version)
        if (got.source, got.run_id, got.status, got.tags, got.current_stage) != (
                v.source, v.run_id, v.status, v.tags, v.current_stage):
            return f"model version {model.name}/{v.version} differs"
    return None


_RUNS_PER_CHECK = 200


def _chunked(items: Iterable, size: int) -> Iterator[list]:
    chunk: list = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


#: A gathered run and, when verifying, the checksum of its source.
_Pending = tuple[ImportedRun, "str | None"]


class _BatchWriter:
    """Writes gathered batches on a thread of its own while the next one is read, so the
    source's reads and the destination's writes (mostly the database server's work)
    overlap. One batch in writing at a time keeps memory bounded and the order of writes
    as it was; whatever else touches the destination calls :meth:`wait` first."""

    def __init__(self, write: Callable[[list[_Pending]], None]) -> None:
        self._write = write
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="tracklog-migrate")
        self._writing: Future[None] | None = None

    def submit(self, batch: list[_Pending]) -> None:
        self.wait()
        self._writing = self._pool.submit(self._write, batch)

    def wait(self) -> None:
        if self._writing is not None:
            finished, self._writing = self._writing, None
            finished.result()  # a write's error surfaces here

    def close(self) -> None:
        self._pool.shutdown(wait=True)


def _copy_chunk(source: MigrationSource, dest: _Destination, chunk: list[Run], report: Report,
                dry_run: bool, verify: bool, progress: Progress,
                artifacts: ArtifactCopier | None = None) -> None:
    """Runs new to ``dest`` whose histories fit in :data:`BATCH_POINTS` are gathered and
    written many at a time, each batch atomically; longer ones, runs with inputs or
    outputs, and runs an interrupted migration left incomplete, are written one by one.

    A gathered run's source checksum is taken from the points read for writing, and the
    batch is read back from ``dest`` in bulk, as columns."""
    state = ({} if dry_run else
             dest.existing_runs([r.info.run_id for r in chunk]))
    taken = _taken_elsewhere(dest, chunk, state)
    pending: list[_Pending] = []
    pending_points = 0

    def copy_artifacts(run: Run, copied: Run | None = None) -> None:
        if artifacts is not None and run.info.artifact_uri:
            copied = copied or dest.get_run(run.info.run_id)
            artifacts.copy("run", run.info.artifact_uri, copied.info.artifact_uri)

    def write(batch: list[_Pending]) -> None:
        with gc_paused():  # rows and columns for thousands of points, no cycles
            dest.import_runs([item for item, _ in batch])
        if not verify:
            for item, _ in batch:
                copy_artifacts(item.run)
            return
        wants = {item.run.info.run_id: (item.run, want or "") for item, want in batch}
        with gc_paused():  # many short-lived tuples, no cycles
            read_back = list(dest.imported_runs(list(wants)))
            mismatches = [_compare(*wants[copied.info.run_id], copied, columns)
                          for copied, columns in read_back]
        for (copied, _), mismatch in zip(read_back, mismatches, strict=True):
            if mismatch:
                report.mismatches.append(f"run {copied.info.run_id}: {mismatch}")
            copy_artifacts(wants[copied.info.run_id][0], copied)

    writer = _BatchWriter(write)

    def flush() -> None:
        nonlocal pending, pending_points
        if pending:
            writer.submit(pending)
        pending, pending_points = [], 0

    try:
        for run in chunk:
            if run.info.run_id in taken:
                report.conflicts.append(
                    f"run {run.info.run_id} of experiment {run.info.experiment_id} is in "
                    f"experiment {taken[run.info.run_id]} in the destination; not copied")
                continue
            if state.get(run.info.run_id) is True:
                report.runs_skipped += 1
                if artifacts is not None and not dry_run:
                    writer.wait()  # the copier is not shared between threads
                    # Resumed: its artifacts may be what was interrupted.
                    copy_artifacts(run)
                continue
            with gc_paused():  # a Metric per point read, no cycles
                histories, rest = _read_small(source, run)
            if rest is not None or run.info.run_id in state or _has_io(run):
                flush()
                writer.wait()
                _copy_run(source, dest, run, report, dry_run, histories, rest)
                if not dry_run:
                    if verify:
                        mismatch = _verify(source, dest, run)
                        if mismatch:
                            report.mismatches.append(f"run {run.info.run_id}: {mismatch}")
                    copy_artifacts(run)
            else:
                n = sum(map(len, histories.values()))
                report.points += n
                report.params += len(run.data.params)
                report.tags += len(run.data.tags)
                if not dry_run:
                    pending.append((
                        ImportedRun(run, [m for h in histories.values() for m in h]),
                        _source_checksum(run, histories) if verify else None))
                    pending_points += n
                    if pending_points >= BATCH_POINTS or len(pending) >= _RUNS_PER_CHECK // 2:
                        flush()
            report.runs += 1
            progress(f"{report.runs} runs, {report.points:,} points")
        flush()
        writer.wait()
    finally:
        writer.close()


def _taken_elsewhere(dest: _Destination, chunk: list[Run],
                     state: Mapping[str, bool]) -> dict[str, str]:
    """Run id -> experiment in ``dest``, for runs of ``chunk`` (all of one experiment)
    whose ids ``dest`` holds under another experiment: writing them would change a run
    that is not theirs."""
    if not state:
        return {}
    from tracklog.search.parser import parse_run_filter

    experiment_id = chunk[0].info.experiment_id
    ids = ", ".join(f"'{rid}'" for rid in state if "'" not in rid)
    here = {r.info.run_id for r in all_pages(lambda token: dest.search_runs(
        [experiment_id], parse_run_filter(f"attributes.run_id IN ({ids})"),
        run_view_type=ViewType.ALL, max_results=1000, page_token=token))}
    elsewhere = {rid: dest.get_run(rid).info.experiment_id for rid in state
                 if rid not in here}
    return {rid: there for rid, there in elsewhere.items() if there != experiment_id}


#: The rest of a history read in part: its key and the iterator positioned after the
#: points read so far.
_Rest = tuple[str, Iterator[Metric]]


def _read_small(source: MigrationSource,
                run: Run) -> tuple[dict[str, list[Metric]], _Rest | None]:
    """The run's histories read up to :data:`BATCH_POINTS` points in all: the whole of
    them and None when they fit; else what was read and where reading stopped, so the
    run is then streamed on from there without reading anything twice."""
    out: dict[str, list[Metric]] = {}
    total = 0
    for key in sorted(run.data.metrics):
        points: list[Metric] = []
        out[key] = points
        it = iter(source.history(run.info.run_id, key))
        for p in it:
            points.append(p)
            total += 1
            if total > BATCH_POINTS:
                return out, (key, it)
    return out, None


def _recreate_experiment(dest: TrackingStore, exp: Experiment) -> tuple[str, bool]:
    """(id in ``dest``, whether it was created now) of a source experiment given a new
    id; one with the same name (an earlier, interrupted run) is reused."""
    from tracklog.entities import ExperimentTag

    found = dest.get_experiment_by_name(exp.name)
    if found is not None:
        return found.experiment_id, False
    new_id = dest.create_experiment(
        exp.name, exp.artifact_location or None,
        [ExperimentTag(k, v) for k, v in exp.tags.items()])
    if exp.lifecycle_stage == LifecycleStage.DELETED:
        dest.delete_experiment(new_id)
    return new_id, True


def _copy_run(
    source: MigrationSource, dest: _Destination, run: Run, report: Report, dry_run: bool,
    read: Mapping[str, list[Metric]] | None = None, rest: _Rest | None = None,
) -> None:
    """Write one run step by step, its histories streamed: those in ``read`` (and the
    partly read history ``rest``) are not read from the source again."""
    run_id = run.info.run_id
    read = read or {}
    params = [Param(k, v) for k, v in sorted(run.data.params.items())]
    tags = [RunTag(k, v) for k, v in sorted(run.data.tags.items())]
    report.params += len(params)
    report.tags += len(tags)
    if not dry_run:
        dest.import_run(run.info)
        dest.log_batch(run_id, tags=[RunTag(INCOMPLETE_TAG, "true")])
        for i in range(0, max(len(params), len(tags)), _PARAMS_TAGS_PER_BATCH):
            dest.log_batch(run_id, params=params[i:i + _PARAMS_TAGS_PER_BATCH],
                           tags=tags[i:i + _PARAMS_TAGS_PER_BATCH])
    for key in sorted(run.data.metrics):
        points: Iterable[Metric]
        if rest is not None and key == rest[0]:
            points = itertools.chain(read.get(key, ()), rest[1])
        elif key in read:
            points = read[key]
        else:
            points = source.history(run_id, key)
        for batch in _chunked(points, BATCH_POINTS):
            report.points += len(batch)
            if not dry_run:
                dest.log_batch(run_id, metrics=batch)
    if not dry_run:
        _write_io(dest, run)
        dest.delete_tag(run_id, INCOMPLETE_TAG)
        dest.finish_import(run_id, run.info.lifecycle_stage)


_MAX_DOUBLE = MAX_DOUBLE


def checksum(params: Mapping[str, str], histories: Mapping[str, Iterable[Metric]]) -> str:
    """A digest of a run's params and full metric histories, independent of order and
    of how a store spells NaN and infinities (SQL stores, as MLflow's, keep ±inf as the
    largest finite double). Points are read by attribute, so MLflow's own entities do."""
    columns: dict[str, HistoryColumns] = {}
    for key, points in histories.items():
        points = list(points)
        columns[key] = ([p.timestamp for p in points], [p.step for p in points],
                        [p.value for p in points])
    return columns_checksum(params, columns)


def columns_checksum(params: Mapping[str, str],
                     histories: Mapping[str, HistoryColumns]) -> str:
    """:func:`checksum` of histories held as columns."""
    h = hashlib.sha256()
    for key in sorted(params):
        h.update(f"p\0{key}\0{params[key]}\0".encode())
    top, low = _MAX_DOUBLE, -_MAX_DOUBLE
    for key in sorted(histories):
        ts, steps, values = histories[key]
        n = len(ts)
        h.update(f"m\0{key}\0{n}\0".encode())
        if not n:
            continue
        total = sum(values)
        if total - total == 0:
            # A finite sum: no NaN or ±inf, so nothing to flag or clamp. Histories come
            # in order from most sources: told in C, with no tuple per point.
            if not all(map(operator.lt, ts, itertools.islice(ts, 1, None))):
                ts, steps, values = zip(*sorted(zip(ts, steps, values, strict=True)),
                                        strict=True)
            nans = bytes(n)
        else:
            # NaN sorts as a flag, so the order is total; values are clamped as stored.
            points = sorted([(t, s, v != v, 0.0 if v != v else min(max(v, low), top))
                             for t, s, v in zip(ts, steps, values, strict=True)])
            ts, steps, flags, values = zip(*points, strict=True)
            nans = struct.pack(f"<{n}?", *flags)
        h.update(struct.pack(f"<{n}q", *ts))
        h.update(struct.pack(f"<{n}q", *steps))
        h.update(nans)
        h.update(struct.pack(f"<{n}d", *values))
    return h.hexdigest()


def _source_checksum(run: Run, histories: Mapping[str, Sequence[Metric]]) -> str:
    """The checksum of a run whose whole histories are in hand (read for writing)."""
    with gc_paused():  # many short-lived tuples, no cycles
        return columns_checksum(run.data.params, {
            k: history_columns(histories.get(k, ())) for k in run.data.metrics})


def _verify(source: MigrationSource, dest: _Destination, run: Run) -> str | None:
    """Compare the copy of a run written on its own with the source, its histories read
    from the source again."""
    histories = {k: history_columns(source.history(run.info.run_id, k))
                 for k in run.data.metrics}
    want = columns_checksum(run.data.params, histories)
    (copied, columns), = dest.imported_runs([run.info.run_id])
    return _compare(run, want, copied, columns)


def _compare(run: Run, want: str, copied: Run,
             columns: Mapping[str, HistoryColumns]) -> str | None:
    """What differs between the source's ``run`` (``want``: the checksum of its params
    and histories) and its copy read back: stage, tags, metric keys, checksum."""
    if copied.info.lifecycle_stage != run.info.lifecycle_stage:
        return f"lifecycle stage {copied.info.lifecycle_stage} != {run.info.lifecycle_stage}"
    if set(copied.data.metrics) != set(run.data.metrics):
        return "metric keys differ"
    tags = {k: v for k, v in copied.data.tags.items() if k != INCOMPLETE_TAG}
    if tags != run.data.tags:
        return "tags differ"
    got = columns_checksum(copied.data.params, {k: columns.get(k, ((), (), ()))
                                                for k in run.data.metrics})
    return None if want == got else "params or metric histories differ"


class RestSource:
    """An MLflow-protocol tracking server (MLflow itself, or tracklog) read over its REST
    API: experiments, runs, logged models, traces and the registry searched page by
    page, histories fetched in pages; responses decoded by the server's own codec."""

    def __init__(self, url: str, token: str | None = None) -> None:
        import httpx

        self.url = url.rstrip("/")
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.http = httpx.Client(base_url=self.url + "/api", headers=headers, timeout=300)
        #: Traces whose spans the server keeps in its tracking store.
        self._spans_in_store: set[str] = set()

    def describe(self) -> str:
        return f"tracking server {self.url}"

    def check(self) -> None:
        """Fail at once, naming the server, when it does not answer as a tracking
        server."""
        self._call("POST", "/2.0/mlflow/experiments/search", json={"max_results": 1})

    def _call(self, method: str, path: str, missing_ok: bool = False, **kw: Any) -> dict:
        import httpx

        try:
            r = self.http.request(method, path, **kw)
        except httpx.HTTPError as exc:
            raise errors.invalid(f"Cannot reach {self.url}: {exc}") from None
        if missing_ok and r.status_code in (404, 501):
            return {}
        if r.status_code != 200:
            try:
                message = r.json().get("message", "")
            except ValueError:
                message = r.text[:200]
            raise errors.invalid(f"{self.url} answered {r.status_code} to {path}: "
                                 f"{message}")
        return r.json()

    def _search(self, method: str, path: str, body: dict, key: str,
                missing_ok: bool = False) -> Iterator[dict]:
        token = None
        while True:
            args = {**body, **({"page_token": token} if token else {})}
            page = self._call(method, path, missing_ok,
                              **({"json": args} if method == "POST" else {"params": args}))
            yield from page.get(key, [])
            token = page.get("next_page_token")
            if not token:
                return

    def experiments(self) -> Iterator[Experiment]:
        from tracklog.server.codec import experiment_from_json

        for e in self._search("POST", "/2.0/mlflow/experiments/search",
                              {"max_results": 1000, "view_type": "ALL"}, "experiments"):
            yield experiment_from_json(e)

    def runs(self, experiment_id: str) -> Iterator[Run]:
        from tracklog.server.codec import run_from_json

        body = {"experiment_ids": [experiment_id], "run_view_type": "ALL", "max_results": 1000}
        for r in self._search("POST", "/2.0/mlflow/runs/search", body, "runs"):
            yield run_from_json(r)

    def history(self, run_id: str, key: str) -> Iterable[Metric]:
        from tracklog.server.codec import metric_from_json

        query = {"run_id": run_id, "metric_key": key, "max_results": 25_000}
        for m in self._search("GET", "/2.0/mlflow/metrics/get-history", query, "metrics"):
            # A run's own history: a logged model's metrics are copied with the model.
            yield Metric(*metric_from_json(m, key)[:4])

    def logged_models(self, experiment_id: str) -> Iterator[LoggedModel]:
        from tracklog.server.codec import logged_model_from_json

        for m in self._search("POST", "/2.0/mlflow/logged-models/search",
                              {"experiment_ids": [experiment_id], "max_results": 100},
                              "models", missing_ok=True):
            yield logged_model_from_json(m)

    def traces(self, experiment_id: str) -> Iterator[TraceInfo]:
        from tracklog.server.tracecodec import (
            assessment_from_json,
            timestamp_to_ms,
            trace_info_from_json,
        )

        body = {"locations": [{"type": "MLFLOW_EXPERIMENT",
                               "mlflow_experiment": {"experiment_id": experiment_id}}],
                "max_results": 500}
        for t in self._search("POST", "/3.0/mlflow/traces/search", body, "traces",
                              missing_ok=True):
            info = trace_info_from_json(t, "trace")
            if info.tags.get(_SPANS_LOCATION_TAG) == "TRACKING_STORE":
                self._spans_in_store.add(info.trace_id)
            for a in t.get("assessments", ()):
                info.assessments.append(replace(
                    assessment_from_json(a, info.trace_id),
                    assessment_id=a["assessment_id"],
                    create_time=timestamp_to_ms(a.get("create_time", 0), "create_time"),
                    last_update_time=timestamp_to_ms(a.get("last_update_time", 0),
                                                     "last_update_time")))
            yield info

    def spans(self, trace_id: str) -> bytes | None:
        """The trace's spans as MLflow's ``traces.json`` when the server keeps them in its
        tracking store (MLflow 3 answers them, as OpenTelemetry spans, to a batch get);
        None when it has none there (a tracklog server, an older MLflow)."""
        if trace_id not in self._spans_in_store:
            return None  # asked anyway, MLflow answers 500
        page = self._call("GET", "/3.0/mlflow/traces/batchGet", missing_ok=True,
                          params={"trace_ids": [trace_id]})
        spans = [s for t in page.get("traces", ()) for s in t.get("spans", ())]
        if not spans:
            return None
        return json.dumps({"spans": [_span_from_otel(s) for s in spans]},
                          ensure_ascii=False).encode()

    def registered_models(self) -> Iterator[tuple[RegisteredModel, list[ModelVersion]]]:
        from tracklog.server.codec import model_version_from_json, registered_model_from_json

        versions: dict[str, list[ModelVersion]] = {}
        for v in self._search("GET", "/2.0/mlflow/model-versions/search",
                              {"max_results": 10_000}, "model_versions", missing_ok=True):
            version = model_version_from_json(v)
            versions.setdefault(version.name, []).append(version)
        for m in self._search("GET", "/2.0/mlflow/registered-models/search",
                              {"max_results": 1000}, "registered_models", missing_ok=True):
            model = registered_model_from_json(m)
            mine = versions.get(model.name, [])
            if not model.aliases:  # some servers list aliases on the versions only
                from tracklog.entities import RegisteredModelAlias

                model.aliases = [RegisteredModelAlias(a, v.version)
                                 for v in mine for a in v.aliases]
            yield model, mine

    def artifact_tree(self, uri: str) -> Tree | None:
        """A location the server proxies (``mlflow-artifacts:``), read through its proxy;
        None for any other location."""
        from tracklog.artifacts.copying import ProxyTree, proxied_path

        path = proxied_path(uri)
        return None if path is None else ProxyTree(self.http, path)

    def close(self) -> None:
        self.http.close()


_OTEL_STATUS = {0: "STATUS_CODE_UNSET", 1: "STATUS_CODE_OK", 2: "STATUS_CODE_ERROR"}


def _otel_value(value: dict[str, Any]) -> Any:
    """An OpenTelemetry AnyValue in its JSON form, as a plain value."""
    if "array_value" in value:
        return [_otel_value(v) for v in value["array_value"].get("values", ())]
    if "kvlist_value" in value:
        return {kv["key"]: _otel_value(kv.get("value", {}))
                for kv in value["kvlist_value"].get("values", ())}
    if "int_value" in value:
        return int(value["int_value"])  # int64: a string in protobuf's JSON
    if "double_value" in value:
        return float(value["double_value"])
    for kind in ("string_value", "bool_value", "bytes_value"):
        if kind in value:
            return value[kind]
    return None


def _otel_id(b64: str, prefix: str = "") -> str:
    return prefix + base64.b64decode(b64).hex()


def _span_from_otel(span: dict[str, Any]) -> dict[str, Any]:
    """An OpenTelemetry span (JSON form) as a span of MLflow's ``traces.json``, as MLflow's
    client reads one: ids base64, attribute values as JSON text, event attributes plain."""
    status = span.get("status", {})
    code = status.get("code", 0)
    end = span.get("end_time_unix_nano")
    return {
        "trace_id": span["trace_id"],
        "span_id": span["span_id"],
        "parent_span_id": span.get("parent_span_id") or None,
        "name": span.get("name", ""),
        "start_time_unix_nano": int(span.get("start_time_unix_nano", 0)),
        "end_time_unix_nano": None if end is None else int(end),
        "events": [{"name": e.get("name", ""),
                    "time_unix_nano": int(e.get("time_unix_nano", 0)),
                    "attributes": {a["key"]: _otel_value(a.get("value", {}))
                                   for a in e.get("attributes", ())}}
                   for e in span.get("events", ())],
        "status": {"code": _OTEL_STATUS.get(code, code) if isinstance(code, int) else code,
                   "message": status.get("message", "")},
        "attributes": {a["key"]: json.dumps(_otel_value(a.get("value", {})),
                                            ensure_ascii=False)
                       for a in span.get("attributes", ())},
        "links": [{"trace_id": _otel_id(link["trace_id"], "tr-"),
                   "span_id": _otel_id(link["span_id"]),
                   "attributes": {a["key"]: _otel_value(a.get("value", {}))
                                  for a in link.get("attributes", ())} or None}
                  for link in span.get("links", ())],
    }
