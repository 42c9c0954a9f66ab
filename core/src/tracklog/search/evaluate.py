"""Evaluate parsed filters and orderings in Python, for stores that cannot push them down.

Semantics ("Search" in docs/protocol.md, :mod:`tracklog.search.ast`):

- an entity lacking the referenced metric/param/tag/attribute value never matches a
  comparison on it, ``!=`` and ``NOT IN`` included; only ``IS NULL`` selects it;
- ``=``/``!=``/``LIKE`` are case-sensitive, ``ILIKE`` is not; ``%`` and ``_`` are the only
  LIKE wildcards, every other character (``\\`` included) is literal;
- run metric comparisons use the latest value (``run.data.metrics``); NaN satisfies none;
- ``datasets.name``/``digest``/``context`` hold when ANY dataset input of the run matches;
  ``context`` is the input tag ``mlflow.data.context``;
- logged-model metric comparisons hold when any recorded value of the key (restricted to
  the request's ``datasets`` when given) satisfies them, as MLflow's SQL store does;
- in ordering, entities lacking the key (and NaN metrics) come last in both directions.

Filters are compiled once into predicates (:func:`compile_run_filter` etc.), so matching
10,000 entities costs one closure call per comparison.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import lru_cache
from typing import Any, TypeVar, cast

from tracklog.entities import (
    Experiment,
    LoggedModel,
    ModelVersion,
    RegisteredModel,
    Run,
    TraceInfo,
)
from tracklog.errors import invalid
from tracklog.search.ast import Comparison, Filter, Kind, Op, OrderBy

__all__ = [
    "compile_experiment_filter",
    "compile_logged_model_filter",
    "compile_model_version_filter",
    "compile_registered_model_filter",
    "compile_run_filter",
    "compile_trace_filter",
    "experiment_matches",
    "like_to_regex",
    "logged_model_matches",
    "model_version_matches",
    "registered_model_matches",
    "run_matches",
    "sort_experiments",
    "sort_logged_models",
    "sort_model_versions",
    "sort_registered_models",
    "sort_runs",
    "sort_traces",
]

T = TypeVar("T")
Predicate = Callable[[Any], bool]

DATASET_CONTEXT_TAG = "mlflow.data.context"
IS_PROMPT_TAG = "mlflow.prompt.is_prompt"


@lru_cache(maxsize=1024)
def like_to_regex(pattern: str, case_sensitive: bool) -> re.Pattern[str]:
    """Compile a SQL LIKE pattern: ``%`` = any run of characters, ``_`` = one character.

    The regex is anchored at both ends, so ``like_to_regex(p, True).match(s)`` is LIKE.
    It cannot backtrack badly: a run of ``%`` is one ``%``, and each piece between two
    ``%`` is matched at its leftmost place and never retried (an atomic group), which is
    always right for LIKE since every piece has a fixed length. Matching then costs at
    most (value length x pattern length) steps; a plain translation (``.*`` per ``%``)
    backtracks into every combination and took minutes on a 6,000-character value.
    """
    head, *middle = pattern.split("%")
    body = _like_piece(head)
    if middle:
        *inner, tail = middle
        body += "".join(f"(?>.*?{_like_piece(p)})" for p in inner if p)
        body += ".*" + _like_piece(tail)
    flags = re.DOTALL | (0 if case_sensitive else re.IGNORECASE)
    return re.compile(rf"(?:{body})\Z", flags)


def _like_piece(text: str) -> str:
    """A LIKE pattern without ``%`` as a regex: ``_`` any one character, the rest literal."""
    return "".join("." if ch == "_" else re.escape(ch) for ch in text)


# --- value tests ----------------------------------------------------------------------

_ORDER_OPS: dict[Op, Callable[[Any, Any], bool]] = {
    Op.EQ: operator.eq,
    Op.NE: operator.ne,
    Op.LT: operator.lt,
    Op.LE: operator.le,
    Op.GT: operator.gt,
    Op.GE: operator.ge,
}


def _value_test(cmp: Comparison, numeric: bool) -> Callable[[Any], bool]:
    """A test for one present (non-None) value of the compared field."""
    op, value = cmp.op, cmp.value
    if op in (Op.LIKE, Op.ILIKE):
        rx = like_to_regex(str(value), op is Op.LIKE)
        return lambda v: isinstance(v, str) and rx.match(v) is not None
    if op in (Op.IN, Op.NOT_IN):
        # The parser gives a tuple; a hand-built filter may hold any iterable of strings.
        members = frozenset(cast("Iterable[str]", value or ()))
        if op is Op.IN:
            return lambda v: v in members
        return lambda v: v not in members
    fn = _ORDER_OPS.get(op)
    if fn is None:
        raise invalid(f"Operator '{op.value}' is not supported for '{cmp.ident}'")
    if numeric:
        target = float(value)  # type: ignore[arg-type]

        def numeric_test(v: Any) -> bool:
            try:
                f = float(v)
            except (TypeError, ValueError):
                return False
            return not math.isnan(f) and fn(f, target)

        return numeric_test
    return lambda v: fn(v, value)


def _field_predicate(
    get: Callable[[Any], Any], cmp: Comparison, numeric: bool = False
) -> Predicate:
    """Combine a field getter (None = missing) with the comparison of ``cmp``."""
    if cmp.op is Op.IS_NULL:
        return lambda e: get(e) is None
    if cmp.op is Op.IS_NOT_NULL:
        return lambda e: get(e) is not None
    test = _value_test(cmp, numeric)

    def predicate(e: Any) -> bool:
        v = get(e)
        return v is not None and test(v)

    return predicate


def _enum_value(v: Any) -> Any:
    return getattr(v, "value", v)


def _attr_getter(path: Callable[[Any], Any], name: str) -> Callable[[Any], Any]:
    return lambda e: _enum_value(getattr(path(e), name, None))


def _all(predicates: list[Predicate]) -> Predicate:
    if not predicates:
        return lambda e: True
    if len(predicates) == 1:
        return predicates[0]
    return lambda e: all(p(e) for p in predicates)


def _unsupported(cmp: Comparison, what: str) -> Exception:
    return invalid(f"Invalid search identifier '{cmp.ident}' for {what}")


# --- runs -----------------------------------------------------------------------------

_RUN_NUMERIC_ATTRS = frozenset({"start_time", "end_time"})


def _is_nan(v: Any) -> bool:
    return isinstance(v, float) and math.isnan(v)


def _run_metric(key: str) -> Callable[[Run], Any]:
    def get(run: Run) -> Any:
        m = run.data.metrics.get(key)
        return None if m is None else m.value

    return get


def _run_dataset_predicate(cmp: Comparison) -> Predicate:
    test = _value_test(cmp, numeric=False)
    key = cmp.ident.key
    if key == "context":

        def context_matches(run: Run) -> bool:
            return any(
                tag.key == DATASET_CONTEXT_TAG and test(tag.value)
                for di in run.inputs.dataset_inputs
                for tag in di.tags
            )

        return context_matches

    def dataset_matches(run: Run) -> bool:
        return any(test(getattr(di.dataset, key)) for di in run.inputs.dataset_inputs)

    return dataset_matches


def _run_predicate(cmp: Comparison) -> Predicate:
    kind, key = cmp.ident.kind, cmp.ident.key
    if kind is Kind.METRIC:
        get = _run_metric(key)
        predicate = _field_predicate(get, cmp, numeric=True)
        if cmp.op is Op.NE:  # a run's NaN fails every comparison but != (as MLflow)
            return lambda r: predicate(r) or _is_nan(get(r))
        return predicate
    if kind is Kind.PARAM:
        return _field_predicate(lambda r: r.data.params.get(key), cmp)
    if kind is Kind.TAG:
        return _field_predicate(lambda r: r.data.tags.get(key), cmp)
    if kind is Kind.ATTRIBUTE:
        numeric = key in _RUN_NUMERIC_ATTRS
        return _field_predicate(_attr_getter(lambda r: r.info, key), cmp, numeric)
    if kind is Kind.DATASET:
        return _run_dataset_predicate(cmp)
    raise _unsupported(cmp, "runs")


def compile_run_filter(flt: Filter) -> Predicate:
    """A predicate ``run -> bool`` for ``flt``; compile once, call per run."""
    return _all([_run_predicate(c) for c in flt])


def run_matches(run: Run, flt: Filter) -> bool:
    """Whether ``run`` satisfies every comparison of ``flt``."""
    return _compiled(compile_run_filter, flt)(run)


# --- experiments ----------------------------------------------------------------------

_EXPERIMENT_NUMERIC_ATTRS = frozenset({"creation_time", "last_update_time"})


def _experiment_predicate(cmp: Comparison) -> Predicate:
    kind, key = cmp.ident.kind, cmp.ident.key
    if kind is Kind.TAG:
        return _field_predicate(lambda e: e.tags.get(key), cmp)
    if kind is Kind.ATTRIBUTE:
        numeric = key in _EXPERIMENT_NUMERIC_ATTRS
        return _field_predicate(lambda e: _enum_value(getattr(e, key, None)), cmp, numeric)
    raise _unsupported(cmp, "experiments")


def compile_experiment_filter(flt: Filter) -> Predicate:
    """A predicate ``experiment -> bool`` for ``flt``."""
    return _all([_experiment_predicate(c) for c in flt])


def experiment_matches(experiment: Experiment, flt: Filter) -> bool:
    """Whether ``experiment`` satisfies every comparison of ``flt``."""
    return _compiled(compile_experiment_filter, flt)(experiment)


# --- logged models --------------------------------------------------------------------

_LOGGED_MODEL_NUMERIC_ATTRS = frozenset({"creation_timestamp", "last_updated_timestamp"})


def _on_datasets(metric: Any, datasets: Sequence[Mapping[str, Any]]) -> bool:
    return any(
        metric.dataset_name == d.get("dataset_name")
        and (not d.get("dataset_digest") or metric.dataset_digest == d.get("dataset_digest"))
        for d in datasets
    )


def _logged_model_predicate(cmp: Comparison, datasets: Sequence[Mapping[str, Any]]) -> Predicate:
    kind, key = cmp.ident.kind, cmp.ident.key
    if kind is Kind.METRIC:
        test = _value_test(cmp, numeric=True)

        def metric_matches(model: LoggedModel) -> bool:
            return any(
                m.key == key and (not datasets or _on_datasets(m, datasets)) and test(m.value)
                for m in model.metrics
            )

        return metric_matches
    if kind is Kind.PARAM:
        return _field_predicate(lambda m: m.params.get(key), cmp)
    if kind is Kind.TAG:
        return _field_predicate(lambda m: m.tags.get(key), cmp)
    if kind is Kind.ATTRIBUTE:
        numeric = key in _LOGGED_MODEL_NUMERIC_ATTRS
        return _field_predicate(lambda m: _enum_value(getattr(m, key, None)), cmp, numeric)
    raise _unsupported(cmp, "logged models")


def compile_logged_model_filter(
    flt: Filter, datasets: Sequence[Mapping[str, Any]] | None = None
) -> Predicate:
    """A predicate for logged models.

    ``datasets`` (``[{"dataset_name": ..., "dataset_digest": ...?}]``) restricts metric
    comparisons to values computed on those datasets; with no metric comparison in ``flt``
    it selects models having any metric on them (as MLflow does).
    """
    scope = tuple(datasets or ())
    predicates = [_logged_model_predicate(c, scope) for c in flt]
    if scope and not any(c.ident.kind is Kind.METRIC for c in flt):
        predicates.append(lambda m: any(_on_datasets(x, scope) for x in m.metrics))
    return _all(predicates)


def logged_model_matches(
    model: LoggedModel, flt: Filter, datasets: Sequence[Mapping[str, Any]] | None = None
) -> bool:
    """Whether ``model`` satisfies ``flt`` (see :func:`compile_logged_model_filter`)."""
    return compile_logged_model_filter(flt, datasets)(model)


# --- registered models and model versions ---------------------------------------------


def _registry_tag_predicate(cmp: Comparison, tags_of: Callable[[Any], dict]) -> Predicate:
    key = cmp.ident.key
    predicate = _field_predicate(lambda e: tags_of(e).get(key), cmp)
    if key != IS_PROMPT_TAG:
        return predicate
    # Models lacking the prompt tag are not prompts: MLflow treats the missing tag as
    # 'false', which the registry's own "exclude prompts" filter relies on.
    missing_matches = (cmp.op is Op.EQ and cmp.value == "false") or (
        cmp.op is Op.NE and cmp.value == "true"
    )
    return lambda e: missing_matches if key not in tags_of(e) else predicate(e)


def _registered_model_predicate(cmp: Comparison) -> Predicate:
    kind, key = cmp.ident.kind, cmp.ident.key
    if kind is Kind.TAG:
        return _registry_tag_predicate(cmp, lambda m: m.tags)
    if kind is Kind.ATTRIBUTE:
        numeric = key in ("creation_timestamp", "last_updated_timestamp")
        return _field_predicate(lambda m: getattr(m, key, None), cmp, numeric)
    raise _unsupported(cmp, "registered models")


def compile_registered_model_filter(flt: Filter) -> Predicate:
    """A predicate for registered models; a missing ``mlflow.prompt.is_prompt`` tag reads
    as ``'false'``, as in MLflow's registry."""
    return _all([_registered_model_predicate(c) for c in flt])


