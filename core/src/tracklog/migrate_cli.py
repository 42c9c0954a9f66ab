"""``tracklog migrate``: copy everything from one store (an MLflow database, or an
MLflow-protocol server) to another, ids kept; see :mod:`tracklog.importing`."""

from __future__ import annotations

from typing import Any

import click


@click.command()
@click.argument("source")
@click.argument("destination")
@click.option("--dry-run", is_flag=True, help="Read the source and count; write nothing.")
@click.option("--no-verify", is_flag=True,
              help="Skip reading each copied record back to compare counts and checksums.")
@click.option("--new-experiment-ids", is_flag=True,
              help="Create experiments under new ids where the destination cannot keep the "
                   "source's (a file store's ids do not fit a SQL store); run ids are kept.")
@click.option("--artifact-root", default=None,
              help="Default artifact root of the destination store (for new experiments).")
@click.option("--artifacts", "copy_artifacts", is_flag=True,
              help="Also copy the artifacts of runs, logged models and traces into the "
                   "destination's artifact locations (files already there with the same "
                   "size are skipped).")
@click.option("--artifacts-destination", default=None,
              help="With --artifacts: where the destination server keeps proxied artifacts "
                   "(its --artifacts-destination), for mlflow-artifacts: locations.")
@click.option("--source-artifacts-destination", default=None,
              help="With --artifacts: where the source server kept proxied artifacts, to "
                   "read mlflow-artifacts: locations of a database source directly (a "
                   "server source is read through its artifact proxy).")
def migrate(source: str, destination: str, dry_run: bool, no_verify: bool,
            new_experiment_ids: bool, artifact_root: str | None, copy_artifacts: bool,
            artifacts_destination: str | None,
            source_artifacts_destination: str | None) -> None:
    """Copy experiments, runs (params, tags, full metric histories, dataset inputs,
    model inputs and outputs), logged models, traces with their assessments, and the
    model registry from SOURCE to DESTINATION, keeping ids, names, times and lifecycle
    stages.

    SOURCE is any store URI tracklog can open, an MLflow tracking database
    (sqlite:///mlflow.db, postgresql://…), which is only read, or an MLflow-protocol
    server (http://host:5000; MLFLOW_TRACKING_TOKEN is sent as a bearer token).
    Interrupted, it resumes: complete records are skipped and an unfinished run is
    written again."""
    from tracklog import errors
    from tracklog.clitools import CommandError

    try:
        _migrate(source, destination, dry_run, no_verify, new_experiment_ids, artifact_root,
                 copy_artifacts, artifacts_destination, source_artifacts_destination)
    except errors.TracklogError as exc:
        raise CommandError(exc.message) from None


def _open_source(source: str) -> Any:
    import os

    from tracklog import errors
    from tracklog.clitools import CommandError, require_existing_store
    from tracklog.importing import RestSource, StoreSource
    from tracklog.plugins import call_hook, resolve_store

    if source.startswith(("http://", "https://")):
        rest = RestSource(source, os.environ.get("MLFLOW_TRACKING_TOKEN"))
        try:
            rest.check()
        except errors.TracklogError:
            rest.close()
            raise
        return rest
    try:
        src = call_hook("migration_source", uri=source)
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    if src is None:
        require_existing_store(source, "source")
        src = StoreSource(resolve_store(source, None), source)
    return src


def _migrate(source: str, destination: str, dry_run: bool, no_verify: bool,
             new_experiment_ids: bool, artifact_root: str | None, copy_artifacts: bool,
             artifacts_destination: str | None,
             source_artifacts_destination: str | None) -> None:
    import gc

    from tracklog.importing import migrate as run_migration
    from tracklog.plugins import load_plugins, resolve_store
    from tracklog.progress import Progress

    load_plugins()
    if ":" not in destination and "/" not in destination:
        from tracklog.clitools import CommandError

        raise CommandError(f"The destination {destination!r} is not a store URI")
    src = _open_source(source)
    try:
        dest = resolve_store(destination, artifact_root)
    except BaseException:
        src.close()
        raise
    copier = _copier(src, artifacts_destination, source_artifacts_destination) \
        if copy_artifacts and not dry_run else None
    click.echo(f"{'Counting' if dry_run else 'Migrating'} {src.describe()} -> {destination}",
               err=True)
    progress = Progress("migrating" if not dry_run else "counting", "runs")
    # The modules and stores loaded so far live as long as the command: out of the
    # collector's sight, its full collections scan only what the copy builds.
    gc.freeze()
    try:
        report = run_migration(src, dest, dry_run=dry_run, verify=not no_verify,
                               progress=progress.step, new_experiment_ids=new_experiment_ids,
                               artifacts=copier)
    finally:
        progress.close()
        src.close()
        dest.close()
    verb = "would copy" if dry_run else "copied"
    click.echo(
        f"{verb} {report.experiments} experiments, {report.runs} runs, {report.params} params, "
        f"{report.tags} tags, {report.points:,} metric points, {report.logged_models} logged "
        f"models, {report.traces} traces, {report.registered_models} registered models "
        f"({report.model_versions} versions) in {progress.elapsed:.1f} s"
        + (f"; skipped {report.experiments_skipped} experiments, {report.runs_skipped} "
           f"runs and {report.others_skipped} other records already there"
           if report.experiments_skipped or report.runs_skipped or report.others_skipped
           else "")
    )
    for kind in report.not_copied:
        click.echo(f"not copied: {kind.replace('_', ' ')} (the destination cannot import "
                   f"them with their ids)", err=True)
    if copier is not None:
        r = copier.report
        click.echo(f"artifacts: copied {r.files} files ({r.bytes:,} bytes), skipped "
                   f"{r.skipped} already there")
    for line in report.conflicts:
        click.echo(f"conflict: {line}", err=True)
    for m in report.mismatches[:20]:
        click.echo(f"  mismatch: {m}", err=True)
    if report.mismatches:
        raise click.ClickException(f"{len(report.mismatches)} records differ after copying")
    if report.conflicts:
        raise click.ClickException(
            f"{len(report.conflicts)} runs not copied: their ids belong to runs of other "
            f"experiments in the destination")
    if not dry_run and not no_verify:
        click.echo(f"verified {report.runs} runs, {report.logged_models} logged models, "
                   f"{report.traces} traces and {report.registered_models} registered "
                   f"models: counts and checksums match")


def _copier(src: Any, artifacts_destination: str | None,
            source_artifacts_destination: str | None) -> Any:
    from tracklog.artifacts.copying import ArtifactCopier, proxied_path, repository_tree
    from tracklog.plugins import resolve_repository

    def tree(uri: str) -> Any:
        through_proxy = getattr(src, "artifact_tree", None)
        if through_proxy is not None and proxied_path(uri) is not None:
            return through_proxy(uri)
        return repository_tree(uri, source_artifacts_destination, resolve_repository)

    return ArtifactCopier(tree, artifacts_destination, resolve_repository,
                          source_artifacts_destination)
