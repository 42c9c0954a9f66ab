"""A tracking server (MLflow or tracklog) read over its REST API as a migration source."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Iterator
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from tracklog import errors
from tracklog.entities import (
    Experiment,
    LoggedModel,
    Metric,
    ModelVersion,
    RegisteredModel,
    Run,
    TraceInfo,
)
from tracklog.importing.sources import _SPANS_LOCATION_TAG

if TYPE_CHECKING:
    from tracklog.artifacts.copying import Tree


class RestSource:
    """An MLflow-protocol tracking server (MLflow itself, or tracklog) read over its REST
    API: experiments, runs, logged models, traces and the registry searched page by
    page, histories fetched in pages; responses decoded by the server's own codec."""

    def __init__(self, url: str, token: str | None = None) -> None:
        import httpx

        self.url = url.rstrip("/")
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.http = httpx.Client(base_url=self.url + "/api", headers=headers, timeout=300)
        #: Traces whose spans the server keeps in its tracking store.
        self._spans_in_store: set[str] = set()

    def describe(self) -> str:
        return f"tracking server {self.url}"

    def check(self) -> None:
        """Fail at once, naming the server, when it does not answer as a tracking
        server."""
        self._call("POST", "/2.0/mlflow/experiments/search", json={"max_results": 1})

    def _call(self, method: str, path: str, missing_ok: bool = False, **kw: Any) -> dict:
        import httpx

        try:
            r = self.http.request(method, path, **kw)
        except httpx.HTTPError as exc:
            raise errors.invalid(f"Cannot reach {self.url}: {exc}") from None
        if missing_ok and r.status_code in (404, 501):
            return {}
        if r.status_code != 200:
            try:
                message = r.json().get("message", "")
            except ValueError:
                message = r.text[:200]
            raise errors.invalid(f"{self.url} answered {r.status_code} to {path}: "
                                 f"{message}")
        return r.json()

    def _search(self, method: str, path: str, body: dict, key: str,
                missing_ok: bool = False) -> Iterator[dict]:
        token = None
        while True:
            args = {**body, **({"page_token": token} if token else {})}
            page = self._call(method, path, missing_ok,
                              **({"json": args} if method == "POST" else {"params": args}))
            yield from page.get(key, [])
            token = page.get("next_page_token")
            if not token:
                return

    def experiments(self) -> Iterator[Experiment]:
        from tracklog.server.codec import experiment_from_json

        for e in self._search("POST", "/2.0/mlflow/experiments/search",
                              {"max_results": 1000, "view_type": "ALL"}, "experiments"):
            yield experiment_from_json(e)

    def runs(self, experiment_id: str) -> Iterator[Run]:
        from tracklog.server.codec import run_from_json

        body = {"experiment_ids": [experiment_id], "run_view_type": "ALL", "max_results": 1000}
        for r in self._search("POST", "/2.0/mlflow/runs/search", body, "runs"):
            yield run_from_json(r)

    def history(self, run_id: str, key: str) -> Iterable[Metric]:
        from tracklog.server.codec import metric_from_json

        query = {"run_id": run_id, "metric_key": key, "max_results": 25_000}
        for m in self._search("GET", "/2.0/mlflow/metrics/get-history", query, "metrics"):
            # A run's own history: a logged model's metrics are copied with the model.
            yield Metric(*metric_from_json(m, key)[:4])

    def logged_models(self, experiment_id: str) -> Iterator[LoggedModel]:
        from tracklog.server.codec import logged_model_from_json

        for m in self._search("POST", "/2.0/mlflow/logged-models/search",
                              {"experiment_ids": [experiment_id], "max_results": 100},
                              "models", missing_ok=True):
            yield logged_model_from_json(m)

    def traces(self, experiment_id: str) -> Iterator[TraceInfo]:
        from tracklog.server.tracecodec import (
            assessment_from_json,
            timestamp_to_ms,
            trace_info_from_json,
        )

        body = {"locations": [{"type": "MLFLOW_EXPERIMENT",
                               "mlflow_experiment": {"experiment_id": experiment_id}}],
                "max_results": 500}
        for t in self._search("POST", "/3.0/mlflow/traces/search", body, "traces",
                              missing_ok=True):
            info = trace_info_from_json(t, "trace")
            if info.tags.get(_SPANS_LOCATION_TAG) == "TRACKING_STORE":
                self._spans_in_store.add(info.trace_id)
            for a in t.get("assessments", ()):
                info.assessments.append(replace(
                    assessment_from_json(a, info.trace_id),
                    assessment_id=a["assessment_id"],
                    create_time=timestamp_to_ms(a.get("create_time", 0), "create_time"),
                    last_update_time=timestamp_to_ms(a.get("last_update_time", 0),
                                                     "last_update_time")))
            yield info

    def spans(self, trace_id: str) -> bytes | None:
        """The trace's spans as MLflow's ``traces.json`` when the server keeps them in its
        tracking store (MLflow 3 answers them, as OpenTelemetry spans, to a batch get);
        None when it has none there (a tracklog server, an older MLflow)."""
        if trace_id not in self._spans_in_store:
            return None  # asked anyway, MLflow answers 500
        page = self._call("GET", "/3.0/mlflow/traces/batchGet", missing_ok=True,
                          params={"trace_ids": [trace_id]})
        spans = [s for t in page.get("traces", ()) for s in t.get("spans", ())]
        if not spans:
            return None
        return json.dumps({"spans": [_span_from_otel(s) for s in spans]},
                          ensure_ascii=False).encode()

    def registered_models(self) -> Iterator[tuple[RegisteredModel, list[ModelVersion]]]:
        from tracklog.server.codec import model_version_from_json, registered_model_from_json

        versions: dict[str, list[ModelVersion]] = {}
        for v in self._search("GET", "/2.0/mlflow/model-versions/search",
                              {"max_results": 10_000}, "model_versions", missing_ok=True):
            version = model_version_from_json(v)
            versions.setdefault(version.name, []).append(version)
        for m in self._search("GET", "/2.0/mlflow/registered-models/search",
                              {"max_results": 1000}, "registered_models", missing_ok=True):
            model = registered_model_from_json(m)
            mine = versions.get(model.name, [])
            if not model.aliases:  # some servers list aliases on the versions only
                from tracklog.entities import RegisteredModelAlias

                model.aliases = [RegisteredModelAlias(a, v.version)
                                 for v in mine for a in v.aliases]
            yield model, mine

    def artifact_tree(self, uri: str) -> Tree | None:
        """A location the server proxies (``mlflow-artifacts:``), read through its proxy;
        None for any other location."""
        from tracklog.artifacts.copying import ProxyTree, proxied_path

        path = proxied_path(uri)
        return None if path is None else ProxyTree(self.http, path)

    def close(self) -> None:
        self.http.close()