def registered_model_matches(model: RegisteredModel, flt: Filter) -> bool:
    """Whether ``model`` satisfies every comparison of ``flt``."""
    return _compiled(compile_registered_model_filter, flt)(model)


def _version_number(mv: ModelVersion) -> int | None:
    try:
        return int(mv.version)
    except (TypeError, ValueError):
        return None


_MODEL_VERSION_GETTERS: dict[str, Callable[[ModelVersion], Any]] = {
    "name": lambda mv: mv.name,
    "run_id": lambda mv: mv.run_id,
    "source_path": lambda mv: mv.source,
    "version_number": _version_number,
    "creation_timestamp": lambda mv: mv.creation_timestamp,
    "last_updated_timestamp": lambda mv: mv.last_updated_timestamp,
}
_MODEL_VERSION_NUMERIC = frozenset(
    {"version_number", "creation_timestamp", "last_updated_timestamp"}
)


def _model_version_predicate(cmp: Comparison) -> Predicate:
    kind, key = cmp.ident.kind, cmp.ident.key
    if kind is Kind.TAG:
        return _registry_tag_predicate(cmp, lambda mv: mv.tags)
    if kind is Kind.ATTRIBUTE and key in _MODEL_VERSION_GETTERS:
        return _field_predicate(_MODEL_VERSION_GETTERS[key], cmp, key in _MODEL_VERSION_NUMERIC)
    raise _unsupported(cmp, "model versions")


