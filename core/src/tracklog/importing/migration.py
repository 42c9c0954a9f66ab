"""The migration: experiments, logged models, runs, traces and the registry copied
from a source into an import store, in that order."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from tracklog import errors
from tracklog.entities import (
    Experiment,
    LifecycleStage,
    Metric,
    MetricColumns,
    Param,
    Run,
    RunTag,
    TraceInfo,
)
from tracklog.importing.sources import _SERVER_TRACE_TAGS, MigrationSource, _chunked
from tracklog.importing.store import (
    _PARAMS_TAGS_PER_BATCH,
    BATCH_POINTS,
    HistoryColumns,
    ImportedRun,
    ImportStore,
    _Destination,
    _has_io,
    _write_io,
)
from tracklog.importing.verify import _compare, _source_checksum, _verify, _verify_other
from tracklog.perf import gc_paused
from tracklog.stores import TRACE_ARTIFACT_LOCATION_TAG, TrackingStore

if TYPE_CHECKING:
    from tracklog.artifacts.copying import ArtifactCopier


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
    batches = _batches(dest, report, verify, artifacts)
    try:
        for exp in exps:
            target = targets[exp.experiment_id]
            for chunk in _chunked(source.runs(exp.experiment_id), _RUNS_PER_CHECK):
                if target != exp.experiment_id:
                    chunk = [replace(r, info=replace(r.info, experiment_id=target))
                             for r in chunk]
                _copy_chunk(source, dest, chunk, report, dry_run, verify, progress, batches,
                            artifacts)
        batches.wait()
    finally:
        batches.close()
    for exp in exps:
        _copy_others(source, dest, "traces", exp.experiment_id, targets[exp.experiment_id],
                     report, dry_run, verify, artifacts)
    _copy_others(source, dest, "registered_models", None, None, report, dry_run, verify,
                 None)
    if not dry_run:
        # Searches right after a large migration would otherwise be planned blind.
        dest.refresh_statistics()  # type: ignore[attr-defined]
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


_RUNS_PER_CHECK = 200
#: Points of gathered runs written (and read back) as one batch: each batch costs some
#: twenty statements, so fewer, larger ones, while two in hand stay a few MB.
_GATHERED_POINTS = 5 * BATCH_POINTS


#: A gathered run and, when verifying, the checksum of its source.
_Pending = tuple[ImportedRun, "str | None"]


#: What the read-back of a written batch needs: each run and its source's checksum.
_Written = list[tuple[Run, str]]


class _Pipeline:
    """Gathered batches written on one thread and read back for verification on
    another while the main thread reads the next from the source, so the source's reads,
    the destination's writes and its read-backs (much of them the database server's work,
    each on a connection of its own) overlap. A batch is read back once its write has
    finished, and the write hands over only what the check needs (not the points); one
    batch in each stage keeps memory bounded and the order of writes as it was. Whatever
    else touches the destination calls :meth:`wait` first."""

    def __init__(self, write: Callable[[list[_Pending]], _Written],
                 check: Callable[[_Written], None] | None) -> None:
        self._write, self._check = write, check
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="tracklog-migrate-write")
        self._checker = (ThreadPoolExecutor(1, thread_name_prefix="tracklog-migrate-check")
                         if check is not None else None)
        self._writing: Future[_Written] | None = None
        self._checking: Future[None] | None = None

    def submit(self, batch: list[_Pending]) -> None:
        self._written()
        self._writing = self._writer.submit(self._write, batch)

    def _written(self) -> None:
        """Wait for the batch in writing, then hand it to the check (once the one
        before has been checked)."""
        if self._writing is None:
            return
        finished, self._writing = self._writing, None
        written = finished.result()  # a write's error surfaces here
        if self._checker is not None and self._check is not None:
            self._checked()
            self._checking = self._checker.submit(self._check, written)

    def _checked(self) -> None:
        if self._checking is not None:
            finished, self._checking = self._checking, None
            finished.result()

    def wait(self) -> None:
        self._written()
        self._checked()

    def close(self) -> None:
        self._writer.shutdown(wait=True)
        if self._checker is not None:
            self._checker.shutdown(wait=True)


def _copy_run_artifacts(dest: _Destination, artifacts: ArtifactCopier | None, run: Run,
                        copied: Run | None = None) -> None:
    if artifacts is not None and run.info.artifact_uri:
        copied = copied or dest.get_run(run.info.run_id)
        artifacts.copy("run", run.info.artifact_uri, copied.info.artifact_uri)


def _batches(dest: _Destination, report: Report, verify: bool,
             artifacts: ArtifactCopier | None) -> _Pipeline:
    """The pipeline gathered runs are written (and read back) through, one for the whole
    migration: the reads of the next chunk of runs overlap the last batches of the one
    before."""

    def write(batch: list[_Pending]) -> _Written:
        with gc_paused():  # rows and columns for thousands of points, no cycles
            dest.import_runs([item for item, _ in batch])
        if not verify:
            for item, _ in batch:
                _copy_run_artifacts(dest, artifacts, item.run)
        return [(item.run, want or "") for item, want in batch]

    def check(written: _Written) -> None:
        wants = {run.info.run_id: (run, want) for run, want in written}
        with gc_paused():  # many short-lived tuples, no cycles
            read_back = list(dest.imported_runs(list(wants)))
            mismatches = [_compare(*wants[copied.info.run_id], copied, columns)
                          for copied, columns in read_back]
        for (copied, _), mismatch in zip(read_back, mismatches, strict=True):
            if mismatch:
                report.mismatches.append(f"run {copied.info.run_id}: {mismatch}")
            _copy_run_artifacts(dest, artifacts, wants[copied.info.run_id][0], copied)
        found = {copied.info.run_id for copied, _ in read_back}
        report.mismatches += [f"run {rid}: not found in the destination"
                              for rid in wants if rid not in found]

    return _Pipeline(write, check if verify else None)


def _copy_chunk(source: MigrationSource, dest: _Destination, chunk: list[Run], report: Report,
                dry_run: bool, verify: bool, progress: Progress, batches: _Pipeline,
                artifacts: ArtifactCopier | None = None) -> None:
    """Runs new to ``dest`` whose histories fit in :data:`BATCH_POINTS` are gathered and
    handed to ``batches`` many at a time, each batch written atomically; longer ones,
    runs with inputs or outputs, and runs an interrupted migration left incomplete, are
    written one by one.

    A gathered run's source checksum is taken from the points read for writing, and the
    batch is read back from ``dest`` in bulk, as columns."""
    state = ({} if dry_run else
             dest.existing_runs([r.info.run_id for r in chunk]))
    taken = _taken_elsewhere(dest, chunk, state)
    pending: list[_Pending] = []
    pending_points = 0

    def flush() -> None:
        nonlocal pending, pending_points
        if pending:
            batches.submit(pending)
        pending, pending_points = [], 0

    for run in chunk:
        if run.info.run_id in taken:
            report.conflicts.append(
                f"run {run.info.run_id} of experiment {run.info.experiment_id} is in "
                f"experiment {taken[run.info.run_id]} in the destination; not copied")
            continue
        if state.get(run.info.run_id) is True:
            report.runs_skipped += 1
            if artifacts is not None and not dry_run:
                batches.wait()  # the copier is not shared between threads
                # Resumed: its artifacts may be what was interrupted.
                _copy_run_artifacts(dest, artifacts, run)
            continue
        with gc_paused():  # a Metric per point read, no cycles
            histories, rest = _read_small(source, run)
        if rest is not None or run.info.run_id in state or _has_io(run):
            flush()
            batches.wait()
            _copy_run(source, dest, run, report, dry_run, histories, rest)
            if not dry_run:
                if verify:
                    mismatch = _verify(source, dest, run)
                    if mismatch:
                        report.mismatches.append(f"run {run.info.run_id}: {mismatch}")
                _copy_run_artifacts(dest, artifacts, run)
        else:
            n = sum(map(len, histories.values()))
            report.points += n
            report.params += len(run.data.params)
            report.tags += len(run.data.tags)
            if not dry_run:
                pending.append((ImportedRun(run, _joined(histories)),
                                _source_checksum(run, histories) if verify else None))
                pending_points += n
                if pending_points >= _GATHERED_POINTS or len(pending) >= _RUNS_PER_CHECK // 2:
                    flush()
        report.runs += 1
        progress(f"{report.runs} runs, {report.points:,} points")
    flush()


def _taken_elsewhere(dest: _Destination, chunk: list[Run],
                     state: Mapping[str, bool]) -> dict[str, str]:
    """Run id -> experiment in ``dest``, for runs of ``chunk`` (all of one experiment)
    whose ids ``dest`` holds under another experiment: writing them would change a run
    that is not theirs."""
    if not state:
        return {}
    experiment_id = chunk[0].info.experiment_id
    return {rid: there for rid, there in dest.run_experiments(list(state)).items()
            if there != experiment_id}


#: The rest of a history read in part: its key and the iterator positioned after the
#: points read so far.
_Rest = tuple[str, Iterator[Metric]]


def _read_small(source: MigrationSource,
                run: Run) -> tuple[dict[str, Sequence[Metric]], _Rest | None]:
    """The run's histories read up to :data:`BATCH_POINTS` points in all: the whole of
    them and None when they fit; else what was read and where reading stopped, so the
    run is then streamed on from there without reading anything twice. A source that
    reads histories as columns hands over those that fit as such."""
    read_columns = getattr(source, "history_columns", None)
    if read_columns is not None:
        columns = _read_columns(read_columns, run)
        if columns is not None:
            return columns, None
    out: dict[str, Sequence[Metric]] = {}
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


def _read_columns(read: Callable[[str, str, int], HistoryColumns | None],
                  run: Run) -> dict[str, Sequence[Metric]] | None:
    """The run's histories as columns when they hold :data:`BATCH_POINTS` points in all
    or fewer, else None."""
    out: dict[str, Sequence[Metric]] = {}
    left = BATCH_POINTS
    for key in sorted(run.data.metrics):
        columns = read(run.info.run_id, key, left)
        if columns is None:
            return None
        timestamps, steps, values = columns
        out[key] = MetricColumns([key] * len(timestamps), values, timestamps, steps)
        left -= len(timestamps)
    return out


def _joined(histories: Mapping[str, Sequence[Metric]]) -> Sequence[Metric]:
    """Every point of a run's histories in one sequence: columns kept as columns."""
    if not all(isinstance(h, MetricColumns) for h in histories.values()):
        return [m for h in histories.values() for m in h]
    keys: list[str] = []
    values: list[float] = []
    timestamps: list[int] = []
    steps: list[int] = []
    for h in histories.values():
        assert isinstance(h, MetricColumns)
        keys += h.keys
        values += h.values
        timestamps += h.timestamps
        steps += h.steps
    return MetricColumns(keys, values, timestamps, steps)


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
    read: Mapping[str, Sequence[Metric]] | None = None, rest: _Rest | None = None,
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
        dest.import_run(run.info)  # marked incomplete until finish_import
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
        dest.finish_import(run_id, run.info.lifecycle_stage)
