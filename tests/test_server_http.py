"""Raw HTTP against `tracklog server`: wire encodings and error statuses (never a 5xx)."""

from __future__ import annotations

import time
import uuid

import httpx
import pytest

API = "/api/2.0/mlflow"
ARTIFACTS = "/api/2.0/mlflow-artifacts/artifacts"


def now() -> int:
    return int(time.time() * 1000)


@pytest.fixture
def run_id(api: httpx.Client) -> str:
    name = f"http-{uuid.uuid4().hex}"
    exp = api.post(f"{API}/experiments/create", json={"name": name}).json()["experiment_id"]
    body = api.post(f"{API}/runs/create", json={"experiment_id": exp, "start_time": now()})
    assert body.status_code == 200
    return body.json()["run"]["info"]["run_id"]


def assert_error(response: httpx.Response, status: int, code: str, contains: str = "") -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body["error_code"] == code, body
    assert contains in body["message"], body


def test_run_encoding(api, run_id):
    run = api.get(f"{API}/runs/get", params={"run_id": run_id}).json()["run"]
    info = run["info"]
    assert info["run_id"] == info["run_uuid"] == run_id
    assert isinstance(info["start_time"], int)
    assert info["status"] == "RUNNING"
    assert info["lifecycle_stage"] == "active"
    assert "end_time" not in info
    assert info["artifact_uri"].startswith("mlflow-artifacts:/")
    # legacy run_uuid alone also works
    assert api.get(f"{API}/runs/get", params={"run_uuid": run_id}).json()["run"]["info"][
        "run_id"] == run_id


def test_non_finite_metrics_and_numeric_strings(api, run_id):
    for value, step in (("NaN", 0), ("Infinity", 1), ("-Infinity", 2), ("1.5", 3)):
        r = api.post(f"{API}/runs/log-metric", json={
            "run_id": run_id, "key": f"m{step}", "value": value, "timestamp": str(now()),
            "step": str(step)})
        assert r.status_code == 200 and r.json() == {}
    metrics = {m["key"]: m for m in api.get(f"{API}/runs/get", params={"run_id": run_id})
               .json()["run"]["data"]["metrics"]}
    assert metrics["m0"]["value"] == "NaN"
    assert metrics["m1"]["value"] in ("Infinity", 1.7976931348623157e308)
    assert metrics["m2"]["value"] in ("-Infinity", -1.7976931348623157e308)
    assert metrics["m3"]["value"] == 1.5 and metrics["m3"]["step"] == 3
    assert isinstance(metrics["m3"]["timestamp"], int)


def test_get_params_repeated_and_capitalized_booleans(api, run_id):
    names = [f"ge-{uuid.uuid4().hex}" for _ in range(3)]
    for n in names:
        api.post(f"{API}/experiments/create", json={"name": n})
    r = api.get(f"{API}/experiments/search", params=[
        ("max_results", "1000"), ("view_type", "ALL"), ("order_by", "name DESC"),
        ("order_by", "experiment_id"), ("filter", "name LIKE 'ge-%'")])
    got = [e["name"] for e in r.json()["experiments"]]
    assert got == sorted(names, reverse=True)
    r = api.get(f"{API}/logged-models/m-{uuid.uuid4().hex}", params={"allow_deleted": "False"})
    assert_error(r, 404, "RESOURCE_DOES_NOT_EXIST")
    r = api.get(f"{API}/logged-models/m-x", params={"allow_deleted": "maybe"})
    assert_error(r, 400, "INVALID_PARAMETER_VALUE", "allow_deleted")


def test_metric_history_paging(api, run_id):
    metrics = [{"key": "h", "value": i, "timestamp": 1000 + i, "step": i} for i in range(25)]
    assert api.post(f"{API}/runs/log-batch", json={"run_id": run_id, "metrics": metrics}
                    ).status_code == 200
    steps, token = [], None
    while True:
        params = {"run_id": run_id, "metric_key": "h", "max_results": "10"}
        if token:
            params["page_token"] = token
        body = api.get(f"{API}/metrics/get-history", params=params).json()
        steps += [m["step"] for m in body["metrics"]]
        token = body.get("next_page_token")
        if not token:
            break
    assert steps == list(range(25))
    r = api.get(f"{API}/metrics/get-history",
                params={"run_id": run_id, "metric_key": "h", "max_results": "0"})
    assert_error(r, 400, "INVALID_PARAMETER_VALUE", "max_results")