def compile_model_version_filter(flt: Filter) -> Predicate:
    """A predicate for model versions (``version_number`` compares as an integer,
    ``source_path`` is the version's ``source``)."""
    return _all([_model_version_predicate(c) for c in flt])


def model_version_matches(mv: ModelVersion, flt: Filter) -> bool:
    """Whether ``mv`` satisfies every comparison of ``flt``."""
    return _compiled(compile_model_version_filter, flt)(mv)


def _compiled(compiler: Callable[[Filter], Predicate], flt: Filter) -> Predicate:
    try:
        return _compiled_cached(compiler, flt)
    except TypeError:  # a hand-built filter holding a list: not hashable, compile afresh
        return compiler(flt)


@lru_cache(maxsize=256)
def _compiled_cached(compiler: Callable[[Filter], Predicate], flt: Filter) -> Predicate:
    return compiler(flt)


# --- ordering -------------------------------------------------------------------------

Getter = Callable[[Any], Any]


_NAN, _MISSING = 1, 2


def _sortable(v: Any) -> tuple[int, Any]:
    """``(0, value)``, or the rank of a NaN or missing value, which sort after every value
    in both directions: NaN first, then missing (as MLflow)."""
    v = _enum_value(v)
    if v is None:
        return _MISSING, None
    if isinstance(v, float) and math.isnan(v):
        return _NAN, None
    return 0, v


