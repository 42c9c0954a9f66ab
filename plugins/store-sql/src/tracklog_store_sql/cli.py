"""``tracklog db``: database maintenance commands (SQLAlchemy is imported per command)."""

from __future__ import annotations

import click


@click.group()
def db() -> None:
    """Manage the schema of a SQL tracking database."""


@db.command()
@click.argument("url")
@click.option("--revision", default="head", show_default=True, help="Migrate up to this revision.")
def upgrade(url: str, revision: str) -> None:
    """Upgrade the schema of the database at URL (e.g. sqlite:///tracklog.db) to the
    latest version. Back the database up first; this cannot be undone."""
    from tracklog.errors import TracklogError
    from tracklog_store_sql import db as dbmod

    try:
        database = dbmod.Database(url)
        try:
            before, after = dbmod.upgrade(database, revision)
        finally:
            database.dispose()
    except TracklogError as exc:
        raise click.ClickException(exc.message) from None
    except Exception as exc:  # a driver or migration failure: show it without the password
        raise click.ClickException(
            f"Upgrading {dbmod.redact(url)} failed: {type(exc).__name__}: "
            f"{dbmod.scrub(str(exc), url)}"
        ) from None
    if before == after:
        click.echo(f"{dbmod.redact(url)} is already at revision {after}.")
    else:
        click.echo(f"Upgraded {dbmod.redact(url)} from {before or 'an empty database'} to {after}.")
