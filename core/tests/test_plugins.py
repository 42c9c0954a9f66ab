"""Plugin loading, tested with real distributions installed from core/tests/plugin_dists.

Each fixture distribution is built and installed into its own target directory with
``uv pip install --target``; a command then runs with that directory on PYTHONPATH, so
tracklog discovers it through ordinary entry-point metadata.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

DISTS = Path(__file__).parent / "plugin_dists"
HEAVY = ("sqlalchemy", "alembic", "yaml", "fastapi", "starlette", "uvicorn", "boto3", "pydantic",
         "google")


def _uv() -> str:
    local = Path(sys.executable).with_name("uv")
    found = str(local) if local.exists() else shutil.which("uv")
    if found is None:
        pytest.skip("uv is needed to build the fixture plugin distributions")
    return found


@pytest.fixture(scope="session")
def installed(tmp_path_factory) -> dict[str, str]:
    """Install every fixture distribution into its own directory; name -> directory."""
    uv = _uv()
    out = {}
    for dist in sorted(p for p in DISTS.iterdir() if p.is_dir()):
        target = tmp_path_factory.mktemp(dist.name)
        subprocess.run(
            [uv, "pip", "install", "--quiet", "--no-deps", "--python", sys.executable,
             "--target", str(target), str(dist)],
            check=True,
            capture_output=True,
        )
        out[dist.name] = str(target)
    return out


def tracklog(installed, *args, dists=(), env=None, code=None):
    """Run ``python -m tracklog ARGS`` with the given fixture distributions installed."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("TRACKLOG_")}
    full_env["PYTHONPATH"] = os.pathsep.join(installed[d] for d in dists)
    full_env.update(env or {})
    cmd = [sys.executable, "-c" if code else "-m", code or "tracklog", *args]
    return subprocess.run(cmd, capture_output=True, text=True, env=full_env, timeout=60)


def _by_name(listing):
    return {p["name"]: p for p in json.loads(listing)}


def test_plugins_json_lists_builtins_and_installed(installed):
    result = tracklog(installed, "plugins", "--json", dists=["tracklog-example-good"])
    assert result.returncode == 0, result.stderr
    plugins = _by_name(result.stdout)
    local = plugins["tracklog.builtin.local_artifacts"]
    assert local["builtin"] is True
    assert local["distribution"] == "tracklog-core"
    assert local["artifact_schemes"] == ["file"]
    good = plugins["example-good"]
    assert good == {
        "name": "example-good",
        "distribution": "tracklog-example-good",
        "version": "1.2.3",
        "builtin": False,
        "hooks": ["register_artifact_repositories", "register_commands"],
        "tracking_schemes": [],
        "artifact_schemes": ["example"],
        "options": [],
        "error": None,
    }


def test_plugins_table_shows_schemes(installed):
    result = tracklog(installed, "plugins", dists=["tracklog-example-good"])
    assert result.returncode == 0, result.stderr
    line = next(row for row in result.stdout.splitlines() if row.startswith("example-good"))
    assert "tracklog-example-good" in line and "1.2.3" in line
    assert "example:// (artifacts)" in line


def test_hook_register_commands(installed):
    result = tracklog(installed, "hello", "ada", dists=["tracklog-example-good"])
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "hello ada from a plugin"
    helptext = tracklog(installed, "--help", dists=["tracklog-example-good"]).stdout
    assert "hello" in helptext


