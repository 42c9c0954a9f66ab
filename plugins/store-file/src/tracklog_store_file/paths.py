"""Where the file store keeps things, and the small rules every section shares.

Names of the folders and files, the ids a folder may carry, how MLflow persists enums, and
what to do with a record that cannot be read. Every section of the store imports this
module and :mod:`tracklog_store_file.rows`; sections never import each other.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlparse

from tracklog import errors
from tracklog.entities import Dataset, LoggedModelStatus, RunStatus
from tracklog.validation import INT64_MAX, INT64_MIN
from tracklog_store_file.fsio import log

T = TypeVar("T")

TRASH = ".trash"
META = "meta.yaml"
METRICS, PARAMS, TAGS, ARTIFACTS = "metrics", "params", "tags", "artifacts"
INPUTS, OUTPUTS, DATASETS, MODELS = "inputs", "outputs", "datasets", "models"
# Folders of an experiment that are not runs (MLflow's reserved names).
RESERVED = frozenset({TAGS, DATASETS, "traces", MODELS})
RUN_NAME_TAG = "mlflow.runName"

ID = re.compile(r"^[A-Za-z0-9][\w\-]{0,255}$", re.ASCII)
EXP_ID = re.compile(r"^[A-Za-z0-9][\w\-]{0,63}$", re.ASCII)

# MLflow persists enums as integers.
RUN_STATUS = {
    1: RunStatus.RUNNING,
    2: RunStatus.SCHEDULED,
    3: RunStatus.FINISHED,
    4: RunStatus.FAILED,
    5: RunStatus.KILLED,
}
RUN_STATUS_INT = {v: k for k, v in RUN_STATUS.items()}
MODEL_STATUS = {
    0: LoggedModelStatus.LOGGED_MODEL_STATUS_UNSPECIFIED,
    1: LoggedModelStatus.LOGGED_MODEL_PENDING,
    2: LoggedModelStatus.LOGGED_MODEL_READY,
    3: LoggedModelStatus.LOGGED_MODEL_UPLOAD_FAILED,
}
MODEL_STATUS_INT = {v: k for k, v in MODEL_STATUS.items()}
SOURCE_TYPE_LOCAL = 4

#: What reading a record may fail with when its file is malformed or unreadable.
UNREADABLE = (OSError, ValueError, KeyError, TypeError)

#: A value of :meth:`~tracklog_store_file.rows.Rows._rewrite_run_meta` removing its key.
DROP = object()


def read_or_skip(
    what: str,
    where: tuple[str, ...],
    read: Callable[..., T],
    *args: Any,
    absent: tuple[type[BaseException], ...] = (FileNotFoundError,),
    broken: tuple[type[BaseException], ...] = UNREADABLE,
) -> T | None:
    """``read(*args)``, or None for an entry a listing leaves out: one that is ``absent``
    (gone meanwhile, or being created: meta.yaml comes last) silently, one that is
    ``broken`` with a warning naming its file, the path parts ``where`` (joined only then:
    listings call this once per entry)."""
    try:
        return read(*args)
    except absent:
        return None
    except broken as exc:
        log.warning("Skipping unreadable %s %s: %s", what, os.path.join(*where), exc)
        return None


def unreadable(what: str, ident: str, path: str, exc: BaseException) -> errors.TracklogError:
    """A record that exists but cannot be read: the caller gets a 404 naming the record
    (searches leave it out the same way), the server log gets the file and the cause."""
    log.warning("Unreadable %s %s: %s", what.lower(), path, exc)
    # An OSError's text holds the server path: the caller gets its reason only.
    cause = (exc.strerror or type(exc).__name__) if isinstance(exc, OSError) else str(exc)
    return errors.not_found(
        f"{what} {ident} cannot be read: its record is malformed ({cause[:200]}). "
        "The server log names the file."
    )


def to_uri(location: str) -> str:
    """Plain local paths become ``file://`` URIs (as MLflow stores them); URIs stay."""
    scheme = urlparse(location).scheme
    if len(scheme) > 1:
        return location
    return Path(os.path.abspath(location)).as_uri()


def int64_field(meta: dict[str, Any], key: str) -> int | None:
    """An optional integer field of a meta.yaml; ValueError if it is not an int64."""
    value = meta.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) \
            or not INT64_MIN <= value <= INT64_MAX:
        raise ValueError(f"{key} {value!r} is not a 64-bit integer")
    return value


def md5(*parts: str) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    for part in parts:
        digest.update(part.encode("utf-8"))
    return digest.hexdigest()


def dataset_from(meta: dict[str, Any]) -> Dataset:
    return Dataset(
        name=str(meta["name"]),
        digest=str(meta["digest"]),
        source_type=str(meta.get("source_type") or ""),
        source=str(meta.get("source") or ""),
        schema=meta.get("schema"),
        profile=meta.get("profile"),
    )
