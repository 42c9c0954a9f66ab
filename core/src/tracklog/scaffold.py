"""``tracklog plugins new``: a new plugin distribution that works as written.

Each kind implements its hook with a small real implementation and ships tests that
prove it: the conformance kit for stores and artifact repositories, the server itself
(built in-process) for authentication and routes.

- ``store``: a tracking store for ``NAME:`` URIs, kept in one SQLite file through
  tracklog-store-sql's store (the whole tracking kit, registry included);
- ``artifacts``: a local-directory repository under the ``NAME:`` scheme (the artifact kit);
- ``auth``: a bearer-token check against an environment variable;
- ``routes``: one JSON route under ``/NAME/``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from string import Template

from tracklog import __version__, errors

KINDS = ("store", "artifacts", "auth", "routes")

_NAME = re.compile(r"[a-z][a-z0-9]*(-[a-z0-9]+)*")
#: Schemes a new plugin must not take: tracklog's own, MLflow's client-side ones, and
#: those of the plugins tracklog knows.
_RESERVED = {"file", "mlflow-artifacts", "http", "https", "runs", "models", "dbfs",
             "sqlite", "postgresql", "mysql", "mariadb", "mssql", "s3", "gs", "wasbs",
             "abfss", "sftp", "ftp", "hdfs", "webhdfs", "core", "server", "ui"}


@dataclass(frozen=True)
class Names:
    """Every name a plugin called ``base`` goes by."""

    base: str  # entry point name, URI scheme, route prefix
    distribution: str
    module: str
    cls: str  # CamelCase stem of class names
    token_env: str

    @classmethod
    def of(cls, name: str) -> Names:
        base = name.strip().lower()
        base = base.removeprefix("tracklog-")
        if not _NAME.fullmatch(base):
            raise errors.invalid(
                f"Invalid plugin name {name!r}: use lower-case letters, digits and single "
                "dashes, starting with a letter (e.g. acme or acme-store)"
            )
        if base in _RESERVED:
            raise errors.invalid(f"Invalid plugin name {name!r}: {base!r} is taken by "
                                 "tracklog or MLflow")
        return cls(
            base=base,
            distribution=f"tracklog-{base}",
            module="tracklog_" + base.replace("-", "_"),
            cls="".join(part.capitalize() for part in base.split("-")),
            token_env=base.upper().replace("-", "_") + "_TOKEN",
        )


def render(name: str, kind: str) -> dict[str, str]:
    """The files of a new ``kind`` plugin called ``name``: relative path → text."""
    if kind not in KINDS:
        raise errors.invalid(f"Invalid plugin kind {kind!r}: one of {', '.join(KINDS)}")
    n = Names.of(name)
    values = {
        "base": n.base, "distribution": n.distribution, "module": n.module, "Cls": n.cls,
        "token_env": n.token_env, "kind": kind, "core_version": __version__,
    }
    spec = _KIND_FILES[kind]
    values["description"] = Template(spec["description"]).substitute(values)
    values["extra_dependencies"] = "".join(f'\n    "{d}",' for d in spec.get("dependencies", ()))
    values["usage"] = Template(spec["usage"]).substitute(values)
    values["tests"] = Template(spec["tests"]).substitute(values)
    values["layout_more"] = Template(spec["layout_more"]).substitute(values)
    files = {
        "pyproject.toml": _PYPROJECT,
        "README.md": _README,
        f"src/{n.module}/__init__.py": _INIT,
        "tests/conftest.py": _CONFTEST,
    }
    for path, text in spec["files"].items():
        files[Template(path).substitute(values)] = text
    return {path: Template(text).substitute(values) for path, text in files.items()}


def write_plugin(name: str, kind: str, directory: str | Path | None = None) -> tuple[Path,
                                                                                    list[str]]:
    """Write a new plugin into ``directory`` (default ``./tracklog-NAME``), which must not
    exist or be empty; returns the directory and the files written."""
    files = render(name, kind)
    target = Path(directory) if directory else Path.cwd() / Names.of(name).distribution
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise errors.invalid(f"{target} already exists and is not an empty directory")
    for path, text in files.items():
        out = target / path
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text, encoding="utf-8")
    return target, sorted(files)


# --- files every kind has ---------------------------------------------------------------

_PYPROJECT = '''\
[project]
name = "$distribution"
version = "0.1.0"
description = "$description"
readme = "README.md"
requires-python = ">=3.11"
dependencies = [
    "tracklog-core>=$core_version",$extra_dependencies
]

[project.optional-dependencies]
test = ["tracklog-core[testing]>=$core_version", "pytest>=8"]

# The entry point that makes tracklog load this plugin: group "tracklog", any name.
[project.entry-points.tracklog]
$base = "$module.plugin"

[build-system]
requires = ["hatchling>=1.25"]
build-backend = "hatchling.build"

[tool.hatch.build.targets.wheel]
packages = ["src/$module"]

[tool.pytest.ini_options]
testpaths = ["tests"]
addopts = "--import-mode=importlib -p no:cacheprovider"
'''

_INIT = '''\
"""$description."""

__version__ = "0.1.0"
'''

_CONFTEST = '''\
"""These tests load this plugin alone, with tracklog's built-ins, whatever else is
installed beside it: they prove what this plugin does by itself."""

import os

os.environ.setdefault("TRACKLOG_LOAD_PLUGINS", "$base")
'''

_README = '''\
# $distribution

$description.

Written by `tracklog plugins new $base --kind $kind`; a tracklog plugin is a distribution
with one entry point in the group `tracklog` (see `pyproject.toml`), whose module
implements some of the hooks documented in `tracklog.hookspecs`.

## Install

```bash
pip install -e '.[test]'    # or: uv pip install -e '.[test]'
tracklog plugins            # lists "$base"
```

## Use

$usage

## Test

```bash
pytest
```

$tests

## Layout

- `src/$module/plugin.py`: the hook implementations. `tracklog --help` imports
  every plugin module, so this one imports nothing heavy: libraries are imported inside
  the functions that need them.
$layout_more- `tests/`: run with the plugin installed; `tests/conftest.py` loads this plugin alone.
'''


# --- store ------------------------------------------------------------------------------

_STORE_PLUGIN = '''\
"""Registers the tracking store for `$base:` URIs."""

from tracklog import hookimpl

SCHEME = "$base"


def open_store(store_uri, default_artifact_root):
    """The store for one URI; its storage library is imported here, when a store is
    opened, not when tracklog loads the plugin."""
    from $module.store import ${Cls}Store

    return ${Cls}Store(store_uri, default_artifact_root)


@hookimpl
def register_tracking_stores(register):
    register(SCHEME, open_store)
'''

_STORE_MODULE = '''\
"""The `$base:` tracking store.