@pytest.mark.parametrize(
    ("path", "body", "status", "code", "contains"),
    [
        ("experiments/create", {}, 400, "INVALID_PARAMETER_VALUE", "name"),
        ("experiments/create", {"name": 5}, 400, "INVALID_PARAMETER_VALUE", "name"),
        ("experiments/create", {"name": "x" * 501}, 400, "INVALID_PARAMETER_VALUE", "name"),
        ("runs/create", {"experiment_id": 0}, 400, "INVALID_PARAMETER_VALUE",
         "experiment_id"),
        ("runs/create", {"experiment_id": "424242"}, 404, "RESOURCE_DOES_NOT_EXIST", ""),
        ("runs/search", {"experiment_ids": ["0"], "max_results": 0}, 400,
         "INVALID_PARAMETER_VALUE", "max_results"),
        ("runs/search", {"experiment_ids": ["0"], "max_results": 50001}, 400,
         "INVALID_PARAMETER_VALUE", "max_results"),
        ("runs/search", {"experiment_ids": ["0"], "filter": "metrics.a = 'x'"}, 400,
         "INVALID_PARAMETER_VALUE", ""),
        ("runs/search", {"experiment_ids": ["0"], "page_token": "garbage!"}, 400,
         "INVALID_PARAMETER_VALUE", ""),
        ("experiments/search", {}, 400, "INVALID_PARAMETER_VALUE", "max_results"),
        ("registered-models/create", {"name": "a/b"}, 400, "INVALID_PARAMETER_VALUE", "name"),
        ("logged-models/search", {}, 400, "INVALID_PARAMETER_VALUE", "experiment_ids"),
    ],
)
def test_request_errors(api, path, body, status, code, contains):
    assert_error(api.post(f"{API}/{path}", json=body), status, code, contains)


def test_run_level_errors(api, run_id):
    def post(path: str, body: dict) -> httpx.Response:
        return api.post(f"{API}/runs/{path}", json={"run_id": run_id, **body})

    assert_error(post("log-metric", {"key": "k", "value": "abc", "timestamp": 1}), 400,
                 "INVALID_PARAMETER_VALUE", "value")
    assert_error(post("log-metric", {"key": "k", "value": 1}), 400,
                 "INVALID_PARAMETER_VALUE", "timestamp")
    assert_error(post("log-metric", {"key": "k", "value": 1, "timestamp": -1}), 400,
                 "INVALID_PARAMETER_VALUE", "timestamp")
    assert_error(post("log-metric", {"key": "../x", "value": 1, "timestamp": 1}), 400,
                 "INVALID_PARAMETER_VALUE", "key")
    assert_error(post("log-batch", {"metrics": [{"key": "a", "value": 1, "timestamp": 1}] * 3
                                    + [{"key": "a", "value": True, "timestamp": 1}]}),
                 400, "INVALID_PARAMETER_VALUE", "metrics[3].value")
    assert_error(post("log-batch", {"metrics": [{"key": "a", "value": 1, "timestamp": 1,
                                                 "step": "x"}]}),
                 400, "INVALID_PARAMETER_VALUE", "metrics[0].step")
    many = [{"key": f"m{i}", "value": 1, "timestamp": 1} for i in range(1001)]
    assert_error(post("log-batch", {"metrics": many}), 400, "INVALID_PARAMETER_VALUE",
                 "at most 1000 metrics")
    params = [{"key": f"p{i}", "value": "v"} for i in range(101)]
    assert_error(post("log-batch", {"params": params}), 400, "INVALID_PARAMETER_VALUE",
                 "at most 100 params")
    assert_error(post("log-batch", {"params": [{"key": "p", "value": "1"},
                                               {"key": "p", "value": "2"}]}),
                 400, "INVALID_PARAMETER_VALUE", "Duplicate parameter keys")
    assert post("log-batch", {}).status_code == 200
    assert post("log-parameter", {"key": "p", "value": "1"}).status_code == 200
    assert_error(post("log-parameter", {"key": "p", "value": "2"}), 400,
                 "INVALID_PARAMETER_VALUE", "Changing param values is not allowed")
    # nothing of the refused batch was written
    params = api.get(f"{API}/runs/get", params={"run_id": run_id}).json()["run"]["data"].get(
        "params", [])
    assert params == [{"key": "p", "value": "1"}]
    assert_error(post("delete-tag", {"key": "nope"}), 404, "RESOURCE_DOES_NOT_EXIST")


