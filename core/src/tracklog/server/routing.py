"""Route tables, authorization rules and the shared server state routes receive.

Each resource module owns a :class:`RouteTable` of RPC handlers. A handler is a plain
synchronous function ``handler(state, req) -> dict | Response``: it validates ``req``
with :mod:`tracklog.validation`, calls the store or repository, and returns the
response object, which the app encodes. Every route carries a :class:`Rule` (the action
and the resource it touches) that the authorization hook is asked about.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import anyio

from tracklog import errors
from tracklog.hookspecs import Readable

if TYPE_CHECKING:
    from starlette.requests import Request

    from tracklog.artifacts.base import ArtifactRepository
    from tracklog.config import ServerConfig
    from tracklog.server.codec import Req
    from tracklog.stores import TrackingStore

ACTIONS = ("read", "update", "delete", "manage")

#: What a route touches, handed to the ``authorize`` hook: see ``docs/server.md`` for the
#: keys and their types.
Resource = Callable[["Req"], dict[str, Any]]


@dataclass(frozen=True)
class Rule:
    """What a route does (``read``/``update``/``delete``/``manage``) and, from the
    request, what it does it to (``{"run_id": …}``, ``{}`` for server-wide actions).
    A ``public`` route is asked of no authentication or authorization hook: a load
    balancer's health probe must not need credentials."""

    action: str
    resource: Resource | None = None
    public: bool = False

    def __post_init__(self) -> None:
        if self.action not in ACTIONS:
            raise ValueError(f"unknown action {self.action!r}; use one of {ACTIONS}")

    def resource_of(self, req: Req) -> dict[str, Any]:
        return self.resource(req) if self.resource is not None else {}


RULE_ATTR = "__tracklog_rule__"


def rule(action: str, resource: Resource | None = None) -> Callable[[Any], Any]:
    """Declare the authorization rule of a plugin route's endpoint::

        @app.get("/my-plugin/things")
        @rule("read")
        async def things(request): ...

    ``resource`` receives a :class:`tracklog.server.codec.Req` over the query string.
    """
    declared = Rule(action, resource)

    def mark(endpoint: Any) -> Any:
        setattr(endpoint, RULE_ATTR, declared)
        return endpoint

    return mark


# Resource extractors used by the built-in routes.


def by_run(req: Req) -> dict[str, Any]:
    return {"run_id": req.run_id()}


def by_experiment(req: Req) -> dict[str, Any]:
    return {"experiment_id": req.string("experiment_id", required=True) or ""}


def by_registered_model(req: Req) -> dict[str, Any]:
    return {"registered_model": req.string("name", required=True) or ""}


def by_logged_model(req: Req) -> dict[str, Any]:
    model_id = req.path_params.get("model_id") or req.string("model_id", required=True)
    return {"logged_model": model_id or ""}


def by_experiments(req: Req) -> dict[str, Any]:
    return {"experiment_ids": req.strings("experiment_ids")}


def by_artifact_path(req: Req) -> dict[str, Any]:
    path = req.path_params.get("artifact_path") or req.string("path") or ""
    parts = path.split("/")
    out = {"artifact_path": path}
    if parts and parts[0]:
        out["experiment_id"] = parts[0]
    if len(parts) > 2 and parts[2] == "artifacts":
        out["run_id"] = parts[1]
    return out


@dataclass(frozen=True)
class RpcSpec:
    """One route. ``raw`` handlers are coroutines ``handler(state, request, req)`` that
    build their own response (streams, plain text); the others are JSON RPCs run in a
    worker thread. ``versions`` lists the API versions it is served under
    (``/api/<v>/…`` and ``/ajax-api/<v>/…``); empty means a root-level path.
    ``submit``, for a write a store may queue (see :class:`tracklog.stores.QueuedWrites`),
    is ``submit(state, queued, req, done, now) -> bool``, run on the event loop: it
    validates ``req`` as the handler does and hands the write to ``queued`` (with
    ``now``, the store's leave to make it at once); the handler runs in a worker thread
    as usual when it returns False. ``at_once``, for a JSON RPC whose work
    is all the server's own (no client pace in it), bounds how many of its requests run
    at once in a process; the others wait on the event loop, in order, holding no
    thread. A ``point`` read reads one item by its key through the store's point reads
    (see :attr:`tracklog.stores.TrackingStore.reads_now`): alone in the process, it may
    be answered on the event loop."""

    method: str
    path: str
    handler: Callable[..., Any]
    rule: Rule
    versions: tuple[str, ...] = ("2.0",)
    raw: bool = False
    submit: Callable[..., bool] | None = None
    at_once: int | None = None
    point: bool = False


