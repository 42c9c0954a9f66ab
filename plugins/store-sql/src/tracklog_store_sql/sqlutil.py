"""Dialect-aware SQL building blocks: bulk insert-or-ignore, upserts, case-sensitive
string comparisons, NULLs-last ordering and page limits. Metric points in bulk are
:mod:`tracklog_store_sql.points`'s."""

from __future__ import annotations

import json
import math
from collections import namedtuple
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, NoReturn, TypeVar, overload

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from tracklog import errors
from tracklog.entities import MAX_DOUBLE
from tracklog.search.ast import Op
from tracklog.search.tokens import encode_offset_token

R = TypeVar("R")
#: Default IN-list chunk size (see chunk_size).
CHUNK = 1000
_CACHE: dict[tuple, Any] = {}


def execute_plain(conn: Connection, name: str, stmt: Any,
                  params: Mapping[str, Any] | Sequence[Mapping[str, Any]]) -> Any:
    """Run ``stmt`` (named ``name``) as SQL text compiled once per dialect, with its
    parameters handed to the driver as they are (one mapping, or several for an
    executemany). For the small statements every write makes: SQLAlchemy's own
    execution (cache key, compiled-cache lookup, bind processing) costs more than the
    statement on SQLite. Only for parameters the driver takes unconverted (strings,
    numbers, bools)."""
    dialect = conn.dialect
    cache_key = ("plain", name, dialect.name, dialect.driver)
    compiled = _CACHE.get(cache_key)
    if compiled is None:
        c = stmt.compile(dialect=dialect)
        compiled = _CACHE[cache_key] = (str(c), c.positiontup if c.positional else None)
    sql, order = compiled
    if order is None:
        args: Any = params if isinstance(params, Mapping) else list(params)
    elif isinstance(params, Mapping):
        args = tuple([params[n] for n in order])
    else:
        args = [tuple([p[n] for n in order]) for p in params]
    return execute_driver(conn, name, sql, args)


def execute_driver(conn: Connection, name: str, sql: str, args: Any) -> Any:
    """``conn.exec_driver_sql(sql, args)`` (a list of rows for an executemany); on SQLite,
    inside a transaction SQLAlchemy began (it would not begin one for this) and where no
    cursor event listens (it would not see this), on SQLite's own cursor instead: a
    third of the time of SQLAlchemy's execution for these statements, with errors raised
    as SQLAlchemy raises them. ``name`` names the statement's rows' columns."""
    if (conn.dialect.name != "sqlite" or not conn.in_transaction()
            or conn.dispatch.before_cursor_execute or conn.dispatch.after_cursor_execute):
        return conn.exec_driver_sql(sql, args)
    dbapi = conn.connection.dbapi_connection
    assert dbapi is not None, "a connection in use has its DBAPI connection"
    cursor = dbapi.cursor()
    try:
        if isinstance(args, list):
            cursor.executemany(sql, args)
        else:
            cursor.execute(sql, args)
    except Exception as exc:
        cursor.close()
        raise_as_sqlalchemy(conn, sql, args, exc)
    return PlainResult(name, cursor)


def raise_as_sqlalchemy(conn: Connection, sql: str, args: Any, exc: Exception) -> NoReturn:
    """Raise ``exc``, met running ``sql`` on ``conn``'s DBAPI connection directly, as
    SQLAlchemy's execution would have: a DBAPI error as its ``DBAPIError`` subclass
    (``IntegrityError``, ``OperationalError``…), anything else as it is."""
    error = conn.dialect.loaded_dbapi.Error
    if isinstance(exc, error):
        raise sa.exc.DBAPIError.instance(sql, args, exc, error, dialect=conn.dialect) from exc
    raise exc


