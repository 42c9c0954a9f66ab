"""The UI inside the application, without a browser: mounting, rules, authorization,
static files, and that a server without the plugin has no UI."""

from __future__ import annotations

import importlib.resources
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from tracklog.config import ServerConfig
from tracklog.plugins import hookimpl, pm, register_plugin, unregister_plugin
from tracklog.server import create_app
from tracklog.server.routing import RULE_ATTR

ROOT = Path(__file__).resolve().parents[3]


def _config(tmp_path: Path, **kwargs: Any) -> ServerConfig:
    return ServerConfig(backend_store_uri=f"sqlite:///{tmp_path}/ui.db",
                        artifacts_destination=str(tmp_path / "artifacts"),
                        allowed_hosts=["testserver"], **kwargs)


def _ui_routes(app) -> list[Any]:
    return [r for r in app.routes if getattr(getattr(r, "endpoint", None), "__module__", "")
            == "tracklog_ui.pages"]


def test_pages_are_mounted_with_rules_under_the_prefix(tmp_path):
    app = create_app(_config(tmp_path, static_prefix="/tl"))
    routes = _ui_routes(app)
    assert {r.path for r in routes} >= {
        "/tl/", "/tl/experiments/{experiment_ids}", "/tl/experiments/{experiment_id}/runs/{run_id}",
        "/tl/compare", "/tl/models", "/tl/models/{name:path}", "/tl/ui-static/plotly.min.js"}
    for r in routes:
        assert getattr(r.endpoint, RULE_ATTR).action == "read", r.path


def test_home_routes_fragments_and_serves_plotly_from_its_package(tmp_path):
    with TestClient(create_app(_config(tmp_path))) as http:
        home = http.get("/")
        assert home.status_code == 200 and "text/html" in home.headers["content-type"]
        assert "location.hash" in home.text and "Default" in home.text
        bundle = http.get("/ui-static/plotly.min.js")
        shipped = importlib.resources.files("plotly") / "package_data" / "plotly.min.js"
        assert bundle.status_code == 200 and bundle.content == shipped.read_bytes()
        assert http.get("/ui-static/ui.css").status_code == 200
        for bad in ("..%2Fpages.py", ".hidden", "nope.js"):
            assert http.get("/ui-static/" + bad).status_code == 404
        missing = http.get("/experiments/424242")
        assert missing.status_code == 404 and "424242" in missing.text


class DenySecret:
    """Refuses reads of one experiment and its runs; records what it was asked."""

    def __init__(self) -> None:
        self.secret_experiment = ""
        self.secret_run = ""
        self.asked: list[tuple[str, dict[str, str]]] = []

    @hookimpl
    def authorize(self, identity, action, resource, config):
        self.asked.append((action, dict(resource)))
        if self.secret_experiment and (
                resource.get("experiment_id") == self.secret_experiment
                or self.secret_experiment in resource.get("experiment_ids", [])
                or resource.get("run_id") == self.secret_run):
            return False
        return None


@pytest.fixture
def deny():
    plugin = DenySecret()
    register_plugin(plugin, "test-ui-deny")
    yield plugin
    unregister_plugin("test-ui-deny")


def test_pages_obey_the_apis_authorization(tmp_path, deny):
    with TestClient(create_app(_config(tmp_path))) as http:
        api = "/ajax-api/2.0/mlflow"
        exp = http.post(f"{api}/experiments/create", json={"name": "secret"}).json()
        run = http.post(f"{api}/runs/create", json={"experiment_id": exp["experiment_id"]})
        deny.secret_experiment = exp["experiment_id"]
        deny.secret_run = run.json()["run"]["info"]["run_id"]
        deny.asked.clear()
        page = http.get(f"/experiments/{deny.secret_experiment}")
        assert page.status_code == 403 and "Permission denied" in page.text
        run_page = http.get(f"/experiments/0/runs/{deny.secret_run}?preview=x.txt")
        assert run_page.status_code == 403
        assert ("read", {"run_id": deny.secret_run}) in deny.asked
        assert http.get(f"/compare?runs={deny.secret_run}").status_code == 403
        assert http.get("/").status_code == 200