def _id_key(v: Any) -> Any:
    """Numeric ids ("2" < "10") order as numbers, like the SQL stores' integer columns."""
    s = str(v)
    return (0, int(s), "") if s.isdigit() else (1, 0, s)


def _sorted(items: Iterable[T], keys: Sequence[tuple[Getter, bool]]) -> list[T]:
    """Stable multi-key sort; each key is (getter, ascending); NaN, then None, go last."""
    out = list(items)
    for get, ascending in reversed(keys):
        decorated = [(_sortable(get(x)), x) for x in out]
        present = [d for d in decorated if d[0][0] == 0]
        present.sort(key=lambda d: d[0][1], reverse=not ascending)
        nan = [d[1] for d in decorated if d[0][0] == _NAN]
        missing = [d[1] for d in decorated if d[0][0] == _MISSING]
        out = [d[1] for d in present] + nan + missing
    return out


def _with_tiebreaks(
    order_by: Sequence[OrderBy],
    resolve: Callable[[OrderBy], Getter],
    tiebreaks: Sequence[tuple[str, bool, Getter]],
) -> list[tuple[Getter, bool]]:
    keys = [(resolve(ob), ob.ascending) for ob in order_by]
    present = {ob.ident.key for ob in order_by if ob.ident.kind is Kind.ATTRIBUTE}
    keys += [(get, asc) for name, asc, get in tiebreaks if name not in present]
    return keys


