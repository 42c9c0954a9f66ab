"""The tracking-store contract.

A backend plugin subclasses :class:`TrackingStore` (every abstract method is required,
Python refuses to instantiate a subclass that misses one) and registers a factory for its
URI schemes through the ``register_tracking_stores`` hook. Optional capabilities are
separate ABCs a store also inherits from: :class:`ModelRegistryStore` (the model
registry), :class:`TraceStore` (GenAI traces), :class:`QueuedWrites` (small writes
handed over without waiting) and :class:`EncodedRunSearch` (search pages already in the
wire form). :func:`registry_of` and :func:`traces_of` turn an absent
capability into a clear NOT_IMPLEMENTED error.

Division of labour: callers (the server's routes, the SDK) validate and normalise input
with :mod:`tracklog.validation` before calling a store (key characters, length limits,
truncation of long values, batch limits). Stores own the semantics that need state:
existence (RESOURCE_DOES_NOT_EXIST), uniqueness (RESOURCE_ALREADY_EXISTS), lifecycle
(writes to deleted runs/experiments are INVALID_PARAMETER_VALUE), param immutability,
latest-metric bookkeeping, search and paging. Every failure a caller can cause is a
:class:`tracklog.errors.TracklogError`, never a bare exception.

Search methods receive filters already parsed by :mod:`tracklog.search` (see
:mod:`tracklog.search.ast`), ``max_results`` already range-checked, and the opaque
``page_token`` the store itself produced (stores decode it, and reject a garbage token
with INVALID_PARAMETER_VALUE). They return a :class:`tracklog.entities.PagedList` whose
``token`` is set only when more results exist.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from itertools import islice
from operator import attrgetter, gt
from typing import Any, ClassVar

from tracklog import errors
from tracklog.entities import (
    Assessment,
    AssessmentKind,
    DatasetInput,
    Experiment,
    ExperimentTag,
    LoggedModel,
    LoggedModelInput,
    LoggedModelOutput,
    LoggedModelParameter,
    LoggedModelStatus,
    LoggedModelTag,
    Metric,
    ModelVersion,
    PagedList,
    Param,
    RegisteredModel,
    Run,
    RunInfo,
    RunStatus,
    RunTag,
    TraceInfo,
    ViewType,
)
from tracklog.sampling import sample_min_max
from tracklog.search.ast import Filter, OrderBy
from tracklog.search.tokens import all_pages

DEFAULT_EXPERIMENT_ID = "0"
DEFAULT_EXPERIMENT_NAME = "Default"


class WouldWait(Exception):
    """Raised by a store inside :func:`answering_now` where answering would mean waiting;
    nothing was changed, and the caller asks again where waiting is allowed."""


_ANSWERING_NOW: ContextVar[bool] = ContextVar("tracklog_answering_now", default=False)


@contextmanager
def answering_now() -> Iterator[None]:
    """Inside, a store whose ``reads_now`` is True answers a point read without waiting
    for anything, or raises :class:`WouldWait` (see :attr:`TrackingStore.reads_now`)."""
    token = _ANSWERING_NOW.set(True)
    try:
        yield
    finally:
        _ANSWERING_NOW.reset(token)


def must_not_wait() -> bool:
    """Whether the caller is inside :func:`answering_now`."""
    return _ANSWERING_NOW.get()


class TrackingStore(abc.ABC):
    """Experiments, runs, metrics, params, tags, inputs/outputs and logged models.

    A store is created once per server process and shared by all request threads:
    implementations must be thread-safe. Experiment ``"0"`` named ``Default`` exists
    in every store from the moment it is opened.
    """

    #: Short human name shown by ``tracklog plugins`` and ``server-info``
    #: (``"SqlStore"``, ``"FileStore"`` are what MLflow's client recognises).
    store_type: ClassVar[str] = "TrackingStore"

    #: True when ``get_run``, ``get_experiment`` and ``get_experiment_by_name`` can be
    #: answered inside :func:`answering_now`: from local storage, raising
    #: :class:`WouldWait` instead of waiting for anything (a lock, a busy database, a
    #: connection). The server then answers such a read on its event loop while the
    #: request is the only one in progress (a worker thread's two wake-ups cost a lone
    #: client more than the read), and asks again from a worker thread on WouldWait.
    reads_now: bool = False

    # -- experiments -------------------------------------------------------------------

    @abc.abstractmethod
    def create_experiment(
        self,
        name: str,
        artifact_location: str | None = None,
        tags: Sequence[ExperimentTag] = (),
    ) -> str:
        """Create an active experiment.

        ``artifact_location`` None or empty means ``<default artifact root>/<id>``.

        :returns: the new experiment's id, a decimal string.
        :raises TracklogError: RESOURCE_ALREADY_EXISTS (400) when any experiment, deleted
            ones included, holds ``name``.
        """

    @abc.abstractmethod
    def get_experiment(self, experiment_id: str) -> Experiment:
        """Read one experiment with its tags.

        :returns: the experiment, deleted or not.
        :raises TracklogError: RESOURCE_DOES_NOT_EXIST (404) for an unknown id;
            INVALID_PARAMETER_VALUE (400) for an id malformed for this store (the SQL store
            takes decimal integers only).
        """

    @abc.abstractmethod
    def get_experiment_by_name(self, name: str) -> Experiment | None:
        """Look an experiment up by its exact, case-sensitive name.

        :returns: the experiment (deleted ones too), or None when no experiment has the
            name. Never raises for an unknown name: the MLflow client's
            ``set_experiment`` relies on "not found" to create the experiment.
        """

    @abc.abstractmethod
    def search_experiments(
        self,
        view_type: ViewType = ViewType.ACTIVE_ONLY,
        max_results: int = 1000,
        filter: Filter = (),
        order_by: Sequence[OrderBy] = (),
        page_token: str | None = None,
    ) -> PagedList[Experiment]:
        """One page of the experiments in ``view_type`` that match ``filter``.

        Default order ``creation_time DESC`` and ``experiment_id ASC`` as the final
        tie-break; with ``order_by``, its clauses and then ``experiment_id DESC`` (unless
        a clause names it), as MLflow.

        :returns: a :class:`~tracklog.entities.PagedList` of at most ``max_results``
            experiments; its ``token`` is set only when more remain.
        :raises TracklogError: INVALID_PARAMETER_VALUE (400) for a page token the store
            did not produce.
        """

    @abc.abstractmethod
    def rename_experiment(self, experiment_id: str, new_name: str) -> None:
        """Rename an active experiment.

        :raises TracklogError: RESOURCE_DOES_NOT_EXIST (404) for an unknown id;
            INVALID_PARAMETER_VALUE (400) for a deleted experiment; RESOURCE_ALREADY_EXISTS
            (400) when another experiment, deleted or not, holds ``new_name``.
        """

    @abc.abstractmethod
    def delete_experiment(self, experiment_id: str) -> None:
        """Soft-delete the experiment and all its runs (they stay readable, marked
        deleted, and refuse writes).

        :raises TracklogError: RESOURCE_DOES_NOT_EXIST (404) for an unknown or already
            deleted experiment; INVALID_PARAMETER_VALUE (400) for the default experiment
            ``"0"``.
        """

    @abc.abstractmethod
    def restore_experiment(self, experiment_id: str) -> None:
        """Undo :meth:`delete_experiment`: the experiment and every one of its runs become
        active, also runs deleted on their own before it (as MLflow).

        :raises TracklogError: RESOURCE_DOES_NOT_EXIST (404) unless the experiment exists
            and is deleted.
        """

    @abc.abstractmethod
    def set_experiment_tag(self, experiment_id: str, tag: ExperimentTag) -> None:
        """Set a tag on an active experiment, overwriting any value under the same key.

        :raises TracklogError: RESOURCE_DOES_NOT_EXIST (404) for an unknown experiment;
            INVALID_PARAMETER_VALUE (400) for a deleted one.
        """

    @abc.abstractmethod
    def delete_experiment_tag(self, experiment_id: str, key: str) -> None:
        """Remove a tag from an active experiment.

        :raises TracklogError: RESOURCE_DOES_NOT_EXIST (404) for an unknown experiment or
            a key it does not have; INVALID_PARAMETER_VALUE (400) for a deleted experiment.
        """

    # -- runs --------------------------------------------------------------------------

    @abc.abstractmethod
    def create_run(
        self,
        experiment_id: str,
        user_id: str,
        start_time: int | None,
        tags: Sequence[RunTag] = (),
        run_name: str | None = None,
    ) -> Run:
        """Create a RUNNING run with a fresh 32-hex id in an active experiment.

        Without ``run_name`` (and without an ``mlflow.runName`` tag) a name of the form
        ``adjective-animal-NNN`` is generated. The run's name and its ``mlflow.runName``
        tag always agree. The artifact URI is
        ``<experiment artifact_location>/<run_id>/artifacts``.

        :returns: the new run, with its tags and empty metrics, params, inputs, outputs.
        :raises TracklogError: RESOURCE_DOES_NOT_EXIST (404) for an unknown experiment;
            INVALID_PARAMETER_VALUE (400) for a deleted experiment, or a ``run_name`` and
            an ``mlflow.runName`` tag that differ.
        """

    @abc.abstractmethod
    def get_run(self, run_id: str) -> Run:
        """Read one run, deleted or not.

        :returns: the run with its latest value per metric key (see :meth:`log_batch`),
            params, tags, inputs and outputs.
        :raises TracklogError: RESOURCE_DOES_NOT_EXIST (404) for an unknown id.
        """

    @abc.abstractmethod
    def update_run_info(
        self,
        run_id: str,
        run_status: RunStatus | None = None,
        end_time: int | None = None,
        run_name: str | None = None,
    ) -> RunInfo:
        """Change the fields given (None leaves a field alone) of an active run; a new
        name also rewrites the ``mlflow.runName`` tag. Any status may follow any other.

        :returns: the updated run info.
        :raises TracklogError: RESOURCE_DOES_NOT_EXIST (404) for an unknown run;
            INVALID_PARAMETER_VALUE (400) for a deleted one.
        """

    @abc.abstractmethod
    def delete_run(self, run_id: str) -> None:
        """Soft-delete the run: it stays readable (``lifecycle_stage`` ``deleted``) and
        refuses writes until restored.

        :raises TracklogError: RESOURCE_DOES_NOT_EXIST (404) for an unknown run.
        """

    @abc.abstractmethod
    def restore_run(self, run_id: str) -> None:
        """Undo :meth:`delete_run`: the run is active again with all its data.

        :raises TracklogError: RESOURCE_DOES_NOT_EXIST (404) for an unknown run.
        """

    @abc.abstractmethod
    def log_batch(
        self,
        run_id: str,
        metrics: Sequence[Metric] = (),
        params: Sequence[Param] = (),
        tags: Sequence[RunTag] = (),
    ) -> None:
        """The write primitive: params, then metrics, then tags, atomically.

        The same param value again is a no-op. Metric points identical in key, value,
        timestamp and step are stored once (the client retries). The latest value per
        key is the point with the greatest ``(step, timestamp, value)``. Setting
        ``mlflow.runName`` renames the run. Run status does not gate writes.
        ``metrics`` is any sequence of ``Metric``: the server hands plain points over as
        a ``MetricColumns``, whose ``columns`` a store may take directly.

        :raises TracklogError: RESOURCE_DOES_NOT_EXIST (404) for an unknown run;
            INVALID_PARAMETER_VALUE (400) for a deleted run, or a param already logged
            with another value; in both cases nothing of the batch is written.
        """

    def log_metric(self, run_id: str, metric: Metric) -> None:
        """Log one metric point: :meth:`log_batch` with one metric, same errors."""
        self.log_batch(run_id, metrics=[metric])

    def log_param(self, run_id: str, param: Param) -> None:
        """Log one param: :meth:`log_batch` with one param, same errors."""
        self.log_batch(run_id, params=[param])

    def set_tag(self, run_id: str, tag: RunTag) -> None:
        """Set one run tag (overwriting): :meth:`log_batch` with one tag, same errors."""
        self.log_batch(run_id, tags=[tag])

    @abc.abstractmethod
    def delete_tag(self, run_id: str, key: str) -> None:
        """Remove a tag from an active run.

        :raises TracklogError: RESOURCE_DOES_NOT_EXIST (404) for an unknown run or a key
            it does not have; INVALID_PARAMETER_VALUE (400) for a deleted run.
        """

    @abc.abstractmethod
    def get_metric_history(
        self,
        run_id: str,
        metric_key: str,
        max_results: int | None = None,
        page_token: str | None = None,
    ) -> PagedList[Metric]:
        """The points of one metric of a run, ordered by timestamp, step, value.

        :returns: a :class:`~tracklog.entities.PagedList` of
            :class:`~tracklog.entities.Metric`; with ``max_results`` None every point and
            no token. An unknown run or key gives an empty list, not an error (as MLflow).
        :raises TracklogError: INVALID_PARAMETER_VALUE (400) for a page token the store
            did not produce.
        """

    def sample_metric_history(
        self,
        run_id: str,
        metric_key: str,
        max_points: int,
        start_step: int | None = None,
        end_step: int | None = None,
    ) -> list[Metric]:
        """At most ``max_points`` points of one metric for a chart, ordered by step then
        timestamp: the first and the last point, and the lowest and highest value of each
        bucket of consecutive points, so spikes survive. With ``start_step`` and
        ``end_step``, only points whose step lies between them (inclusive).

        This default reads the whole history and thins it here; a store that can pick
        the points where they are kept overrides it (long histories then never travel
        whole). Unknown run or key: empty."""
        history = list(self.get_metric_history(run_id, metric_key))
        steps = [m.step for m in history]
        # Stores order by timestamp; steps usually rise with it, and then the order is
        # already right (a C-level scan instead of a sort with a Python key).
        if any(map(gt, steps, islice(steps, 1, None))):
            history.sort(key=attrgetter("step", "timestamp"))
        if start_step is not None and end_step is not None:
            history = [m for m in history if start_step <= m.step <= end_step]
        return sample_min_max(history, max_points)

    @abc.abstractmethod
    def search_runs(
        self,
        experiment_ids: Sequence[str],
        filter: Filter = (),
        run_view_type: ViewType = ViewType.ACTIVE_ONLY,
        max_results: int = 1000,
        order_by: Sequence[OrderBy] = (),
        page_token: str | None = None,
    ) -> PagedList[Run]:
        """One page of the runs of the given experiments, in ``run_view_type``, that
        match ``filter``.

        Ordering applies ``order_by`` in turn, then ``start_time DESC`` (unless already
        present), then ``run_id ASC``; runs lacking an ordering key (and NaN metrics)
        sort last in both directions. A comparison on a metric, param or tag a run lacks
        never matches it, ``!=`` included. Unknown experiment ids simply match nothing.

        :returns: a :class:`~tracklog.entities.PagedList` of at most ``max_results``
            full runs; its ``token`` is set only when more remain.
        :raises TracklogError: INVALID_PARAMETER_VALUE (400) for a page token the store
            did not produce, or a search too expensive for the store to finish.
        """

    @abc.abstractmethod
    def log_inputs(
        self,
        run_id: str,
        datasets: Sequence[DatasetInput] = (),
        models: Sequence[LoggedModelInput] = (),
    ) -> None:
        """Record datasets and logged models an active run consumed. A dataset already
        logged (same name and digest) is not added twice.

        :raises TracklogError: RESOURCE_DOES_NOT_EXIST (404) for an unknown run;
            INVALID_PARAMETER_VALUE (400) for a deleted one.
        """

    @abc.abstractmethod
    def log_outputs(self, run_id: str, models: Sequence[LoggedModelOutput]) -> None:
        """Record logged models an active run produced, each at a step; a model recorded
        again takes the new step.

        :raises TracklogError: RESOURCE_DOES_NOT_EXIST (404) for an unknown run or model;
            INVALID_PARAMETER_VALUE (400) for a deleted run.
        """

    # -- logged models -----------------------------------------------------------------

    @abc.abstractmethod
    def create_logged_model(
        self,
        experiment_id: str,
        name: str | None = None,
        source_run_id: str | None = None,
        tags: Sequence[LoggedModelTag] = (),
        params: Sequence[LoggedModelParameter] = (),
        model_type: str | None = None,
    ) -> LoggedModel:
        """Create a logged model in status PENDING with id ``m-<32 hex>`` and artifact
        location ``<experiment artifact_location>/models/<model_id>/artifacts``. Without
        ``name`` the store generates one.

        :returns: the new model with its tags and params.
        :raises TracklogError: RESOURCE_DOES_NOT_EXIST (404) for an unknown experiment
            or ``source_run_id``; INVALID_PARAMETER_VALUE (400) for a deleted experiment.
        """

    @abc.abstractmethod
    def get_logged_model(self, model_id: str, allow_deleted: bool = False) -> LoggedModel:
        """Read one logged model.

        :returns: the model with its tags, params and metrics.
        :raises TracklogError: RESOURCE_DOES_NOT_EXIST (404) for an unknown id, or a
            deleted model unless ``allow_deleted``.
        """

    @abc.abstractmethod
    def finalize_logged_model(self, model_id: str, status: LoggedModelStatus) -> LoggedModel:
        """Set the model's status (``LOGGED_MODEL_READY`` after a successful upload,
        ``LOGGED_MODEL_UPLOAD_FAILED`` otherwise) and its last-update time.

        :returns: the updated model.
        :raises TracklogError: RESOURCE_DOES_NOT_EXIST (404) for an unknown or deleted
            model; INVALID_PARAMETER_VALUE (400) for any other status.
        """

    @abc.abstractmethod
    def set_logged_model_tags(self, model_id: str, tags: Sequence[LoggedModelTag]) -> None:
        """Set tags on a model, overwriting values under the same keys.

        :raises TracklogError: RESOURCE_DOES_NOT_EXIST (404) for an unknown or deleted
            model.
        """

    @abc.abstractmethod
    def delete_logged_model_tag(self, model_id: str, key: str) -> None:
        """Remove a tag from a model.

        :raises TracklogError: RESOURCE_DOES_NOT_EXIST (404) for an unknown model or a
            key it does not have.
        """

    @abc.abstractmethod
    def log_logged_model_params(
        self, model_id: str, params: Sequence[LoggedModelParameter]
    ) -> None:
        """Add params to a model; a key logged again takes the new value.

        :raises TracklogError: RESOURCE_DOES_NOT_EXIST (404) for an unknown or deleted
            model.
        """

    @abc.abstractmethod
    def delete_logged_model(self, model_id: str) -> None:
        """Soft-delete a model: :meth:`get_logged_model` then needs ``allow_deleted``,
        and searches leave it out.

        :raises TracklogError: RESOURCE_DOES_NOT_EXIST (404) for an unknown or already
            deleted model.
        """

    @abc.abstractmethod
    def search_logged_models(
        self,
        experiment_ids: Sequence[str],
        filter: Filter = (),
        datasets: Sequence[dict[str, str]] = (),
        max_results: int = 50,
        order_by: Sequence[OrderBy] = (),
        page_token: str | None = None,
    ) -> PagedList[LoggedModel]:
        """One page of the active models of the experiments that match ``filter``.

        ``datasets`` (dicts with ``dataset_name`` and optional ``dataset_digest``) scope
        metric comparisons to metrics logged on those datasets. Default order
        ``creation_timestamp DESC`` then ``model_id ASC``.

        :returns: a :class:`~tracklog.entities.PagedList` of at most ``max_results``
            models; its ``token`` is set only when more remain.
        :raises TracklogError: INVALID_PARAMETER_VALUE (400) for a page token the store
            did not produce.
        """

    # -- lifecycle ---------------------------------------------------------------------

    def close(self) -> None:  # noqa: B027 - optional, a no-op by default
        """Release connections and files. Idempotent; the default does nothing."""


class ModelRegistryStore(abc.ABC):
    """The model registry capability: registered models, versions, stages, aliases, tags.

    A tracking store that inherits from this class serves the registry routes.
    """

    @abc.abstractmethod
    def create_registered_model(
        self, name: str, tags: Sequence[tuple[str, str]] = (), description: str | None = None
    ) -> RegisteredModel:
        """Create a registered model with no versions; ``tags`` are ``(key, value)`` pairs.

        :returns: the new model.
        :raises TracklogError: RESOURCE_ALREADY_EXISTS (400) when the name is taken (the
            MLflow client's ``register_model`` then goes on to add a version);
            INVALID_PARAMETER_VALUE (400) for an empty name.
        """

    @abc.abstractmethod
    def get_registered_model(self, name: str) -> RegisteredModel:
        """Read one registered model.

        :returns: the model with its tags, aliases and ``latest_versions`` (the newest
            version in each stage).
        :raises TracklogError: RESOURCE_DOES_NOT_EXIST (404) for an unknown name.
        """

    @abc.abstractmethod
    def rename_registered_model(self, name: str, new_name: str) -> RegisteredModel:
        """Rename a model; its versions, tags and aliases follow it.

        :returns: the model under its new name.
        :raises TracklogError: RESOURCE_DOES_NOT_EXIST (404) for an unknown ``name``;
            RESOURCE_ALREADY_EXISTS (400) when another model holds ``new_name``;
            INVALID_PARAMETER_VALUE (400) for an empty ``new_name``.
        """

    @abc.abstractmethod
    def update_registered_model(self, name: str, description: str | None) -> RegisteredModel:
        """Replace the model's description (None clears it) and bump its last-update time.

        :returns: the updated model.
        :raises TracklogError: RESOURCE_DOES_NOT_EXIST (404) for an unknown name.
        """

    @abc.abstractmethod
    def delete_registered_model(self, name: str) -> None:
        """Delete a model for good, with its versions, tags and aliases.

        :raises TracklogError: RESOURCE_DOES_NOT_EXIST (404) for an unknown name.
        """

    @abc.abstractmethod
    def search_registered_models(
        self,
        filter: Filter = (),
        max_results: int = 100,
        order_by: Sequence[OrderBy] = (),
        page_token: str | None = None,
    ) -> PagedList[RegisteredModel]:
        """One page of the registered models that match ``filter`` (parsed with the
        registered-model grammar), by default in name order.

        Models tagged ``mlflow.prompt.is_prompt = 'true'`` (MLflow prompts) are left out
        unless the filter asks for that tag, as MLflow does.

        :returns: a :class:`~tracklog.entities.PagedList` of at most ``max_results``
            models; its ``token`` is set only when more remain.
        :raises TracklogError: INVALID_PARAMETER_VALUE (400) for a page token the store
            did not produce.
        """

    @abc.abstractmethod
    def get_latest_versions(
        self, name: str, stages: Sequence[str] = ()
    ) -> list[ModelVersion]:
        """The newest version in each stage, limited to ``stages`` when given (names in
        any case: ``None``, ``Staging``, ``Production``, ``Archived``).

        :returns: at most one version per stage; empty when no version is in them.
        :raises TracklogError: RESOURCE_DOES_NOT_EXIST (404) for an unknown model;
            INVALID_PARAMETER_VALUE (400) for an unknown stage.
        """

    @abc.abstractmethod
    def set_registered_model_tag(self, name: str, key: str, value: str) -> None:
        """Set a tag on a model, overwriting any value under ``key``.

        :raises TracklogError: RESOURCE_DOES_NOT_EXIST (404) for an unknown model.
        """

    @abc.abstractmethod
    def delete_registered_model_tag(self, name: str, key: str) -> None:
        """Remove a tag from a model.

        :raises TracklogError: RESOURCE_DOES_NOT_EXIST (404) for an unknown model or a
            key it does not have.
        """

    @abc.abstractmethod
    def create_model_version(
        self,
        name: str,
        source: str,
        run_id: str | None = None,
        tags: Sequence[tuple[str, str]] = (),
        run_link: str | None = None,
        description: str | None = None,
        model_id: str | None = None,
    ) -> ModelVersion:
        """Register a new version of a model: number ``max + 1`` (starting at ``"1"``,
        never reused after a delete), status READY, stage ``"None"``, and bump the
        model's last-update time. ``model_id`` links a logged model (``source``
        ``models:/<model_id>``). Concurrent calls get distinct numbers.

        :returns: the new version. READY matters: the MLflow client polls a version that
            is not READY for minutes.
        :raises TracklogError: RESOURCE_DOES_NOT_EXIST (404) for an unknown model;
            INVALID_PARAMETER_VALUE (400) for an empty ``source``.
        """

    @abc.abstractmethod
    def get_model_version(self, name: str, version: str) -> ModelVersion:
        """Read one version (``version`` is the number as a decimal string).

        :returns: the version with its tags and aliases.
        :raises TracklogError: RESOURCE_DOES_NOT_EXIST (404) for an unknown model or
            version; INVALID_PARAMETER_VALUE (400) for a ``version`` that is not a
            positive integer.
        """

    @abc.abstractmethod
    def update_model_version(
        self, name: str, version: str, description: str | None
    ) -> ModelVersion:
        """Replace a version's description (None clears it).

        :returns: the updated version.
        :raises TracklogError: as :meth:`get_model_version`.
        """

    @abc.abstractmethod
    def transition_model_version_stage(
        self, name: str, version: str, stage: str, archive_existing_versions: bool
    ) -> ModelVersion:
        """Move a version to ``stage`` (``None``, ``Staging``, ``Production`` or
        ``Archived``, in any case). With ``archive_existing_versions`` and a target of
        Staging or Production, the model's other versions in that stage become Archived.

        :returns: the version in its new stage.
        :raises TracklogError: as :meth:`get_model_version`; INVALID_PARAMETER_VALUE (400)
            for an unknown stage.
        """

    @abc.abstractmethod
    def delete_model_version(self, name: str, version: str) -> None:
        """Delete a version for good, with its tags and the aliases pointing at it.

        :raises TracklogError: as :meth:`get_model_version`.
        """

    @abc.abstractmethod
    def get_model_version_download_uri(self, name: str, version: str) -> str:
        """Where the version's files are: for a ``models:/m-…`` source the logged
        model's artifact location, otherwise the source unchanged (the client resolves
        ``runs:/`` itself).

        :raises TracklogError: as :meth:`get_model_version`.
        """

    @abc.abstractmethod
    def search_model_versions(
        self,
        filter: Filter = (),
        max_results: int = 10000,
        order_by: Sequence[OrderBy] = (),
        page_token: str | None = None,
    ) -> PagedList[ModelVersion]:
        """One page of the model versions that match ``filter`` (parsed with the
        model-version grammar). Versions of prompts are left out as in
        :meth:`search_registered_models`.

        :returns: a :class:`~tracklog.entities.PagedList` of at most ``max_results``
            versions; its ``token`` is set only when more remain.
        :raises TracklogError: INVALID_PARAMETER_VALUE (400) for a page token the store
            did not produce.
        """

    @abc.abstractmethod
    def set_model_version_tag(self, name: str, version: str, key: str, value: str) -> None:
        """Set a tag on a version, overwriting any value under ``key``.

        :raises TracklogError: as :meth:`get_model_version`.
        """

    @abc.abstractmethod
    def delete_model_version_tag(self, name: str, version: str, key: str) -> None:
        """Remove a tag from a version.

        :raises TracklogError: as :meth:`get_model_version`; RESOURCE_DOES_NOT_EXIST (404)
            for a key the version does not have.
        """

    @abc.abstractmethod
    def set_registered_model_alias(self, name: str, alias: str, version: str) -> None:
        """Point ``alias`` at ``version``, moving it from any other version of the model.
        The caller has checked the alias name (not ``latest``, not ``v<N>``).

        :raises TracklogError: as :meth:`get_model_version`.
        """

    @abc.abstractmethod
    def delete_registered_model_alias(self, name: str, alias: str) -> None:
        """Remove an alias from a model; an alias the model does not have is a no-op.

        :raises TracklogError: RESOURCE_DOES_NOT_EXIST (404) for an unknown model.
        """

    @abc.abstractmethod
    def get_model_version_by_alias(self, name: str, alias: str) -> ModelVersion:
        """The version ``alias`` points at (``models:/name@alias`` in the client).

        :returns: the version with its tags and aliases.
        :raises TracklogError: RESOURCE_DOES_NOT_EXIST (404) for an unknown model;
            INVALID_PARAMETER_VALUE (400) for an alias the model does not have (as MLflow).
        """


#: Tag holding where a trace's spans (``traces.json``) are uploaded; set by the store.
TRACE_ARTIFACT_LOCATION_TAG = "mlflow.artifactLocation"
#: Metadata naming the run a trace was recorded in.
TRACE_SOURCE_RUN_METADATA = "mlflow.sourceRun"
#: Tag holding the trace's name (the root span's name); ``name`` in trace filters.
TRACE_NAME_TAG = "mlflow.traceName"


class TraceStore(abc.ABC):
    """The GenAI trace capability: trace infos, their tags, metadata and assessments.

    Spans are not the store's business: the client uploads them as the artifact
    ``traces.json`` under the location the store hands out in the tag
    ``mlflow.artifactLocation`` (``<experiment artifact_location>/traces/<trace_id>/
    artifacts``). Trace ids are ``tr-<32 hex>``, chosen by the client.

    Traces follow their experiment's lifecycle: a write to a trace of a deleted
    experiment (starting one included) is INVALID_PARAMETER_VALUE, searches skip deleted
    experiments, and reads by id keep working (as :meth:`TrackingStore.get_run` does for
    deleted runs). An unknown trace id is RESOURCE_DOES_NOT_EXIST.
    """

    @abc.abstractmethod
    def start_trace(self, trace_info: TraceInfo) -> TraceInfo:
        """Record ``trace_info`` (the client sends it once the trace has ended) and return
        it as stored, with the ``mlflow.artifactLocation`` tag added. Sending the same
        trace id again replaces the earlier record (client retries, IN_PROGRESS → OK)."""

    @abc.abstractmethod
    def get_trace_info(self, trace_id: str) -> TraceInfo:
        """The trace with its tags, metadata and assessments."""

    @abc.abstractmethod
    def batch_get_trace_infos(
        self, trace_ids: Sequence[str], experiment_ids: Sequence[str] | None = None
    ) -> list[TraceInfo]:
        """The known traces among ``trace_ids``, in the order asked, unknown ids skipped;
        with ``experiment_ids``, only traces of those experiments."""

    @abc.abstractmethod
    def search_traces(
        self,
        experiment_ids: Sequence[str],
        filter: Filter = (),
        max_results: int = 100,
        order_by: Sequence[OrderBy] = (),
        page_token: str | None = None,
    ) -> PagedList[TraceInfo]:
        """Traces of the given (active) experiments matching ``filter``, parsed by
        :func:`tracklog.search.parse_trace_filter`.

        Attributes: ``trace_id``, ``status`` (the state name), ``timestamp_ms``,
        ``execution_time_ms``, ``end_time_ms`` (their sum), ``client_request_id`` and
        ``run_id`` (the ``mlflow.sourceRun`` metadata, or a run the trace is linked to by
        :meth:`link_traces_to_run`); ``tag.<key>`` and ``metadata.<key>`` compare strings.
        Order: ``order_by`` clauses in turn, then ``timestamp_ms DESC``, then ``trace_id
        ASC``; traces lacking a sort key come last in both directions.
        """

    def experiment_trace_ids(self, experiment_id: str) -> Iterator[str]:
        """Ids of every trace of the experiment, whether it is active or deleted, in any
        order; none for an unknown experiment. What ``tracklog migrate`` copies:
        :meth:`search_traces` skips deleted experiments. This default pages through
        :meth:`search_traces`, so it reaches active experiments only; a store overrides it
        to reach the traces of deleted experiments too."""
        for trace in all_pages(lambda token: self.search_traces(
                [experiment_id], max_results=1000, page_token=token)):
            yield trace.trace_id

    @abc.abstractmethod
    def set_trace_tag(self, trace_id: str, key: str, value: str) -> None:
        """Set (overwrite) a tag."""

    @abc.abstractmethod
    def delete_trace_tag(self, trace_id: str, key: str) -> None:
        """Remove a tag; a missing key is RESOURCE_DOES_NOT_EXIST."""

    @abc.abstractmethod
    def delete_traces(
        self,
        experiment_id: str,
        max_timestamp_millis: int | None = None,
        max_traces: int | None = None,
        trace_ids: Sequence[str] = (),
    ) -> int:
        """Delete traces of one experiment and return how many went.

        Either ``trace_ids`` (ids of other experiments and unknown ids are skipped), or
        ``max_timestamp_millis``: the traces whose ``request_time`` is at or before it,
        the oldest first and at most ``max_traces`` of them when given.
        """

    @abc.abstractmethod
    def link_traces_to_run(self, trace_ids: Sequence[str], run_id: str) -> None:
        """Associate traces with a run (found by ``run_id`` in searches). Linking twice
        is a no-op; an unknown run or trace is RESOURCE_DOES_NOT_EXIST."""

    @abc.abstractmethod
    def create_assessment(self, assessment: Assessment) -> Assessment:
        """Store a new assessment with a fresh ``a-<32 hex>`` id and the current time as
        its creation and update time; returns it as stored."""

    @abc.abstractmethod
    def get_assessment(self, trace_id: str, assessment_id: str) -> Assessment:
        """One assessment of a trace; RESOURCE_DOES_NOT_EXIST if either is unknown."""

    @abc.abstractmethod
    def update_assessment(
        self,
        trace_id: str,
        assessment_id: str,
        name: str | None = None,
        kind: AssessmentKind | None = None,
        value: dict[str, Any] | None = None,
        rationale: str | None = None,
        metadata: dict[str, str] | None = None,
    ) -> Assessment:
        """Change the fields given and bump ``last_update_time``. A new ``value`` comes
        with its ``kind``, which must be the assessment's own (a feedback stays a
        feedback: INVALID_PARAMETER_VALUE otherwise); ``metadata`` is merged into the
        existing metadata; an empty ``rationale`` removes it."""

    @abc.abstractmethod
    def delete_assessment(self, trace_id: str, assessment_id: str) -> None:
        """Remove an assessment; an unknown one is RESOURCE_DOES_NOT_EXIST."""


#: Told the outcome of a queued write, once: ``done(result, None)`` once it is committed,
#: ``done(None, error)`` if it failed.
WriteDone = Callable[[Any, "BaseException | None"], None]


class QueuedWrites(abc.ABC):
    """Optional capability: small writes handed over without waiting for them.

    The server calls these methods from its event loop, which serves every connection
    and so must never wait for a database; its worker threads, the alternative, cost
    several thread switches per request, which is most of the cost of a small write. A
    store that makes its writes on a thread of its own anyway (the SQL store on SQLite
    does) queues the write there and returns True at once, then calls ``done`` exactly
    once, from any thread: with the synchronous method's result once the write is
    committed, or with the error the synchronous method would raise. An error found
    before anything is queued may be raised at once instead.

    A method returns False, queuing nothing and never calling ``done``, when the store
    would rather be called as usual (on another database, say, or once closed): the
    server then calls the synchronous method in a worker thread. Arguments are
    validated by the caller as for the synchronous method. Nothing here may block: no
    I/O, and no lock that is held through I/O. ``done`` must be quick (the server's
    only hands the outcome over to its event loop) and is called without the caller's
    context variables.

    A store whose ``writes_now`` is True also takes ``now``: the server passes
    ``now=True`` when the request is the only one in progress in its process, so that
    a short local write made on the event loop holds up no other request. The store may
    then make the write at once, in the caller's thread, and call ``done`` before
    returning True, provided it waits for nothing to do so: no lock another write
    holds, no busy wait on the database's lock (otherwise it queues the write as
    usual). That spares the write its two thread switches, which cost a lone client
    more than on a busy server: each wakes a thread that has gone idle. The server
    never passes ``now`` to a store whose ``writes_now`` is False.
    """

    #: Whether the ``submit_*`` methods take ``now`` (see above); a store may set it per
    #: instance (the SQL store does on SQLite only).
    writes_now: bool = False

    @abc.abstractmethod
    def submit_log_batch(self, run_id: str, metrics: Sequence[Metric],
                         params: Sequence[Param], tags: Sequence[RunTag],
                         done: WriteDone, *, now: bool = False) -> bool:
        """:meth:`TrackingStore.log_batch`, queued; ``done``'s result is None."""

    @abc.abstractmethod
    def submit_create_run(self, experiment_id: str, user_id: str, start_time: int | None,
                          tags: Sequence[RunTag], run_name: str | None,
                          done: WriteDone, *, now: bool = False) -> bool:
        """:meth:`TrackingStore.create_run`, queued; ``done``'s result is the new run."""

    @abc.abstractmethod
    def submit_update_run_info(self, run_id: str, run_status: RunStatus | None,
                               end_time: int | None, run_name: str | None,
                               done: WriteDone, *, now: bool = False) -> bool:
        """:meth:`TrackingStore.update_run_info`, queued; ``done``'s result is the
        updated :class:`RunInfo`."""


