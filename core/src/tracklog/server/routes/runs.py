"""Run routes: create, get, update, delete/restore, logging, search, history, inputs/outputs."""

from __future__ import annotations

import math
import threading
from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from tracklog import errors, search, validation
from tracklog.entities import (
    LoggedModelInput,
    LoggedModelOutput,
    Metric,
    Param,
    Run,
    RunInfo,
    RunStatus,
    RunTag,
    ViewType,
)
from tracklog.perf import gc_paused
from tracklog.server import codec
from tracklog.server.codec import Req
from tracklog.server.routing import (
    RouteTable,
    ServerState,
    by_experiment,
    by_experiments,
    by_run,
    readable_experiment_ids,
)
from tracklog.stores import QueuedWrites, WriteDone, converted, encoded_run_search_of

table = RouteTable()


def _create_args(req: Req) -> dict[str, Any]:
    tags = [
        validation.validate_tag(t.get("key"), t.get("value"), f"tags[{i}]")
        for i, t in enumerate(req.objects("tags"))
    ]
    return {
        "experiment_id": req.string("experiment_id", required=True),
        "user_id": req.string("user_id") or "",
        "start_time": req.integer("start_time"),
        "tags": tags,
        "run_name": req.string("run_name") or None,
    }


def _created(run: Run) -> dict[str, Any]:
    return {"run": codec.run(run)}


def _leave(now: bool) -> dict[str, bool]:
    """``now`` for a queued write, passed only when True: only a store that declares
    ``writes_now`` is asked, and it alone takes the keyword."""
    return {"now": True} if now else {}


def _write_routes(path: str, resource: Any, args: Any, method: str, encode: Any) -> None:
    """The write at ``path``: the store's ``method(**args(req))``, answered with
    ``encode(result)``, and its queued form (``submit_<method>``)."""

    @table.rpc("POST", path, "update", resource)
    def write(state: ServerState, req: Req) -> dict[str, Any]:
        return encode(getattr(state.store, method)(**args(req)))

    @table.queued(path)
    def submit(state: ServerState, queued: QueuedWrites, req: Req, done: WriteDone,
               now: bool) -> bool:
        return getattr(queued, f"submit_{method}")(
            **args(req), done=converted(done, encode), **_leave(now))


_write_routes("/mlflow/runs/create", by_experiment, _create_args, "create_run", _created)


@table.rpc("GET", "/mlflow/runs/get", "read", by_run, point=True)
def get_run(state: ServerState, req: Req) -> dict[str, Any]:
    return {"run": codec.run(state.store.get_run(req.run_id()))}


def _update_args(req: Req) -> dict[str, Any]:
    try:
        status = req.enum("status", RunStatus)
    except errors.TracklogError:
        status = None  # MLflow ignores a status it cannot parse
    return {
        "run_id": req.run_id(),
        "run_status": status,
        "end_time": req.integer("end_time"),
        "run_name": req.string("run_name") or None,
    }


def _updated(info: RunInfo) -> dict[str, Any]:
    return {"run_info": codec.run_info(info)}


_write_routes("/mlflow/runs/update", by_run, _update_args, "update_run_info", _updated)


@table.rpc("POST", "/mlflow/runs/delete", "delete", by_run)
def delete_run(state: ServerState, req: Req) -> dict[str, Any]:
    state.store.delete_run(req.run_id())
    return {}


@table.rpc("POST", "/mlflow/runs/restore", "delete", by_run)
def restore_run(state: ServerState, req: Req) -> dict[str, Any]:
    state.store.restore_run(req.run_id())
    return {}


def _metric(raw: Mapping[str, Any], path: str = "") -> Metric:
    return validation.validate_metric(
        raw.get("key"),
        raw.get("value"),
        raw.get("timestamp"),
        raw.get("step"),
        path=path,
        model_id=raw.get("model_id"),
        dataset_name=raw.get("dataset_name"),
        dataset_digest=raw.get("dataset_digest"),
    )


# Each write below is a batch: ``*_batch(req)`` validates the request into log_batch's
# arguments, for the handler (a worker thread) and for the queued form (the event loop).

#: Batches larger than this are validated in a worker thread, not on the event loop.
QUEUED_BATCH_ITEMS = 100

