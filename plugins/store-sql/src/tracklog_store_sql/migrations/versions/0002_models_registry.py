"""Logged models, run outputs and the model registry.

Revision ID: 0002_models_registry
Revises: 0001_initial
"""

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mssql, mysql

revision = "0002_models_registry"
down_revision = "0001_initial"
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
LongText = (
    sa.Text()
    .with_variant(mysql.MEDIUMTEXT(), "mysql", "mariadb")
    .with_variant(mssql.VARCHAR(), "mssql")
)


def _model_kv(table: str, value_nullable: bool = False) -> None:
    op.create_table(
        table,
        sa.Column("model_id", sa.String(40), nullable=False),
        sa.Column("key", sa.String(250), nullable=False),
        sa.Column("value", LongText, nullable=value_nullable),
        sa.PrimaryKeyConstraint("model_id", "key", name=f"pk_{table}"),
        sa.ForeignKeyConstraint(
            ["model_id"], ["logged_models.model_id"], name=f"fk_{table}_model_id_logged_models"
        ),
        **OPTS,
    )


def _rm_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["name"],
        ["registered_models.name"],
        name=f"fk_{table}_name_registered_models",
        onupdate="CASCADE",
        ondelete="CASCADE",
    )


def upgrade() -> None:
    op.create_table(
        "logged_models",
        sa.Column("model_id", sa.String(40), nullable=False),
        sa.Column("experiment_id", sa.Integer, nullable=False),
        sa.Column("name", sa.String(500), nullable=False),
        sa.Column("artifact_location", sa.String(2048), nullable=False),
        sa.Column("creation_timestamp", sa.BigInteger, nullable=False),
        sa.Column("last_updated_timestamp", sa.BigInteger, nullable=False),
        sa.Column("status", sa.String(40), nullable=False),
        sa.Column("lifecycle_stage", sa.String(20), nullable=False),
        sa.Column("model_type", sa.String(500)),
        sa.Column("source_run_id", sa.String(32)),
        sa.Column("status_message", sa.String(1000)),
        sa.PrimaryKeyConstraint("model_id", name="pk_logged_models"),
        sa.ForeignKeyConstraint(
            ["experiment_id"],
            ["experiments.experiment_id"],
            name="fk_logged_models_experiment_id_experiments",
        ),
        **OPTS,
    )
    op.create_index(
        "ix_logged_models_experiment_created",
        "logged_models",
        ["experiment_id", "creation_timestamp"],
    )
    _model_kv("logged_model_tags")
    _model_kv("logged_model_params")
    op.create_table(
        "logged_model_metrics",
        sa.Column("model_id", sa.String(40), nullable=False),
        sa.Column("key", sa.String(250), nullable=False),
        sa.Column("timestamp", sa.BigInteger, nullable=False),
        sa.Column("step", sa.BigInteger, nullable=False),
        sa.Column("run_uuid", sa.String(32), nullable=False),
        sa.Column("value", sa.Double, nullable=False),
        sa.Column("is_nan", sa.Boolean, nullable=False),
        sa.Column("dataset_name", sa.String(500)),
        sa.Column("dataset_digest", sa.String(36)),
        sa.PrimaryKeyConstraint(
            "model_id", "key", "timestamp", "step", "run_uuid", name="pk_logged_model_metrics"
        ),
        sa.ForeignKeyConstraint(
            ["model_id"],
            ["logged_models.model_id"],
            name="fk_logged_model_metrics_model_id_logged_models",
        ),
        **OPTS,
    )
    op.create_table(
        "run_outputs",
        sa.Column("run_uuid", sa.String(32), nullable=False),
        sa.Column("model_id", sa.String(40), nullable=False),
        sa.Column("step", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("run_uuid", "model_id", name="pk_run_outputs"),
        sa.ForeignKeyConstraint(
            ["run_uuid"], ["runs.run_uuid"], name="fk_run_outputs_run_uuid_runs"
        ),
        sa.ForeignKeyConstraint(
            ["model_id"], ["logged_models.model_id"], name="fk_run_outputs_model_id_logged_models"
        ),
        **OPTS,
    )
    op.create_table(
        "registered_models",
        sa.Column("name", sa.String(256), nullable=False),
        sa.Column("creation_time", sa.BigInteger),
        sa.Column("last_updated_time", sa.BigInteger),
        sa.Column("description", sa.String(5000)),
        sa.Column("user_id", sa.String(256)),
        sa.PrimaryKeyConstraint("name", name="pk_registered_models"),
        **OPTS,
    )
    op.create_table(
        "registered_model_tags",
        sa.Column("name", sa.String(256), nullable=False),
        sa.Column("key", sa.String(250), nullable=False),
        sa.Column("value", LongText),
        sa.PrimaryKeyConstraint("name", "key", name="pk_registered_model_tags"),
        _rm_fk("registered_model_tags"),
        **OPTS,
    )
    op.create_table(
        "model_versions",
        sa.Column("name", sa.String(256), nullable=False),
        sa.Column("version", sa.Integer, nullable=False, autoincrement=False),
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
        sa.PrimaryKeyConstraint("name", "version", name="pk_model_versions"),
        _rm_fk("model_versions"),
        **OPTS,
    )
    op.create_table(
        "model_version_tags",
        sa.Column("name", sa.String(256), nullable=False),
        sa.Column("version", sa.Integer, nullable=False, autoincrement=False),
        sa.Column("key", sa.String(250), nullable=False),
        sa.Column("value", LongText),
        sa.PrimaryKeyConstraint("name", "version", "key", name="pk_model_version_tags"),
        sa.ForeignKeyConstraint(
            ["name", "version"],
            ["model_versions.name", "model_versions.version"],
            name="fk_model_version_tags_name_model_versions",
            onupdate="CASCADE",
            ondelete="CASCADE",
        ),
        **OPTS,
    )
    op.create_table(
        "registered_model_aliases",
        sa.Column("name", sa.String(256), nullable=False),
        sa.Column("alias", sa.String(256), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("name", "alias", name="pk_registered_model_aliases"),
        _rm_fk("registered_model_aliases"),
        **OPTS,
    )