def test_unknown_run_and_malformed_bodies(api):
    missing = uuid.uuid4().hex
    assert_error(api.get(f"{API}/runs/get", params={"run_id": missing}), 404,
                 "RESOURCE_DOES_NOT_EXIST", missing)
    assert_error(api.get(f"{API}/runs/get"), 400, "INVALID_PARAMETER_VALUE", "run_id")
    r = api.post(f"{API}/runs/log-metric", content=b"{not json",
                 headers={"content-type": "application/json"})
    assert_error(r, 400, "INVALID_PARAMETER_VALUE", "not valid JSON")
    r = api.post(f"{API}/runs/log-metric", content=b"[1, 2]",
                 headers={"content-type": "application/json"})
    assert_error(r, 400, "INVALID_PARAMETER_VALUE", "JSON object")


def test_unknown_routes_and_methods(api):
    assert_error(api.get("/api/2.0/mlflow/no-such-thing"), 404, "ENDPOINT_NOT_FOUND")
    assert_error(api.post("/api/3.0/mlflow/datasets/create", json={}), 404, "ENDPOINT_NOT_FOUND")
    assert_error(api.get("/api/3.0/mlflow/runs/get"), 404, "ENDPOINT_NOT_FOUND")
    r = api.get(f"{API}/runs/create")
    assert r.status_code == 405 and r.json()["error_code"] == "ENDPOINT_NOT_FOUND"


def test_ajax_alias_health_version_server_info(api):
    r = api.get("/ajax-api/2.0/mlflow/experiments/get", params={"experiment_id": "0"})
    assert r.json()["experiment"]["name"] == "Default"
    assert api.get("/health").text == "OK"
    assert api.get("/version").status_code == 200
    info = api.get("/api/3.0/mlflow/server-info").json()
    assert info["multipart_uploads_enabled"] is False
    assert info["store_type"]


def test_artifact_proxy(api):
    base = f"{ARTIFACTS}/e2e/{uuid.uuid4().hex}/artifacts"
    assert api.put(f"{base}/dir/a.txt", content=b"alpha").status_code == 200
    assert api.put(f"{base}/dir/sub/b.bin", content=bytes(300)).status_code == 200
    r = api.get(f"{base}/dir/a.txt")
    assert r.content == b"alpha"
    assert "attachment" in r.headers["content-disposition"]
    assert r.headers["x-content-type-options"] == "nosniff"
    listing = api.get(ARTIFACTS, params={"path": base[len(ARTIFACTS) + 1:] + "/dir"}).json()
    assert sorted((f["path"], f["is_dir"], f.get("file_size")) for f in listing["files"]) == [
        ("a.txt", False, 5), ("sub", True, None)]
    assert api.get(ARTIFACTS, params={"path": "e2e/none"}).json() == {}
    assert_error(api.get(f"{base}/missing.txt"), 404, "RESOURCE_DOES_NOT_EXIST")
    assert_error(api.get(f"{base}/dir"), 400, "INVALID_PARAMETER_VALUE")
    r = api.put(f"{base}/dir/r\u00e9sum\u00e9 \"v2\".txt", content="ünï".encode())
    assert r.status_code == 200
    r = api.get(f"{base}/dir/r\u00e9sum\u00e9 \"v2\".txt")
    assert r.content.decode() == "ünï"
    assert "filename*=UTF-8''r%C3%A9sum%C3%A9%20%22v2%22.txt" in r.headers["content-disposition"]
    api.delete(f"{base}/dir/r\u00e9sum\u00e9 \"v2\".txt")
    assert api.delete(f"{base}/dir/sub").json() == {}
    assert [f["path"] for f in api.get(ARTIFACTS, params={
        "path": base[len(ARTIFACTS) + 1:] + "/dir"}).json()["files"]] == ["a.txt"]


@pytest.mark.parametrize("bad", ["%2e%2e/secret", "a/%252e%252e/b", "..%2fx", "a/..%5cb"])
def test_artifact_path_traversal_refused(api, bad):
    r = api.put(f"{ARTIFACTS}/{bad}", content=b"x")
    assert_error(r, 400, "INVALID_PARAMETER_VALUE")
    assert_error(api.get(ARTIFACTS, params={"path": "../etc"}), 400, "INVALID_PARAMETER_VALUE")


def test_multipart_not_implemented_for_local_destination(api):
    r = api.post("/api/2.0/mlflow-artifacts/mpu/create/x/y.bin",
                 json={"path": "y.bin", "num_parts": 2})
    assert_error(r, 501, "NOT_IMPLEMENTED",
                 "Multipart upload is not supported for the current artifact repository")


