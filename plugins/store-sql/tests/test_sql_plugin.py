"""The plugin surface: registration without heavy imports, URI schemes, environment
settings, SQLite connection settings and password hygiene."""

from __future__ import annotations

import subprocess
import sys

import pytest
import sqlalchemy as sa

from tracklog.entities import Metric
from tracklog.errors import TracklogError
from tracklog.plugins import load_plugins, resolve_store, tracking_store_factory
from tracklog.stores import registry_of
from tracklog_store_sql import db as dbmod
from tracklog_store_sql.plugin import create_store


def test_plugin_module_does_not_import_sqlalchemy():
    code = (
        "import sys, tracklog_store_sql.plugin\n"
        "heavy = [m for m in ('sqlalchemy', 'alembic') if m in sys.modules]\n"
        "print(heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize(
    "uri",
    [
        "sqlite:///x.db",
        "postgresql://h/db",
        "postgresql+psycopg2://h/db",
        "mysql+pymysql://h/db",
        "mariadb+pymysql://h/db",
        "mssql+pyodbc://h/db",
        "mssql+pymssql://h/db",
    ],
)
def test_schemes_resolve_to_the_factory(uri):
    load_plugins()
    assert tracking_store_factory(uri) is create_store


def test_resolve_store_default_sqlite(tmp_path):
    load_plugins()
    store = resolve_store(f"sqlite:///{tmp_path}/tracklog.db", "mlflow-artifacts:/")
    try:
        assert store.store_type == "SqlStore"
        assert registry_of(store) is store
        assert store.get_experiment("0").name == "Default"
    finally:
        store.close()


def test_sqlite_connection_settings(tmp_path):
    store = create_store(f"sqlite:///{tmp_path}/sub/dir/t.db", None)  # parents are created
    try:
        with store.db.read() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            busy_timeout = conn.exec_driver_sql("PRAGMA busy_timeout").scalar()
            assert busy_timeout is not None and busy_timeout >= 10000
    finally:
        store.close()


def test_in_memory_sqlite_is_shared_between_threads():
    import threading

    store = create_store("sqlite://", "/a")
    eid = store.create_experiment("mem")
    seen = []
    t = threading.Thread(target=lambda: seen.append(store.get_experiment(eid).name))
    t.start()
    t.join()
    assert seen == ["mem"]
    store.close()


def test_pool_settings_from_environment(monkeypatch, pg_url):
    monkeypatch.setenv("MLFLOW_SQLALCHEMYSTORE_POOL_SIZE", "3")
    monkeypatch.setenv("TRACKLOG_SQLALCHEMYSTORE_POOL_SIZE", "7")  # tracklog's spelling wins
    monkeypatch.setenv("MLFLOW_SQLALCHEMYSTORE_MAX_OVERFLOW", "2")
    monkeypatch.setenv("MLFLOW_SQLALCHEMYSTORE_POOL_RECYCLE", "300")
    store = create_store(pg_url, "/a")
    try:
        pool = store.db.engine.pool
        assert isinstance(pool, sa.pool.QueuePool)
        assert pool.size() == 7
        assert pool._max_overflow == 2
        assert pool._recycle == 300
    finally:
        store.close()
    monkeypatch.setenv("MLFLOW_SQLALCHEMYSTORE_POOL_SIZE", "many")
    monkeypatch.delenv("TRACKLOG_SQLALCHEMYSTORE_POOL_SIZE")
    with pytest.raises(TracklogError, match="MLFLOW_SQLALCHEMYSTORE_POOL_SIZE"):
        create_store(pg_url, "/a")


def test_mysql_tls_and_charset(monkeypatch, tmp_path):
    monkeypatch.setenv("MLFLOW_MYSQL_SSL_CA", "/etc/ca.pem")
    monkeypatch.setenv("MLFLOW_MYSQL_SSL_CERT", "/etc/cert.pem")
    monkeypatch.setenv("MLFLOW_MYSQL_SSL_KEY", "/etc/key.pem")
    engine = dbmod.create_engine("mysql://u:pw@127.0.0.1:1/db")  # driver defaults to PyMySQL
    try:
        assert engine.url.drivername == "mysql+pymysql"
        assert engine.url.query["charset"] == "utf8mb4"
        captured: dict = {}

        @sa.event.listens_for(engine, "do_connect")
        def capture(dialect, record, cargs, cparams):
            captured.update(cparams)
            raise ConnectionAbortedError("captured; no TLS server here")

        with pytest.raises(Exception, match="captured"):
            engine.connect()
        assert captured["ssl"] == {
            "ca": "/etc/ca.pem",
            "cert": "/etc/cert.pem",
            "key": "/etc/key.pem",
        }
        assert captured["charset"] == "utf8mb4"
    finally:
        engine.dispose()


