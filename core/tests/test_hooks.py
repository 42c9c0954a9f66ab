"""One test per hook, each through a plugin object registered in-process and the
public surface it affects (store resolution, the HTTP server). Plugin loading from real
installed distributions is covered in test_plugins.py."""

from __future__ import annotations

import pytest

from tracklog import hookimpl
from tracklog.config import ServerConfig
from tracklog.errors import ErrorCode, TracklogError
from tracklog.plugins import plugin_infos, register_plugin, unregister_plugin

API = "/api/2.0/mlflow"


@pytest.fixture
def plugin():
    """Register plugin objects for one test and remove them afterwards."""
    names = []

    def add(obj, name):
        register_plugin(obj, name)
        names.append(name)
        return obj

    yield add
    for name in reversed(names):
        unregister_plugin(name)


@pytest.fixture
def server(tmp_path):
    """Build the app over a SQLite store (lazily, after the test registered its plugins)."""
    from fastapi.testclient import TestClient

    from tracklog.server import create_app

    clients = []

    def start():
        config = ServerConfig(
            backend_store_uri=f"sqlite:///{tmp_path / 'hooks.db'}",
            artifacts_destination=str(tmp_path / "artifacts"),
            allowed_hosts=["testserver"],
        )
        client = TestClient(create_app(config))
        client.__enter__()
        clients.append(client)
        return client

    yield start
    for client in clients:
        client.__exit__(None, None, None)


def test_hook_register_tracking_stores(plugin, tmp_path):
    from tracklog.stores import TrackingStore, resolve_store

    class Mirror:
        """Serves ``mirror:///path`` from a SQLite file at that path."""

        @hookimpl
        def register_tracking_stores(self, register):
            register("mirror", lambda uri, root: resolve_store(
                "sqlite:///" + uri[len("mirror:///"):], root))

    plugin(Mirror(), "mirror-store")
    store = resolve_store(f"mirror:///{tmp_path}/m.db", str(tmp_path / "art"))
    assert isinstance(store, TrackingStore)
    exp_id = store.create_experiment("through-a-plugin")
    assert store.get_experiment(exp_id).name == "through-a-plugin"
    assert store.get_experiment(exp_id).artifact_location == f"{tmp_path}/art/{exp_id}"
    infos = {i.name: i for i in plugin_infos()}
    assert infos["mirror-store"].tracking_schemes == ["mirror"]
    assert {"sqlite", "postgresql", "mysql", "mssql"} <= set(infos["store-sql"].tracking_schemes)
    store.close()


class HeaderAuth:
    """Identity from ``X-User``; ``bob`` may not delete anything."""

    def __init__(self):
        self.seen = []

    @hookimpl
    def authenticate(self, request):
        user = request.headers.get("x-user")
        if user is None:
            raise TracklogError("Who are you?", ErrorCode.UNAUTHENTICATED)
        return user

    @hookimpl
    def authorize(self, identity, action, resource):
        self.seen.append((identity, action, dict(resource)))
        if identity == "bob" and action == "delete":
            return False
        return None


def test_hook_authenticate(plugin, server):
    plugin(HeaderAuth(), "header-auth")
    client = server()
    anonymous = client.get(f"{API}/experiments/get", params={"experiment_id": "0"})
    assert anonymous.status_code == 401
    assert anonymous.json() == {"error_code": "UNAUTHENTICATED", "message": "Who are you?"}
    known = client.get(f"{API}/experiments/get", params={"experiment_id": "0"},
                       headers={"X-User": "alice"})
    assert known.status_code == 200
    assert known.json()["experiment"]["name"] == "Default"


def test_hook_authorize(plugin, server):
    auth = plugin(HeaderAuth(), "header-auth")
    client = server()
    created = client.post(f"{API}/experiments/create", json={"name": "guarded"},
                          headers={"X-User": "alice"})
    exp_id = created.json()["experiment_id"]
    refused = client.post(f"{API}/experiments/delete", json={"experiment_id": exp_id},
                          headers={"X-User": "bob"})
    assert refused.status_code == 403
    assert refused.json()["error_code"] == "PERMISSION_DENIED"
    assert ("bob", "delete", {"experiment_id": exp_id}) in auth.seen
    still = client.get(f"{API}/experiments/get", params={"experiment_id": exp_id},
                       headers={"X-User": "alice"})
    assert still.json()["experiment"]["lifecycle_stage"] == "active"
    allowed = client.post(f"{API}/experiments/delete", json={"experiment_id": exp_id},
                          headers={"X-User": "alice"})
    assert allowed.status_code == 200


def test_hook_asgi_middleware(plugin, server):
    order = []

    def stamping(label):
        def wrap(app):
            async def wrapped(scope, receive, send):
                async def stamped_send(message):
                    if message["type"] == "http.response.start":
                        order.append(label)
                        message["headers"] = [*message.get("headers", []),
                                              (b"x-wrapped-by", label.encode())]
                    await send(message)

                await app(scope, receive, stamped_send)

            return wrapped

        return wrap

    class Outer:
        @hookimpl
        def asgi_middleware(self, config):
            return stamping("outer")

    class Inner:
        @hookimpl
        def asgi_middleware(self):
            return stamping("inner")

    plugin(Outer(), "outer-mw")
    plugin(Inner(), "inner-mw")
    response = server().get("/health")
    assert response.status_code == 200
    assert response.headers.get_list("x-wrapped-by") == ["inner", "outer"]
    assert order == ["inner", "outer"]  # the first registered wraps outermost


def test_hook_register_routes(plugin, server):
    from tracklog.server import rule

    class Extra:
        @hookimpl
        def register_routes(self, app, config):
            @app.get("/extra/ping")
            @rule("read")
            async def ping():
                return {"pong": config.static_prefix or "none"}

            @app.get("/extra/admin")
            async def admin():
                return {"secret": True}

    plugin(Extra(), "extra-routes")
    auth = plugin(HeaderAuth(), "header-auth")
    client = server()
    assert client.get("/extra/ping", headers={"X-User": "alice"}).json() == {"pong": "none"}
    assert client.get("/extra/ping").status_code == 401  # plugin routes are authenticated
    assert client.get("/extra/admin", headers={"X-User": "alice"}).json() == {"secret": True}
    assert ("alice", "read", {}) in auth.seen
    assert ("alice", "manage", {}) in auth.seen  # undeclared plugin routes need "manage"
    missing = client.get("/extra/nope", headers={"X-User": "alice"})
    assert missing.status_code == 404
    assert missing.json()["error_code"] == "ENDPOINT_NOT_FOUND"


def test_hook_startup(plugin, server):
    calls = []

    class Warm:
        @hookimpl
        def startup(self, app, config):
            calls.append((type(app).__name__, config.backend_store_uri.split(":")[0]))

    plugin(Warm(), "warm")
    server()
    assert calls == [("FastAPI", "sqlite")]


def test_hook_startup_failure_names_plugin(plugin, server):
    class Broken:
        @hookimpl
        def startup(self):
            raise OSError("cache directory is read-only")

    plugin(Broken(), "broken-startup")
    with pytest.raises(RuntimeError, match="'broken-startup' failed at startup.*read-only"):
        server()
