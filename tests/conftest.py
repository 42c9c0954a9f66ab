"""End-to-end fixtures: a real `tracklog server` subprocess driven by the real MLflow client.

The client is configured through the environment before anything imports mlflow: no
retries (a 5xx fails at once instead of after minutes of backoff), no telemetry.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

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
    try:
        import psycopg
    except ImportError as exc:
        pytest.skip(f"psycopg not installed: {exc}")
    name = f"tracklog_e2e_{uuid.uuid4().hex[:10]}"
    try:
        admin = psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=3)
    except Exception as exc:
        pytest.skip(f"PostgreSQL unreachable at {PG_ADMIN_URL}: {exc}")
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                (name,),
            )
            admin.execute(f'DROP DATABASE IF EXISTS "{name}"')


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
    PostgreSQL or MariaDB server ``admin_url`` names, dropped at the end of the session;
    a server that cannot be reached is an unavailable service."""
    import sqlalchemy as sa

    from tracklog.testing import service_unavailable

    def make(admin_url: str, backend: str) -> str:
        name = f"tracklog_e2e_{uuid.uuid4().hex[:12]}"
        engine = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT",
                                  connect_args={"connect_timeout": 3})
        try:
            with engine.connect() as conn:
                conn.exec_driver_sql(f"CREATE DATABASE {name}")
        except Exception as exc:
            engine.dispose()
            service_unavailable(backend, f"{sa.make_url(admin_url).render_as_string()}: {exc}")

        def drop() -> None:
            force = " WITH (FORCE)" if backend == "postgresql" else ""
            with engine.connect() as conn:
                conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name}{force}")
            engine.dispose()

        request.addfinalizer(drop)
        return sa.make_url(admin_url).set(database=name).render_as_string(hide_password=False)

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