def _run_getter(ob: OrderBy) -> Getter:
    kind, key = ob.ident.kind, ob.ident.key
    if kind is Kind.METRIC:
        return _run_metric(key)
    if kind is Kind.PARAM:
        return lambda r: r.data.params.get(key)
    if kind is Kind.TAG:
        return lambda r: r.data.tags.get(key)
    if kind is Kind.ATTRIBUTE:
        return _attr_getter(lambda r: r.info, key)
    raise invalid(f"Invalid identifier type '{kind.value}' in order_by for runs")


def sort_runs(runs: Iterable[Run], order_by: Sequence[OrderBy] = ()) -> list[Run]:
    """Order runs by ``order_by``, then ``start_time DESC`` (unless given), then run_id."""
    keys = _with_tiebreaks(
        order_by,
        _run_getter,
        [
            ("start_time", False, lambda r: r.info.start_time),
            ("run_id", True, lambda r: r.info.run_id),
        ],
    )
    return _sorted(runs, keys)


def _plain_attr(ob: OrderBy, what: str) -> Getter:
    if ob.ident.kind is not Kind.ATTRIBUTE:
        raise invalid(f"Invalid order_by entity '{ob.ident.kind.value}' for {what}")
    key = ob.ident.key
    return lambda e: getattr(e, key, None)


def _experiment_getter(ob: OrderBy) -> Getter:
    get = _plain_attr(ob, "experiments")
    return (lambda e: _id_key(e.experiment_id)) if ob.ident.key == "experiment_id" else get


def sort_experiments(
    experiments: Iterable[Experiment], order_by: Sequence[OrderBy] = ()
) -> list[Experiment]:
    """Order experiments as MLflow's SQL store does.

    No ``order_by``: ``creation_time DESC, experiment_id ASC``. Otherwise the clauses, then
    ``experiment_id DESC`` unless they name it. Numeric ids order as numbers.
    """
    tiebreaks: list[tuple[str, bool, Getter]] = []
    if not order_by:
        tiebreaks.append(("creation_time", False, lambda e: e.creation_time))
    tiebreaks.append(("experiment_id", not order_by, lambda e: _id_key(e.experiment_id)))
    return _sorted(experiments, _with_tiebreaks(order_by, _experiment_getter, tiebreaks))


def _logged_model_metric(ob: OrderBy) -> Getter:
    key = ob.ident.key

    def get(model: LoggedModel) -> Any:
        latest = None
        for m in model.metrics:
            if m.key != key:
                continue
            if ob.dataset_name and m.dataset_name != ob.dataset_name:
                continue
            if ob.dataset_digest and m.dataset_digest != ob.dataset_digest:
                continue
            if latest is None or (m.timestamp, m.step) > (latest.timestamp, latest.step):
                latest = m
        return None if latest is None else latest.value

    return get


def _logged_model_getter(ob: OrderBy) -> Getter:
    if ob.ident.kind is Kind.METRIC:
        return _logged_model_metric(ob)
    return _plain_attr(ob, "logged models")


def sort_logged_models(
    models: Iterable[LoggedModel], order_by: Sequence[OrderBy] = ()
) -> list[LoggedModel]:
    """Order logged models, then ``creation_timestamp DESC``, then ``model_id ASC``.

    A metric ordering uses the most recent value (by timestamp, then step) of the key,
    restricted to ``dataset_name``/``dataset_digest`` when the clause names them.
    """
    keys = _with_tiebreaks(
        order_by,
        _logged_model_getter,
        [
            ("creation_timestamp", False, lambda m: m.creation_timestamp),
            ("model_id", True, lambda m: m.model_id),
        ],
    )
    return _sorted(models, keys)


def sort_registered_models(
    models: Iterable[RegisteredModel], order_by: Sequence[OrderBy] = ()
) -> list[RegisteredModel]:
    """Order registered models by ``order_by``, then ``name ASC``."""
    keys = _with_tiebreaks(
        order_by,
        lambda ob: _plain_attr(ob, "registered models"),
        [("name", True, lambda m: m.name)],
    )
    return _sorted(models, keys)


def _model_version_getter(ob: OrderBy) -> Getter:
    _plain_attr(ob, "model versions")
    get = _MODEL_VERSION_GETTERS.get(ob.ident.key)
    if get is None:
        raise invalid(f"Invalid order_by key '{ob.ident.key}' for model versions")
    return get