def test_hook_register_artifact_repositories(installed, tmp_path):
    code = (
        "import io, sys\n"
        "from tracklog.plugins import resolve_repository\n"
        "repo = resolve_repository('example://' + sys.argv[1])\n"
        "repo.write_artifact('x/y.txt', io.BytesIO(b'through a plugin'))\n"
        "print(type(repo).__name__, [f.path for f in repo.list_artifacts('x')])\n"
    )
    result = tracklog(installed, str(tmp_path), dists=["tracklog-example-good"], code=code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "LocalArtifactRepository ['x/y.txt']"
    assert (tmp_path / "x" / "y.txt").read_bytes() == b"through a plugin"


def _broken_plugin(installed, dist):
    """``tracklog plugins`` lists the broken plugin of ``dist`` with its error (and the good
    one beside it); ``--help`` still runs; another command stops with one line. Returns
    that line."""
    dists = [dist, "tracklog-example-good"]
    listing = tracklog(installed, "plugins", "--json", dists=dists)
    assert listing.returncode == 0, listing.stderr
    plugins = _by_name(listing.stdout)
    assert plugins["example-good"]["error"] is None
    broken = [p for p in plugins.values() if p["error"]]
    assert [p["distribution"] for p in broken] == [dist]
    table = tracklog(installed, "plugins", dists=dists)
    assert table.returncode == 0, table.stderr
    assert "error: " in table.stdout
    helptext = tracklog(installed, "--help", dists=dists)
    assert helptext.returncode == 0 and "hello" in helptext.stdout
    assert broken[0]["name"] in helptext.stdout.split("Broken plugins")[1]
    other = tracklog(installed, "hello", "ada", dists=dists)
    assert other.returncode == 1 and other.stdout == ""
    assert "Traceback" not in other.stderr
    (line,) = other.stderr.splitlines()
    assert line == f"Error: {broken[0]['error']}" or broken[0]["error"] in line
    return line


def test_import_failure_names_entry_point_distribution_and_version(installed):
    line = _broken_plugin(installed, "tracklog-example-broken")
    assert "'example-broken'" in line
    assert "tracklog-example-broken 1.2.3" in line
    assert "imaginary_storage_sdk" in line


def test_scheme_conflict_names_both_plugins(installed):
    line = _broken_plugin(installed, "tracklog-example-conflict")
    assert "'file'" in line and "claimed by two plugins" in line
    assert "tracklog.builtin.local_artifacts" in line
    assert "'example-conflict' (tracklog-example-conflict 1.2.3)" in line


def test_misspelled_hook_is_an_error_with_a_suggestion(installed):
    line = _broken_plugin(installed, "tracklog-example-typo")
    assert "register_comands, which is no tracklog hook (did you mean register_commands?)" in line
    assert "tracklog-example-typo 1.2.3" in line


def test_load_plugins_env_warns_of_a_name_not_installed(installed):
    result = tracklog(installed, "plugins", "--json", dists=["tracklog-example-good"],
                      env={"TRACKLOG_LOAD_PLUGINS": "example-good,nosuch"})
    assert result.returncode == 0, result.stderr
    assert "example-good" in _by_name(result.stdout)
    assert result.stderr.strip() == (
        "TRACKLOG_LOAD_PLUGINS names 'nosuch', but no tracklog plugin of that entry-point "
        "or distribution name is installed")


def test_plugins_table_fits_a_hundred_columns(installed):
    result = tracklog(installed, "plugins", dists=["tracklog-example-good"])
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["plugin", "distribution", "version", "schemes"]
    assert max(len(line) for line in lines) <= 100, result.stdout
    sql = lines.index(next(line for line in lines if line.startswith("store-sql ")))
    schemes_at = lines[0].index("schemes")
    wrapped = [lines[sql][schemes_at:]]
    wrapped += [line[schemes_at:] for line in lines[sql + 1:] if line[:schemes_at].isspace()]
    assert " ".join(wrapped).split(", ")[:2] == ["sqlite:// (store)", "postgresql:// (store)"]
    hooks = next(line for line in lines[sql + 1:] if line.startswith("    hooks: "))
    assert "register_tracking_stores" in hooks


def test_load_plugins_env_selects_by_distribution_or_entry_point(installed):
    both = ["tracklog-example-good", "tracklog-example-broken"]
    for selector in ("tracklog-example-good", "example-good"):
        result = tracklog(
            installed, "plugins", "--json", dists=both, env={"TRACKLOG_LOAD_PLUGINS": selector}
        )
        assert result.returncode == 0, result.stderr  # the broken one is never imported
        names = set(_by_name(result.stdout))
        assert "example-good" in names and "example-broken" not in names
        assert "store-sql" not in names


def test_load_plugins_env_empty_loads_builtins_only(installed):
    result = tracklog(
        installed, "plugins", "--json", dists=["tracklog-example-good"],
        env={"TRACKLOG_LOAD_PLUGINS": ""},
    )
    assert result.returncode == 0, result.stderr
    plugins = _by_name(result.stdout)
    assert plugins and all(p["builtin"] for p in plugins.values())


def test_trace_plugins_prints_hook_calls(installed):
    result = tracklog(
        installed, "plugins", dists=["tracklog-example-good"],
        env={"TRACKLOG_TRACE_PLUGINS": "1"},
    )
    assert result.returncode == 0, result.stderr
    assert "register_artifact_repositories" in result.stderr
    assert "register_commands" in result.stderr


def test_unknown_scheme_lists_installed_and_names_distribution(installed):
    code = (
        "from tracklog.plugins import resolve_repository, resolve_store\n"
        "for f, uri in ((resolve_repository, 'gs://bucket/x'), (resolve_repository, 'zz://x'),"
        " (resolve_store, 'postgresql+psycopg2://u:hunter2@h/db')):\n"
        "    try:\n"
        "        f(uri)\n"
        "    except Exception as e:\n"
        "        print(type(e).__name__, e.error_code.value, e)\n"
    )
    result = tracklog(
        installed, dists=["tracklog-example-good"], code=code,
        env={"TRACKLOG_LOAD_PLUGINS": "example-good"},
    )
    lines = result.stdout.splitlines()
    assert len(lines) == 3, result.stderr
    gs, unknown, pg = lines
    assert gs.startswith("TracklogError INVALID_PARAMETER_VALUE")
    assert "gs:// needs tracklog-artifacts-gcs" in gs
    assert "example://" in gs and "file://" in gs
    assert "needs" not in unknown and "zz://" in unknown
    assert "postgresql:// needs tracklog-store-sql" in pg
    assert "hunter2" not in pg


def test_import_tracklog_and_plugins_command_stay_light(installed):
    """Neither ``import tracklog`` nor ``tracklog plugins`` (with every workspace plugin
    installed) imports a storage or web library."""
    code = (
        "import sys\n"
        "import tracklog\n"
        f"heavy = {HEAVY!r}\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy))\n"
        "sys.argv = ['tracklog', 'plugins']\n"
        "from tracklog.cli import main\n"
        "try:\n"
        "    main()\n"
        "except SystemExit:\n"
        "    pass\n"
        "print(sorted({m.split('.')[0] for m in sys.modules if m.split('.')[0] in heavy}))\n"
    )
    result = tracklog(installed, dists=["tracklog-example-good"], code=code)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "[]"
    assert lines[-1] == "[]"
    assert "store-sql" in result.stdout  # the workspace plugins were loaded


def test_load_plugins_is_idempotent():
    from tracklog import plugins

    plugins.load_plugins()
    before = {plugins.pm.get_name(p) for p in plugins.pm.get_plugins()}
    plugins.load_plugins()
    assert {plugins.pm.get_name(p) for p in plugins.pm.get_plugins()} == before
    assert set(plugins.BUILTIN_PLUGINS) <= before
