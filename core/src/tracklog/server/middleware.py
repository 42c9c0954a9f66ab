"""Security middleware (pure ASGI): Host-header validation and cross-origin protection.

- Host: requests whose ``Host`` is not localhost, the bound address, or an entry of
  ``--allowed-hosts`` are refused with 403 (DNS-rebinding protection); a missing,
  repeated or malformed ``Host`` gets 400 (:mod:`tracklog.server.hosts`).
- Body timeout: a request body that sends nothing for ``--body-timeout`` seconds gets
  408 (:class:`RequestBodyTimeout`).
- Cross-origin: with no ``--cors-allowed-origins`` no other origin may change anything
  (unsafe methods and preflights from a foreign ``Origin`` get 403); allowed origins get
  CORS headers (Starlette's CORSMiddleware). Cross-origin POSTs with a form or text/plain
  body (requests a browser sends without a preflight) are always refused.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlparse

import orjson

from tracklog import errors
from tracklog.server.hosts import AllowedHosts, parse_host

_UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}
_SIMPLE_TYPES = ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data")


def _header(scope: dict[str, Any], name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return value.decode("latin-1")
    return None


async def _refuse(send: Any, message: str, status: int = 403,
                  code: str = "PERMISSION_DENIED") -> None:
    body = orjson.dumps({"error_code": code, "message": message})
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


class HostValidationMiddleware:
    #: Verdicts kept per Host value: a server sees few of them, and parsing one is a
    #: material share of a small request's time.
    _KEEP = 256

    def __init__(self, app: Any, allowed: AllowedHosts) -> None:
        self.app = app
        self.allowed = allowed
        self._verdicts: dict[bytes, tuple[int, str, str] | None] = {}

    def refusal(self, scope: dict[str, Any]) -> tuple[int, str, str] | None:
        """(status, error code, message) if the request's Host is not acceptable."""
        values = [v for k, v in scope.get("headers", ()) if k == b"host"]
        if len(values) != 1:
            return 400, "BAD_REQUEST", ("Invalid Host header: expected exactly one, got "
                                        f"{len(values)}.")
        value = values[0]
        try:
            return self._verdicts[value]
        except KeyError:
            pass
        verdict = self._judge(value)
        if len(self._verdicts) >= self._KEEP:
            self._verdicts.clear()
        self._verdicts[value] = verdict
        return verdict

    def _judge(self, value: bytes) -> tuple[int, str, str] | None:
        host = parse_host(value.decode("latin-1"))
        if host is None:
            return 400, "BAD_REQUEST", "Invalid Host header: not a valid host[:port]."
        if host not in self.allowed:
            return 403, "PERMISSION_DENIED", ("Invalid Host header: this server does not "
                                              "answer for that host (see --allowed-hosts).")
        return None

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            refused = self.refusal(scope)
            if refused is not None:
                status, code, message = refused
                await _refuse(send, message, status, code)
                return
        await self.app(scope, receive, send)


def _origin_of_host(scope: dict[str, Any]) -> str | None:
    return _header(scope, b"host")


class CrossOriginGuard:
    """Refuse state-changing cross-origin requests that CORS does not allow."""

    def __init__(self, app: Any, allowed_origins: Iterable[str]) -> None:
        self.app = app
        self.origins = {o.strip().rstrip("/") for o in allowed_origins if o.strip()}
        self.allow_all = "*" in self.origins

    def _cross_origin(self, scope: dict[str, Any], origin: str) -> bool:
        if origin == "null":
            return True
        host = _origin_of_host(scope)
        return urlparse(origin).netloc.lower() != (host or "").lower()

    def refusal(self, scope: dict[str, Any]) -> str | None:
        """The message to refuse an HTTP request with, if it is a cross-origin one that
        may not be made."""
        origin = _header(scope, b"origin")
        method = scope["method"]
        cross = origin is not None and self._cross_origin(scope, origin)
        if not cross and _header(scope, b"sec-fetch-site") == "cross-site":
            cross = True
        if cross:
            permitted = self.allow_all or (origin or "").rstrip("/") in self.origins
            preflight = method == "OPTIONS" and _header(scope, b"access-control-request-method")
            if not permitted and (method in _UNSAFE or preflight):
                return (f"Cross-origin request from {origin!r} refused (see "
                        "--cors-allowed-origins).")
            ctype = (_header(scope, b"content-type") or "").split(";")[0].strip().lower()
            if method == "POST" and (ctype in _SIMPLE_TYPES or not ctype):
                return "Cross-origin POST requests must send application/json."
        return None

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            refused = self.refusal(scope)
            if refused is not None:
                await _refuse(send, refused)
                return
        await self.app(scope, receive, send)


