"""Artifact path safety: every path a user sends is relative, normalised and inside its root."""

from __future__ import annotations

import posixpath
import re
from urllib.parse import unquote

from tracklog import errors

_DRIVE = re.compile(r"^[A-Za-z]:")


def safe_relpath(path: str | None) -> str:
    """Normalise a user-supplied artifact path to ``a/b/c`` form, ``""`` for the root.

    Refused with INVALID_PARAMETER_VALUE: ``..`` segments, absolute paths, backslashes,
    drive letters, ``#``, NUL and control characters, and any of these hidden behind
    percent-encoding (``%2e%2e``, ``%2f``, ``%00``), however many times encoded.

    >>> safe_relpath("dir/./sub//file.txt")
    'dir/sub/file.txt'
    >>> safe_relpath("../etc/passwd")
    Traceback (most recent call last):
    ...
    tracklog.errors.TracklogError: Invalid artifact path: '../etc/passwd'
    """
    if path is None:
        return ""
    if not isinstance(path, str):
        raise errors.invalid(f"Invalid artifact path: {path!r} is not a string")
    decoded = path
    for _ in range(4):  # percent-encoding may be nested (%252e)
        again = unquote(decoded)
        if again == decoded:
            break
        decoded = again
    else:
        raise errors.invalid(f"Invalid artifact path: {path!r}")
    for candidate in (path, decoded):
        if (
            "\\" in candidate
            or "#" in candidate
            or any(ord(c) < 32 or ord(c) == 127 for c in candidate)
            or candidate.startswith("/")
            or _DRIVE.match(candidate)
        ):
            raise errors.invalid(f"Invalid artifact path: {path!r}")
        if ".." in candidate.split("/"):
            raise errors.invalid(f"Invalid artifact path: {path!r}")
    if decoded.count("/") != path.count("/"):
        # An encoded separator would name another path once some layer decodes it.
        raise errors.invalid(f"Invalid artifact path: {path!r}")
    normal = posixpath.normpath(path) if path else ""
    if normal in (".", ""):
        return ""
    if normal.startswith("../") or normal == "..":
        raise errors.invalid(f"Invalid artifact path: {path!r}")
    return normal


def join(*parts: str) -> str:
    """Join already-safe relative parts, dropping empty ones."""
    return "/".join(p.strip("/") for p in parts if p and p.strip("/"))
