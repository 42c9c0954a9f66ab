"""YAML through PyYAML, with the LibYAML C loader and dumper when PyYAML was built with it.

:func:`yaml_backend` says which one is active. Setting the environment variable
``TRACKLOG_FILE_STORE_YAML=pure`` (or calling :func:`set_backend`) forces the pure-Python
classes, which is how the benchmark measures the difference.
"""

from __future__ import annotations

import os
from typing import Any

import yaml

_HAS_LIBYAML = bool(getattr(yaml, "__with_libyaml__", False)) and hasattr(yaml, "CSafeLoader")
_loader: type = yaml.SafeLoader
_dumper: type = yaml.SafeDumper


def set_backend(name: str) -> str:
    """Choose ``"libyaml"`` (falls back to pure Python when unavailable) or ``"pure"``;
    returns the backend now active."""
    global _loader, _dumper
    if name not in ("libyaml", "pure"):
        raise ValueError(f"unknown YAML backend {name!r}: use 'libyaml' or 'pure'")
    if name == "libyaml" and _HAS_LIBYAML:
        _loader, _dumper = yaml.CSafeLoader, yaml.CSafeDumper
    else:
        _loader, _dumper = yaml.SafeLoader, yaml.SafeDumper
    return yaml_backend()


def yaml_backend() -> str:
    """``"libyaml"`` when the C loader/dumper are in use, else ``"pure"``."""
    return "libyaml" if _loader is not yaml.SafeLoader else "pure"


def loads(text: str) -> Any:
    return yaml.load(text, Loader=_loader)


def dumps(data: Any) -> str:
    # The same layout MLflow's file store writes: block style, sorted keys, unicode kept.
    return yaml.dump(
        data, Dumper=_dumper, default_flow_style=False, allow_unicode=True, sort_keys=True
    )


YAMLError = yaml.YAMLError

set_backend("pure" if os.environ.get("TRACKLOG_FILE_STORE_YAML") == "pure" else "libyaml")
