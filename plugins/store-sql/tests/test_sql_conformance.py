"""The tracking-store conformance kit against SQLite, PostgreSQL and MariaDB.

The ``store`` fixture comes from this folder's conftest.py: parametrized over the three
backends, a fresh SQLite file per test, or the session's private PostgreSQL / MariaDB
database emptied between tests.
"""

from __future__ import annotations

from tracklog.testing.tracking import StoreRequirements, TrackingStoreConformance


class TestSqlStoreConformance(TrackingStoreConformance):
    requirements = StoreRequirements(integer_experiment_ids=True, model_registry=True)
