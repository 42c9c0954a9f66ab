"""Authentication, search filtering and bypass attempts against one in-process server."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import pytest

from .conftest import API, API3, PASSWORD, ROOT, App, auth_env, basic, build_app


@pytest.fixture(scope="module")
def w(server_app: App) -> dict[str, Any]:
    """Alice owns 'mine' (she created it); 'theirs' was made by the admin and Alice
    may not see it; Bob may only read 'mine'."""
    a = server_app
    alice, bob = a.user("alice"), a.user("bob")
    mine = a.ok("POST", f"{API}/experiments/create", alice, json={"name": "mine"})
    theirs = a.ok("POST", f"{API}/experiments/create", json={"name": "theirs"})
    a.grant("alice", "experiment", theirs["experiment_id"], "NO_PERMISSIONS")
    a.grant("bob", "experiment", mine["experiment_id"], "READ")
    run = a.ok("POST", f"{API}/runs/create", ROOT,
               json={"experiment_id": theirs["experiment_id"]})["run"]["info"]
    return {"alice": alice, "bob": bob, "mine": mine["experiment_id"],
            "theirs": theirs["experiment_id"], "their_run": run["run_id"],
            "their_art": run["artifact_uri"].split("mlflow-artifacts:/", 1)[1].strip("/")}


def test_anonymous_gets_401_with_challenge(server_app: App) -> None:
    r = server_app.call("GET", f"{API}/experiments/search", params={"max_results": 1})
    assert r.status_code == 401
    assert r.json()["error_code"] == "UNAUTHENTICATED"
    assert r.headers["www-authenticate"] == 'Basic realm="tracklog"'
    for header in ("Basic !!!", "Basic " + base64.b64encode(b"nocolon").decode(),
                   "Bearer tlk_nope", "Digest x"):
        bad = server_app.call("GET", "/version", {"Authorization": header})
        assert bad.status_code == 401 and "www-authenticate" in bad.headers, header
        assert "nope" not in bad.text


def test_health_and_metrics_stay_open(server_app: App) -> None:
    assert server_app.call("GET", "/health").status_code == 200


def test_wrong_password_names_no_secret(server_app: App, caplog) -> None:
    server_app.user("carol")
    r = server_app.call("GET", "/version", basic("carol", "hunter2-secret-value"))
    assert r.status_code == 401 and "hunter2" not in r.text
    assert "hunter2" not in caplog.text


def test_creator_gets_manage(server_app: App, w: dict[str, Any]) -> None:
    a = server_app
    r = a.call("POST", f"{API}/experiments/set-experiment-tag", w["alice"],
               json={"experiment_id": w["mine"], "key": "k", "value": "v"})
    assert r.status_code == 200
    check = a.ok("GET", f"{API3}/users/permissions/get", w["alice"], params={
        "username": "alice", "resource_type": "experiment", "resource_id": w["mine"]})
    assert check == {"allowed": True, "permission": "MANAGE"}
    # As MANAGE holder she may grant others on it, not on what she cannot manage.
    a.user("carol")
    assert a.call("POST", f"{API}/experiments/permissions/create", w["alice"], json={
        "experiment_id": w["mine"], "username": "carol", "permission": "EDIT"}
    ).status_code == 200
    assert a.call("POST", f"{API}/experiments/permissions/create", w["alice"], json={
        "experiment_id": w["theirs"], "username": "alice", "permission": "MANAGE"}
    ).status_code == 403
    model = a.ok("POST", f"{API}/registered-models/create", w["alice"], json={"name": "amodel"})
    assert model["registered_model"]["name"] == "amodel"
    assert a.call("DELETE", f"{API}/registered-models/delete", w["bob"],
                  json={"name": "amodel"}).status_code == 403
    assert a.call("DELETE", f"{API}/registered-models/delete", w["alice"],
                  json={"name": "amodel"}).status_code == 200


def test_grants_follow_a_renamed_model(server_app: App, w: dict[str, Any]) -> None:
    a = server_app
    a.ok("POST", f"{API}/registered-models/create", w["alice"], json={"name": "draft"})
    a.grant("bob", "registered_model", "draft", "NO_PERMISSIONS")
    a.ok("POST", f"{API}/registered-models/rename", w["alice"],
         json={"name": "draft", "new_name": "final"})
    assert a.call("GET", f"{API}/registered-models/get", w["bob"],
                  params={"name": "final"}).status_code == 403
    # Alice keeps MANAGE under the new name; a new "draft" starts with no old grants.
    a.ok("PATCH", f"{API}/registered-models/update", w["alice"],
         json={"name": "final", "description": "d"})
    a.ok("POST", f"{API}/registered-models/create", json={"name": "draft"})
    assert a.call("GET", f"{API}/registered-models/get", w["bob"],
                  params={"name": "draft"}).status_code == 200


def test_read_user_cannot_write(server_app: App, w: dict[str, Any]) -> None:
    a = server_app
    r = a.call("POST", f"{API}/runs/create", w["bob"], json={"experiment_id": w["mine"]})
    assert r.status_code == 403 and r.json()["error_code"] == "PERMISSION_DENIED"
    assert a.call("GET", f"{API}/experiments/get", w["bob"],
                  params={"experiment_id": w["mine"]}).status_code == 200


def test_search_shows_only_readable_across_pages(server_app: App, w: dict[str, Any]) -> None:
    a = server_app
    hidden = []
    for i in range(6):
        exp = a.ok("POST", f"{API}/experiments/create", json={"name": f"page-{i}"})
        if i % 2:
            a.grant("alice", "experiment", exp["experiment_id"], "NO_PERMISSIONS")
            hidden.append(f"page-{i}")
    names, token, pages = [], None, 0
    while True:
        body: dict[str, Any] = {"max_results": 2, "order_by": ["name ASC"]}
        if token:
            body["page_token"] = token
        page = a.ok("POST", f"{API}/experiments/search", w["alice"], json=body)
        got = [e["name"] for e in page.get("experiments", [])]
        token = page.get("next_page_token")
        pages += 1
        if token:
            assert len(got) == 2  # never short because of hidden experiments
        names += got
        if not token:
            break
    assert not set(names) & set(hidden) and "theirs" not in names
    assert {"mine", "page-0", "page-2", "page-4", "Default"} <= set(names)
    admin_names = {e["name"] for e in a.ok("POST", f"{API}/experiments/search", json={
        "max_results": 100})["experiments"]}
    assert set(hidden) <= admin_names


def test_search_with_unreadable_experiment_ids(server_app: App, w: dict[str, Any]) -> None:
    a = server_app
    only_theirs = a.call("POST", f"{API}/runs/search", w["alice"],
                         json={"experiment_ids": [w["theirs"]]})
    assert only_theirs.status_code == 200 and only_theirs.json() == {}
    a.ok("POST", f"{API}/runs/create", w["alice"], json={"experiment_id": w["mine"]})
    both = a.ok("POST", f"{API}/runs/search", w["alice"],
                json={"experiment_ids": [w["mine"], w["theirs"]]})
    assert {r["info"]["experiment_id"] for r in both["runs"]} == {w["mine"]}
    for path, body in ((f"{API}/logged-models/search", {"experiment_ids": [w["theirs"]]}),
                       (f"{API3}/traces/search", {"locations": [
                           {"mlflow_experiment": {"experiment_id": w["theirs"]}}]})):
        r = a.call("POST", path, w["alice"], json=body)
        assert r.status_code == 200 and r.json() == {}, path


def test_registered_model_search_filtered(server_app: App, w: dict[str, Any]) -> None:
    a = server_app
    for name in ("open-model", "closed-model"):
        a.ok("POST", f"{API}/registered-models/create", json={"name": name})
    a.grant("alice", "registered_model", "closed-model", "NO_PERMISSIONS")
    models = a.ok("GET", f"{API}/registered-models/search", w["alice"],
                  params={"max_results": 1000})
    names = [m["name"] for m in models.get("registered_models", [])]
    assert "open-model" in names and "closed-model" not in names
    for name in ("open-model", "closed-model"):
        a.ok("POST", f"{API}/model-versions/create",
             json={"name": name, "source": f"mlflow-artifacts:/{w['mine']}/m"})
    closed = a.ok("GET", f"{API}/model-versions/search", w["alice"],
                  params={"filter": "name = 'closed-model'"})
    assert not closed.get("model_versions")
    versions = a.ok("GET", f"{API}/model-versions/search", w["alice"],
                    params={"max_results": 1})
    seen = [v["name"] for v in versions["model_versions"]]
    while versions.get("next_page_token"):
        versions = a.ok("GET", f"{API}/model-versions/search", w["alice"], params={
            "max_results": 1, "page_token": versions["next_page_token"]})
        seen += [v["name"] for v in versions["model_versions"]]
    assert "open-model" in seen and "closed-model" not in seen
    assert a.ok("GET", f"{API}/model-versions/search", params={
        "filter": "name = 'closed-model'"})["model_versions"]


def test_bypass_routes(server_app: App, w: dict[str, Any]) -> None:
    a, alice, theirs, run = server_app, w["alice"], w["theirs"], w["their_run"]
    # The ajax-api twin, a percent-encoded id, case changes, trailing slashes.
    cases: tuple[tuple[str, str, dict[str, Any]], ...] = (
        ("GET", f"/ajax-api/2.0/mlflow/experiments/get?experiment_id={theirs}", {}),
        ("GET", f"{API}/experiments/get?experiment_id=%{ord(theirs[0]):02X}{theirs[1:]}", {}),
        ("GET", f"{API}/runs/get?run_id={run}", {}),
        ("GET", f"{API}/runs/get?run_uuid={run}", {}),
        ("GET", f"{API}/RUNS/get?run_id={run}", {}),
        ("GET", f"/API/2.0/mlflow/runs/get?run_id={run}", {}),
        ("GET", f"{API}/runs/get/?run_id={run}", {}),
        ("HEAD", f"{API}/runs/get?run_id={run}", {}),
        ("OPTIONS", f"{API}/runs/get?run_id={run}", {}),
        ("GET", f"{API}/metrics/get-history?run_id={run}&metric_key=m", {}),
        ("GET", f"/get-artifact?run_id={run}&path=x", {}),
        ("GET", f"{API}/artifacts/list?run_id={run}", {}),
        ("GET", f"/runs/{run}", {}),
    )
    for method, url, kw in cases:
        r = a.call(method, url, alice, **kw)
        assert r.status_code in (403, 404, 405), (method, url, r.status_code, r.text)
        assert run not in r.text and "theirs" not in r.text


def test_artifact_paths_under_another_experiment(server_app: App, w: dict[str, Any]) -> None:
    a, alice = server_app, w["alice"]
    art = w["their_art"]
    assert a.call("PUT", f"/api/2.0/mlflow-artifacts/artifacts/{art}/f.txt", ROOT,
                  content=b"secret").status_code == 200
    # Alice reaches it by its own path, and by paths that name her experiment first.
    for path in (f"{art}/f.txt", f"{w['mine']}/{w['their_run']}/artifacts/f.txt",
                 f"{w['mine']}/../{art}/f.txt", f"{w['mine']}/%2e%2e/{art}/f.txt"):
        r = a.call("GET", f"/api/2.0/mlflow-artifacts/artifacts/{path}", alice)
        assert r.status_code in (400, 403, 404), (path, r.status_code)
        assert b"secret" not in r.content
    listed = a.call("GET", "/api/2.0/mlflow-artifacts/artifacts", alice, params={"path": ""})
    assert listed.status_code == 403  # the root lists every experiment's folder
    other = a.call("GET", "/api/2.0/mlflow-artifacts/artifacts/shared/f.txt", alice)
    assert other.status_code == 403  # not an experiment's folder: administrators only
    own = a.call("PUT", f"/api/2.0/mlflow-artifacts/artifacts/{w['mine']}/x/artifacts/a.txt",
                 w["bob"], content=b"x")
    assert own.status_code == 403  # Bob only reads 'mine'


def test_resources_named_by_id_only(server_app: App, w: dict[str, Any]) -> None:
    a, theirs = server_app, w["theirs"]
    model = a.ok("POST", f"{API}/logged-models", json={"experiment_id": theirs, "name": "x"})
    model_id = model["model"]["info"]["model_id"]
    trace_id = "tr-0123456789abcdef0123456789abcdef"
    a.ok("POST", f"{API3}/traces", json={"trace": {"trace_info": {
        "trace_id": trace_id, "request_time": "2026-01-01T00:00:00Z", "state": "OK",
        "trace_location": {"mlflow_experiment": {"experiment_id": theirs}}}}})
    encoded_model = "".join(f"%{ord(c):02X}" for c in model_id)
    encoded_trace = "%74%72" + trace_id[2:]  # "tr" percent-encoded
    for method, url in (("GET", f"{API}/logged-models/{model_id}"),
                        ("GET", f"{API}/logged-models/{encoded_model}"),
                        ("GET", f"/ajax-api/2.0/mlflow/logged-models/{encoded_model}"),
                        ("GET", f"{API3}/traces/{encoded_trace}"),
                        ("DELETE", f"{API}/logged-models/{model_id}"),
                        ("GET", f"{API3}/traces/{trace_id}"),
                        ("GET", f"{API3}/traces/get?trace_id={trace_id}"),
                        ("GET", f"{API3}/traces/batchGet?trace_ids={trace_id}")):
        r = a.call(method, url, w["alice"])
        assert r.status_code == 403, (method, url, r.status_code)


def test_users_routes_are_guarded(server_app: App, w: dict[str, Any]) -> None:
    a = server_app
    assert a.call("POST", f"{API}/users/create", w["alice"],
                  json={"username": "mallory", "password": PASSWORD}).status_code == 403
    assert a.call("GET", f"{API}/users/get", w["alice"],
                  params={"username": "bob"}).status_code == 403
    assert a.ok("GET", f"{API}/users/get", w["alice"],
                params={"username": "alice"})["user"]["is_admin"] is False
    assert a.call("PATCH", f"{API}/users/update-admin", w["alice"],
                  json={"username": "alice", "is_admin": True}).status_code == 403
    for method, path, body in (("PATCH", "update-admin", {"is_admin": False}),
                               ("DELETE", "delete", {})):
        last = a.call(method, f"{API}/users/{path}", ROOT, json={"username": "root", **body})
        assert last.status_code == 400 and "last administrator" in last.json()["message"]
    assert a.call("POST", f"{API}/users/create", ROOT,
                  json={"username": "shorty", "password": "short"}).status_code == 400
    # Changing one's own password takes the current one.
    assert a.call("PATCH", f"{API}/users/update-password", w["bob"], json={
        "username": "bob", "password": "a brand new password"}).status_code == 403
    assert a.call("PATCH", f"{API}/users/update-password", w["bob"], json={
        "username": "bob", "password": "a brand new password",
        "current_password": PASSWORD}).status_code == 200
    assert a.call("GET", "/version", basic("bob", "a brand new password")).status_code == 200
    assert a.call("GET", "/version", w["bob"]).status_code == 401
    a.ok("PATCH", f"{API}/users/update-password", ROOT,
         json={"username": "bob", "password": PASSWORD})


def test_tokens(server_app: App, w: dict[str, Any]) -> None:
    a = server_app
    made = a.ok("POST", "/api/2.0/tracklog/auth/tokens/create", w["bob"], json={"name": "ci"})
    secret, tid = made["token"]["token"], made["token"]["id"]
    bearer = {"Authorization": f"Bearer {secret}"}
    assert a.ok("GET", f"{API}/users/current", bearer)["user"]["username"] == "bob"
    listed = a.ok("GET", "/api/2.0/tracklog/auth/tokens/list", w["bob"])["tokens"]
    assert [t["name"] for t in listed] == ["ci"] and secret not in str(listed)
    # Another user can neither see nor revoke it.
    assert a.ok("GET", "/api/2.0/tracklog/auth/tokens/list", w["alice"]) == {"tokens": []}
    assert a.call("POST", "/api/2.0/tracklog/auth/tokens/revoke", w["alice"],
                  json={"id": tid}).status_code == 404
    a.ok("POST", "/api/2.0/tracklog/auth/tokens/revoke", w["bob"], json={"id": tid})
    assert a.call("GET", f"{API}/users/current", bearer).status_code == 401
    expiring = a.ok("POST", "/api/2.0/tracklog/auth/tokens/create", w["bob"],
                    json={"expires_in_days": 0.00000001})["token"]["token"]
    assert a.call("GET", "/version", {"Authorization": f"Bearer {expiring}"}
                  ).status_code == 401


def test_groups_grant_to_members(server_app: App, w: dict[str, Any]) -> None:
    a, base = server_app, "/api/2.0/tracklog/auth/groups"
    exp = a.ok("POST", f"{API}/experiments/create", json={"name": "team"})["experiment_id"]
    dave = a.user("dave")
    a.grant("dave", "experiment", exp, "READ")
    a.ok("POST", f"{base}/create", json={"name": "team"})
    a.ok("POST", f"{base}/members/add", json={"group": "team", "username": "dave"})
    assert a.call("POST", f"{API}/runs/create", dave, json={"experiment_id": exp}
                  ).status_code == 403
    a.ok("POST", f"{base}/permissions/set", json={
        "group": "team", "resource_type": "experiment", "resource_id": exp,
        "permission": "EDIT"})
    # Dave's own grant (READ) wins over the group's.
    assert a.call("POST", f"{API}/runs/create", dave, json={"experiment_id": exp}
                  ).status_code == 403
    a.ok("POST", f"{API3}/users/permissions/revoke", json={
        "username": "dave", "resource_type": "experiment", "resource_id": exp})
    assert a.call("POST", f"{API}/runs/create", dave, json={"experiment_id": exp}
                  ).status_code == 200
    groups = a.ok("GET", f"{base}/list")["groups"]
    assert {"id": groups[0]["id"], "name": "team", "members": ["dave"]} in groups
    assert a.call("GET", f"{base}/list", dave).status_code == 403


@pytest.fixture(scope="module")
def prefixed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[App]:
    tmp = tmp_path_factory.mktemp("prefixed")
    yield from build_app(tmp, auth_env(), prefix="/tl", expose_prometheus=str(tmp / "metrics"))


def test_static_prefix(prefixed: App) -> None:
    a = prefixed
    assert a.call("GET", "/health").status_code == 200
    assert a.call("GET", "/metrics").status_code == 200
    assert a.call("GET", "/version").status_code == 401
    assert a.call("GET", f"{API}/users/current").status_code == 401
    assert a.ok("GET", f"{API}/users/current")["user"]["username"] == "root"
    assert a.client.get(f"{API}/users/current", headers=ROOT).status_code == 404


def test_rate_limit(tmp_path_factory: pytest.TempPathFactory) -> None:
    env = auth_env(TRACKLOG_AUTH_MAX_FAILURES="3")
    for a in build_app(tmp_path_factory.mktemp("limit"), env):
        a.user("erin")
        wrong = basic("erin", "wrong password 00")
        assert [a.call("GET", "/version", wrong).status_code for _ in range(3)] == [401] * 3
        blocked = a.call("GET", "/version", wrong)
        assert blocked.status_code == 429 and "Too many failed sign-ins" in blocked.text
        assert int(blocked.headers["retry-after"]) > 0
        # The right password is refused too while the name is blocked.
        assert a.call("GET", "/version", basic("erin")).status_code == 429
        # The address is blocked for other names as well.
        assert a.call("GET", "/version", basic("nobody", "x" * 12)).status_code == 429


def test_mlflow_permission_routes(server_app: App, w: dict[str, Any]) -> None:
    """MLflow 2's per-resource permission routes, with their request and answer shapes."""
    a, alice = server_app, w["alice"]
    a.user("pam")
    a.ok("POST", f"{API}/registered-models/create", alice, json={"name": "alices-model"})
    for base, key, rid, out in (
            (f"{API}/experiments/permissions", "experiment_id", w["mine"],
             "experiment_permission"),
            (f"{API}/registered-models/permissions", "name", "alices-model",
             "registered_model_permission")):
        ident = {key: rid, "username": "pam"}
        made = a.ok("POST", f"{base}/create", alice, json={**ident, "permission": "READ"})
        assert made[out][key] == rid and made[out]["permission"] == "READ"
        again = a.call("POST", f"{base}/create", alice, json={**ident, "permission": "READ"})
        assert again.json()["error_code"] == "RESOURCE_ALREADY_EXISTS"
        bad = a.call("PATCH", f"{base}/update", alice, json={**ident, "permission": "OWNER"})
        assert bad.status_code == 400 and "permission" in bad.json()["message"]
        a.ok("PATCH", f"{base}/update", alice, json={**ident, "permission": "EDIT"})
        got = a.ok("GET", f"{base}/get", alice, params=ident)
        assert got[out]["permission"] == "EDIT"
        assert a.call("GET", f"{base}/get", w["bob"], params=ident).status_code == 403
        a.ok("DELETE", f"{base}/delete", alice, json=ident)
        assert a.call("GET", f"{base}/get", alice, params=ident).status_code == 404
