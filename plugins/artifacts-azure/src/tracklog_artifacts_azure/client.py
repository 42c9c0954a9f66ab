"""The ``BlobServiceClient`` for a location, with credentials chosen from the environment.

Order: ``AZURE_STORAGE_CONNECTION_STRING``, then ``AZURE_STORAGE_ACCESS_KEY`` (shared key
for the URI's account), then ``DefaultAzureCredential()`` from the optional
``azure-identity``. ``TRACKLOG_AZURE_BLOB_ENDPOINT`` replaces the account URL derived from
the URI for the last two (emulators, private endpoints); a connection string carries its
own endpoint. No value of these variables ever appears in an error.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tracklog import errors
from tracklog_artifacts_azure.location import AzureLocation

if TYPE_CHECKING:
    from azure.storage.blob import BlobServiceClient

CONNECTION_STRING = "AZURE_STORAGE_CONNECTION_STRING"
ACCESS_KEY = "AZURE_STORAGE_ACCESS_KEY"
ENDPOINT = "TRACKLOG_AZURE_BLOB_ENDPOINT"
TIMEOUT = "MLFLOW_ARTIFACT_UPLOAD_DOWNLOAD_TIMEOUT"
DEFAULT_TIMEOUT = 600

# Downloads are fetched in ranges of this size, never more at once.
GET_RANGE_SIZE = 4 * 1024 * 1024


@dataclass(frozen=True)
class Credentials:
    """How the client authenticates: ``kind`` is "connection string", "access key" or
    "DefaultAzureCredential"; ``account_key`` is set when SAS can be signed with a key."""

    kind: str
    account_key: str | None
    can_sign: bool


def timeout_from_env() -> float | None:
    """Seconds for connecting and for each read; ``-1`` means no limit."""
    raw = os.environ.get(TIMEOUT, "").strip()
    if not raw:
        return DEFAULT_TIMEOUT
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value == -1:
        return None
    if value <= 0:
        raise errors.invalid(f"{TIMEOUT} must be a positive number of seconds or -1, got {raw!r}")
    return value


def make_client(
    location: AzureLocation, uri: str, **client_options: Any
) -> tuple[BlobServiceClient, Credentials]:
    """A client for ``location``'s account and how it authenticates."""
    from azure.storage.blob import BlobServiceClient

    timeout = timeout_from_env()
    options: dict[str, Any] = {
        "connection_timeout": timeout,
        "read_timeout": timeout,
        "max_single_get_size": GET_RANGE_SIZE,
        "max_chunk_get_size": GET_RANGE_SIZE,
        **client_options,
    }
    connection_string = os.environ.get(CONNECTION_STRING, "").strip()
    if connection_string:
        try:
            client = BlobServiceClient.from_connection_string(connection_string, **options)
        except ValueError:
            raise errors.invalid(f"{CONNECTION_STRING} is malformed") from None
        if client.account_name and client.account_name.lower() != location.account:
            raise errors.invalid(
                f"{CONNECTION_STRING} is for storage account {client.account_name!r} but the "
                f"artifact URI names account {location.account!r}"
            )
        key = getattr(client.credential, "account_key", None)
        return client, Credentials("connection string", key, can_sign=key is not None)
    account_url = os.environ.get(ENDPOINT, "").strip() or location.account_url
    access_key = os.environ.get(ACCESS_KEY, "").strip()
    if access_key:
        from azure.core.credentials import AzureNamedKeyCredential

        credential = AzureNamedKeyCredential(location.account, access_key)
        client = BlobServiceClient(account_url, credential=credential, **options)
        return client, Credentials("access key", access_key, can_sign=True)
    try:
        from azure.identity import DefaultAzureCredential
    except ImportError:
        raise errors.TracklogError(
            f"No Azure credential for {uri}: neither "
            f"{CONNECTION_STRING} nor {ACCESS_KEY} is set, and DefaultAzureCredential needs "
            "azure-identity: pip install 'tracklog-artifacts-azure[identity]'",
            errors.ErrorCode.UNAUTHENTICATED,
        ) from None
    client = BlobServiceClient(account_url, credential=DefaultAzureCredential(), **options)
    return client, Credentials("DefaultAzureCredential", None, can_sign=True)


_clients: dict[tuple, tuple[BlobServiceClient, Credentials]] = {}
_clients_lock = threading.Lock()
_MAX_CLIENTS = 64


def shared_client(
    location: AzureLocation, uri: str, **client_options: Any
) -> tuple[BlobServiceClient, Credentials]:
    """:func:`make_client`, reused for every repository of one account under the same
    settings: the server opens a repository per request for runs whose artifacts live
    outside the proxy, and a fresh DefaultAzureCredential would fetch a token each time."""
    names = (CONNECTION_STRING, ACCESS_KEY, ENDPOINT, TIMEOUT)
    key = (
        location.blob_host,
        *(os.environ.get(name) for name in names),
        repr(sorted(client_options.items())),
    )
    with _clients_lock:
        found = _clients.get(key)
    if found is not None:
        return found
    made = make_client(location, uri, **client_options)
    with _clients_lock:
        if len(_clients) >= _MAX_CLIENTS:
            _clients.clear()
        return _clients.setdefault(key, made)


def clear_shared_clients() -> None:
    """Forget every shared client (after credentials changed in-process, and in tests)."""
    with _clients_lock:
        _clients.clear()