def test_tracking_side_artifact_list_and_get(api, run_id):
    run = api.get(f"{API}/runs/get", params={"run_id": run_id}).json()["run"]
    root = run["info"]["artifact_uri"].split(":", 1)[1].strip("/")
    api.put(f"{ARTIFACTS}/{root}/sub/dir/f.txt", content=b"data")
    body = api.get(f"{API}/artifacts/list", params={"run_id": run_id, "path": "sub"}).json()
    assert body["root_uri"] == run["info"]["artifact_uri"]
    assert body["files"] == [{"path": "sub/dir", "is_dir": True}]
    r = api.get("/get-artifact", params={"run_id": run_id, "path": "sub/dir/f.txt"})
    assert r.content == b"data"
    assert_error(api.get("/get-artifact", params={"run_id": run_id, "path": "nope"}), 404,
                 "RESOURCE_DOES_NOT_EXIST")
    assert_error(api.get(f"{API}/artifacts/list", params={"run_id": run_id, "path": "../x"}),
                 400, "INVALID_PARAMETER_VALUE")


def test_host_header_and_cross_origin_refusals(api):
    r = api.get("/health", headers={"host": "evil.example.com"})
    assert_error(r, 403, "PERMISSION_DENIED", "Host")
    evil = {"origin": "http://evil.example.com"}
    r = api.post(f"{API}/experiments/create", json={"name": "x"}, headers=evil)
    assert_error(r, 403, "PERMISSION_DENIED", "Cross-origin")
    r = api.post(f"{API}/experiments/create", content=b'{"name": "x"}',
                 headers={**evil, "content-type": "text/plain"})
    assert r.status_code == 403
    r = api.options(f"{API}/experiments/create",
                    headers={**evil, "access-control-request-method": "POST"})
    assert r.status_code == 403
    r = api.get(f"{API}/experiments/get", params={"experiment_id": "0"}, headers=evil)
    assert r.status_code == 200 and "access-control-allow-origin" not in r.headers
    same = {"origin": str(api.base_url).rstrip("/")}
    name = f"same-origin-{uuid.uuid4().hex}"
    assert api.post(f"{API}/experiments/create", json={"name": name},
                    headers=same).status_code == 200


def test_json_body_size_limit(api):
    from tracklog.server.app import MAX_JSON_BODY

    r = api.post(f"{API}/runs/log-batch", content=b" " * (MAX_JSON_BODY + 1),
                 headers={"content-type": "application/json"})
    assert_error(r, 400, "INVALID_PARAMETER_VALUE", "exceeds")


@pytest.fixture
def registered(api: httpx.Client) -> str:
    name = f"rm-{uuid.uuid4().hex[:8]}"
    assert api.post(f"{API}/registered-models/create", json={"name": name}).status_code == 200
    r = api.post(f"{API}/model-versions/create", json={"name": name, "source": "s3://b/m"})
    assert r.json()["model_version"]["version"] == "1"
    assert r.json()["model_version"]["status"] == "READY"
    return name


def test_registry_and_logged_model_error_statuses(api, registered, run_id):
    name = registered
    cases = [
        ("GET", "registered-models/get", {"name": "missing-model"}, 404,
         "RESOURCE_DOES_NOT_EXIST"),
        ("POST", "registered-models/create", {"name": name}, 400, "RESOURCE_ALREADY_EXISTS"),
        ("GET", "model-versions/get", {"name": name, "version": "abc"}, 400,
         "INVALID_PARAMETER_VALUE"),
        ("GET", "model-versions/get", {"name": name, "version": "9"}, 404,
         "RESOURCE_DOES_NOT_EXIST"),
        ("POST", "model-versions/create", {"name": "missing-model", "source": "s3://x"}, 404,
         "RESOURCE_DOES_NOT_EXIST"),
        ("POST", "model-versions/create", {"name": name, "source": "/tmp/../etc"}, 400,
         "INVALID_PARAMETER_VALUE"),
        ("POST", "registered-models/alias", {"name": name, "alias": "latest", "version": "1"},
         400, "INVALID_PARAMETER_VALUE"),
        ("POST", "registered-models/alias", {"name": name, "alias": "v2", "version": "1"},
         400, "INVALID_PARAMETER_VALUE"),
        ("GET", "registered-models/alias", {"name": name, "alias": "none"}, 400,
         "INVALID_PARAMETER_VALUE"),
        ("GET", "registered-models/alias", {"name": "missing-model", "alias": "none"}, 404,
         "RESOURCE_DOES_NOT_EXIST"),
        ("POST", "model-versions/transition-stage",
         {"name": name, "version": "1", "stage": "Bogus", "archive_existing_versions": False},
         400, "INVALID_PARAMETER_VALUE"),
        ("DELETE", "registered-models/delete", {"name": "missing-model"}, 404,
         "RESOURCE_DOES_NOT_EXIST"),
        ("POST", "logged-models", {"experiment_id": "0", "name": "a.b"}, 400,
         "INVALID_PARAMETER_VALUE"),
        ("GET", "logged-models/m-nope", {}, 404, "RESOURCE_DOES_NOT_EXIST"),
        ("PATCH", "logged-models/m-nope", {"status": "LOGGED_MODEL_READY"}, 404,
         "RESOURCE_DOES_NOT_EXIST"),
        ("PATCH", "logged-models/m-nope", {}, 400, "INVALID_PARAMETER_VALUE"),
        ("POST", "logged-models/search", {"experiment_ids": ["0"], "filter": "bogus = 1"}, 400,
         "INVALID_PARAMETER_VALUE"),
        ("POST", "runs/outputs", {"run_id": run_id, "models": [{"step": 0}]}, 400,
         "INVALID_PARAMETER_VALUE"),
        ("POST", "runs/log-inputs", {"run_id": run_id, "datasets": [{"dataset": {
            "name": "d", "digest": "x" * 40, "source_type": "s", "source": "s"}}]}, 400,
         "INVALID_PARAMETER_VALUE"),
    ]
    for method, path, body, status, code in cases:
        if method == "GET":
            r = api.get(f"{API}/{path}", params=body)
        else:
            r = api.request(method, f"{API}/{path}", json=body)
        assert (r.status_code, r.json().get("error_code")) == (status, code), (path, r.text)