def test_mariadb_scheme_works(mysql_url):
    store = create_store(mysql_url.replace("mysql+pymysql://", "mariadb://", 1), "/a")
    try:
        assert store.dialect == "mariadb"
        run = store.create_run("0", "u", 0).info.run_id
        store.log_batch(run, metrics=[Metric("m", 1.0, 1), Metric("m", 1.0, 1)])
        assert len(store.get_metric_history(run, "m")) == 1
    finally:
        store.close()


def test_passwords_never_shown():
    assert dbmod.redact("postgresql://bob:hunter2@db:5432/x") == "postgresql://bob:***@db:5432/x"
    with pytest.raises(TracklogError) as err:
        create_store("postgresql://bob:hunter2@127.0.0.1:1/x", "/a")
    assert "hunter2" not in err.value.message
    assert "bob:***@127.0.0.1:1/x" in err.value.message
    with pytest.raises(TracklogError) as err:
        create_store("postgresql+psycopg2://bob:hunter2@127.0.0.1/x", "/a")
    if "not installed" in err.value.message:  # psycopg2 is not part of the dev venv
        assert "tracklog-store-sql[postgres]" in err.value.message
    assert "hunter2" not in err.value.message
    store = create_store("sqlite://", "/a")
    assert "SqlTrackingStore('sqlite://')" == repr(store)
    store.close()


def test_unversioned_foreign_database_refused(tmp_path):
    path = tmp_path / "foreign.db"
    engine = sa.create_engine(f"sqlite:///{path}")
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE experiments (experiment_id INTEGER PRIMARY KEY)")
    engine.dispose()
    with pytest.raises(TracklogError, match="not created by tracklog"):
        create_store(f"sqlite:///{path}", "/a")


def test_postgresql_psycopg2_uri_when_installed(pg_url):
    pytest.importorskip("psycopg2", reason="psycopg2 is not installed in this environment")

    url = pg_url.replace("postgresql://", "postgresql+psycopg2://", 1)
    store = create_store(url, "/a")
    try:
        run = store.create_run("0", "u", 0).info.run_id
        store.log_batch(run, metrics=[Metric("m", float(i), i, i) for i in range(50)])
        assert len(store.get_metric_history(run, "m")) == 50
    finally:
        store.close()


def test_transient_errors_are_recognised():
    """Stand-in driver errors (labelled fake: a deadlock cannot be produced on demand)
    carrying the real PostgreSQL / MySQL codes that make log_batch rerun its transaction."""

    class Orig(Exception):
        def __init__(self, code):
            super().__init__(code)
            self.sqlstate = code if isinstance(code, str) else None

    deadlock = sa.exc.OperationalError("stmt", {}, Orig("40P01"))
    mysql_deadlock = sa.exc.OperationalError("stmt", {}, Orig(1213))
    other = sa.exc.IntegrityError("stmt", {}, Orig("23505"))
    assert dbmod.is_transient(deadlock) and dbmod.is_transient(mysql_deadlock)
    assert not dbmod.is_transient(other)


def test_busy_pool_keeps_its_connections(pg_url):
    """Thirty threads reading at once from a pool of twenty: the connections opened are
    kept and reused, never closed on return and opened again for the next read."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    store = create_store(pg_url, "/a")
    opened: list[int] = []
    closed: list[int] = []
    sa.event.listen(store.db.engine, "connect", lambda *_args: opened.append(1))
    sa.event.listen(store.db.engine.pool, "close", lambda *_args: closed.append(1))
    barrier = threading.Barrier(30)

    def read(_: int) -> None:
        barrier.wait(30)
        for _ in range(20):
            assert store.get_experiment("0").name == "Default"

    try:
        with ThreadPoolExecutor(30) as pool:
            list(pool.map(read, range(30)))
        assert 0 < len(opened) < 20  # one was opened with the store
        assert closed == []
        connections = store.db.engine.pool
        assert isinstance(connections, sa.pool.QueuePool)
        assert connections.checkedin() == len(opened) + 1
    finally:
        store.close()
