"""Model registry routes: registered models, versions, stages, aliases, tags.

They go through :func:`tracklog.stores.registry_of`, which answers NOT_IMPLEMENTED (501)
for a store without the registry capability.
"""

from __future__ import annotations

import re
from typing import Any

from tracklog import errors, search, validation
from tracklog.server import codec
from tracklog.server.codec import Req
from tracklog.server.routing import (
    RouteTable,
    ServerState,
    by_registered_model,
    readable_filter,
    resource_created,
    resource_renamed,
)
from tracklog.stores import ModelRegistryStore, registry_of

table = RouteTable()

_RM = "/mlflow/registered-models"
_MV = "/mlflow/model-versions"
_STAGES = {"none": "None", "staging": "Staging", "production": "Production",
           "archived": "Archived"}


def _registry(state: ServerState) -> ModelRegistryStore:
    return registry_of(state.store)


def _name(req: Req, field: str = "name") -> str:
    return validation.validate_registered_model_name(req.string(field), field)


def _version(req: Req) -> str:
    return validation.validate_model_version(req._raw("version"))


def _tags(req: Req) -> list[tuple[str, str]]:
    return [
        validation.validate_registry_tag(t.get("key"), t.get("value"), f"tags[{i}]")
        for i, t in enumerate(req.objects("tags"))
    ]


def _stage(value: str | None, field: str = "stage") -> str:
    if value is None or value == "":
        raise validation.missing(field)
    canonical = _STAGES.get(value.lower())
    if canonical is None:
        raise validation.invalid_value(
            field, value, f"Valid stages are {', '.join(_STAGES.values())}."
        )
    return canonical


@table.rpc("POST", _RM + "/create", "update")
def create_registered_model(state: ServerState, req: Req) -> dict[str, Any]:
    model = _registry(state).create_registered_model(
        _name(req), _tags(req), req.string("description") or None
    )
    resource_created(state, req, {"registered_model": model.name})
    return {"registered_model": codec.registered_model(model)}


@table.rpc("GET", _RM + "/get", "read", by_registered_model)
def get_registered_model(state: ServerState, req: Req) -> dict[str, Any]:
    return {"registered_model": codec.registered_model(_registry(state).get_registered_model(
        _name(req)))}


@table.rpc("POST", _RM + "/rename", "manage", by_registered_model)
def rename_registered_model(state: ServerState, req: Req) -> dict[str, Any]:
    old = _name(req)
    model = _registry(state).rename_registered_model(old, _name(req, "new_name"))
    resource_renamed(state, req, {"registered_model": old}, {"registered_model": model.name})
    return {"registered_model": codec.registered_model(model)}


@table.rpc("PATCH", _RM + "/update", "update", by_registered_model)
def update_registered_model(state: ServerState, req: Req) -> dict[str, Any]:
    model = _registry(state).update_registered_model(_name(req), req.string("description"))
    return {"registered_model": codec.registered_model(model)}


@table.rpc("DELETE", _RM + "/delete", "delete", by_registered_model)
def delete_registered_model(state: ServerState, req: Req) -> dict[str, Any]:
    _registry(state).delete_registered_model(_name(req))
    return {}


@table.rpc("GET", _RM + "/search", "read")
def search_registered_models(state: ServerState, req: Req) -> dict[str, Any]:
    max_results = validation.validate_max_results(req.integer("max_results"), default=100,
                                                  limit=1000)
    page = _registry(state).search_registered_models(
        filter=search.parse_registered_model_filter(req.string("filter"))
        + readable_filter(state, req, "registered_model", "name"),
        max_results=max_results,
        order_by=search.parse_registered_model_order_by(req.strings("order_by")),
        page_token=req.string("page_token") or None,
    )
    return codec.paged("registered_models", [codec.registered_model(m) for m in page],
                       page.token)


def _latest_versions(state: ServerState, req: Req) -> dict[str, Any]:
    stages = [_stage(s, f"stages[{i}]") for i, s in enumerate(req.strings("stages"))]
    versions = _registry(state).get_latest_versions(_name(req), stages)
    return {"model_versions": [codec.model_version(v) for v in versions]} if versions else {}


table.rpc("POST", _RM + "/get-latest-versions", "read", by_registered_model)(_latest_versions)
table.rpc("GET", _RM + "/get-latest-versions", "read", by_registered_model)(_latest_versions)


@table.rpc("POST", _RM + "/set-tag", "update", by_registered_model)
def set_registered_model_tag(state: ServerState, req: Req) -> dict[str, Any]:
    key, value = validation.validate_registry_tag(req.string("key"), req._raw("value"))
    _registry(state).set_registered_model_tag(_name(req), key, value)
    return {}


@table.rpc("DELETE", _RM + "/delete-tag", "update", by_registered_model)
def delete_registered_model_tag(state: ServerState, req: Req) -> dict[str, Any]:
    _registry(state).delete_registered_model_tag(_name(req), req.string("key", required=True))
    return {}


