"""Trace routes (MLflow tracing): start, get, search, tags, deletion, run links, assessments.

The client sends a trace's info with ``POST /api/3.0/mlflow/traces`` once the trace has
ended, reads back the ``mlflow.artifactLocation`` tag of the answer and uploads the spans
there as ``traces.json`` through the artifact proxy; reads fetch them the same way.

A store without the trace capability answers ENDPOINT_NOT_FOUND on every route, as a
server without trace routes does: the client then gives up quietly (or falls back).
Trace routes follow the ``/api/3.0`` paths the client calls; the tag, deletion and
run-link RPCs, which it calls under ``/api/2.0``, are served under both.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from starlette.requests import Request

from tracklog import errors, search, validation
from tracklog.entities import TraceInfo
from tracklog.server import tracecodec
from tracklog.server.codec import JSONResponse, Req, error_response
from tracklog.server.routing import RouteTable, ServerState, by_run, readable_experiment_ids
from tracklog.stores import TRACE_ARTIFACT_LOCATION_TAG, TraceStore, has_traces

table = RouteTable()

Handler = Callable[[ServerState, Req], Any]
_T = "/mlflow/traces"
_V3 = ("3.0",)
_BOTH = ("2.0", "3.0")
#: Trace tags only the server writes.
_RESERVED_TAGS = frozenset({
    TRACE_ARTIFACT_LOCATION_TAG,
    "mlflow.trace.spansLocation",
    "mlflow.trace.archiveLocation",
    "mlflow.trace.archivalFailure",
})
MAX_TRACE_KEY_LENGTH = 250
MAX_TRACE_VALUE_LENGTH = 8000
MAX_PREVIEW_LENGTH = 1000
MAX_SEARCH_RESULTS = 500
MAX_TRACES_PER_REQUEST = 1000
#: What MLflow's client looks for to stop streaming OTLP spans to a server.
OTLP_REFUSAL = "REST OTLP span logging is not supported by this server"


def _traces(state: ServerState) -> TraceStore:
    store = state.store
    if not has_traces(store):
        raise errors.TracklogError(
            f"Tracing is not supported by the backend store {store.store_type}.",
            errors.ErrorCode.ENDPOINT_NOT_FOUND,
        )
    return store  # type: ignore[return-value]


def traces_rpc(method: str, path: str, action: str, resource: Any = None,
               versions: tuple[str, ...] = _V3) -> Callable[[Handler], Handler]:
    """Register a JSON trace route that answers ENDPOINT_NOT_FOUND, before it looks at
    the request, when the store has no traces."""

    def register(handler: Handler) -> Handler:
        @functools.wraps(handler)
        def guarded(state: ServerState, req: Req) -> Any:
            _traces(state)
            return handler(state, req)

        table.rpc(method, path, action, resource, versions)(guarded)
        return handler

    return register


def by_trace(req: Req) -> dict[str, str]:
    trace_id = req.path_params.get("trace_id") or req.string("trace_id") or ""
    return {"trace_id": trace_id}


def by_trace_ids(req: Req) -> dict[str, list[str]]:
    return {"trace_ids": [str(t) for t in req.values("trace_ids")]}


def _start_resource(req: Req) -> dict[str, str]:
    info = (req.object("trace") or {}).get("trace_info") or {}
    location = info.get("trace_location") if isinstance(info, dict) else None
    experiment = (location or {}).get("mlflow_experiment") if isinstance(location, dict) else None
    experiment_id = experiment.get("experiment_id") if isinstance(experiment, dict) else None
    return {"experiment_id": str(experiment_id or "")}


def _by_experiment_body(req: Req) -> dict[str, str]:
    return {"experiment_id": req.string("experiment_id") or ""}


def _path_trace_id(req: Req) -> str:
    return tracecodec.check_trace_id(req.path_params.get("trace_id"))


def _key(value: Any, field: str) -> str:
    if value is None or value == "":
        raise validation.missing(field)
    if not isinstance(value, str):
        raise validation.invalid_value(field, value, "Expected a string.")
    if len(value) > MAX_TRACE_KEY_LENGTH:
        raise validation.invalid_value(field, value[:40] + "…",
                                       f"It is longer than {MAX_TRACE_KEY_LENGTH} characters.")
    return value


def _clean(info: TraceInfo) -> TraceInfo:
    """Keys checked, long values truncated as MLflow does, server-owned tags dropped."""
    for key in info.tags:
        _key(key, f"trace.trace_info.tags.{key[:40]}")
    for key in info.trace_metadata:
        _key(key, f"trace.trace_info.trace_metadata.{key[:40]}")
    info.tags = {k: v[:MAX_TRACE_VALUE_LENGTH] for k, v in info.tags.items()
                 if k not in _RESERVED_TAGS}
    info.trace_metadata = {k: v[:MAX_TRACE_VALUE_LENGTH] for k, v in info.trace_metadata.items()}
    if info.request_preview is not None:
        info.request_preview = info.request_preview[:MAX_PREVIEW_LENGTH]
    if info.response_preview is not None:
        info.response_preview = info.response_preview[:MAX_PREVIEW_LENGTH]
    if info.execution_duration is not None:
        validation.check_int64(info.execution_duration, "trace.trace_info.execution_duration")
    validation.check_int64(info.request_time, "trace.trace_info.request_time")
    return info


def _trace_response(info: TraceInfo) -> JSONResponse:
    return JSONResponse({"trace": {"trace_info": tracecodec.trace_info(info)}})


# --- traces ------------------------------------------------------------------------------


@traces_rpc("POST", _T, "update", _start_resource)
def start_trace(state: ServerState, req: Req) -> Any:
    trace = req.object("trace")
    if trace is None:
        raise validation.missing("trace")
    info = _clean(tracecodec.trace_info_from_json(trace.get("trace_info")))
    return _trace_response(_traces(state).start_trace(info))


@traces_rpc("GET", _T + "/get", "read", by_trace)
def get_trace(state: ServerState, req: Req) -> Any:
    # Spans are artifacts the client fetches itself; this server never tells it to look
    # here (no ``mlflow.trace.spansLocation`` tag), so only the trace's existence is
    # answered, in the words MLflow's client reads as "spans are not served here".
    trace_id = tracecodec.check_trace_id(req.string("trace_id"))
    _traces(state).get_trace_info(trace_id)
    raise errors.not_found(
        f"Trace with ID '{trace_id}' has no spans in the tracking store; "
        "they are stored in its artifact location."
    )


def _trace_ids(req: Req) -> list[str]:
    ids = req.strings("trace_ids")
    if not ids:
        raise validation.missing("trace_ids")
    if len(ids) > MAX_TRACES_PER_REQUEST:
        raise validation.invalid_value(
            "trace_ids", f"{len(ids)} ids", f"At most {MAX_TRACES_PER_REQUEST} are allowed."
        )
    return ids


@traces_rpc("GET", _T + "/batchGet", "read", by_trace_ids)
def batch_get_traces(state: ServerState, req: Req) -> Any:
    ids = _trace_ids(req)
    experiment_ids = req.strings("experiment_ids") if req.has("experiment_ids") else None
    infos = _traces(state).batch_get_trace_infos(ids, experiment_ids)
    # Spans stay in the artifact store: each trace comes with its info only.
    return JSONResponse({"traces": [{"trace_info": tracecodec.trace_info(i)} for i in infos]})


@traces_rpc("POST", _T + "/batchGetInfos", "read", by_trace_ids)
def batch_get_trace_infos(state: ServerState, req: Req) -> Any:
    ids = _trace_ids(req)
    experiment_ids = req.strings("experiment_ids") if req.has("experiment_ids") else None
    infos = _traces(state).batch_get_trace_infos(ids, experiment_ids)
    return JSONResponse({"trace_infos": [tracecodec.trace_info(i) for i in infos]})


def _experiment_ids_of(req: Req) -> list[str]:
    ids: list[str] = []
    for i, location in enumerate(req.objects("locations")):
        experiment = location.get("mlflow_experiment")
        experiment_id = experiment.get("experiment_id") if isinstance(experiment, dict) else None
        if not isinstance(experiment_id, str) or not experiment_id:
            raise validation.invalid_value(
                f"locations[{i}]", location, "Only MLflow experiment locations are served here."
            )
        ids.append(experiment_id)
    return ids


def _search_resource(req: Req) -> dict[str, list[str]]:
    try:
        return {"experiment_ids": _experiment_ids_of(req)}
    except errors.TracklogError:
        return {"experiment_ids": []}


@traces_rpc("POST", _T + "/search", "read", _search_resource)
def search_traces(state: ServerState, req: Req) -> Any:
    experiment_ids = _experiment_ids_of(req)
    if not experiment_ids:
        raise validation.missing("locations")
    validation.validate_experiment_ids(experiment_ids, "SearchTraces")
    experiment_ids = readable_experiment_ids(state, req, experiment_ids)
    if not experiment_ids:
        return JSONResponse({})
    max_results = validation.validate_max_results(
        req.integer("max_results"), default=100, limit=MAX_SEARCH_RESULTS
    )
    page = _traces(state).search_traces(
        experiment_ids,
        filter=search.parse_trace_filter(req.string("filter")),
        max_results=max_results,
        order_by=search.parse_trace_order_by(req.strings("order_by")),
        page_token=req.string("page_token") or None,
    )
    out: dict[str, Any] = {}
    if page:
        out["traces"] = [tracecodec.trace_info(t) for t in page]
    if page.token:
        out["next_page_token"] = page.token
    return JSONResponse(out)


@traces_rpc("GET", _T + "/{trace_id}", "read", by_trace)
def get_trace_info(state: ServerState, req: Req) -> Any:
    return _trace_response(_traces(state).get_trace_info(_path_trace_id(req)))


def _tag_key(req: Req) -> str:
    key = _key(req.string("key"), "key")
    if key in _RESERVED_TAGS:
        raise validation.invalid_value("key", key, "This tag is managed by the server.")
    return key


@traces_rpc("PATCH", _T + "/{trace_id}/tags", "update", by_trace, versions=_BOTH)
def set_trace_tag(state: ServerState, req: Req) -> dict[str, Any]:
    key = _tag_key(req)
    value = req.string("value") or ""
    _traces(state).set_trace_tag(_path_trace_id(req), key, value[:MAX_TRACE_VALUE_LENGTH])
    return {}


@traces_rpc("DELETE", _T + "/{trace_id}/tags", "update", by_trace, versions=_BOTH)
def delete_trace_tag(state: ServerState, req: Req) -> dict[str, Any]:
    _traces(state).delete_trace_tag(_path_trace_id(req), _tag_key(req))
    return {}


@traces_rpc("POST", _T + "/delete-traces", "delete", _by_experiment_body, versions=_BOTH)
def delete_traces(state: ServerState, req: Req) -> dict[str, Any]:
    experiment_id = req.string("experiment_id", required=True)
    max_timestamp = req.integer("max_timestamp_millis")
    max_traces = req.integer("max_traces")
    ids = req.strings("request_ids") or req.strings("trace_ids")
    if ids and (max_timestamp is not None or max_traces is not None):
        raise validation.invalid_value(
            "request_ids", f"{len(ids)} ids",
            "Give either request_ids or max_timestamp_millis (with max_traces), not both.",
        )
    if not ids and max_timestamp is None:
        raise validation.missing("max_timestamp_millis")
    if max_traces is not None and max_traces <= 0:
        raise validation.invalid_value("max_traces", max_traces, "It must be positive.")
    if len(ids) > MAX_TRACES_PER_REQUEST:
        raise validation.invalid_value(
            "request_ids", f"{len(ids)} ids", f"At most {MAX_TRACES_PER_REQUEST} are allowed."
        )
    if max_timestamp is not None:
        validation.check_int64(max_timestamp, "max_timestamp_millis")
    deleted = _traces(state).delete_traces(
        experiment_id, max_timestamp_millis=max_timestamp, max_traces=max_traces,
        trace_ids=ids,
    )
    return {"traces_deleted": deleted}


@traces_rpc("POST", _T + "/link-to-run", "update", by_run, versions=_BOTH)
def link_traces_to_run(state: ServerState, req: Req) -> dict[str, Any]:
    ids = [tracecodec.check_trace_id(t, f"trace_ids[{i}]")
           for i, t in enumerate(_trace_ids(req))]
    _traces(state).link_traces_to_run(ids, req.run_id())
    return {}


# --- assessments -----------------------------------------------------------------------

_A = _T + "/{trace_id}/assessments"


def _assessment_id(req: Req) -> str:
    value = req.path_params.get("assessment_id") or ""
    if not value or len(value) > 64:
        raise validation.invalid_value("assessment_id", value, "Not an assessment id.")
    return value


def _assessment_response(assessment: Any) -> JSONResponse:
    return JSONResponse({"assessment": tracecodec.assessment(assessment)})


@traces_rpc("POST", _A, "update", by_trace)
def create_assessment(state: ServerState, req: Req) -> Any:
    trace_id = _path_trace_id(req)
    new = tracecodec.assessment_from_json(req.object("assessment"), trace_id)
    return _assessment_response(_traces(state).create_assessment(new))


@traces_rpc("GET", _A + "/{assessment_id}", "read", by_trace)
def get_assessment(state: ServerState, req: Req) -> Any:
    found = _traces(state).get_assessment(_path_trace_id(req), _assessment_id(req))
    return _assessment_response(found)


@traces_rpc("PATCH", _A + "/{assessment_id}", "update", by_trace)
def update_assessment(state: ServerState, req: Req) -> Any:
    changes = tracecodec.assessment_update_from_json(
        req.object("assessment"), req._raw("update_mask")
    )
    kind, value = changes.pop("value", (None, None))
    updated = _traces(state).update_assessment(
        _path_trace_id(req), _assessment_id(req), kind=kind, value=value, **changes
    )
    return _assessment_response(updated)


@traces_rpc("DELETE", _A + "/{assessment_id}", "update", by_trace)
def delete_assessment(state: ServerState, req: Req) -> dict[str, Any]:
    _traces(state).delete_assessment(_path_trace_id(req), _assessment_id(req))
    return {}


# --- OTLP --------------------------------------------------------------------------------


@table.raw("POST", "/v1/traces", "update")
async def otlp_traces(state: ServerState, request: Request, req: Req) -> Any:
    # Spans arrive as traces.json artifacts instead; the client stops streaming them here
    # once it reads this message (it only tries when /version claims 3.4 or later).
    return error_response(errors.not_implemented(OTLP_REFUSAL))