def test_without_the_plugin_there_is_no_ui(tmp_path):
    plugin = pm.get_plugin("ui")
    assert plugin is not None
    unregister_plugin("ui")
    try:
        with TestClient(create_app(_config(tmp_path))) as http:
            r = http.get("/")
            assert r.status_code == 404 and r.json()["error_code"] == "ENDPOINT_NOT_FOUND"
    finally:
        register_plugin(plugin, "ui")
    core = tomllib.loads((ROOT / "core" / "pyproject.toml").read_text())
    assert not any("ui" in d for d in core["project"]["dependencies"])
    root = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "tracklog-ui" in root["project"]["dependencies"]


def test_a_run_whose_artifacts_cannot_be_reached_still_shows(tmp_path):
    with TestClient(create_app(_config(tmp_path))) as http:
        api = "/ajax-api/2.0/mlflow"
        exp = http.post(f"{api}/experiments/create", json={
            "name": "remote", "artifact_location": "sftp://10.1.2.3/artifacts"}).json()
        run = http.post(f"{api}/runs/create", json={"experiment_id": exp["experiment_id"]}
                        ).json()["run"]["info"]
        http.post(f"{api}/runs/log-metric", json={"run_id": run["run_id"], "key": "loss",
                                                  "value": 0.5, "timestamp": 1, "step": 0})
        http.post(f"{api}/runs/set-tag", json={"run_id": run["run_id"],
                                               "key": "mlflow.note.content",
                                               "value": "A <b>remote</b> run"})
        page = http.get(f"/runs/{run['run_id']}")
        assert page.status_code == 200
        assert "Artifacts cannot be listed" in page.text and "loss" in page.text
        assert "A &lt;b&gt;remote&lt;/b&gt; run" in page.text  # the note, escaped


def test_experiment_pages_go_forward_and_back(tmp_path):
    with TestClient(create_app(_config(tmp_path))) as http:
        for i in range(120):
            http.post("/ajax-api/2.0/mlflow/experiments/create", json={"name": f"e{i:03d}"})
        first = http.get("/")
        assert first.text.count('data-experiment-id="') == 100
        following = re.search(r'href="(\?[^"]*page_token[^"]*)" rel="next"', first.text)
        assert following is not None
        second = http.get("/" + following.group(1).replace("&amp;", "&"))
        assert second.text.count('data-experiment-id="') == 21  # 120 and Default
        back = re.search(r'href="(\?[^"]*)" rel="prev"', second.text)
        assert back is not None
        again = http.get("/" + back.group(1).replace("&amp;", "&"))
        assert again.text.count('data-experiment-id="') == 100


def test_model_pages_search_and_link_back(tmp_path):
    with TestClient(create_app(_config(tmp_path))) as http:
        api = "/ajax-api/2.0/mlflow"
        run = http.post(f"{api}/runs/create", json={"experiment_id": "0"}).json()["run"]["info"]
        for name in ("fraud-detector", "churn"):
            http.post(f"{api}/registered-models/create", json={"name": name})
        http.post(f"{api}/model-versions/create", json={
            "name": "fraud-detector", "source": "runs:/x/model", "run_id": run["run_id"]})
        http.post(f"{api}/registered-models/alias", json={
            "name": "fraud-detector", "alias": "prod", "version": "1"})
        found = http.get("/models", params={"q": "fraud"}).text
        assert "fraud-detector" in found and "churn" not in found and "@prod" in found
        model = http.get("/models/fraud-detector").text
        assert f'/runs/{run["run_id"]}"' in model
        version = http.get("/models/fraud-detector/versions/1")
        assert version.status_code == 200 and "@prod" in version.text
        assert f'/experiments/0/runs/{run["run_id"]}"' in version.text
        assert http.get("/models/fraud-detector/versions/9").status_code == 404
