"""Concurrent model-version registrations through a real ``tracklog server`` and the real
MLflow client, on SQLite, PostgreSQL and MariaDB: every one succeeds, numbered 1..N."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tracklog.testing.server import start_server

THREADS = 16


@pytest.fixture
def tracking_server(server_url: str, tmp_path: Path) -> Iterator[str]:
    with start_server("--backend-store-uri", server_url,
                      "--artifacts-destination", str(tmp_path / "artifacts"),
                      cwd=tmp_path) as server:
        yield server.url


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
