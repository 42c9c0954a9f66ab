"""A database of its own on a real PostgreSQL or MariaDB/MySQL server, for one test session.

Suites that need a fresh database share this one helper: the database is named
``<prefix>_<random>``, created through the server's admin URL and dropped at the end (on
PostgreSQL with ``WITH (FORCE)``, so a connection left open by a server under test does
not keep it alive). A server that cannot be reached is an unavailable service: a skip
that says so, or a failure in CI.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from tracklog.testing import service_unavailable

__all__ = ["private_database"]


@contextmanager
def private_database(admin_url: str, service: str, prefix: str = "tracklog_test"
                     ) -> Iterator[str]:
    """The SQLAlchemy URL of a new database on the server ``admin_url`` names, dropped
    when the block ends. ``service`` names the server in the unavailable message."""
    import sqlalchemy as sa

    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    engine = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT",
                              connect_args={"connect_timeout": 3})
    where = sa.make_url(admin_url).render_as_string()
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql(f"CREATE DATABASE {name}")
    except Exception as exc:  # unreachable server: skip (fail in CI), never hang
        engine.dispose()
        service_unavailable(service, f"{where}: {exc}")
    try:
        yield sa.make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        force = " WITH (FORCE)" if engine.dialect.name == "postgresql" else ""
        with engine.connect() as conn:
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name}{force}")
        engine.dispose()