_OTEL_STATUS = {0: "STATUS_CODE_UNSET", 1: "STATUS_CODE_OK", 2: "STATUS_CODE_ERROR"}


def _otel_value(value: dict[str, Any]) -> Any:
    """An OpenTelemetry AnyValue in its JSON form, as a plain value."""
    if "array_value" in value:
        return [_otel_value(v) for v in value["array_value"].get("values", ())]
    if "kvlist_value" in value:
        return {kv["key"]: _otel_value(kv.get("value", {}))
                for kv in value["kvlist_value"].get("values", ())}
    if "int_value" in value:
        return int(value["int_value"])  # int64: a string in protobuf's JSON
    if "double_value" in value:
        return float(value["double_value"])
    for kind in ("string_value", "bool_value", "bytes_value"):
        if kind in value:
            return value[kind]
    return None


def _otel_id(b64: str, prefix: str = "") -> str:
    return prefix + base64.b64decode(b64).hex()


def _span_from_otel(span: dict[str, Any]) -> dict[str, Any]:
    """An OpenTelemetry span (JSON form) as a span of MLflow's ``traces.json``, as MLflow's
    client reads one: ids base64, attribute values as JSON text, event attributes plain."""
    status = span.get("status", {})
    code = status.get("code", 0)
    end = span.get("end_time_unix_nano")
    return {
        "trace_id": span["trace_id"],
        "span_id": span["span_id"],
        "parent_span_id": span.get("parent_span_id") or None,
        "name": span.get("name", ""),
        "start_time_unix_nano": int(span.get("start_time_unix_nano", 0)),
        "end_time_unix_nano": None if end is None else int(end),
        "events": [{"name": e.get("name", ""),
                    "time_unix_nano": int(e.get("time_unix_nano", 0)),
                    "attributes": {a["key"]: _otel_value(a.get("value", {}))
                                   for a in e.get("attributes", ())}}
                   for e in span.get("events", ())],
        "status": {"code": _OTEL_STATUS.get(code, code) if isinstance(code, int) else code,
                   "message": status.get("message", "")},
        "attributes": {a["key"]: json.dumps(_otel_value(a.get("value", {})),
                                            ensure_ascii=False)
                       for a in span.get("attributes", ())},
        "links": [{"trace_id": _otel_id(link["trace_id"], "tr-"),
                   "span_id": _otel_id(link["span_id"]),
                   "attributes": {a["key"]: _otel_value(a.get("value", {}))
                                  for a in link.get("attributes", ())} or None}
                  for link in span.get("links", ())],
    }
