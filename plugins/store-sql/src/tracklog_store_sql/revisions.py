"""Schema revisions: creating a new database at head, refusing an out-of-date or foreign
one with the command to run, and Alembic upgrades under a lock that servers started
together share."""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from tracklog import errors
from tracklog_store_sql.db import Database, redact
from tracklog_store_sql.limits import RETRY_AFTER_S, no_statement_timeout

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def _alembic_config(conn: Connection | None = None):
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
    cfg.attributes["connection"] = conn
    return cfg


#: Each migration script is named after its revision id: ``NNNN_name.py`` is revision
#: ``NNNN_name``, and revisions form one chain in number order. Reading the file names
#: spares opening a store the import of alembic (a test checks they agree with it).
_REVISION_FILE = re.compile(r"^(\d{4}_\w+)\.py$")
_REVISION_ID = re.compile(r"\d{4}_\w+")
_MLFLOW_REVISION = re.compile(r"[0-9a-f]{12}")


@functools.cache
def known_revisions() -> frozenset[str]:
    names = os.listdir(MIGRATIONS_DIR / "versions")
    return frozenset(m.group(1) for m in map(_REVISION_FILE.match, names) if m)


@functools.cache
def head_revision() -> str:
    return max(known_revisions())


def current_revision(conn: Connection) -> str | None:
    """The revision in alembic's version table, ``None`` if there is none."""
    if not sa.inspect(conn).has_table("alembic_version"):
        return None
    rows = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalars().all()
    if len(rows) > 1:
        raise errors.TracklogError(
            f"The database schema has several revisions at once ({', '.join(sorted(rows))})"
        )
    return rows[0] if rows else None


#: Advisory lock key of schema changes ("tracklog" in ASCII).
_SCHEMA_LOCK = 0x747261636B6C6F67


@contextmanager
def schema_lock(conn: Connection) -> Iterator[None]:
    """Hold the database's schema lock for the rest of ``conn``'s write transaction, so
    that servers started together on an empty database create the schema once. SQLite's
    ``BEGIN IMMEDIATE`` is lock enough; PostgreSQL takes a transaction-level advisory
    lock; MySQL and MariaDB (whose DDL commits at once) a named lock held until the end
    of the block, which commits before releasing it."""
    dialect = conn.dialect.name
    if dialect == "postgresql":
        conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_SCHEMA_LOCK})")
        yield
    elif dialect in ("mysql", "mariadb"):
        got = conn.exec_driver_sql("SELECT GET_LOCK('tracklog_schema', 300)").scalar()
        if got != 1:
            raise errors.unavailable(
                "Another process has been changing the database schema for 300 s; "
                "retry when it is done", RETRY_AFTER_S
            )
        try:
            yield
            # The lock is the connection's, not the transaction's: commit first, or the
            # next holder reads the revision from before the last (uncommitted) step.
            conn.exec_driver_sql("COMMIT")
        finally:
            conn.exec_driver_sql("SELECT RELEASE_LOCK('tracklog_schema')")
    else:
        yield


def upgrade(db: Database, revision: str = "head") -> tuple[str | None, str | None]:
    """Migrate the schema to ``revision``; returns (revision before, revision after)."""
    from alembic import command

    with db.write() as conn, no_statement_timeout(conn), schema_lock(conn):
        before = current_revision(conn)
        command.upgrade(_alembic_config(conn), revision)
        after = current_revision(conn)
    return before, after


def ensure_schema(db: Database) -> None:
    """Create an empty database at head; refuse an out-of-date one with the fix to run."""
    head = head_revision()
    with db.read() as conn:
        current = current_revision(conn)
    if current == head:
        return
    with db.write() as conn, schema_lock(conn):
        # Read again under the lock: another process may be creating the schema right now
        # (on MySQL, whose DDL commits at once, it may have been seen half made).
        current = current_revision(conn)
        if current is None:
            if sa.inspect(conn).has_table("experiments"):
                raise errors.TracklogError(
                    f"The database {redact(db.uri)!r} has tracking tables but no "
                    "tracklog schema version; it was not created by tracklog."
                )
            from alembic import command

            with no_statement_timeout(conn):
                command.upgrade(_alembic_config(conn), "head")
            return
    if current == head:
        return
    if current not in known_revisions() and not _REVISION_ID.fullmatch(current):
        # Not one of ours. MLflow's alembic revisions are 12 hex digits, beside its tables.
        with db.read() as conn:
            mlflow_tables = sa.inspect(conn).has_table("experiments")
        if mlflow_tables and _MLFLOW_REVISION.fullmatch(current):
            raise errors.TracklogError(
                f"The database {redact(db.uri)!r} was created by MLflow (schema {current}); "
                "tracklog cannot serve it directly. Copy it into a tracklog database "
                f"(it is only read): tracklog migrate {redact(db.uri)} "
                "sqlite:///tracklog.db"
            )
        raise errors.TracklogError(
            f"The database {redact(db.uri)!r} has schema revision {current!r}, which is not "
            "a tracklog revision; it was not created by tracklog."
        )
    if current not in known_revisions():
        raise errors.TracklogError(
            f"The database schema of {redact(db.uri)!r} is at revision {current}, which "
            f"this tracklog-store-sql does not know (its latest is {head}): the database "
            "was upgraded by a newer tracklog; upgrade tracklog-store-sql to use it."
        )
    raise errors.TracklogError(
        f"The database schema of {redact(db.uri)!r} is out of date (revision {current}, "
        f"this tracklog-store-sql needs {head}). Back up the database, then run: "
        f"tracklog db upgrade {redact(db.uri)}"
    )


def upgrade_sql(dialect_name: str, revision: str = "head") -> str:
    """The migration script as SQL text for ``dialect_name`` (offline mode, no server)."""
    import io

    from alembic import command
    from alembic.config import Config

    buf = io.StringIO()
    cfg = Config(output_buffer=buf)
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
    cfg.attributes["dialect_name"] = dialect_name
    cfg.attributes["output_buffer"] = buf
    command.upgrade(cfg, revision, sql=True)
    return buf.getvalue()
