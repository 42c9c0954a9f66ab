"""The plugin's tables, prefixed ``tracklog_auth_`` so they sit beside the tracking
store's (and MLflow's own auth tables) in one database without a clash."""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

#: Alembic's version table for this plugin alone: the store's migrations keep theirs.
VERSION_TABLE = "tracklog_auth_alembic_version"

users = sa.Table(
    "tracklog_auth_users", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("username", sa.String(255), nullable=False, unique=True),
    sa.Column("password_hash", sa.String(255), nullable=False),
    sa.Column("is_admin", sa.Boolean, nullable=False, default=False),
    sa.Column("created_at", sa.BigInteger, nullable=False),
)

groups = sa.Table(
    "tracklog_auth_groups", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(255), nullable=False, unique=True),
)

group_members = sa.Table(
    "tracklog_auth_group_members", metadata,
    sa.Column("group_id", sa.Integer, sa.ForeignKey("tracklog_auth_groups.id",
                                                    ondelete="CASCADE"), primary_key=True),
    sa.Column("user_id", sa.Integer, sa.ForeignKey("tracklog_auth_users.id",
                                                   ondelete="CASCADE"), primary_key=True),
)

#: One grant: a user's or a group's permission on one experiment or registered model.
permissions = sa.Table(
    "tracklog_auth_permissions", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("subject_type", sa.String(8), nullable=False),  # "user" | "group"
    sa.Column("subject_id", sa.Integer, nullable=False),
    sa.Column("resource_type", sa.String(32), nullable=False),
    sa.Column("resource_id", sa.String(500), nullable=False),
    sa.Column("permission", sa.String(32), nullable=False),
    sa.UniqueConstraint("subject_type", "subject_id", "resource_type", "resource_id",
                        name="uq_tracklog_auth_permissions"),
    sa.Index("ix_tracklog_auth_permissions_resource", "resource_type", "resource_id"),
)

tokens = sa.Table(
    "tracklog_auth_tokens", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("user_id", sa.Integer, sa.ForeignKey("tracklog_auth_users.id",
                                                   ondelete="CASCADE"), nullable=False),
    sa.Column("name", sa.String(255), nullable=False),
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("expires_at", sa.BigInteger),
)
