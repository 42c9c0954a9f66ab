"""Concurrent model-version registrations through a real ``tracklog server`` and the real
MLflow client, on SQLite, PostgreSQL and MariaDB: every one succeeds, numbered 1..N."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

THREADS = 16
TRACKLOG = str(Path(sys.executable).with_name("tracklog"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def tracking_server(server_url: str, tmp_path: Path) -> Iterator[str]:
    port = _free_port()
    log = tmp_path / "server.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [TRACKLOG, "server", "--backend-store-uri", server_url, "--artifacts-destination",
             str(tmp_path / "artifacts"), "--host", "127.0.0.1", "--port", str(port)],
            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, cwd=tmp_path,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"tracklog server did not start: {log.read_text()[-3000:]}")
            try:
                if httpx.get(url + "/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.05)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


def test_concurrent_registrations_through_the_server(tracking_server, monkeypatch):
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    from mlflow import MlflowClient

    client = MlflowClient(tracking_server)
    name = f"concurrent-{uuid.uuid4().hex[:8]}"
    client.create_registered_model(name)
    barrier = threading.Barrier(THREADS)

    def register(i: int) -> str:
        barrier.wait()
        return client.create_model_version(name, f"mlflow-artifacts:/m/{i}").version

    with ThreadPoolExecutor(THREADS) as pool:
        futures = [pool.submit(register, i) for i in range(THREADS)]
    failures = [repr(f.exception()) for f in futures if f.exception() is not None]
    assert not failures, f"{len(failures)} of {THREADS} failed: {failures[:3]}"
    assert sorted(int(f.result()) for f in futures) == list(range(1, THREADS + 1))
    stored = client.search_model_versions(f"name = '{name}'")
    assert sorted(int(v.version) for v in stored) == list(range(1, THREADS + 1))
