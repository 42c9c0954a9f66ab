"""The routes of the app's route tables, each with a request that would succeed and the
type of each of its fields: the table the bad-input cases are derived from.

Entries are ``None`` for routes whose input is not a JSON field (paths, headers): their
cases live in the modules for that kind of input.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from badinput_support import API, API3, PROXY

from tracklog.server.app import TRACKING_TABLES
from tracklog.server.routes import artifacts, meta


@dataclass(frozen=True)
class Route:
    """A request to ``path`` that would succeed, and its fields by type.

    Field names address the body (or query): ``metrics[0].value``. Types: ``str``, ``int``,
    ``list``, ``enum``, ``bool``, ``double``. ``required`` fields get a "missing" case.
    """

    method: str
    path: str
    body: dict[str, Any] = field(default_factory=dict)
    fields: dict[str, str] = field(default_factory=dict)
    required: tuple[str, ...] = ()


def _r(method: str, path: str, body: dict[str, Any] | None = None,
       required: tuple[str, ...] = (), **fields: str) -> Route:
    return Route(method, path, body or {}, {k.replace("__", "."): v for k, v in fields.items()},
                 required)


RUN = {"run_id": "{run}"}
MV = {"name": "{model}", "version": "1"}
METRIC = {"key": "m2", "value": 2.0, "timestamp": 5, "step": 1}

# (method, template as in the route table) -> a valid request and its fields.
ROUTES: dict[tuple[str, str], Route | None] = {
    # No input at all: nothing to break (Host and Origin are tried in test_origin).
    ("GET", "/health"): None,
    ("GET", "/version"): None,
    ("GET", "/mlflow/server-info"): None,
    ("POST", "/mlflow/experiments/create"): _r(
        "POST", f"{API}/experiments/create",
        {"name": "new-exp", "artifact_location": "", "tags": [{"key": "k", "value": "v"}]},
        ("name",), name="str", artifact_location="str", tags="list",
        **{"tags[0].key": "str", "tags[0].value": "str"}),
    ("GET", "/mlflow/experiments/get"): _r(
        "GET", f"{API}/experiments/get", {"experiment_id": "{exp}"}, ("experiment_id",)),
    ("GET", "/mlflow/experiments/get-by-name"): _r(
        "GET", f"{API}/experiments/get-by-name", {"experiment_name": "badinput-seed"},
        ("experiment_name",)),
    ("POST", "/mlflow/experiments/search"): _r(
        "POST", f"{API}/experiments/search",
        {"max_results": 10, "filter": "name = 'x'", "order_by": ["name"], "view_type": "ALL"},
        ("max_results",), max_results="int", filter="str", order_by="list", view_type="enum",
        page_token="str"),
    ("GET", "/mlflow/experiments/search"): _r(
        "GET", f"{API}/experiments/search", {"max_results": "10", "view_type": "ALL"},
        ("max_results",), max_results="int", view_type="enum"),
    ("POST", "/mlflow/experiments/update"): _r(
        "POST", f"{API}/experiments/update", {"experiment_id": "{exp}", "new_name": "renamed"},
        ("experiment_id",), experiment_id="str", new_name="str"),
    ("POST", "/mlflow/experiments/delete"): _r(
        "POST", f"{API}/experiments/delete", {"experiment_id": "{exp}"}, ("experiment_id",),
        experiment_id="str"),
    ("POST", "/mlflow/experiments/restore"): _r(
        "POST", f"{API}/experiments/restore", {"experiment_id": "{exp}"}, ("experiment_id",),
        experiment_id="str"),
    ("POST", "/mlflow/experiments/set-experiment-tag"): _r(
        "POST", f"{API}/experiments/set-experiment-tag",
        {"experiment_id": "{exp}", "key": "k2", "value": "v"}, ("experiment_id", "key"),
        experiment_id="str", key="str", value="str"),
    ("POST", "/mlflow/experiments/delete-experiment-tag"): _r(
        "POST", f"{API}/experiments/delete-experiment-tag",
        {"experiment_id": "{exp}", "key": "team"}, ("experiment_id", "key"),
        experiment_id="str", key="str"),
    ("POST", "/mlflow/runs/create"): _r(
        "POST", f"{API}/runs/create",
        {"experiment_id": "{exp}", "start_time": 5, "run_name": "r", "user_id": "u",
         "tags": [{"key": "k", "value": "v"}]},
        ("experiment_id",), experiment_id="str", start_time="int", run_name="str",
        user_id="str", tags="list", **{"tags[0].key": "str", "tags[0].value": "str"}),
    ("GET", "/mlflow/runs/get"): _r("GET", f"{API}/runs/get", RUN, ("run_id",)),
    ("POST", "/mlflow/runs/update"): _r(
        "POST", f"{API}/runs/update", {**RUN, "end_time": 9, "run_name": "x"}, ("run_id",),
        run_id="str", end_time="int", run_name="str"),
    ("POST", "/mlflow/runs/delete"): _r(
        "POST", f"{API}/runs/delete", RUN, ("run_id",), run_id="str"),
    ("POST", "/mlflow/runs/restore"): _r(
        "POST", f"{API}/runs/restore", RUN, ("run_id",), run_id="str"),
    ("POST", "/mlflow/runs/log-metric"): _r(
        "POST", f"{API}/runs/log-metric", {**RUN, **METRIC}, ("run_id", "key", "value"),
        run_id="str", key="str", value="double", timestamp="int", step="int"),
    ("POST", "/mlflow/runs/log-parameter"): _r(
        "POST", f"{API}/runs/log-parameter", {**RUN, "key": "p2", "value": "v"},
        ("run_id", "key"), run_id="str", key="str", value="str"),
    ("POST", "/mlflow/runs/set-tag"): _r(
        "POST", f"{API}/runs/set-tag", {**RUN, "key": "t2", "value": "v"}, ("run_id", "key"),
        run_id="str", key="str", value="str"),
    ("POST", "/mlflow/runs/delete-tag"): _r(
        "POST", f"{API}/runs/delete-tag", {**RUN, "key": "t"}, ("run_id", "key"),
        run_id="str", key="str"),
    ("POST", "/mlflow/runs/log-batch"): _r(
        "POST", f"{API}/runs/log-batch",
        {**RUN, "metrics": [METRIC], "params": [{"key": "p3", "value": "v"}],
         "tags": [{"key": "t3", "value": "v"}]},
        ("run_id",), run_id="str", metrics="list", params="list", tags="list",
        **{"metrics[0].key": "str", "metrics[0].value": "double",
           "metrics[0].timestamp": "int", "metrics[0].step": "int",
           "params[0].key": "str", "params[0].value": "str",
           "tags[0].key": "str", "tags[0].value": "str"}),
    ("POST", "/mlflow/runs/search"): _r(
        "POST", f"{API}/runs/search",
        {"experiment_ids": ["{exp}"], "filter": "params.p = '1'", "max_results": 10,
         "order_by": ["metrics.m DESC"], "run_view_type": "ALL"},
        (), experiment_ids="list", filter="str", max_results="int", order_by="list",
        run_view_type="enum", page_token="str"),
    ("GET", "/mlflow/metrics/get-history"): _r(
        "GET", f"{API}/metrics/get-history", {**RUN, "metric_key": "m", "max_results": "10"},
        ("run_id", "metric_key"), max_results="int"),
    ("GET", "/mlflow/metrics/get-history-bulk-interval"): _r(
        "GET", f"{API}/metrics/get-history-bulk-interval",
        {"run_ids": "{run}", "metric_key": "m", "max_results": "10", "start_step": "0",
         "end_step": "5"},
        ("run_ids", "metric_key"), max_results="int", start_step="int", end_step="int"),
    ("POST", "/mlflow/runs/log-inputs"): _r(
        "POST", f"{API}/runs/log-inputs",
        {**RUN, "datasets": [{"dataset": {"name": "d", "digest": "abc", "source_type": "local",
                                          "source": '{"uri": "data.csv"}'},
                              "tags": [{"key": "k", "value": "v"}]}]},
        ("run_id",), run_id="str", datasets="list",
        **{"datasets[0].dataset.name": "str", "datasets[0].dataset.digest": "str",
           "datasets[0].dataset.source_type": "str", "datasets[0].dataset.source": "str",
           "datasets[0].tags": "list"}),
    ("POST", "/mlflow/runs/outputs"): _r(
        "POST", f"{API}/runs/outputs", {**RUN, "models": [{"model_id": "{lm}", "step": 1}]},
        ("run_id",), run_id="str", models="list",
        **{"models[0].model_id": "str", "models[0].step": "int"}),
    ("POST", "/mlflow/logged-models"): _r(
        "POST", f"{API}/logged-models",
        {"experiment_id": "{exp}", "name": "lm2", "model_type": "t",
         "tags": [{"key": "k", "value": "v"}], "params": [{"key": "k", "value": "v"}]},
        ("experiment_id",), experiment_id="str", name="str", model_type="str", tags="list",
        params="list", **{"tags[0].key": "str", "tags[0].value": "str",
                          "params[0].key": "str", "params[0].value": "str"}),
    ("POST", "/mlflow/logged-models/search"): _r(
        "POST", f"{API}/logged-models/search",
        {"experiment_ids": ["{exp}"], "max_results": 10, "filter": "name = 'x'"},
        ("experiment_ids",), experiment_ids="list", max_results="int", filter="str",
        page_token="str", order_by="list", datasets="list"),
    ("GET", "/mlflow/logged-models/{model_id}"): _r(
        "GET", f"{API}/logged-models/{{lm}}", {"allow_deleted": "false"}, (),
        allow_deleted="bool"),
    ("PATCH", "/mlflow/logged-models/{model_id}"): _r(
        "PATCH", f"{API}/logged-models/{{lm}}", {"status": "LOGGED_MODEL_READY"}, ("status",),
        status="enum"),
    ("DELETE", "/mlflow/logged-models/{model_id}"): _r(
        "DELETE", f"{API}/logged-models/{{lm}}"),
    ("PATCH", "/mlflow/logged-models/{model_id}/tags"): _r(
        "PATCH", f"{API}/logged-models/{{lm}}/tags", {"tags": [{"key": "k", "value": "v"}]},
        (), tags="list", **{"tags[0].key": "str", "tags[0].value": "str"}),
    ("DELETE", "/mlflow/logged-models/{model_id}/tags/{tag_key:path}"): _r(
        "DELETE", f"{API}/logged-models/{{lm}}/tags/k"),
    ("POST", "/mlflow/logged-models/{model_id}/params"): _r(
        "POST", f"{API}/logged-models/{{lm}}/params", {"params": [{"key": "k", "value": "v"}]},
        (), params="list", **{"params[0].key": "str", "params[0].value": "str"}),
    ("POST", "/mlflow/registered-models/create"): _r(
        "POST", f"{API}/registered-models/create",
        {"name": "new-model", "description": "d", "tags": [{"key": "k", "value": "v"}]},
        ("name",), name="str", description="str", tags="list",
        **{"tags[0].key": "str", "tags[0].value": "str"}),
    ("GET", "/mlflow/registered-models/get"): _r(
        "GET", f"{API}/registered-models/get", {"name": "{model}"}, ("name",)),
    ("POST", "/mlflow/registered-models/rename"): _r(
        "POST", f"{API}/registered-models/rename", {"name": "{model}", "new_name": "other"},
        ("name", "new_name"), name="str", new_name="str"),
    ("PATCH", "/mlflow/registered-models/update"): _r(
        "PATCH", f"{API}/registered-models/update", {"name": "{model}", "description": "d"},
        ("name",), name="str", description="str"),
    ("DELETE", "/mlflow/registered-models/delete"): _r(
        "DELETE", f"{API}/registered-models/delete", {"name": "{model}"}, ("name",),
        name="str"),
    ("GET", "/mlflow/registered-models/search"): _r(
        "GET", f"{API}/registered-models/search", {"max_results": "10"}, (),
        max_results="int"),
    ("POST", "/mlflow/registered-models/get-latest-versions"): _r(
        "POST", f"{API}/registered-models/get-latest-versions",
        {"name": "{model}", "stages": ["None"]}, ("name",), name="str", stages="list"),
    ("GET", "/mlflow/registered-models/get-latest-versions"): _r(
        "GET", f"{API}/registered-models/get-latest-versions", {"name": "{model}"},
        ("name",)),
    ("POST", "/mlflow/registered-models/set-tag"): _r(
        "POST", f"{API}/registered-models/set-tag", {"name": "{model}", "key": "k",
                                                     "value": "v"},
        ("name", "key"), name="str", key="str", value="str"),
    ("DELETE", "/mlflow/registered-models/delete-tag"): _r(
        "DELETE", f"{API}/registered-models/delete-tag", {"name": "{model}", "key": "k"},
        ("name", "key"), name="str", key="str"),
    ("POST", "/mlflow/registered-models/alias"): _r(
        "POST", f"{API}/registered-models/alias",
        {"name": "{model}", "alias": "other", "version": "1"}, ("name", "alias", "version"),
        name="str", alias="str"),
    ("DELETE", "/mlflow/registered-models/alias"): _r(
        "DELETE", f"{API}/registered-models/alias", {"name": "{model}", "alias": "champion"},
        ("name", "alias"), name="str", alias="str"),
    ("GET", "/mlflow/registered-models/alias"): _r(
        "GET", f"{API}/registered-models/alias", {"name": "{model}", "alias": "champion"},
        ("name", "alias")),
    ("POST", "/mlflow/model-versions/create"): _r(
        "POST", f"{API}/model-versions/create",
        {"name": "{model}", "source": "mlflow-artifacts:/{art}/m2", "run_id": "{run}",
         "description": "d", "tags": [{"key": "k", "value": "v"}]},
        ("name", "source"), name="str", source="str", run_id="str", description="str",
        tags="list", **{"tags[0].key": "str", "tags[0].value": "str"}),
    ("GET", "/mlflow/model-versions/get"): _r(
        "GET", f"{API}/model-versions/get", MV, ("name", "version")),
    ("PATCH", "/mlflow/model-versions/update"): _r(
        "PATCH", f"{API}/model-versions/update", {**MV, "description": "d"},
        ("name", "version"), name="str", description="str"),
    ("POST", "/mlflow/model-versions/transition-stage"): _r(
        "POST", f"{API}/model-versions/transition-stage",
        {**MV, "stage": "Staging", "archive_existing_versions": False},
        ("name", "version", "stage"), name="str", stage="str",
        archive_existing_versions="bool"),
    ("DELETE", "/mlflow/model-versions/delete"): _r(
        "DELETE", f"{API}/model-versions/delete", MV, ("name", "version"), name="str"),
    ("GET", "/mlflow/model-versions/get-download-uri"): _r(
        "GET", f"{API}/model-versions/get-download-uri", MV, ("name", "version")),
    ("GET", "/mlflow/model-versions/search"): _r(
        "GET", f"{API}/model-versions/search", {"max_results": "10"}, (), max_results="int"),
    ("POST", "/mlflow/model-versions/set-tag"): _r(
        "POST", f"{API}/model-versions/set-tag", {**MV, "key": "k", "value": "v"},
        ("name", "version", "key"), name="str", key="str", value="str"),
    ("DELETE", "/mlflow/model-versions/delete-tag"): _r(
        "DELETE", f"{API}/model-versions/delete-tag", {**MV, "key": "k"},
        ("name", "version", "key"), name="str", key="str"),
    ("GET", "/mlflow/artifacts/list"): _r(
        "GET", f"{API}/artifacts/list", {**RUN, "path": ""}, ("run_id",)),
    ("GET", "/get-artifact"): _r(
        "GET", "/get-artifact", {**RUN, "path": "seed.txt"}, ("run_id", "path")),
    # The proxy's inputs are paths: test_paths tries them on each of these routes.
    ("GET", "/mlflow-artifacts/artifacts"): None,
    ("GET", "/mlflow-artifacts/artifacts/{artifact_path:path}"): None,
    ("PUT", "/mlflow-artifacts/artifacts/{artifact_path:path}"): None,
    ("DELETE", "/mlflow-artifacts/artifacts/{artifact_path:path}"): None,
    ("POST", "/mlflow-artifacts/mpu/create/{artifact_path:path}"): _r(
        "POST", f"{PROXY}/mpu/create/{{art}}/big.bin", {"num_parts": 2}, ("num_parts",),
        num_parts="int"),
    ("POST", "/mlflow-artifacts/mpu/complete/{artifact_path:path}"): _r(
        "POST", f"{PROXY}/mpu/complete/{{art}}/big.bin",
        {"upload_id": "u", "parts": [{"part_number": 1, "etag": "e"}]}, ("upload_id",),
        upload_id="str", parts="list", **{"parts[0].part_number": "int",
                                          "parts[0].etag": "str"}),
    ("POST", "/mlflow-artifacts/mpu/abort/{artifact_path:path}"): _r(
        "POST", f"{PROXY}/mpu/abort/{{art}}/big.bin", {"upload_id": "u"}, ("upload_id",),
        upload_id="str"),
    ("GET", "/mlflow-artifacts/presigned/{artifact_path:path}"): None,
    # tracklog's own: gc through the server (a dry run, so the seeded records stay).
    ("POST", "/tracklog/gc"): _r(
        "POST", "/api/2.0/tracklog/gc",
        {"older_than": "30d", "run_ids": [], "experiment_ids": [], "logged_model_ids": [],
         "dry_run": True},
        older_than="str", run_ids="list", experiment_ids="list", logged_model_ids="list",
        dry_run="bool"),
    # Traces (the seeded trace is {trace}, its assessment {assessment}).
    ("POST", "/mlflow/traces"): _r(
        "POST", f"{API3}/traces", {"trace": {"trace_info": {
            "trace_id": "tr-" + "6" * 32, "request_time": "2026-01-01T00:00:00Z",
            "execution_duration": "0.5s", "state": "OK", "request_preview": "p",
            "trace_location": {"mlflow_experiment": {"experiment_id": "{exp}"}}}}},
        ("trace", "trace.trace_info.trace_id", "trace.trace_info.request_time",
         "trace.trace_info.trace_location"),
        trace__trace_info__trace_id="str", trace__trace_info__request_time="str",
        trace__trace_info__execution_duration="str", trace__trace_info__state="enum",
        trace__trace_info__request_preview="str"),
    ("GET", "/mlflow/traces/get"): _r(
        "GET", f"{API3}/traces/get", {"trace_id": "{trace}"}, ("trace_id",)),
    ("GET", "/mlflow/traces/batchGet"): _r(
        "GET", f"{API3}/traces/batchGet", {"trace_ids": ["{trace}"]}, ("trace_ids",)),
    ("POST", "/mlflow/traces/batchGetInfos"): _r(
        "POST", f"{API3}/traces/batchGetInfos", {"trace_ids": ["{trace}"]}, ("trace_ids",),
        trace_ids="list"),
    ("POST", "/mlflow/traces/search"): _r(
        "POST", f"{API3}/traces/search", {
            "locations": [{"mlflow_experiment": {"experiment_id": "{exp}"}}],
            "filter": "status = 'OK'", "max_results": 10, "order_by": ["timestamp_ms"],
            "page_token": ""},
        ("locations",), locations="list", filter="str", max_results="int", order_by="list",
        page_token="str"),
    ("GET", "/mlflow/traces/{trace_id}"): None,
    ("PATCH", "/mlflow/traces/{trace_id}/tags"): _r(
        "PATCH", f"{API}/traces/{{trace}}/tags", {"key": "k", "value": "v"}, ("key",),
        key="str", value="str"),
    ("DELETE", "/mlflow/traces/{trace_id}/tags"): _r(
        "DELETE", f"{API}/traces/{{trace}}/tags", {"key": "k"}, ("key",), key="str"),
    ("POST", "/mlflow/traces/delete-traces"): _r(
        "POST", f"{API}/traces/delete-traces",
        {"experiment_id": "{exp}", "max_timestamp_millis": 0, "max_traces": 1},
        ("experiment_id", "max_timestamp_millis"), experiment_id="str",
        max_timestamp_millis="int", max_traces="int"),
    ("POST", "/mlflow/traces/link-to-run"): _r(
        "POST", f"{API}/traces/link-to-run", {"trace_ids": ["{trace}"], "run_id": "{run}"},
        ("trace_ids", "run_id"), trace_ids="list", run_id="str"),
    ("POST", "/mlflow/traces/{trace_id}/assessments"): _r(
        "POST", f"{API3}/traces/{{trace}}/assessments", {"assessment": {
            "assessment_name": "q", "source": {"source_type": "HUMAN", "source_id": "me"},
            "feedback": {"value": 1}, "rationale": "r"}},
        ("assessment", "assessment.assessment_name", "assessment.feedback"),
        assessment__assessment_name="str", assessment__source__source_type="enum",
        assessment__source__source_id="str", assessment__rationale="str"),
    ("GET", "/mlflow/traces/{trace_id}/assessments/{assessment_id}"): None,
    ("PATCH", "/mlflow/traces/{trace_id}/assessments/{assessment_id}"): _r(
        "PATCH", f"{API3}/traces/{{trace}}/assessments/{{assessment}}",
        {"assessment": {"assessment_name": "q2"}, "update_mask": "assessment_name"},
        ("assessment", "update_mask"), assessment__assessment_name="str",
        update_mask="str"),
    ("DELETE", "/mlflow/traces/{trace_id}/assessments/{assessment_id}"): None,
    ("POST", "/v1/traces"): None,  # OTLP protobuf, refused with 501
}


def app_routes() -> set[tuple[str, str]]:
    """(method, path template) of every route the server mounts."""
    tables = (meta.table, *TRACKING_TABLES, artifacts.proxy)
    return {(spec.method, spec.path) for table in tables for spec in table.rpcs}


def concrete(method: str, template: str) -> str:
    """A URL path for a route template, with the seeded entities in it."""
    from tracklog.server.app import TRACKING_TABLES as tables

    versions: tuple[str, ...] = ()
    for table in (meta.table, *tables, artifacts.proxy):
        for spec in table.rpcs:
            if (spec.method, spec.path) == (method, template):
                versions = spec.versions
    path = (template.replace("{model_id}", "{lm}").replace("{tag_key:path}", "k")
            .replace("{trace_id}", "{trace}").replace("{assessment_id}", "{assessment}")
            .replace("{artifact_path:path}", "{art}/seed.txt"))
    return f"/api/{versions[0]}{path}" if versions else path
