"""tracklog: an experiment-tracking server that speaks the MLflow tracking protocol."""

from importlib.metadata import PackageNotFoundError, version
from typing import Any

try:
    __version__ = version("tracklog-core")
except PackageNotFoundError:  # running from a source tree without installing
    __version__ = "0.0.0"

__all__ = ["__version__", "hookimpl"]


def __getattr__(name: str) -> Any:
    # ``tracklog.hookimpl`` without importing pluggy machinery at ``import tracklog``.
    if name == "hookimpl":
        from tracklog.plugins import hookimpl

        return hookimpl
    raise AttributeError(name)
