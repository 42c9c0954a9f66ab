"""End-to-end fixtures: a real `tracklog server` subprocess driven by the real MLflow client.

The client is configured through the environment before anything imports mlflow: no
retries (a 5xx fails at once instead of after minutes of backoff), no telemetry.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.testclient import TestClient

from tracklog.config import ServerConfig
from tracklog.server import create_app
from tracklog.testing import databases
from tracklog.testing.server import ServerProcess
from tracklog.testing.server import start_server as start_tracklog

# The client drops spans by design when its own queues fill: OpenTelemetry's batch
# processor holds 2,048 spans (MLflow passes the size explicitly, so OTEL_BSP_* has no
# effect) and drains them on one thread. The trace load test produces 20,000 spans from
# four threads, faster than that thread drains on two busy cores, so spans are exported
# inline at span end (the producing threads wait for it) and whole traces queue for upload.
os.environ.setdefault("MLFLOW_USE_BATCH_SPAN_PROCESSOR", "false")
os.environ.setdefault("MLFLOW_ASYNC_TRACE_LOGGING_MAX_QUEUE_SIZE", "5000")

os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] = "0"
os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] = "60"
os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"
os.environ["DO_NOT_TRACK"] = "true"
os.environ.pop("MLFLOW_TRACKING_URI", None)

PG_ADMIN_URL = os.environ.get("TRACKLOG_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")


def read_until_closed(sock: socket.socket) -> bytes:
    """Everything the server sends on ``sock`` until it closes the connection."""
    data = b""
    while piece := sock.recv(65536):
        data += piece
    return data


@dataclass
class Server(ServerProcess):
    """A running server on ``backend``, keeping proxied artifacts under ``artifacts``."""

    artifacts: Path = Path()
    backend: str = ""


def start_server(tmp: Path, backend_uri: str, *extra: str, prefix: str = "",
                 env: dict[str, str] | None = None) -> Server:
    artifacts = tmp / "artifacts"
    started = start_tracklog("--backend-store-uri", backend_uri,
                             "--artifacts-destination", str(artifacts), *extra,
                             cwd=tmp, prefix=prefix, env=env)
    return Server(started.url, started.base, started.port, started.process, started.log,
                  artifacts, backend_uri)


def sqlite_uri(path: Path) -> str:
    return f"sqlite:///{path}"


def store_available(uri: str) -> str | None:
    """None if a store opens for ``uri``, else the reason it does not."""
    from tracklog.plugins import resolve_store

    try:
        resolve_store(uri, "mlflow-artifacts:/").close()
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


@pytest.fixture(scope="session")
def postgres_uri() -> Iterator[str]:
    """A fresh PostgreSQL database for this session, dropped afterwards."""
    with databases.private_database(PG_ADMIN_URL, "postgresql", "tracklog_e2e") as url:
        yield url


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[Server]:
    """A running server on a fresh store: SQLite, then PostgreSQL."""
    tmp = tmp_path_factory.mktemp(f"server-{request.param}")
    if request.param == "sqlite":
        # TRACKLOG_E2E_BACKEND runs the suite against another store URI (e.g. file:...).
        uri = os.environ.get("TRACKLOG_E2E_BACKEND") or sqlite_uri(tmp / "tracklog.db")
    else:
        uri = request.getfixturevalue("postgres_uri")
    reason = store_available(uri)
    if reason is not None:
        pytest.skip(f"no tracking store for {uri.split(':')[0]}: {reason}")
    srv = start_server(tmp, uri)
    yield srv
    srv.stop()


@pytest.fixture(scope="session")
def sqlite_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One SQLite-backed server for the raw-HTTP tests."""
    tmp = tmp_path_factory.mktemp("server-raw")
    uri = os.environ.get("TRACKLOG_E2E_BACKEND") or sqlite_uri(tmp / "tracklog.db")
    reason = store_available(uri)
    if reason is not None:
        pytest.skip(f"no SQLite tracking store: {reason}")
    srv = start_server(tmp, uri)
    yield srv
    srv.stop()


@pytest.fixture
def client(server: Server):
    """An ``MlflowClient`` on ``server``; the fluent API points there too."""
    import mlflow

    mlflow.set_tracking_uri(server.url)
    while mlflow.active_run() is not None:
        mlflow.end_run()
    yield mlflow.MlflowClient(server.url)
    while mlflow.active_run() is not None:
        mlflow.end_run()


@pytest.fixture
def experiment_id(client, request: pytest.FixtureRequest) -> str:
    import mlflow

    name = f"{request.node.name}-{uuid.uuid4().hex[:8]}"
    return mlflow.set_experiment(name).experiment_id


@pytest.fixture
def api(sqlite_server: Server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=sqlite_server.url, timeout=30) as c:
        yield c


@pytest.fixture(scope="session")
def private_database(request: pytest.FixtureRequest):
    """``private_database(admin_url, backend)``: the URL of a new database on the
    PostgreSQL or MariaDB server ``admin_url`` names, dropped at the end of the session."""
    from contextlib import ExitStack

    stack = ExitStack()
    request.addfinalizer(stack.close)

    def make(admin_url: str, backend: str) -> str:
        return stack.enter_context(databases.private_database(admin_url, backend, "tracklog_e2e"))

    return make


@pytest.fixture(scope="session")
def launch():
    """``launch(tmp_dir, *options, prefix=, env=)`` starts another SQLite-backed server
    (the caller stops it)."""

    def start(tmp: Path, *extra: str, prefix: str = "", env: dict[str, str] | None = None
              ) -> Server:
        uri = sqlite_uri(tmp / "tracklog.db")
        reason = store_available(uri)
        if reason is not None:
            pytest.skip(f"no SQLite tracking store: {reason}")
        return start_server(tmp, uri, *extra, prefix=prefix, env=env)

    return start


@pytest.fixture(scope="session")
def serve():
    """``serve(tmp_dir, store_uri, *options)`` starts a server on any store (the caller
    stops it); a store that cannot be opened counts as an unavailable service."""
    from tracklog.testing import service_unavailable

    def start(tmp: Path, uri: str, *extra: str) -> Server:
        reason = store_available(uri)
        if reason is not None:
            service_unavailable(uri.split(":")[0], reason)
        return start_server(tmp, uri, *extra)

    return start


@pytest.fixture
def in_process(tmp_path: Path) -> Iterator[tuple[TestClient, Any]]:
    """The application in this process on a fresh SQLite store: a test client (a 500 is
    answered, not raised) and the store."""
    app = create_app(ServerConfig(backend_store_uri=f"sqlite:///{tmp_path}/in-process.db",
                                  artifacts_destination=str(tmp_path / "artifacts"),
                                  allowed_hosts=["testserver"]))
    with TestClient(app, raise_server_exceptions=False) as http:
        yield http, app.state.tracklog.store