class PlainResult:
    """What callers of :func:`execute_plain` use of a result, over a DBAPI cursor: rows
    with their columns as attributes, as SQLAlchemy's."""

    __slots__ = ("cursor", "_name")
    _ROWS: dict[tuple[str, tuple[str, ...]], Callable[[Iterable[Any]], Any]] = {}

    def __init__(self, name: str, cursor: Any) -> None:
        self.cursor, self._name = cursor, name

    @property
    def rowcount(self) -> int:
        return self.cursor.rowcount

    def _row(self) -> Callable[[Iterable[Any]], Any]:
        columns = tuple(d[0] for d in self.cursor.description)
        key = (self._name, columns)
        make = self._ROWS.get(key)
        if make is None:
            row: Any = namedtuple("Row", columns, rename=True)  # type: ignore[misc]
            make = self._ROWS[key] = row._make
        return make

    def first(self) -> Any:
        try:
            values = self.cursor.fetchone()
            return None if values is None else self._row()(values)
        finally:
            self.cursor.close()

    def all(self) -> list[Any]:
        try:
            make = self._row()
            return [make(values) for values in self.cursor.fetchall()]
        finally:
            self.cursor.close()

    def scalar(self) -> Any:
        try:
            values = self.cursor.fetchone()
            return None if values is None else values[0]
        finally:
            self.cursor.close()

    def scalars(self) -> list[Any]:
        try:
            return [values[0] for values in self.cursor.fetchall()]
        finally:
            self.cursor.close()

    def close(self) -> None:
        self.cursor.close()


def numbered_pairs(pairs: Mapping[str, Any]) -> dict[str, Any]:
    """The items of ``pairs`` as bound parameters ``k0``/``v0``, ``k1``/``v1``…, as the
    statements that insert several key-value rows at once name them."""
    out: dict[str, Any] = {}
    for i, (k, v) in enumerate(pairs.items()):
        out[f"k{i}"], out[f"v{i}"] = k, v
    return out


def history_head(conn: Connection, name: str, stmt: Any, run_id: str, key: str,
                 limit: int) -> Sequence[tuple] | None:
    """Rows of a history query ``stmt`` (bound ``run_id``, ``key``, ``lim`` and ``off``;
    compiled once as ``name``) as plain tuples when there are at most ``limit``, else
    None."""
    result = execute_plain(conn, name, stmt,
                           {"run_id": run_id, "key": key, "lim": limit + 1, "off": 0})
    try:
        rows = result.cursor.fetchall()
    finally:
        result.close()
    return None if len(rows) > limit else rows


def encode_float(value: float) -> tuple[float, bool]:
    """(stored value, is_nan) the way MLflow stores doubles: NaN as a flag, ±inf clamped."""
    if value != value:
        return 0.0, True
    if value == math.inf:
        return MAX_DOUBLE, False
    if value == -math.inf:
        return -MAX_DOUBLE, False
    return float(value), False


def chunk_size(dialect: str) -> int:
    """How many ids one :func:`in_ids` condition may hold: SQLite and PostgreSQL take the
    whole list as ONE parameter; MSSQL takes at most 2100 bound parameters."""
    if dialect in ("sqlite", "postgresql"):
        return 1_000_000
    return CHUNK if dialect == "mssql" else 10_000


def in_ids(col, ids: Sequence[str] | Sequence[int], dialect: str):
    """``col IN ids`` (strings or integers) with the list bound as a single parameter where
    the backend allows it (a JSON array on SQLite, an array on PostgreSQL): no per-element
    placeholders to render, bind and parse when a page holds thousands of runs, and no
    limit on their number (PostgreSQL takes at most 65,535 parameters per statement).
    MySQL's driver inlines the values client-side, so a plain IN has no such limit."""
    values: list[Any] = list(ids)
    if dialect == "sqlite":
        each = sa.func.json_each(json.dumps(values)).table_valued("value")
        return col.in_(sa.select(each.c.value))
    if dialect == "postgresql":
        if values and isinstance(values[0], int):
            param: sa.BindParameter[str] = sa.bindparam(
                None, "{" + ",".join(map(str, map(int, values))) + "}"
            )
            return col == sa.any_(_pg_array_param(param, sa.BigInteger))
        return col == sa.any_(_pg_text_array_param(sa.bindparam(None, pg_text_array(values))))
    return col.in_(values)