class EncodedRunSearch(abc.ABC):
    """Optional capability: a run search's page in the protocol's wire form.

    ``search_runs`` gives entities, which the server then encodes as JSON. A store
    whose database can write a run's JSON itself (SQL's JSON functions) spares the
    server both steps on the read that answers the most runs at once: the runs table
    of the UI and ``mlflow.search_runs``. The server asks this first and falls back
    to ``search_runs`` when it answers None.
    """

    @abc.abstractmethod
    def search_runs_encoded(
        self,
        experiment_ids: Sequence[str],
        filter: Filter = (),
        run_view_type: ViewType = ViewType.ACTIVE_ONLY,
        max_results: int = 1000,
        order_by: Sequence[OrderBy] = (),
        page_token: str | None = None,
    ) -> PagedList[bytes] | None:
        """:meth:`TrackingStore.search_runs`' page, each run as its JSON object in the
        wire form (UTF-8): equal, once decoded, to what ``tracklog.server.codec.run``
        makes of the run ``search_runs`` gives, but for the order of a run's metrics,
        params and tags; fields never set are left out. The same runs in the same
        order, the same next-page token, the same errors. None where the store would
        rather answer through ``search_runs`` (another database, say)."""


def encoded_run_search_of(store: TrackingStore | None) -> EncodedRunSearch | None:
    """``store`` as an :class:`EncodedRunSearch`, or None when it does not provide it."""
    return store if isinstance(store, EncodedRunSearch) else None


