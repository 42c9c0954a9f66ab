"""Failures of the storage service as one-line :class:`TracklogError`\\ s.

Each message names the repository URI, what was being done and the cause the service
gave. Request URLs never reach a message: a resumable-upload session URL or a signed URL
is itself a credential.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator

import google.auth.exceptions
import requests
from google.api_core import exceptions as api
from google.cloud.storage.exceptions import DataCorruption, InvalidResponse

from tracklog.errors import ErrorCode, TracklogError

_URL = re.compile(r"\b\w+://\S+")

_BY_STATUS: dict[int, tuple[ErrorCode, str]] = {
    400: (ErrorCode.INVALID_PARAMETER_VALUE, "rejected as invalid"),
    401: (ErrorCode.UNAUTHENTICATED, "credentials refused (expired or invalid)"),
    403: (ErrorCode.PERMISSION_DENIED, "permission denied"),
    404: (ErrorCode.RESOURCE_DOES_NOT_EXIST, "not found"),
    408: (ErrorCode.DEADLINE_EXCEEDED, "timed out"),
    409: (ErrorCode.RESOURCE_CONFLICT, "conflict"),
    412: (ErrorCode.RESOURCE_CONFLICT, "precondition failed"),
    429: (ErrorCode.REQUEST_LIMIT_EXCEEDED, "rate limit exceeded"),
}


def _clean(text: str) -> str:
    text = _URL.sub("<url>", " ".join(str(text).split()))
    return text if len(text) <= 240 else text[:237] + "..."


def _service_message(exc: api.GoogleAPICallError) -> str:
    for item in exc.errors or ():
        if isinstance(item, dict) and item.get("message"):
            return str(item["message"])
    return ""


def _status_error(status: int | None, detail: str) -> tuple[ErrorCode, str]:
    if status is not None and status >= 500:
        code, what = ErrorCode.TEMPORARILY_UNAVAILABLE, f"service error {status}"
    else:
        code, what = _BY_STATUS.get(status or 0, (ErrorCode.INTERNAL_ERROR, f"HTTP {status}"))
    return code, f"{what}: {detail}" if detail and detail not in what else what


def describe(exc: BaseException) -> tuple[ErrorCode, str] | None:
    """The error code and a one-line cause for a failure of the service, or None when
    ``exc`` is not one."""
    if isinstance(exc, api.RetryError) and exc.cause is not None:
        found = describe(exc.cause)
        if found is not None:
            return found[0], f"{found[1]} (gave up retrying)"
        return None
    if isinstance(exc, api.GoogleAPICallError):
        return _status_error(exc.code, _clean(_service_message(exc)))
    if isinstance(exc, DataCorruption):
        return ErrorCode.DATA_LOSS, "the data's checksum did not match"
    if isinstance(exc, InvalidResponse):
        response = getattr(exc, "response", None)
        return _status_error(getattr(response, "status_code", None), "")
    if isinstance(exc, google.auth.exceptions.RefreshError):
        reason = _clean(exc.args[0]) if exc.args else "refresh failed"
        return ErrorCode.UNAUTHENTICATED, f"credentials could not be refreshed: {reason}"
    if isinstance(exc, google.auth.exceptions.InvalidOperation):
        # google-auth refreshes on a 401; anonymous credentials (emulator mode) cannot.
        return ErrorCode.UNAUTHENTICATED, "credentials refused: anonymous access denied"
    if isinstance(exc, google.auth.exceptions.DefaultCredentialsError):
        return (
            ErrorCode.UNAUTHENTICATED,
            "no Google Cloud credentials found (set GOOGLE_APPLICATION_CREDENTIALS, run "
            "'gcloud auth application-default login', or run on Google Cloud)",
        )
    if isinstance(exc, google.auth.exceptions.TransportError):
        return ErrorCode.TEMPORARILY_UNAVAILABLE, "cannot reach the authentication service"
    if isinstance(exc, requests.Timeout):
        return ErrorCode.DEADLINE_EXCEEDED, "the service did not answer in time"
    if isinstance(exc, requests.ConnectionError):
        return ErrorCode.TEMPORARILY_UNAVAILABLE, "cannot connect to the service"
    return None


@contextlib.contextmanager
def translated(uri: str, action: str) -> Iterator[None]:
    """Turn a service failure inside the block into ``TracklogError("<uri>: <action>
    failed: <cause>")``; anything else passes through untouched."""
    try:
        yield
    except TracklogError:
        raise
    except Exception as exc:
        found = describe(exc)
        if found is None:
            raise
        code, cause = found
        raise TracklogError(f"{uri}: {action} failed: {cause}", code) from None
