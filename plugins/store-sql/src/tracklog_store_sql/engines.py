"""Engines and connection settings.

Everything backend-specific about connecting: SQLite pragmas and ``BEGIN IMMEDIATE``
write transactions, pool settings from the environment, MySQL TLS and character set,
statement timeouts, and redaction of passwords from every URI we print. Transactions
on these engines are :mod:`tracklog_store_sql.db`'s.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.pool import NullPool, StaticPool

from tracklog import errors
from tracklog_store_sql.limits import (
    configure_mysql_timeout,
    postgres_options,
    statement_timeout,
    url_sets_timeout,
)
from tracklog_store_sql.pinging import ping_idle_connections
from tracklog_store_sql.sqlutil import raise_as_sqlalchemy

SQLITE_BUSY_TIMEOUT_S = 60.0
BUSY_TIMEOUT_PRAGMA = f"PRAGMA busy_timeout={int(SQLITE_BUSY_TIMEOUT_S * 1000)}"
#: A busy database fails at once (for the work the server's event loop does itself).
NO_BUSY_WAIT_PRAGMA = "PRAGMA busy_timeout=0"
_POOL_ENV = {
    "pool_size": "POOL_SIZE",
    "pool_recycle": "POOL_RECYCLE",
    "max_overflow": "MAX_OVERFLOW",
    "pool_timeout": "POOL_TIMEOUT",
    "prepare_threshold": "PREPARE_THRESHOLD",
}
#: Pool settings for a database server unless the environment says otherwise: twenty
#: connections per server process (four workers stay under PostgreSQL's default 100),
#: kept once opened and none beyond, and a request finding all busy waits 10 s before it
#: is answered 503. No overflow: under sustained load an overflow connection is closed
#: when given back and opened again for the next request, preparing none of its
#: statements (at 64 connections on PostgreSQL, 10 kept plus 10 overflow logged
#: 1,461-1,586 run creations a second, p99 120-127 ms; 20 kept, 1,623-1,804, 71-74 ms).
POOL_DEFAULTS = {"pool_size": 20, "max_overflow": 0, "pool_timeout": 10}


def redact(uri: str) -> str:
    """``uri`` with its password replaced by ``***`` (safe for logs and messages)."""
    try:
        return make_url(uri).render_as_string(hide_password=True)
    except Exception:
        return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", uri)


def scrub(text: str, uri: str) -> str:
    """``text`` with the password of ``uri`` (if any) replaced by ``***``."""
    try:
        password = make_url(uri).password
    except Exception:
        return text
    return text.replace(str(password), "***") if password else text


def pool_options(environ: Mapping[str, str] | None = None) -> dict[str, int]:
    """Pool settings (and psycopg's ``prepare_threshold``, which :func:`create_engine`
    takes out again) from ``TRACKLOG_SQLALCHEMYSTORE_*`` or ``MLFLOW_SQLALCHEMYSTORE_*``."""
    env = os.environ if environ is None else environ
    out: dict[str, int] = {}
    for option, suffix in _POOL_ENV.items():
        for prefix in ("TRACKLOG_SQLALCHEMYSTORE_", "MLFLOW_SQLALCHEMYSTORE_"):
            raw = env.get(prefix + suffix)
            if raw:
                try:
                    out[option] = int(raw)
                except ValueError:
                    raise errors.invalid(
                        f"Environment variable {prefix + suffix} must be an integer, got {raw!r}"
                    ) from None
                break
    return out


def mysql_ssl_args(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """PyMySQL ``ssl`` connect argument from ``MLFLOW_MYSQL_SSL_CA/_CERT/_KEY``."""
    env = os.environ if environ is None else environ
    ssl = {}
    for part in ("ca", "cert", "key"):
        value = env.get(f"MLFLOW_MYSQL_SSL_{part.upper()}") or env.get(
            f"TRACKLOG_MYSQL_SSL_{part.upper()}"
        )
        if value:
            ssl[part] = value
    return ssl


def _is_memory_sqlite(url: sa.URL) -> bool:
    return url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:")


def create_engine(store_uri: str, pooled: bool = True, busy_wait: bool = True) -> Engine:
    """An engine for ``store_uri`` with tracklog's connection settings applied
    (``pooled=False``: a fresh connection each time, for rare side jobs;
    ``busy_wait=False``: on SQLite, a busy database fails at once, from the connection's
    first statement on)."""
    try:
        url = make_url(store_uri)
    except Exception:
        raise errors.invalid(f"Invalid database URI {redact(store_uri)!r}") from None
    backend = url.get_backend_name()
    kwargs: dict = {"future": True}
    connect_args: dict = {}
    if backend == "sqlite":
        connect_args["check_same_thread"] = False
        connect_args["timeout"] = SQLITE_BUSY_TIMEOUT_S if busy_wait else 0
        if _is_memory_sqlite(url):
            kwargs["poolclass"] = StaticPool
        else:
            if url.database:
                Path(url.database).parent.mkdir(parents=True, exist_ok=True)
            kwargs.update(pool_options() if pooled else {"poolclass": NullPool})
    elif not pooled:
        kwargs["poolclass"] = NullPool
    else:
        kwargs.update(POOL_DEFAULTS)
        kwargs.update(pool_options())
    timeout_ms = 0 if url_sets_timeout(url) else int(statement_timeout() * 1000)
    if backend == "postgresql" and timeout_ms:
        connect_args["options"] = postgres_options(url, timeout_ms)
    if backend in ("mysql", "mariadb"):
        if url.drivername in ("mysql", "mariadb"):
            url = url.set(drivername=f"{backend}+pymysql")
        if "charset" not in url.query:
            url = url.update_query_dict({"charset": "utf8mb4"})
        # As PostgreSQL's default: a read after an insert-or-ignore sees the row another
        # transaction committed meanwhile (InnoDB's REPEATABLE READ shows its snapshot, so
        # a concurrent param or metric series would look absent).
        kwargs["isolation_level"] = "READ COMMITTED"
        ssl = mysql_ssl_args()
        if ssl:
            connect_args["ssl"] = ssl
    prepare = kwargs.pop("prepare_threshold", None)
    if prepare is not None and backend == "postgresql" and url.get_driver_name() == "psycopg":
        # psycopg prepares a statement on its Nth run on a connection; 0 never does
        # (PgBouncer before 1.21 in transaction mode cannot route prepared statements).
        connect_args["prepare_threshold"] = prepare or None
    kwargs["connect_args"] = connect_args
    try:
        engine = sa.create_engine(url, **kwargs)
    except ModuleNotFoundError as exc:
        extra = {"postgresql": "postgres", "mysql": "mysql", "mariadb": "mysql"}.get(
            backend, backend
        )
        raise errors.invalid(
            f"The database driver for {redact(store_uri)!r} is not installed ({exc.name}); "
            f"install tracklog-store-sql[{extra}]"
        ) from None
    if backend == "sqlite":
        busy = BUSY_TIMEOUT_PRAGMA if busy_wait else NO_BUSY_WAIT_PRAGMA
        _configure_sqlite(engine, memory=_is_memory_sqlite(url), busy_timeout=busy)
    elif pooled:
        ping_idle_connections(engine)
    if backend in ("mysql", "mariadb") and timeout_ms:
        configure_mysql_timeout(engine, timeout_ms)
    return engine


def _configure_sqlite(engine: Engine, memory: bool,
                      busy_timeout: str = BUSY_TIMEOUT_PRAGMA) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record) -> None:
        # Take transaction control from pysqlite so write transactions can BEGIN IMMEDIATE.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute(busy_timeout)
        if not memory:
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # A write transaction takes the write lock up front: a deferred one that upgrades
        # later fails with "database is locked" instead of waiting on busy_timeout.
        begin = "BEGIN IMMEDIATE" if conn.get_execution_options().get("tracklog_write") else "BEGIN"
        # On SQLite's own connection: SQLAlchemy's execution costs more than the BEGIN.
        dbapi = conn.connection.dbapi_connection
        assert dbapi is not None, "a connection beginning has its DBAPI connection"
        try:
            dbapi.execute(begin)
        except Exception as exc:
            raise_as_sqlalchemy(conn, begin, (), exc)
