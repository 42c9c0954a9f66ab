"""Binary collation on every table of a MariaDB database opened as ``mariadb://``.

SQLAlchemy's MariaDB dialect ignores ``mysql_``-prefixed table options, so a database
first opened through a ``mariadb://`` URL got the server's default collation
(``utf8mb4_general_ci``): keys differing only in case collided, and ``=`` ignored case.
This converts any table of ours not already ``utf8mb4_bin`` (going to a finer collation
keeps every unique key unique). Nothing to do on other databases.

Revision ID: 0005_mariadb_collation
Revises: 0004_traces
"""

import sqlalchemy as sa
from alembic import op

revision = "0005_mariadb_collation"
down_revision = "0004_traces"
branch_labels = None
depends_on = None

TABLES = (
    "experiments", "experiment_tags", "runs", "params", "tags", "latest_metrics",
    "metric_series", "metric_points", "datasets", "inputs", "input_tags",
    "logged_models", "logged_model_tags", "logged_model_params", "logged_model_metrics",
    "run_outputs", "registered_models", "registered_model_tags", "registered_model_aliases",
    "model_versions", "model_version_tags", "trace_info", "trace_tags",
    "trace_request_metadata", "trace_run_links", "assessments",
)


def upgrade() -> None:
    conn = op.get_bind()
    if conn.dialect.name not in ("mysql", "mariadb"):
        return
    rows = conn.execute(sa.text(
        "SELECT table_name, table_collation FROM information_schema.tables "
        "WHERE table_schema = DATABASE()"
    )).all()
    wrong = [name for name, collation in rows
             if name in TABLES and collation != "utf8mb4_bin"]
    if not wrong:
        return
    # MariaDB refuses to convert a column a foreign key uses, even with the checks off:
    # the keys between our tables go, the tables are converted, the keys come back.
    inspector = sa.inspect(conn)
    present = [name for name, _ in rows if name in TABLES]
    keys = [(table, fk) for table in present for fk in inspector.get_foreign_keys(table)
            if fk["name"]]  # MySQL names every foreign key
    for table, fk in keys:
        op.drop_constraint(str(fk["name"]), table, type_="foreignkey")
    for name in wrong:
        conn.exec_driver_sql(
            f"ALTER TABLE `{name}` CONVERT TO CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"
        )
    for table, fk in keys:
        op.create_foreign_key(fk["name"], table, fk["referred_table"],
                              fk["constrained_columns"], fk["referred_columns"],
                              ondelete=fk.get("options", {}).get("ondelete"))


def downgrade() -> None:
    pass  # the binary collation is what every earlier revision meant to create