def test_registry_round_trip_encoding(api, registered):
    name = registered
    r = api.post(f"{API}/model-versions/transition-stage", json={
        "name": name, "version": "1", "stage": "production", "archive_existing_versions": True})
    assert r.json()["model_version"]["current_stage"] == "Production"
    assert api.post(f"{API}/registered-models/alias",
                    json={"name": name, "alias": "champ", "version": "1"}).json() == {}
    model = api.get(f"{API}/registered-models/get", params={"name": name}).json()[
        "registered_model"]
    assert model["aliases"] == [{"alias": "champ", "version": "1"}]
    assert [v["version"] for v in model["latest_versions"]] == ["1"]
    assert isinstance(model["creation_timestamp"], int)
    r = api.post(f"{API}/registered-models/get-latest-versions",
                 json={"name": name, "stages": ["PRODUCTION"]})
    assert [v["current_stage"] for v in r.json()["model_versions"]] == ["Production"]
    r = api.get(f"{API}/model-versions/search", params={"filter": f"name = '{name}'"})
    assert [v["version"] for v in r.json()["model_versions"]] == ["1"]
    assert api.request("DELETE", f"{API}/registered-models/alias",
                       json={"name": name, "alias": "champ"}).status_code == 200
    assert api.request("DELETE", f"{API}/registered-models/delete",
                       json={"name": name}).status_code == 200
    r = api.get(f"{API}/registered-models/get", params={"name": name})
    assert r.status_code == 404


def test_model_version_run_comes_from_its_logged_model(api, run_id):
    """As MLflow: without a run_id, a version takes the run that logged its model (named
    by ``model_id`` or by a ``models:/<model_id>`` source); a given run_id is kept, and an
    unknown model leaves the run empty."""
    exp = api.get(f"{API}/runs/get", params={"run_id": run_id}).json()["run"]["info"][
        "experiment_id"]
    created = api.post(f"{API}/logged-models", json={"experiment_id": exp,
                                                     "source_run_id": run_id})
    model_id = created.json()["model"]["info"]["model_id"]
    name = f"lineage-{uuid.uuid4().hex[:8]}"
    assert api.post(f"{API}/registered-models/create", json={"name": name}).status_code == 200
    other_run = api.post(f"{API}/runs/create", json={"experiment_id": exp}).json()["run"][
        "info"]["run_id"]
    cases = [
        ({"source": f"models:/{model_id}"}, run_id),
        ({"source": "s3://bucket/model", "model_id": model_id}, run_id),
        ({"source": f"models:/{model_id}", "run_id": other_run}, other_run),
        ({"source": f"models:/m-{'0' * 32}"}, ""),
        ({"source": "s3://bucket/model"}, ""),
    ]
    for body, expected in cases:
        answer = api.post(f"{API}/model-versions/create", json={"name": name, **body})
        assert answer.status_code == 200, answer.text
        version = answer.json()["model_version"]
        assert version["run_id"] == expected, body
        got = api.get(f"{API}/model-versions/get",
                      params={"name": name, "version": version["version"]})
        assert got.json()["model_version"]["run_id"] == expected, body
