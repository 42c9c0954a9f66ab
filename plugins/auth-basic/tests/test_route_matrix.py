"""Authorization is total and exact, checked against the app's own route table: every
route (built-in, tracklog-ui's, this plugin's) declares a rule, and for every route that
touches an experiment or registered model, a caller holding exactly the permission its
action needs gets through, one holding the next lower permission gets 403, and an
anonymous one 401. Runs, logged models, traces and artifacts are reached through the
experiment they belong to, model versions through their registered model."""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest
from starlette.datastructures import QueryParams

from tracklog.server.codec import Req
from tracklog.server.routing import RULE_ATTR, Rule

from .conftest import API, API3, ROOT, App

NEEDED = {"read": "READ", "update": "EDIT", "delete": "MANAGE", "manage": "MANAGE"}
LOWER = {"READ": "NO_PERMISSIONS", "EDIT": "READ", "MANAGE": "EDIT"}
ORDER = {"read": 0, "update": 1, "manage": 2, "delete": 3}  # deletes last: they change state
PUBLIC = {"/health", "/metrics"}


def _routes(app: Any) -> list[tuple[str, str, Rule | None]]:
    out = []
    for route in app.routes:
        for method in sorted(getattr(route, "methods", None) or ()):
            if method != "HEAD":
                out.append((method, route.path, getattr(route.endpoint, RULE_ATTR, None)))
    return out


def test_every_route_declares_a_rule(server_app: App) -> None:
    routes = _routes(server_app.app)
    paths = {path for _, path, _ in routes}
    # The table really holds the built-ins, tracklog-ui's pages and this plugin's routes.
    assert {"/api/2.0/mlflow/runs/create", "/ajax-api/2.0/mlflow/runs/create", "/",
            "/runs/{run_id}", "/api/2.0/mlflow/users/create",
            "/api/2.0/tracklog/auth/tokens/create"} <= paths
    missing = [(m, p) for m, p, r in routes if r is None]
    assert missing == []
    public = sorted(p for _, p, r in routes if r is not None and r.public)
    assert set(public) <= PUBLIC, public


@pytest.fixture(scope="module")
def world(server_app: App) -> dict[str, Any]:
    """An experiment, a run, a logged model, a trace and a registered model with a
    version, and users at every permission level on them."""
    a = server_app
    exp = a.ok("POST", f"{API}/experiments/create", json={"name": "matrix"})["experiment_id"]
    run = a.ok("POST", f"{API}/runs/create", json={"experiment_id": exp})["run"]["info"]
    model = a.ok("POST", f"{API}/logged-models", json={"experiment_id": exp,
                                                       "name": "lm"})["model"]["info"]
    trace_id = "tr-" + uuid.uuid4().hex
    a.ok("POST", f"{API3}/traces", json={"trace": {"trace_info": {
        "trace_id": trace_id, "request_time": "2026-01-01T00:00:00Z", "state": "OK",
        "trace_location": {"mlflow_experiment": {"experiment_id": exp}}}}})
    a.ok("POST", f"{API}/registered-models/create", json={"name": "matrix-model"})
    a.ok("POST", f"{API}/model-versions/create", json={
        "name": "matrix-model", "source": run["artifact_uri"] + "/model",
        "run_id": run["run_id"]})
    for level in ("NO_PERMISSIONS", "READ", "EDIT", "MANAGE"):
        a.grant(level.lower(), "experiment", exp, level)
        a.grant(level.lower(), "registered_model", "matrix-model", level)
    return {"exp": exp, "run": run["run_id"], "model_id": model["model_id"],
            "trace": trace_id, "name": "matrix-model"}


def _params(w: dict[str, Any]) -> dict[str, Any]:
    exp, run = w["exp"], w["run"]
    return {
        "experiment_id": exp, "experiment_ids": [exp], "run_id": run, "run_uuid": run,
        "run_ids": [run], "name": w["name"], "version": "1", "model_id": w["model_id"],
        "trace_id": w["trace"], "trace_ids": [w["trace"]], "experiment_name": "matrix",
        "key": "k", "value": "v", "path": f"{exp}/{run}/artifacts/x.txt",
        "metric_key": "m", "max_results": 10, "runs": run,
        "locations": [{"mlflow_experiment": {"experiment_id": exp}}],
        "trace": {"trace_info": {"trace_id": "tr-" + uuid.uuid4().hex,
                                 "request_time": "2026-01-01T00:00:00Z", "state": "OK",
                                 "trace_location": {"mlflow_experiment":
                                                    {"experiment_id": exp}}}},
    }


