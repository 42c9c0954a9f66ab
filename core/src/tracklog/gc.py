"""Garbage collection: permanently removing what users deleted.

Runs, experiments and logged models in the deleted lifecycle stage are removed for good:
their artifacts first, from whatever repository holds them, then their metadata. That
order makes an interrupted collection safe to run again: what lost its artifacts but
not its record is found and finished next time, and a record never outlives nothing.
One item that fails is reported and the others go on.
"""

from __future__ import annotations

import abc
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from tracklog import errors
from tracklog.entities import Experiment, LoggedModel, RunInfo, ViewType, now_ms

_DURATION = re.compile(r"^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")


def parse_older_than(text: str) -> int:
    """Milliseconds from MLflow's ``1d2h3m4s`` form (any part may be left out)."""
    match = _DURATION.match(text.strip())
    if not text.strip() or match is None:
        raise errors.invalid(
            f"--older-than {text!r} is not a duration like 30d, 12h, 1d2h3m4s")
    days, hours, minutes, seconds = (int(g or 0) for g in match.groups())
    return ((days * 24 + hours) * 60 + minutes) * 60_000 + seconds * 1000


class PurgeStore(abc.ABC):
    """The capability to find deleted records and remove them for good. A store offers it
    by inheriting this class next to :class:`tracklog.stores.TrackingStore`.

    ``deleted_before`` is an epoch-millisecond cutoff: only records deleted at or before
    it (None: any deleted record). Purging an unknown id does nothing, so a collection
    can be repeated; purging a record that is not deleted is INVALID_PARAMETER_VALUE."""

    @abc.abstractmethod
    def deleted_runs(
        self, deleted_before: int | None, experiment_ids: Sequence[str] | None = None
    ) -> list[RunInfo]:
        """Runs in the deleted stage (of the given experiments only, when given)."""

    @abc.abstractmethod
    def purge_run(self, run_id: str) -> None:
        """Remove a deleted run with its params, tags, metric histories, inputs and
        outputs."""

    @abc.abstractmethod
    def deleted_experiments(self, deleted_before: int | None) -> list[Experiment]:
        """Experiments in the deleted stage (their last update is when they were
        deleted)."""

    @abc.abstractmethod
    def purge_experiment(self, experiment_id: str) -> None:
        """Remove a deleted experiment with everything left in it: runs, datasets,
        logged models and tags."""

    @abc.abstractmethod
    def deleted_logged_models(
        self, deleted_before: int | None, experiment_ids: Sequence[str] | None = None
    ) -> list[LoggedModel]:
        """Logged models in the deleted stage (their last update is their deletion)."""

    @abc.abstractmethod
    def purge_logged_model(self, model_id: str) -> None:
        """Remove a deleted logged model with its tags, params and metrics."""


@dataclass
class GcReport:
    runs: list[str] = field(default_factory=list)
    experiments: list[str] = field(default_factory=list)
    logged_models: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)