@dataclass
class RouteTable:
    rpcs: list[RpcSpec] = field(default_factory=list)

    def rpc(
        self,
        method: str,
        path: str,
        action: str,
        resource: Resource | None = None,
        versions: tuple[str, ...] = ("2.0",),
        at_once: int | None = None,
        point: bool = False,
    ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        def register(handler: Callable[..., Any]) -> Callable[..., Any]:
            self.rpcs.append(RpcSpec(method, path, handler, Rule(action, resource), versions,
                                     at_once=at_once, point=point))
            return handler

        return register

    def queued(self, path: str) -> Callable[[Callable[..., bool]], Callable[..., bool]]:
        """Declare the queued form of the JSON RPC at ``path`` (declared before it)."""
        def register(submit: Callable[..., bool]) -> Callable[..., bool]:
            for i, spec in enumerate(self.rpcs):
                if spec.path == path and not spec.raw:
                    self.rpcs[i] = replace(spec, submit=submit)
                    return submit
            raise ValueError(f"no JSON RPC at {path} to queue")

        return register

    def raw(
        self,
        method: str,
        path: str,
        action: str,
        resource: Resource | None = None,
        versions: tuple[str, ...] = (),
        public: bool = False,
    ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        def register(handler: Callable[..., Any]) -> Callable[..., Any]:
            rule = Rule(action, resource, public)
            self.rpcs.append(RpcSpec(method, path, handler, rule, versions, raw=True))
            return handler

        return register


class ServerState:
    """What every route needs: the configuration, the store, the proxied artifact root."""

    def __init__(
        self,
        config: ServerConfig,
        store: TrackingStore | None,
        artifact_root: ArtifactRepository | None,
        auth_enabled: bool,
    ) -> None:
        self.config = config
        #: HTTP requests of this app in progress (counted on the event loop).
        self.requests = 0
        self._store = store
        self.artifact_root = artifact_root
        self.auth_enabled = auth_enabled
        # Artifact uploads go at their clients' pace: they run on threads of their own so
        # slow ones never hold the threads the JSON routes need.
        self.uploads = anyio.CapacityLimiter(config.artifact_uploads)

    @property
    def store(self) -> TrackingStore:
        if self._store is None:
            raise errors.TracklogError(
                "This server runs with --artifacts-only: tracking requests are not served.",
                errors.ErrorCode.ENDPOINT_NOT_FOUND,
            )
        return self._store

    @property
    def store_or_none(self) -> TrackingStore | None:
        return self._store

    @property
    def artifacts(self) -> ArtifactRepository:
        if self.artifact_root is None:
            raise errors.TracklogError(
                "This server does not serve artifacts (started with --no-serve-artifacts).",
                errors.ErrorCode.ENDPOINT_NOT_FOUND,
            )
        return self.artifact_root

    def repository_for(self, artifact_uri: str) -> tuple[ArtifactRepository, str]:
        """The repository holding ``artifact_uri`` and the path prefix inside it.

        ``mlflow-artifacts:/p`` is served from the proxied destination at path ``p``;
        any other URI is opened through the artifact plugins. A location stored before
        the rules of :mod:`tracklog.artifacts.locations` (or written to a store by other
        means) is checked again here, so it is refused instead of fetched.
        """
        from urllib.parse import urlparse

        from tracklog.artifacts.locations import check_artifact_location
        from tracklog.plugins import resolve_repository

        check_artifact_location(artifact_uri, "artifact_uri", proxy_layout=False)
        if artifact_uri.startswith("mlflow-artifacts:"):
            path = urlparse(artifact_uri).path.strip("/")
            return self.artifacts, path
        return resolve_repository(artifact_uri), ""


def identity_and_authorize(
    state: ServerState, request: Request, rule: Rule, req: Req
) -> None:
    """Ask the authentication and authorization hooks about one request (sync; call it
    from a worker thread since plugins may hit a database)."""
    from tracklog.plugins import call_hook

    identity = call_hook("authenticate", request=request, config=state.config)
    req.identity = identity
    # Plugin routes read it as request.state.identity (their Req is not handed to them).
    request.state.identity = identity
    allowed = call_hook("authorize", identity=identity, action=rule.action,
                        resource=rule.resource_of(req), config=state.config)
    if allowed is False:
        raise errors.TracklogError(
            f"Permission denied: {rule.action} is not allowed here.",
            errors.ErrorCode.PERMISSION_DENIED,
        )


def readable(state: ServerState, req: Req, kind: str) -> Readable | None:
    """The caller's readable experiments or registered models, None for all."""
    if not state.auth_enabled:
        return None
    from tracklog.plugins import call_hook

    answer = call_hook("readable", identity=req.identity, kind=kind, config=state.config)
    return answer if isinstance(answer, Readable) else None


def readable_experiment_ids(state: ServerState, req: Req, ids: Sequence[str]) -> list[str]:
    """``ids`` without the experiments the caller may not read."""
    visible = readable(state, req, "experiment")
    return list(ids) if visible is None else [i for i in ids if visible.allows(str(i))]


def readable_filter(state: ServerState, req: Req, kind: str, key: str) -> tuple[Any, ...]:
    """Comparisons to AND into a search filter so the store returns readable items only
    (``key`` is the attribute naming them: ``experiment_id`` or ``name``)."""
    visible = readable(state, req, kind)
    if visible is None:
        return ()
    from tracklog.search.ast import Comparison, Identifier, Kind, Op

    ident = Identifier(Kind.ATTRIBUTE, key)
    if visible.only is not None:
        return (Comparison(ident, Op.IN, tuple(sorted(visible.only)) or ("",)),)
    if visible.hidden:
        return (Comparison(ident, Op.NOT_IN, tuple(sorted(visible.hidden))),)
    return ()


def resource_renamed(state: ServerState, req: Req, resource: dict[str, Any],
                     renamed_to: dict[str, Any]) -> None:
    """Tell the authorization plugins a resource keyed by name has a new name."""
    if state.auth_enabled:
        from tracklog.plugins import call_hook

        call_hook("resource_renamed", identity=req.identity, resource=resource,
                  renamed_to=renamed_to, config=state.config)


def resource_created(state: ServerState, req: Req, resource: dict[str, Any]) -> None:
    """Tell the authorization plugins who created ``resource``."""
    if state.auth_enabled:
        from tracklog.plugins import call_hook

        call_hook("resource_created", identity=req.identity, resource=resource,
                  config=state.config)
