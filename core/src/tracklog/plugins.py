"""The plugin host: finding, loading and listing plugins, calling their hooks, and
turning store and artifact URIs into stores and repositories.

Plugins are loaded explicitly by :func:`load_plugins` (idempotent), never as a side effect
of ``import tracklog``. Built-in plugins go through exactly the same hooks as installed
ones. A plugin that fails to import, implements a hook that does not exist or raises while
registering is recorded as broken (:attr:`PluginInfo.error`) instead of stopping the
load, so ``tracklog plugins`` can show it; :func:`check_plugins` turns the first broken
plugin into one :class:`~tracklog.errors.PluginError`. Every hook is called through
:func:`call_hook`. Environment:

``TRACKLOG_LOAD_PLUGINS``
    comma-separated entry-point or distribution names to load instead of every installed
    plugin; set and empty loads none. Built-ins are always loaded.
``TRACKLOG_TRACE_PLUGINS``
    any non-empty value prints every hook call to stderr.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.metadata
import logging
import os
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

import pluggy

from tracklog import errors, hookspecs
from tracklog.errors import PluginError, TracklogError

# At import, not lazily: one Option class for every plugin, even when a test runner
# unloads and re-imports modules between runs.
from tracklog.options import Option

if TYPE_CHECKING:
    from tracklog.artifacts.base import ArtifactRepository
    from tracklog.stores import TrackingStore

log = logging.getLogger("tracklog.plugins")

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

#: Hooks that answer a request: a TracklogError raised there (UNAUTHENTICATED, say) is the
#: answer itself and reaches the client unchanged.
_ANSWERING_HOOKS = frozenset({"authenticate", "authorize", "readable", "check_startup",
                              "migration_source"})

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
    #: The options it declares (:meth:`tracklog.options.Option.describe`).
    options: list[dict[str, Any]] = field(default_factory=list)
    #: Why the plugin is unusable (failed import, unknown hook, a hook that raised), or None.
    error: str | None = None

    def describe(self) -> str:
        if self.distribution is None:
            return repr(self.name)
        return f"{self.name!r} ({self.distribution} {self.version})"


_infos: dict[str, PluginInfo] = {}
_registries: dict[str, dict[str, tuple[Callable[..., Any], str]]] = {}
_options: dict[str, tuple[Option, str]] | None = None  # flag -> (option, plugin)
# One caller per (hook, plugin): pluggy's own call path restricted to that plugin.
_callers: dict[tuple[str, str], Any] = {}
# Plugins whose registration of schemes or options failed, kept apart from load errors: the
# registries are built again after an in-process plugin comes or goes.
_registry_errors: dict[str, str] = {}


def _selected(ep: importlib.metadata.EntryPoint, wanted: set[str] | None) -> bool:
    if wanted is None:
        return True
    dist = ep.dist.name if ep.dist is not None else None
    return ep.name in wanted or (dist is not None and dist in wanted)


def _register(plugin: object, info: PluginInfo) -> None:
    """Register ``plugin`` under ``info.name``, or record in ``info.error`` why not."""
    _callers.clear()
    try:
        pm.register(plugin, name=info.name)
    except (ValueError, pluggy.PluginValidationError) as exc:
        info.error = str(exc)
        return
    hooks = [caller.name for caller in pm.get_hookcallers(plugin) or []]
    unknown = [name for name in hooks if not getattr(pm.hook, name).has_spec()]
    if unknown:
        pm.unregister(plugin)
        info.error = "; ".join(_unknown_hook(name) for name in unknown)
        return
    info.hooks = sorted(hooks)


def _unknown_hook(name: str) -> str:
    specs = [n for n in dir(hookspecs) if hasattr(getattr(hookspecs, n), "tracklog_spec")]
    near = difflib.get_close_matches(name, specs, n=1)
    hint = f" (did you mean {near[0]}?)" if near else ""
    return f"implements {name}, which is no tracklog hook{hint}"


def load_plugins() -> None:
    """Register built-ins and installed plugins once; later calls do nothing. A plugin
    that cannot be used is recorded with its error (see :func:`check_plugins`)."""
    global _loaded
    with _lock:
        if _loaded:
            return
        if os.environ.get("TRACKLOG_TRACE_PLUGINS"):
            pm.trace.root.setwriter(lambda msg: print(msg, end="", file=sys.stderr))
            pm.enable_tracing()
        for module_name in BUILTIN_PLUGINS:
            info = PluginInfo(module_name, "tracklog-core", _core_version(), True)
            _register(importlib.import_module(module_name), info)
            _infos[module_name] = info
        env = os.environ.get("TRACKLOG_LOAD_PLUGINS")
        wanted = None if env is None else {n.strip() for n in env.split(",") if n.strip()}
        found: set[str] = set()
        for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
            dist = ep.dist.name if ep.dist is not None else None
            found.update(n for n in (ep.name, dist) if n)
            if not _selected(ep, wanted) or ep.name in _infos:
                continue
            version = ep.dist.version if ep.dist is not None else None
            info = _infos[ep.name] = PluginInfo(ep.name, dist, version, False)
            try:
                plugin = ep.load()
            except Exception as exc:
                info.error = f"failed to import {ep.value}: {type(exc).__name__}: {exc}"
                continue
            _register(plugin, info)
        for name in sorted((wanted or set()) - found):
            log.warning("TRACKLOG_LOAD_PLUGINS names %r, but no tracklog plugin of that "
                        "entry-point or distribution name is installed", name)
        _loaded = True


def register_plugin(plugin: object, name: str) -> None:
    """Register a plugin object (a module or any object with hook implementations) without
    an entry point: for applications that embed tracklog, and for tests. A plugin that
    cannot be registered raises :class:`~tracklog.errors.PluginError`."""
    load_plugins()
    with _lock:
        info = PluginInfo(name, None, None, False)
        _register(plugin, info)
        if info.error is not None:
            raise PluginError(f"tracklog plugin {info.describe()}: {info.error}")
        _infos[name] = info
        _reset_registries()


def unregister_plugin(name: str) -> None:
    """Remove a plugin registered by :func:`register_plugin` (or any loaded plugin)."""
    with _lock:
        if pm.get_plugin(name) is not None:
            pm.unregister(name=name)
        _infos.pop(name, None)
        _callers.clear()
        _reset_registries()


def _reset_registries() -> None:
    global _options
    _registries.clear()
    _options = None
    for info in _infos.values():
        info.tracking_schemes.clear()
        info.artifact_schemes.clear()
        info.options.clear()
    _registry_errors.clear()


def _core_version() -> str:
    from tracklog import __version__

    return __version__


def _describe(plugin_name: str) -> str:
    info = _infos.get(plugin_name)
    return info.describe() if info is not None else repr(plugin_name)


def call_hook(
    name: str,
    /,
    *,
    each: Callable[[str], dict[str, Any]] | None = None,
    on_error: Callable[[str, PluginError], object] | None = None,  # result ignored
    **kwargs: Any,
) -> Any:
    """Call every implementation of hook ``name``, one plugin at a time, through pluggy
    (so argument subsets, ``tryfirst``/``trylast`` and tracing apply) in pluggy's order.

    :param each: ``each(plugin_name)`` gives keyword arguments of that plugin's own (a
        ``register`` function that knows whose registration it is, say).
    :param on_error: instead of raising, hand ``on_error(plugin_name, error)`` a plugin's
        failure and go on with the next plugin.
    :returns: the list of non-None results; for a ``firstresult`` hook the first non-None
        result, or None.

    An exception from an implementation is raised as :class:`~tracklog.errors.PluginError`
    naming the plugin, its distribution and version and the hook; a ``PluginError`` passes
    as it is, and so does a ``TracklogError`` from a hook that answers a request
    (``authenticate``, ``authorize``) or a user's command (``migration_source``).
    """
    load_plugins()
    hook = getattr(pm.hook, name)
    first = bool(hook.spec and hook.spec.opts.get("firstresult"))
    results = []
    for impl in reversed(hook.get_hookimpls()):
        plugin_name = impl.plugin_name
        caller = _callers.get((name, plugin_name))
        if caller is None:
            others = [p for p in pm.get_plugins() if p is not impl.plugin]
            caller = _callers[(name, plugin_name)] = pm.subset_hook_caller(name, others)
        arguments = {**kwargs, **each(plugin_name)} if each is not None else kwargs
        try:
            result = caller(**arguments)
        except PluginError as exc:
            failure = exc
        except TracklogError as exc:
            if name in _ANSWERING_HOOKS:
                raise
            failure = _failure(name, plugin_name, exc)
        except Exception as exc:
            failure = _failure(name, plugin_name, exc)
        else:
            if not first:
                results.extend(result)  # pluggy's list: this plugin's result, if not None
            elif result is not None:
                return result
            continue
        if on_error is None:
            raise failure
        on_error(plugin_name, failure)
    return None if first else results


def _failure(hook_name: str, plugin_name: str, exc: Exception) -> PluginError:
    failure = PluginError(f"tracklog plugin {_describe(plugin_name)} raised in {hook_name}: "
                          f"{type(exc).__name__}: {exc}")
    failure.__cause__ = exc
    return failure


def _claim(table: dict[str, tuple[Any, str]], key: str, value: Any, plugin_name: str,
           what: str) -> None:
    """Enter ``value`` under ``key`` for ``plugin_name``. Of two plugins claiming one key
    the one registered later is at fault, whichever asks first (hooks run last-registered
    first): it is recorded as broken, and its entries are dropped afterwards."""
    holder = table[key][1] if key in table else plugin_name
    if holder != plugin_name:
        first, later = sorted((holder, plugin_name), key=list(_infos).index)
        message = f"{what} is claimed by two plugins: {_describe(first)} and {_describe(later)}"
        if later == plugin_name:
            raise PluginError(message)
        _registry_errors.setdefault(holder, message)
    table[key] = (value, plugin_name)


def _registry(kind: str) -> dict[str, tuple[Callable[..., Any], str]]:
    load_plugins()
    with _lock:
        if kind in _registries:
            return _registries[kind]
        table: dict[str, tuple[Callable[..., Any], str]] = {}

        def make_register(plugin_name: str) -> dict[str, Any]:
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
                _claim(table, scheme, factory, plugin_name, f"{kind} scheme {scheme!r}")

            return {"register": register}

        hook = {
            "tracking store": "register_tracking_stores",
            "artifact repository": "register_artifact_repositories",
        }[kind]
        call_hook(hook, each=make_register,
                  on_error=lambda name, exc: _registry_errors.setdefault(name, str(exc)))
        attr = f"{kind.split()[0]}_schemes"
        for scheme, (_, owner) in list(table.items()):
            if owner in _registry_errors:
                del table[scheme]  # half a registration from a plugin that then failed
            elif owner in _infos:
                getattr(_infos[owner], attr).append(scheme)
        _registries[kind] = table
        return table


def plugin_options() -> list[Option]:
    """Every option the plugins declare through ``register_options``."""
    global _options
    load_plugins()
    with _lock:
        if _options is None:
            table: dict[str, tuple[Option, str]] = {}

            def make_register(plugin_name: str) -> dict[str, Any]:
                def register(option: Option) -> None:
                    if not isinstance(option, Option):
                        raise PluginError(f"plugin {plugin_name!r} registered {option!r}, "
                                          "not a tracklog.options.Option")
                    _claim(table, option.flag, option, plugin_name, f"option {option.flag}")

                return {"register": register}

            call_hook("register_options", each=make_register,
                      on_error=lambda name, exc: _registry_errors.setdefault(name, str(exc)))
            for option, owner in list(table.values()):
                if owner in _registry_errors:
                    del table[option.flag]
                elif owner in _infos:
                    _infos[owner].options.append(option.describe())
            _options = table
        return [option for option, _ in _options.values()]


def check_options() -> None:
    """Read every plugin option once: a bad value raises a one-line
    :class:`~tracklog.errors.TracklogError` naming its flag or variable."""
    for option in plugin_options():
        option.read()


def plugin_infos() -> list[PluginInfo]:
    """Every loaded plugin (broken ones too) with its distribution, hooks, registered
    schemes, options and error."""
    _registry("tracking store")
    _registry("artifact repository")
    plugin_options()
    infos = [replace(i, error=i.error or _registry_errors.get(i.name)) for i in _infos.values()]
    return sorted(infos, key=lambda i: (not i.builtin, i.name))


def mark_broken(plugin_name: str, error: PluginError) -> None:
    """Record ``plugin_name`` as broken (a hook the host calls with ``on_error``)."""
    info = _infos.get(plugin_name)
    if info is not None and info.error is None:
        info.error = str(error)


def check_plugins() -> None:
    """Raise a one-line :class:`~tracklog.errors.PluginError` naming the first broken
    plugin, if any: what every command but ``tracklog plugins`` does before it starts."""
    for info in plugin_infos():
        if info.error is not None:
            message = info.error
            if info.name not in message and repr(info.name) not in message:
                message = f"tracklog plugin {info.describe()} {message}"
            raise PluginError(message)


def scheme_of(uri: str) -> str:
    """The lower-case scheme of a store or artifact URI; plain paths are ``file``."""
    scheme = urlparse(uri).scheme.lower()
    if len(scheme) <= 1:  # no scheme, or a Windows drive letter
        return "file"
    return scheme


def _lookup(kind: str, uri: str, known: dict[str, str]) -> Callable[..., Any]:
    check_plugins()
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


def resolve_store(store_uri: str, default_artifact_root: str | None = None) -> TrackingStore:
    """Create the tracking store for ``store_uri`` through the installed plugins.

    An unknown scheme raises :class:`tracklog.errors.TracklogError` listing the installed
    schemes and, for schemes tracklog knows, the distribution that provides them.
    """
    return tracking_store_factory(store_uri)(store_uri, default_artifact_root)


def resolve_repository(artifact_uri: str) -> ArtifactRepository:
    """The repository for ``artifact_uri`` through the installed plugins; an unknown scheme
    raises an error that lists installed schemes and names the distribution to install."""
    return artifact_repository_factory(artifact_uri)(artifact_uri)
