"""The tracking server: MLflow-compatible REST API and artifact proxy on FastAPI/uvicorn.

``create_app(config)`` builds the application; ``rule(action, resource)`` declares the
authorization rule of a plugin route. FastAPI is imported only when these are used.
"""

from __future__ import annotations

from typing import Any

__all__ = ["Readable", "create_app", "rule"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from tracklog.server.app import create_app

        return create_app
    if name == "rule":
        from tracklog.server.routing import rule

        return rule
    if name == "Readable":
        from tracklog.hookspecs import Readable

        return Readable
    raise AttributeError(name)
