"""What every bad-input case asserts, and the seeded data cases refer to.

A :class:`Case` is one request with a bad value in it and the refusal it must get: a 4xx
JSON body with an MLflow ``error_code`` and a message matching a pattern (the field or
the problem named). :class:`Probe` sends it and checks, after every request that could
write, that nothing was written (the API's listings and the files on disk are as they
were) and that the server still answers ``/health``.

Paths and bodies may hold placeholders filled from the seeded data: ``{exp}`` (an
experiment id), ``{run}`` (a run id), ``{model}`` (a registered model with version 1),
``{lm}`` (a logged model id), ``{art}`` (the run's artifact directory under the proxy),
``{trace}`` (a trace id) and ``{assessment}`` (an assessment of that trace).
"""

from __future__ import annotations

import dataclasses
import http.client
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson

API = "/api/2.0/mlflow"
PROXY = "/api/2.0/mlflow-artifacts"
UNSET: Any = object()

#: The routes of the model registry and of multipart and presigned artifact transfers: a
#: store or repository without the capability answers them with 501 NOT_IMPLEMENTED
#: before looking at the request (what the MLflow client expects; it does not retry 501).
REGISTRY_PREFIXES = (f"{API}/registered-models", f"{API}/model-versions")
MULTIPART_PREFIXES = (f"{PROXY}/mpu/",)
PRESIGNED_PREFIXES = (f"{PROXY}/presigned/",)
#: The trace routes: a store without traces answers them 404 ENDPOINT_NOT_FOUND before
#: looking at the request, as a server without trace routes does.
API3 = "/api/3.0/mlflow"
TRACE_PREFIXES = (f"{API3}/traces", f"{API}/traces")
#: The seeded trace's id (the client picks trace ids, so the seed can too).
SEED_TRACE = "tr-" + "5" * 32


ALL_PARTS = frozenset({"experiments", "runs", "logged_models", "registry", "traces"})
# What each family of routes could write, besides files: a refused request is checked
# against these (all of them is five listings per request, too slow for ~1,000 cases).
_FAMILIES = [
    ("/experiments/", frozenset({"experiments"})),
    ("/runs/", frozenset({"runs", "experiments"})),
    ("/logged-models", frozenset({"logged_models"})),
    ("/registered-models/", frozenset({"registry"})),
    ("/model-versions/", frozenset({"registry"})),
    ("/mlflow-artifacts/", frozenset()),
    ("/traces", frozenset({"traces"})),
]


def parts_for(path: str) -> frozenset[str]:
    for marker, parts in _FAMILIES:
        if marker in path:
            return parts
    return ALL_PARTS


@dataclass(frozen=True)
class Case:
    """One bad request and the refusal it must get."""

    id: str
    method: str
    path: str
    json: Any = UNSET
    params: dict[str, Any] | None = None
    content: bytes | None = None
    headers: dict[str, str] | None = None
    status: int | tuple[int, ...] = 400
    code: str | tuple[str, ...] = "INVALID_PARAMETER_VALUE"
    match: str = ""
    json_body: bool = True  # False only where the refusal comes from the HTTP layer
    raw: bool = False  # send the path byte for byte (httpx would resolve ``..`` itself)

    def __str__(self) -> str:
        return self.id


