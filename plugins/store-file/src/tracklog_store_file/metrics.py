"""Metric files: one line per point, appended, parsed incrementally.

Run metric lines are ``timestamp value step`` (``timestamp value`` in very old stores, plus
``dataset_name dataset_digest`` when the point names a dataset). Logged-model metric lines
carry the run id after the step: ``timestamp value step run_id [dataset_name dataset_digest]``.
A file only grows between rewrites, so a cached parse is extended from its last offset.
"""

from __future__ import annotations

import math
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass, field

from tracklog.entities import Metric, metric_from_fields
from tracklog.validation import INT64_MAX, INT64_MIN
from tracklog_store_file.fsio import log

# (timestamp, value, step, run_id, dataset_name, dataset_digest)
Point = tuple[int, float, int, "str | None", "str | None", "str | None"]


def format_value(value: float) -> str:
    return repr(float(value))


def encode_new(
    group: list[Metric], stored: set[tuple[int, str, int]]
) -> tuple[str, list[Point], set[tuple[int, str, int]]]:
    """The run-file lines for the points of ``group`` not yet stored (each once), with
    their parsed form and identities."""
    fresh: set[tuple[int, str, int]] = set()
    lines: list[str] = []
    points: list[Point] = []
    for m in group:
        ts, value, step = int(m.timestamp), float(m.value), int(m.step)
        ident = (ts, repr(value), step)
        if ident in stored or ident in fresh:
            continue
        fresh.add(ident)
        points.append((ts, value, step, None, m.dataset_name, m.dataset_digest))
        if m.dataset_name is not None and m.dataset_digest is not None:
            lines.append(f"{ts} {ident[1]} {step} {m.dataset_name} {m.dataset_digest}\n")
        else:
            lines.append(f"{ts} {ident[1]} {step}\n")
    return "".join(lines), points, fresh


def model_line(m: Metric, run_id: str) -> str:
    line = f"{int(m.timestamp)} {format_value(m.value)} {int(m.step)} {run_id}"
    if m.dataset_name is not None and m.dataset_digest is not None:
        line += f" {m.dataset_name} {m.dataset_digest}"
    return line + "\n"


def _parse(line: str, model: bool) -> Point:
    parts = line.split(" ")
    point: Point
    if model:
        if len(parts) not in (4, 6):
            raise ValueError(f"expected 4 or 6 fields, found {len(parts)}")
        ds = (parts[4], parts[5]) if len(parts) == 6 else (None, None)
        point = int(parts[0]), float(parts[1]), int(parts[2]), parts[3], ds[0], ds[1]
    else:
        if len(parts) not in (2, 3, 5):
            raise ValueError(f"expected 2, 3 or 5 fields, found {len(parts)}")
        step = int(parts[2]) if len(parts) >= 3 else 0
        ds = (parts[3], parts[4]) if len(parts) == 5 else (None, None)
        point = int(parts[0]), float(parts[1]), step, None, ds[0], ds[1]
    # A point no client could have sent (the protocol's integers are int64) is malformed.
    if not (INT64_MIN <= point[0] <= INT64_MAX and INT64_MIN <= point[2] <= INT64_MAX):
        raise ValueError("timestamp or step is not a 64-bit integer")
    return point


def order_key(p: Point) -> tuple[int, int, float]:
    """What "latest" means: greatest (step, timestamp, value); NaN ranks lowest."""
    value = p[1]
    return p[2], p[0], -math.inf if math.isnan(value) else value


def identity(p: Point) -> tuple[int, str, int]:
    return p[0], format_value(p[1]), p[2]


def to_metric(key: str, p: Point, model_id: str | None = None) -> Metric:
    return metric_from_fields((key, p[1], p[0], p[2], model_id, p[4], p[5], p[3]))


