"""What the environment configures, read and checked once when a repository is created."""

from __future__ import annotations

import mimetypes
import os
import posixpath
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlparse

from tracklog import errors
from tracklog.artifacts.paths import safe_relpath
from tracklog.options import Option

#: Resumable uploads move whole multiples of this; downloads keep to it too.
CHUNK_MULTIPLE = 256 * 1024
UPLOAD_CHUNK_SIZE = 16 * 1024 * 1024
DOWNLOAD_CHUNK_SIZE = 8 * 1024 * 1024
#: google-cloud-storage's own default for one request.
TIMEOUT = 60.0

#: Requests in flight at once when deleting, composing or opening many objects.
PARALLEL_REQUESTS = 8

UPLOAD_CHUNK_VAR = "MLFLOW_GCS_UPLOAD_CHUNK_SIZE"
DOWNLOAD_CHUNK_VAR = "MLFLOW_GCS_DOWNLOAD_CHUNK_SIZE"
TIMEOUT_VAR = "MLFLOW_ARTIFACT_UPLOAD_DOWNLOAD_TIMEOUT"
#: MLflow's default lifetime of a presigned download URL.
PRESIGNED_TTL = 300
PRESIGNED_TTL_OPTION = Option(
    "artifacts-gcs", "presigned-download-ttl", int, PRESIGNED_TTL,
    "Seconds a presigned Google Cloud Storage download URL stays valid.",
    env=("MLFLOW_PRESIGNED_DOWNLOAD_URL_TTL_SECONDS",), minimum=1,
)


@dataclass(frozen=True)
class Settings:
    upload_chunk_size: int = UPLOAD_CHUNK_SIZE
    download_chunk_size: int = DOWNLOAD_CHUNK_SIZE
    #: Seconds for one request and for retrying one call; None waits as long as it takes.
    timeout: float | None = TIMEOUT
    presigned_url_ttl: int = PRESIGNED_TTL

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> Settings:
        return cls(
            upload_chunk_size=_chunk_size(env, UPLOAD_CHUNK_VAR, UPLOAD_CHUNK_SIZE),
            download_chunk_size=_chunk_size(env, DOWNLOAD_CHUNK_VAR, DOWNLOAD_CHUNK_SIZE),
            timeout=_timeout(env),
            presigned_url_ttl=PRESIGNED_TTL_OPTION.read(env),
        )


def _chunk_size(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value <= 0 or value % CHUNK_MULTIPLE:
        raise errors.invalid(
            f"{name} must be a positive multiple of {CHUNK_MULTIPLE} bytes (256 KiB), "
            f"got {raw!r}"
        )
    return value


def _timeout(env: Mapping[str, str]) -> float | None:
    raw = env.get(TIMEOUT_VAR, "").strip()
    if not raw:
        return TIMEOUT
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value == -1:
        return None
    if value <= 0:
        raise errors.invalid(
            f"{TIMEOUT_VAR} must be a positive number of seconds or -1 for none, got {raw!r}"
        )
    return float(value)


def parse_uri(uri: str) -> tuple[str, str]:
    """``gs://bucket/some/prefix`` -> ``("bucket", "some/prefix")``."""
    parsed = urlparse(uri)
    if parsed.scheme != "gs" or not parsed.netloc:
        raise errors.invalid(f"Not a Google Cloud Storage URI (gs://bucket/prefix): {uri!r}")
    if parsed.query or parsed.fragment:
        raise errors.invalid(f"{uri}: a gs:// URI takes no query or fragment")
    try:
        prefix = safe_relpath(parsed.path.lstrip("/"))
    except errors.TracklogError as exc:
        raise errors.invalid(f"{uri}: invalid prefix: {exc.message}") from None
    return parsed.netloc, prefix


def content_type(path: str) -> str:
    """The Content-Type an object is stored with, from its name."""
    return mimetypes.guess_type(posixpath.basename(path))[0] or "application/octet-stream"
