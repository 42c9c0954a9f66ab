"""Built-in plugin: the ``tracklog server`` command (the options of ``mlflow server``).

Every option can also come from a ``TRACKLOG_*`` environment variable (shown in
``--help``) or from a dotenv file given with ``--env-file``. The options plugins declare
(``register_options``) are added as flags ``--<plugin>-<name>``.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import click

from tracklog import config as cfg
from tracklog.plugins import hookimpl

if TYPE_CHECKING:
    from tracklog.options import Option


def _read_env_file(path: str) -> dict[str, str]:
    values: dict[str, str] = {}
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            if line.startswith("export "):
                line = line[len("export "):]
            key, sep, value = line.partition("=")
            if not sep or not key.strip():
                raise click.BadParameter(f"{path}:{number}: expected KEY=VALUE",
                                         param_hint="--env-file")
            value = value.strip()
            if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
                value = value[1:-1]
            values[key.strip()] = value
    return values


def _split(values: tuple[str, ...] | str | None) -> list[str]:
    if not values:
        return []
    if isinstance(values, str):
        values = (values,)
    return [v.strip() for item in values for v in item.split(",") if v.strip()]


def _option(*names: str, env: str, **kwargs: Any) -> Any:
    return click.option(*names, envvar=f"TRACKLOG_{env}", show_envvar=True, **kwargs)


@click.command("server")
@_option("--backend-store-uri", env="BACKEND_STORE_URI", default=cfg.DEFAULT_BACKEND_STORE_URI,
         show_default=True, help="Tracking store URI (sqlite:///…, postgresql://…, file:…).")
@_option("--default-artifact-root", env="DEFAULT_ARTIFACT_ROOT", default=None,
         help="Artifact root of new experiments. Default: mlflow-artifacts:/ when artifacts "
              "are served.")
@_option("--serve-artifacts/--no-serve-artifacts", env="SERVE_ARTIFACTS", default=True,
         show_default=True, help="Proxy artifact uploads and downloads through the server.")
@_option("--artifacts-destination", env="ARTIFACTS_DESTINATION",
         default=cfg.DEFAULT_ARTIFACTS_DESTINATION, show_default=True,
         help="Where proxied artifacts are stored (local path or any artifact URI).")
@_option("--artifacts-only", env="ARTIFACTS_ONLY", is_flag=True, default=False,
         help="Serve only the artifact proxy, no tracking routes.")
@_option("--host", "-h", env="HOST", default=cfg.DEFAULT_HOST, show_default=True)
@_option("--port", "-p", env="PORT", default=cfg.DEFAULT_PORT, type=int, show_default=True)
@_option("--workers", "-w", env="WORKERS", default=1, type=click.IntRange(min=1),
         show_default=True)
@_option("--allowed-hosts", env="ALLOWED_HOSTS", default=None,
         help="Comma-separated extra Host header values or patterns (*.example.com, *).")
@_option("--cors-allowed-origins", env="CORS_ALLOWED_ORIGINS", default=None,
         help="Comma-separated origins allowed cross-origin access (* for any).")
@_option("--static-prefix", env="STATIC_PREFIX", default="",
         help="Prefix for every route, e.g. /tracklog.")
@_option("--dev", env="DEV", is_flag=True, default=False,
         help="Reload on code changes and log at debug level.")
@_option("--expose-prometheus", env="EXPOSE_PROMETHEUS", default=None, metavar="DIR",
         help="Serve Prometheus metrics on /metrics; DIR holds multiprocess files.")
@_option("--verify-artifacts-write", env="VERIFY_ARTIFACTS_WRITE", is_flag=True, default=False,
         help="At start, also write and delete a probe file in the artifact destination.")
@_option("--presigned-downloads", env="PRESIGNED_DOWNLOADS", is_flag=True, default=False,
         help="Let clients download artifacts straight from the store through presigned "
              "URLs, where the artifact plugin offers them; clients must reach the store.")
@_option("--header-timeout", env="HEADER_TIMEOUT", default=cfg.DEFAULT_HEADER_TIMEOUT,
         type=click.FloatRange(min=0), show_default=True,
         help="Seconds a client may take to send a request's headers (0: no limit); late "
              "ones get 408.")
@_option("--body-timeout", env="BODY_TIMEOUT", default=cfg.DEFAULT_BODY_TIMEOUT,
         type=click.FloatRange(min=0), show_default=True,
         help="Seconds a request body may send nothing (0: no limit); an idle body gets 408 "
              "and nothing of it is kept.")
@_option("--max-header-size", env="MAX_HEADER_SIZE", default=cfg.DEFAULT_MAX_HEADER_SIZE,
         type=click.IntRange(min=1024), show_default=True,
         help="Largest request line plus headers in bytes; larger ones get 431.")
@_option("--artifact-uploads", env="ARTIFACT_UPLOADS",
         default=cfg.DEFAULT_ARTIFACT_UPLOADS, type=click.IntRange(min=1), show_default=True,
         help="Artifact uploads written at once (a thread pool of their own).")
@_option("--quiet", "-q", env="QUIET", is_flag=True, default=False,
         help="Do not log a line per request (method, path, status, duration).")
@_option("--uvicorn-opts", env="UVICORN_OPTS", default=None,
         help='Extra uvicorn options, e.g. "--timeout-keep-alive 60".')
@_option("--env-file", env="ENV_FILE", default=None,
         type=click.Path(exists=True, dir_okay=False),
         help="dotenv file loaded into the environment; its TRACKLOG_* values fill options "
              "not given on the command line.")
@click.pass_context
def server_command(ctx: click.Context, **opts: Any) -> None:
    """Run the MLflow-compatible tracking server."""
    from tracklog.server.hosts import AllowedHosts
    from tracklog.server.runner import parse_uvicorn_opts, serve

    if opts["env_file"]:
        loaded = _read_env_file(opts["env_file"])
        for key, value in loaded.items():
            os.environ.setdefault(key, value)
        for param in ctx.command.params:
            source = ctx.get_parameter_source(param.name)
            env_name = getattr(param, "envvar", None)
            if (source == click.core.ParameterSource.DEFAULT and isinstance(env_name, str)
                    and env_name in loaded):
                opts[param.name] = param.type_cast_value(ctx, loaded[env_name]) \
                    if not getattr(param, "is_flag", False) else \
                    loaded[env_name].lower() in ("1", "true", "yes", "on")
    _take_plugin_flags(opts)
    try:
        uvicorn_opts = parse_uvicorn_opts(opts["uvicorn_opts"])
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--uvicorn-opts") from None
    try:
        AllowedHosts(_split(opts["allowed_hosts"]))
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--allowed-hosts") from None
    config = cfg.ServerConfig(
        backend_store_uri=opts["backend_store_uri"],
        default_artifact_root=opts["default_artifact_root"] or None,
        serve_artifacts=opts["serve_artifacts"],
        artifacts_destination=opts["artifacts_destination"],
        artifacts_only=opts["artifacts_only"],
        host=opts["host"],
        port=opts["port"],
        workers=opts["workers"],
        allowed_hosts=_split(opts["allowed_hosts"]),
        cors_allowed_origins=_split(opts["cors_allowed_origins"]),
        static_prefix=opts["static_prefix"] or "",
        dev=opts["dev"],
        expose_prometheus=opts["expose_prometheus"] or None,
        verify_artifacts_write=opts["verify_artifacts_write"],
        presigned_downloads=opts["presigned_downloads"],
        header_timeout=opts["header_timeout"],
        body_timeout=opts["body_timeout"],
        max_header_size=opts["max_header_size"],
        artifact_uploads=opts["artifact_uploads"],
        access_log=not opts["quiet"],
    )
    serve(config, uvicorn_opts)


def _param_name(option: Option) -> str:
    return option.flag[2:].replace("-", "_")


def _plugin_flag(option: Option) -> click.Option:
    shown = f"env var: {option.variable}; default: {option.default}"
    if option.type is bool:
        return click.Option([f"{option.flag}/--no-{option.flag[2:]}", _param_name(option)],
                            default=None, help=f"{option.help} [{shown}]")
    # Taken as text and converted at start, so a bad value is one line like a bad variable.
    return click.Option([option.flag, _param_name(option)], default=None,
                        metavar=option.type.__name__.upper(), help=f"{option.help} [{shown}]")


def _take_plugin_flags(opts: dict[str, Any]) -> None:
    """Put the plugin flags given into the environment, where every worker process and
    the plugin itself read them, then check every plugin option once."""
    from tracklog.options import convert
    from tracklog.plugins import check_options, plugin_options

    for option in plugin_options():
        value = opts.pop(_param_name(option), None)
        if isinstance(value, bool):
            os.environ[option.variable] = str(value).lower()
        elif value is not None:
            convert(value, option.type, option.flag, minimum=option.minimum)
            os.environ[option.variable] = value
    check_options()


@hookimpl
def register_commands(cli: click.Group) -> None:
    from tracklog.plugins import plugin_options

    taken = {p.name for p in server_command.params}
    for option in plugin_options():
        if _param_name(option) not in taken:
            server_command.params.append(_plugin_flag(option))
            taken.add(_param_name(option))
    cli.add_command(server_command)