def sort_model_versions(
    versions: Iterable[ModelVersion], order_by: Sequence[OrderBy] = ()
) -> list[ModelVersion]:
    """Order model versions; by default ``last_updated_timestamp DESC`` first (MLflow's SQL
    store), always tie-broken by ``name ASC`` then ``version_number DESC``."""
    tiebreaks: list[tuple[str, bool, Getter]] = []
    if not order_by:
        tiebreaks.append(("last_updated_timestamp", False, lambda mv: mv.last_updated_timestamp))
    tiebreaks += [("name", True, lambda mv: mv.name), ("version_number", False, _version_number)]
    return _sorted(versions, _with_tiebreaks(order_by, _model_version_getter, tiebreaks))


# --- traces ---------------------------------------------------------------------------

TRACE_SOURCE_RUN = "mlflow.sourceRun"
_TRACE_NUMERIC_ATTRS = frozenset({"timestamp_ms", "execution_time_ms", "end_time_ms"})


def _trace_end(t: TraceInfo) -> int | None:
    if t.execution_duration is None:
        return None
    return t.request_time + t.execution_duration


_TRACE_GETTERS: dict[str, Getter] = {
    "trace_id": lambda t: t.trace_id,
    "status": lambda t: _enum_value(t.state),
    "timestamp_ms": lambda t: t.request_time,
    "execution_time_ms": lambda t: t.execution_duration,
    "end_time_ms": _trace_end,
    "client_request_id": lambda t: t.client_request_id,
    "experiment_id": lambda t: _id_key(t.experiment_id),
    "run_id": lambda t: t.trace_metadata.get(TRACE_SOURCE_RUN),
}


def _trace_predicate(
    cmp: Comparison, linked_runs: Callable[[TraceInfo], Iterable[str]]
) -> Predicate:
    kind, key = cmp.ident.kind, cmp.ident.key
    if kind is Kind.TAG:
        return _field_predicate(lambda t: t.tags.get(key), cmp)
    if kind is Kind.METADATA:
        return _field_predicate(lambda t: t.trace_metadata.get(key), cmp)
    if kind is Kind.ATTRIBUTE and key == "run_id":
        # The run the trace was recorded in, or any run it was linked to.
        test = _value_test(cmp, numeric=False)

        def run_predicate(t: TraceInfo) -> bool:
            runs = [r for r in (t.trace_metadata.get(TRACE_SOURCE_RUN), *linked_runs(t)) if r]
            if cmp.op in (Op.NE, Op.NOT_IN):
                return bool(runs) and all(test(r) for r in runs)
            return any(test(r) for r in runs)

        return run_predicate
    if kind is Kind.ATTRIBUTE and key in _TRACE_GETTERS and key != "experiment_id":
        return _field_predicate(_TRACE_GETTERS[key], cmp, numeric=key in _TRACE_NUMERIC_ATTRS)
    raise _unsupported(cmp, "traces")


def compile_trace_filter(
    flt: Filter, linked_runs: Callable[[TraceInfo], Iterable[str]] | None = None
) -> Predicate:
    """A predicate over :class:`TraceInfo` for a filter parsed by ``parse_trace_filter``.

    ``linked_runs(trace)`` gives the runs a trace was linked to besides its
    ``mlflow.sourceRun`` metadata; ``run_id`` comparisons hold if any of them matches
    (``!=`` / ``NOT IN``: if all of them do).
    """
    runs_of = linked_runs or (lambda t: ())
    return _all([_trace_predicate(c, runs_of) for c in flt])


def _trace_getter(ob: OrderBy) -> Getter:
    kind, key = ob.ident.kind, ob.ident.key
    if kind is Kind.TAG:
        return lambda t: t.tags.get(key)
    if kind is Kind.METADATA:
        return lambda t: t.trace_metadata.get(key)
    if kind is Kind.ATTRIBUTE and key in _TRACE_GETTERS:
        return _TRACE_GETTERS[key]
    raise invalid(f"Invalid identifier type '{kind.value}' in order_by for traces")


def sort_traces(traces: Iterable[TraceInfo], order_by: Sequence[OrderBy] = ()) -> list[TraceInfo]:
    """Order traces by ``order_by``, then ``timestamp_ms DESC`` (unless given), then
    ``trace_id ASC``; traces lacking a key come last either way."""
    keys = _with_tiebreaks(
        order_by,
        _trace_getter,
        [
            ("timestamp_ms", False, lambda t: t.request_time),
            ("trace_id", True, lambda t: t.trace_id),
        ],
    )
    return _sorted(traces, keys)
