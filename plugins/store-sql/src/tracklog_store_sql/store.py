"""SqlTrackingStore: the TrackingStore and ModelRegistryStore contracts on SQLAlchemy Core.

The class is composed of one mixin per section of the contracts (experiments.py,
runs.py, metrics.py, batch.py, inputs.py, logged_models.py, registry.py) and of the
optional capabilities (traces.py, sampling.py, importing.py, purging.py); what the
sections share (row-to-entity conversions, lookups) is in rows.py, which they import
instead of each other. Mixins rather than delegation: every public method is the
section's own function found on the class, with no forwarding call or second object on
the hot paths (log_batch, get_run, get_metric_history), and the sections share the
store's state (``db``, ``dialect``, the series-id cache) as plain attributes.
"""

from __future__ import annotations

import os

import sqlalchemy as sa

from tracklog import errors
from tracklog.stores import (
    EncodedRunSearch,
    ModelRegistryStore,
    QueuedWrites,
    TraceStore,
    TrackingStore,
)
from tracklog_store_sql import db as dbmod
from tracklog_store_sql import revisions
from tracklog_store_sql.batch import BatchMixin
from tracklog_store_sql.experiments import ExperimentsMixin
from tracklog_store_sql.importing import ImportMixin
from tracklog_store_sql.inputs import InputsMixin
from tracklog_store_sql.logged_models import LoggedModelsMixin
from tracklog_store_sql.metrics import MetricsMixin
from tracklog_store_sql.model_versions import ModelVersionsMixin
from tracklog_store_sql.purging import PurgeMixin
from tracklog_store_sql.runs import RunsMixin
from tracklog_store_sql.sampling import SamplingMixin
from tracklog_store_sql.traces import TracesMixin


class SqlTrackingStore(
    ExperimentsMixin,
    RunsMixin,
    BatchMixin,
    MetricsMixin,
    InputsMixin,
    LoggedModelsMixin,
    ModelVersionsMixin,
    TracesMixin,
    SamplingMixin,
    ImportMixin,
    PurgeMixin,
    TrackingStore,
    ModelRegistryStore,
    TraceStore,
    QueuedWrites,
    EncodedRunSearch,
):
    """A tracking store (with model registry and traces) in a SQL database."""

    store_type = "SqlStore"

    def __init__(self, store_uri: str, default_artifact_root: str | None = None) -> None:
        if default_artifact_root is None:
            default_artifact_root = os.path.abspath("tracklog-artifacts")
        self.store_uri = store_uri
        self.default_artifact_root = default_artifact_root
        self.db = dbmod.Database(store_uri)
        # On SQLite a small write is made on the caller's thread when nothing else writes,
        # and a point read answered on the server's event loop when it waits for nothing.
        self.writes_now = self.db.queues_writes
        self.reads_now = self.db.reads_now
        try:
            revisions.ensure_schema(self.db)
            self._ensure_default_experiment()
            self.db.opened = True
        except errors.TracklogError:
            self.db.dispose()
            raise
        except sa.exc.SQLAlchemyError as exc:
            self.db.dispose()
            cause = exc.orig if isinstance(exc, sa.exc.DBAPIError) else exc
            raise errors.TracklogError(
                f"Cannot open the database {dbmod.redact(store_uri)!r}: "
                f"{type(cause).__name__}: {dbmod.scrub(str(cause).strip(), store_uri)}"
            ) from None
        self.dialect = self.db.dialect
        # (run_id, key) -> series id. Series rows are only inserted, and deleted only with
        # their run by gc; run ids are not reused, so an id once committed stays right
        # for every process.
        self._series_cache: dict[tuple[str, str], int] = {}
        self._artifact_locations: dict[int, str] = {}

    def __repr__(self) -> str:
        return f"SqlTrackingStore({dbmod.redact(self.store_uri)!r})"

    def close(self) -> None:
        self.db.dispose()
