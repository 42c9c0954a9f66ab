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


@hookimpl
def migration_source(uri: str):
    """An MLflow tracking database (SQLite, PostgreSQL, MySQL) as a migration source."""
    scheme = uri.split(":", 1)[0].split("+", 1)[0].lower()
    if scheme not in SCHEMES:
        return None
    from tracklog_store_sql.mlflow_db import MlflowDatabaseSource, looks_like_mlflow

    return MlflowDatabaseSource(uri) if looks_like_mlflow(uri) else None