class ExactRoutes:
    """Sends requests for a built-in route without path parameters straight to its
    endpoint, by (method, path). Starlette's router tries each route's pattern in turn
    and wraps the call in several more layers: a material share of a small request's
    time. Everything else (other methods, HEAD, a root path, plugin routes) goes on to
    the router, which holds the same routes. ``routes`` maps to each route's
    ``answer(scope, receive, send)``, which returns the response."""

    def __init__(self, app: Any, routes: dict[tuple[str, str], Any]) -> None:
        self.app = app
        self.routes = routes

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and not scope.get("root_path"):
            answer = self.routes.get((scope["method"], scope["path"]))
            if answer is not None:
                response = await answer(scope, receive, send)
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


class BodyTimeout(errors.TracklogError):
    """A request body that sent nothing for the configured time: HTTP 408 (which the
    MLflow client retries)."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"Request body timed out: no data received for {seconds:g} s",
                         errors.ErrorCode.DEADLINE_EXCEEDED)

    @property
    def http_status(self) -> int:
        return 408


class RequestBodyTimeout:
    """Bounds how long a request body may go idle.

    Each ``receive`` of body data that waits longer than ``timeout`` raises
    :class:`BodyTimeout` where the route reads the body — inside an artifact upload, in the
    repository's write, which then discards what it wrote — and the response closes the
    connection (the rest of the body is never read). Only idleness counts: a body that
    keeps sending, however slowly, is never cut off. Once the body is complete, ``receive``
    (waiting for a disconnect) is left alone.
    """

    def __init__(self, app: Any, timeout: float) -> None:
        self.app = app
        self.timeout = timeout

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or not self.timeout:
            await self.app(scope, receive, send)
            return
        timed = TimedBody(self.timeout, receive, send)
        await self.app(scope, timed.receive, timed.send)


def _body_arrived(receive: Any) -> bool:
    """Whether uvicorn has the request's whole body already (usual for a JSON request,
    which comes in the read that starts it): its ``receive`` waits for nothing then, and
    no deadline need be set. False for any other server."""
    return getattr(getattr(receive, "__self__", None), "more_body", True) is False


class TimedBody:
    """One request's ``receive`` with the idle deadline of :class:`RequestBodyTimeout`,
    and its ``send``, which closes the connection after a timeout."""

    __slots__ = ("timeout", "_receive", "_send", "body_done", "timed_out")

    def __init__(self, timeout: float, receive: Any, send: Any) -> None:
        self.timeout = timeout
        self._receive = receive
        self._send = send
        self.body_done = self.timed_out = False

    async def receive(self) -> dict[str, Any]:
        if self.body_done or _body_arrived(self._receive):
            message = await self._receive()
            self.body_done = True
            return message
        try:
            # asyncio's own deadline costs half of anyio's fail_after, and this runs
            # for every request with a body (uvicorn serves on asyncio).
            async with asyncio.timeout(self.timeout):
                message = await self._receive()
        except TimeoutError:
            self.timed_out = True
            raise BodyTimeout(self.timeout) from None
        if message["type"] != "http.request" or not message.get("more_body", False):
            self.body_done = True
        return message

    async def send(self, message: dict[str, Any]) -> None:
        if self.timed_out and message["type"] == "http.response.start":
            headers = [*message.get("headers", ()), (b"connection", b"close")]
            message = {**message, "headers": headers}
        await self._send(message)


class WrapMiddleware:
    """Adapts a plugin's ``asgi_middleware`` wrapper to Starlette's middleware stack."""

    def __init__(self, app: Any, wrapper: Any) -> None:
        self.inner = wrapper(app)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        await self.inner(scope, receive, send)


class FastPath:
    """The built-in routes without path parameters, answered ahead of Starlette's
    middleware stack: the same Host and cross-origin refusals and body deadline as
    :class:`HostValidationMiddleware`, :class:`CrossOriginGuard` and
    :class:`RequestBodyTimeout`, without their layers (or Starlette's error and
    exception layers, which a route's ``answer`` makes unnecessary: it catches
    everything). Only used while no other middleware (CORS, metrics, a plugin's) is
    configured, since those must see every request."""

    def __init__(self, routes: dict[tuple[str, str], Any], allowed: AllowedHosts,
                 allowed_origins: Iterable[str], timeout: float) -> None:
        self.routes = routes
        self.hosts = HostValidationMiddleware(None, allowed)
        self.origins = CrossOriginGuard(None, allowed_origins)
        self.timeout = timeout

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any,
                       answer: Any) -> None:
        refused = self.hosts.refusal(scope)
        if refused is not None:
            status, code, message = refused
            await _refuse(send, message, status, code)
            return
        cross = self.origins.refusal(scope)
        if cross is not None:
            await _refuse(send, cross)
            return
        if not self.timeout:
            response = await answer(scope, receive, send)
            await response(scope, receive, send)
            return
        timed = TimedBody(self.timeout, receive, send)
        response = await answer(scope, timed.receive, send)
        await response(scope, timed.receive, timed.send if timed.timed_out else send)