Batch = tuple[str, Sequence[Metric], Sequence[Param], Sequence[RunTag]]


def _log_metric_batch(req: Req) -> Batch:
    run_id = req.run_id()
    return run_id, [_metric(req.data if req.query is None else dict(req.query))], [], []


def _log_param_batch(req: Req) -> Batch:
    run_id = req.run_id()
    return run_id, [], [validation.validate_param(req.string("key"), req._raw("value"))], []


def _set_tag_batch(req: Req) -> Batch:
    run_id = req.run_id()
    return run_id, [], [], [validation.validate_tag(req.string("key"), req._raw("value"))]


def _log_batch_batch(req: Req) -> Batch:
    run_id = validation.validate_run_id(req.run_id())
    raw_metrics = req.objects("metrics")
    raw_params = req.objects("params")
    raw_tags = req.objects("tags")
    validation.validate_batch_limits(len(raw_metrics), len(raw_params), len(raw_tags))
    metrics = validation.validate_metrics(raw_metrics)
    params = [
        validation.validate_param(p.get("key"), p.get("value"), f"params[{i}]")
        for i, p in enumerate(raw_params)
    ]
    validation.validate_unique_param_keys(params)
    tags = [
        validation.validate_tag(t.get("key"), t.get("value"), f"tags[{i}]")
        for i, t in enumerate(raw_tags)
    ]
    return run_id, metrics, params, tags


def _items(req: Req) -> int:
    data = req.data or {}
    return sum(len(v) for k in ("metrics", "params", "tags")
               if isinstance(v := data.get(k), list))


def _batch_routes(path: str, batch: Any) -> None:
    """The route at ``path`` and its queued form, both from ``batch(req)``."""

    @table.rpc("POST", path, "update", by_run)
    def write(state: ServerState, req: Req) -> dict[str, Any]:
        run_id, metrics, params, tags = batch(req)
        if metrics or params or tags:
            state.store.log_batch(run_id, metrics=metrics, params=params, tags=tags)
        return {}

    bounded = path.endswith("log-batch")  # the others write one item

    @table.queued(path)
    def submit(state: ServerState, queued: QueuedWrites, req: Req, done: WriteDone,
               now: bool) -> bool:
        if bounded and _items(req) > QUEUED_BATCH_ITEMS:
            return False
        run_id, metrics, params, tags = batch(req)
        if not (metrics or params or tags):
            done({}, None)
            return True
        return queued.submit_log_batch(run_id, metrics, params, tags,
                                       converted(done, lambda _: {}), **_leave(now))


_batch_routes("/mlflow/runs/log-metric", _log_metric_batch)
_batch_routes("/mlflow/runs/log-parameter", _log_param_batch)
_batch_routes("/mlflow/runs/set-tag", _set_tag_batch)


@table.rpc("POST", "/mlflow/runs/delete-tag", "update", by_run)
def delete_tag(state: ServerState, req: Req) -> dict[str, Any]:
    state.store.delete_tag(req.run_id(), req.string("key", required=True))
    return {}


_batch_routes("/mlflow/runs/log-batch", _log_batch_batch)


#: Run searches in progress at once in a process; the others wait their turn, holding no
#: thread. Their work is CPU-bound (on a 2-core machine at 64 connections, unbounded:
#: 156 searches/s, p99 1.0 s, +44 MiB; four at a time: 212/s, p99 0.37 s, +8 MiB), and
#: four still overlap one search's database wait with another's encoding.
SEARCHES_AT_ONCE = 4


@table.rpc("POST", "/mlflow/runs/search", "read", by_experiments, at_once=SEARCHES_AT_ONCE)
def search_runs(state: ServerState, req: Req) -> dict[str, Any] | codec.JSONParts:
    max_results = validation.validate_max_results(
        req.integer("max_results"), default=1000, limit=validation.MAX_RESULTS_RUNS
    )
    experiment_ids = validation.validate_experiment_ids(
        req.strings("experiment_ids"), "SearchRuns"
    )
    run_filter = search.parse_run_filter(req.string("filter"))
    order_by = search.parse_run_order_by(req.strings("order_by"))
    view_type = req.enum("run_view_type", ViewType, ViewType.ACTIVE_ONLY)
    experiment_ids = readable_experiment_ids(state, req, experiment_ids)
    if not experiment_ids:
        return {}
    args: dict[str, Any] = {
        "filter": run_filter,
        "run_view_type": view_type,
        "max_results": max_results,
        "order_by": order_by,
        "page_token": req.string("page_token") or None,
    }
    encoded = encoded_run_search_of(state.store)
    if encoded is not None:
        runs = encoded.search_runs_encoded(experiment_ids, **args)
        if runs is not None:
            return codec.paged_encoded("runs", runs, runs.token)
    page = state.store.search_runs(experiment_ids, **args)
    return codec.paged("runs", [codec.run(r) for r in page], page.token)


