"""Metrics: a batch's points turned into history rows and latest values, written in
bulk, and a metric's history read back."""

from __future__ import annotations

import math
import operator
from collections.abc import Iterable, Sequence
from functools import cache
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, NamedTuple, cast

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from tracklog import errors
from tracklog.entities import MAX_DOUBLE, Metric, MetricColumns, PagedList
from tracklog.perf import gc_paused
from tracklog.search.tokens import decode_offset_token
from tracklog.validation import check_int64_column, validate_key
from tracklog_store_sql.points import (
    PG_LITERAL_DRIVERS,
    pg_latest_literals,
    pg_point_literals,
    write_metric_points,
)
from tracklog_store_sql.rows import ACTIVE, history, require_models
from tracklog_store_sql.schema import (
    latest_metrics,
    logged_model_metrics,
    metric_points,
    metric_series,
)
from tracklog_store_sql.sqlutil import (
    chunk_size,
    chunks,
    execute_plain,
    in_ids,
    insert_ignore,
    page,
    page_limit,
)

if TYPE_CHECKING:
    from sqlalchemy.dialects import postgresql, sqlite

    from tracklog_store_sql.db import Database


class MetricsMixin:
    """The metrics section of the tracking store: a metric's history, and the metric half
    of ``log_batch`` (batch.py), which hands its metrics to the methods below."""

    db: Database
    dialect: str
    #: (run_id, key) -> series id, set up by the store.
    _series_cache: dict[tuple[str, str], int]

    @staticmethod
    def _metric_rows(run_id: str, metrics: Sequence[Metric]):
        """The batch's history points, latest values and logged-model links (see
        :func:`metric_rows`); refuses keys, steps and timestamps out of bounds."""
        return metric_rows(run_id, metrics)

    def _remember_series(self, run_id: str, series: dict[str, int]) -> None:
        """Cache the series ids of a committed batch."""
        known = self._series_cache
        if len(known) > _SERIES_CACHE_MAX:
            known.clear()
        for key, sid in series.items():
            known[run_id, key] = sid

    def _write_metrics_statement(self, run_id: str, points: _Points,
                                 latest: list[dict[str, Any]]) -> bool:
        """PostgreSQL: the batch's points and latest values in one statement, outside a
        transaction, when every series is known; whether they were written (False
        also when the run is not active: the usual path then says why)."""
        if self.db.engine.dialect.driver not in PG_LITERAL_DRIVERS:
            return False
        cache = self._series_cache
        try:
            sids = [cache[run_id, k] for k in points.keys]
        except KeyError:
            return False
        bound = {
            "rid": run_id, "active": ACTIVE,
            **pg_point_literals(sids, points.timestamps, points.steps, points.values,
                                points.nans),
            **pg_latest_literals(latest),
        }
        written = self.db.write_statement(
            lambda conn: execute_plain(conn, "pg_metrics_write", _PG_METRICS_WRITE, bound)
            .scalar())
        return bool(written)

    def _write_metrics(
        self, conn: Connection, run_id: str, points: _Points, latest: list[dict[str, Any]]
    ) -> dict[str, int]:
        """Write history points and latest values; returns the batch's series ids."""
        ids = self._series_ids(conn, run_id, [r["key"] for r in latest])
        write_metric_points(
            conn,
            list(map(ids.__getitem__, points.keys)),
            points.timestamps,
            points.steps,
            points.values,
            points.nans,
        )
        dialect = conn.dialect.name
        if dialect in ("sqlite", "postgresql"):
            execute_plain(conn, "latest_upsert", _latest_upsert(dialect), latest)
        else:
            insert_ignore(conn, latest_metrics, latest, ["run_uuid", "key"])
            conn.execute(_LATEST_UPDATE, [{f"b_{k}": v for k, v in r.items()} for r in latest])
        return ids

    def _series_ids(self, conn: Connection, run_id: str, keys: list[str]) -> dict[str, int]:
        """The series id of each (run, key), creating the missing ones. A run logs the
        same keys batch after batch: usually every id comes from the cache."""
        cache = self._series_cache
        ids = {k: cache[run_id, k] for k in keys if (run_id, k) in cache}
        if len(ids) == len(keys):
            return ids
        known = self._find_series(conn, run_id, [k for k in keys if k not in ids])
        ids.update(known)
        missing = [k for k in keys if k not in ids]
        if missing:
            insert_ignore(
                conn,
                metric_series,
                [{"run_uuid": run_id, "key": k} for k in missing],
                ["run_uuid", "key"],
            )
            ids.update(self._find_series(conn, run_id, missing))
            clash = [k for k in missing if k not in ids]
            if clash:
                # MySQL's PAD SPACE collations treat 'k ' as 'k': one series for both.
                raise errors.invalid(
                    f"Metric key {clash[0]!r} collides with an existing key of run "
                    f"'{run_id}' that differs only in trailing spaces"
                )
        return ids

    def _find_series(self, conn: Connection, run_id: str, keys: list[str]) -> dict[str, int]:
        s = metric_series.c
        found: dict[str, int] = {}
        for chunk in chunks(keys, chunk_size(self.dialect)):
            found.update(
                conn.execute(
                    sa.select(s.key, s.series_id).where(
                        s.run_uuid == run_id, in_ids(s.key, chunk, self.dialect)
                    )
                ).all()
            )
        return found

    def _write_model_metrics(
        self, conn: Connection, run_id: str, rows: list[dict[str, Any]]
    ) -> None:
        require_models(conn, sorted({r["model_id"] for r in rows}))
        insert_ignore(
            conn, logged_model_metrics, rows, ["model_id", "key", "timestamp", "step", "run_uuid"]
        )

    def get_metric_history(
        self,
        run_id: str,
        metric_key: str,
        max_results: int | None = None,
        page_token: str | None = None,
    ) -> PagedList[Metric]:
        offset = decode_offset_token(page_token)
        m, series = metric_points.c, metric_series.c
        # A scalar subquery, not a join: the planner then walks the primary key of the one
        # series in history order, with no sort.
        series_id = (
            sa.select(series.series_id)
            .where(series.run_uuid == run_id, series.key == metric_key)
            .scalar_subquery()
        )
        # NaN comes back as NULL: one column fewer to fetch than the value and its flag.
        value = sa.case((m.is_nan == sa.true(), sa.null()), else_=m.value)
        stmt = (
            sa.select(m.timestamp, m.step, value)
            .where(m.series_id == series_id)
            .order_by(m.timestamp, m.step, m.value)
        )
        if max_results is not None:
            stmt = stmt.limit(page_limit(max_results)).offset(offset)
        elif offset:
            stmt = stmt.offset(offset).limit(_NO_LIMIT)
        with self.db.read() as conn, gc_paused():
            # Entities straight from the DBAPI cursor: SQLAlchemy Row objects, result
            # processors and an intermediate list of tuples cost more than the query
            # itself on long histories.
            if conn.dialect.driver == "psycopg":
                # Binary results: numbers arrive as machine values, not text to parse
                # (a third of the fetch on long histories).
                compiled = stmt.compile(dialect=conn.dialect)
                dbapi = conn.dialect.loaded_dbapi
                try:
                    driver = conn.connection.driver_connection
                    assert driver is not None  # a checked-out connection has its driver's
                    with driver.cursor() as cur:
                        cur.execute(compiled.string, compiled.params, binary=True)
                        points = history(metric_key, cur.fetchall())
                except dbapi.Error as exc:
                    # As SQLAlchemy wraps it, so that timeouts and lost connections get
                    # the store's usual answers.
                    raise sa.exc.DBAPIError.instance(
                        compiled.string,
                        compiled.params,
                        exc,
                        dbapi.Error,
                        connection_invalidated=conn.dialect.is_disconnect(exc, None, None),
                    ) from exc
            else:
                result = conn.execute(stmt)
                try:
                    # DBAPI cursors iterate their rows (every driver here does; the
                    # DBAPICursor protocol leaves __iter__ out).
                    points = history(metric_key, cast(Iterable[Any], result.cursor))
                finally:
                    result.close()
            token = None
            if max_results is not None:
                points, token = page(points, max_results, offset)
            return PagedList(points, token)


