"""Where the server would go: artifact locations, dataset sources and model-version sources
that name another machine's internals (SSRF), smuggle a NUL, a query or a fragment, or
climb out of their directory; and NUL characters in names and values."""

from __future__ import annotations

import uuid

import pytest
from badinput_support import API, Case

# Cloud metadata services, in several spellings: never a place for artifacts. Loopback
# and private networks are not refused (an internal S3 endpoint or SFTP host is normal),
# and dataset sources are stored as text the server never fetches; both are pinned by
# the accepted cases below.
METADATA_URLS = [
    "http://169.254.169.254/latest/meta-data/",
    "http://[fd00:ec2::254]/latest/",
    "http://[fe80::a9fe:a9fe]/latest/",
    "http://2852039166/latest/",
    "http://0xa9fea9fe/latest/",
]
ACCEPTED_LOCATIONS = [
    "http://127.0.0.1:5432/x",
    "http://localhost/x",
    "http://10.0.0.1/x",
    "sftp://192.168.1.1/srv/artifacts",
    "s3://bucket/prefix",
]
BAD_LOCATIONS = [
    "file:///x%00y",
    "file:///x\x00y",
    "file:///tmp/x?y=1",
    "file:///tmp/x#frag",
    "s3://bucket/x?versionId=1",
    "/tmp/a/../../etc",
    "file:///tmp/a/%2e%2e/%2e%2e/etc",
] + METADATA_URLS

LOCATION_CASES = [
    Case(f"experiments/create artifact_location {loc!r}", "POST", API + "/experiments/create",
         json={"name": f"ssrf-{i}", "artifact_location": loc}, match="artifact_location")
    for i, loc in enumerate(BAD_LOCATIONS)
] + [
    Case(f"model-versions/create source {src!r}", "POST", API + "/model-versions/create",
         json={"name": "{model}", "source": src}, match="source")
    for src in ["mlflow-artifacts:/{art}/../../../x", "file:///x\x00y",
                "mlflow-artifacts:/{art}/..\\..\\x"]
]


@pytest.mark.parametrize("case", LOCATION_CASES, ids=[c.id for c in LOCATION_CASES])
def test_location_is_refused(probe, case: Case) -> None:
    probe.expect_refused(case)


@pytest.mark.parametrize("location", ACCEPTED_LOCATIONS)
def test_internal_location_is_accepted_as_written(probe, location: str) -> None:
    response = probe.client.post(API + "/experiments/create", json={
        "name": f"internal-{uuid.uuid4().hex[:8]}", "artifact_location": location})
    assert response.status_code == 200, response.text[:300]
    got = probe.client.get(API + "/experiments/get", params={
        "experiment_id": response.json()["experiment_id"]}).json()
    assert got["experiment"]["artifact_location"] == location
    probe.changes()  # the write was meant: the next case compares against it


NUL_WRITES = [
    ("experiment name", "/experiments/create", lambda s: {"name": s}),
    ("param value", "/runs/log-parameter", lambda s: {"run_id": "{run}", "key": "nul",
                                                       "value": s}),
    ("tag value", "/runs/set-tag", lambda s: {"run_id": "{run}", "key": "nul", "value": s}),
    ("run name", "/runs/create", lambda s: {"experiment_id": "{exp}", "run_name": s}),
    ("registered model name", "/registered-models/create", lambda s: {"name": s}),
]


@pytest.mark.parametrize("label,path,body", NUL_WRITES, ids=[w[0] for w in NUL_WRITES])
def test_nul_is_refused_or_kept(probe, label: str, path: str, body) -> None:
    """One rule on every backend: a NUL is either refused (4xx naming the field, nothing
    written) or stored and read back unchanged; never a 500."""
    value = f"nul-{uuid.uuid4().hex[:6]}\x00after"
    response = probe.client.post(API + path, json=probe.seed.fill(body(value)))
    if response.status_code == 501 and not probe.has_registry:
        return
    if response.status_code != 200:
        probe.assert_unchanged()
        assert 400 <= response.status_code < 500, response.text[:300]
        assert response.json()["error_code"] == "INVALID_PARAMETER_VALUE", response.text
        return
    text = str(probe.snapshot())
    assert repr(value)[1:-1] in text, f"{label} did not read back unchanged"
    probe.baseline = probe.snapshot()


@pytest.mark.parametrize("route,params", [
    ("/runs/get", {"run_id": "a\x00"}),
    ("/experiments/get", {"experiment_id": "1\x00"}),
    ("/experiments/get-by-name", {"experiment_name": "x\x00"}),
    ("/metrics/get-history", {"run_id": "{run}", "metric_key": "m\x00"}),
    ("/registered-models/get", {"name": "x\x00"}),
])
def test_nul_in_a_lookup_is_a_clean_miss(probe, route: str, params: dict) -> None:
    response = probe.client.get(API + route, params=probe.seed.fill(params))
    if response.status_code == 501 and not probe.has_registry:
        return
    if response.status_code == 200:  # a history of a key nobody logged: empty
        assert not response.json().get("metrics"), response.text[:300]
        return
    assert response.status_code in (400, 404), response.text[:300]
    assert response.json()["error_code"] in ("INVALID_PARAMETER_VALUE",
                                             "RESOURCE_DOES_NOT_EXIST")
    probe.assert_healthy()
