"""Nothing is published to a package index: `uv build --all-packages` makes a wheel of
every distribution of the workspace, and those wheels install into a fresh virtualenv
(third-party dependencies from the index, at the versions this checkout pins) where
`tracklog plugins` lists every plugin and a server starts and serves."""

from __future__ import annotations

import json
import re
import subprocess
import time
import tomllib
from pathlib import Path

import httpx
import pytest

from tests.venvs import new_venv, run, uv
from tracklog.testing.server import free_port

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]


def normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "_", name).lower()


def workspace() -> dict[str, dict]:
    """Every distribution of the workspace: name → its [project] table."""
    root = tomllib.loads((ROOT / "pyproject.toml").read_text())
    dirs = [ROOT] + [d for pattern in root["tool"]["uv"]["workspace"]["members"]
                     for d in sorted(ROOT.glob(pattern)) if (d / "pyproject.toml").exists()]
    projects = [tomllib.loads((d / "pyproject.toml").read_text())["project"] for d in dirs]
    return {p["name"]: p for p in projects}


def test_wheels_install_into_a_fresh_venv_and_serve(tmp_path):
    dist = tmp_path / "dist"
    uv("build", "--all-packages", "--wheel", "-q", "-o", dist, cwd=ROOT)
    projects = workspace()
    built = {normalized(w.name.split("-")[0]) for w in dist.glob("*.whl")}
    assert built == {normalized(name) for name in projects}

    pins = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["uv"]
    constraints = tmp_path / "constraints.txt"
    constraints.write_text("\n".join(pins["constraint-dependencies"]) + "\n")
    python = new_venv(tmp_path / "venv")
    uv("pip", "install", "-q", "--python", python, "--find-links", dist, "-c", constraints,
       *projects, timeout=600)

    # The code comes from the wheels, not from this checkout.
    where = run(python, "-c", "import tracklog, tracklog_store_sql; "
                              "print(tracklog.__file__, tracklog_store_sql.__file__)")
    assert where.returncode == 0, where.stderr
    assert all(path.startswith(str(tmp_path / "venv")) for path in where.stdout.split())

    tracklog = tmp_path / "venv" / "bin" / "tracklog"
    listed = run(tracklog, "plugins", "--json")
    assert listed.returncode == 0, listed.stderr
    infos = {i["name"]: i for i in json.loads(listed.stdout)}
    for name, project in projects.items():
        for entry_point in project.get("entry-points", {}).get("tracklog", {}):
            assert infos[entry_point]["distribution"] == name
            assert infos[entry_point]["version"] == project["version"]
    assert "sqlite" in infos["store-sql"]["tracking_schemes"]

    port = free_port()
    log = tmp_path / "server.log"
    with open(log, "wb") as out:
        server = subprocess.Popen([str(tracklog), "server", "--port", str(port)], cwd=tmp_path,
                                  stdin=subprocess.DEVNULL, stdout=out,
                                  stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            assert server.poll() is None, log.read_text()
            try:
                health = httpx.get(url + "/health", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.05)
        else:
            pytest.fail(f"no answer on {url}/health in 30 s: {log.read_text()[-2000:]}")
        assert health.status_code == 200 and health.text == "OK"
        created = httpx.post(url + "/api/2.0/mlflow/experiments/create",
                             json={"name": "from-wheels"})
        assert created.status_code == 200, created.text
        got = httpx.get(url + "/api/2.0/mlflow/experiments/get-by-name",
                        params={"experiment_name": "from-wheels"})
        assert got.json()["experiment"]["experiment_id"] == created.json()["experiment_id"]
        # Package data made it into the wheels: the UI's templates and assets.
        assert httpx.get(url + "/").status_code == 200
        assert httpx.get(url + "/ui-static/plotly.min.js").status_code == 200
        assert (tmp_path / "tracklog.db").exists()
        assert f"serving on {url}" in log.read_text()
    finally:
        server.terminate()
        server.wait(10)
