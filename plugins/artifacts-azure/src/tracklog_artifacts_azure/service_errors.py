"""Azure SDK exceptions turned into one-line :class:`TracklogError`s.

The text names the artifact URI, what failed and the service's error code; it never
carries the SDK's exception text whole (which may quote request URLs, hence SAS tokens)
and never a credential.
"""

from __future__ import annotations

from tracklog.errors import ErrorCode, TracklogError

# Service error codes with a more fitting MLflow code than their HTTP status gives.
_BY_SERVICE_CODE = {
    "ContainerNotFound": ErrorCode.RESOURCE_DOES_NOT_EXIST,
    "BlobNotFound": ErrorCode.RESOURCE_DOES_NOT_EXIST,
    "ResourceNotFound": ErrorCode.RESOURCE_DOES_NOT_EXIST,
    "InvalidBlockList": ErrorCode.INVALID_PARAMETER_VALUE,
    "InvalidBlockId": ErrorCode.INVALID_PARAMETER_VALUE,
    "ServerBusy": ErrorCode.TEMPORARILY_UNAVAILABLE,
    "OperationTimedOut": ErrorCode.DEADLINE_EXCEEDED,
}

_BY_STATUS = {
    400: ErrorCode.INVALID_PARAMETER_VALUE,
    401: ErrorCode.UNAUTHENTICATED,
    403: ErrorCode.PERMISSION_DENIED,
    404: ErrorCode.RESOURCE_DOES_NOT_EXIST,
    409: ErrorCode.RESOURCE_CONFLICT,
    412: ErrorCode.RESOURCE_CONFLICT,
    429: ErrorCode.REQUEST_LIMIT_EXCEEDED,
    503: ErrorCode.TEMPORARILY_UNAVAILABLE,
}

_HINTS = {
    "ContainerNotFound": "the container does not exist",
    "BlobNotFound": "no such blob",
    "AuthenticationFailed": "authentication failed (wrong key, or an expired or altered SAS)",
    "AuthorizationFailure": "not authorized (wrong key, expired SAS or missing permission)",
    "AuthorizationPermissionMismatch": "the credential lacks the permission for this operation",
    "InvalidBlockList": "the block list names blocks that were never uploaded",
    "ConditionNotMet": "the blob changed while it was read",
}


def _service_message(exc: Exception) -> str:
    """The first line of the service's own message (safe: it quotes no request URL)."""
    reason = getattr(exc, "reason", None)
    message = getattr(exc, "message", None) or ""
    first = message.strip().splitlines()[0] if message.strip() else ""
    text = first or (reason or "")
    return text[:200]


def _root_cause(exc: BaseException) -> str:
    """The innermost OS-level reason of a transport failure ("Connection refused")."""
    seen: set[int] = set()
    todo: list[object] = [exc]
    while todo:
        current = todo.pop()
        if not isinstance(current, BaseException) or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, TimeoutError):
            return "timed out"
        if isinstance(current, OSError) and current.strerror:
            return current.strerror
        # azure-core, requests and urllib3 each wrap the socket error their own way.
        todo += [current.__cause__, current.__context__, getattr(current, "inner_exception", None),
                 getattr(current, "reason", None), *current.args]
    return type(exc).__name__


def service_error(exc: Exception, action: str, uri: str) -> TracklogError:
    """``action`` (e.g. "read") of ``uri`` failed with the Azure SDK exception ``exc``."""
    from azure.core.exceptions import (
        ClientAuthenticationError,
        HttpResponseError,
        ServiceRequestError,
        ServiceResponseError,
    )

    if isinstance(exc, ServiceRequestError | ServiceResponseError):
        return TracklogError(
            f"Azure Blob Storage unreachable for {action} of {uri}: {_root_cause(exc)}",
            ErrorCode.TEMPORARILY_UNAVAILABLE,
        )
    if isinstance(exc, ClientAuthenticationError) and getattr(exc, "status_code", None) is None:
        # No HTTP answer: the credential itself could not be obtained (DefaultAzureCredential).
        return TracklogError(
            f"No Azure credential for {action} of {uri}: DefaultAzureCredential found none "
            "(set AZURE_STORAGE_CONNECTION_STRING or AZURE_STORAGE_ACCESS_KEY, or configure "
            "an Azure identity)",
            ErrorCode.UNAUTHENTICATED,
        )
    if isinstance(exc, HttpResponseError):
        status = exc.status_code
        # Set by the storage SDK on the errors it raises, not declared by azure-core.
        code_name = getattr(exc, "error_code", None) or ""
        if hasattr(code_name, "value"):
            code_name = code_name.value
        fallback = (
            ErrorCode.TEMPORARILY_UNAVAILABLE if (status or 0) >= 500 else ErrorCode.INTERNAL_ERROR
        )
        error_code = (
            _BY_SERVICE_CODE.get(code_name) or _BY_STATUS.get(status or 0) or fallback
        )
        cause = _HINTS.get(code_name) or _service_message(exc) or "request failed"
        detail = ", ".join(x for x in (code_name, f"HTTP {status}" if status else "") if x)
        return TracklogError(
            f"Azure Blob Storage refused {action} of {uri}: {cause} ({detail})", error_code
        )
    return TracklogError(
        f"Azure Blob Storage failed {action} of {uri}: {type(exc).__name__}",
        ErrorCode.INTERNAL_ERROR,
    )