def in_bound_ids(col, name: str, dialect: str):
    """``col IN :name`` where the whole id list is ONE bound parameter (SQLite, PostgreSQL
    only), so the statement can be built once and reused; pass :func:`bound_ids`."""
    if dialect == "sqlite":
        each = sa.func.json_each(sa.bindparam(name, type_=sa.String)).table_valued("value")
        return col.in_(sa.select(each.c.value))
    return col == sa.any_(_pg_text_array_param(sa.bindparam(name, type_=sa.String)))


def bound_ids(ids: Sequence[str], dialect: str) -> Any:
    return json.dumps(list(ids)) if dialect == "sqlite" else pg_text_array(ids)


def _pg_text_array_param(param):
    return _pg_array_param(param, sa.String)


def _pg_array_param(param, item_type):
    from sqlalchemy.dialects.postgresql import ARRAY

    return sa.cast(param, ARRAY(item_type))


def pg_text_array(items: Sequence[str]) -> str:
    """A PostgreSQL array literal of strings, bound as one text parameter: psycopg adapts a
    list element by element (a regular expression per string), which cost more than the
    query on a page of 1,000 runs. Every element is quoted (an empty string or ``NULL``
    stays a string); only ids holding a quote or backslash pay for escaping."""
    items = list(items)
    joined = "".join(items)
    if '"' not in joined and "\\" not in joined:
        return '{"' + '","'.join(items) + '"}' if items else "{}"
    escaped = (i.replace("\\", "\\\\").replace('"', '\\"') for i in items)
    return "{" + ",".join(f'"{i}"' for i in escaped) + "}"


#: SET LOCAL of each setting, in one statement.
_BY_INDEX = ("SELECT set_config('enable_seqscan', 'off', true), "
             "set_config('enable_bitmapscan', 'off', true), set_config('jit', 'off', true)")


def by_index(conn: Connection) -> None:
    """On PostgreSQL, have the rest of ``conn``'s transaction read rows through an index,
    in its order, wherever one serves. Tables a bulk load is filling (a migration's) have
    statistics from when they were empty or small, if any: the planner then found the
    rows of a batch's ids by reading the whole table and comparing each row with every id,
    which cost more with each batch copied (a third of the server's work in verifying a
    copy of a thousand runs); with statistics, a batch's points by bitmap and a sort that
    spilled to disk. Its cost estimates are off either way, so no JIT compilation."""
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(_BY_INDEX)


def chunks(seq: Sequence[Any], size: int = CHUNK):
    for i in range(0, len(seq), size):
        yield seq[i : i + size]


# --- writes ------------------------------------------------------------------------------


def insert_ignore_stmt(dialect: str, table: sa.Table, conflict_cols: Sequence[str]):
    """An INSERT that silently skips rows whose key already exists (use with executemany).

    Statements are immutable; they are built once per (dialect, table, key) and reused,
    since building dialect inserts costs more than executing a small one.
    """
    cache_key = ("ignore", dialect, table.name, tuple(conflict_cols))
    stmt = _CACHE.get(cache_key)
    if stmt is None:
        stmt = _CACHE[cache_key] = _insert_ignore_stmt(dialect, table, conflict_cols)
    return stmt


