"""Who signs V4 URLs.

A service-account key signs locally. Other credentials that know their service account
(Compute Engine, GKE workload identity) sign through the IAM ``signBlob`` call with their
access token, which needs ``iam.serviceAccounts.signBlob`` on that account. End-user
credentials cannot sign at all. Against an emulator the client is anonymous, so the
service-account key named by ``GOOGLE_APPLICATION_CREDENTIALS`` signs.
"""

from __future__ import annotations

import os
from typing import Any

import google.auth.transport.requests
from google.auth.credentials import AnonymousCredentials, Signing
from google.oauth2 import service_account

from tracklog.errors import ErrorCode, TracklogError


def cannot_sign(uri: str, why: str) -> TracklogError:
    return TracklogError(
        f"{uri}: cannot sign URLs: {why}; use a service-account key "
        "(GOOGLE_APPLICATION_CREDENTIALS) or a service account that may sign for itself",
        ErrorCode.PERMISSION_DENIED,
    )


def signing_kwargs(uri: str, credentials: Any) -> dict[str, Any]:
    """Arguments for ``Blob.generate_signed_url`` that sign with what is configured."""
    if isinstance(credentials, AnonymousCredentials):
        path = os.environ.get("GOOGLE_APPLICATION_CREDENTIALS")
        if not path:
            raise cannot_sign(uri, "the client is anonymous and no key file is configured")
        try:
            credentials = service_account.Credentials.from_service_account_file(path)
        except (OSError, ValueError, KeyError):
            raise cannot_sign(
                uri, "GOOGLE_APPLICATION_CREDENTIALS is not a readable service-account key"
            ) from None
    if isinstance(credentials, Signing):
        return {"credentials": credentials}
    email = getattr(credentials, "service_account_email", None)
    if email is None:
        raise cannot_sign(uri, f"{type(credentials).__module__} credentials cannot sign")
    if not credentials.valid:
        credentials.refresh(google.auth.transport.requests.Request())
    return {"service_account_email": credentials.service_account_email,
            "access_token": credentials.token}
