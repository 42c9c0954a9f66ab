"""The plugin documentation stays true to the code: every hook is documented with its
exact signature, every hook has a test named ``test_hook_<name>``, and the documented
conformance-kit example runs and passes."""

import ast
import inspect
import re
import types
from pathlib import Path

import click
import pytest

from tracklog import hookspecs
from tracklog.config import ServerConfig
from tracklog.errors import PluginError
from tracklog.plugins import register_plugin, unregister_plugin

ROOT = Path(__file__).resolve().parents[2]
GUIDE = (ROOT / "docs" / "plugins.md").read_text()
API = "/api/2.0/mlflow"
HOOKS = {
    name: fn
    for name, fn in inspect.getmembers(hookspecs, inspect.isfunction)
    if hasattr(fn, "tracklog_spec")
}


def test_there_are_hooks():
    assert {"register_tracking_stores", "register_artifact_repositories", "startup"} <= set(HOOKS)


@pytest.mark.parametrize("name", sorted(HOOKS))
def test_hook_documented_with_exact_signature(name):
    params = ", ".join(inspect.signature(HOOKS[name]).parameters)
    assert f"### {name}({params})\n" in GUIDE


def test_guide_documents_no_unknown_hook():
    documented = set(re.findall(r"^### (\w+)\(", GUIDE, re.M))
    assert documented == set(HOOKS)


@pytest.mark.parametrize("name", sorted(HOOKS))
def test_hook_has_docstring_with_call_semantics(name):
    doc = " ".join((inspect.getdoc(HOOKS[name]) or "").split())
    semantics = ("first non-none result wins", "all implementations are called")
    assert any(phrase in doc.lower() for phrase in semantics)


@pytest.mark.parametrize("name", sorted(HOOKS))
def test_every_hook_has_a_test(name):
    sources = [
        p.read_text() for d in ("core/tests", "tests") for p in (ROOT / d).rglob("test_*.py")
    ]
    assert any(f"def test_hook_{name}(" in s for s in sources), f"no test_hook_{name}"


def test_guide_kit_example_runs(pytester):
    blocks = re.findall(r"```python\n(.*?)```", GUIDE, re.S)
    example = next(b for b in blocks if "ArtifactRepositoryConformance" in b)
    pytester.makepyfile(test_guide_example=example)
    result = pytester.runpytest_inprocess("-q", "-p", "no:cacheprovider")
    outcomes = result.parseoutcomes()
    assert outcomes.get("passed", 0) > 20 and "failed" not in outcomes, outcomes


# --- the guide's worked examples, one per hook, run for real ------------------------------


def _example(hook: str) -> str:
    """The first Python block of the guide's section on ``hook``."""
    section = GUIDE.split(f"### {hook}(", 1)[1]
    section = re.split(r"^##+ ", section, maxsplit=1, flags=re.M)[0]
    return re.findall(r"```python\n(.*?)```", section, re.S)[0]


def _load(hook: str, name: str):
    module = types.ModuleType(name)
    exec(compile(_example(hook), f"docs/plugins.md ({hook})", "exec"), module.__dict__)
    return module


@pytest.mark.parametrize("name", sorted(HOOKS))
def test_hook_example_implements_the_hook(name):
    tree = ast.parse(_example(name))
    impls = [
        node.name for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef)
        and any(ast.unparse(d) == "hookimpl" for d in node.decorator_list)
    ]
    assert name in impls, f"the example for {name} does not implement it"
    params = set(inspect.signature(HOOKS[name]).parameters)
    impl = next(n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name == name)
    assert {a.arg for a in impl.args.args} <= params