def read_points(path: str, start: int = 0, model: bool = False) -> tuple[list[Point], int]:
    """Points from byte ``start`` to the last complete line, and the offset after it.

    A last line without its newline is a write in progress (or torn by a crash) and is left
    for later; a malformed complete line is skipped with a warning naming the file.
    """
    with open(path, "rb") as fh:
        if start:
            fh.seek(start)
        raw = fh.read()
    end = raw.rfind(b"\n") + 1
    points: list[Point] = []
    for number, line in enumerate(raw[:end].split(b"\n")[:-1], 1):
        if not line.strip():
            continue
        try:
            points.append(_parse(line.decode("utf-8").strip(), model))
        except (ValueError, UnicodeDecodeError) as exc:
            log.warning(
                "Skipping malformed metric line in %s (line %d after byte %d): %s",
                path,
                number,
                start,
                exc,
            )
    return points, start + end


@dataclass
class _State:
    ino: int
    offset: int
    latest: dict[tuple[str | None, str | None], Point] = field(default_factory=dict)
    seen: set[tuple[int, str, int]] | None = None


class MetricFiles:
    """Latest point per metric file, and the set of stored points for files being written,
    both kept up to date by reading only what was appended since the last look."""

    def __init__(self, capacity: int = 200_000, seen_capacity: int = 256) -> None:
        self._states: OrderedDict[str, _State] = OrderedDict()
        self._capacity = capacity
        self._seen_lru: OrderedDict[str, None] = OrderedDict()
        self._seen_capacity = seen_capacity
        self._lock = threading.Lock()

    def _refresh(self, path: str, model: bool, want_seen: bool) -> _State | None:
        try:
            st = os.stat(path)
        except FileNotFoundError:
            with self._lock:
                self._states.pop(path, None)
            return None
        with self._lock:
            state = self._states.get(path)
            if state is None or state.ino != st.st_ino or st.st_size < state.offset:
                state = _State(st.st_ino, 0, seen=set() if want_seen else None)
            elif want_seen and state.seen is None:
                state = _State(st.st_ino, 0, seen=set())
            start = state.offset
        if st.st_size > start:
            points, offset = read_points(path, start, model)
        else:
            points, offset = [], start
        with self._lock:
            for p in points:
                group = (p[4], p[5]) if model else (None, None)
                best = state.latest.get(group)
                if best is None or order_key(p) > order_key(best):
                    state.latest[group] = p
                if state.seen is not None:
                    state.seen.add(identity(p))
            state.offset = offset
            self._states[path] = state
            self._states.move_to_end(path)
            if len(self._states) > self._capacity:
                self._states.popitem(last=False)
            if state.seen is not None:
                self._seen_lru[path] = None
                self._seen_lru.move_to_end(path)
                while len(self._seen_lru) > self._seen_capacity:
                    old, _ = self._seen_lru.popitem(last=False)
                    if old in self._states:
                        self._states[old].seen = None
        return state

    def appended(
        self,
        path: str,
        points: list[Point],
        idents: set[tuple[int, str, int]],
        where: tuple[int, int, int],
    ) -> None:
        """Record run-metric points this process just appended (``where`` as returned by
        :func:`fsio.append_lines`), sparing the next refresh from reading them back."""
        ino, start, end = where
        with self._lock:
            state = self._states.get(path)
            if state is None or state.ino != ino or state.offset != start:
                return  # someone else wrote in between: the next refresh reads it all
            best = max(points, key=order_key)
            current = state.latest.get((None, None))
            if current is None or order_key(best) > order_key(current):
                state.latest[(None, None)] = best
            if state.seen is not None:
                state.seen |= idents
            state.offset = end

    def latest(self, path: str, model: bool = False) -> list[Point]:
        """The latest point (per dataset for model metrics); empty if none."""
        state = self._refresh(path, model, want_seen=False)
        return [] if state is None else list(state.latest.values())

    def seen(self, path: str, model: bool = False) -> set[tuple[int, str, int]]:
        """Identities of the stored points (call with the owning entity locked)."""
        state = self._refresh(path, model, want_seen=True)
        return set() if state is None or state.seen is None else state.seen

    def clear(self) -> None:
        with self._lock:
            self._states.clear()
            self._seen_lru.clear()
