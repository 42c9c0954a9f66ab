"""The parsed form of search filters and order-by clauses, as every store receives them.

A filter is a conjunction: a tuple of :class:`Comparison` that must all hold (an empty
tuple matches everything). The parser in :mod:`tracklog.search` produces these objects
after validating them, so a store never sees an unknown operator, a badly typed value or
an alias: identifiers are canonical.

Canonical identifiers by search kind:

runs
    ``metric`` / ``param`` / ``tag`` with any key; ``attribute`` with ``run_id``,
    ``run_name``, ``status``, ``user_id``, ``artifact_uri``, ``start_time``,
    ``end_time``; ``dataset`` with ``name``, ``digest``, ``context`` (the input tag
    ``mlflow.data.context``).
experiments
    ``attribute`` with ``name``, ``experiment_id``, ``creation_time``,
    ``last_update_time``; ``tag`` with any key.
logged models
    ``attribute`` with ``name``, ``model_id``, ``model_type``, ``status``,
    ``source_run_id``, ``creation_timestamp``, ``last_updated_timestamp``; ``metric``,
    ``param``, ``tag`` with any key.
registered models
    ``attribute`` ``name``; ``tag`` with any key.
model versions
    ``attribute`` with ``name``, ``run_id``, ``source_path``, ``version_number``;
    ``tag`` with any key.
traces
    ``attribute`` with ``trace_id``, ``status`` (the trace state), ``timestamp_ms``,
    ``execution_time_ms``, ``end_time_ms``, ``client_request_id``, ``run_id`` (the
    ``mlflow.sourceRun`` metadata or a linked run); ``tag`` and ``metadata`` with any
    key. ``name`` arrives as the tag ``mlflow.traceName``; ``tag`` comparisons on it
    may use ``IN`` / ``NOT IN``.

Values: numbers (``int`` or ``float``) for metrics and numeric attributes, ``str``
for everything else, a ``tuple[str, ...]`` for ``IN`` / ``NOT IN``, ``None`` for
``IS NULL`` / ``IS NOT NULL``.

Semantics every store must honour (the conformance kit checks them):

- A run (model, experiment) lacking the referenced metric/param/tag never matches a
  comparison on it, ``!=`` included; only ``IS NULL`` selects it.
- ``=``, ``!=`` and ``LIKE`` on strings are case-sensitive; ``ILIKE`` is not.
  ``LIKE`` patterns use ``%`` (any run of characters) and ``_`` (one character).
- Run metric comparisons use the run's latest value; a NaN latest value satisfies none.
  Logged-model metric comparisons match if any stored value of the key (within the
  requested datasets) satisfies them, as MLflow's SQL store does.
- In ordering, entities lacking the key (and NaN metrics) come last in both directions.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import TypeAlias

Value: TypeAlias = int | float | str | tuple[str, ...] | None


class Kind(StrEnum):
    METRIC = "metric"
    PARAM = "param"
    TAG = "tag"
    ATTRIBUTE = "attribute"
    DATASET = "dataset"
    METADATA = "metadata"


class Op(StrEnum):
    EQ = "="
    NE = "!="
    LT = "<"
    LE = "<="
    GT = ">"
    GE = ">="
    LIKE = "LIKE"
    ILIKE = "ILIKE"
    IN = "IN"
    NOT_IN = "NOT IN"
    IS_NULL = "IS NULL"
    IS_NOT_NULL = "IS NOT NULL"


@dataclass(frozen=True)
class Identifier:
    kind: Kind
    key: str

    def __str__(self) -> str:
        return f"{self.kind.value}.{self.key}"


@dataclass(frozen=True)
class Comparison:
    ident: Identifier
    op: Op
    value: Value


Filter = tuple[Comparison, ...]


@dataclass(frozen=True)
class OrderBy:
    """One ordering clause. ``dataset_name``/``dataset_digest`` scope a logged-model
    metric ordering to the metric values computed on that dataset."""

    ident: Identifier
    ascending: bool = True
    dataset_name: str | None = None
    dataset_digest: str | None = None
