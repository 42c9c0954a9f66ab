"""Thinning a metric history for a chart: at most ``max_points`` points that keep its shape.

The history (ordered by step) is cut into buckets of consecutive points; each bucket
keeps its lowest and its highest value, in their original order, so spikes survive. The
first and the last point are always kept. Linear in the history's length, no copies of it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from operator import attrgetter
from typing import Any, TypeVar

T = TypeVar("T")


def sample_min_max(
    points: Sequence[T], max_points: int, value: Callable[[T], Any] | None = None
) -> list[T]:
    """At most ``max_points`` of ``points`` (already ordered), keeping the first, the last,
    and the minimum and maximum of each bucket. ``value`` reads a point's number (default:
    its ``value`` attribute)."""
    n = len(points)
    if max_points < 1:
        raise ValueError("max_points must be at least 1")
    if n <= max_points:
        return list(points)
    if max_points < 4:
        return [points[0], points[-1]][:max_points]
    get: Callable[[T], Any] = value or attrgetter("value")
    inner = points[1:n - 1]
    buckets = (max_points - 2) // 2
    size = len(inner) / buckets
    out = [points[0]]
    for b in range(buckets):
        lo_i, hi_i = int(b * size), int((b + 1) * size)
        if lo_i >= hi_i:
            continue
        lo = hi = lo_i
        lo_v = hi_v = get(inner[lo_i])
        for i in range(lo_i + 1, hi_i):
            v = get(inner[i])
            # NaN compares false both ways: such a point is kept only as its bucket's first.
            if v < lo_v:
                lo, lo_v = i, v
            elif v > hi_v:
                hi, hi_v = i, v
        if lo == hi:
            out.append(inner[lo])
        else:
            out.extend((inner[lo], inner[hi]) if lo < hi else (inner[hi], inner[lo]))
    out.append(points[-1])
    return out
