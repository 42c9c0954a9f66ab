"""Security middleware (pure ASGI): Host-header validation and cross-origin protection.

- Host: requests whose ``Host`` is not localhost, the bound address, or a pattern from
  ``--allowed-hosts`` are refused with 403 (DNS-rebinding protection).
- Cross-origin: with no ``--cors-allowed-origins`` no other origin may change anything
  (unsafe methods and preflights from a foreign ``Origin`` get 403); allowed origins get
  CORS headers (Starlette's CORSMiddleware). Cross-origin POSTs with a form or text/plain
  body (requests a browser sends without a preflight) are always refused.
"""

from __future__ import annotations

import fnmatch
import ipaddress
import socket
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlparse

import orjson
from starlette.requests import Request

_LOCAL_NAMES = ("localhost", "127.0.0.1", "::1", "[::1]")
_UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}
_SIMPLE_TYPES = ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data")


def _header(scope: dict[str, Any], name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return value.decode("latin-1")
    return None


async def _refuse(send: Any, message: str, status: int = 403) -> None:
    body = orjson.dumps({"error_code": "PERMISSION_DENIED", "message": message})
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


def _split_host(host: str) -> tuple[str, str | None]:
    host = host.strip().lower()
    if host.startswith("["):
        end = host.find("]")
        name, rest = host[: end + 1], host[end + 1:]
        return name, rest[1:] if rest.startswith(":") else None
    if host.count(":") == 1:
        name, port = host.split(":")
        return name, port
    return host, None


def default_allowed_hosts(bind_host: str) -> list[str]:
    hosts = list(_LOCAL_NAMES)
    if bind_host:
        hosts.append(bind_host.lower())
    if bind_host in ("0.0.0.0", "::", ""):
        # Bound to every interface: the machine's own names and private addresses.
        hosts.append(socket.gethostname().lower())
        hosts.append(socket.getfqdn().lower())
    return hosts


class HostValidationMiddleware:
    def __init__(self, app: Any, allowed: Iterable[str], allow_private: bool = False) -> None:
        self.app = app
        self.patterns = [a.strip().lower() for a in allowed if a.strip()]
        self.allow_all = "*" in self.patterns
        self.allow_private = allow_private

    def allowed(self, host: str | None) -> bool:
        if self.allow_all:
            return True
        if not host:
            return False
        name, port = _split_host(host)
        full = f"{name}:{port}" if port else name
        for pattern in self.patterns:
            if fnmatch.fnmatchcase(name, pattern) or fnmatch.fnmatchcase(full, pattern):
                return True
        if self.allow_private:
            try:
                return ipaddress.ip_address(name.strip("[]")).is_private
            except ValueError:
                return False
        return False

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and not self.allowed(_header(scope, b"host")):
            await _refuse(send, "Invalid Host header: this server does not answer for that "
                                "host (see --allowed-hosts).")
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

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        origin = _header(scope, b"origin")
        method = scope["method"]
        cross = origin is not None and self._cross_origin(scope, origin)
        if not cross and _header(scope, b"sec-fetch-site") == "cross-site":
            cross = True
        if cross:
            permitted = self.allow_all or (origin or "").rstrip("/") in self.origins
            preflight = method == "OPTIONS" and _header(scope, b"access-control-request-method")
            if not permitted and (method in _UNSAFE or preflight):
                await _refuse(send, f"Cross-origin request from {origin!r} refused (see "
                                    "--cors-allowed-origins).")
                return
            ctype = (_header(scope, b"content-type") or "").split(";")[0].strip().lower()
            if method == "POST" and (ctype in _SIMPLE_TYPES or not ctype):
                await _refuse(send, "Cross-origin POST requests must send application/json.")
                return
        await self.app(scope, receive, send)


class ExactRoutes:
    """Sends requests for a built-in route without path parameters straight to its
    endpoint, by (method, path). Starlette's router tries each route's pattern in turn
    and wraps the call in several more layers: a material share of a small request's
    time. Everything else (other methods, HEAD, a root path, plugin routes) goes on to
    the router, which holds the same routes."""

    def __init__(self, app: Any, routes: dict[tuple[str, str], Any]) -> None:
        self.app = app
        self.routes = routes

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and not scope.get("root_path"):
            endpoint = self.routes.get((scope["method"], scope["path"]))
            if endpoint is not None:
                response = await endpoint(Request(scope, receive, send))
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


class WrapMiddleware:
    """Adapts a plugin's ``asgi_middleware`` wrapper to Starlette's middleware stack."""

    def __init__(self, app: Any, wrapper: Any) -> None:
        self.inner = wrapper(app)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        await self.inner(scope, receive, send)