def _path_values(w: dict[str, Any]) -> dict[str, str]:
    exp, run = w["exp"], w["run"]
    return {"model_id": w["model_id"], "trace_id": w["trace"], "assessment_id": "a-none",
            "tag_key": "k", "artifact_path": f"{exp}/{run}/artifacts/x.txt",
            "run_id": run, "experiment_ids": exp, "name": w["name"], "version": "1"}


def _fill(path: str, values: dict[str, str]) -> tuple[str, dict[str, str]]:
    params: dict[str, str] = {}

    def sub(m: re.Match[str]) -> str:
        name = m.group(1).split(":")[0]
        params[name] = values.get(name, "x")
        return params[name]

    return re.sub(r"\{([^}]+)\}", sub, path), params


def _resource(rule: Rule, method: str, params: dict[str, Any], path_params: dict[str, str]
              ) -> dict[str, Any]:
    if method == "GET":
        query = QueryParams([(k, str(x)) for k, v in params.items()
                             for x in (v if isinstance(v, list) else [v])
                             if not isinstance(x, dict)])
        return rule.resource_of(Req(None, query, path_params))
    return rule.resource_of(Req(params, None, path_params))


def _guarded(server_app: App, w: dict[str, Any]) -> list[tuple[str, str, str, dict, dict]]:
    """(method, url, needed permission, query, body) of every route whose rule names an
    experiment, a registered model, or something that belongs to one."""
    out = []
    for method, path, rule in sorted(_routes(server_app.app),
                                     key=lambda r: ORDER[r[2].action] if r[2] else 0):
        if rule is None or rule.public:
            continue
        url, path_params = _fill(path, _path_values(w))
        params = _params(w)
        try:
            resource = _resource(rule, method, params, path_params)
        except Exception:
            resource = {}
        if "auth_login" in resource:  # the sign-in page: for everyone, checked below
            assert url in ("/login", "/logout"), url
            continue
        keys = set(resource) - {"auth_self", "artifact_path"}
        if not keys or keys == {"experiment_ids"} and rule.action == "read":
            continue  # server-wide, or a search narrowed to what is readable
        query = params if method == "GET" else {}
        body = {} if method == "GET" else params
        out.append((method, url, NEEDED[rule.action], query, body))
    return out


def test_route_permission_matrix(server_app: App, world: dict[str, Any]) -> None:
    a = server_app
    cases = _guarded(a, world)
    assert len(cases) > 100, len(cases)  # both /api and /ajax-api, the UI's pages
    failures = []
    for method, url, needed, query, body in cases:
        kwargs: dict[str, Any] = {"params": query} if query else {"json": body}
        if url.endswith(".txt") and method == "PUT":
            kwargs = {"content": b"x"}
        anonymous = a.call(method, url, None, **kwargs).status_code
        lower = a.call(method, url, a.users[LOWER[needed].lower()], **kwargs).status_code
        exact = a.call(method, url, a.users[needed.lower()], **kwargs).status_code
        if anonymous != 401 or lower != 403 or exact in (401, 403):
            failures.append((method, url, needed, anonymous, lower, exact))
    assert failures == []


def test_server_wide_routes(server_app: App, world: dict[str, Any]) -> None:
    """Rule-less and ``manage`` server-wide routes are for administrators; reading and
    creating are for everyone signed in."""
    a = server_app
    someone = a.users["read"]
    for method, path, rule in _routes(a.app):
        if rule is None or rule.public or rule.resource is not None:
            continue
        url, _ = _fill(path, _path_values(world))
        status = a.call(method, url, someone, json={}).status_code
        if rule.action == "manage":
            assert status == 403, (method, url, status)
        else:
            assert status not in (401, 403), (method, url, status)
    assert a.call("GET", "/version", ROOT).status_code == 200