@table.rpc("POST", _RM + "/alias", "update", by_registered_model)
def set_alias(state: ServerState, req: Req) -> dict[str, Any]:
    _registry(state).set_registered_model_alias(
        _name(req), validation.validate_alias(req.string("alias")), _version(req)
    )
    return {}


@table.rpc("DELETE", _RM + "/alias", "update", by_registered_model)
def delete_alias(state: ServerState, req: Req) -> dict[str, Any]:
    _registry(state).delete_registered_model_alias(_name(req), req.string("alias", required=True))
    return {}


@table.rpc("GET", _RM + "/alias", "read", by_registered_model)
def get_by_alias(state: ServerState, req: Req) -> dict[str, Any]:
    version = _registry(state).get_model_version_by_alias(
        _name(req), req.string("alias", required=True)
    )
    return {"model_version": codec.model_version(version)}


_LOGGED_MODEL_SOURCE = re.compile(r"models:/(m-[0-9a-f]{32})(?:/|$)")


def _source_run_id(state: ServerState, source: str, model_id: str | None) -> str | None:
    """The run that logged the version's model, as MLflow fills it in: the logged model
    ``model_id`` names, else the one a ``models:/<model_id>`` source names."""
    if not model_id:
        found = _LOGGED_MODEL_SOURCE.match(source)
        model_id = found.group(1) if found else None
    if not model_id:
        return None
    try:
        return state.store.get_logged_model(model_id, allow_deleted=True).source_run_id or None
    except errors.TracklogError as exc:
        if exc.error_code in (errors.ErrorCode.RESOURCE_DOES_NOT_EXIST,
                              errors.ErrorCode.INVALID_PARAMETER_VALUE):
            return None
        raise


@table.rpc("POST", _MV + "/create", "update", by_registered_model)
def create_model_version(state: ServerState, req: Req) -> dict[str, Any]:
    source = req.string("source", required=True)
    if "\x00" in source or ".." in source.replace("\\", "/").split("/"):
        raise validation.invalid_value("source", source, "Invalid model version source.")
    model_id = req.string("model_id") or None
    version = _registry(state).create_model_version(
        _name(req),
        source,
        run_id=req.string("run_id") or _source_run_id(state, source, model_id),
        tags=_tags(req),
        run_link=req.string("run_link") or None,
        description=req.string("description") or None,
        model_id=model_id,
    )
    return {"model_version": codec.model_version(version)}


@table.rpc("GET", _MV + "/get", "read", by_registered_model)
def get_model_version(state: ServerState, req: Req) -> dict[str, Any]:
    version = _registry(state).get_model_version(_name(req), _version(req))
    return {"model_version": codec.model_version(version)}


@table.rpc("PATCH", _MV + "/update", "update", by_registered_model)
def update_model_version(state: ServerState, req: Req) -> dict[str, Any]:
    version = _registry(state).update_model_version(
        _name(req), _version(req), req.string("description")
    )
    return {"model_version": codec.model_version(version)}


@table.rpc("POST", _MV + "/transition-stage", "manage", by_registered_model)
def transition_stage(state: ServerState, req: Req) -> dict[str, Any]:
    version = _registry(state).transition_model_version_stage(
        _name(req), _version(req), _stage(req.string("stage")),
        req.boolean("archive_existing_versions"),
    )
    return {"model_version": codec.model_version(version)}


@table.rpc("DELETE", _MV + "/delete", "delete", by_registered_model)
def delete_model_version(state: ServerState, req: Req) -> dict[str, Any]:
    _registry(state).delete_model_version(_name(req), _version(req))
    return {}


@table.rpc("GET", _MV + "/get-download-uri", "read", by_registered_model)
def get_download_uri(state: ServerState, req: Req) -> dict[str, Any]:
    uri = _registry(state).get_model_version_download_uri(_name(req), _version(req))
    return {"artifact_uri": uri}


@table.rpc("GET", _MV + "/search", "read")
def search_model_versions(state: ServerState, req: Req) -> dict[str, Any]:
    max_results = validation.validate_max_results(req.integer("max_results"), default=10000,
                                                  limit=200000)
    page = _registry(state).search_model_versions(
        filter=search.parse_model_version_filter(req.string("filter"))
        + readable_filter(state, req, "registered_model", "name"),
        max_results=max_results,
        order_by=search.parse_model_version_order_by(req.strings("order_by")),
        page_token=req.string("page_token") or None,
    )
    return codec.paged("model_versions", [codec.model_version(v) for v in page], page.token)


@table.rpc("POST", _MV + "/set-tag", "update", by_registered_model)
def set_model_version_tag(state: ServerState, req: Req) -> dict[str, Any]:
    key, value = validation.validate_registry_tag(req.string("key"), req._raw("value"))
    _registry(state).set_model_version_tag(_name(req), _version(req), key, value)
    return {}


@table.rpc("DELETE", _MV + "/delete-tag", "update", by_registered_model)
def delete_model_version_tag(state: ServerState, req: Req) -> dict[str, Any]:
    _registry(state).delete_model_version_tag(
        _name(req), _version(req), req.string("key", required=True)
    )
    return {}