_NO_LIMIT = 2**62
_SERIES_CACHE_MAX = 200_000


def _newer(old, new):
    """``new`` is a later point than ``old``: greater (step, timestamp, value)."""
    return sa.or_(
        old.step < new.step,
        sa.and_(
            old.step == new.step,
            sa.or_(
                old.timestamp < new.timestamp,
                sa.and_(old.timestamp == new.timestamp, old.value < new.value),
            ),
        ),
    )


_LATEST_UPDATE = (
    latest_metrics.update()
    .where(
        latest_metrics.c.run_uuid == sa.bindparam("b_run_uuid"),
        latest_metrics.c.key == sa.bindparam("b_key"),
        _newer(
            latest_metrics.c,
            SimpleNamespace(
                step=sa.bindparam("b_step"),
                timestamp=sa.bindparam("b_timestamp"),
                value=sa.bindparam("b_value"),
            ),
        ),
    )
    .values(
        value=sa.bindparam("b_value"),
        timestamp=sa.bindparam("b_timestamp"),
        step=sa.bindparam("b_step"),
        is_nan=sa.bindparam("b_is_nan"),
    )
)


#: A batch of known series on PostgreSQL: the run's check, its points and its latest
#: values in one statement (one round trip, and no BEGIN and COMMIT of their own). The
#: latest rows come sorted by key, so concurrent writers lock them in one order; the
#: update's WHERE is the rule of _newer.
_PG_METRICS_WRITE = sa.text(
    "WITH run AS (SELECT 1 FROM runs WHERE run_uuid = :rid AND lifecycle_stage = :active), "
    "points AS (INSERT INTO metric_points (series_id, timestamp, step, value, is_nan) "
    "SELECT u.* FROM unnest(CAST(:sids AS INTEGER[]), CAST(:ts AS BIGINT[]), "
    "CAST(:steps AS BIGINT[]), CAST(:vals AS DOUBLE PRECISION[]), "
    "CAST(:nans AS BOOLEAN[])) AS u WHERE EXISTS (SELECT 1 FROM run) "
    "ON CONFLICT DO NOTHING), "
    "latest AS (INSERT INTO latest_metrics (run_uuid, key, value, timestamp, step, is_nan) "
    "SELECT :rid, l.* FROM unnest(CAST(:lkeys AS TEXT[]), CAST(:lvals AS DOUBLE PRECISION[]), "
    "CAST(:lts AS BIGINT[]), CAST(:lsteps AS BIGINT[]), CAST(:lnans AS BOOLEAN[])) AS l "
    "WHERE EXISTS (SELECT 1 FROM run) "
    "ON CONFLICT (run_uuid, key) DO UPDATE SET value = EXCLUDED.value, "
    "timestamp = EXCLUDED.timestamp, step = EXCLUDED.step, is_nan = EXCLUDED.is_nan "
    "WHERE latest_metrics.step < EXCLUDED.step OR (latest_metrics.step = EXCLUDED.step "
    "AND (latest_metrics.timestamp < EXCLUDED.timestamp OR (latest_metrics.timestamp = "
    "EXCLUDED.timestamp AND latest_metrics.value < EXCLUDED.value)))) "
    "SELECT EXISTS (SELECT 1 FROM run)"
)


