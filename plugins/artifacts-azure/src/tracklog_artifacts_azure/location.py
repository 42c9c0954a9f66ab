"""Parsing ``wasbs://`` and ``abfss://`` artifact URIs into an account, container and prefix.

``wasbs://<container>@<account>.blob.<suffix>/<prefix>`` names a blob container;
``abfss://<filesystem>@<account>.dfs.<suffix>/<prefix>`` names an ADLS Gen2 file system,
which is the same storage as the container of that name behind the account's blob
endpoint (``<account>.blob.<suffix>``): both are served through the Blob API.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from tracklog import errors

_SERVICE_LABEL = {"wasbs": "blob", "abfss": "dfs"}


@dataclass(frozen=True)
class AzureLocation:
    scheme: str
    container: str
    account: str
    blob_host: str
    prefix: str  # no leading or trailing "/"; "" is the container's root

    @property
    def account_url(self) -> str:
        return f"https://{self.blob_host}"

    def key(self, path: str) -> str:
        """The blob name of repository-relative ``path`` ("" is the prefix itself)."""
        if not path:
            return self.prefix
        return f"{self.prefix}/{path}" if self.prefix else path


def parse_location(uri: str) -> AzureLocation:
    """Split ``uri``; anything but ``container@account.<blob|dfs>.<suffix>`` is a clear
    INVALID_PARAMETER_VALUE error naming the expected form."""
    parts = urlsplit(uri)
    scheme = parts.scheme.lower()
    label = _SERVICE_LABEL.get(scheme)
    expected = (
        f"expected {scheme}://<container>@<account>.{label}.core.windows.net/<path>"
        if label
        else "expected wasbs://… or abfss://…"
    )
    if parts.query or parts.fragment:
        # A query could hold a SAS token: never echo it.
        shown = f"{parts.scheme}://{parts.netloc}{parts.path}"
        raise errors.invalid(
            f"Invalid Azure artifact URI {shown!r}: no query or fragment allowed (credentials "
            "come from AZURE_STORAGE_CONNECTION_STRING or AZURE_STORAGE_ACCESS_KEY)"
        )
    if label is None or "@" not in parts.netloc:
        raise errors.invalid(f"Invalid Azure artifact URI {uri!r}: {expected}")
    container, _, host = parts.netloc.rpartition("@")
    host = host.lower()
    account, _, rest = host.partition(".")
    service, _, suffix = rest.partition(".")
    if not container or not account or service != label or not suffix or ":" in container:
        raise errors.invalid(f"Invalid Azure artifact URI {uri!r}: {expected}")
    prefix = parts.path.strip("/")
    if "//" in prefix:
        raise errors.invalid(f"Invalid Azure artifact URI {uri!r}: empty path segment")
    return AzureLocation(scheme, container, account, f"{account}.blob.{suffix}", prefix)