def collect(
    store: object,
    delete_artifacts: Callable[[str], None],
    older_than_ms: int = 0,
    run_ids: Sequence[str] = (),
    experiment_ids: Sequence[str] = (),
    logged_model_ids: Sequence[str] = (),
    dry_run: bool = False,
    progress: Callable[[str], None] = lambda _: None,
) -> GcReport:
    """Remove deleted records of ``store`` (a tracking store that is a
    :class:`PurgeStore`). ``delete_artifacts(uri)`` removes everything under an artifact
    URI. Named ids limit the collection to them; a named run or logged model that is
    unknown or not deleted, or an unknown experiment, is refused before anything is
    removed. A named experiment that is not deleted loses its deleted runs and logged
    models only."""
    if not isinstance(store, PurgeStore):
        raise errors.invalid(
            f"The store ({type(store).__name__}) cannot remove records permanently")
    cutoff = now_ms() - older_than_ms
    report = GcReport()
    only_named = bool(run_ids or experiment_ids or logged_model_ids)
    runs, models = _named(store, run_ids, experiment_ids, logged_model_ids)

    def attempt(kind: str, ident: str, artifacts: str | None, purge: Callable[[], None],
                done: list[str]) -> None:
        try:
            if not dry_run:
                if artifacts:
                    delete_artifacts(artifacts)
                purge()
            done.append(ident)
            progress(f"{kind} {ident}")
        except Exception as exc:  # one failure is reported; the others go on
            report.failed.append(f"{kind} {ident}: {exc}")

    # Runs named, or all deleted runs (of the named experiments, when given).
    if not only_named or experiment_ids:
        runs += store.deleted_runs(cutoff, list(experiment_ids) or None)
    for info in runs:
        attempt("run", info.run_id, info.artifact_uri,
                partial(store.purge_run, info.run_id), report.runs)

    if not only_named or experiment_ids:
        models += store.deleted_logged_models(cutoff, list(experiment_ids) or None)
    for m in models:
        attempt("logged model", m.model_id, m.artifact_location,
                partial(store.purge_logged_model, m.model_id), report.logged_models)

    if not only_named or experiment_ids:
        exps = store.deleted_experiments(cutoff)
        if experiment_ids:
            wanted = set(experiment_ids)
            exps = [e for e in exps if e.experiment_id in wanted]
        for exp in exps:
            # Whatever is left in it (runs deleted with it) goes with it.
            seen = set(report.runs)
            left = [i for i in _all_runs(store, exp.experiment_id) if i.run_id not in seen]
            for info in left:
                attempt("run", info.run_id, info.artifact_uri,
                        partial(store.purge_run, info.run_id), report.runs)
            attempt("experiment", exp.experiment_id, exp.artifact_location,
                    partial(store.purge_experiment, exp.experiment_id),
                    report.experiments)
    return report


def _named(store: Any, run_ids: Sequence[str], experiment_ids: Sequence[str],
           logged_model_ids: Sequence[str]) -> tuple[list[RunInfo], list[LoggedModel]]:
    """The named runs and logged models, checked before anything is removed: an id that
    is unknown or not deleted is INVALID_PARAMETER_VALUE naming it, and nothing goes."""
    problems: list[str] = []
    runs: list[RunInfo] = []
    for rid in run_ids:
        try:
            info = store.get_run(rid).info
        except errors.TracklogError as exc:
            if exc.error_code != errors.ErrorCode.RESOURCE_DOES_NOT_EXIST:
                raise
            problems.append(f"run {rid} does not exist")
            continue
        if info.lifecycle_stage != "deleted":
            problems.append(f"run {rid} is not deleted (delete it first)")
        else:
            runs.append(info)
    models: list[LoggedModel] = []
    if logged_model_ids:
        deleted = {m.model_id: m for m in store.deleted_logged_models(None)}
        for mid in logged_model_ids:
            if mid in deleted:
                models.append(deleted[mid])
            else:
                problems.append(f"logged model {mid} is not among the deleted models")
    for eid in experiment_ids:
        try:
            store.get_experiment(eid)
        except errors.TracklogError as exc:
            if exc.error_code != errors.ErrorCode.RESOURCE_DOES_NOT_EXIST:
                raise
            problems.append(f"experiment {eid} does not exist")
    if problems:
        raise errors.invalid("Nothing removed: " + "; ".join(problems))
    return runs, models


def _all_runs(store: Any, experiment_id: str) -> list[RunInfo]:
    """Every run of the experiment, any lifecycle stage (``store`` is a tracking store)."""
    from tracklog.search.tokens import all_pages

    return [r.info for r in all_pages(lambda token: store.search_runs(
        [experiment_id], run_view_type=ViewType.ALL, max_results=1000, page_token=token))]


def artifact_deleter(
    artifacts_destination: str | None, resolve_repository: Callable[[str], Any]
) -> Callable[[str], None]:
    """``delete_artifacts(uri)`` for :func:`collect`: an ``mlflow-artifacts:`` location
    lies below ``artifacts_destination`` (a server's proxied root); any other is opened
    through the artifact plugins. The repository's own delete removes what is left."""
    from tracklog.artifacts.copying import resolve_location
    from tracklog.artifacts.locations import check_artifact_location

    def delete(uri: str) -> None:
        # A location written to a store by other means is checked as the server does.
        check_artifact_location(uri, "artifact_uri", proxy_layout=False)
        resolve_repository(resolve_location(uri, artifacts_destination)).delete_artifacts(None)

    return delete
