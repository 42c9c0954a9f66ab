"""A database that goes away under a running store: 503s the client retries, then recovery.

Real PostgreSQL: the store's private database stops accepting connections and its
sessions are terminated, as during a restart; the pool finds them dead and
every new connection is refused.
"""

from __future__ import annotations

import time

import pytest
import sqlalchemy as sa

from tracklog.errors import ErrorCode, TracklogError
from tracklog_store_sql import pinging
from tracklog_store_sql.store import SqlTrackingStore

from .conftest import PG_ADMIN


def _allow_connections(database: str, allowed: bool) -> None:
    admin = sa.create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(
                f"ALTER DATABASE {database} ALLOW_CONNECTIONS {str(allowed).lower()}")
            if not allowed:
                conn.exec_driver_sql(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    f"WHERE datname = '{database}' AND pid <> pg_backend_pid()")
    finally:
        admin.dispose()


@pytest.mark.parametrize("backend", ["postgresql"])
def test_unreachable_database_answers_503_and_recovers(fresh_url):
    store = SqlTrackingStore(fresh_url, "mlflow-artifacts:/")
    experiment_id = store.create_experiment("before")
    database = sa.make_url(fresh_url).database
    assert database is not None
    _allow_connections(database, False)
    try:
        for call in (lambda: store.get_experiment(experiment_id),
                     lambda: store.create_experiment("during")):
            with pytest.raises(TracklogError) as refused:
                call()
            assert refused.value.error_code == ErrorCode.TEMPORARILY_UNAVAILABLE
            assert refused.value.message.startswith("The database cannot be reached")
    finally:
        _allow_connections(database, True)
    assert store.get_experiment(experiment_id).name == "before"
    assert store.get_experiment_by_name("during") is None
    store.close()


@pytest.mark.parametrize("backend", ["postgresql"])
def test_connections_are_pinged_only_after_sitting_idle(fresh_url, monkeypatch):
    """A connection used moments ago goes straight to work (a ping is a round trip per
    request); one idle for longer is pinged first, and if its session was ended
    meanwhile, replaced without the caller noticing."""
    monkeypatch.setattr(pinging, "PING_AFTER_IDLE_S", 0.3)
    store = SqlTrackingStore(fresh_url, "mlflow-artifacts:/")
    dialect = store.db.engine.dialect
    pings: list[bool] = []
    ping = dialect.do_ping

    def counted(dbapi_conn) -> bool:  # a spy around the real ping
        pings.append(True)
        return ping(dbapi_conn)

    monkeypatch.setattr(dialect, "do_ping", counted)
    experiment_id = store.create_experiment("pinged")
    for _ in range(5):
        assert store.get_experiment(experiment_id).name == "pinged"
    assert pings == []
    time.sleep(0.4)
    database = sa.make_url(fresh_url).database
    assert database is not None
    _allow_connections(database, False)
    _allow_connections(database, True)
    assert store.get_experiment(experiment_id).name == "pinged"
    assert pings == [True]
    store.close()