@pytest.fixture
def plugin():
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
    from fastapi.testclient import TestClient

    from tracklog.server import create_app

    clients = []

    def start():
        config = ServerConfig(
            backend_store_uri=f"sqlite:///{tmp_path / 'guide.db'}",
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


def test_example_register_tracking_stores_registers_its_scheme():
    module = _load("register_tracking_stores", "guide_kv_store")
    registered = {}
    module.register_tracking_stores(lambda scheme, factory: registered.update({scheme: factory}))
    assert list(registered) == ["kv"]
    with pytest.raises(ModuleNotFoundError, match="tracklog_kv_store"):
        registered["kv"]("kv://db:7000/ns", None)  # the store module is the plugin's own


def test_example_artifact_repository_passes_the_kit(pytester):
    pytester.makepyfile(guide_memory_repository=_example("register_artifact_repositories"))
    pytester.makepyfile(test_guide_memory='''
import uuid

import pytest

import guide_memory_repository as example
from tracklog.plugins import register_plugin, unregister_plugin
from tracklog.testing.artifacts import ArtifactRepositoryConformance, ArtifactRequirements


@pytest.fixture(scope="module", autouse=True)
def memory_plugin():
    register_plugin(example, "guide-memory")
    yield
    unregister_plugin("guide-memory")


class TestMemoryRepository(ArtifactRepositoryConformance):
    requirements = ArtifactRequirements(large_files=False)

    @pytest.fixture
    def repo(self):
        yield example.MemoryRepository(f"memory://{uuid.uuid4().hex}")
''')
    pytester.syspathinsert()
    result = pytester.runpytest_inprocess("-q", "-p", "no:cacheprovider")
    outcomes = result.parseoutcomes()
    assert outcomes.get("passed", 0) > 20 and "failed" not in outcomes, result.stdout.str()


def test_example_register_commands_counts_runs(tmp_path):
    from click.testing import CliRunner

    from tracklog.plugins import resolve_store

    uri = f"sqlite:///{tmp_path / 'cli.db'}"
    store = resolve_store(uri, str(tmp_path / "artifacts"))
    exp_id = store.create_experiment("counted")
    for _ in range(3):
        store.create_run(exp_id, "ada", 1)
    store.close()
    group = click.Group()
    _load("register_commands", "guide_report").register_commands(cli=group)
    result = CliRunner().invoke(group, ["count-runs", uri, "--experiment-id", exp_id])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "3"


def _tokens_file(tmp_path, monkeypatch):
    path = tmp_path / "tokens"
    path.write_text("alice a-token\nbob b-token\ncarol c-token\n")
    monkeypatch.setenv("TRACKLOG_TOKENS_FILE", str(path))


def test_example_authenticate_and_authorize(plugin, server, tmp_path, monkeypatch):
    _tokens_file(tmp_path, monkeypatch)
    monkeypatch.setenv("TRACKLOG_EDITORS", "alice")
    monkeypatch.setenv("TRACKLOG_ADMINS", "carol")
    plugin(_load("authenticate", "guide_tokens"), "guide-tokens")
    plugin(_load("authorize", "guide_roles"), "guide-roles")
    client = server()

    def as_user(token):
        return {"Authorization": f"Bearer {token}"}

    anonymous = client.get(f"{API}/experiments/get", params={"experiment_id": "0"})
    assert anonymous.status_code == 401
    assert anonymous.json()["error_code"] == "UNAUTHENTICATED"
    wrong = client.get(f"{API}/experiments/get", params={"experiment_id": "0"},
                       headers=as_user("nope"))
    assert wrong.status_code == 401 and wrong.json()["message"] == "Unknown token."
    assert client.get(f"{API}/experiments/get", params={"experiment_id": "0"},
                      headers=as_user("b-token")).status_code == 200
    refused = client.post(f"{API}/experiments/create", json={"name": "x"},
                          headers=as_user("b-token"))
    assert refused.status_code == 403 and refused.json()["error_code"] == "PERMISSION_DENIED"
    created = client.post(f"{API}/experiments/create", json={"name": "x"},
                          headers=as_user("a-token"))
    exp_id = created.json()["experiment_id"]
    assert client.post(f"{API}/experiments/delete", json={"experiment_id": exp_id},
                       headers=as_user("a-token")).status_code == 403
    assert client.post(f"{API}/experiments/delete", json={"experiment_id": exp_id},
                       headers=as_user("c-token")).status_code == 200


def test_example_asgi_middleware(plugin, server, monkeypatch):
    monkeypatch.setenv("TRACKLOG_INSTANCE", "worker-7")
    plugin(_load("asgi_middleware", "guide_instance"), "guide-instance")
    response = server().get("/health")
    assert response.status_code == 200 and response.headers["x-instance"] == "worker-7"


def test_example_register_routes(plugin, server):
    plugin(_load("register_routes", "guide_counts"), "guide-counts")
    client = server()
    exp_id = client.post(f"{API}/experiments/create", json={"name": "c"}).json()["experiment_id"]
    for _ in range(2):
        client.post(f"{API}/runs/create", json={"experiment_id": exp_id, "start_time": 1})
    answer = client.get("/counts/runs", params={"experiment_id": exp_id})
    assert answer.json() == {"experiment_id": exp_id, "runs": 2, "more": False}


def test_example_startup(plugin, server, tmp_path, monkeypatch):
    monkeypatch.delenv("TRACKLOG_TOKENS_FILE", raising=False)
    plugin(_load("startup", "guide_startup"), "guide-startup")
    with pytest.raises(PluginError, match="'guide-startup'.* raised in startup.*TOKENS_FILE"):
        server()
    _tokens_file(tmp_path, monkeypatch)
    assert server().get("/health").status_code == 200
