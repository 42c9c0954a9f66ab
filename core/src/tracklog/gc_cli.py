"""``tracklog gc``: permanently remove deleted runs, experiments and logged models, with
their artifacts; see :mod:`tracklog.gc`."""

from __future__ import annotations

import os
import sys
from urllib.parse import urlparse

import click


def _split(value: str | None) -> list[str]:
    return [v.strip() for v in (value or "").split(",") if v.strip()]


@click.command()
@click.option("--backend-store-uri", envvar="TRACKLOG_BACKEND_STORE_URI", required=True,
              help="The tracking store to collect in (as given to tracklog server).")
@click.option("--artifacts-destination", envvar="TRACKLOG_ARTIFACTS_DESTINATION",
              default=None,
              help="Where the server keeps proxied artifacts (mlflow-artifacts: URIs).")
@click.option("--older-than", default=None,
              help="Only what was deleted at least this long ago: 30d, 12h, 1d2h3m4s.")
@click.option("--run-ids", default=None, help="Comma-separated run ids (deleted ones).")
@click.option("--experiment-ids", default=None,
              help="Comma-separated experiment ids: the deleted ones go whole; of the "
                   "others, their deleted runs and logged models.")
@click.option("--logged-model-ids", default=None, help="Comma-separated logged model ids.")
@click.option("--dry-run", is_flag=True, help="List what would be removed; remove nothing.")
def gc(backend_store_uri: str, artifacts_destination: str | None, older_than: str | None,
       run_ids: str | None, experiment_ids: str | None, logged_model_ids: str | None,
       dry_run: bool) -> None:
    """Permanently remove runs, experiments and logged models in the deleted stage:
    their artifacts first, then their records, so an interrupted collection finishes
    when run again. What fails is reported; the rest goes on."""
    from tracklog.gc import collect, parse_older_than
    from tracklog.plugins import load_plugins, resolve_repository, resolve_store

    load_plugins()
    older = parse_older_than(older_than) if older_than else 0
    store = resolve_store(backend_store_uri, None)

    def delete_artifacts(uri: str) -> None:
        parsed = urlparse(uri)
        if parsed.scheme == "mlflow-artifacts":
            if not artifacts_destination:
                raise click.ClickException(
                    f"{uri} is served by the artifact proxy: pass --artifacts-destination")
            uri = artifacts_destination.rstrip("/") + "/" + parsed.path.lstrip("/")
        repo = resolve_repository(uri)
        repo.delete_artifacts(None)
        local = uri[len("file://"):] if uri.startswith("file://") else (
            uri if "://" not in uri and not uri.startswith("mlflow-artifacts:") else None)
        if local:
            # A local run folder leaves no empty directories behind.
            for d in (local, os.path.dirname(local.rstrip("/"))):
                try:
                    os.rmdir(d)
                except OSError:
                    break

    tty = sys.stderr.isatty()

    def progress(line: str) -> None:
        if tty:
            click.echo(f"\r  removed {line}".ljust(70), err=True, nl=False)

    try:
        report = collect(store, delete_artifacts, older, _split(run_ids),
                         _split(experiment_ids), _split(logged_model_ids), dry_run, progress)
    finally:
        store.close()
    if tty:
        click.echo("", err=True)
    verb = "would remove" if dry_run else "removed"
    for kind, ids in (("run", report.runs), ("logged model", report.logged_models),
                      ("experiment", report.experiments)):
        if dry_run or not tty:
            for i in ids:
                click.echo(f"{verb} {kind} {i}")
    click.echo(f"{verb} {len(report.runs)} runs, {len(report.logged_models)} logged models, "
               f"{len(report.experiments)} experiments")
    for line in report.failed:
        click.echo(f"failed: {line}", err=True)
    if report.failed:
        raise SystemExit(1)
