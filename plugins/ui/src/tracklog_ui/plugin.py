"""Plugin registration: the web UI's pages and assets, added through ``register_routes``.
Jinja2 and the page modules are imported only when the server builds its application."""

from typing import Any

from tracklog.plugins import hookimpl


@hookimpl
def register_routes(app: Any, config: Any) -> None:
    from tracklog_ui.pages import install

    install(app, config)