def _insert_ignore_stmt(dialect: str, table: sa.Table, conflict_cols: Sequence[str]):
    if dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        return sqlite_insert(table).on_conflict_do_nothing(index_elements=list(conflict_cols))
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(table).on_conflict_do_nothing(index_elements=list(conflict_cols))
    if dialect in ("mysql", "mariadb"):
        from sqlalchemy.dialects.mysql import insert as mysql_insert

        stmt = mysql_insert(table)
        first = conflict_cols[0]
        # A no-op assignment: keeps MySQL from raising on the duplicate (unlike INSERT
        # IGNORE it does not also swallow truncation or foreign-key errors).
        return stmt.on_duplicate_key_update({first: stmt.inserted[first]})
    # Portable form (MSSQL): INSERT … SELECT :params WHERE NOT EXISTS (same key).
    cols = [c.name for c in table.columns if c is not table.autoincrement_column]
    source = sa.select(*[sa.bindparam(f"p_{c}", type_=table.c[c].type).label(c) for c in cols])
    cond = sa.and_(*[table.c[c] == sa.bindparam(f"p_{c}") for c in conflict_cols])
    source = source.where(~sa.exists().where(cond))
    return _Prefixed(table.insert().from_select(cols, source))


class _Prefixed:
    """A statement whose executemany parameters need a ``p_`` prefix."""

    def __init__(self, stmt) -> None:
        self.stmt = stmt