@table.rpc("GET", "/mlflow/metrics/get-history", "read", by_run)
def get_metric_history(state: ServerState, req: Req) -> dict[str, Any] | codec.JSONParts:
    run_id = req.run_id()
    key = req.string("metric_key", required=True)
    max_results = req.integer("max_results")
    if max_results is not None and max_results <= 0:
        raise validation.invalid_value("max_results", max_results, "It must be at least 1.")
    page_token = req.string("page_token") or None
    if max_results is not None and max_results <= _SMALL_HISTORY_PAGE:
        return _history(state, run_id, key, max_results, page_token)
    gate = _HISTORY_PAGES if max_results is not None and max_results <= MLFLOW_HISTORY_PAGE \
        else _LONG_HISTORIES
    with gate:
        return _history(state, run_id, key, max_results, page_token)


#: The page the MLflow client asks for; a larger or unpaged read may hold any number of
#: points in memory.
MLFLOW_HISTORY_PAGE = 25_000
#: Such reads in progress at once in this process (the rest wait): each holds about 200
#: bytes per point until encoded, and eight 100,000-point reads at once took the server
#: from 85 to 270 MiB. Their work holds the GIL: two at a time gave a fifth more
#: throughput at 8 clients than one, but took a worker past 200 MiB (205 against 145).
_LONG_HISTORIES = threading.BoundedSemaphore(1)
#: Pages up to this size are read without waiting.
_SMALL_HISTORY_PAGE = 1000
#: Larger pages (the client asks for 25,000 points) in progress at once: CPU-bound like
#: long reads, so more at once buys no throughput, and at 64 connections unbounded pages
#: took the server to 254 MiB (four at a time: 122, at the same 27 pages/s).
_HISTORY_PAGES = threading.BoundedSemaphore(4)


def _history(state: ServerState, run_id: str, key: str, max_results: int | None,
             page_token: str | None) -> dict[str, Any] | codec.JSONParts:
    page = state.store.get_metric_history(
        run_id, key, max_results=max_results, page_token=page_token
    )
    token = page.token
    if len(page) <= _HISTORY_CHUNK:
        return codec.paged("metrics", _history_points(page), token)
    # A long history is encoded a chunk at a time, each chunk's points freed once
    # encoded: the whole history as dicts would cost five times its JSON (100,000 points:
    # a peak of 42 MiB per request instead of 22).
    parts = [b'{"metrics":[']
    with gc_paused():
        while page:
            chunk = page[:_HISTORY_CHUNK]
            del page[:_HISTORY_CHUNK]
            parts += (orjson.dumps(_history_points(chunk))[1:-1], b",")
    parts[-1] = b"]"
    if token:
        parts.append(b',"next_page_token":' + orjson.dumps(token))
    parts.append(b"}")
    return codec.JSONParts(parts)


_HISTORY_CHUNK = 4096


def _history_points(page: list[Metric]) -> list[dict[str, Any]]:
    finite, double = math.isfinite, codec.double
    # Inline encoding: this route returns up to 25,000 points per page.
    with gc_paused():
        return [
            {"key": m.key, "value": m.value if finite(m.value) else double(m.value),
             "timestamp": m.timestamp, "step": m.step}
            for m in page
        ]


#: As in MLflow: at most this many runs per call, and points per run.
MAX_RUNS_BULK_INTERVAL = 100
MAX_POINTS_BULK_INTERVAL = 2500


def by_runs(req: Req) -> dict[str, Any]:
    return {"run_ids": req.strings("run_ids")}


