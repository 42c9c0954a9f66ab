"""moto's S3 server on a free loopback port for the whole session, and a fresh bucket
per test. Dummy credentials keep boto3 away from real ones and metadata addresses."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tracklog.testing import service_unavailable
from tracklog.testing.server import free_port, stop_process

DUMMY_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
}
# Settings a test may set; cleared so the developer's own environment cannot leak in.
S3_SETTINGS = (
    "MLFLOW_S3_ENDPOINT_URL",
    "MLFLOW_S3_UPLOAD_EXTRA_ARGS",
    "MLFLOW_S3_EXPECTED_BUCKET_OWNER",
    "MLFLOW_S3_IGNORE_TLS",
    "AWS_CA_BUNDLE",
    "AWS_PROFILE",
    "MLFLOW_PRESIGNED_DOWNLOAD_URL_TTL_SECONDS",
)


@dataclass
class Moto:
    endpoint: str
    process: subprocess.Popen
    log: Path

    def stop(self) -> None:
        stop_process(self.process)

    def reset(self) -> None:
        import httpx

        httpx.post(self.endpoint + "/moto-api/reset", timeout=10).raise_for_status()


def _moto_server_command() -> list[str] | None:
    exe = shutil.which("moto_server", path=os.path.dirname(sys.executable))
    return [exe] if exe else None


def start_moto(log: Path, *args: str, env: dict[str, str] | None = None,
               scheme: str = "http") -> Moto:
    """moto_server on a free loopback port, ready; skips the test when it cannot start."""
    import httpx

    command = _moto_server_command()
    if command is None:
        service_unavailable("moto", "moto_server is not installed (pip install 'moto[server]')")
    port = free_port()
    child_env = {**os.environ, **DUMMY_ENV, **(env or {})}
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [*command, "-H", "127.0.0.1", "-p", str(port), *args],
            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, env=child_env,
        )
    moto = Moto(f"{scheme}://127.0.0.1:{port}", process, log)
    deadline = time.monotonic() + 30
    while True:
        if process.poll() is not None:
            service_unavailable("moto", f"moto_server exited: {log.read_text()[-500:]}")
        try:
            # The ready check itself trusts any certificate: TLS is what the tests check.
            if httpx.get(moto.endpoint + "/moto-api/", timeout=1, verify=False).status_code == 200:
                break
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            moto.stop()
            service_unavailable("moto", "moto_server not ready in 30 s")
        time.sleep(0.1)
    if process.poll() is not None:
        service_unavailable("moto", "moto_server exited after its ready check")
    return moto


@pytest.fixture(scope="session")
def moto_server(tmp_path_factory) -> Iterator[Moto]:
    moto = start_moto(tmp_path_factory.mktemp("moto") / "moto.log")
    try:
        yield moto
    finally:
        moto.stop()


@pytest.fixture
def s3_env(moto_server, monkeypatch) -> Moto:
    """The process environment pointed at moto with dummy credentials."""
    for name in S3_SETTINGS:
        monkeypatch.delenv(name, raising=False)
    for name, value in DUMMY_ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("MLFLOW_S3_ENDPOINT_URL", moto_server.endpoint)
    return moto_server


@pytest.fixture
def bucket(s3_env) -> str:
    """A new, empty bucket on moto."""
    import boto3

    name = f"tracklog-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=s3_env.endpoint).create_bucket(Bucket=name)
    return name


@pytest.fixture(scope="session")
def moto_starter():
    """:func:`start_moto`, for tests that need a moto of their own."""
    return start_moto


@pytest.fixture
def closed_port() -> int:
    """A loopback port nothing listens on."""
    return free_port()


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "server_options(*options): artifact options of the e2e test's server"
    )
