"""Reading a copy back and comparing it with its source: checksums of runs, and
logged models, traces and registered models field by field."""

from __future__ import annotations

import hashlib
import itertools
import operator
import struct
import sys
from array import array
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from tracklog.entities import (
    MAX_DOUBLE,
    Metric,
    Run,
)
from tracklog.importing.sources import _SERVER_TRACE_TAGS, MigrationSource
from tracklog.importing.store import (
    INCOMPLETE_TAG,
    HistoryColumns,
    _Destination,
    history_columns,
)
from tracklog.perf import gc_paused

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
        h.update(_packed("q", ts))
        h.update(_packed("q", steps))
        h.update(nans)
        h.update(_packed("d", values))
    return h.hexdigest()


def _packed(code: str, column: Sequence[Any]) -> bytes:
    """A column as ``struct.pack("<…")`` packs it; an array of that type (read back by
    a binary COPY) as its own bytes, without a Python number per element."""
    if isinstance(column, array) and column.typecode == code and sys.byteorder == "little":
        return column.tobytes()
    return struct.pack(f"<{len(column)}{code}", *column)


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
