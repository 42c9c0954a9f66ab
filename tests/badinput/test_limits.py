"""Too much: bodies, batches, keys, values, headers, id lists, filters; and keys that are
not keys (control characters, path segments)."""

from __future__ import annotations

import http.client

import pytest
from badinput_support import API, Case

INVALID = "INVALID_PARAMETER_VALUE"
RUN = {"run_id": "{run}"}


def _post(id_: str, path: str, body: dict, match: str, **kw) -> Case:
    return Case(id_, "POST", API + path, json=body, match=match, **kw)


def _metrics(n: int) -> list[dict]:
    return [{"key": f"m{i}", "value": 1.0, "timestamp": 1, "step": 0} for i in range(n)]


def _pairs(n: int) -> list[dict]:
    return [{"key": f"k{i}", "value": "v"} for i in range(n)]


KEY_251 = "k" * 251
BATCHES = [
    _post("log-batch 1001 metrics", "/runs/log-batch", {**RUN, "metrics": _metrics(1001)},
          "metrics"),
    _post("log-batch 101 params", "/runs/log-batch", {**RUN, "params": _pairs(101)}, "param"),
    _post("log-batch 101 tags", "/runs/log-batch", {**RUN, "tags": _pairs(101)}, "tag"),
    _post("log-batch 1000 metrics and 100 params", "/runs/log-batch",
          {**RUN, "metrics": _metrics(1000), "params": _pairs(100)}, "1000"),
    _post("log-inputs 1001 datasets", "/runs/log-inputs", {**RUN, "datasets": [
        {"dataset": {"name": f"d{i}", "digest": "d", "source_type": "local", "source": "s"}}
        for i in range(1001)]}, "datasets"),
    _post("runs/search 100,000 experiment ids", "/runs/search",
          {"experiment_ids": [str(i) for i in range(100_000)]}, "experiment_ids"),
    _post("runs/search max_results 50,001", "/runs/search",
          {"experiment_ids": ["{exp}"], "max_results": 50_001}, "max_results"),
    _post("experiments/search max_results 50,001", "/experiments/search",
          {"max_results": 50_001}, "max_results"),
    _post("logged-models/search 100,000 experiment ids", "/logged-models/search",
          {"experiment_ids": [str(i) for i in range(100_000)]}, "experiment_ids"),
    _post("runs/search 2,000 AND clauses", "/runs/search",
          {"experiment_ids": ["{exp}"],
           "filter": " AND ".join(f"params.p{i} = 'x'" for i in range(2000))},
          "filter|clause|complex"),
    Case("registered-models/search max_results 1,001", "GET",
         API + "/registered-models/search", params={"max_results": "1001"},
         match="max_results"),
    Case("runs/search page token for a huge offset", "POST", API + "/runs/search",
         json={"experiment_ids": ["{exp}"],
               "page_token": "eyJvZmZzZXQiOiA5OTk5OTk5OTk5OTk5OTk5OTk5OTk5fQ=="},
         match="page_token|token"),
]

KEYS_AND_VALUES = [
    _post("log-parameter key of 251", "/runs/log-parameter", {**RUN, "key": KEY_251,
                                                              "value": "v"}, "key"),
    _post("log-metric key of 251", "/runs/log-metric",
          {**RUN, "key": KEY_251, "value": 1.0, "timestamp": 1}, "key"),
    _post("set-tag key of 251", "/runs/set-tag", {**RUN, "key": KEY_251, "value": "v"}, "key"),
    _post("log-batch tag key of 251", "/runs/log-batch",
          {**RUN, "tags": [{"key": KEY_251, "value": "v"}]}, "key"),
    _post("experiment tag key of 251", "/experiments/set-experiment-tag",
          {"experiment_id": "{exp}", "key": KEY_251, "value": "v"}, "key"),
    _post("experiment tag value of 20,001", "/experiments/set-experiment-tag",
          {"experiment_id": "{exp}", "key": "k", "value": "v" * 20_001}, "value"),
    _post("experiment name of 501", "/experiments/create", {"name": "n" * 501}, "name"),
    _post("artifact location of 2,049", "/experiments/create",
          {"name": "long-location", "artifact_location": "/" + "a" * 2048},
          "artifact_location"),
    _post("registered model tag value of 100,001", "/registered-models/set-tag",
          {"name": "{model}", "key": "k", "value": "v" * 100_001}, "value"),
    _post("model version tag key of 251", "/model-versions/set-tag",
          {"name": "{model}", "version": "1", "key": KEY_251, "value": "v"}, "key"),
    _post("alias of 256", "/registered-models/alias",
          {"name": "{model}", "alias": "a" * 256, "version": "1"}, "alias"),
    _post("dataset digest of 37", "/runs/log-inputs", {**RUN, "datasets": [{"dataset": {
        "name": "d", "digest": "d" * 37, "source_type": "local", "source": "s"}}]}, "digest"),
    _post("dataset source of 65,536", "/runs/log-inputs", {**RUN, "datasets": [{"dataset": {
        "name": "d", "digest": "d", "source_type": "local", "source": "s" * 65_536}}]},
        "source"),
    _post("dataset input tag value of 501", "/runs/log-inputs", {**RUN, "datasets": [{
        "dataset": {"name": "d", "digest": "d", "source_type": "local", "source": "s"},
        "tags": [{"key": "k", "value": "v" * 501}]}]}, "value"),
    Case("logged model tag key of 251", "PATCH", API + "/logged-models/{lm}/tags",
         json={"tags": [{"key": KEY_251, "value": "v"}]}, match="key"),
]