`$base:///path/to/tracking.db` (or `$base:relative/path.db`) names one SQLite file
holding experiments, runs, logged models and the model registry, through the store of
tracklog-store-sql, which passes the whole conformance kit. It is the starting point to
change: put your own storage behind `tracklog.stores.TrackingStore` (and
`tracklog.stores.ModelRegistryStore` for the registry) method by method, keeping
`tests/test_conformance.py` passing.
"""

import os
from urllib.parse import unquote, urlsplit

from tracklog import errors
from tracklog_store_sql.store import SqlTrackingStore


def database_path(store_uri):
    """The absolute path of the SQLite file a `$base:` URI names."""
    parts = urlsplit(store_uri)
    if (parts.scheme != "$base" or parts.netloc not in ("", "localhost") or not parts.path
            or parts.query or parts.fragment):
        raise errors.invalid(
            f"Invalid store URI {store_uri!r}: expected $base:///absolute/path.db or "
            "$base:relative/path.db"
        )
    return os.path.abspath(unquote(parts.path))


class ${Cls}Store(SqlTrackingStore):
    def __init__(self, store_uri, default_artifact_root=None):
        super().__init__(f"sqlite:///{database_path(store_uri)}", default_artifact_root)
'''

_STORE_TEST = '''\
"""The tracking-store conformance kit against the `$base:` store, opened through its URI
as the server opens it (so the entry point is exercised too)."""

import shutil

import pytest
from tracklog.errors import ErrorCode, TracklogError
from tracklog.plugins import load_plugins, plugin_infos, resolve_store
from tracklog.testing.tracking import StoreRequirements, TrackingStoreConformance

#: The artifact root of new experiments: the server's own when it proxies artifacts.
ROOT = "mlflow-artifacts:/"


@pytest.fixture(scope="session")
def template(tmp_path_factory):
    """A database whose schema is created once; each test gets a copy of it."""
    path = tmp_path_factory.mktemp("template") / "tracking.db"
    resolve_store(f"$base://{path}", ROOT).close()
    return path


class Test${Cls}StoreConformance(TrackingStoreConformance):
    # What this store does beyond the required contract (see StoreRequirements).
    requirements = StoreRequirements(integer_experiment_ids=True, model_registry=True)

    @pytest.fixture
    def store(self, tmp_path, template):
        shutil.copyfile(template, tmp_path / "tracking.db")
        store = resolve_store(f"$base://{tmp_path}/tracking.db", ROOT)
        yield store
        store.close()

    @pytest.fixture
    def reopen(self, tmp_path):
        """A second store on the same data (the kit checks it sees the first's writes)."""
        return lambda: resolve_store(f"$base://{tmp_path}/tracking.db", ROOT)


def test_registered_for_its_scheme():
    load_plugins()
    info = next(i for i in plugin_infos() if i.name == "$base")
    assert info.distribution == "$distribution"
    assert info.tracking_schemes == ["$base"]


def test_uri_with_a_host_is_refused(tmp_path):
    with pytest.raises(TracklogError) as err:
        resolve_store("$base://elsewhere/tracking.db", str(tmp_path))
    assert err.value.error_code == ErrorCode.INVALID_PARAMETER_VALUE
    assert "$base:///absolute/path.db" in err.value.message
'''

# --- artifacts --------------------------------------------------------------------------

_ARTIFACTS_PLUGIN = '''\
"""Registers the artifact repository for `$base:` URIs."""

from tracklog import hookimpl

SCHEME = "$base"


def open_repository(artifact_uri):
    """The repository rooted at one URI; imported when first needed."""
    from $module.repository import ${Cls}ArtifactRepository

    return ${Cls}ArtifactRepository(artifact_uri)


@hookimpl
def register_artifact_repositories(register):
    register(SCHEME, open_repository)
'''

_ARTIFACTS_MODULE = '''\
"""Artifacts in a local directory, addressed as `$base:///path/to/directory`.

tracklog's `LocalArtifactRepository` does the work (writes land whole through a rename,
paths never leave the root, files stream in chunks); this class maps the `$base:` scheme
to the directory. To keep files somewhere else, subclass
`tracklog.artifacts.ArtifactRepository` instead and implement `_stat`, `_list`, `_open`,
`_write` and `_delete`, keeping `tests/test_conformance.py` passing.
"""

import os
from urllib.parse import unquote, urlsplit

from tracklog import errors
from tracklog.artifacts.local import LocalArtifactRepository


def directory_of(artifact_uri):
    """The absolute directory a `$base:` URI names."""
    parts = urlsplit(artifact_uri)
    if (parts.scheme != "$base" or parts.netloc not in ("", "localhost") or not parts.path
            or parts.query or parts.fragment):
        raise errors.invalid(
            f"Invalid artifact URI {artifact_uri!r}: expected $base:///absolute/directory"
        )
    return os.path.abspath(unquote(parts.path))


class ${Cls}ArtifactRepository(LocalArtifactRepository):
    def __init__(self, artifact_uri):
        super().__init__(artifact_uri)
        self.root = directory_of(artifact_uri)
'''

_ARTIFACTS_TEST = '''\
"""The artifact-repository conformance kit against `$base:` repositories, opened through
their URI as the server opens them."""

import pytest
from tracklog.errors import ErrorCode, TracklogError
from tracklog.plugins import load_plugins, plugin_infos, resolve_repository
from tracklog.testing.artifacts import ArtifactRepositoryConformance, ArtifactRequirements

from $module.repository import ${Cls}ArtifactRepository


class Test${Cls}ArtifactRepository(ArtifactRepositoryConformance):
    # A local file system keeps empty directories (see ArtifactRequirements).
    requirements = ArtifactRequirements(empty_directories=True)

    @pytest.fixture
    def repo(self, tmp_path):
        repo = resolve_repository(f"$base://{tmp_path}/artifacts")
        assert isinstance(repo, ${Cls}ArtifactRepository)
        yield repo


def test_files_land_in_the_directory(tmp_path):
    repo = resolve_repository(f"$base://{tmp_path}/store")
    source = tmp_path / "model.txt"
    source.write_text("weights")
    repo.log_artifact(source, "models")
    assert (tmp_path / "store" / "models" / "model.txt").read_text() == "weights"


def test_registered_for_its_scheme():
    load_plugins()
    info = next(i for i in plugin_infos() if i.name == "$base")
    assert info.distribution == "$distribution"
    assert info.artifact_schemes == ["$base"]


def test_uri_with_a_host_is_refused():
    with pytest.raises(TracklogError) as err:
        resolve_repository("$base://elsewhere/artifacts")
    assert err.value.error_code == ErrorCode.INVALID_PARAMETER_VALUE
'''

# --- auth -------------------------------------------------------------------------------

_AUTH_PLUGIN = '''\
"""Every request must carry the token set in the environment variable $token_env, as
`Authorization: Bearer <token>` (what the MLflow client sends when
MLFLOW_TRACKING_TOKEN is set). With $token_env unset or empty the server does not start."""

import hmac
import os

from tracklog import errors, hookimpl

TOKEN_ENV = "$token_env"


def expected_token():
    return os.environ.get(TOKEN_ENV, "")


@hookimpl
def startup():
    if not expected_token():
        raise RuntimeError(f"set {TOKEN_ENV} to the token clients must send")


@hookimpl
def authenticate(request):
    scheme, _, sent = request.headers.get("authorization", "").partition(" ")
    expected = expected_token()
    if (not expected or scheme.lower() != "bearer"
            or not hmac.compare_digest(sent.strip().encode(), expected.encode())):
        raise errors.TracklogError("A valid bearer token is required",
                                   errors.ErrorCode.UNAUTHENTICATED)
    return "token-holder"
'''

_AUTH_TEST = '''\
"""The token check, through the server application built in-process with this plugin
(artifact proxy only, so no tracking store plugin is needed)."""

import pytest
from fastapi.testclient import TestClient
from tracklog.config import ServerConfig
from tracklog.errors import PluginError
from tracklog.server import create_app

TOKEN = "s3cret-token"
ARTIFACT = "/api/2.0/mlflow-artifacts/artifacts/notes.txt"


@pytest.fixture
def app(tmp_path):
    config = ServerConfig(artifacts_only=True, artifacts_destination=str(tmp_path),
                          allowed_hosts=["testserver"])
    return create_app(config)


def test_requests_need_the_token(app, monkeypatch):
    monkeypatch.setenv("$token_env", TOKEN)
    with TestClient(app) as client:
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}):
            answer = client.put(ARTIFACT, content=b"nothing", headers=headers)
            assert answer.status_code == 401, headers
            assert answer.json()["error_code"] == "UNAUTHENTICATED"
        # A load balancer's health check never needs the token.
        assert client.get("/health").status_code == 200
        good = {"Authorization": f"Bearer {TOKEN}"}
        assert client.put(ARTIFACT, content=b"hello", headers=good).status_code == 200
        assert client.get(ARTIFACT, headers=good).content == b"hello"


