"""Fixtures: one Azurite blob service per session on a free loopback port.

Azurite comes from ``tools/services/install-azurite`` (a cache directory outside the
source tree) or from PATH; without it the tests skip (fail in CI) naming that script.
The connection string uses Azurite's well-known ``devstoreaccount1`` key.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tracklog.testing import service_unavailable
from tracklog.testing.server import free_port

ACCOUNT = "devstoreaccount1"
# Azurite's documented development key (public, the same in every installation).
KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
CONTAINER = "tracklog"
AZURE_VARIABLES = (
    "AZURE_STORAGE_CONNECTION_STRING",
    "AZURE_STORAGE_ACCESS_KEY",
    "TRACKLOG_AZURE_BLOB_ENDPOINT",
    "MLFLOW_ARTIFACT_UPLOAD_DOWNLOAD_TIMEOUT",
    "MLFLOW_PRESIGNED_DOWNLOAD_URL_TTL_SECONDS",
    "TRACKLOG_AZURE_UPLOAD_URL_TTL",
)


def _azurite_binary() -> str | None:
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(Path.home(), ".cache")
    folder = os.environ.get("TRACKLOG_AZURITE_DIR") or os.path.join(
        cache, "tracklog-services", "azurite"
    )
    installed = os.path.join(folder, "node_modules", ".bin", "azurite-blob")
    if os.access(installed, os.X_OK):
        return installed
    return shutil.which("azurite-blob")


@dataclass(frozen=True)
class Azurite:
    port: int
    endpoint: str  # http://127.0.0.1:PORT/devstoreaccount1
    connection_string: str

    def uri(self, prefix: str = "", container: str = CONTAINER, scheme: str = "wasbs") -> str:
        service = "dfs" if scheme == "abfss" else "blob"
        return f"{scheme}://{container}@{ACCOUNT}.{service}.core.windows.net/{prefix}"

    def service(self):
        from azure.storage.blob import BlobServiceClient

        return BlobServiceClient.from_connection_string(self.connection_string)


@pytest.fixture(scope="session")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Azurite]:
    binary = _azurite_binary()
    if binary is None:
        service_unavailable("azurite", "azurite-blob not found: run tools/services/install-azurite")
    workdir = tmp_path_factory.mktemp("azurite")
    port = free_port()
    log = workdir / "azurite.log"
    args = [binary, "--blobHost", "127.0.0.1", "--blobPort", str(port), "--inMemoryPersistence",
            "--disableTelemetry", "--skipApiVersionCheck"]
    with open(log, "wb") as out:
        process = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=out,
                                   stderr=subprocess.STDOUT, cwd=workdir)
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                service_unavailable("azurite", f"exited: {log.read_text()[-500:]}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    service_unavailable("azurite", "not listening after 30 s")
                time.sleep(0.1)
        endpoint = f"http://127.0.0.1:{port}/{ACCOUNT}"
        connection_string = (f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};"
                             f"AccountKey={KEY};BlobEndpoint={endpoint};")
        server = Azurite(port, endpoint, connection_string)
        server.service().create_container(CONTAINER)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


@pytest.fixture(autouse=True)
def _fresh_clients() -> Iterator[None]:
    """Each test builds its clients from its own environment."""
    from tracklog_artifacts_azure.client import clear_shared_clients

    clear_shared_clients()
    yield
    clear_shared_clients()


@pytest.fixture
def azure_env(azurite: Azurite, monkeypatch: pytest.MonkeyPatch) -> Azurite:
    """The process environment of a user with only a connection string set."""
    for name in AZURE_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", azurite.connection_string)
    return azurite


@pytest.fixture
def prefix() -> str:
    """A prefix private to one test."""
    return f"t-{uuid.uuid4().hex[:12]}"
