"""Schema-driven fuzzing: schemathesis generates requests from the OpenAPI description of
the JSON routes (``tracklog/server/openapi.yaml``), valid and invalid ones, and sends
them to a live server. No answer may be a server error; every answer must be one the
description allows (status, content type, body schema).

The description is also held to the app: every JSON route it leaves out is listed in
``UNDESCRIBED`` with the reason.
"""

from __future__ import annotations

import re
from importlib.resources import files

import httpx
import pytest
import schemathesis
import yaml
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.core.result import Err

from tracklog.server.app import TRACKING_TABLES
from tracklog.server.routes import artifacts, meta

DESCRIPTION = yaml.safe_load(files("tracklog.server").joinpath("openapi.yaml").read_text())
schema = schemathesis.openapi.from_dict(DESCRIPTION)

# Routes that take no JSON: octet streams, plain text, and artifact paths in the URL
# (tried by tests/badinput), and the multipart/presigned routes the local repository
# answers with 501.
UNDESCRIBED = {
    ("GET", "/health"), ("GET", "/version"), ("GET", "/get-artifact"),
    ("GET", "/mlflow-artifacts/artifacts/{artifact_path:path}"),
    ("PUT", "/mlflow-artifacts/artifacts/{artifact_path:path}"),
    ("DELETE", "/mlflow-artifacts/artifacts/{artifact_path:path}"),
    ("POST", "/mlflow-artifacts/mpu/create/{artifact_path:path}"),
    ("POST", "/mlflow-artifacts/mpu/complete/{artifact_path:path}"),
    ("POST", "/mlflow-artifacts/mpu/abort/{artifact_path:path}"),
    ("GET", "/mlflow-artifacts/presigned/{artifact_path:path}"),
    ("POST", "/v1/traces"),  # OTLP protobuf spans, refused with 501
}
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance]


@pytest.fixture(scope="module")
def fuzz_server(launch, tmp_path_factory):
    server = launch(tmp_path_factory.mktemp("openapi"))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def existing(fuzz_server) -> dict[str, str]:
    """An experiment, a run and a logged model the generated requests are pointed at:
    with random ids nearly every request would stop at "not found"."""
    api = fuzz_server.url + "/api/2.0/mlflow"
    exp = httpx.post(api + "/experiments/create", json={"name": "fuzzed"}).json()
    run = httpx.post(api + "/runs/create", json={"experiment_id": exp["experiment_id"]}).json()
    model = httpx.post(api + "/logged-models",
                       json={"experiment_id": exp["experiment_id"]}).json()
    return {"experiment_id": exp["experiment_id"], "run_id": run["run"]["info"]["run_id"],
            "model_id": model["model"]["info"]["model_id"]}


def _point_at(case, existing: dict[str, str]) -> None:
    """Replace generated ids (strings only: a badly typed one stays bad) with real ones."""
    for fields in (case.body, case.query, case.path_parameters):
        if not isinstance(fields, dict):
            continue
        for key, value in existing.items():
            if isinstance(fields.get(key), str):
                fields[key] = value
        ids = fields.get("experiment_ids")
        if isinstance(ids, list) and ids and all(isinstance(i, str) for i in ids):
            fields["experiment_ids"] = [existing["experiment_id"]]


# One test per operation with the operation in its id (schemathesis' own parametrize gives
# every operation the same test id, which pytest-xdist collapses into one).
OPERATIONS = []
for _result in schema.get_all_operations():
    if isinstance(_result, Err):
        raise _result.err()  # the description itself is broken
    OPERATIONS.append(_result.ok())


@pytest.mark.parametrize("operation", OPERATIONS, ids=[op.label for op in OPERATIONS])
def test_no_server_error_and_answers_as_described(operation, fuzz_server, existing) -> None:
    @given(case=operation.as_strategy())
    @settings(max_examples=12, derandomize=True, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    def fuzz(case) -> None:
        _point_at(case, existing)
        case.call_and_validate(base_url=fuzz_server.url, checks=CHECKS)

    fuzz()


def test_every_json_route_is_described() -> None:
    described = set()
    for path, item in DESCRIPTION["paths"].items():
        for method in item:
            if method != "parameters":
                described.add((method.upper(), path))
    missing = []
    for table in (meta.table, *TRACKING_TABLES, artifacts.proxy):
        for spec in table.rpcs:
            if (spec.method, spec.path) in UNDESCRIBED:
                continue
            template = re.sub(r"\{(\w+)(:path)?\}", r"{\1}", spec.path)
            prefixes = [f"/api/{v}" for v in spec.versions] or [""]
            if not any((spec.method, p + template) in described for p in prefixes):
                missing.append(f"{spec.method} {spec.path}")
    assert not missing, f"JSON routes missing from openapi.yaml: {missing}"
