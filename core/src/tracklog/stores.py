"""The tracking-store contract.

A backend plugin subclasses :class:`TrackingStore` (every abstract method is required,
Python refuses to instantiate a subclass that misses one) and registers a factory for its
URI schemes through the ``register_tracking_stores`` hook. Optional capabilities are
separate ABCs a store also inherits from: :class:`ModelRegistryStore` (the model
registry) and :class:`TraceStore` (GenAI traces). :func:`registry_of` and
:func:`traces_of` turn an absent capability into a clear NOT_IMPLEMENTED error.

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
from collections.abc import Sequence
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

DEFAULT_EXPERIMENT_ID = "0"
DEFAULT_EXPERIMENT_NAME = "Default"


class TrackingStore(abc.ABC):
    """Experiments, runs, metrics, params, tags, inputs/outputs and logged models.

    A store is created once per server process and shared by all request threads:
    implementations must be thread-safe. Experiment ``"0"`` named ``Default`` exists
    in every store from the moment it is opened.
    """

    #: Short human name shown by ``tracklog plugins`` and ``server-info``
    #: (``"SqlStore"``, ``"FileStore"`` are what MLflow's client recognises).
    store_type: ClassVar[str] = "TrackingStore"

    # -- experiments -------------------------------------------------------------------

    @abc.abstractmethod
    def create_experiment(
        self,
        name: str,
        artifact_location: str | None = None,
        tags: Sequence[ExperimentTag] = (),
    ) -> str:
        """Create an experiment and return its id (a decimal string).

        ``artifact_location`` None or empty means ``<default artifact root>/<id>``.
        A name held by any experiment, deleted ones included, is RESOURCE_ALREADY_EXISTS.
        """

    @abc.abstractmethod
    def get_experiment(self, experiment_id: str) -> Experiment:
        """The experiment, deleted or not; RESOURCE_DOES_NOT_EXIST if unknown,
        INVALID_PARAMETER_VALUE if the id is malformed for this store."""

    @abc.abstractmethod
    def get_experiment_by_name(self, name: str) -> Experiment | None:
        """The experiment with this exact name (deleted ones too), or None."""

    @abc.abstractmethod
    def search_experiments(
        self,
        view_type: ViewType = ViewType.ACTIVE_ONLY,
        max_results: int = 1000,
        filter: Filter = (),
        order_by: Sequence[OrderBy] = (),
        page_token: str | None = None,
    ) -> PagedList[Experiment]:
        """Experiments matching ``filter``; default order ``creation_time DESC`` and
        ``experiment_id ASC`` as the final tie-break; with ``order_by``, its clauses and
        then ``experiment_id DESC`` (unless a clause names it), as MLflow."""

    @abc.abstractmethod
    def rename_experiment(self, experiment_id: str, new_name: str) -> None:
        """Rename an active experiment; a deleted one is INVALID_PARAMETER_VALUE, a taken
        name RESOURCE_ALREADY_EXISTS."""

    @abc.abstractmethod
    def delete_experiment(self, experiment_id: str) -> None:
        """Soft-delete the experiment and all its runs; unknown or already deleted is
        RESOURCE_DOES_NOT_EXIST; the default experiment "0" is INVALID_PARAMETER_VALUE."""

    @abc.abstractmethod
    def restore_experiment(self, experiment_id: str) -> None:
        """Undo :meth:`delete_experiment`: every run of the experiment comes back, also
        runs deleted on their own before it (as MLflow); the experiment must be deleted,
        else RESOURCE_DOES_NOT_EXIST."""

    @abc.abstractmethod
    def set_experiment_tag(self, experiment_id: str, tag: ExperimentTag) -> None:
        """Set (overwrite) a tag on an active experiment."""

    @abc.abstractmethod
    def delete_experiment_tag(self, experiment_id: str, key: str) -> None:
        """Remove a tag; a missing key is RESOURCE_DOES_NOT_EXIST."""

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
        tag always agree; both given and different is INVALID_PARAMETER_VALUE. The
        artifact URI is ``<experiment artifact_location>/<run_id>/artifacts``.
        """

    @abc.abstractmethod
    def get_run(self, run_id: str) -> Run:
        """The run with its latest metrics, params, tags, inputs and outputs (deleted runs
        too); RESOURCE_DOES_NOT_EXIST if unknown."""

    @abc.abstractmethod
    def update_run_info(
        self,
        run_id: str,
        run_status: RunStatus | None = None,
        end_time: int | None = None,
        run_name: str | None = None,
    ) -> RunInfo:
        """Change only the fields given; a new name also rewrites ``mlflow.runName``."""

    @abc.abstractmethod
    def delete_run(self, run_id: str) -> None:
        """Soft-delete the run."""

    @abc.abstractmethod
    def restore_run(self, run_id: str) -> None:
        """Undo :meth:`delete_run`."""

    @abc.abstractmethod
    def log_batch(
        self,
        run_id: str,
        metrics: Sequence[Metric] = (),
        params: Sequence[Param] = (),
        tags: Sequence[RunTag] = (),
    ) -> None:
        """The write primitive: params, then metrics, then tags, atomically.

        A param already logged with another value is INVALID_PARAMETER_VALUE and nothing
        of the batch is written; the same value again is a no-op. Metric points
        identical in key, value, timestamp and step are stored once. The latest value
        per key is the point with the greatest ``(step, timestamp, value)``. Setting
        ``mlflow.runName`` renames the run.
        """

    def log_metric(self, run_id: str, metric: Metric) -> None:
        self.log_batch(run_id, metrics=[metric])

    def log_param(self, run_id: str, param: Param) -> None:
        self.log_batch(run_id, params=[param])

    def set_tag(self, run_id: str, tag: RunTag) -> None:
        self.log_batch(run_id, tags=[tag])

    @abc.abstractmethod
    def delete_tag(self, run_id: str, key: str) -> None:
        """Remove a run tag; a missing key is RESOURCE_DOES_NOT_EXIST."""

    @abc.abstractmethod
    def get_metric_history(
        self,
        run_id: str,
        metric_key: str,
        max_results: int | None = None,
        page_token: str | None = None,
    ) -> PagedList[Metric]:
        """All points of one metric ordered by timestamp, step, value. With
        ``max_results`` None: everything, no token. Unknown run or key: empty."""

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
        """Runs of the given experiments matching ``filter``.

        Ordering applies ``order_by`` in turn, then ``start_time DESC`` (unless already
        present), then ``run_id ASC``. Unknown experiment ids simply match nothing.
        """

    @abc.abstractmethod
    def log_inputs(
        self,
        run_id: str,
        datasets: Sequence[DatasetInput] = (),
        models: Sequence[LoggedModelInput] = (),
    ) -> None:
        """Record datasets (de-duplicated by name and digest) and models a run consumed."""

    @abc.abstractmethod
    def log_outputs(self, run_id: str, models: Sequence[LoggedModelOutput]) -> None:
        """Record logged models a run produced."""

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
        """A PENDING model with id ``m-<32 hex>`` and artifact location
        ``<experiment artifact_location>/models/<model_id>/artifacts``."""

    @abc.abstractmethod
    def get_logged_model(self, model_id: str, allow_deleted: bool = False) -> LoggedModel:
        """The model with its tags, params and metrics; RESOURCE_DOES_NOT_EXIST if
        unknown (or deleted and not ``allow_deleted``)."""

    @abc.abstractmethod
    def finalize_logged_model(self, model_id: str, status: LoggedModelStatus) -> LoggedModel:
        """Set the model's status (READY or UPLOAD_FAILED)."""

    @abc.abstractmethod
    def set_logged_model_tags(self, model_id: str, tags: Sequence[LoggedModelTag]) -> None:
        """Set (overwrite) tags."""

    @abc.abstractmethod
    def delete_logged_model_tag(self, model_id: str, key: str) -> None:
        """Remove a tag; a missing key is RESOURCE_DOES_NOT_EXIST."""

    @abc.abstractmethod
    def log_logged_model_params(
        self, model_id: str, params: Sequence[LoggedModelParameter]
    ) -> None:
        """Add params to a model."""

    @abc.abstractmethod
    def delete_logged_model(self, model_id: str) -> None:
        """Soft-delete a model."""

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
        """Active models of the experiments matching ``filter``; ``datasets`` (dicts with
        ``dataset_name`` and optional ``dataset_digest``) scope metric comparisons.
        Default order ``creation_timestamp DESC`` then ``model_id ASC``."""

    # -- lifecycle ---------------------------------------------------------------------

    def close(self) -> None:  # noqa: B027 - optional, a no-op by default
        """Release connections and files. Idempotent."""


