"""The ``tracklog`` command line. Plugins add subcommands through ``register_commands``.

A broken plugin stops every command but ``tracklog plugins`` (which shows it with its
error) and ``tracklog --help``, with one line naming the plugin.
"""

from __future__ import annotations

import json
import textwrap
from dataclasses import asdict
from typing import Any

import click

from tracklog import __version__
from tracklog.errors import PluginError, TracklogError

#: Width the ``tracklog plugins`` table keeps within.
TABLE_WIDTH = 100


class _Group(click.Group):
    """Shows tracklog and plugin errors as one clear line instead of a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (PluginError, TracklogError) as exc:
            raise click.ClickException(str(exc)) from exc

    def format_epilog(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        super().format_epilog(ctx, formatter)
        from tracklog.plugins import plugin_infos

        broken = [i for i in plugin_infos() if i.error is not None]
        if broken:
            with formatter.section("Broken plugins (see tracklog plugins)"):
                formatter.write_dl([(i.name, i.error or "") for i in broken])


@click.group(cls=_Group)
@click.version_option(__version__, prog_name="tracklog")
@click.pass_context
def cli(ctx: click.Context) -> None:
    """tracklog: experiment tracking that speaks the MLflow protocol."""
    if ctx.invoked_subcommand != "plugins":
        from tracklog.plugins import check_plugins

        check_plugins()


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
    for line in _table(infos):
        click.echo(line)


def _table(infos: list) -> list[str]:
    """One row per plugin (name, distribution, version, schemes), the schemes wrapped in
    their column; hooks and any error on indented lines under it, all within TABLE_WIDTH."""
    head = ("plugin", "distribution", "version")
    rows = [(i.name, i.distribution or "-", i.version or "-") for i in infos]
    widths = [max(len(r[c]) for r in [head, *rows]) for c in range(3)]
    indent = sum(widths) + 2 * len(widths)
    room = max(TABLE_WIDTH - indent, 24)
    lines = ["  ".join(v.ljust(w) for v, w in zip(head, widths, strict=True)) + "  schemes"]
    for info, row in zip(infos, rows, strict=True):
        schemes = [f"{s}:// (store)" for s in info.tracking_schemes]
        schemes += [f"{s}:// (artifacts)" for s in info.artifact_schemes]
        cells = _pack(schemes, room) or ["-"]
        first = "  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True))
        lines.append(f"{first}  {cells[0]}".rstrip())
        lines += [" " * indent + cell for cell in cells[1:]]
        if info.hooks:
            hooks = _pack(info.hooks, TABLE_WIDTH - 11)
            lines += ["    hooks: " + hooks[0], *(" " * 11 + h for h in hooks[1:])]
        if info.error:
            lines += textwrap.wrap(info.error, TABLE_WIDTH, initial_indent="    error: ",
                                   subsequent_indent=" " * 11, break_on_hyphens=False)
    return lines


def _pack(items: list[str], width: int) -> list[str]:
    """``items`` joined by commas into lines of at most ``width``, never splitting one."""
    lines: list[str] = []
    for item in items:
        if lines and len(lines[-1]) + len(item) + 3 <= width:  # room for a comma after
            lines[-1] += ", " + item
        else:
            if lines:
                lines[-1] += ","
            lines.append(item)
    return lines


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
    from tracklog.plugins import call_hook, mark_broken

    call_hook("register_commands", cli=cli, on_error=mark_broken)
    cli()