def converted(done: WriteDone, convert: Callable[[Any], Any]) -> WriteDone:
    """A :data:`WriteDone` that tells ``done`` ``convert(result)`` on success, or the
    error, also one ``convert`` raised: ``done`` is always told, once."""

    def finished(result: Any, error: BaseException | None) -> None:
        if error is None:
            try:
                result = convert(result)
            except Exception as exc:
                result, error = None, exc
        done(result, error)

    return finished


def queued_writes_of(store: TrackingStore | None) -> QueuedWrites | None:
    """``store`` as a :class:`QueuedWrites`, or None when it does not provide them."""
    return store if isinstance(store, QueuedWrites) else None


def _describe(store: TrackingStore) -> str:
    return f"{type(store).__module__}.{type(store).__qualname__}"


def registry_of(store: TrackingStore) -> ModelRegistryStore:
    """``store`` as a registry, or NOT_IMPLEMENTED naming the store that lacks it."""
    if isinstance(store, ModelRegistryStore):
        return store
    raise errors.not_implemented(
        f"The model registry is not available: the backend store in use ({_describe(store)}) "
        "does not provide one."
    )


def has_traces(store: TrackingStore | None) -> bool:
    """Whether ``store`` declares the trace capability (inherits :class:`TraceStore`)."""
    return isinstance(store, TraceStore)


def traces_of(store: TrackingStore) -> TraceStore:
    """``store`` as a trace store, or NOT_IMPLEMENTED naming the store that lacks it."""
    if isinstance(store, TraceStore):
        return store
    raise errors.not_implemented(
        f"Tracing is not supported by the backend store {_describe(store)}."
    )

