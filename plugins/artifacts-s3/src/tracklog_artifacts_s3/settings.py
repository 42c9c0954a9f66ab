"""The S3 client's settings, read from the environment when a repository is created.

MLflow's variable names are the ones users already have in their deployments; every
malformed value is refused here, naming the variable, so the server fails at start
instead of on the first upload.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from tracklog import errors
from tracklog.options import Option

ENDPOINT_URL = "MLFLOW_S3_ENDPOINT_URL"
UPLOAD_EXTRA_ARGS = "MLFLOW_S3_UPLOAD_EXTRA_ARGS"
EXPECTED_BUCKET_OWNER = "MLFLOW_S3_EXPECTED_BUCKET_OWNER"
IGNORE_TLS = "MLFLOW_S3_IGNORE_TLS"
CA_BUNDLE = "AWS_CA_BUNDLE"
REGION = "AWS_DEFAULT_REGION"
PRESIGNED_TTL = Option(
    "artifacts-s3", "presigned-download-ttl", int, 300,
    "Seconds a presigned S3 download URL stays valid.",
    env=("MLFLOW_PRESIGNED_DOWNLOAD_URL_TTL_SECONDS",), minimum=1,
)

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"", "0", "false", "no", "off"}


@dataclass(frozen=True)
class S3Settings:
    endpoint_url: str | None = None
    region: str | None = None
    # False (no verification), a CA bundle path, or None for the system's trust store.
    verify: bool | str | None = None
    expected_bucket_owner: str | None = None
    upload_extra_args: dict[str, Any] = field(default_factory=dict)
    presigned_ttl: int = 300


def _flag(env: Mapping[str, str], name: str) -> bool:
    value = env.get(name, "").strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise errors.invalid(f"{name} must be true or false, not {env[name]!r}")


def _extra_args(env: Mapping[str, str]) -> dict[str, Any]:
    raw = env.get(UPLOAD_EXTRA_ARGS, "").strip()
    if not raw:
        return {}
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise errors.invalid(
            f"{UPLOAD_EXTRA_ARGS} is not valid JSON ({exc.msg} at column {exc.colno}); "
            'it must be a JSON object such as {"ServerSideEncryption": "aws:kms"}'
        ) from None
    if not isinstance(value, dict):
        raise errors.invalid(
            f"{UPLOAD_EXTRA_ARGS} must be a JSON object of S3 upload arguments, "
            f"not a JSON {type(value).__name__}"
        )
    return value


def read_settings(env: Mapping[str, str] | None = None) -> S3Settings:
    """Settings from ``env`` (the process environment by default); a malformed value
    raises INVALID_PARAMETER_VALUE naming its variable."""
    env = os.environ if env is None else env
    ignore_tls = _flag(env, IGNORE_TLS)
    ca_bundle = env.get(CA_BUNDLE, "").strip() or None
    if ignore_tls and ca_bundle:
        raise errors.invalid(
            f"{IGNORE_TLS} and {CA_BUNDLE} are both set: either skip TLS verification or "
            "verify against a CA bundle, not both"
        )
    if ca_bundle and not os.path.isfile(ca_bundle):
        raise errors.invalid(f"{CA_BUNDLE} names no readable file: {ca_bundle!r}")
    return S3Settings(
        endpoint_url=env.get(ENDPOINT_URL, "").strip() or None,
        region=env.get(REGION, "").strip() or None,
        verify=False if ignore_tls else ca_bundle,
        expected_bucket_owner=env.get(EXPECTED_BUCKET_OWNER, "").strip() or None,
        upload_extra_args=_extra_args(env),
        presigned_ttl=PRESIGNED_TTL.read(env),
    )
