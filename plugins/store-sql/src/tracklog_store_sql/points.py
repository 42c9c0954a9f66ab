"""Metric history points in bulk: written column by column (one statement per batch, or
a binary ``COPY`` for new series on PostgreSQL) and read back as binary arrays."""

from __future__ import annotations

import struct
import sys
from array import array
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from tracklog_store_sql.sqlutil import (
    _CACHE,
    _Prefixed,
    execute_driver,
    execute_many,
    insert_ignore_stmt,
)

_POINT_COLS = ("series_id", "timestamp", "step", "value", "is_nan")

# PostgreSQL: the whole batch as five arrays in ONE statement (psycopg executemany would
# run one INSERT per row on the server).
_PG_POINTS = sa.text(
    "INSERT INTO metric_points (series_id, timestamp, step, value, is_nan) "
    "SELECT * FROM unnest(CAST(:sids AS INTEGER[]), CAST(:ts AS BIGINT[]), "
    "CAST(:steps AS BIGINT[]), CAST(:vals AS DOUBLE PRECISION[]), CAST(:nans AS BOOLEAN[])) "
    "ON CONFLICT DO NOTHING"
)


_PG_BOOL: dict[int, str] = {False: "f", True: "t"}  # 0 and 1 hash as False and True

#: Drivers that take the points as array literals (see pg_point_literals).
PG_LITERAL_DRIVERS = ("psycopg", "psycopg2")


def _pg_array(items) -> str:
    return "{" + ",".join(items) + "}"


def pg_point_literals(series_ids: Sequence[int], timestamps: Sequence[int],
                      steps: Sequence[int], values: Sequence[float],
                      nans: Sequence[int]) -> dict[str, str]:
    """Points as PostgreSQL array literals, bound as ``sids``, ``ts``, ``steps``,
    ``vals`` and ``nans``. Built here: the drivers inspect and adapt every element of a
    Python list, which cost more than the server's whole insert."""
    literals = [_pg_array(map(str, c)) for c in (series_ids, timestamps, steps, values)]
    literals.append(_pg_array(map(_PG_BOOL.__getitem__, nans)))
    return dict(zip(("sids", "ts", "steps", "vals", "nans"), literals, strict=True))