def test_no_start_without_a_token(app, monkeypatch):
    monkeypatch.delenv("$token_env", raising=False)
    with pytest.raises(PluginError, match="$token_env"):
        with TestClient(app):
            pass
'''

# --- routes -----------------------------------------------------------------------------

_ROUTES_PLUGIN = '''\
"""Adds `GET /$base/status` to the server (under `--static-prefix`, if one is set)."""

from tracklog import hookimpl

from $module import __version__


@hookimpl
def register_routes(app, config):
    from tracklog.server import rule

    prefix = "/" + config.static_prefix.strip("/") if config.static_prefix.strip("/") else ""

    @app.get(prefix + "/$base/status")
    @rule("read")  # the action an authorization plugin is asked about
    async def status():
        return {"plugin": "$base", "version": __version__,
                "artifacts_only": config.artifacts_only}
'''

_ROUTES_TEST = '''\
"""The route, through the server application built in-process with this plugin
(artifact proxy only, so no tracking store plugin is needed)."""

from fastapi.testclient import TestClient
from tracklog.config import ServerConfig
from tracklog.plugins import load_plugins, plugin_infos
from tracklog.server import create_app

from $module import __version__


def client_for(tmp_path, **options):
    config = ServerConfig(artifacts_only=True, artifacts_destination=str(tmp_path),
                          allowed_hosts=["testserver"], **options)
    return TestClient(create_app(config))


