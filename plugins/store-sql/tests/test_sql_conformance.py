"""The tracking-store conformance kit against SQLite, PostgreSQL and MariaDB.

The ``store`` fixture comes from this folder's conftest.py: parametrized over the three
backends, a fresh SQLite file per test, or the session's private PostgreSQL / MariaDB
database emptied between tests.
"""

from __future__ import annotations

import pytest

from tracklog.testing.tracking import StoreRequirements, TrackingStoreConformance
from tracklog_store_sql.store import SqlTrackingStore


class TestSqlStoreConformance(TrackingStoreConformance):
    requirements = StoreRequirements(integer_experiment_ids=True, model_registry=True)

    @pytest.fixture
    def reopen(self, store: SqlTrackingStore):
        """A second store (its own engine and connections) on the same database."""
        return lambda: SqlTrackingStore(store.store_uri, store.default_artifact_root)
