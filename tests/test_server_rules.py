"""Authorization is total: every route of the app, plugin routes included, asks the
authentication and authorization hooks, except the public /health and /metrics; the
authenticate/authorize, register_routes, asgi_middleware and startup hooks are called."""

from __future__ import annotations

import re
from typing import Any

import pytest
from starlette.responses import PlainTextResponse
from starlette.testclient import TestClient

from tracklog.config import ServerConfig
from tracklog.errors import ErrorCode, TracklogError
from tracklog.plugins import hookimpl, register_plugin, unregister_plugin
from tracklog.server import create_app, rule


def _config(tmp_path, **kwargs: Any) -> ServerConfig:
    return ServerConfig(backend_store_uri=f"sqlite:///{tmp_path}/rules.db",
                        artifacts_destination=str(tmp_path / "artifacts"),
                        allowed_hosts=["testserver"], **kwargs)


class RefuseAll:
    """Refuses every request it is asked about, and counts them."""

    def __init__(self) -> None:
        self.asked = 0

    @hookimpl
    def authenticate(self, request):
        self.asked += 1
        raise TracklogError("No credentials.", ErrorCode.UNAUTHENTICATED)


@pytest.fixture
def refuse_all():
    plugin = RefuseAll()
    register_plugin(plugin, "test-refuse-all")
    yield plugin
    unregister_plugin("test-refuse-all")


def _answers(app) -> dict[tuple[str, str], int]:
    """The status every route of ``app`` answers, its path parameters filled in."""
    out = {}
    with TestClient(app) as http:
        for route in app.routes:
            url = re.sub(r"\{[^}]+\}", "x", route.path)
            for method in sorted(getattr(route, "methods", None) or ()):
                out[(method, route.path)] = http.request(method, url).status_code
    return out


class RoutesPlugin:
    """A plugin adding one route with a rule and one without."""

    def __init__(self) -> None:
        self.started = False

    @hookimpl
    def register_routes(self, app):
        @rule("read", lambda req: {"thing": req.string("id") or ""})
        async def ruled(request):
            return PlainTextResponse("ruled")

        async def unruled(request):
            return PlainTextResponse("unruled")

        app.add_route("/plugin/ruled", ruled, methods=["GET"])
        app.add_route("/plugin/unruled", unruled, methods=["GET"])

        @app.get("/plugin/report")
        @rule("read", lambda req: {"experiment_id": req.string("experiment_id") or ""})
        async def report(experiment_id: str = ""):
            return {"experiment_id": experiment_id}

    @hookimpl
    def startup(self, config):
        self.started = True


@pytest.fixture
def plugin():
    plugin = RoutesPlugin()
    register_plugin(plugin, "test-routes-plugin")
    yield plugin
    unregister_plugin("test-routes-plugin")


def test_every_route_but_health_and_metrics_asks_the_auth_hooks(tmp_path, plugin, refuse_all):
    app = create_app(_config(tmp_path, expose_prometheus=str(tmp_path / "prom")))
    answers = _answers(app)
    assert len(answers) > 100
    public = {("GET", "/health"), ("HEAD", "/health"), ("GET", "/metrics"), ("HEAD", "/metrics")}
    assert {route: answers[route] for route in public} == dict.fromkeys(public, 200)
    assert {route: status for route, status in answers.items() if route not in public} == \
        dict.fromkeys(set(answers) - public, 401)
    assert refuse_all.asked == len(answers) - len(public)


def test_health_is_public_under_a_prefix(tmp_path, refuse_all):
    with TestClient(create_app(_config(tmp_path, static_prefix="/tl"))) as http:
        assert http.get("/tl/health").text == "OK"
        assert http.get("/tl/version").status_code == 401
    assert refuse_all.asked == 1


def test_plugin_routes_are_served(tmp_path, plugin):
    app = create_app(_config(tmp_path))
    with TestClient(app) as http:
        assert plugin.started
        assert http.get("/plugin/ruled").text == "ruled"
        assert http.get("/plugin/report", params={"experiment_id": "7"}).json() == {
            "experiment_id": "7"}