@cache
def _latest_upsert(dialect: str):
    """One INSERT … ON CONFLICT DO UPDATE … WHERE newer (SQLite, PostgreSQL), built once
    per dialect."""
    ins: sqlite.Insert | postgresql.Insert
    if dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        ins = sqlite_insert(latest_metrics)
    else:
        from sqlalchemy.dialects.postgresql import insert as postgresql_insert

        ins = postgresql_insert(latest_metrics)
    ex = ins.excluded
    return ins.on_conflict_do_update(
        index_elements=["run_uuid", "key"],
        set_={
            "value": ex.value,
            "timestamp": ex.timestamp,
            "step": ex.step,
            "is_nan": ex.is_nan,
        },
        where=_newer(latest_metrics.c, ex),
    )


class _Points(NamedTuple):
    """History points of one batch, column by column (keys not yet mapped to series)."""

    keys: Sequence[str]
    timestamps: Sequence[int]
    steps: Sequence[int]
    values: Sequence[float]
    nans: Sequence[int]  # 0 or 1: sqlite3 binds an exact int faster than a bool


_INT = {int}


_NUMBER = {int, float}


_FLOAT = {float}


def metric_rows(run_id: str, metrics_: Sequence[Metric]):
    """The batch's history points as columns, the newest point per key (as latest_metrics
    rows), and the rows that link points to logged models.

    The common batch (finite numbers, integer steps and timestamps, no model links) is
    handled column-wise by built-ins, without a Python-level step per point.
    """
    if not metrics_:
        return None, [], []
    vals: Sequence[float]
    model_ids: Sequence[str | None]
    if isinstance(metrics_, MetricColumns):  # plain points, already in columns
        keys, vals, tss, steps = metrics_.columns
        model_ids = ()
    else:
        # Metric is a named tuple: one C-level transposition gives every column.
        keys, vals, tss, steps, model_ids, *_ = zip(*metrics_, strict=True)
    value_types = set(map(type, vals))
    if (
        set(map(type, tss)) == _INT
        and set(map(type, steps)) == _INT
        and value_types <= _NUMBER
        and math.isfinite(sum(vals))  # no NaN or ±inf among the values
        and not any(model_ids)
    ):
        if value_types != _FLOAT:  # drivers want one type per column (psycopg arrays)
            vals = [float(v) for v in vals]
        n = len(keys)
        # is_nan as int: sqlite3 binds an exact int directly, a bool only through its
        # adapter lookup (which costs more than inserting the row).
        points = _Points(keys, tss, steps, vals, [0] * n)
        if _in_history_order(keys, steps, tss):
            # In history order, no key twice at one (step, timestamp): the last point
            # of each key is its newest.
            last = dict(zip(keys, range(n), strict=True))
            best = {k: (steps[i], tss[i], vals[i], False) for k, i in last.items()}
        else:
            best = _newest(keys, steps, tss, vals, points.nans)
        model_rows: list[dict[str, Any]] = []
    else:
        points, best, model_rows = _metric_rows_general(run_id, metrics_)
    check_int64_column(points.timestamps, "metrics[{}].timestamp")
    check_int64_column(points.steps, "metrics[{}].step")
    for key in best:
        validate_key(key, "metrics.key", "A metric name")
    # Sorted so concurrent writers lock latest_metrics rows in one order (no deadlocks).
    latest = [
        {
            "run_uuid": run_id,
            "key": k,
            "step": b[0],
            "timestamp": b[1],
            "value": b[2],
            "is_nan": b[3],
        }
        for k, b in sorted(best.items())
    ]
    return points, latest, model_rows


