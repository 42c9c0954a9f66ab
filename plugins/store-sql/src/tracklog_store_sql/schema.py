"""The schema at head, as SQLAlchemy Core tables (the migrations build exactly this).

Column sizes follow MLflow's limits ("Input limits" in docs/protocol.md). On MySQL/MariaDB
every table is ``utf8mb4`` with the binary collation so that keys, ``=`` and ``LIKE`` are
case-sensitive as MLflow's semantics require. Tables with composite primary keys that are
scanned by key prefix are ``WITHOUT ROWID`` on SQLite (one B-tree instead of two: faster
writes and ordered history reads).
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import mssql, mysql

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = sa.MetaData(naming_convention=NAMING)

#: Table options every table gets (ignored by other dialects).
MYSQL_OPTS: dict[str, Any] = {
    "mysql_charset": "utf8mb4",
    "mysql_collate": "utf8mb4_bin",
    "mysql_engine": "InnoDB",
    # SQLAlchemy's MariaDB dialect reads only its own prefix.
    "mariadb_charset": "utf8mb4",
    "mariadb_collate": "utf8mb4_bin",
    "mariadb_engine": "InnoDB",
}
NO_ROWID: dict[str, Any] = {"sqlite_with_rowid": False}

#: Long text: TEXT; MEDIUMTEXT on MySQL (its TEXT holds 64 KB); VARCHAR(max) on MSSQL.
LongText = (
    sa.Text()
    .with_variant(mysql.MEDIUMTEXT(), "mysql", "mariadb")
    .with_variant(mssql.VARCHAR(), "mssql")
)

PARAM_VALUE_MAX = 6000
TAG_VALUE_MAX = 8000
KEY_MAX = 250

experiments = sa.Table(
    "experiments",
    metadata,
    sa.Column("experiment_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(500), nullable=False, unique=True),
    sa.Column("artifact_location", sa.String(2048)),
    sa.Column("lifecycle_stage", sa.String(32), nullable=False),
    sa.Column("creation_time", sa.BigInteger),
    sa.Column("last_update_time", sa.BigInteger),
    **MYSQL_OPTS,
)

experiment_tags = sa.Table(
    "experiment_tags",
    metadata,
    sa.Column(
        "experiment_id",
        sa.Integer,
        sa.ForeignKey("experiments.experiment_id"),
        primary_key=True,
    ),
    sa.Column("key", sa.String(KEY_MAX), primary_key=True),
    sa.Column("value", LongText),
    **MYSQL_OPTS,
)

runs = sa.Table(
    "runs",
    metadata,
    sa.Column("run_uuid", sa.String(32), primary_key=True),
    sa.Column("name", sa.String(250)),
    sa.Column("user_id", sa.String(256)),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("start_time", sa.BigInteger),
    sa.Column("end_time", sa.BigInteger),
    sa.Column("deleted_time", sa.BigInteger),
    sa.Column("lifecycle_stage", sa.String(20), nullable=False),
    sa.Column("artifact_uri", sa.String(2048)),
    sa.Column(
        "experiment_id", sa.Integer, sa.ForeignKey("experiments.experiment_id"), nullable=False
    ),
    sa.Index("ix_runs_experiment_stage_start", "experiment_id", "lifecycle_stage", "start_time"),
    **MYSQL_OPTS,
)


def _run_fk() -> sa.Column:
    return sa.Column("run_uuid", sa.String(32), sa.ForeignKey("runs.run_uuid"), primary_key=True)


tags = sa.Table(
    "tags",
    metadata,
    _run_fk(),
    sa.Column("key", sa.String(KEY_MAX), primary_key=True),
    sa.Column("value", sa.String(TAG_VALUE_MAX)),
    **MYSQL_OPTS,
    **NO_ROWID,
)

params = sa.Table(
    "params",
    metadata,
    _run_fk(),
    sa.Column("key", sa.String(KEY_MAX), primary_key=True),
    sa.Column("value", sa.String(PARAM_VALUE_MAX), nullable=False),
    **MYSQL_OPTS,
    **NO_ROWID,
)

# One row per (run, key): history points reference it by integer, so a point is about
# half the size it would be if it repeated the run id and the key (bulk inserts and long
# history reads are bound by row size).
metric_series = sa.Table(
    "metric_series",
    metadata,
    sa.Column("series_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("run_uuid", sa.String(32), sa.ForeignKey("runs.run_uuid"), nullable=False),
    sa.Column("key", sa.String(KEY_MAX), nullable=False),
    sa.UniqueConstraint("run_uuid", "key"),
    **MYSQL_OPTS,
)

# The primary key doubles as the history index: the series, then the history order.
# No foreign key on series_id: PostgreSQL checks one with a trigger per row, which doubled
# the cost of a bulk insert. The store only writes ids it read from metric_series (in the
# same transaction, or committed earlier), and series rows are never deleted.
metric_points = sa.Table(
    "metric_points",
    metadata,
    sa.Column("series_id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("timestamp", sa.BigInteger, primary_key=True),
    sa.Column("step", sa.BigInteger, primary_key=True),
    sa.Column("value", sa.Double, primary_key=True),
    sa.Column("is_nan", sa.Boolean, primary_key=True),
    **MYSQL_OPTS,
    **NO_ROWID,
)

latest_metrics = sa.Table(
    "latest_metrics",
    metadata,
    _run_fk(),
    sa.Column("key", sa.String(KEY_MAX), primary_key=True),
    sa.Column("value", sa.Double, nullable=False),
    sa.Column("timestamp", sa.BigInteger, nullable=False),
    sa.Column("step", sa.BigInteger, nullable=False),
    sa.Column("is_nan", sa.Boolean, nullable=False),
    sa.Index("ix_latest_metrics_key_value", "key", "value"),
    **MYSQL_OPTS,
    **NO_ROWID,
)

datasets = sa.Table(
    "datasets",
    metadata,
    sa.Column("dataset_uuid", sa.String(36), primary_key=True),
    sa.Column(
        "experiment_id", sa.Integer, sa.ForeignKey("experiments.experiment_id"), nullable=False
    ),
    sa.Column("name", sa.String(500), nullable=False),
    sa.Column("digest", sa.String(36), nullable=False),
    sa.Column("dataset_source_type", sa.String(36), nullable=False),
    sa.Column("dataset_source", LongText, nullable=False),
    sa.Column("dataset_schema", LongText),
    sa.Column("dataset_profile", LongText),
    sa.UniqueConstraint("experiment_id", "name", "digest"),
    **MYSQL_OPTS,
)

# A link "source -> destination": a dataset (or logged model) consumed by a run.
inputs = sa.Table(
    "inputs",
    metadata,
    sa.Column("input_uuid", sa.String(36), primary_key=True),
    sa.Column("source_type", sa.String(36), nullable=False),
    sa.Column("source_id", sa.String(36), nullable=False),
    sa.Column("destination_type", sa.String(36), nullable=False),
    sa.Column("destination_id", sa.String(36), nullable=False),
    sa.UniqueConstraint("source_type", "source_id", "destination_type", "destination_id"),
    sa.Index("ix_inputs_destination", "destination_type", "destination_id"),
    **MYSQL_OPTS,
)

input_tags = sa.Table(
    "input_tags",
    metadata,
    sa.Column("input_uuid", sa.String(36), sa.ForeignKey("inputs.input_uuid"), primary_key=True),
    sa.Column("name", sa.String(255), primary_key=True),
    sa.Column("value", sa.String(500), nullable=False),
    **MYSQL_OPTS,
)

# --- revision 2: logged models, run outputs, model registry ---------------------------

logged_models = sa.Table(
    "logged_models",
    metadata,
    sa.Column("model_id", sa.String(40), primary_key=True),
    sa.Column(
        "experiment_id", sa.Integer, sa.ForeignKey("experiments.experiment_id"), nullable=False
    ),
    sa.Column("name", sa.String(500), nullable=False),
    sa.Column("artifact_location", sa.String(2048), nullable=False),
    sa.Column("creation_timestamp", sa.BigInteger, nullable=False),
    sa.Column("last_updated_timestamp", sa.BigInteger, nullable=False),
    sa.Column("status", sa.String(40), nullable=False),
    sa.Column("lifecycle_stage", sa.String(20), nullable=False),
    sa.Column("model_type", sa.String(500)),
    sa.Column("source_run_id", sa.String(32)),
    sa.Column("status_message", sa.String(1000)),
    sa.Index("ix_logged_models_experiment_created", "experiment_id", "creation_timestamp"),
    **MYSQL_OPTS,
)

logged_model_tags = sa.Table(
    "logged_model_tags",
    metadata,
    sa.Column("model_id", sa.String(40), sa.ForeignKey("logged_models.model_id"), primary_key=True),
    sa.Column("key", sa.String(KEY_MAX), primary_key=True),
    sa.Column("value", LongText, nullable=False),
    **MYSQL_OPTS,
)

logged_model_params = sa.Table(
    "logged_model_params",
    metadata,
    sa.Column("model_id", sa.String(40), sa.ForeignKey("logged_models.model_id"), primary_key=True),
    sa.Column("key", sa.String(KEY_MAX), primary_key=True),
    sa.Column("value", LongText, nullable=False),
    **MYSQL_OPTS,
)

logged_model_metrics = sa.Table(
    "logged_model_metrics",
    metadata,
    sa.Column("model_id", sa.String(40), sa.ForeignKey("logged_models.model_id"), primary_key=True),
    sa.Column("key", sa.String(KEY_MAX), primary_key=True),
    sa.Column("timestamp", sa.BigInteger, primary_key=True),
    sa.Column("step", sa.BigInteger, primary_key=True),
    sa.Column("run_uuid", sa.String(32), primary_key=True),
    sa.Column("value", sa.Double, nullable=False),
    sa.Column("is_nan", sa.Boolean, nullable=False),
    sa.Column("dataset_name", sa.String(500)),
    sa.Column("dataset_digest", sa.String(36)),
    **MYSQL_OPTS,
)

run_outputs = sa.Table(
    "run_outputs",
    metadata,
    _run_fk(),
    sa.Column("model_id", sa.String(40), sa.ForeignKey("logged_models.model_id"), primary_key=True),
    sa.Column("step", sa.BigInteger, nullable=False),
    **MYSQL_OPTS,
)

registered_models = sa.Table(
    "registered_models",
    metadata,
    sa.Column("name", sa.String(256), primary_key=True),
    sa.Column("creation_time", sa.BigInteger),
    sa.Column("last_updated_time", sa.BigInteger),
    sa.Column("description", sa.String(5000)),
    sa.Column("user_id", sa.String(256)),
    **MYSQL_OPTS,
)


def _rm_fk() -> sa.Column:
    return sa.Column(
        "name",
        sa.String(256),
        sa.ForeignKey("registered_models.name", onupdate="CASCADE", ondelete="CASCADE"),
        primary_key=True,
    )


registered_model_tags = sa.Table(
    "registered_model_tags",
    metadata,
    _rm_fk(),
    sa.Column("key", sa.String(KEY_MAX), primary_key=True),
    sa.Column("value", LongText),
    **MYSQL_OPTS,
)

model_versions = sa.Table(
    "model_versions",
    metadata,
    _rm_fk(),
    sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("creation_time", sa.BigInteger),
    sa.Column("last_updated_time", sa.BigInteger),
    sa.Column("description", sa.String(5000)),
    sa.Column("user_id", sa.String(256)),
    sa.Column("current_stage", sa.String(20)),
    sa.Column("source", sa.String(2048)),
    sa.Column("run_id", sa.String(32)),
    sa.Column("run_link", sa.String(500)),
    sa.Column("status", sa.String(20)),
    sa.Column("status_message", sa.String(500)),
    sa.Column("model_id", sa.String(40)),
    **MYSQL_OPTS,
)

model_version_tags = sa.Table(
    "model_version_tags",
    metadata,
    sa.Column("name", sa.String(256), primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("key", sa.String(KEY_MAX), primary_key=True),
    sa.Column("value", LongText),
    sa.ForeignKeyConstraint(
        ["name", "version"],
        ["model_versions.name", "model_versions.version"],
        onupdate="CASCADE",
        ondelete="CASCADE",
    ),
    **MYSQL_OPTS,
)

registered_model_aliases = sa.Table(
    "registered_model_aliases",
    metadata,
    _rm_fk(),
    sa.Column("alias", sa.String(256), primary_key=True),
    sa.Column("version", sa.Integer, nullable=False),
    **MYSQL_OPTS,
)

# --- revision 4: traces ---------------------------------------------------------------

TRACE_ID_MAX = 64
PREVIEW_MAX = 1000

trace_info = sa.Table(
    "trace_info",
    metadata,
    sa.Column("request_id", sa.String(TRACE_ID_MAX), primary_key=True),
    sa.Column(
        "experiment_id", sa.Integer, sa.ForeignKey("experiments.experiment_id"), nullable=False
    ),
    sa.Column("timestamp_ms", sa.BigInteger, nullable=False),
    sa.Column("execution_time_ms", sa.BigInteger),
    sa.Column("status", sa.String(50), nullable=False),
    sa.Column("client_request_id", sa.String(250)),
    sa.Column("request_preview", sa.String(PREVIEW_MAX)),
    sa.Column("response_preview", sa.String(PREVIEW_MAX)),
    sa.Index("ix_trace_info_experiment_timestamp", "experiment_id", "timestamp_ms"),
    **MYSQL_OPTS,
)


def _trace_fk() -> sa.Column:
    return sa.Column(
        "request_id",
        sa.String(TRACE_ID_MAX),
        sa.ForeignKey("trace_info.request_id", ondelete="CASCADE"),
        primary_key=True,
    )


trace_tags = sa.Table(
    "trace_tags",
    metadata,
    _trace_fk(),
    sa.Column("key", sa.String(KEY_MAX), primary_key=True),
    sa.Column("value", sa.String(TAG_VALUE_MAX)),
    **MYSQL_OPTS,
)

trace_request_metadata = sa.Table(
    "trace_request_metadata",
    metadata,
    _trace_fk(),
    sa.Column("key", sa.String(KEY_MAX), primary_key=True),
    sa.Column("value", sa.String(TAG_VALUE_MAX)),
    **MYSQL_OPTS,
)

# Runs a trace was linked to after the fact (the run it was recorded in is the metadata
# mlflow.sourceRun). No foreign key to runs: a run is never removed, only marked deleted.
trace_run_links = sa.Table(
    "trace_run_links",
    metadata,
    _trace_fk(),
    sa.Column("run_uuid", sa.String(32), primary_key=True),
    sa.Index("ix_trace_run_links_run_uuid", "run_uuid"),
    **MYSQL_OPTS,
)

assessments = sa.Table(
    "assessments",
    metadata,
    sa.Column("assessment_id", sa.String(50), primary_key=True),
    sa.Column(
        "trace_id",
        sa.String(TRACE_ID_MAX),
        sa.ForeignKey("trace_info.request_id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("name", sa.String(KEY_MAX), nullable=False),
    sa.Column("kind", sa.String(20), nullable=False),
    # The feedback / expectation object as JSON text, kept verbatim.
    sa.Column("value", LongText, nullable=False),
    sa.Column("source_type", sa.String(50), nullable=False),
    sa.Column("source_id", sa.String(250), nullable=False),
    sa.Column("span_id", sa.String(50)),
    sa.Column("rationale", LongText),
    # A JSON object of strings.
    sa.Column("metadata", LongText),
    sa.Column("overrides", sa.String(50)),
    sa.Column("valid", sa.Boolean, nullable=False),
    sa.Column("create_time", sa.BigInteger, nullable=False),
    sa.Column("last_update_time", sa.BigInteger, nullable=False),
    sa.Index("ix_assessments_trace_id", "trace_id"),
    **MYSQL_OPTS,
)

#: Tables in dependency order (parents first); used to empty a database in tests.
ALL_TABLES = list(metadata.sorted_tables)