class ModelRegistryStore(abc.ABC):
    """The model registry capability: registered models, versions, stages, aliases, tags.

    A tracking store that inherits from this class serves the registry routes.
    """

    @abc.abstractmethod
    def create_registered_model(
        self, name: str, tags: Sequence[tuple[str, str]] = (), description: str | None = None
    ) -> RegisteredModel: ...

    @abc.abstractmethod
    def get_registered_model(self, name: str) -> RegisteredModel: ...

    @abc.abstractmethod
    def rename_registered_model(self, name: str, new_name: str) -> RegisteredModel: ...

    @abc.abstractmethod
    def update_registered_model(self, name: str, description: str | None) -> RegisteredModel: ...

    @abc.abstractmethod
    def delete_registered_model(self, name: str) -> None: ...

    @abc.abstractmethod
    def search_registered_models(
        self,
        filter: Filter = (),
        max_results: int = 100,
        order_by: Sequence[OrderBy] = (),
        page_token: str | None = None,
    ) -> PagedList[RegisteredModel]: ...

    @abc.abstractmethod
    def get_latest_versions(
        self, name: str, stages: Sequence[str] = ()
    ) -> list[ModelVersion]: ...

    @abc.abstractmethod
    def set_registered_model_tag(self, name: str, key: str, value: str) -> None: ...

    @abc.abstractmethod
    def delete_registered_model_tag(self, name: str, key: str) -> None: ...

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
        """A new version ``max + 1`` (starting at "1"), status READY, stage "None"."""

    @abc.abstractmethod
    def get_model_version(self, name: str, version: str) -> ModelVersion: ...

    @abc.abstractmethod
    def update_model_version(
        self, name: str, version: str, description: str | None
    ) -> ModelVersion: ...

    @abc.abstractmethod
    def transition_model_version_stage(
        self, name: str, version: str, stage: str, archive_existing_versions: bool
    ) -> ModelVersion: ...

    @abc.abstractmethod
    def delete_model_version(self, name: str, version: str) -> None: ...

    @abc.abstractmethod
    def get_model_version_download_uri(self, name: str, version: str) -> str: ...

    @abc.abstractmethod
    def search_model_versions(
        self,
        filter: Filter = (),
        max_results: int = 10000,
        order_by: Sequence[OrderBy] = (),
        page_token: str | None = None,
    ) -> PagedList[ModelVersion]: ...

    @abc.abstractmethod
    def set_model_version_tag(self, name: str, version: str, key: str, value: str) -> None: ...

    @abc.abstractmethod
    def delete_model_version_tag(self, name: str, version: str, key: str) -> None: ...

    @abc.abstractmethod
    def set_registered_model_alias(self, name: str, alias: str, version: str) -> None: ...

    @abc.abstractmethod
    def delete_registered_model_alias(self, name: str, alias: str) -> None: ...

    @abc.abstractmethod
    def get_model_version_by_alias(self, name: str, alias: str) -> ModelVersion:
        """The version ``alias`` points at; an unknown model is RESOURCE_DOES_NOT_EXIST, an
        alias the model lacks INVALID_PARAMETER_VALUE (as MLflow)."""


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

