"""Every hook a tracklog plugin may implement. These docstrings are the plugin reference.

A plugin is a module (or object) with functions decorated by ``tracklog.hookimpl`` and
named like the specs below, announced by one entry point in the group ``tracklog``::

    [project.entry-points.tracklog]
    my-store = "my_package.plugin"

An implementation may accept any subset of a hook's arguments, in any order, so new
arguments never break existing plugins. A misspelled hook name marks the plugin broken at
load time, with the hook it probably meant.

Unless a hook says "first result wins", every implementation is called and their results
are collected. An exception raised by an implementation reaches the caller as a
:class:`tracklog.errors.PluginError` naming the plugin, its distribution and version,
except where the hook says otherwise.

Heavy libraries (SQLAlchemy, boto3, …) must be imported inside the factories a plugin
registers, never at module import: ``tracklog --help`` loads every plugin module.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    import click

    from tracklog.artifacts.base import ArtifactRepository
    from tracklog.config import ServerConfig
    from tracklog.options import Option
    from tracklog.stores import TrackingStore

hookspec = pluggy.HookspecMarker("tracklog")

# --- storage ---------------------------------------------------------------------------


@hookspec
def register_tracking_stores(
    register: Callable[[str, Callable[[str, str | None], TrackingStore]], None],
) -> None:
    """Register tracking-store factories by URI scheme.

    :param register: call ``register(scheme, factory)`` once per scheme. ``scheme`` is a
        URI scheme without ``://`` (``"sqlite"``, ``"postgresql"``, ``"file"``); a URI
        ``dialect+driver://`` is looked up as ``dialect+driver`` first, then ``dialect``.
        ``factory(store_uri, default_artifact_root)`` returns a
        :class:`tracklog.stores.TrackingStore`; ``default_artifact_root`` may be None
        (the store then picks its own default).

    All implementations are called. Two plugins registering one scheme is a
    :class:`tracklog.errors.PluginError` naming both. The factory is called only when a
    store for that scheme is needed: import the storage library inside it.
    """


@hookspec
def register_artifact_repositories(
    register: Callable[[str, Callable[[str], ArtifactRepository]], None],
) -> None:
    """Register artifact-repository factories by URI scheme.

    :param register: call ``register(scheme, factory)`` once per scheme (``"s3"``,
        ``"gs"``, ``"file"``). ``factory(artifact_uri)`` returns a
        :class:`tracklog.artifacts.ArtifactRepository` rooted at that URI. Plain local
        paths resolve as scheme ``"file"``.

    All implementations are called. Two plugins registering one scheme is a
    :class:`tracklog.errors.PluginError` naming both.
    """


# --- configuration ---------------------------------------------------------------------


@hookspec
def register_options(register: Callable[[Option], None]) -> None:
    """Declare the plugin's options.

    :param register: call ``register(option)`` with a :class:`tracklog.options.Option` for
        each setting. ``tracklog server`` gains its flag ``--<plugin>-<name>``; the value
        is also read from ``TRACKLOG_<PLUGIN>_<NAME>`` and then from the option's further
        variables. Read it where it is used with ``option.read()``.

    All implementations are called. The server checks every option when it starts: a bad
    value stops it with one line naming the flag or variable. Two plugins declaring one flag
    are a :class:`tracklog.errors.PluginError` naming both.
    """


# --- command line ----------------------------------------------------------------------


@hookspec
def register_commands(cli: click.Group) -> None:
    """Add subcommands to the ``tracklog`` command line.

    :param cli: the root :class:`click.Group`; use ``@cli.command()`` or
        ``cli.add_command(...)``.

    All implementations are called when the command line is built, before arguments are
    parsed. Keep imports inside the command functions.
    """


# --- server ----------------------------------------------------------------------------


@hookspec(firstresult=True)
def authenticate(request: Any, config: ServerConfig) -> Any | None:
    """Identify who sent a request.

    :param request: the incoming ``starlette.requests.Request``.
    :param config: the server configuration.
    :returns: an identity object of the plugin's choosing (passed to :func:`authorize`),
        or None to let the next plugin decide.

    First non-None result wins. Raise :class:`tracklog.errors.TracklogError` with
    ``UNAUTHENTICATED`` to refuse the request (answered with 401): a ``TracklogError``
    reaches the client unchanged; any other exception is a 500 whose log names the plugin.
    With no plugin implementing this hook every request is anonymous and allowed, as in
    MLflow.
    """


@hookspec(firstresult=True)
def authorize(
    identity: Any, action: str, resource: dict[str, Any], config: ServerConfig
) -> bool | None:
    """Decide whether ``identity`` may perform ``action`` on ``resource``.

    :param identity: what :func:`authenticate` returned (None when anonymous).
    :param action: ``"read"``, ``"update"``, ``"delete"`` or ``"manage"``.
    :param resource: what the request touches, e.g. ``{"experiment_id": "3"}``,
        ``{"run_id": "…"}``, ``{"registered_model": "name"}``, ``{"experiment_ids":
        ["0", "7"]}`` (``experiment_ids`` and ``run_ids`` are lists of strings, every
        other value a string); empty for server-wide actions such as creating an
        experiment.
    :param config: the server configuration.
    :returns: True to allow, False to refuse (answered with 403 PERMISSION_DENIED), None to
        let the next plugin decide.

    First non-None result wins; no decision at all means allowed. Neither this hook nor
    :func:`authenticate` is asked about ``/health`` and ``/metrics``.
    """


@hookspec
def auth_active(config: ServerConfig) -> bool | None:
    """Whether this plugin's :func:`authenticate` and :func:`authorize` are in force.

    :param config: the server configuration.
    :returns: False when the plugin is installed but switched off (an opt-in
        authentication plugin without its setting); True or None otherwise.

    All implementations are called, once while the application is built. When every
    plugin implementing :func:`authenticate` or :func:`authorize` answers False, neither
    hook is called and requests are served as with no such plugin (no thread hop, no
    identity).
    """


@dataclass(frozen=True)
class Readable:
    """What the ``readable`` hook answers: ``only`` these keys (experiment ids or
    registered-model names) when set, else everything but the ``hidden`` ones."""

    only: frozenset[str] | None = None
    hidden: frozenset[str] = frozenset()

    def allows(self, key: str) -> bool:
        if self.only is not None:
            return key in self.only
        return key not in self.hidden


@hookspec(firstresult=True)
def readable(identity: Any, kind: str, config: ServerConfig) -> Readable | None:
    """Which experiments or registered models ``identity`` may read, for searches.

    :param identity: what :func:`authenticate` returned.
    :param kind: ``"experiment"`` (ids) or ``"registered_model"`` (names).
    :param config: the server configuration.
    :returns: a :class:`tracklog.server.Readable` (``only`` the listed keys, or all but
        the ``hidden`` ones), or None when everything is readable.

    First non-None result wins. Asked once per search request after :func:`authorize`
    allowed it: the server drops unreadable experiment ids from run, trace and
    logged-model searches, and adds ``experiment_id`` / ``name`` ``IN`` (or ``NOT IN``)
    to experiment, registered-model and model-version search filters, so the store
    pages over readable items only (a SQL store filters in its query). A
    ``TracklogError`` reaches the client unchanged.
    """


@hookspec
def resource_created(identity: Any, resource: dict[str, Any], config: ServerConfig) -> None:
    """An experiment or registered model was just created by ``identity``.

    :param identity: what :func:`authenticate` returned.
    :param resource: ``{"experiment_id": "7"}`` or ``{"registered_model": "name"}``.
    :param config: the server configuration.

    All implementations are called, in the request's worker thread, after the store
    created it and before the response is sent (an authorization plugin records the
    creator's permission here). Called only while authentication is active.
    """


@hookspec
def resource_renamed(identity: Any, resource: dict[str, Any], renamed_to: dict[str, Any],
                     config: ServerConfig) -> None:
    """A resource keyed by name was just renamed by ``identity``.

    :param identity: what :func:`authenticate` returned.
    :param resource: the old key, ``{"registered_model": "old"}``.
    :param renamed_to: the new key, ``{"registered_model": "new"}``.
    :param config: the server configuration.

    All implementations are called, in the request's worker thread, after the store
    renamed it (an authorization plugin moves the grants keyed by the old name). Called
    only while authentication is active.
    """


@hookspec
def asgi_middleware(config: ServerConfig) -> Callable[[Any], Any] | None:
    """Wrap the server's ASGI application.

    :param config: the server configuration.
    :returns: a function taking an ASGI app and returning the wrapping ASGI app, or None.

    All implementations are called; wrappers are applied in plugin registration order, the
    first one ending up outermost.

    Artifact downloads may answer with the ASGI extension message
    ``http.response.zerocopysend`` (a file sent by the kernel) where the server offers it
    in ``scope["extensions"]``: a wrapper must pass messages it does not know through,
    or, to see every body byte, remove that key from the scope before calling the app
    (the download is then sent in ordinary body messages).
    """


@hookspec
def register_routes(app: Any, config: ServerConfig) -> None:
    """Add HTTP routes to the server.

    :param app: the ``fastapi.FastAPI`` application (routes added here get the same
        authentication, host checks and error handling as built-in ones).
    :param config: the server configuration.

    Declare each endpoint's authorization rule with ``tracklog.server.rule(action,
    resource)``; an endpoint without one requires the ``manage`` action. All
    implementations are called while the application is built.
    """


@hookspec
def check_startup(config: ServerConfig) -> None:
    """Check, before the server listens, what must hold for it to start.

    :param config: the server configuration.

    All implementations are called once, in the process that ``tracklog server`` started
    (before any worker). Raise :class:`tracklog.errors.TracklogError` to refuse to start:
    its message is printed as it is, on one line, and the server exits with status 1.
    """


@hookspec
def startup(app: Any, config: ServerConfig) -> None:
    """Work to do when a server process starts (check schemas, warm caches).

    :param app: the ``fastapi.FastAPI`` application.
    :param config: the server configuration.

    All implementations are called once per worker process before it accepts requests;
    an exception stops the server with the plugin's name in the message.
    """


# --- migration -------------------------------------------------------------------------


@hookspec(firstresult=True)
def migration_source(uri: str) -> Any | None:
    """Offer to read ``uri`` as the source of ``tracklog migrate`` when it holds data in a
    format that is not a tracklog store (an MLflow database, say).

    :param uri: the source the user named.
    :returns: a :class:`tracklog.importing.MigrationSource`, or None when this plugin does
        not recognise ``uri`` (the source is then opened as a tracklog store).

    First non-None result wins. Probe cheaply and import heavy libraries inside.
    """
