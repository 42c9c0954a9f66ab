"""Initial schema: experiments, runs, params, metrics, tags, datasets and inputs.

Revision ID: 0001_initial
Revises:
"""

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mssql, mysql

revision = "0001_initial"
down_revision = None
branch_labels = None
depends_on = None

OPTS: dict[str, Any] = {
    "mysql_charset": "utf8mb4",
    "mysql_collate": "utf8mb4_bin",
    "mysql_engine": "InnoDB",
    # SQLAlchemy's MariaDB dialect reads only its own prefix.
    "mariadb_charset": "utf8mb4",
    "mariadb_collate": "utf8mb4_bin",
    "mariadb_engine": "InnoDB",
}
NO_ROWID: dict[str, Any] = {"sqlite_with_rowid": False}
LongText = (
    sa.Text()
    .with_variant(mysql.MEDIUMTEXT(), "mysql", "mariadb")
    .with_variant(mssql.VARCHAR(), "mssql")
)


def upgrade() -> None:
    op.create_table(
        "experiments",
        sa.Column("experiment_id", sa.Integer, nullable=False, autoincrement=True),
        sa.Column("name", sa.String(500), nullable=False),
        sa.Column("artifact_location", sa.String(2048)),
        sa.Column("lifecycle_stage", sa.String(32), nullable=False),
        sa.Column("creation_time", sa.BigInteger),
        sa.Column("last_update_time", sa.BigInteger),
        sa.PrimaryKeyConstraint("experiment_id", name="pk_experiments"),
        sa.UniqueConstraint("name", name="uq_experiments_name"),
        **OPTS,
    )
    op.create_table(
        "experiment_tags",
        sa.Column("experiment_id", sa.Integer, nullable=False),
        sa.Column("key", sa.String(250), nullable=False),
        sa.Column("value", LongText),
        sa.PrimaryKeyConstraint("experiment_id", "key", name="pk_experiment_tags"),
        sa.ForeignKeyConstraint(
            ["experiment_id"],
            ["experiments.experiment_id"],
            name="fk_experiment_tags_experiment_id_experiments",
        ),
        **OPTS,
    )
    op.create_table(
        "runs",
        sa.Column("run_uuid", sa.String(32), nullable=False),
        sa.Column("name", sa.String(250)),
        sa.Column("user_id", sa.String(256)),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("start_time", sa.BigInteger),
        sa.Column("end_time", sa.BigInteger),
        sa.Column("deleted_time", sa.BigInteger),
        sa.Column("lifecycle_stage", sa.String(20), nullable=False),
        sa.Column("artifact_uri", sa.String(2048)),
        sa.Column("experiment_id", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("run_uuid", name="pk_runs"),
        sa.ForeignKeyConstraint(
            ["experiment_id"],
            ["experiments.experiment_id"],
            name="fk_runs_experiment_id_experiments",
        ),
        **OPTS,
    )
    op.create_index(
        "ix_runs_experiment_stage_start", "runs", ["experiment_id", "lifecycle_stage", "start_time"]
    )
    for table, value in (
        ("tags", sa.Column("value", sa.String(8000))),
        ("params", sa.Column("value", sa.String(6000), nullable=False)),
    ):
        op.create_table(
            table,
            sa.Column("run_uuid", sa.String(32), nullable=False),
            sa.Column("key", sa.String(250), nullable=False),
            value,
            sa.PrimaryKeyConstraint("run_uuid", "key", name=f"pk_{table}"),
            sa.ForeignKeyConstraint(
                ["run_uuid"], ["runs.run_uuid"], name=f"fk_{table}_run_uuid_runs"
            ),
            **OPTS,
            **NO_ROWID,
        )
    op.create_table(
        "metrics",
        sa.Column("run_uuid", sa.String(32), nullable=False),
        sa.Column("key", sa.String(250), nullable=False),
        sa.Column("timestamp", sa.BigInteger, nullable=False),
        sa.Column("step", sa.BigInteger, nullable=False),
        sa.Column("value", sa.Double, nullable=False),
        sa.Column("is_nan", sa.Boolean, nullable=False),
        sa.PrimaryKeyConstraint(
            "run_uuid", "key", "timestamp", "step", "value", "is_nan", name="pk_metrics"
        ),
        sa.ForeignKeyConstraint(["run_uuid"], ["runs.run_uuid"], name="fk_metrics_run_uuid_runs"),
        **OPTS,
        **NO_ROWID,
    )
    op.create_table(
        "latest_metrics",
        sa.Column("run_uuid", sa.String(32), nullable=False),
        sa.Column("key", sa.String(250), nullable=False),
        sa.Column("value", sa.Double, nullable=False),
        sa.Column("timestamp", sa.BigInteger, nullable=False),
        sa.Column("step", sa.BigInteger, nullable=False),
        sa.Column("is_nan", sa.Boolean, nullable=False),
        sa.PrimaryKeyConstraint("run_uuid", "key", name="pk_latest_metrics"),
        sa.ForeignKeyConstraint(
            ["run_uuid"], ["runs.run_uuid"], name="fk_latest_metrics_run_uuid_runs"
        ),
        **OPTS,
        **NO_ROWID,
    )
    op.create_index("ix_latest_metrics_key_value", "latest_metrics", ["key", "value"])
    op.create_table(
        "datasets",
        sa.Column("dataset_uuid", sa.String(36), nullable=False),
        sa.Column("experiment_id", sa.Integer, nullable=False),
        sa.Column("name", sa.String(500), nullable=False),
        sa.Column("digest", sa.String(36), nullable=False),
        sa.Column("dataset_source_type", sa.String(36), nullable=False),
        sa.Column("dataset_source", LongText, nullable=False),
        sa.Column("dataset_schema", LongText),
        sa.Column("dataset_profile", LongText),
        sa.PrimaryKeyConstraint("dataset_uuid", name="pk_datasets"),
        sa.UniqueConstraint(
            "experiment_id", "name", "digest", name="uq_datasets_experiment_id_name_digest"
        ),
        sa.ForeignKeyConstraint(
            ["experiment_id"],
            ["experiments.experiment_id"],
            name="fk_datasets_experiment_id_experiments",
        ),
        **OPTS,
    )
    op.create_table(
        "inputs",
        sa.Column("input_uuid", sa.String(36), nullable=False),
        sa.Column("source_type", sa.String(36), nullable=False),
        sa.Column("source_id", sa.String(36), nullable=False),
        sa.Column("destination_type", sa.String(36), nullable=False),
        sa.Column("destination_id", sa.String(36), nullable=False),
        sa.PrimaryKeyConstraint("input_uuid", name="pk_inputs"),
        sa.UniqueConstraint(
            "source_type",
            "source_id",
            "destination_type",
            "destination_id",
            name="uq_inputs_source_type_source_id_destination_type_destination_id",
        ),
        **OPTS,
    )
    op.create_index("ix_inputs_destination", "inputs", ["destination_type", "destination_id"])
    op.create_table(
        "input_tags",
        sa.Column("input_uuid", sa.String(36), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("value", sa.String(500), nullable=False),
        sa.PrimaryKeyConstraint("input_uuid", "name", name="pk_input_tags"),
        sa.ForeignKeyConstraint(
            ["input_uuid"], ["inputs.input_uuid"], name="fk_input_tags_input_uuid_inputs"
        ),
        **OPTS,
    )
