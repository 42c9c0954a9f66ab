"""The one exception type tracklog raises for protocol-visible failures.

Every error carries an MLflow error code; the server turns it into the JSON body
``{"error_code", "message"}`` with the HTTP status MLflow's client expects.
"""

from __future__ import annotations

from enum import StrEnum


class ErrorCode(StrEnum):
    INTERNAL_ERROR = "INTERNAL_ERROR"
    TEMPORARILY_UNAVAILABLE = "TEMPORARILY_UNAVAILABLE"
    IO_ERROR = "IO_ERROR"
    BAD_REQUEST = "BAD_REQUEST"
    INVALID_PARAMETER_VALUE = "INVALID_PARAMETER_VALUE"
    ENDPOINT_NOT_FOUND = "ENDPOINT_NOT_FOUND"
    MALFORMED_REQUEST = "MALFORMED_REQUEST"
    INVALID_STATE = "INVALID_STATE"
    PERMISSION_DENIED = "PERMISSION_DENIED"
    FEATURE_DISABLED = "FEATURE_DISABLED"
    CUSTOMER_UNAUTHORIZED = "CUSTOMER_UNAUTHORIZED"
    REQUEST_LIMIT_EXCEEDED = "REQUEST_LIMIT_EXCEEDED"
    RESOURCE_ALREADY_EXISTS = "RESOURCE_ALREADY_EXISTS"
    RESOURCE_DOES_NOT_EXIST = "RESOURCE_DOES_NOT_EXIST"
    RESOURCE_CONFLICT = "RESOURCE_CONFLICT"
    RESOURCE_EXHAUSTED = "RESOURCE_EXHAUSTED"
    ALREADY_EXISTS = "ALREADY_EXISTS"
    NOT_FOUND = "NOT_FOUND"
    ABORTED = "ABORTED"
    CANCELLED = "CANCELLED"
    DATA_LOSS = "DATA_LOSS"
    DEADLINE_EXCEEDED = "DEADLINE_EXCEEDED"
    NOT_IMPLEMENTED = "NOT_IMPLEMENTED"
    UNAUTHENTICATED = "UNAUTHENTICATED"


_HTTP_STATUS: dict[ErrorCode, int] = {
    ErrorCode.BAD_REQUEST: 400,
    ErrorCode.INVALID_PARAMETER_VALUE: 400,
    ErrorCode.MALFORMED_REQUEST: 400,
    # MLflow answers 400, not 409, for duplicates; the client branches on it.
    ErrorCode.RESOURCE_ALREADY_EXISTS: 400,
    ErrorCode.RESOURCE_DOES_NOT_EXIST: 404,
    ErrorCode.ENDPOINT_NOT_FOUND: 404,
    ErrorCode.NOT_FOUND: 404,
    ErrorCode.PERMISSION_DENIED: 403,
    ErrorCode.UNAUTHENTICATED: 401,
    ErrorCode.CUSTOMER_UNAUTHORIZED: 401,
    ErrorCode.ABORTED: 409,
    ErrorCode.ALREADY_EXISTS: 409,
    ErrorCode.RESOURCE_CONFLICT: 409,
    ErrorCode.RESOURCE_EXHAUSTED: 429,
    ErrorCode.REQUEST_LIMIT_EXCEEDED: 429,
    ErrorCode.CANCELLED: 499,
    ErrorCode.NOT_IMPLEMENTED: 501,
    ErrorCode.TEMPORARILY_UNAVAILABLE: 503,
    ErrorCode.DEADLINE_EXCEEDED: 504,
}


def http_status_for(code: ErrorCode | str) -> int:
    """The HTTP status MLflow's server uses for ``code``; unknown codes are 500."""
    try:
        return _HTTP_STATUS.get(ErrorCode(code), 500)
    except ValueError:
        return 500


class TracklogError(Exception):
    """A failure with an MLflow error code, safe to show to the caller.

    >>> err = TracklogError("Run with id=abc not found", ErrorCode.RESOURCE_DOES_NOT_EXIST)
    >>> err.http_status
    404
    """

    #: Seconds after which a retry may succeed (sent as ``Retry-After``), if known.
    retry_after: int | None = None
    #: Further response headers (``WWW-Authenticate`` on a 401), if any.
    headers: dict[str, str] | None = None

    def __init__(
        self, message: str, error_code: ErrorCode | str = ErrorCode.INTERNAL_ERROR
    ) -> None:
        super().__init__(message)
        self.message = message
        self.error_code = ErrorCode(error_code)

    @property
    def http_status(self) -> int:
        return http_status_for(self.error_code)

    def to_dict(self) -> dict[str, str]:
        return {"error_code": self.error_code.value, "message": self.message}

    def __repr__(self) -> str:
        return f"TracklogError({self.message!r}, {self.error_code.value})"


def invalid(message: str) -> TracklogError:
    """INVALID_PARAMETER_VALUE (HTTP 400): the caller sent something unacceptable."""
    return TracklogError(message, ErrorCode.INVALID_PARAMETER_VALUE)


def not_found(message: str) -> TracklogError:
    """RESOURCE_DOES_NOT_EXIST (HTTP 404)."""
    return TracklogError(message, ErrorCode.RESOURCE_DOES_NOT_EXIST)


def not_active(what: str, ident: str, stage: str) -> TracklogError:
    """A write to a deleted run or experiment: INVALID_PARAMETER_VALUE in MLflow's words."""
    return invalid(f"The {what} {ident} must be in the 'active' state. Current state is {stage}.")


def already_exists(message: str) -> TracklogError:
    """RESOURCE_ALREADY_EXISTS (HTTP 400, as MLflow)."""
    return TracklogError(message, ErrorCode.RESOURCE_ALREADY_EXISTS)


def not_implemented(message: str) -> TracklogError:
    """NOT_IMPLEMENTED (HTTP 501): an optional capability the backend lacks.

    501 is outside the MLflow client's retry list, so the caller sees the message at once.
    """
    return TracklogError(message, ErrorCode.NOT_IMPLEMENTED)


def unavailable(message: str, retry_after: int) -> TracklogError:
    """TEMPORARILY_UNAVAILABLE (HTTP 503) with ``Retry-After``: the server is busy; the
    MLflow client retries it after that many seconds."""
    err = TracklogError(message, ErrorCode.TEMPORARILY_UNAVAILABLE)
    err.retry_after = retry_after
    return err


class PluginError(Exception):
    """A plugin could not be loaded or registered something invalid."""