def test_status_route(tmp_path):
    with client_for(tmp_path) as client:
        answer = client.get("/$base/status")
        assert answer.status_code == 200
        assert answer.json() == {"plugin": "$base", "version": __version__,
                                 "artifacts_only": True}
        assert client.post("/$base/status").status_code == 405


def test_route_follows_the_static_prefix(tmp_path):
    with client_for(tmp_path, static_prefix="/tracking") as client:
        assert client.get("/tracking/$base/status").status_code == 200
        assert client.get("/$base/status").status_code == 404


def test_registered():
    load_plugins()
    info = next(i for i in plugin_infos() if i.name == "$base")
    assert info.distribution == "$distribution"
    assert "register_routes" in info.hooks
'''

_KIND_FILES: dict[str, dict] = {
    "store": {
        "description": "tracklog tracking store for $base: URIs",
        "dependencies": [f"tracklog-store-sql>={__version__}"],
        "files": {
            "src/$module/plugin.py": _STORE_PLUGIN,
            "src/$module/store.py": _STORE_MODULE,
            "tests/test_conformance.py": _STORE_TEST,
        },
        "usage": '''\
```bash
tracklog server --backend-store-uri $base:///var/lib/tracking/tracking.db
```

`$base:///absolute/path.db` or `$base:relative/path.db` names the store's file.''',
        "tests": '''\
`tests/test_conformance.py` runs tracklog's tracking-store conformance kit (every
behaviour of the `TrackingStore` contract, the model registry included) against stores
opened through `$base:` URIs. The flags of `StoreRequirements` declare the optional
behaviours the store has; a kit test needing one the store does not declare is skipped
with its name.''',
        "layout_more": "- `src/$module/store.py`: the store.\n",
    },
    "artifacts": {
        "description": "tracklog artifact repository for $base: URIs",
        "files": {
            "src/$module/plugin.py": _ARTIFACTS_PLUGIN,
            "src/$module/repository.py": _ARTIFACTS_MODULE,
            "tests/test_conformance.py": _ARTIFACTS_TEST,
        },
        "usage": '''\
```bash
tracklog server --artifacts-destination $base:///srv/artifacts
```''',
        "tests": '''\
`tests/test_conformance.py` runs tracklog's artifact-repository conformance kit against
repositories opened through `$base:` URIs. `ArtifactRequirements` declares what the
storage offers (empty directories, multipart uploads, presigned downloads).''',
        "layout_more": "- `src/$module/repository.py`: the repository.\n",
    },
    "auth": {
        "description": "tracklog bearer-token authentication ($token_env)",
        "files": {
            "src/$module/plugin.py": _AUTH_PLUGIN,
            "tests/test_auth.py": _AUTH_TEST,
        },
        "usage": '''\
```bash
export $token_env=$$(python -c "import secrets; print(secrets.token_urlsafe(32))")
tracklog server
# clients:
export MLFLOW_TRACKING_TOKEN=<the same token>
```

Every request, `/health` included, must send `Authorization: Bearer <token>`; others get
401 `UNAUTHENTICATED`. Without `$token_env` the server refuses to start.''',
        "tests": '''\
`tests/test_auth.py` builds the server application with this plugin and checks that
requests without the token, or with a wrong one, get 401 while the right token reads and
writes artifacts.''',
        "layout_more": "",
    },
    "routes": {
        "description": "tracklog server routes under /$base/",
        "files": {
            "src/$module/plugin.py": _ROUTES_PLUGIN,
            "tests/test_routes.py": _ROUTES_TEST,
        },
        "usage": '''\
```bash
tracklog server
curl http://127.0.0.1:5000/$base/status
```

Routes added through `register_routes` get the server's host checks, error handling and
authentication; `tracklog.server.rule(action)` declares what an authorization plugin is
asked (without it, the route needs the `manage` action).''',
        "tests": '''\
`tests/test_routes.py` builds the server application with this plugin and calls the
route, with and without a `--static-prefix`.''',
        "layout_more": "",
    },
}
