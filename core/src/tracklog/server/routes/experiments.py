"""Experiment routes: create, get, search, rename, delete, restore, tags."""

from __future__ import annotations

from typing import Any

from tracklog import errors, search, validation
from tracklog.entities import ViewType
from tracklog.server import codec
from tracklog.server.codec import Req
from tracklog.server.routing import (
    RouteTable,
    ServerState,
    by_experiment,
    readable_filter,
    resource_created,
)

table = RouteTable()


@table.rpc("POST", "/mlflow/experiments/create", "update")
def create_experiment(state: ServerState, req: Req) -> dict[str, Any]:
    name = validation.validate_experiment_name(req.string("name"))
    location = validation.validate_artifact_location(req.string("artifact_location"))
    tags = [
        validation.validate_experiment_tag(t.get("key"), t.get("value"), f"tags[{i}]")
        for i, t in enumerate(req.objects("tags"))
    ]
    experiment_id = state.store.create_experiment(name, location, tags)
    resource_created(state, req, {"experiment_id": experiment_id})
    return {"experiment_id": experiment_id}


@table.rpc("GET", "/mlflow/experiments/get", "read", by_experiment, point=True)
def get_experiment(state: ServerState, req: Req) -> dict[str, Any]:
    experiment = state.store.get_experiment(req.string("experiment_id", required=True))
    return {"experiment": codec.experiment(experiment)}


@table.rpc("GET", "/mlflow/experiments/get-by-name", "read",
           lambda req: {"experiment_name": req.string("experiment_name", required=True)},
           point=True)
def get_experiment_by_name(state: ServerState, req: Req) -> dict[str, Any]:
    name = req.string("experiment_name", required=True)
    experiment = state.store.get_experiment_by_name(name)
    if experiment is None:
        raise errors.not_found(f"Could not find experiment with name '{name}'")
    return {"experiment": codec.experiment(experiment)}


def _search(state: ServerState, req: Req) -> dict[str, Any]:
    max_results = req.integer("max_results")
    if max_results is None:
        raise validation.missing("max_results")
    validation.validate_max_results(
        max_results, default=1000, limit=validation.MAX_RESULTS_EXPERIMENTS
    )
    page = state.store.search_experiments(
        view_type=req.enum("view_type", ViewType, ViewType.ACTIVE_ONLY),
        max_results=max_results,
        filter=search.parse_experiment_filter(req.string("filter"))
        + readable_filter(state, req, "experiment", "experiment_id"),
        order_by=search.parse_experiment_order_by(req.strings("order_by")),
        page_token=req.string("page_token") or None,
    )
    return codec.paged("experiments", [codec.experiment(e) for e in page], page.token)


table.rpc("POST", "/mlflow/experiments/search", "read")(_search)
table.rpc("GET", "/mlflow/experiments/search", "read")(_search)


@table.rpc("POST", "/mlflow/experiments/update", "update", by_experiment)
def update_experiment(state: ServerState, req: Req) -> dict[str, Any]:
    experiment_id = req.string("experiment_id", required=True)
    new_name = req.string("new_name")
    if new_name is not None:
        state.store.rename_experiment(
            experiment_id, validation.validate_experiment_name(new_name, "new_name")
        )
    return {}


@table.rpc("POST", "/mlflow/experiments/delete", "delete", by_experiment)
def delete_experiment(state: ServerState, req: Req) -> dict[str, Any]:
    state.store.delete_experiment(req.string("experiment_id", required=True))
    return {}


@table.rpc("POST", "/mlflow/experiments/restore", "delete", by_experiment)
def restore_experiment(state: ServerState, req: Req) -> dict[str, Any]:
    state.store.restore_experiment(req.string("experiment_id", required=True))
    return {}


@table.rpc("POST", "/mlflow/experiments/set-experiment-tag", "update", by_experiment)
def set_experiment_tag(state: ServerState, req: Req) -> dict[str, Any]:
    tag = validation.validate_experiment_tag(req.string("key"), req.string("value") or "")
    state.store.set_experiment_tag(req.string("experiment_id", required=True), tag)
    return {}


@table.rpc("POST", "/mlflow/experiments/delete-experiment-tag", "update", by_experiment)
def delete_experiment_tag(state: ServerState, req: Req) -> dict[str, Any]:
    experiment_id = req.string("experiment_id", required=True)
    state.store.delete_experiment_tag(experiment_id, req.string("key", required=True))
    return {}
