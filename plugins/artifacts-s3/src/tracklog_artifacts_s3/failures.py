"""botocore failures turned into one-line TracklogErrors.

The message names the artifact URI and the service's cause; it never carries a
traceback, a request signature, a presigned URL or a credential.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from tracklog.errors import ErrorCode, TracklogError

# S3 error codes (and HTTP statuses of bodiless HEAD answers) by the MLflow code they fit.
_CODES: dict[str, ErrorCode] = {
    "NoSuchKey": ErrorCode.RESOURCE_DOES_NOT_EXIST,
    "NoSuchBucket": ErrorCode.RESOURCE_DOES_NOT_EXIST,
    "NoSuchUpload": ErrorCode.RESOURCE_DOES_NOT_EXIST,
    "404": ErrorCode.RESOURCE_DOES_NOT_EXIST,
    "NotFound": ErrorCode.RESOURCE_DOES_NOT_EXIST,
    "AccessDenied": ErrorCode.PERMISSION_DENIED,
    "AllAccessDisabled": ErrorCode.PERMISSION_DENIED,
    "403": ErrorCode.PERMISSION_DENIED,
    "Forbidden": ErrorCode.PERMISSION_DENIED,
    "InvalidAccessKeyId": ErrorCode.UNAUTHENTICATED,
    "SignatureDoesNotMatch": ErrorCode.UNAUTHENTICATED,
    "ExpiredToken": ErrorCode.UNAUTHENTICATED,
    "TokenRefreshRequired": ErrorCode.UNAUTHENTICATED,
    "InvalidToken": ErrorCode.UNAUTHENTICATED,
    "InvalidPart": ErrorCode.INVALID_PARAMETER_VALUE,
    "InvalidPartOrder": ErrorCode.INVALID_PARAMETER_VALUE,
    "EntityTooSmall": ErrorCode.INVALID_PARAMETER_VALUE,
    "EntityTooLarge": ErrorCode.INVALID_PARAMETER_VALUE,
    "InvalidArgument": ErrorCode.INVALID_PARAMETER_VALUE,
    "InvalidRequest": ErrorCode.INVALID_PARAMETER_VALUE,
    "SlowDown": ErrorCode.TEMPORARILY_UNAVAILABLE,
    "ServiceUnavailable": ErrorCode.TEMPORARILY_UNAVAILABLE,
    "503": ErrorCode.TEMPORARILY_UNAVAILABLE,
    "RequestTimeout": ErrorCode.DEADLINE_EXCEEDED,
}

_HINTS = {
    "NoSuchBucket": "the bucket does not exist",
    "AccessDenied": "access denied (check the credentials' permissions and "
    "MLFLOW_S3_EXPECTED_BUCKET_OWNER)",
    "403": "access denied (check the credentials' permissions and "
    "MLFLOW_S3_EXPECTED_BUCKET_OWNER)",
    "InvalidAccessKeyId": "the access key is not known to the service",
    "SignatureDoesNotMatch": "the secret key does not match the access key",
    "ExpiredToken": "the credentials have expired",
}


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def translate(exc: Exception, uri: str, action: str) -> TracklogError:
    """A TracklogError for a botocore exception raised while ``action`` on ``uri``."""
    from botocore.exceptions import (
        ClientError,
        ConnectionError,
        EndpointConnectionError,
        NoCredentialsError,
        PartialCredentialsError,
        ReadTimeoutError,
        SSLError,
    )

    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code") or exc.response.get("ResponseMetadata", {}).get(
            "HTTPStatusCode", "")
        )
        cause = _HINTS.get(code) or _one_line(error.get("Message") or "") or code
        mlflow_code = _CODES.get(code, ErrorCode.INTERNAL_ERROR)
        return TracklogError(f"S3 {action} {uri} failed: {code}: {cause}", mlflow_code)
    if isinstance(exc, (NoCredentialsError, PartialCredentialsError)):
        return TracklogError(
            f"S3 {action} {uri} failed: no usable AWS credentials found "
            "(environment, shared files, or instance role)",
            ErrorCode.UNAUTHENTICATED,
        )
    if isinstance(exc, SSLError):
        return TracklogError(
            f"S3 {action} {uri} failed: TLS verification failed for the endpoint "
            "(see AWS_CA_BUNDLE or MLFLOW_S3_IGNORE_TLS)",
            ErrorCode.TEMPORARILY_UNAVAILABLE,
        )
    if isinstance(exc, EndpointConnectionError):
        # The request URL without its path and query: the host is what the user configured.
        endpoint = urlsplit(str(exc.kwargs.get("endpoint_url", "")))
        return TracklogError(
            f"S3 {action} {uri} failed: the endpoint {endpoint.scheme}://{endpoint.netloc} "
            "is unreachable",
            ErrorCode.TEMPORARILY_UNAVAILABLE,
        )
    if isinstance(exc, (ConnectionError, ReadTimeoutError)):
        return TracklogError(
            f"S3 {action} {uri} failed: {type(exc).__name__} talking to the endpoint",
            ErrorCode.TEMPORARILY_UNAVAILABLE,
        )
    return TracklogError(
        f"S3 {action} {uri} failed: {type(exc).__name__}", ErrorCode.INTERNAL_ERROR
    )
