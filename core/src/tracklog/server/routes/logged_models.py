"""Logged-model routes (MLflow 3 ``log_model``): create, get, finalize, tags, params, search."""

from __future__ import annotations

from typing import Any

from tracklog import search, validation
from tracklog.entities import LoggedModelParameter, LoggedModelStatus, LoggedModelTag
from tracklog.server import codec
from tracklog.server.codec import Req
from tracklog.server.routing import (
    RouteTable,
    ServerState,
    by_experiment,
    by_experiments,
    by_logged_model,
    readable_experiment_ids,
)

table = RouteTable()

_BASE = "/mlflow/logged-models"


def _model_id(req: Req) -> str:
    return req.path_params.get("model_id") or req.string("model_id", required=True)


def _pairs(req: Req, name: str) -> list[tuple[str, str]]:
    out = []
    for i, raw in enumerate(req.objects(name)):
        key = validation.validate_key(raw.get("key"), f"{name}[{i}].key")
        value = raw.get("value")
        if value is not None and not isinstance(value, str):
            raise validation.invalid_value(f"{name}[{i}].value", value, "Must be a string.")
        out.append((key, value or ""))
    return out


@table.rpc("POST", _BASE, "update", by_experiment)
def create_logged_model(state: ServerState, req: Req) -> dict[str, Any]:
    model = state.store.create_logged_model(
        experiment_id=req.string("experiment_id", required=True),
        name=validation.validate_logged_model_name(req.string("name") or None),
        source_run_id=req.string("source_run_id") or None,
        tags=[LoggedModelTag(k, v) for k, v in _pairs(req, "tags")],
        params=[LoggedModelParameter(k, v) for k, v in _pairs(req, "params")],
        model_type=req.string("model_type") or None,
    )
    return {"model": codec.logged_model(model)}


@table.rpc("POST", _BASE + "/search", "read", by_experiments)
def search_logged_models(state: ServerState, req: Req) -> dict[str, Any]:
    experiment_ids = req.strings("experiment_ids")
    if not experiment_ids:
        raise validation.missing("experiment_ids")
    validation.validate_experiment_ids(experiment_ids, "SearchLoggedModels")
    experiment_ids = readable_experiment_ids(state, req, experiment_ids)
    if not experiment_ids:
        return {}
    max_results = req.integer("max_results")
    if max_results is None:
        max_results = 50
    elif max_results == 0:
        max_results = 100
    elif max_results < 0:
        raise validation.invalid_value("max_results", max_results, "It must be positive.")
    datasets = []
    for i, raw in enumerate(req.objects("datasets")):
        name = raw.get("dataset_name")
        if not isinstance(name, str) or not name:
            raise validation.missing(f"datasets[{i}].dataset_name")
        entry = {"dataset_name": name}
        if raw.get("dataset_digest"):
            entry["dataset_digest"] = str(raw["dataset_digest"])
        datasets.append(entry)
    page = state.store.search_logged_models(
        experiment_ids,
        filter=search.parse_logged_model_filter(req.string("filter")),
        datasets=datasets,
        max_results=max_results,
        order_by=search.parse_logged_model_order_by(req.objects("order_by")),
        page_token=req.string("page_token") or None,
    )
    return codec.paged("models", [codec.logged_model(m) for m in page], page.token)


@table.rpc("GET", _BASE + "/{model_id}", "read", by_logged_model)
def get_logged_model(state: ServerState, req: Req) -> dict[str, Any]:
    model = state.store.get_logged_model(_model_id(req), allow_deleted=req.boolean("allow_deleted"))
    return {"model": codec.logged_model(model)}


@table.rpc("PATCH", _BASE + "/{model_id}", "update", by_logged_model)
def finalize_logged_model(state: ServerState, req: Req) -> dict[str, Any]:
    status = req.enum("status", LoggedModelStatus)
    if status is None:
        raise validation.missing("status")
    model = state.store.finalize_logged_model(req.string("model_id") or _model_id(req), status)
    return {"model": codec.logged_model(model)}


@table.rpc("DELETE", _BASE + "/{model_id}", "delete", by_logged_model)
def delete_logged_model(state: ServerState, req: Req) -> dict[str, Any]:
    state.store.delete_logged_model(_model_id(req))
    return {}


@table.rpc("PATCH", _BASE + "/{model_id}/tags", "update", by_logged_model)
def set_logged_model_tags(state: ServerState, req: Req) -> dict[str, Any]:
    tags = [LoggedModelTag(k, v) for k, v in _pairs(req, "tags")]
    state.store.set_logged_model_tags(_model_id(req), tags)
    return {}


@table.rpc("DELETE", _BASE + "/{model_id}/tags/{tag_key:path}", "update", by_logged_model)
def delete_logged_model_tag(state: ServerState, req: Req) -> dict[str, Any]:
    state.store.delete_logged_model_tag(_model_id(req), req.path_params["tag_key"])
    return {}


@table.rpc("POST", _BASE + "/{model_id}/params", "update", by_logged_model)
def log_logged_model_params(state: ServerState, req: Req) -> dict[str, Any]:
    params = [LoggedModelParameter(k, v) for k, v in _pairs(req, "params")]
    state.store.log_logged_model_params(_model_id(req), params)
    return {}
