"""A database that goes away under a running store: 503s the client retries, then recovery.

Real PostgreSQL: the store's private database stops accepting connections and its
sessions are terminated, as during a restart; the pool's pre-ping finds them dead and
every new connection is refused.
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from tracklog.errors import ErrorCode, TracklogError
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
