"""Finding, loading and listing plugins; turning URI schemes into factories.

Plugins are loaded explicitly by :func:`load_plugins` (idempotent), never as a side effect
of ``import tracklog``. Built-in plugins go through exactly the same hooks as installed
ones. Environment:

``TRACKLOG_LOAD_PLUGINS``
    comma-separated entry-point or distribution names to load instead of every installed
    plugin; set and empty loads none. Built-ins are always loaded.
``TRACKLOG_TRACE_PLUGINS``
    any non-empty value prints every hook call to stderr.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import os
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

import pluggy

from tracklog import errors, hookspecs
from tracklog.errors import PluginError

ENTRY_POINT_GROUP = "tracklog"
BUILTIN_PLUGINS = ("tracklog.builtin.local_artifacts", "tracklog.builtin.server")

# Schemes tracklog knows, and the distribution that provides each.
KNOWN_TRACKING_SCHEMES = {
    "sqlite": "tracklog-store-sql",
    "postgresql": "tracklog-store-sql",
    "mysql": "tracklog-store-sql",
    "mssql": "tracklog-store-sql",
    "file": "tracklog-store-file",
}
KNOWN_ARTIFACT_SCHEMES = {
    "s3": "tracklog-artifacts-s3",
    "gs": "tracklog-artifacts-gcs",
    "wasbs": "tracklog-artifacts-azure",
    "abfss": "tracklog-artifacts-azure",
    "sftp": "tracklog-artifacts-sftp",
    "ftp": "tracklog-artifacts-ftp",
    "ftps": "tracklog-artifacts-ftp",
    "hdfs": "tracklog-artifacts-hdfs",
    "webhdfs": "tracklog-artifacts-hdfs",
    "viewfs": "tracklog-artifacts-hdfs",
}

hookimpl = pluggy.HookimplMarker(ENTRY_POINT_GROUP)
pm = pluggy.PluginManager(ENTRY_POINT_GROUP)
pm.add_hookspecs(hookspecs)

_lock = threading.RLock()
_loaded = False


@dataclass
class PluginInfo:
    name: str
    distribution: str | None
    version: str | None
    builtin: bool
    hooks: list[str] = field(default_factory=list)
    tracking_schemes: list[str] = field(default_factory=list)
    artifact_schemes: list[str] = field(default_factory=list)


_infos: dict[str, PluginInfo] = {}
_registries: dict[str, dict[str, tuple[Callable[..., Any], str]]] = {}


def _selected(ep: importlib.metadata.EntryPoint, wanted: set[str] | None) -> bool:
    if wanted is None:
        return True
    dist = ep.dist.name if ep.dist is not None else None
    return ep.name in wanted or (dist is not None and dist in wanted)


def load_plugins() -> None:
    """Register built-ins and installed plugins once; later calls do nothing."""
    global _loaded
    with _lock:
        if _loaded:
            return
        if os.environ.get("TRACKLOG_TRACE_PLUGINS"):
            pm.trace.root.setwriter(lambda msg: print(msg, end="", file=sys.stderr))
            pm.enable_tracing()
        for module_name in BUILTIN_PLUGINS:
            module = importlib.import_module(module_name)
            pm.register(module, name=module_name)
            _infos[module_name] = PluginInfo(module_name, "tracklog-core", _core_version(), True)
        env = os.environ.get("TRACKLOG_LOAD_PLUGINS")
        wanted = None if env is None else {n.strip() for n in env.split(",") if n.strip()}
        for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
            if not _selected(ep, wanted) or pm.get_plugin(ep.name) is not None:
                continue
            dist = ep.dist.name if ep.dist is not None else None
            version = ep.dist.version if ep.dist is not None else None
            try:
                plugin = ep.load()
            except Exception as exc:
                raise PluginError(
                    f"tracklog plugin {ep.name!r} ({ep.value}) from distribution "
                    f"{dist} {version} failed to import: {type(exc).__name__}: {exc}"
                ) from exc
            try:
                pm.register(plugin, name=ep.name)
            except ValueError as exc:
                raise PluginError(
                    f"tracklog plugin {ep.name!r} from {dist} {version}: {exc}"
                ) from exc
            _infos[ep.name] = PluginInfo(ep.name, dist, version, False)
        try:
            pm.check_pending()
        except pluggy.PluginValidationError as exc:
            owner = _infos.get(pm.get_name(exc.plugin) or "")
            where = f" (distribution {owner.distribution} {owner.version})" if owner else ""
            raise PluginError(f"{exc}{where}") from exc
        for name, info in _infos.items():
            plugin = pm.get_plugin(name)
            info.hooks = sorted(
                caller.name for caller in pm.get_hookcallers(plugin) or []
            )
        _loaded = True


def register_plugin(plugin: object, name: str) -> None:
    """Register a plugin object (a module or any object with hook implementations) without
    an entry point: for applications that embed tracklog, and for tests."""
    load_plugins()
    with _lock:
        try:
            pm.register(plugin, name=name)
        except ValueError as exc:
            raise PluginError(f"tracklog plugin {name!r}: {exc}") from exc
        pm.check_pending()
        _infos[name] = PluginInfo(
            name, None, None, False, sorted(c.name for c in pm.get_hookcallers(plugin) or [])
        )
        _reset_registries()


def unregister_plugin(name: str) -> None:
    """Remove a plugin registered by :func:`register_plugin` (or any loaded plugin)."""
    with _lock:
        pm.unregister(name=name)
        _infos.pop(name, None)
        _reset_registries()


def _reset_registries() -> None:
    _registries.clear()
    for info in _infos.values():
        info.tracking_schemes.clear()
        info.artifact_schemes.clear()


def _core_version() -> str:
    from tracklog import __version__

    return __version__


def _call_each(hook_name: str, make_register: Callable[[str], Any]) -> None:
    """Call every implementation of a registration hook through pluggy (so tracing and
    argument subsets work), one plugin at a time, handing each its own ``register``."""
    impls = getattr(pm.hook, hook_name).get_hookimpls()
    names = [impl.plugin_name for impl in impls]
    for impl in reversed(impls):
        others = [pm.get_plugin(n) for n in names if n != impl.plugin_name]
        caller = pm.subset_hook_caller(hook_name, remove_plugins=others)
        caller(register=make_register(impl.plugin_name))


def _registry(kind: str) -> dict[str, tuple[Callable[..., Any], str]]:
    load_plugins()
    with _lock:
        if kind in _registries:
            return _registries[kind]
        table: dict[str, tuple[Callable[..., Any], str]] = {}

        def make_register(plugin_name: str) -> Callable[[str, Callable[..., Any]], None]:
            def register(scheme: str, factory: Callable[..., Any]) -> None:
                if not isinstance(scheme, str) or not scheme or "://" in scheme:
                    raise PluginError(
                        f"plugin {plugin_name!r} registered an invalid scheme {scheme!r}"
                    )
                if not callable(factory):
                    raise PluginError(
                        f"plugin {plugin_name!r} registered a non-callable factory for {scheme!r}"
                    )
                scheme = scheme.lower()
                if scheme in table and table[scheme][1] != plugin_name:
                    raise PluginError(
                        f"{kind} scheme {scheme!r} is claimed by two plugins: "
                        f"{_describe(table[scheme][1])} and {_describe(plugin_name)}"
                    )
                table[scheme] = (factory, plugin_name)
                info = _infos.get(plugin_name)
                if info is not None:
                    attr = f"{kind.split()[0]}_schemes"
                    getattr(info, attr).append(scheme)

            return register

        hook = {
            "tracking store": "register_tracking_stores",
            "artifact repository": "register_artifact_repositories",
        }[kind]
        _call_each(hook, make_register)
        _registries[kind] = table
        return table


def _describe(plugin_name: str) -> str:
    info = _infos.get(plugin_name)
    if info is None or info.distribution is None:
        return repr(plugin_name)
    return f"{plugin_name!r} ({info.distribution} {info.version})"


def scheme_of(uri: str) -> str:
    """The lower-case scheme of a store or artifact URI; plain paths are ``file``."""
    scheme = urlparse(uri).scheme.lower()
    if len(scheme) <= 1:  # no scheme, or a Windows drive letter
        return "file"
    return scheme


def _lookup(kind: str, uri: str, known: dict[str, str]) -> Callable[..., Any]:
    table = _registry(kind)
    scheme = scheme_of(uri)
    for candidate in (scheme, scheme.split("+", 1)[0]):
        if candidate in table:
            return table[candidate][0]
    base = scheme.split("+", 1)[0]
    installed = ", ".join(f"{s}://" for s in sorted(table)) or "none"
    hint = f" {base}:// needs {known[base]}: pip install {known[base]}." if base in known else ""
    raise errors.invalid(
        f"No {kind} plugin handles {scheme}:// URIs (in {_redact(uri)!r}).{hint} "
        f"Installed schemes: {installed}."
    )


def _redact(uri: str) -> str:
    parsed = urlparse(uri)
    if parsed.password:
        return uri.replace(f":{parsed.password}@", ":***@", 1)
    return uri


def tracking_store_factory(uri: str) -> Callable[[str, str | None], Any]:
    return _lookup("tracking store", uri, KNOWN_TRACKING_SCHEMES)


def artifact_repository_factory(uri: str) -> Callable[[str], Any]:
    return _lookup("artifact repository", uri, KNOWN_ARTIFACT_SCHEMES)


def plugin_infos() -> list[PluginInfo]:
    """Every loaded plugin with its distribution, hooks and registered schemes."""
    _registry("tracking store")
    _registry("artifact repository")
    return sorted(_infos.values(), key=lambda i: (not i.builtin, i.name))
