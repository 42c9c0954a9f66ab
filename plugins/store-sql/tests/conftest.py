"""Fixtures: a fresh SqlTrackingStore per test on SQLite, PostgreSQL and MariaDB.

PostgreSQL (127.0.0.1:5432, user postgres) and MariaDB (127.0.0.1:3306, root) each get a
database of their own per session, ``tracklog_test_<random>``, dropped at the end. The
schema is created once per session; between tests every table is emptied and the Default
experiment re-inserted, which is much cheaper than a new database. A server that cannot
be reached makes its tests skip with the reason. ``TRACKLOG_TEST_POSTGRES_URL`` and
``TRACKLOG_TEST_MYSQL_URL`` point at other servers (a URL of the server's admin database).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tracklog.testing.databases import private_database
from tracklog_store_sql.schema import ALL_TABLES
from tracklog_store_sql.store import SqlTrackingStore

PG_ADMIN = os.environ.get("TRACKLOG_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
MYSQL_ADMIN = os.environ.get("TRACKLOG_TEST_MYSQL_URL", "mysql+pymysql://root@127.0.0.1:3306/test")
BACKENDS = ["sqlite", "postgresql", "mysql"]


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    with private_database(PG_ADMIN, "postgresql") as url:
        yield url


@pytest.fixture(scope="session")
def mysql_url() -> Iterator[str]:
    with private_database(MYSQL_ADMIN, "mysql") as url:
        yield url


def _url_for(request: pytest.FixtureRequest, backend: str) -> str:
    return request.getfixturevalue("pg_url" if backend == "postgresql" else "mysql_url")


@pytest.fixture(scope="session")
def _server_stores(request: pytest.FixtureRequest) -> Iterator[dict[str, SqlTrackingStore]]:
    stores: dict[str, SqlTrackingStore] = {}
    yield stores
    for store in stores.values():
        store.close()


def reset(store: SqlTrackingStore) -> None:
    """Empty every table (children first) and put the Default experiment back.

    DELETE, not TRUNCATE: on tables this small it is many times faster on PostgreSQL.
    """
    with store.db.write() as conn:
        for table in reversed(ALL_TABLES):
            conn.execute(table.delete())
    store._ensure_default_experiment()


@pytest.fixture(scope="session")
def _sqlite_template(tmp_path_factory) -> Path:
    """A SQLite database at head, migrated once; each test gets a copy."""
    path = tmp_path_factory.mktemp("sqlite-template") / "template.db"
    SqlTrackingStore(f"sqlite:///{path}", "mlflow-artifacts:/").close()
    return path


def make_store(
    request: pytest.FixtureRequest, backend: str, tmp_path, root: str = "mlflow-artifacts:/"
) -> SqlTrackingStore:
    if backend == "sqlite":
        db = tmp_path / "tracklog.db"
        shutil.copyfile(request.getfixturevalue("_sqlite_template"), db)
        return SqlTrackingStore(f"sqlite:///{db}", root)
    cache = request.getfixturevalue("_server_stores")
    store = cache.get(backend)
    if store is None:
        store = cache[backend] = SqlTrackingStore(_url_for(request, backend), root)
    reset(store)
    return store


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def store(request: pytest.FixtureRequest, backend: str, tmp_path) -> Iterator[SqlTrackingStore]:
    s = make_store(request, backend, tmp_path)
    yield s
    if backend == "sqlite":
        s.close()


@pytest.fixture
def server_url(request: pytest.FixtureRequest, backend: str, tmp_path) -> str:
    """A database URL of the backend (SQLite: a new file)."""
    if backend == "sqlite":
        return f"sqlite:///{tmp_path}/tracklog.db"
    return _url_for(request, backend)


@pytest.fixture
def fresh_url(backend: str, tmp_path) -> Iterator[str]:
    """An empty database of its own, for tests that build schemas from scratch."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path}/fresh.db"
        return
    with private_database(PG_ADMIN if backend == "postgresql" else MYSQL_ADMIN, backend) as url:
        yield url
