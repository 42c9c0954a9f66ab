"""Metric history keyed by an integer series id.

Each (run, key) pair becomes one row of ``metric_series``; history points reference it by
integer instead of repeating the 32-character run id and the key on every point. Rows
and the primary-key index shrink by about half, which is what bounds bulk inserts and
long history reads.

Revision ID: 0003_metric_series
Revises: 0002_models_registry
"""

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0003_metric_series"
down_revision = "0002_models_registry"
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

_old = sa.table(
    "metrics",
    sa.column("run_uuid"),
    sa.column("key"),
    sa.column("timestamp"),
    sa.column("step"),
    sa.column("value"),
    sa.column("is_nan"),
)
_series = sa.table("metric_series", sa.column("series_id"), sa.column("run_uuid"), sa.column("key"))
_points = sa.table(
    "metric_points",
    sa.column("series_id"),
    sa.column("timestamp"),
    sa.column("step"),
    sa.column("value"),
    sa.column("is_nan"),
)


def upgrade() -> None:
    op.create_table(
        "metric_series",
        sa.Column("series_id", sa.Integer, nullable=False, autoincrement=True),
        sa.Column("run_uuid", sa.String(32), nullable=False),
        sa.Column("key", sa.String(250), nullable=False),
        sa.PrimaryKeyConstraint("series_id", name="pk_metric_series"),
        sa.UniqueConstraint("run_uuid", "key", name="uq_metric_series_run_uuid_key"),
        sa.ForeignKeyConstraint(
            ["run_uuid"], ["runs.run_uuid"], name="fk_metric_series_run_uuid_runs"
        ),
        **OPTS,
    )
    op.create_table(
        "metric_points",
        sa.Column("series_id", sa.Integer, nullable=False),
        sa.Column("timestamp", sa.BigInteger, nullable=False),
        sa.Column("step", sa.BigInteger, nullable=False),
        sa.Column("value", sa.Double, nullable=False),
        sa.Column("is_nan", sa.Boolean, nullable=False),
        sa.PrimaryKeyConstraint(
            "series_id", "timestamp", "step", "value", "is_nan", name="pk_metric_points"
        ),
        **OPTS,
        **NO_ROWID,
    )
    # A key with a latest value always has history; the union also covers any row that
    # was written to latest_metrics alone.
    latest = sa.table("latest_metrics", sa.column("run_uuid"), sa.column("key"))
    pairs = sa.union(
        sa.select(_old.c.run_uuid, _old.c.key),
        sa.select(latest.c.run_uuid, latest.c.key),
    ).subquery()
    op.execute(
        _series.insert().from_select(
            ["run_uuid", "key"],
            sa.select(pairs.c.run_uuid, pairs.c.key).order_by(pairs.c.run_uuid, pairs.c.key),
        )
    )
    op.execute(
        _points.insert().from_select(
            ["series_id", "timestamp", "step", "value", "is_nan"],
            sa.select(
                _series.c.series_id,
                _old.c.timestamp,
                _old.c.step,
                _old.c.value,
                _old.c.is_nan,
            ).select_from(
                _old.join(
                    _series,
                    sa.and_(_series.c.run_uuid == _old.c.run_uuid, _series.c.key == _old.c.key),
                )
            ),
        )
    )
    op.drop_table("metrics")


def downgrade() -> None:
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
    op.execute(
        _old.insert().from_select(
            ["run_uuid", "key", "timestamp", "step", "value", "is_nan"],
            sa.select(
                _series.c.run_uuid,
                _series.c.key,
                _points.c.timestamp,
                _points.c.step,
                _points.c.value,
                _points.c.is_nan,
            ).select_from(_points.join(_series, _series.c.series_id == _points.c.series_id)),
        )
    )
    op.drop_table("metric_points")
    op.drop_table("metric_series")
