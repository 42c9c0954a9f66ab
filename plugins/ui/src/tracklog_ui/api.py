"""The pages' one data path: the core's own RPC handlers, under the same rules.

A page calls ``call(request, "GET", "/mlflow/runs/get", run_id=…)``; the handler the
REST route ``/ajax-api/2.0/mlflow/runs/get`` runs is looked up in the core's route tables
and run with the same validation and, when an authorization plugin is installed, the
same ``(action, resource)`` check for the page's user. No SQL, no store call of its own.
"""

from __future__ import annotations

import functools
from typing import Any

from tracklog import errors
from tracklog.server.codec import JSONParts, Req
from tracklog.server.routing import RpcSpec, Rule, ServerState, identity_and_authorize


@functools.cache
def _specs() -> dict[tuple[str, str], RpcSpec]:
    from tracklog.server.app import TRACKING_TABLES

    return {(s.method, s.path): s for t in TRACKING_TABLES for s in t.rpcs if not s.raw}


def state_of(request: Any) -> ServerState:
    return request.app.state.tracklog


def authorize(request: Any, rule: Rule, req: Req) -> None:
    """Ask the authorization hooks about ``rule`` for the page's user (no-op without any)."""
    state = state_of(request)
    if state.auth_enabled:
        identity_and_authorize(state, request, rule, req)


def call(request: Any, method: str, path: str, /, **params: Any) -> dict[str, Any]:
    """Run the API route ``method path`` with a JSON-shaped body ``params``."""
    spec = _specs().get((method, path))
    if spec is None:
        raise errors.TracklogError(f"No endpoint {method} {path}",
                                   errors.ErrorCode.ENDPOINT_NOT_FOUND)
    req = Req({k: v for k, v in params.items() if v is not None}, None, {})
    authorize(request, spec.rule, req)
    result = spec.handler(state_of(request), req)
    # A handler may answer with its JSON already encoded (a run search on SQL stores).
    return result.decoded() if isinstance(result, JSONParts) else result
