"""Traces: trace infos, their tags, request metadata, run links and assessments.

Spans are not stored here: the client uploads them as the artifact ``traces.json``.

Revision ID: 0004_traces
Revises: 0003_metric_series
"""

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mssql, mysql

revision = "0004_traces"
down_revision = "0003_metric_series"
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
LONG_TEXT = (
    sa.Text()
    .with_variant(mysql.MEDIUMTEXT(), "mysql", "mariadb")
    .with_variant(mssql.VARCHAR(), "mssql")
)


def _trace_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["request_id"],
        ["trace_info.request_id"],
        name=f"fk_{table}_request_id_trace_info",
        ondelete="CASCADE",
    )


def upgrade() -> None:
    op.create_table(
        "trace_info",
        sa.Column("request_id", sa.String(64), nullable=False),
        sa.Column("experiment_id", sa.Integer, nullable=False),
        sa.Column("timestamp_ms", sa.BigInteger, nullable=False),
        sa.Column("execution_time_ms", sa.BigInteger),
        sa.Column("status", sa.String(50), nullable=False),
        sa.Column("client_request_id", sa.String(250)),
        sa.Column("request_preview", sa.String(1000)),
        sa.Column("response_preview", sa.String(1000)),
        sa.PrimaryKeyConstraint("request_id", name="pk_trace_info"),
        sa.ForeignKeyConstraint(
            ["experiment_id"],
            ["experiments.experiment_id"],
            name="fk_trace_info_experiment_id_experiments",
        ),
        **OPTS,
    )
    op.create_index(
        "ix_trace_info_experiment_timestamp", "trace_info", ["experiment_id", "timestamp_ms"]
    )
    for table in ("trace_tags", "trace_request_metadata"):
        op.create_table(
            table,
            sa.Column("request_id", sa.String(64), nullable=False),
            sa.Column("key", sa.String(250), nullable=False),
            sa.Column("value", sa.String(8000)),
            sa.PrimaryKeyConstraint("request_id", "key", name=f"pk_{table}"),
            _trace_fk(table),
            **OPTS,
        )
    op.create_table(
        "trace_run_links",
        sa.Column("request_id", sa.String(64), nullable=False),
        sa.Column("run_uuid", sa.String(32), nullable=False),
        sa.PrimaryKeyConstraint("request_id", "run_uuid", name="pk_trace_run_links"),
        _trace_fk("trace_run_links"),
        **OPTS,
    )
    op.create_index("ix_trace_run_links_run_uuid", "trace_run_links", ["run_uuid"])
    op.create_table(
        "assessments",
        sa.Column("assessment_id", sa.String(50), nullable=False),
        sa.Column("trace_id", sa.String(64), nullable=False),
        sa.Column("name", sa.String(250), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("value", LONG_TEXT, nullable=False),
        sa.Column("source_type", sa.String(50), nullable=False),
        sa.Column("source_id", sa.String(250), nullable=False),
        sa.Column("span_id", sa.String(50)),
        sa.Column("rationale", LONG_TEXT),
        sa.Column("metadata", LONG_TEXT),
        sa.Column("overrides", sa.String(50)),
        sa.Column("valid", sa.Boolean, nullable=False),
        sa.Column("create_time", sa.BigInteger, nullable=False),
        sa.Column("last_update_time", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("assessment_id", name="pk_assessments"),
        sa.ForeignKeyConstraint(
            ["trace_id"],
            ["trace_info.request_id"],
            name="fk_assessments_trace_id_trace_info",
            ondelete="CASCADE",
        ),
        **OPTS,
    )
    op.create_index("ix_assessments_trace_id", "assessments", ["trace_id"])


def downgrade() -> None:
    for table in ("assessments", "trace_run_links", "trace_request_metadata", "trace_tags",
                  "trace_info"):
        op.drop_table(table)
