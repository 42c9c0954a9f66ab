"""The real MLflow client against a real ``tracklog server`` with authentication on:
user/password and token workflows, READ users' writes refused, the basic-auth app
client, and the first-start rules."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tracklog.testing.server import TRACKLOG, ServerProcess

from .conftest import (
    ADMIN,
    ADMIN_PASSWORD,
    PASSWORD,
    auth_env,
    basic,
    build_app,
    run_server,
)

API = "/api/2.0/mlflow"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    tmp = tmp_path_factory.mktemp("client")
    srv = run_server(tmp, f"sqlite:///{tmp / 'tracking.db'}", auth_env())
    yield srv
    srv.stop()


@pytest.fixture
def as_user(monkeypatch: pytest.MonkeyPatch, server: ServerProcess):
    """``as_user(username=, password=, token=)`` points the MLflow client at the server
    with those credentials and returns an ``MlflowClient``."""
    import mlflow

    def use(username: str | None = None, password: str | None = None,
            token: str | None = None) -> Any:
        for name in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD",
                     "MLFLOW_TRACKING_TOKEN"):
            monkeypatch.delenv(name, raising=False)
        if username:
            monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", username)
            monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", password or "")
        if token:
            monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", token)
        mlflow.set_tracking_uri(server.url)
        return mlflow.MlflowClient(server.url)

    yield use
    mlflow.set_tracking_uri(None)  # type: ignore[arg-type]


def _admin_app_client(as_user: Any, server: ServerProcess) -> Any:
    from mlflow.server import get_app_client

    as_user(ADMIN, ADMIN_PASSWORD)
    return get_app_client("basic-auth", tracking_uri=server.url)


def test_app_client_manages_users(as_user: Any, server: ServerProcess) -> None:
    from mlflow.exceptions import MlflowException

    auth = _admin_app_client(as_user, server)
    user = auth.create_user("frank", PASSWORD)
    assert user.username == "frank" and user.is_admin is False
    assert auth.get_user("frank").id == user.id
    auth.update_user_password("frank", "frank's new password")
    auth.update_user_admin("frank", True)
    assert auth.get_user("frank").is_admin is True
    exp = as_user(ADMIN, ADMIN_PASSWORD).create_experiment("granted")
    auth.grant_user_permission("frank", "experiment", exp, "EDIT")
    check = auth.get_user_permission("frank", "experiment", exp)
    assert check.permission == "MANAGE"  # frank is an administrator now
    auth.delete_user("frank")
    with pytest.raises(MlflowException) as err:
        auth.get_user("frank")
    assert err.value.error_code == "RESOURCE_DOES_NOT_EXIST"


def test_password_workflow_and_read_user(as_user: Any, server: ServerProcess) -> None:
    import mlflow
    from mlflow.exceptions import MlflowException

    auth = _admin_app_client(as_user, server)
    auth.create_user("gina", PASSWORD)
    auth.create_user("hank", PASSWORD)
    client = as_user("gina", PASSWORD)
    exp = client.create_experiment("gina-exp")
    mlflow.set_experiment(experiment_id=exp)
    with mlflow.start_run() as run:
        mlflow.log_param("p", "1")
        mlflow.log_metric("m", 0.5)
        mlflow.log_text("hello", "notes/hello.txt")
    got = client.get_run(run.info.run_id)
    assert got.data.params == {"p": "1"} and got.data.metrics == {"m": 0.5}
    assert mlflow.artifacts.load_text(f"runs:/{run.info.run_id}/notes/hello.txt") == "hello"
    # Hank reads by the default permission (READ) and cannot write.
    hank = as_user("hank", PASSWORD)
    assert hank.get_run(run.info.run_id).data.params == {"p": "1"}
    for write in (lambda: hank.log_param(run.info.run_id, "q", "2"),
                  lambda: hank.create_run(exp),
                  lambda: hank.delete_experiment(exp)):
        with pytest.raises(MlflowException) as err:
            write()
        assert err.value.error_code == "PERMISSION_DENIED"
    wrong = as_user("hank", "not the password!")
    with pytest.raises(MlflowException) as err:
        wrong.get_run(run.info.run_id)
    assert err.value.error_code == "UNAUTHENTICATED"


def test_token_workflow_for_edit_user(as_user: Any, server: ServerProcess) -> None:
    import mlflow

    auth = _admin_app_client(as_user, server)
    exp = as_user(ADMIN, ADMIN_PASSWORD).create_experiment("shared")
    auth.create_user("ivan", PASSWORD)
    auth.grant_user_permission("ivan", "experiment", exp, "EDIT")
    made = httpx.post(f"{server.url}/api/2.0/tracklog/auth/tokens/create",
                      auth=("ivan", PASSWORD), json={"name": "laptop"})
    assert made.status_code == 200, made.text
    token = made.json()["token"]["token"]
    client = as_user(token=token)
    mlflow.set_experiment(experiment_id=exp)
    with mlflow.start_run() as run:
        mlflow.log_metric("loss", 1.0, step=1)
        mlflow.log_text("model", "model/file.txt")
    assert client.get_metric_history(run.info.run_id, "loss")[0].value == 1.0
    runs = client.search_runs([exp])
    assert [r.info.run_id for r in runs] == [run.info.run_id]
    # EDIT does not delete (MLflow's rule: that is MANAGE).
    from mlflow.exceptions import MlflowException

    with pytest.raises(MlflowException) as err:
        client.delete_experiment(exp)
    assert err.value.error_code == "PERMISSION_DENIED"


def _start(tmp: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    import os

    child = {k: v for k, v in os.environ.items()
             if not k.startswith(("TRACKLOG_AUTH", "MLFLOW_AUTH"))}
    return subprocess.run(
        [TRACKLOG, "server", "--backend-store-uri", f"sqlite:///{tmp / 'db.sqlite'}",
         "--port", "0"], env={**child, **env}, cwd=tmp, capture_output=True, text=True,
        timeout=60, stdin=subprocess.DEVNULL)


def test_first_start_without_admin_refuses(tmp_path: Path) -> None:
    result = _start(tmp_path, {"TRACKLOG_AUTH": "basic"})
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert lines == ["Error: Authentication is on (TRACKLOG_AUTH=basic) but no administrator "
                     "exists: set TRACKLOG_AUTH_ADMIN_USERNAME and "
                     "TRACKLOG_AUTH_ADMIN_PASSWORD for the first start"]
    short = _start(tmp_path, {"TRACKLOG_AUTH": "basic", "TRACKLOG_AUTH_ADMIN_PASSWORD": "short"})
    assert short.returncode == 1
    assert "TRACKLOG_AUTH_ADMIN_PASSWORD" in short.stderr and "short" not in \
        short.stderr.replace("TRACKLOG_AUTH_ADMIN_PASSWORD", "")
    bad = _start(tmp_path, {"TRACKLOG_AUTH": "kerberos"})
    assert bad.returncode == 1 and "TRACKLOG_AUTH must be 'basic'" in bad.stderr


def test_ini_file_and_default_permission(tmp_path: Path) -> None:
    ini = tmp_path / "basic_auth.ini"
    ini.write_text("[mlflow]\ndefault_permission = NO_PERMISSIONS\n"
                   f"database_uri = sqlite:///{tmp_path / 'users.db'}\n"
                   "admin_username = boss\nadmin_password = boss password 0123\n")
    env = {"TRACKLOG_AUTH": "basic", "MLFLOW_AUTH_CONFIG_PATH": str(ini)}
    boss = basic("boss", "boss password 0123")
    for a in build_app(tmp_path, env):
        a.ok("POST", f"{API}/users/create", boss, json={"username": "jill", "password": PASSWORD})
        exp = a.ok("POST", f"{API}/experiments/create", boss,
                   json={"name": "boss-only"})["experiment_id"]
        jill = basic("jill")
        assert a.call("GET", f"{API}/experiments/get", jill,
                      params={"experiment_id": exp}).status_code == 403
        listed = a.ok("POST", f"{API}/experiments/search", jill, json={"max_results": 10})
        assert listed.get("experiments", []) == []
        assert (tmp_path / "users.db").exists()
    # Once the administrator exists, the password setting is no longer needed.
    ini.write_text(ini.read_text().replace("admin_password = boss password 0123\n", ""))
    for a in build_app(tmp_path, env):
        assert a.call("GET", "/version", boss).status_code == 200


def test_off_by_default(tmp_path: Path) -> None:
    for a in build_app(tmp_path, {}):
        assert a.app.state.tracklog.auth_enabled is False
        assert a.call("GET", "/version").status_code == 200
        assert a.call("GET", f"{API}/users/current").status_code == 404
    assert not list(tmp_path.glob("*auth*"))


def test_banner_says_authentication_is_on(server: ServerProcess) -> None:
    assert "\n  authentication   on\n" in server.output() + "\n"
