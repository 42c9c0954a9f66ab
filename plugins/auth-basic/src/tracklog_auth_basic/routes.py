"""REST routes: MLflow's basic-auth API (users, experiment and registered-model
permissions, so ``mlflow.server.get_app_client("basic-auth", uri)`` works) and tracklog's
own for groups and tokens.

Routes that name their resource in the body are declared ``auth_self`` (anyone signed in)
and check the caller's MANAGE permission on that resource themselves: the server's rule
sees the query string only."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

import anyio.to_thread

from tracklog import errors
from tracklog.server import rule
from tracklog_auth_basic.permissions import EXPERIMENT, REGISTERED_MODEL, RESOURCE_TYPES, Permission
from tracklog_auth_basic.runtime import Caller, runtime_of
from tracklog_auth_basic.store import (
    GROUP,
    USER,
    check_password,
    check_username,
    now_ms,
)

Handler = Callable[[Caller, dict[str, Any]], Any]
MAX_BODY = 64 * 1024


async def _params(request: Any) -> dict[str, Any]:
    out: dict[str, Any] = dict(request.query_params)
    body = await request.body()
    if len(body) > MAX_BODY:
        raise errors.invalid(f"Request body exceeds {MAX_BODY} bytes")
    if body.strip():
        try:
            data = json.loads(body)
        except ValueError:
            raise errors.TracklogError("Malformed JSON body",
                                       errors.ErrorCode.MALFORMED_REQUEST) from None
        if not isinstance(data, dict):
            raise errors.TracklogError("The JSON body must be an object",
                                       errors.ErrorCode.MALFORMED_REQUEST)
        out.update(data)
    return out


def _endpoint(handler: Handler) -> Callable[[Any], Awaitable[Any]]:
    async def endpoint(request: Any) -> Any:
        from starlette.responses import JSONResponse

        params = await _params(request)
        caller = getattr(request.state, "identity", None)
        if not isinstance(caller, Caller) or caller.anonymous:
            # Reached only when the server's authentication did not run for this route.
            raise errors.TracklogError("Authentication required.",
                                       errors.ErrorCode.UNAUTHENTICATED)
        result = await anyio.to_thread.run_sync(handler, caller, params)
        return JSONResponse(result or {})

    return endpoint


def _str(params: dict[str, Any], name: str) -> str:
    value = params.get(name)
    if value is None or value == "":
        raise errors.invalid(f"Missing value for required parameter '{name}'.")
    if not isinstance(value, str | int) or isinstance(value, bool):
        raise errors.invalid(f"Invalid value for parameter '{name}': expected a string.")
    return str(value)


def _bool(params: dict[str, Any], name: str) -> bool:
    value = params.get(name)
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise errors.invalid(f"Invalid value for parameter '{name}': expected true or false.")


def _permission(params: dict[str, Any], name: str = "permission") -> Permission:
    raw = _str(params, name)
    try:
        return Permission.parse(raw)
    except ValueError:
        raise errors.invalid(f"Invalid value for parameter '{name}': one of "
                             f"{Permission.names()}.") from None


def _resource_type(params: dict[str, Any]) -> str:
    kind = _str(params, "resource_type")
    if kind not in RESOURCE_TYPES:
        raise errors.invalid("Invalid value for parameter 'resource_type': "
                             f"one of {', '.join(RESOURCE_TYPES)}.")
    return kind


def _must_manage(caller: Caller, resource_type: str, resource_id: str) -> None:
    key = "experiment_id" if resource_type == EXPERIMENT else "registered_model"
    if not caller.runtime.allowed(caller, "manage", {key: resource_id}):
        raise errors.TracklogError("Permission denied: MANAGE is needed to change who may "
                                   "use this resource.", errors.ErrorCode.PERMISSION_DENIED)


def _must_admin(caller: Caller) -> None:
    if not caller.user.is_admin:
        raise errors.TracklogError("Permission denied: administrators only.",
                                   errors.ErrorCode.PERMISSION_DENIED)


def _check_exists(caller: Caller, resource_type: str, resource_id: str) -> None:
    store = caller.runtime.tracking
    if store is None:
        return
    if resource_type == EXPERIMENT:
        store.get_experiment(resource_id)
    else:
        from tracklog.stores import registry_of

        registry = registry_of(store)
        if registry is not None:
            registry.get_registered_model(resource_id)


# --- users ---------------------------------------------------------------------------


def create_user(caller: Caller, p: dict[str, Any]) -> dict[str, Any]:
    rt = caller.runtime
    name = check_username(p.get("username"))
    password = check_password(p.get("password"), rt.settings.min_password_length)
    return {"user": rt.store.create_user(name, password).to_json()}


def get_user(caller: Caller, p: dict[str, Any]) -> dict[str, Any]:
    name = _str(p, "username")
    if name != caller.username:
        _must_admin(caller)
    return {"user": caller.runtime.store.get_user(name).to_json()}


def current_user(caller: Caller, p: dict[str, Any]) -> dict[str, Any]:
    return {"user": caller.user.to_json()}


def update_password(caller: Caller, p: dict[str, Any]) -> dict[str, Any]:
    rt = caller.runtime
    name = _str(p, "username")
    password = check_password(p.get("password"), rt.settings.min_password_length)
    if not caller.user.is_admin:
        if name != caller.username:
            _must_admin(caller)
        current = p.get("current_password")
        if not isinstance(current, str) or rt.store.authenticate(name, current) is None:
            raise errors.TracklogError("Permission denied: give your current password "
                                       "as 'current_password'.",
                                       errors.ErrorCode.PERMISSION_DENIED)
    rt.store.update_password(name, password)
    return {}


def update_admin(caller: Caller, p: dict[str, Any]) -> dict[str, Any]:
    caller.runtime.store.update_admin(_str(p, "username"), _bool(p, "is_admin"))
    return {}


def delete_user(caller: Caller, p: dict[str, Any]) -> dict[str, Any]:
    caller.runtime.store.delete_user(_str(p, "username"))
    return {}


# --- per-user permissions (MLflow's shapes) ------------------------------------------


def _user_permission(kind: str, id_field: str, out_field: str, verb: str) -> Handler:
    def handler(caller: Caller, p: dict[str, Any]) -> dict[str, Any]:
        rid, name = _str(p, id_field), _str(p, "username")
        _must_manage(caller, kind, rid)
        store = caller.runtime.store
        user = store.get_user(name)
        if verb in ("create", "update"):
            permission = _permission(p)
            if verb == "create":
                _check_exists(caller, kind, rid)
                if not store.set_permission(USER, user.id, kind, rid, permission,
                                            replace=False):
                    raise errors.TracklogError(
                        f"Permission for user '{name}' on {id_field} '{rid}' already exists.",
                        errors.ErrorCode.RESOURCE_ALREADY_EXISTS)
            elif store.get_permission(USER, user.id, kind, rid) is None:
                raise errors.not_found(f"No permission for user '{name}' on {id_field} '{rid}'.")
            else:
                store.set_permission(USER, user.id, kind, rid, permission)
            return {out_field: {id_field: rid, "user_id": user.id, "permission": permission.name}}
        if verb == "get":
            found = store.get_permission(USER, user.id, kind, rid)
            if found is None:
                raise errors.not_found(f"No permission for user '{name}' on {id_field} '{rid}'.")
            return {out_field: {id_field: rid, "user_id": user.id, "permission": found.name}}
        if not store.delete_permission(USER, user.id, kind, rid):
            raise errors.not_found(f"No permission for user '{name}' on {id_field} '{rid}'.")
        return {}

    return handler


def grant(caller: Caller, p: dict[str, Any]) -> dict[str, Any]:
    kind, rid = _resource_type(p), _str(p, "resource_id")
    _must_manage(caller, kind, rid)
    user = caller.runtime.store.get_user(_str(p, "username"))
    permission = _permission(p)
    _check_exists(caller, kind, rid)
    caller.runtime.store.set_permission(USER, user.id, kind, rid, permission)
    return {}


def revoke(caller: Caller, p: dict[str, Any]) -> dict[str, Any]:
    kind, rid = _resource_type(p), _str(p, "resource_id")
    _must_manage(caller, kind, rid)
    user = caller.runtime.store.get_user(_str(p, "username"))
    caller.runtime.store.delete_permission(USER, user.id, kind, rid)
    return {}


def check(caller: Caller, p: dict[str, Any]) -> dict[str, Any]:
    kind, rid, name = _resource_type(p), _str(p, "resource_id"), _str(p, "username")
    if name != caller.username:
        _must_manage(caller, kind, rid)
    rt = caller.runtime
    user = rt.store.get_user(name)
    permission = Permission.MANAGE if user.is_admin else \
        rt.permissions(user, kind, {rid})[rid]
    return {"allowed": permission >= Permission.READ, "permission": permission.name}


# --- groups ---------------------------------------------------------------------------


def create_group(caller: Caller, p: dict[str, Any]) -> dict[str, Any]:
    name = check_username(p.get("name"), "name")
    return {"group": {"id": caller.runtime.store.create_group(name), "name": name}}


def delete_group(caller: Caller, p: dict[str, Any]) -> dict[str, Any]:
    caller.runtime.store.delete_group(_str(p, "name"))
    return {}


def list_groups(caller: Caller, p: dict[str, Any]) -> dict[str, Any]:
    return {"groups": caller.runtime.store.list_groups()}


def add_member(caller: Caller, p: dict[str, Any]) -> dict[str, Any]:
    caller.runtime.store.add_member(_str(p, "group"), _str(p, "username"))
    return {}


def remove_member(caller: Caller, p: dict[str, Any]) -> dict[str, Any]:
    caller.runtime.store.remove_member(_str(p, "group"), _str(p, "username"))
    return {}


def set_group_permission(caller: Caller, p: dict[str, Any]) -> dict[str, Any]:
    kind, rid = _resource_type(p), _str(p, "resource_id")
    _must_manage(caller, kind, rid)
    store = caller.runtime.store
    gid = store.group_id(_str(p, "group"))
    _check_exists(caller, kind, rid)
    store.set_permission(GROUP, gid, kind, rid, _permission(p))
    return {}


def delete_group_permission(caller: Caller, p: dict[str, Any]) -> dict[str, Any]:
    kind, rid = _resource_type(p), _str(p, "resource_id")
    _must_manage(caller, kind, rid)
    store = caller.runtime.store
    store.delete_permission(GROUP, store.group_id(_str(p, "group")), kind, rid)
    return {}


# --- tokens (always the caller's own) -------------------------------------------------


def create_token(caller: Caller, p: dict[str, Any]) -> dict[str, Any]:
    name = p.get("name") or "token"
    if not isinstance(name, str) or len(name) > 255:
        raise errors.invalid("Invalid value for parameter 'name': at most 255 characters.")
    expires_at = None
    days = p.get("expires_in_days")
    if days is not None:
        if isinstance(days, bool) or not isinstance(days, int | float | str):
            raise errors.invalid("Invalid value for parameter 'expires_in_days'.")
        try:
            value = float(days)
        except ValueError:
            raise errors.invalid("Invalid value for parameter 'expires_in_days'.") from None
        if not 0 < value <= 3650:
            raise errors.invalid("Invalid value for parameter 'expires_in_days': "
                                 "between 0 and 3650.")
        expires_at = now_ms() + int(value * 86_400_000)
    tid, secret = caller.runtime.store.create_token(caller.user.id, name, expires_at)
    token = {"id": tid, "name": name, "token": secret}
    if expires_at is not None:
        token["expires_at"] = expires_at
    return {"token": token}


def list_tokens(caller: Caller, p: dict[str, Any]) -> dict[str, Any]:
    return {"tokens": caller.runtime.store.list_tokens(caller.user.id)}


def revoke_token(caller: Caller, p: dict[str, Any]) -> dict[str, Any]:
    raw = _str(p, "id")
    if not raw.isdigit():
        raise errors.invalid("Invalid value for parameter 'id': expected a token id.")
    caller.runtime.store.revoke_token(caller.user.id, int(raw))
    return {}


def _self(req: Any) -> dict[str, Any]:
    return {"auth_self": "1"}


#: (method, path below /api/<version>, handler, action, resource, versions)
ROUTES: list[tuple[str, str, Handler, str, Any, tuple[str, ...]]] = [
    ("POST", "/mlflow/users/create", create_user, "manage", None, ("2.0",)),
    ("GET", "/mlflow/users/get", get_user, "read", _self, ("2.0",)),
    ("GET", "/mlflow/users/current", current_user, "read", _self, ("2.0",)),
    ("PATCH", "/mlflow/users/update-password", update_password, "update", _self, ("2.0",)),
    ("PATCH", "/mlflow/users/update-admin", update_admin, "manage", None, ("2.0",)),
    ("DELETE", "/mlflow/users/delete", delete_user, "manage", None, ("2.0",)),
    ("POST", "/mlflow/users/permissions/grant", grant, "read", _self, ("3.0",)),
    ("POST", "/mlflow/users/permissions/revoke", revoke, "read", _self, ("3.0",)),
    ("GET", "/mlflow/users/permissions/get", check, "read", _self, ("3.0",)),
    ("POST", "/tracklog/auth/groups/create", create_group, "manage", None, ("2.0",)),
    ("DELETE", "/tracklog/auth/groups/delete", delete_group, "manage", None, ("2.0",)),
    ("GET", "/tracklog/auth/groups/list", list_groups, "manage", None, ("2.0",)),
    ("POST", "/tracklog/auth/groups/members/add", add_member, "manage", None, ("2.0",)),
    ("POST", "/tracklog/auth/groups/members/remove", remove_member, "manage", None, ("2.0",)),
    ("POST", "/tracklog/auth/groups/permissions/set", set_group_permission, "read", _self,
     ("2.0",)),
    ("POST", "/tracklog/auth/groups/permissions/delete", delete_group_permission, "read",
     _self, ("2.0",)),
    ("POST", "/tracklog/auth/tokens/create", create_token, "read", _self, ("2.0",)),
    ("GET", "/tracklog/auth/tokens/list", list_tokens, "read", _self, ("2.0",)),
    ("POST", "/tracklog/auth/tokens/revoke", revoke_token, "read", _self, ("2.0",)),
]
for _kind, _id, _out, _base in ((EXPERIMENT, "experiment_id", "experiment_permission",
                                 "/mlflow/experiments/permissions"),
                                (REGISTERED_MODEL, "name", "registered_model_permission",
                                 "/mlflow/registered-models/permissions")):
    for _verb, _method in (("create", "POST"), ("get", "GET"), ("update", "PATCH"),
                           ("delete", "DELETE")):
        ROUTES.append((_method, f"{_base}/{_verb}", _user_permission(_kind, _id, _out, _verb),
                       "read", _self, ("2.0",)))


def install(app: Any, config: Any) -> None:
    from tracklog.server.app import normalize_prefix

    prefix = normalize_prefix(config.static_prefix)
    runtime_of(app, config)  # a broken setting fails the build, not the first request
    from tracklog_auth_basic import login

    login.install(app, config, prefix)
    for method, path, handler, action, resource, versions in ROUTES:
        endpoint = rule(action, resource)(_endpoint(handler))
        for version in versions:
            for api in ("api", "ajax-api"):
                app.add_route(f"{prefix}/{api}/{version}{path}", endpoint, methods=[method])
