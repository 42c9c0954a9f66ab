"""``tracklog migrate``: copy everything from one store (or an MLflow database) to
another, ids kept; see :mod:`tracklog.importing`."""

from __future__ import annotations

import sys
import time

import click


@click.command()
@click.argument("source")
@click.argument("destination")
@click.option("--dry-run", is_flag=True, help="Read the source and count; write nothing.")
@click.option("--no-verify", is_flag=True,
              help="Skip reading each copied run back to compare counts and checksums.")
@click.option("--new-experiment-ids", is_flag=True,
              help="Create experiments under new ids where the destination cannot keep the "
                   "source's (a file store's ids do not fit a SQL store); run ids are kept.")
@click.option("--artifact-root", default=None,
              help="Default artifact root of the destination store (for new experiments).")
def migrate(source: str, destination: str, dry_run: bool, no_verify: bool,
            new_experiment_ids: bool, artifact_root: str | None) -> None:
    """Copy experiments, runs, params, tags and full metric histories from SOURCE to
    DESTINATION, keeping ids, names, times and lifecycle stages.

    SOURCE is any store URI tracklog can open, an MLflow tracking database
    (sqlite:///mlflow.db, postgresql://…), which is only read, or an MLflow-protocol
    server (http://host:5000; MLFLOW_TRACKING_TOKEN is sent as a bearer token).
    Interrupted, it resumes: complete runs are skipped and an unfinished one is written
    again."""
    from tracklog.importing import StoreSource
    from tracklog.importing import migrate as run_migration
    from tracklog.plugins import call_hook, load_plugins, resolve_store

    load_plugins()
    if source.startswith(("http://", "https://")):
        import os

        from tracklog.importing import RestSource

        src = RestSource(source, os.environ.get("MLFLOW_TRACKING_TOKEN"))
    else:
        src = call_hook("migration_source", uri=source)
    if src is None:
        src = StoreSource(resolve_store(source, None), source)
    dest = resolve_store(destination, artifact_root)
    tty = sys.stderr.isatty()
    started = last = time.monotonic()

    def progress(line: str) -> None:
        nonlocal last
        now = time.monotonic()
        if now - last >= (0.2 if tty else 10):
            last = now
            click.echo(("\r" if tty else "") + f"  {line} ({now - started:.0f} s)",
                       err=True, nl=not tty)

    click.echo(f"{'Counting' if dry_run else 'Migrating'} {src.describe()} -> {destination}",
               err=True)
    try:
        report = run_migration(src, dest, dry_run=dry_run, verify=not no_verify,
                               progress=progress, new_experiment_ids=new_experiment_ids)
    finally:
        src.close()
        dest.close()
    if tty:
        click.echo("", err=True)
    verb = "would copy" if dry_run else "copied"
    click.echo(
        f"{verb} {report.experiments} experiments, {report.runs} runs, {report.params} params, "
        f"{report.tags} tags, {report.points:,} metric points in "
        f"{time.monotonic() - started:.1f} s"
        + (f"; skipped {report.experiments_skipped} experiments and {report.runs_skipped} "
           f"runs already there" if report.experiments_skipped or report.runs_skipped else "")
    )
    if report.mismatches:
        for m in report.mismatches[:20]:
            click.echo(f"  mismatch: {m}", err=True)
        raise click.ClickException(f"{len(report.mismatches)} runs differ after copying")
    if not dry_run and not no_verify:
        click.echo(f"verified {report.runs} runs: counts and checksums match")
