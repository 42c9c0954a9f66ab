"""The runs of a search page in ONE statement on PostgreSQL and SQLite.

The search (:func:`tracklog_store_sql.search.runs_query`) gives the page's run ids in
order; then one statement reads their ``runs`` rows as ONE JSON document, each row with
its params and tags (and on PostgreSQL its latest metrics) as JSON objects, and whether
the run has inputs or outputs, which only then are read (most runs have none). That is
two statements a page instead of seven, and one ``json.loads`` builds the page's params
and tags dicts. SQLite writes a double in JSON with 15 significant digits, so there the
latest metrics keep their own statement. The statements take the ids as one bound
parameter (:class:`rows.RunSet`), so each is built once. (One statement for the search
and the page was tried: PostgreSQL's generic plan for it, which psycopg's prepared
statements settle on, probes the runs before the filter's params and costs more.)
MySQL, MariaDB and SQL Server use :func:`rows.load_runs`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from tracklog.entities import Run, RunData, ViewType, metric_from_fields
from tracklog.search.ast import Filter, OrderBy
from tracklog_store_sql.rows import (
    NAN,
    RunSet,
    load_inputs,
    load_metrics,
    load_outputs,
    run_info,
)
from tracklog_store_sql.schema import inputs, latest_metrics, params, run_outputs, runs, tags
from tracklog_store_sql.search import runs_query

#: Dialects that read a search page with :func:`load_page`.
DIALECTS = frozenset({"postgresql", "sqlite"})
_RUN_COLUMNS = len(runs.c)
#: A literal, not a bound value: the page statement runs as plain SQL text.
_RUN: sa.ColumnElement[str] = sa.literal_column("'RUN'")


def search_query(
    dialect: str,
    experiment_ids: Sequence[int],
    view: ViewType,
    filter: Filter,
    order_by: Sequence[OrderBy],
) -> sa.Select:
    """:func:`search.runs_query` with its page bounds bound as ``page_limit`` and
    ``page_offset``, built once for a search asked again (a page reloaded, a client
    polling): building the statement and its cache key cost about as much Python as
    reading the page. ``repr(filter)`` tells apart values that compare equal (1, 1.0);
    a filter that cannot be hashed (a direct caller's list) is built each time."""
    key = (dialect, tuple(experiment_ids), view, tuple(filter), tuple(order_by))
    try:
        hash(key)
    except TypeError:
        return _build(*key)
    return _search_query(*key, repr(key[3]))


def _build(dialect: str, experiment_ids: Sequence[int], view: ViewType, filter: Filter,
           order_by: Sequence[OrderBy]) -> sa.Select:
    return (
        runs_query(dialect, experiment_ids, view, filter, order_by)
        .limit(sa.bindparam("page_limit", type_=sa.BigInteger))
        .offset(sa.bindparam("page_offset", type_=sa.BigInteger))
    )


@lru_cache(maxsize=256)
def _search_query(dialect: str, experiment_ids: tuple[int, ...], view: ViewType,
                  filter: Filter, order_by: tuple[OrderBy, ...], _repr: str) -> sa.Select:
    return _build(dialect, experiment_ids, view, filter, order_by)


def forget_statements() -> None:
    """Drop the statements :func:`search_query` keeps (for tests that change how a
    filter compiles)."""
    _search_query.cache_clear()


def _page(of, rows, json_object, json, metrics) -> sa.Select:
    """One JSON array of a row per run: the ``runs`` columns, params, tags, latest
    metrics, has inputs, has outputs (one document to decode, not three per run)."""
    rid = runs.c.run_uuid
    p, t = params.c, tags.c
    return sa.select(rows(json(
        *runs.c,
        sa.select(json_object(p.key, p.value)).where(p.run_uuid == rid).scalar_subquery(),
        sa.select(json_object(t.key, t.value)).where(t.run_uuid == rid).scalar_subquery(),
        metrics,
        sa.exists().where(inputs.c.destination_type == _RUN, inputs.c.destination_id == rid),
        sa.exists().where(run_outputs.c.run_uuid == rid),
    ))).where(of(rid))


def _postgresql_page(of) -> sa.Select:
    lm = latest_metrics.c
    # The value as text: a JSON number loses -0.0's sign and reads 1.0 back as an int.
    value = sa.cast(lm.value, sa.Text)
    metrics = (
        sa.select(sa.func.json_object_agg(
            lm.key, sa.func.json_build_array(value, lm.timestamp, lm.step, lm.is_nan)))
        .where(lm.run_uuid == runs.c.run_uuid)
        .scalar_subquery()
    )
    return _page(of, sa.func.json_agg, sa.func.json_object_agg, sa.func.json_build_array,
                 metrics)


def _sqlite_page(of) -> sa.Select:
    # A subquery's JSON is text to json_array unless json() marks it again.
    def agg(key, value):
        return sa.func.json(sa.func.json_group_object(key, value))
    return _page(of, sa.func.json_group_array, agg, sa.func.json_array, sa.null())


def load_page(conn: Connection, run_ids: Sequence[str]) -> list[Run]:
    """The runs of ``run_ids``, in that order (a run deleted meanwhile left out)."""
    if not run_ids:
        return []
    dialect = conn.dialect.name
    run_set = RunSet(run_ids, dialect)
    build = _postgresql_page if dialect == "postgresql" else _sqlite_page
    ((page,),) = run_set.rows(conn, build)
    if isinstance(page, str):  # SQLite's JSON is text; psycopg decodes json itself
        page = json.loads(page)
    found: dict[str, Run] = {}
    with_inputs, with_outputs = [], []
    n = _RUN_COLUMNS
    new = metric_from_fields
    for row in page or ():
        run_params, run_tags, latest, has_inputs, has_outputs = row[n:]
        metrics: dict[str, Any] = {}
        if latest:
            for key, (value, ts, step, is_nan) in latest.items():
                value = NAN if is_nan else float(value)
                metrics[key] = new((key, value, ts, step, None, None, None, None))
        run_id = row[0]
        found[run_id] = Run(info=run_info(row[:n]),
                            data=RunData(metrics, run_params or {}, run_tags or {}))
        if has_inputs:
            with_inputs.append(run_id)
        if has_outputs:
            with_outputs.append(run_id)
    if dialect == "sqlite" and found:
        load_metrics(conn, run_set, found)
    if with_inputs:
        load_inputs(conn, RunSet(with_inputs, dialect), found)
    if with_outputs:
        load_outputs(conn, RunSet(with_outputs, dialect), found)
    return [found[r] for r in run_ids if r in found]
