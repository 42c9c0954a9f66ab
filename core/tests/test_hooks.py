"""One test per hook, each through a plugin object registered in-process and the
public surface it affects (store resolution, the HTTP server). Plugin loading from real
installed distributions is covered in test_plugins.py."""

from __future__ import annotations

import json

import pytest

from tracklog import hookimpl, plugins
from tracklog.config import ServerConfig
from tracklog.errors import ErrorCode, PluginError, TracklogError
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
    from tracklog.plugins import resolve_store
    from tracklog.stores import TrackingStore

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
            from fastapi import FastAPI

            calls.append((isinstance(app, FastAPI), config.backend_store_uri.split(":")[0]))

    plugin(Warm(), "warm")
    server()
    assert calls == [(True, "sqlite")]


# A plugin that raises in a hook: the caller gets the plugin's name with the error.


def test_hook_startup_failure_names_plugin(plugin, server):
    class Broken:
        @hookimpl
        def startup(self):
            raise OSError("cache directory is read-only")

    plugin(Broken(), "broken-startup")
    with pytest.raises(PluginError, match="'broken-startup' raised in startup: OSError: cache"):
        server()


@pytest.mark.parametrize("hook", ["register_routes", "asgi_middleware"])
def test_hook_failure_building_the_app_names_plugin(plugin, server, hook):
    def fail(self):
        raise LookupError("no such table")

    plugin(type("Broken", (), {hook: hookimpl(fail)})(), "broken-app")
    with pytest.raises(PluginError, match=f"'broken-app' raised in {hook}: LookupError: no such"):
        server()


@pytest.mark.parametrize(("hook", "resolve", "uri"), [
    ("register_tracking_stores", "resolve_store", "sqlite:///x.db"),
    ("register_artifact_repositories", "resolve_repository", "/tmp/x"),
])
def test_hook_failure_registering_schemes_names_plugin(plugin, hook, resolve, uri):
    def half(self, register):
        register("half", lambda *args: None)
        raise KeyError("region")

    plugin(type("Broken", (), {hook: hookimpl(half)})(), "broken-schemes")
    with pytest.raises(PluginError, match=f"'broken-schemes' raised in {hook}: KeyError: 'region'"):
        getattr(plugins, resolve)(uri)
    infos = {i.name: i for i in plugin_infos()}
    error = infos["broken-schemes"].error
    assert error is not None and error.endswith(f"raised in {hook}: KeyError: 'region'")
    assert infos["broken-schemes"].tracking_schemes == infos["broken-schemes"].artifact_schemes
    assert infos["broken-schemes"].artifact_schemes == []  # its half registration is dropped
    assert infos["tracklog.builtin.local_artifacts"].error is None


def test_hook_failure_adding_commands_leaves_plugins_listing(plugin):
    from click.testing import CliRunner

    from tracklog import cli

    class Broken:
        @hookimpl
        def register_commands(self, cli):
            raise RuntimeError("click too old")

    plugin(Broken(), "broken-commands")
    plugins.call_hook("register_commands", cli=cli.cli, on_error=plugins.mark_broken)
    listing = CliRunner().invoke(cli.cli, ["plugins", "--json"])
    assert listing.exit_code == 0, listing.output
    broken = {p["name"]: p for p in json.loads(listing.output)}["broken-commands"]
    assert broken["error"] == ("tracklog plugin 'broken-commands' raised in register_commands: "
                               "RuntimeError: click too old")
    assert "broken-commands" in CliRunner().invoke(cli.cli, ["--help"]).output
    other = CliRunner().invoke(cli.cli, ["server", "--port", "0"])
    assert other.exit_code == 1
    assert other.output.strip().splitlines() == [f"Error: {broken['error']}"]


@pytest.mark.parametrize("hook", ["authenticate", "authorize"])
def test_hook_failure_answering_a_request_names_plugin(plugin, server, hook, caplog):
    def fail(self):
        raise ConnectionError("directory server down")

    plugin(type("Broken", (), {hook: hookimpl(fail)})(), "broken-auth")
    response = server().get(f"{API}/experiments/get", params={"experiment_id": "0"})
    assert response.status_code == 500
    assert response.json()["message"].startswith("internal error (request id ")
    assert "'broken-auth' raised in " + hook + ": ConnectionError: directory server down" in \
        caplog.text


def test_misspelled_hook_is_refused_with_a_suggestion():
    class Typo:
        @hookimpl
        def register_tracking_store(self, register):
            pass

    with pytest.raises(PluginError, match="register_tracking_store, which is no tracklog hook "
                                          r"\(did you mean register_tracking_stores\?\)"):
        register_plugin(Typo(), "typo")
    assert "typo" not in {i.name for i in plugin_infos()}


class Switchable(HeaderAuth):
    """HeaderAuth that can be switched off through ``auth_active``."""

    def __init__(self, on):
        super().__init__()
        self.on = on

    @hookimpl
    def auth_active(self, config):
        return self.on