def execute_many(conn: Connection, stmt, rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    if isinstance(stmt, _Prefixed):
        conn.execute(stmt.stmt, [{f"p_{k}": v for k, v in r.items()} for r in rows])
    else:
        conn.execute(stmt, rows)


def insert_text_rows(conn: Connection, table: sa.Table, columns: Sequence[str],
                     rows: list[dict[str, str]]) -> None:
    """Insert ``rows`` whose ``columns`` all hold text. On PostgreSQL in one statement,
    each column bound as one array literal: an executemany there runs an INSERT per row
    on the server, and the driver adapts every row."""
    if conn.dialect.name != "postgresql":
        conn.execute(table.insert(), rows)
        return
    arrays = ", ".join(f"CAST(:c{i} AS TEXT[])" for i in range(len(columns)))
    conn.execute(
        sa.text(f"INSERT INTO {table.name} ({', '.join(columns)}) SELECT * FROM unnest({arrays})"),
        {f"c{i}": pg_text_array([r[c] for r in rows]) for i, c in enumerate(columns)})


def insert_ignore(
    conn: Connection, table: sa.Table, rows: list[dict[str, Any]], conflict_cols: Sequence[str]
) -> None:
    execute_many(conn, insert_ignore_stmt(conn.dialect.name, table, conflict_cols), rows)


def upsert(
    conn: Connection,
    table: sa.Table,
    rows: list[dict[str, Any]],
    key_cols: Sequence[str],
    update_cols: Sequence[str],
) -> None:
    """Insert rows, overwriting ``update_cols`` of rows whose key exists."""
    if not rows:
        return
    dialect = conn.dialect.name
    cache_key = ("upsert", dialect, table.name, tuple(key_cols), tuple(update_cols))
    stmt = _CACHE.get(cache_key)
    if stmt is None:
        stmt = _CACHE[cache_key] = _upsert_stmt(dialect, table, key_cols, update_cols)
    if isinstance(stmt, tuple):  # portable form: delete the keys, then insert
        delete, insert = stmt
        conn.execute(delete, [{f"k_{c}": r[c] for c in key_cols} for r in rows])
        conn.execute(insert, rows)
    else:
        conn.execute(stmt, rows)


def _upsert_stmt(dialect: str, table: sa.Table, key_cols, update_cols):
    if dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        lite = sqlite_insert(table)
        return lite.on_conflict_do_update(
            index_elements=list(key_cols), set_={c: lite.excluded[c] for c in update_cols}
        )
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        pg = pg_insert(table)
        return pg.on_conflict_do_update(
            index_elements=list(key_cols), set_={c: pg.excluded[c] for c in update_cols}
        )
    if dialect in ("mysql", "mariadb"):
        from sqlalchemy.dialects.mysql import insert as mysql_insert

        my = mysql_insert(table)
        return my.on_duplicate_key_update({c: my.inserted[c] for c in update_cols})
    delete = table.delete().where(
        sa.and_(*[table.c[c] == sa.bindparam(f"k_{c}") for c in key_cols])
    )
    return delete, table.insert()


# --- comparisons -------------------------------------------------------------------------


def cs(col, dialect: str):
    """``col`` compared case-sensitively (MySQL tables already use a binary collation)."""
    if dialect == "mssql":
        return col.collate("Latin1_General_CS_AS")
    return col


def _like(col, pattern: str, dialect: str, insensitive: bool):
    if insensitive:
        pattern_expr = sa.func.lower(sa.literal(_escape_like(pattern, dialect)))
        return sa.func.lower(col).like(pattern_expr)
    if dialect == "sqlite":
        return col.op("GLOB")(_like_to_glob(pattern))
    return cs(col, dialect).like(_escape_like(pattern, dialect))


def _escape_like(pattern: str, dialect: str) -> str:
    # Only % and _ are wildcards; make the backend's own escape/bracket characters literal.
    if dialect in ("postgresql", "mysql", "mariadb"):
        return pattern.replace("\\", "\\\\")
    if dialect == "mssql":
        return pattern.replace("[", "[[]")
    return pattern


def _like_to_glob(pattern: str) -> str:
    out = []
    for ch in pattern:
        if ch == "%":
            out.append("*")
        elif ch == "_":
            out.append("?")
        elif ch in "*?[":
            out.append(f"[{ch}]")
        else:
            out.append(ch)
    return "".join(out)


def string_condition(col, op: Op, value: Any, dialect: str):
    """A string comparison with MLflow semantics (``=``/``LIKE`` case-sensitive)."""
    if op is Op.EQ:
        return cs(col, dialect) == value
    if op is Op.NE:
        return cs(col, dialect) != value
    if op is Op.LIKE:
        return _like(col, value, dialect, insensitive=False)
    if op is Op.ILIKE:
        return _like(col, value, dialect, insensitive=True)
    if op is Op.IN:
        return in_ids(cs(col, dialect), value, dialect)
    if op is Op.NOT_IN:
        return ~in_ids(cs(col, dialect), value, dialect)
    raise errors.invalid(f"Operator {op.value} is not supported for string comparisons")


def numeric_condition(col, op: Op, value: Any):
    if isinstance(value, float):
        value, _ = encode_float(value)
    ops = {
        Op.EQ: col.__eq__,
        Op.NE: col.__ne__,
        Op.LT: col.__lt__,
        Op.LE: col.__le__,
        Op.GT: col.__gt__,
        Op.GE: col.__ge__,
    }
    if op in (Op.IN, Op.NOT_IN):
        vals = list(value)
        return col.in_(vals) if op is Op.IN else col.not_in(vals)
    if op not in ops:
        raise errors.invalid(f"Operator {op.value} is not supported for numeric comparisons")
    return ops[op](value)


def nulls_last(col, ascending: bool) -> list:
    """ORDER BY terms putting NULLs last either way."""
    return [sa.case((col.is_(None), 1), else_=0), col.asc() if ascending else col.desc()]


# --- pages -------------------------------------------------------------------------------


def page_limit(max_results: int) -> int:
    """The LIMIT that fetches one page plus one row (to know whether another page
    follows), kept inside the databases' 64-bit range however large the page asked for."""
    return min(max_results, 2**62) + 1


@overload
def page(rows: list[R], max_results: int, offset: int) -> tuple[list[R], str | None]: ...
@overload
def page(rows: Sequence[R], max_results: int, offset: int) -> tuple[Sequence[R], str | None]: ...
def page(rows: Sequence[R], max_results: int, offset: int) -> tuple[Sequence[R], str | None]:
    """Split a fetch of ``max_results + 1`` rows into the page and the next token."""
    if len(rows) > max_results:
        return rows[:max_results], encode_offset_token(offset + max_results)
    return rows, None
