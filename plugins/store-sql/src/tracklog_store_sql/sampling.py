"""Chart sampling inside the database, so a long metric history never travels whole.

The history is cut into equal spans of logging time, walked along the primary key
(series, timestamp, …); each span gives its lowest and its highest point, found where the
rows are. The first and the last point are always kept. On a history of a million
points this reads about 2,500 rows instead of a million.

Time spans stand in for the core's buckets of consecutive points: the two agree when
points are logged at a steady pace. When they do not — a history packed into a few
milliseconds, or bursts far apart, so that most spans are empty — :func:`sample_history`
answers None and the store thins the whole history the core's way instead.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from tracklog.entities import Metric, metric_from_fields
from tracklog.stores import TrackingStore
from tracklog_store_sql.schema import metric_series

# Fewer kept points than this share of the asked-for ones means the spans missed the
# history's shape (see the module docstring).
_MIN_FILL = 0.5

_SQLITE_COUNT = "SELECT count(*) FROM (SELECT 1 FROM metric_points WHERE series_id = ? LIMIT ?)"
_SQLITE_EDGE = (
    "SELECT timestamp, step, value FROM metric_points WHERE series_id = ? AND NOT is_nan "
    "ORDER BY timestamp {0}, step {0}, value {0} LIMIT 1"
)
# SQLite returns the other columns from the row that holds min() or max().
_SQLITE_LOW = (
    "SELECT timestamp, step, min(value) FROM metric_points "
    "WHERE series_id = ? AND timestamp >= ? AND timestamp < ? AND NOT is_nan"
)
_SQLITE_HIGH = _SQLITE_LOW.replace("min(value)", "max(value)")

_PG_COUNT = (
    "SELECT count(*) FROM (SELECT 1 FROM metric_points WHERE series_id = %(s)s LIMIT %(n)s) c"
)
_PG_EDGE = (
    "SELECT timestamp, step, value FROM metric_points WHERE series_id = %(s)s "
    "AND NOT is_nan ORDER BY timestamp {0}, step {0}, value {0} LIMIT 1"
)
_PG_SPANS = """
SELECT x.timestamp, x.step, x.value
FROM generate_series(0, %(n)s - 1) AS b(i)
CROSS JOIN LATERAL (
    (SELECT timestamp, step, value FROM metric_points
     WHERE series_id = %(s)s AND NOT is_nan
       AND timestamp >= %(t0)s::bigint + %(span)s::bigint * b.i / %(n)s
       AND timestamp < %(t0)s::bigint + %(span)s::bigint * (b.i + 1) / %(n)s
     ORDER BY value ASC LIMIT 1)
    UNION ALL
    (SELECT timestamp, step, value FROM metric_points
     WHERE series_id = %(s)s AND NOT is_nan
       AND timestamp >= %(t0)s::bigint + %(span)s::bigint * b.i / %(n)s
       AND timestamp < %(t0)s::bigint + %(span)s::bigint * (b.i + 1) / %(n)s
     ORDER BY value DESC LIMIT 1)
) AS x
"""


class SamplingMixin(TrackingStore):
    """The SQL store's :meth:`~tracklog.stores.TrackingStore.sample_metric_history`."""

    db: Any

    def sample_metric_history(
        self,
        run_id: str,
        metric_key: str,
        max_points: int,
        start_step: int | None = None,
        end_step: int | None = None,
    ) -> list[Metric]:
        if start_step is None and end_step is None:
            s = metric_series.c
            with self.db.read() as conn:
                series_id = conn.execute(
                    sa.select(s.series_id).where(s.run_uuid == run_id, s.key == metric_key)
                ).scalar()
                if series_id is None:
                    return []
                points = sample_history(conn, series_id, metric_key, max_points)
            if points is not None:
                return points
        return super().sample_metric_history(
            run_id, metric_key, max_points, start_step, end_step
        )


def sample_history(
    conn: Connection, series_id: int, key: str, max_points: int
) -> list[Metric] | None:
    """At most ``max_points`` points of the series, ordered by step and timestamp; None
    where the history fits in ``max_points`` or this dialect or this history's pace calls
    for the core's way (see above). NaN points are left out: a chart cannot draw them."""
    if max_points < 4:
        return None
    dialect = conn.dialect.name
    if dialect == "sqlite":
        rows = _sqlite(conn.connection.dbapi_connection, series_id, max_points)
    elif dialect == "postgresql" and conn.dialect.driver == "psycopg":
        rows = _postgres(conn.connection.driver_connection, series_id, max_points)
    else:
        return None
    if rows is None:
        return None
    points = sorted({(step, ts, value) for ts, step, value in rows})
    if len(points) < _MIN_FILL * (max_points - 2):
        return None
    return [metric_from_fields((key, value, ts, step, None, None, None, None))
            for step, ts, value in points]


def _spans(first: Any, last: Any, max_points: int) -> tuple[int, int, int] | None:
    """(first timestamp, time covered, number of spans), or None when the history
    covers too few milliseconds to be cut into that many spans."""
    n = (max_points - 2) // 2
    t0, span = first[0], last[0] - first[0] + 1
    return None if span < 2 * n else (t0, span, n)


def _sqlite(dbapi: Any, series_id: int, max_points: int) -> list[Any] | None:
    cur = dbapi.cursor()
    try:
        if cur.execute(_SQLITE_COUNT, (series_id, max_points + 1)).fetchone()[0] <= max_points:
            return None
        first = cur.execute(_SQLITE_EDGE.format("ASC"), (series_id,)).fetchone()
        last = cur.execute(_SQLITE_EDGE.format("DESC"), (series_id,)).fetchone()
        if first is None:
            return None
        spans = _spans(first, last, max_points)
        if spans is None:
            return None
        t0, span, n = spans
        rows = [first, last]
        for i in range(n):
            lo, hi = t0 + span * i // n, t0 + span * (i + 1) // n
            for sql in (_SQLITE_LOW, _SQLITE_HIGH):
                row = cur.execute(sql, (series_id, lo, hi)).fetchone()
                if row[2] is not None:
                    rows.append(row)
        return rows
    finally:
        cur.close()


def _postgres(driver: Any, series_id: int, max_points: int) -> list[Any] | None:
    with driver.cursor() as cur:
        cur.execute(_PG_COUNT, {"s": series_id, "n": max_points + 1})
        if cur.fetchone()[0] <= max_points:
            return None
        cur.execute(_PG_EDGE.format("ASC"), {"s": series_id})
        first = cur.fetchone()
        cur.execute(_PG_EDGE.format("DESC"), {"s": series_id})
        last = cur.fetchone()
        if first is None:
            return None
        spans = _spans(first, last, max_points)
        if spans is None:
            return None
        t0, span, n = spans
        cur.execute(_PG_SPANS, {"s": series_id, "t0": t0, "span": span, "n": n})
        return [first, last, *cur.fetchall()]