def _pg_text(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def pg_latest_literals(latest: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    """Latest values (latest_metrics rows) as PostgreSQL array literals, bound as
    ``lkeys``, ``lvals``, ``lts``, ``lsteps`` and ``lnans`` (see pg_point_literals)."""
    return {
        "lkeys": _pg_array(_pg_text(r["key"]) for r in latest),
        "lvals": _pg_array(str(r["value"]) for r in latest),
        "lts": _pg_array(str(r["timestamp"]) for r in latest),
        "lsteps": _pg_array(str(r["step"]) for r in latest),
        "lnans": _pg_array(_PG_BOOL[r["is_nan"]] for r in latest),
    }


def write_metric_points(
    conn: Connection,
    series_ids: Sequence[int],
    timestamps: Sequence[int],
    steps: Sequence[int],
    values: Sequence[float],
    nans: Sequence[int],
) -> None:
    """Insert metric history points, given column by column, skipping exact duplicates,
    in one statement (or one executemany). ``nans`` may be 0/1 (what SQLite binds fastest).

    The hot path of ``log_batch``: on SQLite and MySQL the insert-or-ignore statement is
    compiled once and the rows go straight to the driver's executemany (PyMySQL turns it
    into multi-row INSERTs), skipping SQLAlchemy's per-row parameter processing.
    """
    if not series_ids:
        return
    dialect = conn.dialect
    if dialect.name == "postgresql" and dialect.driver in PG_LITERAL_DRIVERS:
        conn.execute(_PG_POINTS, pg_point_literals(series_ids, timestamps, steps, values, nans))
        return
    if dialect.name != "sqlite":
        nans = list(map(bool, nans))
    columns = (series_ids, timestamps, steps, values, nans)
    from tracklog_store_sql.schema import metric_points

    stmt = insert_ignore_stmt(dialect.name, metric_points, _POINT_COLS)
    if isinstance(stmt, _Prefixed) or dialect.name not in ("sqlite", "mysql", "mariadb"):
        rows = [dict(zip(_POINT_COLS, p, strict=True)) for p in zip(*columns, strict=True)]
        execute_many(conn, stmt, rows)
        return
    cache_key = ("raw", dialect.name, dialect.driver)
    compiled = _CACHE.get(cache_key)
    if compiled is None:
        c = stmt.compile(dialect=dialect)
        order = [_POINT_COLS.index(name) for name in c.positiontup] if c.positional else None
        compiled = _CACHE[cache_key] = (str(c), order)
    sql, order = compiled
    if order is None:
        rows = [dict(zip(_POINT_COLS, p, strict=True)) for p in zip(*columns, strict=True)]
        execute_driver(conn, "points_insert", sql, rows)
    else:
        execute_driver(conn, "points_insert", sql,
                       list(zip(*(columns[i] for i in order), strict=True)))


def copy_new_metric_points(
    conn: Connection,
    series_ids: Sequence[int],
    timestamps: Sequence[int],
    steps: Sequence[int],
    values: Sequence[float],
    nans: Sequence[int],
) -> None:
    """Points of series created in this transaction, as :func:`write_metric_points`
    takes them. On PostgreSQL with psycopg they go by binary ``COPY``, which the server
    takes in about half the time of an insert-or-ignore (nothing can conflict with a new
    series); should the rows repeat a point after all, the insert-or-ignore takes them
    instead."""
    dialect = conn.dialect
    if not series_ids or dialect.name != "postgresql" or dialect.driver != "psycopg":
        write_metric_points(conn, series_ids, timestamps, steps, values, nans)
        return
    import psycopg

    rows = _binary_points(series_ids, timestamps, steps, values, nans)
    try:
        with conn.begin_nested():
            raw: Any = conn.connection.driver_connection
            with raw.cursor() as cur, cur.copy(
                    "COPY metric_points (series_id, timestamp, step, value, is_nan) "
                    "FROM STDIN (FORMAT binary)") as copy:
                copy.write(_PGCOPY_HEADER)
                copy.write(rows)
                copy.write(_PGCOPY_TRAILER)
    except (sa.exc.IntegrityError, psycopg.errors.IntegrityError):
        write_metric_points(conn, series_ids, timestamps, steps, values, nans)


_PGCOPY_HEADER = b"PGCOPY\n\xff\r\n\0" + bytes(8)  # signature, flags, no extension
_PGCOPY_TRAILER = b"\xff\xff"
#: A metric_points row in PostgreSQL's binary COPY format: the field count, then each
#: field's length and big-endian value (int4, int8, int8, float8, bool).
_PGCOPY_ROW = struct.Struct(">hiiiqiqidi?")
#: (offset in the row, array type code, width) of each field's value.
_PGCOPY_FIELDS = ((6, "i", 4), (14, "q", 8), (26, "q", 8), (38, "d", 8), (50, "B", 1))


def _binary_points(*columns: Sequence[Any]) -> bytearray:
    """Rows of points for a binary COPY, built column by column in C: a template row
    repeated, each column's big-endian bytes laid into it by strided slice assignment,
    so no Python object per point (text COPY formatted every value with repr)."""
    n, size = len(columns[0]), _PGCOPY_ROW.size
    buf = bytearray(_PGCOPY_ROW.pack(5, 4, 0, 8, 0, 8, 0, 8, 0.0, 1, False) * n)
    for (offset, code, width), column in zip(_PGCOPY_FIELDS, columns, strict=True):
        packed = array(code, column)
        if width > 1 and sys.byteorder == "little":
            packed.byteswap()
        data = packed.tobytes()
        for j in range(width):
            buf[offset + j::size] = data[j::width]
    return buf


def binary_copy_reads(conn: Connection) -> bool:
    """Whether :func:`point_arrays` can read from ``conn`` (PostgreSQL with psycopg)."""
    return conn.dialect.name == "postgresql" and conn.dialect.driver == "psycopg"


# Each series' points as four arrays in PostgreSQL's binary array format (one row per
# series, no Python object per point; a COPY TO sends, and psycopg hands over, a message
# per row). The points are sorted once, below the aggregates (an ORDER BY in each of
# them sorts every group four times, which took longer than the rest of the query); the
# four arrays of a group are built from the same rows in the same sequence.
_PG_POINT_ARRAYS = (
    "SELECT series_id, "
    + ", ".join(f"array_send(array_agg({c}))" for c in ("timestamp", "step", "value", "is_nan"))
    + " FROM (SELECT * FROM metric_points WHERE series_id = ANY(%(ids)s::integer[])"
    " ORDER BY series_id, timestamp, step, value) AS points GROUP BY series_id"
)
#: (array type code, width) of the timestamps, steps, values and NaN flags.
_ARRAY_COLUMNS = (("q", 8), ("q", 8), ("d", 8), ("B", 1))


def point_arrays(conn: Connection, series_ids: Sequence[int]
                 ) -> Iterator[tuple[int, array, array, array, array]]:
    """(series id, timestamps, steps, values, NaN flags) of every series of
    ``series_ids`` that has points, each history ordered by timestamp, step and value,
    its columns split out of the binary arrays with strided slices."""
    raw: Any = conn.connection.driver_connection
    ids = "{" + ",".join(str(int(sid)) for sid in series_ids) + "}"
    with raw.cursor() as cur:
        cur.execute(_PG_POINT_ARRAYS, {"ids": ids}, binary=True)
        rows = cur.fetchall()
    for sid, *arrays in rows:
        yield sid, *array_columns(arrays)


def array_columns(arrays: Sequence[bytes]) -> tuple[array, array, array, array]:
    """Timestamps, steps, values and NaN flags from their arrays in PostgreSQL's binary
    format (bigint, bigint, double precision and boolean)."""
    timestamps, steps, values, nans = (
        _array_column(data, code, width)
        for data, (code, width) in zip(arrays, _ARRAY_COLUMNS, strict=True))
    return timestamps, steps, values, nans


def _array_column(data: bytes, code: str, width: int) -> array:
    """The elements of a one-dimensional array without NULLs in PostgreSQL's binary
    format (a 20-byte header, then each element's length and big-endian value)."""
    n = struct.unpack_from(">i", data, 12)[0]
    body = memoryview(data)[20:]
    stride = 4 + width
    column = bytearray(n * width)
    for j in range(width):
        column[j::width] = body[4 + j::stride]
    values = array(code, bytes(column))
    if width > 1 and sys.byteorder == "little":
        values.byteswap()
    return values
