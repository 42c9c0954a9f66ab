"""`tracklog plugins new`: every kind writes a distribution that installs, is listed by
`tracklog plugins`, is lint-clean and passes its own tests (the conformance kit for
stores and artifact repositories, the server application for auth and routes).

The generated plugins are installed, editable and without dependencies, into one
throwaway virtualenv that sees this checkout's environment through a ``.pth`` file: the
project's own environment is never changed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sysconfig
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.venvs import BIN, new_venv, run, uv
from tracklog.testing.server import TRACKLOG

pytestmark = pytest.mark.slow

KINDS = ("store", "artifacts", "auth", "routes")


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> tuple[Path, Path]:
    """(directory holding one plugin per kind, the throwaway venv's python)."""
    base = tmp_path_factory.mktemp("plugins-new")
    for kind in KINDS:
        done = run(TRACKLOG, "plugins", "new", f"demo-{kind}", "--kind", kind,
                   "--dir", base / kind)
        assert done.returncode == 0, done.stderr
        assert f"Wrote tracklog-demo-{kind} ({kind} plugin) in {base / kind}:" in done.stdout
    python = new_venv(base / "venv")
    purelib = run(python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))")
    # addsitedir also runs the .pth files there: the workspace's editable installs.
    Path(purelib.stdout.strip(), "_tracklog_checkout.pth").write_text(
        f"import site; site.addsitedir({sysconfig.get_path('purelib')!r})\n")
    editable = [arg for kind in KINDS for arg in ("-e", base / kind)]
    uv("pip", "install", "-q", "--python", python, "--no-deps", *editable)
    return base, python


def test_generated_plugins_pass_their_own_tests(generated):
    base, python = generated
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    # All at once: the store's kit takes longest, the others finish beside it.
    runs = {kind: subprocess.Popen([str(python), "-m", "pytest", "-q"], cwd=base / kind,
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, text=True, env=env)
            for kind in KINDS}
    results = {kind: (p.communicate(timeout=600)[0], p.returncode) for kind, p in runs.items()}
    for kind, (output, code) in results.items():
        summary = output.strip().splitlines()[-1]
        assert code == 0, f"{kind}:\n{output[-3000:]}"
        assert " passed" in summary and "failed" not in summary and "error" not in summary, \
            f"{kind}: {summary}"
    # The kits really ran: the store's tracking kit and the artifact kit, whole.
    assert int(results["store"][0].strip().splitlines()[-1].split()[0]) > 100
    assert int(results["artifacts"][0].strip().splitlines()[-1].split()[0]) > 40


def test_tracklog_plugins_lists_them(generated):
    base, python = generated
    done = run(python, "-m", "tracklog", "plugins", "--json")
    assert done.returncode == 0, done.stderr
    infos = {i["name"]: i for i in json.loads(done.stdout)}
    for kind in KINDS:
        assert infos[f"demo-{kind}"]["distribution"] == f"tracklog-demo-{kind}"
        assert infos[f"demo-{kind}"]["version"] == "0.1.0"
    assert infos["demo-store"]["tracking_schemes"] == ["demo-store"]
    assert infos["demo-artifacts"]["artifact_schemes"] == ["demo-artifacts"]
    assert infos["demo-auth"]["hooks"] == ["authenticate", "startup"]
    assert infos["demo-routes"]["hooks"] == ["register_routes"]
    table = run(python, "-m", "tracklog", "plugins").stdout.splitlines()
    row = next(line for line in table if line.startswith("demo-store "))
    assert "tracklog-demo-store" in row and "demo-store:// (store)" in row


def test_generated_code_is_lint_clean(generated):
    base, _ = generated
    for kind in KINDS:
        done = run(BIN / "ruff", "check", "--no-cache", "--isolated", "--select",
                   "E,F,I,B,UP,W", "--line-length", "100", "--target-version", "py311", ".",
                   cwd=base / kind)
        assert done.returncode == 0, f"{kind}: {done.stdout}"


def test_refusals_are_one_line(tmp_path):
    from tracklog.cli import cli

    runner = CliRunner()
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "keep.txt").write_text("x")
    cases = [
        (["plugins", "new", "sqlite", "--kind", "store"], "'sqlite' is taken"),
        (["plugins", "new", "My_Plugin", "--kind", "routes"], "Invalid plugin name 'My_Plugin'"),
        (["plugins", "new", "ok", "--kind", "auth", "--dir", str(taken)],
         "is not an empty directory"),
    ]
    for args, expected in cases:
        result = runner.invoke(cli, args)
        assert result.exit_code == 1, result.output
        assert result.output.count("\n") == 1 and expected in result.output, result.output
    assert (taken / "keep.txt").read_text() == "x" and len(list(taken.iterdir())) == 1
    bad_kind = runner.invoke(cli, ["plugins", "new", "ok", "--kind", "database"])
    assert bad_kind.exit_code == 2 and "'database' is not one of" in bad_kind.output


def test_plugins_listing_stays_a_command():
    """`tracklog plugins` and `tracklog plugins --json` list as before the group existed."""
    from tracklog.cli import cli

    runner = CliRunner()
    listing = runner.invoke(cli, ["plugins"])
    assert listing.exit_code == 0
    # Hooks are listed on indented lines under each row (the table fits 100 columns).
    assert listing.output.splitlines()[0].split() == ["plugin", "distribution", "version",
                                                     "schemes"]
    assert "hooks:" in listing.output
    as_json = runner.invoke(cli, ["plugins", "--json"])
    assert as_json.exit_code == 0
    names = [i["name"] for i in json.loads(as_json.output)]
    assert "tracklog.builtin.server" in names