@dataclass
class Seed:
    exp: str
    run: str
    model: str
    lm: str
    art: str
    trace: str = SEED_TRACE
    assessment: str = "a-none"
    values: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.values = {"exp": self.exp, "run": self.run, "model": self.model, "lm": self.lm,
                       "art": self.art, "trace": self.trace, "assessment": self.assessment}

    def fill(self, value: Any) -> Any:
        if isinstance(value, str):
            return re.sub(r"\{(exp|run|model|lm|art|trace|assessment)\}",
                          lambda m: self.values[m[1]], value)
        if isinstance(value, bytes):
            return re.sub(rb"\{(exp|run|model|lm|art|trace|assessment)\}",
                          lambda m: self.values[m[1].decode()].encode(), value)
        if isinstance(value, dict):
            return {k: self.fill(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.fill(v) for v in value]
        return value


def _tree(root: Path) -> dict[str, int]:
    """Every file (with its size) and directory under ``root``, but the SQLite database
    and the server's log."""
    out: dict[str, int] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        rel = os.path.relpath(dirpath, root)
        for d in dirnames:
            out[os.path.join(rel, d) + "/"] = 0
        for f in filenames:
            path = os.path.join(rel, f)
            if f.startswith(("tracklog.db", "server-")):
                continue
            try:
                out[path] = os.lstat(os.path.join(dirpath, f)).st_size
            except FileNotFoundError:
                continue
    return out


class Probe:
    """Sends cases to one server and checks the server's state around them."""

    def __init__(self, client: httpx.Client, seed: Seed, disk: Path, backend: str) -> None:
        self.client = client
        self.seed = seed
        self.disk = disk
        #: The box around ``disk`` (see the ``bad_server`` fixture) where an escape lands.
        self.box = disk.parents[len("abcdefgh") - 1]
        self.backend = backend
        info = client.get("/api/3.0/mlflow/server-info").json()
        self.unsupported: tuple[str, ...] = ()
        if client.get(API + "/registered-models/search").status_code == 501:
            self.unsupported += REGISTRY_PREFIXES
        if not info.get("multipart_uploads_enabled"):
            self.unsupported += MULTIPART_PREFIXES
        if not info.get("multipart_downloads_enabled"):
            self.unsupported += PRESIGNED_PREFIXES
        self.has_registry = REGISTRY_PREFIXES[0] not in self.unsupported
        self.has_traces = client.post(f"{API3}/traces/search", json={
            "locations": [{"mlflow_experiment": {"experiment_id": seed.exp}}]}
        ).status_code != 404
        self.baseline = self.snapshot()

    # -- reading the state back ---------------------------------------------------------

    def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        r = self.client.post(API + path, json=body)
        assert r.status_code == 200, (path, r.status_code, r.text[:500])
        return r.json()

    def _get(self, path: str, params: dict[str, Any]) -> dict[str, Any]:
        r = self.client.get(path, params=params)
        assert r.status_code == 200, (path, r.status_code, r.text[:500])
        return r.json()

    def _traces(self, experiment_ids: list[str]) -> list[Any]:
        locations = [{"mlflow_experiment": {"experiment_id": e}} for e in experiment_ids]
        r = self.client.post(f"{API3}/traces/search",
                             json={"locations": locations, "max_results": 500})
        assert r.status_code == 200, r.text[:500]
        return r.json().get("traces", [])

    def snapshot(self, parts: frozenset[str] = ALL_PARTS) -> dict[str, Any]:
        """What a bad request could have changed, read through the API (plus the files
        under the server's directory, where an escaped path would land)."""
        state: dict[str, Any] = {}
        exps = self._post("/experiments/search", {"max_results": 1000, "view_type": "ALL"})
        ids = sorted(e["experiment_id"] for e in exps.get("experiments", []))
        if "experiments" in parts:
            state["experiments"] = exps
        if "runs" in parts:
            state["runs"] = self._post("/runs/search", {
                "experiment_ids": ids, "max_results": 1000, "run_view_type": "ALL"})
        if "logged_models" in parts:
            state["logged_models"] = self._post("/logged-models/search", {
                "experiment_ids": ids, "max_results": 100})
        if "registry" in parts and self.has_registry:
            state["registered_models"] = self._get(f"{API}/registered-models/search",
                                                   {"max_results": 1000})
            state["model_versions"] = self._get(f"{API}/model-versions/search", {})
        if "traces" in parts and self.has_traces:
            state["traces"] = self._traces(ids)
        state["files"] = _tree(self.disk)
        return state

    def changes(self, parts: frozenset[str] = ALL_PARTS) -> list[str]:
        """What changed since the last look (which becomes the new baseline, so one bad
        write does not fail every later case)."""
        now = self.snapshot(parts)
        changed = [f"the request changed {key}" for key in now
                   if now[key] != self.baseline.get(key)]
        self.baseline.update(now)
        return changed

    def assert_unchanged(self) -> None:
        changed = self.changes()
        assert not changed, changed

    def assert_healthy(self) -> None:
        r = self.client.get("/health", timeout=10)
        assert r.status_code == 200, f"/health answered {r.status_code} after the request"

    # -- one case -----------------------------------------------------------------------

    def send(self, case: Case) -> httpx.Response:
        kwargs: dict[str, Any] = {}
        if case.json is not UNSET:
            kwargs["content"] = orjson.dumps(self.seed.fill(case.json))
            kwargs["headers"] = {"content-type": "application/json"}
        if case.content is not None:
            kwargs["content"] = self.seed.fill(case.content)
        if case.params is not None:
            kwargs["params"] = self.seed.fill(case.params)
        if case.headers:
            kwargs["headers"] = {**kwargs.get("headers", {}), **case.headers}
        url = self.seed.fill(case.path)
        if case.raw:
            return self._send_raw(case.method, url, kwargs.get("content"), kwargs.get("headers"))
        if "://" not in url:
            url = str(self.client.base_url).rstrip("/") + url
        request = self.client.build_request(case.method, httpx.URL(url), **kwargs)
        return self.client.send(request)

    def _send_raw(self, method: str, target: str, body: bytes | None,
                  headers: dict[str, str] | None) -> httpx.Response:
        url = self.client.base_url
        conn = http.client.HTTPConnection(url.host, url.port, timeout=60)
        try:
            conn.request(method, url.raw_path.rstrip(b"/").decode() + target, body=body,
                         headers=headers or {})
            raw = conn.getresponse()
            return httpx.Response(raw.status, headers=raw.getheaders(), content=raw.read())
        finally:
            conn.close()

    def expect_refused(self, case: Case) -> None:
        response = self.send(case)
        status, codes = case.status, case.code
        statuses = status if isinstance(status, tuple) else (status,)
        codes = codes if isinstance(codes, tuple) else (codes,)
        if self.unsupported and case.path.startswith(self.unsupported):
            statuses, codes = (*statuses, 501), (*codes, "NOT_IMPLEMENTED")
        if not self.has_traces and case.path.startswith(TRACE_PREFIXES):
            statuses, codes = (*statuses, 404), (*codes, "ENDPOINT_NOT_FOUND")
            if response.status_code == 404:  # refused before the request is read
                case = dataclasses.replace(case, match="")
        text = response.text[:600]
        problems = self._refusal_problems(case, response, statuses, codes)
        if case.method != "GET":
            problems += self.changes(parts_for(case.path))
        assert not problems, f"{case.id}: " + "; ".join(problems) + f": {text}"
        self.assert_healthy()

    @staticmethod
    def _refusal_problems(case: Case, response: httpx.Response, statuses: tuple[int, ...],
                          codes: tuple[str, ...]) -> list[str]:
        if response.status_code not in statuses:
            return [f"expected {statuses}, got {response.status_code}"]
        if response.status_code == 200:
            # Allowed only where the request is harmless (listing or deleting nothing).
            return ["listed files"] if response.json().get("files") else []
        if not case.json_body:
            return []
        if not response.headers.get("content-type", "").startswith("application/json"):
            return ["not a JSON error"]
        body = response.json()
        if body.get("error_code") not in codes:
            return [f"error_code not in {codes}"]
        if case.match and response.status_code != 501 and not re.search(
                case.match, body.get("message", ""), re.I):
            return [f"message does not name {case.match!r}"]
        return []
