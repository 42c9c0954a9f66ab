"""``tracklog gc``: permanently remove deleted runs, experiments and logged models, with
their artifacts; see :mod:`tracklog.gc`."""

from __future__ import annotations

from typing import Any

import click


def _split(value: str | None) -> list[str]:
    return [v.strip() for v in (value or "").split(",") if v.strip()]


@click.command()
@click.option("--backend-store-uri", envvar="TRACKLOG_BACKEND_STORE_URI", default=None,
              help="The tracking store to collect in (as given to tracklog server).")
@click.option("--tracking-uri", default=None,
              help="Or a running tracklog server (http(s)://…) to collect through: it "
                   "removes records and artifacts itself (its rule: manage). "
                   "MLFLOW_TRACKING_TOKEN is sent as a bearer token.")
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
def gc(backend_store_uri: str | None, tracking_uri: str | None,
       artifacts_destination: str | None, older_than: str | None, run_ids: str | None,
       experiment_ids: str | None, logged_model_ids: str | None, dry_run: bool) -> None:
    """Permanently remove runs, experiments and logged models in the deleted stage:
    their artifacts first, then their records, so an interrupted collection finishes
    when run again. What fails is reported; the rest goes on. Named ids that are
    unknown or not deleted stop the command before anything is removed."""
    from tracklog import errors
    from tracklog.clitools import CommandError

    if bool(backend_store_uri) == bool(tracking_uri):
        raise CommandError("Give either --backend-store-uri or --tracking-uri")
    try:
        if tracking_uri:
            report = _through_server(tracking_uri, older_than, _split(run_ids),
                                     _split(experiment_ids), _split(logged_model_ids),
                                     dry_run)
        else:
            assert backend_store_uri is not None
            report = _local(backend_store_uri, artifacts_destination, older_than,
                            _split(run_ids), _split(experiment_ids),
                            _split(logged_model_ids), dry_run)
    except errors.TracklogError as exc:
        raise CommandError(exc.message) from None
    verb = "would remove" if dry_run else "removed"
    for kind, ids in (("run", report.runs), ("logged model", report.logged_models),
                      ("experiment", report.experiments)):
        for i in ids:
            click.echo(f"{verb} {kind} {i}")
    click.echo(f"{verb} {len(report.runs)} runs, {len(report.logged_models)} logged models, "
               f"{len(report.experiments)} experiments")
    for line in report.failed:
        click.echo(f"failed: {line}", err=True)
    if report.failed:
        raise SystemExit(1)


def _local(backend_store_uri: str, artifacts_destination: str | None,
           older_than: str | None, run_ids: list[str], experiment_ids: list[str],
           logged_model_ids: list[str], dry_run: bool) -> Any:
    from tracklog.clitools import require_existing_store
    from tracklog.gc import artifact_deleter, collect, parse_older_than
    from tracklog.plugins import load_plugins, resolve_repository, resolve_store
    from tracklog.progress import Progress

    load_plugins()
    older = parse_older_than(older_than) if older_than else 0
    require_existing_store(backend_store_uri, "store")
    store = resolve_store(backend_store_uri, None)
    progress = Progress("collecting", "records")
    try:
        return collect(store, artifact_deleter(artifacts_destination, resolve_repository),
                       older, run_ids, experiment_ids, logged_model_ids, dry_run,
                       progress.step)
    finally:
        progress.close()
        store.close()


def _through_server(url: str, older_than: str | None, run_ids: list[str],
                    experiment_ids: list[str], logged_model_ids: list[str],
                    dry_run: bool) -> Any:
    import os

    import httpx

    from tracklog import errors
    from tracklog.gc import GcReport, parse_older_than

    if not url.startswith(("http://", "https://")):
        raise errors.invalid(f"--tracking-uri {url!r} is not an http(s):// URL")
    if older_than:
        parse_older_than(older_than)  # refused here, before the request
    token = os.environ.get("MLFLOW_TRACKING_TOKEN")
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    body: dict[str, Any] = {"run_ids": run_ids, "experiment_ids": experiment_ids,
                            "logged_model_ids": logged_model_ids, "dry_run": dry_run}
    if older_than:
        body["older_than"] = older_than
    try:
        r = httpx.post(url.rstrip("/") + "/api/2.0/tracklog/gc", json=body, headers=headers,
                       timeout=3600)
    except httpx.HTTPError as exc:
        raise errors.invalid(f"Cannot reach {url}: {exc}") from None
    if r.status_code == 404:
        raise errors.invalid(f"{url} does not offer garbage collection (MLflow's protocol "
                             f"has none; a tracklog server does)")
    try:
        answer = r.json()
    except ValueError:
        answer = {}
    if r.status_code != 200:
        raise errors.invalid(f"{url} answered {r.status_code}: "
                             f"{answer.get('message') or r.text[:200]}")
    return GcReport(answer.get("runs", []), answer.get("experiments", []),
                    answer.get("logged_models", []), answer.get("failed", []))
