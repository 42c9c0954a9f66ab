"""Prometheus metrics on ``/metrics`` (``--expose-prometheus DIR``), with prometheus-client.

Counts and times every request by method, route template and status. ``DIR`` holds the
multiprocess files so that several workers report as one.
"""

from __future__ import annotations

import os
import time
from typing import Any

from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Match, Route

from tracklog.config import ServerConfig

_metrics: dict[str, Any] = {}


def _collectors() -> dict[str, Any]:
    if not _metrics:
        from prometheus_client import Counter, Histogram

        _metrics["requests"] = Counter(
            "tracklog_http_requests_total", "HTTP requests", ["method", "route", "status"]
        )
        _metrics["latency"] = Histogram(
            "tracklog_http_request_duration_seconds", "HTTP request latency",
            ["method", "route"],
        )
    return _metrics


def install(app: FastAPI, config: ServerConfig, prefix: str) -> None:
    directory = config.expose_prometheus
    if directory:
        os.makedirs(directory, exist_ok=True)
        os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", os.path.abspath(directory))
    _collectors()

    async def metrics(request: Request) -> Response:
        from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
        from prometheus_client.multiprocess import MultiProcessCollector

        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            registry = CollectorRegistry()
            MultiProcessCollector(registry)
        else:
            from prometheus_client import REGISTRY as registry
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    # Public, like /health: mounted before the plugins' routes, so no hook guards it.
    app.router.routes.append(Route(prefix + "/metrics", metrics, methods=["GET"]))


class MetricsMiddleware:
    def __init__(self, app: Any, prefix: str = "") -> None:
        self.app = app
        self.skip = {prefix + "/health", prefix + "/version", prefix + "/metrics"}
        self.router: Any = None

    def _template(self, scope: dict[str, Any]) -> str:
        app = scope.get("app")
        router = app.router if app is not None else None
        for route in getattr(router, "routes", ()):
            match, _ = route.matches(scope)
            if match is Match.FULL:
                return route.path
        return "<unmatched>"

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"] in self.skip:
            await self.app(scope, receive, send)
            return
        status = {"code": 500}

        async def record(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        start = time.perf_counter()
        try:
            await self.app(scope, receive, record)
        finally:
            collectors = _collectors()
            route = self._template(scope)
            collectors["requests"].labels(scope["method"], route, str(status["code"])).inc()
            collectors["latency"].labels(scope["method"], route).observe(
                time.perf_counter() - start
            )
