"""What the maintenance commands (``tracklog migrate``, ``tracklog gc``) share:
bad input ends the command with one line and a non-zero exit code, before anything is
written."""

from __future__ import annotations

import os
from urllib.parse import unquote, urlsplit

import click


class CommandError(click.ClickException):
    """One line on stderr, exit code 1."""

    def show(self, file=None) -> None:  # type: ignore[no-untyped-def]
        click.echo(f"Error: {self.format_message()}", err=True, file=file)


def require_existing_store(uri: str, role: str) -> None:
    """Refuse a store URI that names a local store not there: opening one would create
    it, which a source (or a store to collect in) must never be."""
    parts = urlsplit(uri)
    scheme = parts.scheme.lower()
    if scheme in ("", "file") or (len(scheme) == 1 and os.name == "nt"):
        path = unquote(parts.path) if scheme == "file" else uri
        if not os.path.isdir(path):
            raise CommandError(f"The {role} {uri!r} is not a tracking store URI nor an "
                               f"existing store directory")
    elif scheme.split("+")[0] == "sqlite":
        path = uri.split(":///", 1)[1] if ":///" in uri else ""
        path = path.split("?", 1)[0]
        if path and path != ":memory:" and not os.path.exists(path):
            raise CommandError(f"No SQLite database at {path} (the {role})")
    elif "://" not in uri and ":" not in uri:
        raise CommandError(f"The {role} {uri!r} is not a store URI")
