"""Bounds on what one request may cost a SQL database: the statement timeout, telling a
stopped statement apart, and letting SQLite poll a request's interrupt.

Each statement may run :data:`STATEMENT_TIMEOUT_S` seconds (PostgreSQL
``statement_timeout``, MariaDB ``max_statement_time``, MySQL ``max_execution_time``); a
read stopped by it is the caller's error (INVALID_PARAMETER_VALUE, HTTP 400: the MLflow
client would only repeat it), a write stopped by it is TEMPORARILY_UNAVAILABLE. A request
that finds every pooled connection busy waits ``pool_timeout`` seconds, then gets
TEMPORARILY_UNAVAILABLE (HTTP 503) with ``Retry-After``, which the client honours.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, cast

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine

from tracklog import errors
from tracklog.interrupt import Interrupt, cancelled

if TYPE_CHECKING:
    from sqlalchemy.dialects.mysql.base import MySQLDialect

#: Seconds a statement may run on a database server, unless
#: ``TRACKLOG_SQLALCHEMYSTORE_STATEMENT_TIMEOUT`` says otherwise (0: no limit).
STATEMENT_TIMEOUT_S = 30.0
#: The ``Retry-After`` of a 503 when every pooled connection is busy.
RETRY_AFTER_S = 2


def statement_timeout(environ: Mapping[str, str] | None = None) -> float:
    """Seconds a statement may run (``TRACKLOG_SQLALCHEMYSTORE_STATEMENT_TIMEOUT``)."""
    env = os.environ if environ is None else environ
    name = "TRACKLOG_SQLALCHEMYSTORE_STATEMENT_TIMEOUT"
    raw = env.get(name)
    if not raw:
        return STATEMENT_TIMEOUT_S
    try:
        seconds = float(raw)
    except ValueError:
        seconds = -1.0
    if not 0 <= seconds < 10**6:
        raise errors.invalid(
            f"Environment variable {name} must be a number of seconds (0: no limit), got {raw!r}"
        )
    return seconds


def _query_text(url: sa.URL, name: str) -> str:
    value = url.query.get(name, "")
    return " ".join(value) if isinstance(value, tuple) else value


def postgres_options(url: sa.URL, timeout_ms: int) -> str:
    """libpq ``options`` setting the statement timeout at connection start (so it costs
    no statement of its own), after any options the URL gives."""
    return f"{_query_text(url, 'options')} -c statement_timeout={timeout_ms}".strip()


def url_sets_timeout(url: sa.URL) -> bool:
    """Whether the database URL sets the statement timeout itself (it then wins)."""
    text = _query_text(url, "options") + _query_text(url, "init_command")
    return any(v in text for v in ("statement_timeout", "max_statement_time",
                                   "max_execution_time"))


def _is_mariadb(dbapi_conn) -> bool:
    return "mariadb" in dbapi_conn.get_server_info().lower()


def configure_mysql_timeout(engine: Engine, timeout_ms: int) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record) -> None:
        with dbapi_conn.cursor() as cur:
            if _is_mariadb(dbapi_conn):
                cur.execute(f"SET SESSION max_statement_time = {timeout_ms / 1000}")
            else:  # MySQL limits SELECT statements only
                cur.execute(f"SET SESSION max_execution_time = {timeout_ms}")


@contextmanager
def no_statement_timeout(conn: Connection) -> Iterator[None]:
    """Lift the statement timeout inside a write transaction (schema migrations may
    rewrite whole tables)."""
    dialect = conn.dialect.name
    if dialect == "postgresql":
        conn.exec_driver_sql("SET LOCAL statement_timeout = 0")
        yield
        return
    if dialect not in ("mysql", "mariadb"):
        yield
        return
    mysql_dialect = cast("MySQLDialect", conn.dialect)  # "mysql" or "mariadb", checked above
    variable = "max_statement_time" if mysql_dialect.is_mariadb else "max_execution_time"
    before = conn.exec_driver_sql(f"SELECT @@SESSION.{variable}").scalar()
    conn.exec_driver_sql(f"SET SESSION {variable} = 0")
    try:
        yield
    finally:
        conn.exec_driver_sql(f"SET SESSION {variable} = {before}")


#: Driver error codes of a statement stopped by its timeout or a cancel request:
#: PostgreSQL query_canceled, MariaDB max_statement_time, MySQL max_execution_time,
#: MySQL/MariaDB KILL QUERY.
_STOPPED = {"57014", 1969, 3024, 1317}


def driver_code(exc: BaseException):
    orig = getattr(exc, "orig", None)
    if orig is None:
        return None
    code = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    if code is None and getattr(orig, "args", None):
        code = orig.args[0]
    return code


def is_stopped(exc: BaseException) -> bool:
    if driver_code(exc) in _STOPPED:
        return True
    # sqlite3 reports an interrupted statement by message only.
    return isinstance(exc, sa.exc.OperationalError) and "interrupted" in str(exc.orig)


@contextmanager
def polling(dbapi_conn, interrupt: Interrupt) -> Iterator[None]:
    """Let SQLite ask every few thousand VM steps whether ``interrupt`` fired (and abort
    the statement if so): unlike ``interrupt()`` from another thread, this cannot miss a
    statement that starts just after the interrupt."""
    if interrupt.fired:
        raise cancelled()
    dbapi_conn.set_progress_handler(lambda: interrupt.fired, 10_000)
    try:
        yield
    finally:
        dbapi_conn.set_progress_handler(None, 0)
