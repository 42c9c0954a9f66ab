"""Artifact path safety: every path a user sends is relative, normalised and inside its root.

Limits, checked before any backend sees the path (so nothing is created for a path that
cannot be stored): each component at most :data:`MAX_COMPONENT_BYTES` bytes in UTF-8 (the
name limit of common file systems), the whole normalised path at most
:data:`MAX_PATH_BYTES` bytes (the key limit of S3, GCS and Azure Blob) and at most
:data:`MAX_DEPTH` components.
"""

from __future__ import annotations

import posixpath
import re
from urllib.parse import unquote

from tracklog import errors

_DRIVE = re.compile(r"^[A-Za-z]:")

MAX_COMPONENT_BYTES = 255
MAX_PATH_BYTES = 1024
MAX_DEPTH = 128

#: The directory every run, logged model and trace keeps its artifacts in
#: (``<experiment>/<run_id>/artifacts/…``, ``<experiment>/models/<model_id>/artifacts/…``).
ARTIFACTS_DIR = "artifacts"


def _shown(path: str) -> str:
    return repr(path if len(path) <= 80 else path[:80] + "…")


def _check_limits(path: str, normal: str, field: str) -> None:
    parts = normal.split("/")
    if len(parts) > MAX_DEPTH:
        raise errors.invalid(
            f"Invalid artifact path {_shown(path)} in '{field}': {len(parts)} components "
            f"deep; the limit is {MAX_DEPTH}"
        )
    size = len(normal.encode("utf-8", "surrogatepass"))
    if size > MAX_PATH_BYTES:
        raise errors.invalid(
            f"Invalid artifact path {_shown(path)} in '{field}': {size} bytes long; "
            f"the limit is {MAX_PATH_BYTES} bytes"
        )
    for part in parts:
        size = len(part.encode("utf-8", "surrogatepass"))
        if size > MAX_COMPONENT_BYTES:
            raise errors.invalid(
                f"Invalid artifact path {_shown(path)} in '{field}': the name "
                f"{_shown(part)} is {size} bytes long; the limit is {MAX_COMPONENT_BYTES} bytes"
            )


def safe_relpath(path: str | None, field: str = "path") -> str:
    """Normalise a user-supplied artifact path to ``a/b/c`` form, ``""`` for the root.

    Refused with INVALID_PARAMETER_VALUE: ``..`` segments, absolute paths, backslashes,
    drive letters, ``#``, NUL and control characters, and any of these hidden behind
    percent-encoding (``%2e%2e``, ``%2f``, ``%00``), however many times encoded; paths
    over the length and depth limits (messages name ``field``).

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
    if len(path) > 4 * MAX_PATH_BYTES:
        # Far over the limit whatever normalisation would remove: refuse before the work.
        raise errors.invalid(
            f"Invalid artifact path {_shown(path)} in '{field}': {len(path)} characters "
            f"long; the limit is {MAX_PATH_BYTES} bytes"
        )
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
    _check_limits(path, normal, field)
    return normal


def inside_artifacts_dir(rel: str) -> bool:
    """Whether normalised path ``rel`` lies strictly inside a non-top-level directory
    named ``artifacts``: inside a run's, logged model's or trace's artifact root, never
    such a root itself nor one of its ancestors.

    >>> inside_artifacts_dir("1/4f2a/artifacts/model/MLmodel")
    True
    >>> [inside_artifacts_dir(p) for p in ("", "1", "1/4f2a", "1/4f2a/artifacts")]
    [False, False, False, False]
    """
    parts = rel.split("/") if rel else []
    return ARTIFACTS_DIR in parts[1:-1]


def check_deletable(rel: str, shown: str | None = None) -> None:
    """Refuse a proxied delete of anything but files and directories inside an artifact
    root: the destination's root, an experiment, a run, a run's ``artifacts`` directory
    and their ancestors are never deleted through the proxy."""
    if not inside_artifacts_dir(rel):
        what = "the artifact root" if rel == "" else f"'{rel}'"
        raise errors.invalid(
            f"Invalid artifact path {shown if shown is not None else repr(rel)}: deleting "
            f"{what} is refused; only files and directories inside a run's artifact "
            "directory (<experiment_id>/<run_id>/artifacts/…) can be deleted"
        )


def join(*parts: str) -> str:
    """Join already-safe relative parts, dropping empty ones."""
    return "/".join(p.strip("/") for p in parts if p and p.strip("/"))
