"""``sftp://[user[:password]@]host[:port][/path]``: what an artifact URI names.

The path is taken as written, as MLflow's own SFTP repository takes it: absolute when it
starts with ``/``, else (no path at all) the login directory. User and password may be
percent-encoded (``%40`` for ``@``). A password in the URI works but ends up wherever the
URI is stored (run records, logs): prefer keys.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit

from tracklog import errors


@dataclass(frozen=True)
class SFTPLocation:
    host: str
    port: int | None
    username: str | None
    password: str | None = field(repr=False)
    root: str

    @property
    def display(self) -> str:
        """The URI without its password, for messages."""
        user = f"{self.username}@" if self.username else ""
        host = f"[{self.host}]" if ":" in self.host else self.host
        port = f":{self.port}" if self.port else ""
        path = self.root if self.root.startswith("/") else ""
        return f"sftp://{user}{host}{port}{path}"


def parse_sftp_uri(uri: str) -> SFTPLocation:
    """The parts of an ``sftp://`` URI; anything else is INVALID_PARAMETER_VALUE."""
    try:
        parsed = urlsplit(uri)
        port = parsed.port
    except ValueError as exc:
        raise errors.invalid(f"Malformed SFTP artifact URI: {exc}") from None
    if parsed.scheme != "sftp" or not parsed.hostname:
        raise errors.invalid("Not an SFTP artifact URI (sftp://user@host[:port]/path)")
    if parsed.query or parsed.fragment:
        raise errors.invalid("SFTP artifact URIs take no query or fragment")
    root = parsed.path.rstrip("/") or ("/" if parsed.path else ".")
    if root != "." and posixpath.normpath(root) != root:
        raise errors.invalid("SFTP artifact URI paths must be normalised (no '.', '..', '//')")
    return SFTPLocation(
        host=parsed.hostname,
        port=port,
        username=unquote(parsed.username) if parsed.username else None,
        password=unquote(parsed.password) if parsed.password is not None else None,
        root=root,
    )
