"""The ``tracklog`` command line. Plugins add subcommands through ``register_commands``."""

from __future__ import annotations

import json
from dataclasses import asdict

import click

from tracklog import __version__
from tracklog.errors import PluginError, TracklogError


class _Group(click.Group):
    """Shows tracklog and plugin errors as one clear line instead of a traceback."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except (PluginError, TracklogError) as exc:
            raise click.ClickException(str(exc)) from exc


@click.group(cls=_Group)
@click.version_option(__version__, prog_name="tracklog")
def cli() -> None:
    """tracklog: experiment tracking that speaks the MLflow protocol."""


@cli.group(cls=_Group, invoke_without_command=True)
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
@click.pass_context
def plugins(ctx: click.Context, as_json: bool) -> None:
    """List installed plugins, the hooks they implement and the URI schemes they serve."""
    if ctx.invoked_subcommand is not None:
        return
    from tracklog.plugins import plugin_infos

    infos = plugin_infos()
    if as_json:
        click.echo(json.dumps([asdict(i) for i in infos], indent=2))
        return
    rows = [("plugin", "distribution", "version", "schemes", "hooks")]
    for i in infos:
        schemes = [f"{s}:// (store)" for s in i.tracking_schemes]
        schemes += [f"{s}:// (artifacts)" for s in i.artifact_schemes]
        rows.append(
            (i.name, i.distribution or "-", i.version or "-", ", ".join(schemes) or "-",
             ", ".join(i.hooks))
        )
    widths = [max(len(r[c]) for r in rows) for c in range(len(rows[0]) - 1)]
    for r in rows:
        click.echo("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=False)) + "  " + r[-1])


@plugins.command("new")
@click.argument("name")
@click.option("--kind", required=True, type=click.Choice(["store", "artifacts", "auth", "routes"]),
              help="What the plugin provides.")
@click.option("--dir", "directory", type=click.Path(file_okay=False), default=None,
              help="Where to write it (must not exist, or be empty). Default: ./tracklog-NAME.")
def new_plugin(name: str, kind: str, directory: str | None) -> None:
    """Write a new plugin distribution NAME that works and passes its own tests."""
    from tracklog.scaffold import Names, write_plugin

    target, files = write_plugin(name, kind, directory)
    click.echo(f"Wrote {Names.of(name).distribution} ({kind} plugin) in {target}:")
    for path in files:
        click.echo(f"  {path}")
    click.echo(f"Next: cd {target} && pip install -e '.[test]' && pytest")


def _builtin_commands() -> None:
    from tracklog.gc_cli import gc
    from tracklog.migrate_cli import migrate

    cli.add_command(gc)
    cli.add_command(migrate)


_builtin_commands()


def main() -> None:
    from tracklog.plugins import load_plugins, pm

    try:
        load_plugins()
        pm.hook.register_commands(cli=cli)
    except (PluginError, TracklogError) as exc:
        click.echo(f"Error: {exc}", err=True)
        raise SystemExit(1) from None
    cli()
