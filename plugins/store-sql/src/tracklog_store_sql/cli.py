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
    from tracklog_store_sql import revisions

    try:
        database = dbmod.Database(url)
        try:
            before, after = revisions.upgrade(database, revision)
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


@db.command()
@click.argument("url")
@click.argument("destination", type=click.Path(dir_okay=False))
def backup(url: str, destination: str) -> None:
    """Copy the SQLite database at URL to the file DESTINATION, consistently, while a
    server may be writing to it (SQLite's online backup). For PostgreSQL and MySQL use
    the database's own tools (pg_dump, mariadb-dump); the command says how."""
    import os
    import sqlite3
    import tempfile

    from sqlalchemy.engine import make_url

    from tracklog_store_sql import db as dbmod

    try:
        parsed = make_url(url)
    except Exception:
        raise click.ClickException(f"{url!r} is not a database URL") from None
    backend = parsed.get_backend_name()
    if backend != "sqlite":
        tools = {
            "postgresql": "pg_dump --format=custom --file=BACKUP.dump DATABASE_URL",
            "mysql": "mariadb-dump --single-transaction --routines DATABASE > BACKUP.sql",
            "mariadb": "mariadb-dump --single-transaction --routines DATABASE > BACKUP.sql",
        }
        hint = tools.get(backend)
        raise click.ClickException(
            f"tracklog db backup copies SQLite databases; back up {dbmod.redact(url)} with "
            + (f"`{hint}`" if hint else "the database's own backup tool")
            + " (a consistent snapshot while the server runs)."
        )
    source = parsed.database
    if not source or source == ":memory:" or not os.path.isfile(source):
        raise click.ClickException(f"No SQLite database file at {url!r}")
    if os.path.exists(destination):
        raise click.ClickException(f"{destination} already exists; choose a new file")
    directory = os.path.dirname(os.path.abspath(destination))
    fd, partial = tempfile.mkstemp(prefix=".tracklog-tmp-backup-", dir=directory)
    os.close(fd)
    try:
        # Read-only on the source: a backup never changes what it copies.
        src = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
        dst = sqlite3.connect(partial)
        try:
            # One step: the copy is the database as of one moment, even while a server
            # commits (WAL lets its writers go on meanwhile).
            src.backup(dst)
            dst.execute("PRAGMA journal_mode=DELETE")
            ok = dst.execute("PRAGMA quick_check").fetchone()[0]
        finally:
            dst.close()
            src.close()
        if ok != "ok":
            raise click.ClickException(f"The copy of {source} failed its check: {ok}")
        os.replace(partial, destination)
    except sqlite3.Error as exc:
        raise click.ClickException(f"Backing up {source} failed: {exc}") from None
    finally:
        if os.path.exists(partial):
            os.unlink(partial)
    size = os.path.getsize(destination)
    click.echo(f"Backed up {source} to {destination} ({size / 1e6:.1f} MB).")