def test_hook_auth_active(plugin, server):
    plugin(Switchable(False), "switched-off")
    off = server()
    assert off.get(f"{API}/experiments/get", params={"experiment_id": "0"}).status_code == 200
    plugin(Switchable(True), "switched-on")
    on = server()
    assert on.get(f"{API}/experiments/get", params={"experiment_id": "0"}).status_code == 401


class HidesSecret(HeaderAuth):
    """Experiments and registered models named ``secret*`` are hidden from ``bob``."""

    def __init__(self):
        super().__init__()
        self.hidden_ids: set[str] = set()

    @hookimpl
    def readable(self, identity, kind):
        from tracklog.server import Readable

        if identity != "bob":
            return None
        if kind == "experiment":
            return Readable(hidden=frozenset(self.hidden_ids))
        return Readable(only=frozenset({"public-model"}))


def test_hook_readable(plugin, server):
    auth = plugin(HidesSecret(), "hides-secret")
    client = server()
    alice, bob = {"X-User": "alice"}, {"X-User": "bob"}
    ids = []
    for i in range(5):
        name = f"secret-{i}" if i % 2 == 0 else f"open-{i}"
        exp_id = client.post(f"{API}/experiments/create", json={"name": name},
                             headers=alice).json()["experiment_id"]
        ids.append(exp_id)
        if name.startswith("secret"):
            auth.hidden_ids.add(exp_id)
        client.post(f"{API}/runs/create", json={"experiment_id": exp_id}, headers=alice)
    for model in ("public-model", "private-model"):
        client.post(f"{API}/registered-models/create", json={"name": model}, headers=alice)
    # Paging one experiment at a time: every page full, no hidden one on any page.
    seen, token = [], None
    while True:
        page = client.post(f"{API}/experiments/search",
                           json={"max_results": 1, **({"page_token": token} if token else {})},
                           headers=bob).json()
        seen += [e["name"] for e in page.get("experiments", [])]
        token = page.get("next_page_token")
        if not token:
            break
    assert sorted(seen) == ["Default", "open-1", "open-3"]
    runs = client.post(f"{API}/runs/search", json={"experiment_ids": ids},
                       headers=bob).json()["runs"]
    assert {r["info"]["experiment_id"] for r in runs} == {ids[1], ids[3]}
    hidden_only = client.post(f"{API}/runs/search", json={"experiment_ids": [ids[0]]},
                              headers=bob)
    assert hidden_only.status_code == 200 and hidden_only.json() == {}
    models = client.get(f"{API}/registered-models/search", headers=bob).json()
    assert [m["name"] for m in models["registered_models"]] == ["public-model"]
    everything = client.get(f"{API}/registered-models/search", headers=alice).json()
    assert len(everything["registered_models"]) == 2


class RecordsCreators(HeaderAuth):
    def __init__(self):
        super().__init__()
        self.created = []

    @hookimpl
    def resource_created(self, identity, resource):
        self.created.append((identity, dict(resource)))


def test_hook_resource_created(plugin, server):
    auth = plugin(RecordsCreators(), "records-creators")
    client = server()
    exp_id = client.post(f"{API}/experiments/create", json={"name": "mine"},
                         headers={"X-User": "carol"}).json()["experiment_id"]
    client.post(f"{API}/registered-models/create", json={"name": "m"},
                headers={"X-User": "dave"})
    assert auth.created == [("carol", {"experiment_id": exp_id}),
                            ("dave", {"registered_model": "m"})]
    # A refused creation tells nobody.
    client.post(f"{API}/experiments/create", json={"name": "mine"}, headers={"X-User": "carol"})
    assert len(auth.created) == 2


def test_hook_check_startup(plugin, tmp_path, monkeypatch):
    from click.testing import CliRunner

    from tracklog.cli import cli

    class Refuses:
        @hookimpl
        def check_startup(self, config):
            raise TracklogError(f"refusing to serve {config.backend_store_uri}")

    plugin(Refuses(), "refuses")
    plugins.call_hook("register_commands", cli=cli)  # as main() does: adds `server`
    monkeypatch.chdir(tmp_path)
    uri = f"sqlite:///{tmp_path / 'x.db'}"
    result = CliRunner().invoke(cli, ["server", "--backend-store-uri", uri, "--port", "0"])
    assert result.exit_code == 1
    assert result.output.strip() == f"Error: refusing to serve {uri}"


class RecordsRenames(HeaderAuth):
    def __init__(self):
        super().__init__()
        self.renamed = []

    @hookimpl
    def resource_renamed(self, identity, resource, renamed_to):
        self.renamed.append((identity, dict(resource), dict(renamed_to)))


def test_hook_resource_renamed(plugin, server):
    auth = plugin(RecordsRenames(), "records-renames")
    client = server()
    who = {"X-User": "erin"}
    client.post(f"{API}/registered-models/create", json={"name": "before"}, headers=who)
    r = client.post(f"{API}/registered-models/rename",
                    json={"name": "before", "new_name": "after"}, headers=who)
    assert r.status_code == 200
    assert auth.renamed == [("erin", {"registered_model": "before"},
                             {"registered_model": "after"})]
    client.post(f"{API}/registered-models/rename",
                json={"name": "missing", "new_name": "x"}, headers=who)
    assert len(auth.renamed) == 1
