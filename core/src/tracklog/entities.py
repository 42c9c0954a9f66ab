"""The vocabulary of experiment tracking: plain dataclasses (and the named tuple
``Metric``) shared by stores, server and SDK.

Field names follow the MLflow wire protocol (snake_case) so encoding is mechanical.
Times are integer epoch milliseconds. Stores return these objects; routes encode them.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from types import MethodType
from typing import Any, Generic, NamedTuple, TypeVar, overload

T = TypeVar("T")

#: The largest finite double: where a store or the wire cannot hold ±inf it holds this.
MAX_DOUBLE = sys.float_info.max


def now_ms() -> int:
    """The current time in epoch milliseconds, the unit of every timestamp here."""
    return int(time.time() * 1000)


class LifecycleStage(StrEnum):
    ACTIVE = "active"
    DELETED = "deleted"


class ViewType(StrEnum):
    """Which lifecycle stages a search returns."""

    ACTIVE_ONLY = "ACTIVE_ONLY"
    DELETED_ONLY = "DELETED_ONLY"
    ALL = "ALL"

    def stages(self) -> tuple[LifecycleStage, ...]:
        if self is ViewType.ACTIVE_ONLY:
            return (LifecycleStage.ACTIVE,)
        if self is ViewType.DELETED_ONLY:
            return (LifecycleStage.DELETED,)
        return (LifecycleStage.ACTIVE, LifecycleStage.DELETED)


class RunStatus(StrEnum):
    RUNNING = "RUNNING"
    SCHEDULED = "SCHEDULED"
    FINISHED = "FINISHED"
    FAILED = "FAILED"
    KILLED = "KILLED"

    @property
    def is_terminal(self) -> bool:
        return self in (RunStatus.FINISHED, RunStatus.FAILED, RunStatus.KILLED)


class LoggedModelStatus(StrEnum):
    LOGGED_MODEL_STATUS_UNSPECIFIED = "LOGGED_MODEL_STATUS_UNSPECIFIED"
    LOGGED_MODEL_PENDING = "LOGGED_MODEL_PENDING"
    LOGGED_MODEL_READY = "LOGGED_MODEL_READY"
    LOGGED_MODEL_UPLOAD_FAILED = "LOGGED_MODEL_UPLOAD_FAILED"


class ModelVersionStatus(StrEnum):
    PENDING_REGISTRATION = "PENDING_REGISTRATION"
    FAILED_REGISTRATION = "FAILED_REGISTRATION"
    READY = "READY"


class ModelVersionStage(StrEnum):
    NONE = "None"
    STAGING = "Staging"
    PRODUCTION = "Production"
    ARCHIVED = "Archived"


class PagedList(list[T], Generic[T]):
    """A page of results plus the opaque token of the next page (None on the last page)."""

    def __init__(self, items: Iterable[T] = (), token: str | None = None) -> None:
        super().__init__(items)
        self.token = token or None


# --- key/value pairs ------------------------------------------------------------------


@dataclass(frozen=True)
class Param:
    key: str
    value: str


@dataclass(frozen=True)
class RunTag:
    key: str
    value: str


@dataclass(frozen=True)
class ExperimentTag:
    key: str
    value: str


@dataclass(frozen=True)
class InputTag:
    key: str
    value: str


@dataclass(frozen=True)
class LoggedModelTag:
    key: str
    value: str


@dataclass(frozen=True)
class LoggedModelParameter:
    key: str
    value: str


class Metric(NamedTuple):
    """One point of a metric's history.

    ``value`` may be NaN or ±inf. ``model_id``, ``dataset_name`` and ``dataset_digest``
    link the point to a logged model and the dataset it was computed on; ``run_id`` is
    set where a metric is shown outside its run (a logged model's metrics).

    A named tuple rather than a dataclass: histories of 100,000 points are built and
    read on hot paths, and a tuple is built in C without a Python ``__init__`` per point
    and split into columns by ``zip(*metrics)``. It stays immutable and hashable.
    """

    key: str
    value: float
    timestamp: int
    step: int = 0
    model_id: str | None = None
    dataset_name: str | None = None
    dataset_digest: str | None = None
    run_id: str | None = None


#: ``metric_from_fields((key, value, timestamp, step, model_id, dataset_name,
#: dataset_digest, run_id))``: a :class:`Metric` from all eight fields, built in C without
#: the named tuple's Python-level ``__new__`` (a third of the cost of a history read). A
#: bound method, not ``functools.partial``: as fast as calling ``tuple.__new__`` inline
#: (a partial costs 12% more on a 100,000-point history).
metric_from_fields: Callable[[tuple[Any, ...]], Metric] = MethodType(tuple.__new__, Metric)


class MetricColumns(Sequence[Metric]):
    """Plain points (no model, dataset or run) held column by column: a sequence of
    :class:`Metric` like any other, whose points are built only when read.

    A validated batch of 1,000 points comes in this form, so a store that writes columns
    (:attr:`columns`) takes them as they are, without a tuple per point to build and
    split again. ``values`` are floats, ``timestamps`` and ``steps`` ints.
    """

    __slots__ = ("keys", "values", "timestamps", "steps")

    def __init__(self, keys: Sequence[str], values: Sequence[float],
                 timestamps: Sequence[int], steps: Sequence[int]) -> None:
        self.keys, self.values, self.timestamps, self.steps = keys, values, timestamps, steps

    @property
    def columns(self) -> tuple[Sequence[str], Sequence[float], Sequence[int], Sequence[int]]:
        return self.keys, self.values, self.timestamps, self.steps

    def __len__(self) -> int:
        return len(self.keys)

    def __iter__(self) -> Iterator[Metric]:
        return map(Metric, self.keys, self.values, self.timestamps, self.steps)

    @overload
    def __getitem__(self, i: int) -> Metric: ...
    @overload
    def __getitem__(self, i: slice) -> list[Metric]: ...

    def __getitem__(self, i: int | slice) -> Metric | list[Metric]:
        if isinstance(i, slice):
            return list(self)[i]
        return Metric(self.keys[i], self.values[i], self.timestamps[i], self.steps[i])

    def __eq__(self, other: object) -> bool:
        if isinstance(other, MetricColumns):
            return self.columns == other.columns
        if isinstance(other, (list, tuple)):
            return list(self) == list(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # mutable columns, like a list

    def __repr__(self) -> str:
        return f"MetricColumns({list(self)!r})"


# --- experiments ----------------------------------------------------------------------


@dataclass
class Experiment:
    experiment_id: str
    name: str
    artifact_location: str
    lifecycle_stage: LifecycleStage = LifecycleStage.ACTIVE
    tags: dict[str, str] = field(default_factory=dict)
    creation_time: int | None = None
    last_update_time: int | None = None


# --- runs -----------------------------------------------------------------------------


@dataclass
class RunInfo:
    run_id: str
    experiment_id: str
    run_name: str
    user_id: str
    status: RunStatus
    start_time: int | None
    end_time: int | None
    artifact_uri: str
    lifecycle_stage: LifecycleStage = LifecycleStage.ACTIVE


@dataclass
class RunData:
    """Latest value per metric key, params and tags, each keyed by name."""

    metrics: dict[str, Metric] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Dataset:
    name: str
    digest: str
    source_type: str
    source: str
    schema: str | None = None
    profile: str | None = None


@dataclass(frozen=True)
class DatasetInput:
    dataset: Dataset
    tags: tuple[InputTag, ...] = ()


@dataclass(frozen=True)
class LoggedModelInput:
    model_id: str


@dataclass(frozen=True)
class LoggedModelOutput:
    model_id: str
    step: int


@dataclass
class RunInputs:
    dataset_inputs: list[DatasetInput] = field(default_factory=list)
    model_inputs: list[LoggedModelInput] = field(default_factory=list)


@dataclass
class RunOutputs:
    model_outputs: list[LoggedModelOutput] = field(default_factory=list)


@dataclass
class Run:
    info: RunInfo
    data: RunData = field(default_factory=RunData)
    inputs: RunInputs = field(default_factory=RunInputs)
    outputs: RunOutputs = field(default_factory=RunOutputs)


# --- logged models (MLflow 3) ---------------------------------------------------------


@dataclass(frozen=True)
class ModelRegistration:
    name: str
    version: str


@dataclass
class LoggedModel:
    model_id: str
    experiment_id: str
    name: str
    artifact_location: str
    creation_timestamp: int
    last_updated_timestamp: int
    status: LoggedModelStatus = LoggedModelStatus.LOGGED_MODEL_PENDING
    model_type: str | None = None
    source_run_id: str | None = None
    status_message: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)
    metrics: list[Metric] = field(default_factory=list)
    lifecycle_stage: LifecycleStage = LifecycleStage.ACTIVE


# --- model registry -------------------------------------------------------------------


@dataclass
class ModelVersion:
    name: str
    version: str
    creation_timestamp: int
    last_updated_timestamp: int
    source: str
    current_stage: str = ModelVersionStage.NONE.value
    description: str = ""
    user_id: str | None = None
    run_id: str | None = None
    run_link: str = ""
    status: ModelVersionStatus = ModelVersionStatus.READY
    status_message: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    aliases: list[str] = field(default_factory=list)
    model_id: str | None = None


@dataclass(frozen=True)
class RegisteredModelAlias:
    alias: str
    version: str


@dataclass
class RegisteredModel:
    name: str
    creation_timestamp: int
    last_updated_timestamp: int
    description: str = ""
    user_id: str | None = None
    latest_versions: list[ModelVersion] = field(default_factory=list)
    tags: dict[str, str] = field(default_factory=dict)
    aliases: list[RegisteredModelAlias] = field(default_factory=list)


# --- traces ---------------------------------------------------------------------------


class TraceState(StrEnum):
    STATE_UNSPECIFIED = "STATE_UNSPECIFIED"
    OK = "OK"
    ERROR = "ERROR"
    IN_PROGRESS = "IN_PROGRESS"


class AssessmentSourceType(StrEnum):
    SOURCE_TYPE_UNSPECIFIED = "SOURCE_TYPE_UNSPECIFIED"
    HUMAN = "HUMAN"
    LLM_JUDGE = "LLM_JUDGE"
    CODE = "CODE"


class AssessmentKind(StrEnum):
    """Which value an assessment carries: a judgement, or the expected answer."""

    FEEDBACK = "feedback"
    EXPECTATION = "expectation"


@dataclass
class Assessment:
    """A feedback or an expectation attached to a trace (or one of its spans).

    ``value`` is the wire object of the value as given (``{"value": …, "error": …}`` for
    feedback, ``{"value": …}`` or ``{"serialized_value": …}`` for an expectation): any
    JSON, kept verbatim. Times are epoch milliseconds.
    """

    assessment_id: str
    trace_id: str
    name: str
    kind: AssessmentKind
    value: dict[str, Any]
    source_type: AssessmentSourceType = AssessmentSourceType.SOURCE_TYPE_UNSPECIFIED
    source_id: str = ""
    create_time: int = 0
    last_update_time: int = 0
    span_id: str | None = None
    rationale: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    overrides: str | None = None
    valid: bool = True


@dataclass
class TraceInfo:
    """What the store keeps of a trace; its spans are the artifact ``traces.json`` under
    the tag ``mlflow.artifactLocation``. ``request_time`` and ``execution_duration`` are
    milliseconds."""

    trace_id: str
    experiment_id: str
    request_time: int
    execution_duration: int | None = None
    state: TraceState = TraceState.OK
    request_preview: str | None = None
    response_preview: str | None = None
    client_request_id: str | None = None
    trace_metadata: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    assessments: list[Assessment] = field(default_factory=list)


# --- artifacts ------------------------------------------------------------------------


@dataclass(frozen=True)
class FileInfo:
    """One entry of an artifact listing: ``path`` is relative to the listed root."""

    path: str
    is_dir: bool
    file_size: int | None = None
