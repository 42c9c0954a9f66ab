"""Plugin registration for tracklog-store-sql (no heavy imports here)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tracklog.plugins import hookimpl

if TYPE_CHECKING:
    import click

    from tracklog_store_sql.store import SqlTrackingStore

SCHEMES = ("sqlite", "postgresql", "mysql", "mariadb", "mssql")


def create_store(store_uri: str, default_artifact_root: str | None) -> SqlTrackingStore:
    """Factory for every SQL scheme: imports SQLAlchemy only when a store is needed."""
    from tracklog_store_sql.store import SqlTrackingStore

    return SqlTrackingStore(store_uri, default_artifact_root)


@hookimpl
def register_tracking_stores(register) -> None:
    for scheme in SCHEMES:
        register(scheme, create_store)


@hookimpl
def register_commands(cli: click.Group) -> None:
    from tracklog_store_sql.cli import db

    cli.add_command(db)
