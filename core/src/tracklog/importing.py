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
"""

from __future__ import annotations

import abc
import hashlib
import math
import struct
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from tracklog.entities import (
    Experiment,
    LifecycleStage,
    Metric,
    PagedList,
    Param,
    Run,
    RunInfo,
    RunTag,
    ViewType,
)
from tracklog.stores import TrackingStore

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

    def import_runs(self, runs: Sequence[ImportedRun]) -> None:
        """Write runs that do not exist here yet, whole: info, params, tags and every
        metric point, each with its final lifecycle stage. Stores override this with one
        transaction for all of them (a batch then lands whole or not at all); this
        default writes them one after the other, each marked incomplete until done."""
        for item in runs:
            _write_whole(self, item)


@dataclass
class ImportedRun:
    """A run to import: its info, params and tags (in ``run``) and all its points."""

    run: Run
    metrics: list[Metric]


#: A store written to by an import: a TrackingStore that is an ImportStore (which a type
#: cannot say without an intersection type).
_Destination = Any


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


class StoreSource:
    """Any tracklog store, read through the store contract."""

    def __init__(self, store: TrackingStore, uri: str) -> None:
        self.store, self.uri = store, uri

    def describe(self) -> str:
        return self.uri

    def experiments(self) -> Iterator[Experiment]:
        yield from _pages(lambda token: self.store.search_experiments(
            ViewType.ALL, max_results=1000, page_token=token))

    def runs(self, experiment_id: str) -> Iterator[Run]:
        yield from _pages(lambda token: self.store.search_runs(
            [experiment_id], run_view_type=ViewType.ALL, max_results=1000, page_token=token))

    def history(self, run_id: str, key: str) -> Iterable[Metric]:
        return self.store.get_metric_history(run_id, key)

    def close(self) -> None:
        self.store.close()


def _pages(fetch: Callable[[str | None], PagedList]) -> Iterator:
    token = None
    while True:
        page = fetch(token)
        yield from page
        token = page.token
        if not token:
            return


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
    mismatches: list[str] = field(default_factory=list)


def migrate(
    source: MigrationSource,
    dest: TrackingStore,
    dry_run: bool = False,
    verify: bool = True,
    progress: Callable[[str], None] = lambda _: None,
    new_experiment_ids: bool = False,
) -> Report:
    """Copy everything ``source`` holds into ``dest`` (see the module docstring).

    With ``new_experiment_ids``, experiments are created in ``dest`` as new ones (found
    again by name when resuming) and their runs moved under the new ids; run ids are
    kept either way."""
    if not dry_run and not isinstance(dest, ImportStore):
        from tracklog import errors

        raise errors.invalid(
            f"The destination store ({type(dest).__name__}) cannot import records with "
            f"their ids"
        )
    report = Report()
    for exp in source.experiments():
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
        for chunk in _chunked(source.runs(exp.experiment_id), _RUNS_PER_CHECK):
            if target != exp.experiment_id:
                chunk = [replace(r, info=replace(r.info, experiment_id=target))
                         for r in chunk]
            _copy_chunk(source, dest, chunk, report, dry_run, verify, progress)
    return report


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


def _copy_chunk(source: MigrationSource, dest: _Destination, chunk: list[Run], report: Report,
                dry_run: bool, verify: bool, progress: Callable[[str], None]) -> None:
    """Runs new to ``dest`` whose histories fit in :data:`BATCH_POINTS` are gathered and
    written many at a time, each batch atomically; longer ones, and runs an interrupted
    migration left incomplete, are streamed one by one."""
    state = ({} if dry_run else
             dest.existing_runs([r.info.run_id for r in chunk]))
    pending: list[ImportedRun] = []
    pending_points = 0

    def flush() -> None:
        nonlocal pending, pending_points
        if pending:
            dest.import_runs(pending)
            for item in pending:
                _verified(source, dest, item.run, report, verify)
        pending, pending_points = [], 0

    for run in chunk:
        if state.get(run.info.run_id) is True:
            report.runs_skipped += 1
            continue
        histories = None if run.info.run_id in state else _read_small(source, run)
        if histories is None:
            flush()
            _copy_run(source, dest, run, report, dry_run)
            if not dry_run:
                _verified(source, dest, run, report, verify)
        else:
            n = sum(map(len, histories.values()))
            report.points += n
            report.params += len(run.data.params)
            report.tags += len(run.data.tags)
            if not dry_run:
                pending.append(ImportedRun(run, [m for h in histories.values() for m in h]))
                pending_points += n
                if pending_points >= BATCH_POINTS or len(pending) >= _RUNS_PER_CHECK // 2:
                    flush()
        report.runs += 1
        progress(f"{report.runs} runs, {report.points:,} points")
    flush()


def _read_small(source: MigrationSource, run: Run) -> dict[str, list[Metric]] | None:
    """The run's histories when they hold at most :data:`BATCH_POINTS` points in all,
    else None (the run is then streamed)."""
    out: dict[str, list[Metric]] = {}
    total = 0
    for key in sorted(run.data.metrics):
        points = []
        for p in source.history(run.info.run_id, key):
            points.append(p)
            total += 1
            if total > BATCH_POINTS:
                return None
        out[key] = points
    return out


def _verified(
    source: MigrationSource, dest: TrackingStore, run: Run, report: Report, verify: bool
) -> None:
    if verify:
        mismatch = _verify(source, dest, run)
        if mismatch:
            report.mismatches.append(f"run {run.info.run_id}: {mismatch}")


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
    source: MigrationSource, dest: _Destination, run: Run, report: Report, dry_run: bool
) -> None:
    run_id = run.info.run_id
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
        batch: list[Metric] = []
        for point in source.history(run_id, key):
            batch.append(point)
            if len(batch) >= BATCH_POINTS:
                report.points += len(batch)
                if not dry_run:
                    dest.log_batch(run_id, metrics=batch)
                batch = []
        report.points += len(batch)
        if batch and not dry_run:
            dest.log_batch(run_id, metrics=batch)
    if not dry_run:
        dest.delete_tag(run_id, INCOMPLETE_TAG)
        dest.finish_import(run_id, run.info.lifecycle_stage)


def checksum(params: Mapping[str, str], histories: Mapping[str, Iterable[Metric]]) -> str:
    """A digest of a run's params and full metric histories, independent of order and
    of how a store spells NaN."""
    h = hashlib.sha256()
    for key in sorted(params):
        h.update(f"p\0{key}\0{params[key]}\0".encode())
    for key in sorted(histories):
        points = sorted(
            (p.timestamp, p.step, "nan" if math.isnan(p.value) else struct.pack("<d", p.value))
            for p in histories[key]
        )
        h.update(f"m\0{key}\0".encode())
        for ts, step, value in points:
            h.update(struct.pack("<qq", ts, step))
            h.update(value if isinstance(value, bytes) else value.encode())
    return h.hexdigest()


def _verify(source: MigrationSource, dest: TrackingStore, run: Run) -> str | None:
    copied = dest.get_run(run.info.run_id)
    if copied.info.lifecycle_stage != run.info.lifecycle_stage:
        return f"lifecycle stage {copied.info.lifecycle_stage} != {run.info.lifecycle_stage}"
    if set(copied.data.metrics) != set(run.data.metrics):
        return "metric keys differ"
    tags = {k: v for k, v in copied.data.tags.items() if k != INCOMPLETE_TAG}
    if tags != run.data.tags:
        return "tags differ"
    keys = sorted(run.data.metrics)
    want = checksum(run.data.params, {k: source.history(run.info.run_id, k) for k in keys})
    got = checksum(copied.data.params,
                   {k: dest.get_metric_history(run.info.run_id, k) for k in keys})
    return None if want == got else "params or metric histories differ"


class RestSource:
    """An MLflow-protocol tracking server (MLflow itself, or tracklog) read over its REST
    API: experiments and runs searched page by page, histories fetched in pages."""

    def __init__(self, url: str, token: str | None = None) -> None:
        import httpx

        self.url = url.rstrip("/")
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.http = httpx.Client(base_url=self.url + "/api/2.0/mlflow", headers=headers,
                                 timeout=300)

    def describe(self) -> str:
        return f"tracking server {self.url}"

    def _call(self, method: str, path: str, **kw: Any) -> dict:
        from tracklog import errors

        r = self.http.request(method, path, **kw)
        if r.status_code != 200:
            raise errors.invalid(f"{self.url} answered {r.status_code} to {path}: "
                                 f"{r.text[:300]}")
        return r.json()

    def _search(self, path: str, body: dict, key: str) -> Iterator[dict]:
        token = None
        while True:
            page = self._call("POST", path, json={**body, **({"page_token": token}
                                                             if token else {})})
            yield from page.get(key, [])
            token = page.get("next_page_token")
            if not token:
                return

    def experiments(self) -> Iterator[Experiment]:
        for e in self._search("/experiments/search",
                              {"max_results": 1000, "view_type": "ALL"}, "experiments"):
            yield Experiment(
                e["experiment_id"], e["name"], e.get("artifact_location", ""),
                LifecycleStage(e.get("lifecycle_stage", "active")),
                {t["key"]: t.get("value", "") for t in e.get("tags", [])},
                _int(e.get("creation_time")), _int(e.get("last_update_time")))

    def runs(self, experiment_id: str) -> Iterator[Run]:
        from tracklog.entities import RunData, RunStatus

        body = {"experiment_ids": [experiment_id], "run_view_type": "ALL", "max_results": 1000}
        for r in self._search("/runs/search", body, "runs"):
            info, data = r["info"], r.get("data", {})
            metrics = {}
            for m in data.get("metrics", []):
                metrics[m["key"]] = Metric(m["key"], _float(m.get("value")),
                                           _int(m.get("timestamp")) or 0,
                                           _int(m.get("step")) or 0)
            yield Run(
                RunInfo(info["run_id"], info["experiment_id"], info.get("run_name", ""),
                        info.get("user_id", ""), RunStatus(info.get("status", "RUNNING")),
                        _int(info.get("start_time")), _int(info.get("end_time")),
                        info.get("artifact_uri", ""),
                        LifecycleStage(info.get("lifecycle_stage", "active"))),
                RunData(metrics,
                        {p["key"]: p.get("value", "") for p in data.get("params", [])},
                        {t["key"]: t.get("value", "") for t in data.get("tags", [])}))

    def history(self, run_id: str, key: str) -> Iterable[Metric]:
        token = None
        while True:
            query = {"run_id": run_id, "metric_key": key, "max_results": 25_000}
            if token:
                query["page_token"] = token
            page = self._call("GET", "/metrics/get-history", params=query)
            for m in page.get("metrics", []):
                yield Metric(key, _float(m.get("value")), _int(m.get("timestamp")) or 0,
                             _int(m.get("step")) or 0)
            token = page.get("next_page_token")
            if not token:
                return

    def close(self) -> None:
        self.http.close()


def _int(value: object) -> int | None:
    return None if value is None else int(value)  # type: ignore[call-overload]


def _float(value: object) -> float:
    # The protocol writes non-finite doubles as strings ("NaN", "Infinity").
    return float(value) if value is not None else 0.0  # type: ignore[arg-type]