class AuthPlugin:
    """Refuses deletes, records every decision, tags responses through middleware."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, str, dict[str, str]]] = []

    @hookimpl
    def authenticate(self, request):
        return request.headers.get("x-user", "anonymous")

    @hookimpl
    def authorize(self, identity, action, resource):
        self.calls.append((identity, action, dict(resource)))
        if identity == "anonymous" and action != "read":
            return False
        return None

    @hookimpl
    def asgi_middleware(self):
        def wrap(app):
            async def tagged(scope, receive, send):
                async def send_tagged(message):
                    if message["type"] == "http.response.start":
                        message["headers"] = [*message.get("headers", []), (b"x-wrapped", b"1")]
                    await send(message)

                await app(scope, receive, send_tagged)

            return tagged

        return wrap


@pytest.fixture
def auth_plugin():
    plugin = AuthPlugin()
    register_plugin(plugin, "test-auth-plugin")
    yield plugin
    unregister_plugin("test-auth-plugin")


def test_authorization_hooks_called_for_every_request(tmp_path, auth_plugin):
    app = create_app(_config(tmp_path))
    api = "/api/2.0/mlflow"
    with TestClient(app) as http:
        r = http.post(f"{api}/experiments/create", json={"name": "e"})
        assert r.status_code == 403 and r.json()["error_code"] == "PERMISSION_DENIED"
        assert r.headers["x-wrapped"] == "1"
        r = http.post(f"{api}/experiments/create", json={"name": "e"}, headers={"x-user": "ann"})
        exp = r.json()["experiment_id"]
        run = http.post(f"{api}/runs/create", json={"experiment_id": exp},
                        headers={"x-user": "ann"}).json()["run"]["info"]["run_id"]
        r = http.get(f"{api}/runs/get", params={"run_id": run})
        assert r.status_code == 200
        r = http.post(f"{api}/runs/search", json={"experiment_ids": [exp, "0"]})
        assert r.status_code == 200
        r = http.get(f"{api}/metrics/get-history-bulk-interval",
                     params=[("run_ids", run), ("metric_key", "m")])
        assert r.status_code == 200
        r = http.put(f"/api/2.0/mlflow-artifacts/artifacts/{exp}/{run}/artifacts/f.txt",
                     content=b"x")
        assert r.status_code == 403
        asked = len(auth_plugin.calls)
        assert http.get("/health").status_code == 200
        assert len(auth_plugin.calls) == asked  # public: no hook is asked
    assert ("ann", "update", {}) in auth_plugin.calls
    assert ("ann", "update", {"experiment_id": exp}) in auth_plugin.calls
    assert ("anonymous", "read", {"run_id": run}) in auth_plugin.calls
    assert ("anonymous", "read", {"experiment_ids": [exp, "0"]}) in auth_plugin.calls
    assert ("anonymous", "read", {"run_ids": [run]}) in auth_plugin.calls
    assert ("anonymous", "update", {"artifact_path": f"{exp}/{run}/artifacts/f.txt",
                                    "experiment_id": exp, "run_id": run}) in auth_plugin.calls


def test_no_tracking_routes_with_artifacts_only(tmp_path):
    app = create_app(_config(tmp_path, artifacts_only=True))
    with TestClient(app) as http:
        r = http.get("/api/2.0/mlflow/runs/get", params={"run_id": "x"})
        assert r.status_code == 404 and r.json()["error_code"] == "ENDPOINT_NOT_FOUND"
        assert http.put("/api/2.0/mlflow-artifacts/artifacts/a/b.txt",
                        content=b"b").status_code == 200
        assert http.get("/api/2.0/mlflow-artifacts/artifacts/a/b.txt").content == b"b"
    app = create_app(_config(tmp_path, serve_artifacts=False))
    with TestClient(app) as http:
        r = http.get("/api/2.0/mlflow-artifacts/artifacts/a/b.txt")
        assert r.status_code == 404 and r.json()["error_code"] == "ENDPOINT_NOT_FOUND"


def test_plugin_routes_are_authorized_by_their_rule(tmp_path, plugin, auth_plugin):
    app = create_app(_config(tmp_path))
    with TestClient(app) as http:
        r = http.get("/plugin/report", params={"experiment_id": "7"})
        assert r.json() == {"experiment_id": "7"}
        r = http.get("/plugin/unruled")  # no rule: treated as "manage"
        assert r.status_code == 403 and r.json()["error_code"] == "PERMISSION_DENIED"
        assert http.get("/plugin/unruled", headers={"x-user": "ann"}).text == "unruled"
    assert ("anonymous", "read", {"experiment_id": "7"}) in auth_plugin.calls
    assert ("anonymous", "manage", {}) in auth_plugin.calls