# Keys name files in the file store and columns of a row elsewhere: a control character
# or a path segment is refused on every route that takes a key.
BAD_KEYS = ["a\x00b", "a\x01b", "a\nb", "a\x1bb", "a\x7fb", "../escape", "a/../../b", "/abs",
            "a\\b"]
KEY_ROUTES = [
    ("log-parameter", "/runs/log-parameter", lambda k: {**RUN, "key": k, "value": "v"}),
    ("log-metric", "/runs/log-metric", lambda k: {**RUN, "key": k, "value": 1.0,
                                                  "timestamp": 1}),
    ("set-tag", "/runs/set-tag", lambda k: {**RUN, "key": k, "value": "v"}),
    ("log-batch param", "/runs/log-batch", lambda k: {**RUN, "params": [{"key": k,
                                                                          "value": "v"}]}),
    ("log-batch metric", "/runs/log-batch",
     lambda k: {**RUN, "metrics": [{"key": k, "value": 1.0, "timestamp": 1, "step": 0}]}),
    ("log-batch tag", "/runs/log-batch", lambda k: {**RUN, "tags": [{"key": k, "value": "v"}]}),
    ("experiment tag", "/experiments/set-experiment-tag",
     lambda k: {"experiment_id": "{exp}", "key": k, "value": "v"}),
    ("registered model tag", "/registered-models/set-tag",
     lambda k: {"name": "{model}", "key": k, "value": "v"}),
    ("model version tag", "/model-versions/set-tag",
     lambda k: {"name": "{model}", "version": "1", "key": k, "value": "v"}),
    ("logged model params", "/logged-models/{lm}/params",
     lambda k: {"params": [{"key": k, "value": "v"}]}),
]
KEY_CASES = [_post(f"{label} key {key!r}", path, body(key), "key")
             for label, path, body in KEY_ROUTES for key in BAD_KEYS]

SIZE_CASES = [
    Case("log-batch body of 33 MiB", "POST", API + "/runs/log-batch",
         content=b'{"run_id": "{run}", "tags": [], "pad": "' + b"x" * (33 << 20) + b'"}',
         headers={"content-type": "application/json"}, match="exceeds|large|size|bytes"),
]

ALL = BATCHES + KEYS_AND_VALUES + KEY_CASES + SIZE_CASES


@pytest.mark.parametrize("case", ALL, ids=[c.id for c in ALL])
def test_too_much_is_refused(probe, case: Case) -> None:
    probe.expect_refused(case)


def _raw(probe, method: str, path: str, headers: list[tuple[str, str]], body: bytes = b""
         ) -> int:
    url = probe.client.base_url
    conn = http.client.HTTPConnection(url.host, url.port, timeout=60)
    try:
        conn.putrequest(method, path)
        for name, value in headers:
            conn.putheader(name, value)
        conn.endheaders(body)
        response = conn.getresponse()
        response.read()
        return response.status
    except (ConnectionError, http.client.HTTPException):
        return 0  # the server hung up on the request: also a refusal
    finally:
        conn.close()


def test_declared_oversized_body_is_refused_before_reading(probe) -> None:
    status = _raw(probe, "POST", "/api/2.0/mlflow/runs/log-batch",
                  [("Content-Type", "application/json"), ("Content-Length", str(1 << 40))])
    probe.assert_unchanged()
    assert status in (0, 400, 413), status
    probe.assert_healthy()


@pytest.mark.parametrize("size", [1 << 20, 16 << 20])
def test_oversized_header_is_refused(probe, size: int) -> None:
    body = b'{"name": "big-header"}'
    status = _raw(probe, "POST", "/api/2.0/mlflow/experiments/create",
                  [("Content-Type", "application/json"), ("Content-Length", str(len(body))),
                   ("X-Padding", "p" * size)], body)
    probe.assert_unchanged()
    assert status == 0 or 400 <= status < 500, status
    probe.assert_healthy()