@table.rpc("GET", "/mlflow/metrics/get-history-bulk-interval", "read", by_runs)
def get_metric_history_bulk_interval(state: ServerState, req: Req) -> dict[str, Any]:
    """Each run's history of one metric, thinned for a chart: at most ``max_results``
    points per run (min and max of each bucket, first and last kept), ordered by step."""
    run_ids = req.strings("run_ids")
    if not run_ids:
        raise validation.missing("run_ids")
    if len(run_ids) > MAX_RUNS_BULK_INTERVAL:
        raise validation.invalid_value(
            "run_ids", len(run_ids),
            f"GetMetricHistoryBulkInterval request must specify at most "
            f"{MAX_RUNS_BULK_INTERVAL} run_ids. Received {len(run_ids)} run_ids.",
        )
    key = req.string("metric_key", required=True)
    max_results = req.integer("max_results", default=MAX_POINTS_BULK_INTERVAL)
    if not 1 <= max_results <= MAX_POINTS_BULK_INTERVAL:
        raise validation.invalid_value(
            "max_results", max_results,
            f"max_results must be between 1 and {MAX_POINTS_BULK_INTERVAL}.",
        )
    start, end = req.integer("start_step"), req.integer("end_step")
    if (start is None) != (end is None):
        raise validation.invalid_value(
            "start_step" if start is None else "end_step", start if end is None else end,
            "If either start step or end step are specified, both must be specified.",
        )
    if start is not None and end is not None and start > end:
        raise validation.invalid_value(
            "end_step", end,
            f"end_step must be greater than start_step. Found start_step={start} and "
            f"end_step={end}.",
        )
    finite, double = math.isfinite, codec.double
    out: list[dict[str, Any]] = []
    for run_id in dict.fromkeys(run_ids):
        for m in state.store.sample_metric_history(run_id, key, max_results, start, end):
            out.append({"key": m.key, "value": m.value if finite(m.value) else double(m.value),
                        "timestamp": m.timestamp, "step": m.step, "run_id": run_id})
    return {"metrics": out} if out else {}


@table.rpc("POST", "/mlflow/runs/log-inputs", "update", by_run)
def log_inputs(state: ServerState, req: Req) -> dict[str, Any]:
    run_id = req.run_id()
    datasets = []
    raw_datasets = req.objects("datasets")
    if len(raw_datasets) > validation.MAX_DATASETS_PER_BATCH:
        raise validation.invalid_value(
            "datasets", len(raw_datasets),
            f"At most {validation.MAX_DATASETS_PER_BATCH} datasets per request.",
        )
    for i, raw in enumerate(raw_datasets):
        ds = raw.get("dataset")
        if not isinstance(ds, dict):
            raise validation.missing(f"datasets[{i}].dataset")
        tags = raw.get("tags") or []
        if not isinstance(tags, list) or not all(isinstance(t, dict) for t in tags):
            raise validation.invalid_value(f"datasets[{i}].tags", tags, "Expected a list.")
        datasets.append(
            validation.validate_dataset_input(
                ds.get("name"), ds.get("digest"), ds.get("source_type"), ds.get("source"),
                ds.get("schema"), ds.get("profile"),
                [(t.get("key"), t.get("value")) for t in tags],
                path=f"datasets[{i}]",
            )
        )
    models = []
    for i, raw in enumerate(req.objects("models")):
        model_id = raw.get("model_id")
        if not isinstance(model_id, str) or not model_id:
            raise validation.missing(f"models[{i}].model_id")
        models.append(LoggedModelInput(model_id))
    state.store.log_inputs(run_id, datasets=datasets, models=models)
    return {}


@table.rpc("POST", "/mlflow/runs/outputs", "update", by_run)
def log_outputs(state: ServerState, req: Req) -> dict[str, Any]:
    run_id = req.run_id()
    models = []
    for i, raw in enumerate(req.objects("models")):
        model_id = raw.get("model_id")
        if not isinstance(model_id, str) or not model_id:
            raise validation.missing(f"models[{i}].model_id")
        step = raw.get("step")
        models.append(
            LoggedModelOutput(model_id, 0 if step is None
                              else validation.to_int(step, f"models[{i}].step"))
        )
    state.store.log_outputs(run_id, models)
    return {}
