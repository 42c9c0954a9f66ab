"""Users, groups, their members, permissions and tokens.

Revision ID: auth_0001_initial
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "auth_0001_initial"
down_revision = None
branch_labels = ("tracklog_auth",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "tracklog_auth_users",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("username", sa.String(255), nullable=False),
        sa.Column("password_hash", sa.String(255), nullable=False),
        sa.Column("is_admin", sa.Boolean, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.UniqueConstraint("username", name="uq_tracklog_auth_users_username"),
    )
    op.create_table(
        "tracklog_auth_groups",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(255), nullable=False),
        sa.UniqueConstraint("name", name="uq_tracklog_auth_groups_name"),
    )
    op.create_table(
        "tracklog_auth_group_members",
        sa.Column("group_id", sa.Integer,
                  sa.ForeignKey("tracklog_auth_groups.id", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("user_id", sa.Integer,
                  sa.ForeignKey("tracklog_auth_users.id", ondelete="CASCADE"),
                  primary_key=True),
    )
    op.create_table(
        "tracklog_auth_permissions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("subject_type", sa.String(8), nullable=False),
        sa.Column("subject_id", sa.Integer, nullable=False),
        sa.Column("resource_type", sa.String(32), nullable=False),
        sa.Column("resource_id", sa.String(500), nullable=False),
        sa.Column("permission", sa.String(32), nullable=False),
        sa.UniqueConstraint("subject_type", "subject_id", "resource_type", "resource_id",
                            name="uq_tracklog_auth_permissions"),
    )
    op.create_index("ix_tracklog_auth_permissions_resource", "tracklog_auth_permissions",
                    ["resource_type", "resource_id"])
    op.create_table(
        "tracklog_auth_tokens",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("user_id", sa.Integer,
                  sa.ForeignKey("tracklog_auth_users.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("expires_at", sa.BigInteger),
        sa.UniqueConstraint("token_hash", name="uq_tracklog_auth_tokens_hash"),
    )
