"""MSSQL at the compilation level: no SQL Server can run on these machines, so every
statement the store emits is compiled with SQLAlchemy's mssql dialect (DDL through the
real migrations in offline mode, searches, writes and the portable insert-or-ignore and
upsert paths). A compile error here is what a SQL Server user would hit first."""

from __future__ import annotations

import types
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import mssql
from sqlalchemy.schema import CreateIndex, CreateTable

from tracklog.entities import ViewType
from tracklog.search import (
    parse_experiment_filter,
    parse_experiment_order_by,
    parse_logged_model_filter,
    parse_model_version_filter,
    parse_registered_model_filter,
    parse_run_filter,
    parse_run_order_by,
)
from tracklog_store_sql import points, revisions, search_other, sqlutil
from tracklog_store_sql import search as sqlsearch
from tracklog_store_sql.metrics import _LATEST_UPDATE
from tracklog_store_sql.registry import RegistryMixin
from tracklog_store_sql.schema import (
    latest_metrics,
    metadata,
    metric_points,
    metric_series,
    params,
    tags,
)

DIALECT = mssql.dialect()


def _sql(stmt) -> str:
    return str(stmt.compile(dialect=DIALECT))


def test_migrations_render_for_mssql():
    script = revisions.upgrade_sql("mssql")
    for table in metadata.tables:
        assert f"CREATE TABLE {table} (" in script
    assert "experiment_id INTEGER NOT NULL IDENTITY" in script
    assert "[key] VARCHAR(250) NOT NULL" in script  # reserved word quoted
    assert " TEXT" not in script  # long text is VARCHAR(max), not the deprecated TEXT
    assert "ON UPDATE CASCADE" in script


def test_schema_ddl_compiles():
    for table in metadata.sorted_tables:
        ddl = _sql(CreateTable(table))
        assert ddl.startswith(f"\nCREATE TABLE {table.name}")
        for index in table.indexes:
            assert _sql(CreateIndex(index)).startswith("CREATE INDEX")


RUN_FILTERS = [
    "metrics.loss < 0.5 AND params.model = 'cnn'",
    "params.lr LIKE '1%' AND tags.team ILIKE '%vision%'",
    "tags.x IS NULL AND params.y IS NOT NULL",
    "attributes.run_id IN ('a', 'b') AND attributes.status != 'FAILED'",
    "attributes.start_time >= 10 AND attributes.run_name LIKE 'a[b]%'",
    "datasets.name = 'train' AND datasets.context IN ('training')",
    # Past MAX_SEMI_JOINS: a count per child table, datasets as CASE tests.
    " AND ".join([f"params.p{i} = 'v'" for i in range(4)] + [f"tags.t{i} IS NULL" for i in range(3)]
                 + ["metrics.m > 1", "metrics.n < 2", "datasets.name = 'a'",
                    "datasets.digest = 'b'"]),
]


@pytest.mark.parametrize("flt", RUN_FILTERS)
def test_run_search_compiles(flt):
    order = parse_run_order_by(["metrics.loss DESC", "params.lr", "attributes.end_time"])
    stmt = sqlsearch.runs_query("mssql", [1, 2], ViewType.ALL, parse_run_filter(flt), order)
    sql = _sql(stmt.limit(101).offset(200))
    assert "mssql_rn" in sql or "FETCH" in sql  # paging in T-SQL form
    assert "LIMIT" not in sql
    if "LIKE" in flt:
        assert "COLLATE Latin1_General_CS_AS" in sql  # case-sensitive LIKE
    if "[" in flt:  # a bracket is a wildcard class in T-SQL LIKE: it is escaped
        compiled = stmt.compile(dialect=DIALECT)
        assert "a[[]b]%" in compiled.params.values()


def test_other_searches_compile():
    for stmt in (
        search_other.experiments_query(
            "mssql",
            ViewType.ACTIVE_ONLY,
            parse_experiment_filter("name LIKE 'x%' AND tags.k = 'v'"),
            parse_experiment_order_by(["name DESC"]),
        ),
        search_other.logged_models_query(
            "mssql",
            [1],
            parse_logged_model_filter("metrics.acc > 0.5 AND params.p = '1'"),
            [{"dataset_name": "d"}],
            (),
        ),
        search_other.registered_models_query(
            "mssql", parse_registered_model_filter("name ILIKE 'm%'"), ()
        ),
        search_other.model_versions_query(
            "mssql", parse_model_version_filter("name = 'm' AND tags.t = 'x'"), ()
        ),
    ):
        sql = _sql(stmt.limit(10).offset(10))
        assert "mssql_rn" in sql or "FETCH" in sql
    # The logged-model metric subquery takes the newest value with TOP, not LIMIT.
    assert "SELECT TOP" in _sql(
        search_other.logged_models_query(
            "mssql", [1], parse_logged_model_filter("metrics.acc > 0.5"), (), ()
        )
    )


class RecordingConnection:
    """Stands in for a SQL Server connection (none can run here): compiles what it is
    given with the mssql dialect and records it."""

    def __init__(self) -> None:
        self.dialect = DIALECT
        self.statements: list[str] = []

    def execute(self, stmt, params=None):
        self.statements.append(_sql(stmt))


def test_write_paths_compile():
    conn: Any = RecordingConnection()  # stands in for a Connection
    sqlutil.insert_ignore(conn, metric_series, [{"run_uuid": "r", "key": "k"}], ["run_uuid", "key"])
    # The identity column is left to the server, never bound.
    assert conn.statements[-1].startswith("INSERT INTO metric_series (run_uuid, [key])")
    assert "WHERE NOT (EXISTS (SELECT" in conn.statements[-1]
    points.write_metric_points(conn, [1], [1], [0], [1.0], [False])
    assert conn.statements[-1].startswith("INSERT INTO metric_points")
    assert "WHERE NOT (EXISTS (SELECT" in conn.statements[-1]
    sqlutil.upsert(
        conn, tags, [{"run_uuid": "r", "key": "k", "value": "v"}], ["run_uuid", "key"], ["value"]
    )
    assert conn.statements[-2].startswith("DELETE FROM tags")
    assert conn.statements[-1].startswith("INSERT INTO tags")
    sqlutil.insert_ignore(
        conn, params, [{"run_uuid": "r", "key": "k", "value": "v"}], ["run_uuid", "key"]
    )
    assert "UPDATE latest_metrics SET" in _sql(_LATEST_UPDATE)
    history = (
        sa.select(metric_points.c.timestamp)
        .where(metric_points.c.series_id == 1)
        .order_by(metric_points.c.timestamp)
        .limit(10)
        .offset(5)
    )
    assert "LIMIT" not in _sql(history)
    assert "[key]" in _sql(sa.select(latest_metrics).where(latest_metrics.c.key == "k"))


def test_model_row_lock_compiles():
    """Registering a version locks the model's row: a table hint on SQL Server."""

    class Conn(RecordingConnection):
        def execute(self, stmt, params=None):
            super().execute(stmt, params)
            return types.SimpleNamespace(first=lambda: object())

    conn: Any = Conn()  # stands in for a Connection
    RegistryMixin()._rm_row(conn, "m", lock=True)
    assert "FROM registered_models WITH (UPDLOCK, ROWLOCK)" in conn.statements[-1]
    assert "FOR UPDATE" not in conn.statements[-1]