def _in_history_order(keys: Sequence[str], steps: Sequence[int], tss: Sequence[int]) -> bool:
    """Whether the points come in (step, timestamp) order with no key twice at one
    (step, timestamp). Steps that only rise (a training loop's batch) settle it with a
    sort of ints; otherwise the pairs are compared."""
    steps_list = list(steps)
    if steps_list == sorted(steps_list) and len(set(steps_list)) == len(steps_list):
        return True
    order = list(zip(steps, tss, strict=True))
    return all(map(operator.le, order, order[1:])) and len(order) == len(
        set(zip(keys, steps, tss, strict=True))
    )


def _newest(keys, steps, tss, vals, nans) -> dict[str, tuple]:
    best: dict[str, tuple] = {}
    for key, step, ts, v, nan in zip(keys, steps, tss, vals, nans, strict=True):
        cur = best.get(key)
        # (step, ts, v) > (step, ts, v, nan) is False: an equal point keeps the first.
        if cur is None or (step, ts, v) > cur:
            best[key] = (step, ts, v, bool(nan))
    return best


def _metric_rows_general(run_id: str, metrics_: Sequence[Metric]):
    """Any batch: converts steps and timestamps to int, stores NaN as a flag and clamps
    ±inf to the largest double (as MLflow stores them), collects logged-model links."""
    keys, tss, steps, vals, nans = [], [], [], [], []
    model_rows: list[dict[str, Any]] = []
    for m in metrics_:
        key, v, ts, step = m.key, m.value, int(m.timestamp), int(m.step)
        if v != v:
            v, nan = 0.0, True
        elif v > MAX_DOUBLE:
            v, nan = MAX_DOUBLE, False
        elif v < -MAX_DOUBLE:
            v, nan = -MAX_DOUBLE, False
        else:
            v, nan = float(v), False
        keys.append(key)
        tss.append(ts)
        steps.append(step)
        vals.append(v)
        nans.append(int(nan))
        if m.model_id:
            model_rows.append(
                {
                    "model_id": m.model_id,
                    "key": key,
                    "timestamp": ts,
                    "step": step,
                    "run_uuid": run_id,
                    "value": v,
                    "is_nan": nan,
                    "dataset_name": m.dataset_name,
                    "dataset_digest": m.dataset_digest,
                }
            )
    points = _Points(keys, tss, steps, vals, nans)
    return points, _newest(keys, steps, tss, vals, nans), model_rows
