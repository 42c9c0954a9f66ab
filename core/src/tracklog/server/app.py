"""``create_app(config)``: the FastAPI application, assembled from the installed plugins."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import uuid
from collections.abc import AsyncIterator
from typing import Any

import anyio.to_thread
from fastapi import FastAPI
from starlette.datastructures import QueryParams
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route

from tracklog import __version__, errors
from tracklog.config import ServerConfig
from tracklog.interrupt import Interrupt, cancelled, serving
from tracklog.perf import gc_paused
from tracklog.server import hosts, middleware, threads
from tracklog.server.codec import (
    JSONResponse,
    Req,
    check_query,
    error_response,
    request_from_json,
)
from tracklog.server.routes import (
    admin,
    artifacts,
    experiments,
    logged_models,
    meta,
    registry,
    runs,
    traces,
)
from tracklog.server.routing import (
    RULE_ATTR,
    RouteTable,
    RpcSpec,
    Rule,
    ServerState,
    identity_and_authorize,
)
from tracklog.stores import TrackingStore, WouldWait, answering_now, queued_writes_of

log = logging.getLogger("tracklog.server")

#: Largest JSON request body accepted (a dataset profile may reach 16 MiB).
MAX_JSON_BODY = 32 * 1024 * 1024

TRACKING_TABLES = (experiments.table, runs.table, logged_models.table, registry.table,
                   traces.table, artifacts.table, admin.table)


def default_artifact_root(config: ServerConfig) -> str | None:
    """The root new experiments get: the configured one, else the proxy's
    ``mlflow-artifacts:/`` when artifacts are served, else the store's own default."""
    if config.default_artifact_root:
        return config.default_artifact_root
    return "mlflow-artifacts:/" if config.serve_artifacts else None


def normalize_prefix(prefix: str | None) -> str:
    prefix = (prefix or "").strip()
    if not prefix or prefix == "/":
        return ""
    return "/" + prefix.strip("/")


