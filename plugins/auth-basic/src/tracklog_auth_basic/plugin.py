"""tracklog-auth-basic's hooks. Off unless ``TRACKLOG_AUTH=basic``; everything heavy
(SQLAlchemy, argon2) is imported when the server starts with it on."""

from __future__ import annotations

from typing import Any

from tracklog import hookimpl


def _on() -> bool:
    from tracklog_auth_basic.settings import enabled

    return enabled()


@hookimpl
def register_options(register: Any) -> None:
    from tracklog_auth_basic.options import ALL

    for option in ALL:
        register(option)


@hookimpl
def register_commands(cli: Any) -> None:
    from tracklog_auth_basic.cli import auth

    cli.add_command(auth)


@hookimpl
def auth_active(config: Any) -> bool:
    return _on()


@hookimpl
def check_startup(config: Any) -> None:
    """Refuse to start, in one line, with auth on and no administrator to be had."""
    if not _on():
        return
    from tracklog_auth_basic.runtime import Runtime

    runtime = Runtime(config, None)
    try:
        runtime.ensure_admin()
    finally:
        runtime.store.close()


@hookimpl
def startup(app: Any, config: Any) -> None:
    if not _on():
        return
    from tracklog_auth_basic.runtime import runtime_of

    runtime_of(app, config).ensure_admin()


@hookimpl
def asgi_middleware(config: Any) -> Any:
    if not _on():
        return None
    from tracklog.server.app import normalize_prefix
    from tracklog_auth_basic.login import redirect_to_sign_in

    return redirect_to_sign_in(normalize_prefix(config.static_prefix))


@hookimpl
def register_routes(app: Any, config: Any) -> None:
    if not _on():
        return
    from tracklog_auth_basic.routes import install

    install(app, config)


@hookimpl
def authenticate(request: Any, config: Any) -> Any:
    if not _on():
        return None
    from tracklog_auth_basic.runtime import runtime_of

    return runtime_of(request.app, config).authenticate(request)


@hookimpl
def authorize(identity: Any, action: str, resource: dict[str, Any]) -> bool | None:
    from tracklog_auth_basic.runtime import Caller

    if not isinstance(identity, Caller):
        return None
    return identity.runtime.allowed(identity, action, resource)


@hookimpl
def readable(identity: Any, kind: str) -> Any:
    from tracklog_auth_basic.runtime import Caller

    if not isinstance(identity, Caller):
        return None
    answer = identity.runtime.readable(identity, kind)
    if answer is None:
        return None
    from tracklog.server import Readable

    only, hidden = answer
    return Readable(only=only, hidden=hidden)


@hookimpl
def resource_renamed(identity: Any, resource: dict[str, Any],
                     renamed_to: dict[str, Any]) -> None:
    from tracklog_auth_basic.runtime import Caller

    if isinstance(identity, Caller):
        identity.runtime.renamed(resource, renamed_to)


@hookimpl
def resource_created(identity: Any, resource: dict[str, Any]) -> None:
    from tracklog_auth_basic.runtime import Caller

    if isinstance(identity, Caller):
        identity.runtime.created(identity, resource)
