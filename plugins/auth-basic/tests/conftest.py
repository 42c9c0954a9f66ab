"""Fixtures for tracklog-auth-basic: the server application built in-process with
authentication on (one per module), users at each permission level, and a real
``tracklog server`` subprocess for the MLflow client."""

from __future__ import annotations

import base64
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tracklog.testing.databases import private_database
from tracklog.testing.server import ServerProcess, start_server

os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] = "0"
os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] = "60"
os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"
os.environ.pop("MLFLOW_TRACKING_URI", None)

API = "/api/2.0/mlflow"
API3 = "/api/3.0/mlflow"
ADMIN, ADMIN_PASSWORD = "root", "root password 0123"
PASSWORD = "user password 0123"
PG_ADMIN_URL = os.environ.get("TRACKLOG_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")


def basic(username: str, password: str = PASSWORD) -> dict[str, str]:
    raw = base64.b64encode(f"{username}:{password}".encode()).decode()
    return {"Authorization": f"Basic {raw}"}


ROOT = basic(ADMIN, ADMIN_PASSWORD)


def auth_env(**extra: str) -> dict[str, str]:
    return {"TRACKLOG_AUTH": "basic", "TRACKLOG_AUTH_ADMIN_USERNAME": ADMIN,
            "TRACKLOG_AUTH_ADMIN_PASSWORD": ADMIN_PASSWORD, **extra}


@dataclass
class App:
    """An in-process server: its TestClient and the app."""

    client: Any
    app: Any
    prefix: str = ""
    users: dict[str, dict[str, str]] = field(default_factory=dict)

    def call(self, method: str, path: str, who: dict[str, str] | None = None,
             **kwargs: Any) -> httpx.Response:
        return self.client.request(method, self.prefix + path, headers=who or {}, **kwargs)

    def ok(self, method: str, path: str, who: dict[str, str] | None = ROOT,
           **kwargs: Any) -> dict[str, Any]:
        r = self.call(method, path, who, **kwargs)
        assert r.status_code == 200, r.text
        return r.json()

    def user(self, name: str) -> dict[str, str]:
        if name not in self.users:
            self.ok("POST", f"{API}/users/create", json={"username": name, "password": PASSWORD})
            self.users[name] = basic(name)
        return self.users[name]

    def grant(self, name: str, kind: str, resource_id: str, permission: str) -> None:
        self.user(name)
        self.ok("POST", f"{API3}/users/permissions/grant", json={
            "username": name, "resource_type": kind, "resource_id": resource_id,
            "permission": permission})


def build_app(tmp: Path, env: dict[str, str], store_uri: str | None = None,
              prefix: str = "", **options: Any) -> Iterator[App]:
    from starlette.testclient import TestClient

    from tracklog.config import ServerConfig
    from tracklog.server import create_app

    with pytest.MonkeyPatch.context() as mp:
        for key, value in env.items():
            mp.setenv(key, value)
        config = ServerConfig(backend_store_uri=store_uri or f"sqlite:///{tmp / 'tracking.db'}",
                              artifacts_destination=str(tmp / "artifacts"),
                              allowed_hosts=["testserver"], static_prefix=prefix, **options)
        app = create_app(config)
        with TestClient(app) as client:
            yield App(client, app, prefix)


@pytest.fixture(scope="module")
def server_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[App]:
    """One in-process server with authentication on, per test module."""
    yield from build_app(tmp_path_factory.mktemp("auth"), auth_env())


# --- a real server ---------------------------------------------------------------------


def run_server(tmp: Path, store_uri: str, env: dict[str, str], *extra: str,
               prefix: str = "") -> ServerProcess:
    """A real server with exactly ``env``'s authentication settings."""
    inherited = [k for k in os.environ if k.startswith(("TRACKLOG_AUTH", "MLFLOW_AUTH"))]
    return start_server("--backend-store-uri", store_uri,
                        "--artifacts-destination", str(tmp / "artifacts"), *extra,
                        cwd=tmp, env=env, unset=inherited, prefix=prefix)


@pytest.fixture(scope="session")
def postgres_uri() -> Iterator[str]:
    """A fresh PostgreSQL database for this session, dropped afterwards."""
    with private_database(PG_ADMIN_URL, "postgresql", "tracklog_auth") as url:
        yield url