def _header(scope: dict[str, Any], name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return value.decode("latin-1")
    return None


async def _read_body(scope: dict[str, Any], receive: Any) -> bytes:
    declared = _header(scope, b"content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_JSON_BODY:
        raise errors.invalid(f"Request body of {declared} bytes exceeds {MAX_JSON_BODY} bytes")
    parts = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.request":
            chunk = message.get("body", b"")
            if chunk:
                size += len(chunk)
                if size > MAX_JSON_BODY:
                    raise errors.invalid(f"Request body exceeds {MAX_JSON_BODY} bytes")
                parts.append(chunk)
            if not message.get("more_body", False):
                break
        elif message["type"] == "http.disconnect":
            raise ClientDisconnect()
    return parts[0] if len(parts) == 1 else b"".join(parts)


#: Response header carrying the id that a 500's log entry is filed under.
REQUEST_ID_HEADER = "X-Request-Id"


def internal_error(request: Request, exc: BaseException) -> JSONResponse:
    """The answer to an unexpected failure: ``internal error (request id …)`` and the id
    in a header; the exception text and traceback go to the server log only, under the
    same id (they may hold SQL with bound values or server paths)."""
    request_id = uuid.uuid4().hex
    log.error("internal error (request id %s) on %s %s", request_id, request.method,
              request.url.path, exc_info=exc)
    response = error_response(errors.TracklogError(
        f"internal error (request id {request_id})", errors.ErrorCode.INTERNAL_ERROR
    ))
    response.headers[REQUEST_ID_HEADER] = request_id
    return response


async def _fire_on_disconnect(receive: Any, interrupt: Interrupt) -> None:
    try:
        while (await receive())["type"] != "http.disconnect":
            pass
    except Exception:  # noqa: S110 - a receive that fails is no disconnect to act on
        return
    # Stopping may mean a network round trip (a PostgreSQL cancel request): never on the
    # event loop, and not in the worker pool, which may be the very thing exhausted.
    threading.Thread(target=interrupt.fire, name="tracklog-interrupt", daemon=True).start()


def _answered(handler: Any, state: ServerState, req: Req) -> Any:
    """A read's handler and the encoding of its answer, in its worker thread, with the
    cyclic collector paused throughout: the entities and dicts of a large answer are
    freed before it resumes. Resumed any earlier, its next collection would scan every
    one of them (a 1,000-run search started about one each, 1.1 ms of collecting)."""
    with gc_paused():
        result = handler(state, req)
        if isinstance(result, Response) or (type(result) is dict and not result):
            return result
        response = JSONResponse(result)
        del result
    return response


async def _run_interruptible(handler: Any, state: ServerState, req: Req,
                             receive: Any) -> Any:
    """Run a read handler in a worker thread; if the client disconnects first, interrupt
    the store's work (a SQL statement is cancelled and its connection freed). The watch
    is a plain asyncio task: an anyio task group cost every read about 150 µs (a third
    of a run read on SQLite)."""
    interrupt = Interrupt()
    with serving(interrupt):
        watch = asyncio.get_running_loop().create_task(_fire_on_disconnect(receive, interrupt))
        try:
            return await threads.run_sync(_answered, handler, state, req)
        except Exception:
            if interrupt.fired:
                raise cancelled() from None
            raise
        finally:
            watch.cancel()


#: Query parameters of a request without a query string (immutable, so shared).
_NO_QUERY = QueryParams("")

async def _alone(state: ServerState) -> bool:
    """Whether the caller's request is the only one in progress. Requests read in the
    same turn of the loop count once they have started: one yield lets them (else under
    load each would find itself alone in turn, and writes would share no commit)."""
    if state.requests != 1:
        return False
    await asyncio.sleep(0)
    return state.requests == 1


#: A read not answered yet.
_NOT_YET = object()

#: The answer of every route that answers ``{}``, encoded once.
_EMPTY = JSONResponse({})


def _rpc_endpoint(spec: RpcSpec, state: ServerState) -> Any:
    """The route's ``answer(scope, receive, send)``, which returns its response."""
    handler, rule, is_get = spec.handler, spec.rule, spec.method == "GET"
    interruptible = rule.action == "read"
    guarded = state.auth_enabled and not rule.public
    submit = spec.submit
    # The store is chosen when the app is made: whether it queues writes is known now.
    queued = queued_writes_of(state.store_or_none) if submit is not None else None
    writes_now = queued is not None and queued.writes_now
    reads_now = spec.point and getattr(state.store_or_none, "reads_now", False)
    # One app is served by one event loop, to which the semaphore binds when first
    # contended.
    gate = asyncio.Semaphore(spec.at_once) if spec.at_once else contextlib.nullcontext()

    async def answer(scope: dict[str, Any], receive: Any, send: Any) -> Response:
        try:
            query_string = scope["query_string"]
            path_params = scope.get("path_params") or {}
            query = QueryParams(query_string) if query_string else _NO_QUERY
            if query or path_params:
                check_query(query, path_params)
            if is_get and query:
                req = Req(None, query, path_params)
            else:
                body = await _read_body(scope, receive)
                if is_get and not body:
                    req = Req(None, query, path_params)
                else:
                    req = request_from_json(body, path_params,
                                            _header(scope, b"content-type"))
            if guarded:
                await threads.run_sync(identity_and_authorize, state,
                                       Request(scope, receive, send), rule, req)
            if interruptible:
                result = _NOT_YET
                # Alone in the process, a point read is answered here, unless the store
                # would have to wait (see TrackingStore.reads_now).
                if reads_now and await _alone(state):
                    try:
                        with answering_now():
                            result = _answered(handler, state, req)
                    except WouldWait:
                        pass
                if result is _NOT_YET:
                    async with gate:
                        result = await _run_interruptible(handler, state, req, receive)
            elif submit is not None and queued is not None:
                # Validated and handed to the store's own writer here, on the loop: no
                # worker thread in between (see tracklog.stores.QueuedWrites). Alone in
                # the process, the store may make the write right here: a short write
                # on the loop then holds up no other request.
                now = writes_now and await _alone(state)
                future = asyncio.get_running_loop().create_future()
                if submit(state, queued, req, threads.settler(future), now):
                    result = await future
                else:
                    result = await threads.run_sync(handler, state, req)
            else:
                result = await threads.run_sync(handler, state, req)
            if isinstance(result, Response):
                return result
            if type(result) is dict and not result:
                return _EMPTY
            # Encoded here so that a value orjson refuses is an internal error like any other.
            return JSONResponse(result)
        except errors.TracklogError as err:
            return error_response(err)
        except ClientDisconnect:  # the client left mid-body: nobody to answer, nothing to log
            return Response(status_code=400)
        except Exception as exc:
            return internal_error(Request(scope, receive, send), exc)

    return answer


def _raw_endpoint(spec: RpcSpec, state: ServerState) -> Any:
    handler, rule = spec.handler, spec.rule
    guarded = state.auth_enabled and not rule.public

    async def answer(scope: dict[str, Any], receive: Any, send: Any) -> Any:
        request = Request(scope, receive, send)
        try:
            req = Req(None, request.query_params, request.path_params)
            check_query(request.query_params, request.path_params)
            if guarded:
                await threads.run_sync(identity_and_authorize, state, request, rule, req)
            return await handler(state, request, req)
        except errors.TracklogError as err:
            return error_response(err)
        except ClientDisconnect:  # the client left mid-body: nobody to answer, nothing to log
            return Response(status_code=400)
        except Exception as exc:
            return internal_error(request, exc)

    return answer


def _starlette_endpoint(answer: Any) -> Any:
    async def endpoint(request: Request) -> Any:
        return await answer(request.scope, request.receive, request._send)

    return endpoint


def _mount(app: FastAPI, table: RouteTable, state: ServerState, prefix: str) -> None:
    exact: dict[tuple[str, str], Any] = app.state.tracklog_exact_routes
    for spec in table.rpcs:
        if spec.versions:
            paths = [f"{prefix}/{api}/{v}{spec.path}" for v in spec.versions
                     for api in ("api", "ajax-api")]
        else:
            paths = [prefix + spec.path]
        answer = _raw_endpoint(spec, state) if spec.raw else _rpc_endpoint(spec, state)
        endpoint = _starlette_endpoint(answer)
        # Every route's endpoint names its rule, as plugin routes' do: a test (or a tool)
        # reading the route table sees what each one is authorized as.
        setattr(endpoint, RULE_ATTR, spec.rule)
        for path in paths:
            app.router.routes.append(Route(path, endpoint, methods=[spec.method]))
            if "{" not in path:
                exact.setdefault((spec.method, path), answer)


def _guard_plugin_routes(app: FastAPI, state: ServerState, known: int) -> None:
    """Give routes added by ``register_routes`` the same authorization as built-in ones:
    the rule the plugin declared with :func:`tracklog.server.rule` (``manage`` if none)."""
    for route in app.router.routes[known:]:
        declared = getattr(getattr(route, "endpoint", None), RULE_ATTR, None)
        if state.auth_enabled and hasattr(route, "app"):
            route.app = _authorizing(route.app, declared or Rule("manage"), state)


def _authorizing(inner: Any, rule: Rule, state: ServerState) -> Any:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        request = Request(scope, receive)
        try:
            req = Req(None, request.query_params, scope.get("path_params"))
            await anyio.to_thread.run_sync(identity_and_authorize, state, request, rule, req)
        except errors.TracklogError as err:
            await error_response(err)(scope, receive, send)
            return
        await inner(scope, receive, send)

    return app


class TracklogApp(FastAPI):
    """The FastAPI application, answering the built-in routes without path parameters
    through :class:`middleware.FastPath` while it applies (see :func:`create_app`)."""

    fast_path: middleware.FastPath | None = None
    #: The middleware count the fast path was set up for: one added since turns it off.
    fast_layers = 0

    #: Set by :func:`create_app`.
    tracklog_state: ServerState

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        state = self.tracklog_state
        state.requests += 1
        try:
            fast = self.fast_path
            if fast is not None and not scope.get("root_path"):
                answer = fast.routes.get((scope["method"], scope["path"]))
                if answer is not None and len(self.user_middleware) == self.fast_layers:
                    scope["app"] = self
                    await fast(scope, receive, send, answer)
                    return
            await super().__call__(scope, receive, send)
        finally:
            state.requests -= 1


def auth_enabled(config: ServerConfig) -> bool:
    """Whether any plugin implementing ``authenticate``/``authorize`` is switched on
    (``auth_active`` answers False for each one that is off)."""
    from tracklog.plugins import call_hook, pm

    owners = {impl.plugin_name for hook in (pm.hook.authenticate, pm.hook.authorize)
              for impl in hook.get_hookimpls()}
    if not owners:
        return False
    switchable = {impl.plugin_name for impl in pm.hook.auth_active.get_hookimpls()}
    if owners - switchable:
        return True
    answers = call_hook("auth_active", config=config)
    return len(answers) < len(switchable) or any(a is not False for a in answers)


def create_app(config: ServerConfig | None = None,
               store: TrackingStore | None = None) -> TracklogApp:
    """Build the server application.

    The tracking store comes from ``config.backend_store_uri`` through the store plugins
    (unless ``store`` is given), the proxied artifact root from
    ``config.artifacts_destination`` through the artifact plugins. Plugins' routes,
    middleware and startup work are added through their hooks.
    """
    from tracklog.plugins import call_hook, check_plugins, resolve_repository, resolve_store

    check_plugins()
    config = config or ServerConfig()
    if store is None and not config.artifacts_only:
        store = resolve_store(config.backend_store_uri, default_artifact_root(config))
    artifact_root = None
    if config.serve_artifacts or config.artifacts_only:
        artifact_root = resolve_repository(config.artifacts_destination)
    state = ServerState(config, store, artifact_root, auth_enabled(config))

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await anyio.to_thread.run_sync(lambda: call_hook("startup", app=app, config=config))
        try:
            yield
        finally:
            if store is not None:
                store.close()

    app = TracklogApp(title="tracklog", version=__version__, docs_url=None, redoc_url=None,
                  openapi_url=None, lifespan=lifespan)
    app.state.tracklog = state
    app.tracklog_state = state
    app.state.tracklog_exact_routes = {}
    prefix = normalize_prefix(config.static_prefix)

    _mount(app, meta.table, state, prefix)
    if not config.artifacts_only:
        for table in TRACKING_TABLES:
            _mount(app, table, state, prefix)
    if artifact_root is not None:
        _mount(app, artifacts.proxy, state, prefix)
    if config.expose_prometheus:
        from tracklog.server import prometheus

        prometheus.install(app, config, prefix)

    known = len(app.router.routes)
    call_hook("register_routes", app=app, config=config)
    _guard_plugin_routes(app, state, known)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 404:
            return error_response(errors.TracklogError(
                f"No endpoint {request.method} {request.url.path}",
                errors.ErrorCode.ENDPOINT_NOT_FOUND,
            ))
        if exc.status_code == 405:
            return JSONResponse(
                {"error_code": "ENDPOINT_NOT_FOUND",
                 "message": f"Method {request.method} is not allowed for {request.url.path}"},
                status_code=405,
            )
        code = errors.ErrorCode.BAD_REQUEST if exc.status_code < 500 else \
            errors.ErrorCode.INTERNAL_ERROR
        return JSONResponse({"error_code": code.value, "message": str(exc.detail)},
                            status_code=exc.status_code)

    @app.exception_handler(errors.TracklogError)
    async def tracklog_error(request: Request, exc: errors.TracklogError) -> Response:
        return error_response(exc)

    # Anything else that escapes a route or a middleware (plugin routes included): the
    # same JSON 500 with a request id instead of Starlette's plain-text one.
    @app.exception_handler(Exception)
    async def unexpected_error(request: Request, exc: Exception) -> Response:
        return internal_error(request, exc)

    # Innermost: inside every other middleware, so they all still see these requests.
    app.add_middleware(middleware.ExactRoutes, routes=app.state.tracklog_exact_routes)
    # Results come last-registered first: the first plugin ends up outermost.
    wrappers = call_hook("asgi_middleware", config=config)
    for wrapper in wrappers:
        app.add_middleware(middleware.WrapMiddleware, wrapper=wrapper)
    if config.expose_prometheus:
        from tracklog.server import prometheus

        app.add_middleware(prometheus.MetricsMiddleware, prefix=prefix)
    if config.cors_allowed_origins:
        from starlette.middleware.cors import CORSMiddleware

        origins = list(config.cors_allowed_origins)
        app.add_middleware(CORSMiddleware, allow_origins=origins, allow_methods=["*"],
                           allow_headers=["*"], allow_credentials="*" not in origins)
    # Outside CORS, so a refused origin gets a JSON 403 rather than CORS's plain 400.
    app.add_middleware(middleware.CrossOriginGuard, allowed_origins=config.cors_allowed_origins)
    try:
        allowed = hosts.AllowedHosts(
            hosts.default_allowed_hosts(config.host) + list(config.allowed_hosts),
            allow_private=config.host in ("0.0.0.0", "::"),
        )
    except ValueError as exc:
        raise errors.invalid(f"--allowed-hosts: {exc}") from None
    app.add_middleware(middleware.HostValidationMiddleware, allowed=allowed)
    # Outermost: every route and plugin reads its body through the timed receive.
    app.add_middleware(middleware.RequestBodyTimeout, timeout=config.body_timeout)
    # Authorization, CORS headers, request metrics and plugins' middleware must see
    # every request: with any of them, every request takes the full stack.
    if not (state.auth_enabled or wrappers or config.expose_prometheus
            or config.cors_allowed_origins):
        app.fast_path = middleware.FastPath(app.state.tracklog_exact_routes, allowed,
                                            config.cors_allowed_origins, config.body_timeout)
        app.fast_layers = len(app.user_middleware)
    return app
