"""The search AST as SQL for experiments, logged models and the model registry: one
statement per search, built from the comparisons of :mod:`tracklog_store_sql.search`
(each comparison on a tag or param table an ``EXISTS``, grouped into one count past
``MAX_SEMI_JOINS``), each ordering key NULLs last."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa

from tracklog.entities import ViewType
from tracklog.search.ast import Comparison, Filter, Kind, OrderBy
from tracklog_store_sql.schema import (
    experiment_tags,
    experiments,
    logged_model_metrics,
    logged_model_params,
    logged_model_tags,
    logged_models,
    model_version_tags,
    model_versions,
    registered_model_tags,
    registered_models,
)
from tracklog_store_sql.search import (
    MAX_SEMI_JOINS,
    child_conditions,
    kv_conditions,
    split,
    unsupported,
    value_condition,
)
from tracklog_store_sql.sqlutil import in_ids, nulls_last, numeric_condition, string_condition

# --- experiments -------------------------------------------------------------------------

_EXPERIMENT_ATTRIBUTES = {
    "name": experiments.c.name,
    "experiment_id": experiments.c.experiment_id,
    "creation_time": experiments.c.creation_time,
    "last_update_time": experiments.c.last_update_time,
}


def experiment_conditions(filter: Filter, dialect: str) -> list:
    grouped, rest = split(filter, Kind.TAG)
    et = experiment_tags
    out = kv_conditions(
        grouped[Kind.TAG], et, et.c.experiment_id, experiments.c.experiment_id, dialect,
        len(grouped[Kind.TAG]) > MAX_SEMI_JOINS,
    )
    return out + [_experiment_attribute_condition(cmp, dialect) for cmp in rest]


def _experiment_attribute_condition(cmp: Comparison, dialect: str):
    kind, key = cmp.ident.kind, cmp.ident.key
    if kind is Kind.ATTRIBUTE and key in _EXPERIMENT_ATTRIBUTES:
        col = _EXPERIMENT_ATTRIBUTES[key]
        if key == "experiment_id":
            # Ids are strings on the wire: compare as text so LIKE and '007' behave.
            return string_condition(
                sa.cast(col, sa.String(20)), cmp.op, _as_strings(cmp.value), dialect
            )
        return value_condition(col, cmp, dialect, key != "name")
    raise unsupported("experiment filter", cmp)


def _as_strings(value):
    if isinstance(value, tuple):
        return tuple(str(v) for v in value)
    return str(value)


def experiments_query(dialect: str, view: ViewType, filter: Filter, order_by: Sequence[OrderBy]):
    stages = [s.value for s in view.stages()]
    stmt = sa.select(experiments).where(
        experiments.c.lifecycle_stage.in_(stages), *experiment_conditions(filter, dialect)
    )
    terms: list = []
    keys = set()
    for ob in order_by:
        col = _EXPERIMENT_ATTRIBUTES.get(ob.ident.key)
        if ob.ident.kind is not Kind.ATTRIBUTE or col is None:
            raise unsupported("order_by key", ob.ident)
        keys.add(ob.ident.key)
        terms += nulls_last(col, ob.ascending)
    if not order_by:
        terms += nulls_last(experiments.c.creation_time, False)
    if "experiment_id" not in keys:
        # MLflow breaks ties by ascending id by default, by descending id after clauses.
        tiebreak = experiments.c.experiment_id
        terms.append(tiebreak.desc() if order_by else tiebreak.asc())
    return stmt.order_by(*terms)


# --- logged models -----------------------------------------------------------------------

_MODEL_ATTRIBUTES = {
    "name": logged_models.c.name,
    "model_id": logged_models.c.model_id,
    "model_type": logged_models.c.model_type,
    "status": logged_models.c.status,
    "source_run_id": logged_models.c.source_run_id,
    "creation_timestamp": logged_models.c.creation_timestamp,
    "creation_time": logged_models.c.creation_timestamp,
    "last_updated_timestamp": logged_models.c.last_updated_timestamp,
    "last_updated_time": logged_models.c.last_updated_timestamp,
}
_NUMERIC_MODEL_ATTRIBUTES = {
    "creation_timestamp",
    "creation_time",
    "last_updated_timestamp",
    "last_updated_time",
}


def _dataset_scope(mm, ds: Sequence[Mapping[str, str | None]]):
    if not ds:
        return sa.true()
    alts = []
    for d in ds:
        cond = mm.c.dataset_name == d.get("dataset_name")
        if d.get("dataset_digest"):
            cond = sa.and_(cond, mm.c.dataset_digest == d["dataset_digest"])
        alts.append(cond)
    return sa.or_(*alts)


def _model_metric_value(key: str, ds: Sequence[Mapping[str, str | None]], alias: str):
    """The model's most recent value of metric ``key`` (within the dataset scope)."""
    mm = logged_model_metrics.alias(alias)
    return (
        sa.select(mm.c.value)
        .where(
            mm.c.model_id == logged_models.c.model_id,
            mm.c.key == key,
            mm.c.is_nan == sa.false(),
            _dataset_scope(mm, ds),
        )
        .order_by(mm.c.timestamp.desc(), mm.c.step.desc())
        .limit(1)
        .correlate(logged_models)
        .scalar_subquery()
    )


def logged_model_conditions(filter: Filter, dialect: str, ds: Sequence[dict[str, str]]) -> list:
    grouped, rest = split(filter, Kind.PARAM, Kind.TAG)
    mid = logged_models.c.model_id
    lmp, lmt = logged_model_params, logged_model_tags
    group = len(grouped[Kind.PARAM]) + len(grouped[Kind.TAG]) > MAX_SEMI_JOINS
    out = kv_conditions(grouped[Kind.PARAM], lmp, lmp.c.model_id, mid, dialect, group)
    out += kv_conditions(grouped[Kind.TAG], lmt, lmt.c.model_id, mid, dialect, group)
    return out + [
        _logged_model_row_condition(cmp, dialect, ds, i) for i, cmp in enumerate(rest)
    ]


def _logged_model_row_condition(
    cmp: Comparison, dialect: str, ds: Sequence[dict[str, str]], i: int
):
    """A metric or attribute comparison of a logged-model filter."""
    kind, key = cmp.ident.kind, cmp.ident.key
    if kind is Kind.METRIC:
        return numeric_condition(_model_metric_value(key, ds, f"f{i}"), cmp.op, cmp.value)
    if kind is Kind.ATTRIBUTE and key in _MODEL_ATTRIBUTES:
        return value_condition(
            _MODEL_ATTRIBUTES[key], cmp, dialect, key in _NUMERIC_MODEL_ATTRIBUTES
        )
    raise unsupported("logged model filter", cmp)


def logged_models_query(
    dialect: str,
    experiment_ids: Sequence[int],
    filter: Filter,
    ds: Sequence[dict[str, str]],
    order_by: Sequence[OrderBy],
):
    stmt = sa.select(logged_models).where(
        in_ids(logged_models.c.experiment_id, experiment_ids, dialect),
        logged_models.c.lifecycle_stage == "active",
        *logged_model_conditions(filter, dialect, ds),
    )
    terms: list = []
    for i, ob in enumerate(order_by):
        kind, key = ob.ident.kind, ob.ident.key
        if kind is Kind.METRIC:
            scope: Sequence[Mapping[str, str | None]] = ds
            if ob.dataset_name:
                scope = [{"dataset_name": ob.dataset_name, "dataset_digest": ob.dataset_digest}]
            terms += nulls_last(_model_metric_value(key, scope, f"o{i}"), ob.ascending)
        elif kind is Kind.ATTRIBUTE and key in _MODEL_ATTRIBUTES:
            terms += nulls_last(_MODEL_ATTRIBUTES[key], ob.ascending)
        else:
            raise unsupported("order_by key", ob.ident)
    if not order_by:
        terms.append(logged_models.c.creation_timestamp.desc())
    terms.append(logged_models.c.model_id.asc())
    return stmt.order_by(*terms)


# --- model registry ----------------------------------------------------------------------


def registered_models_query(dialect: str, filter: Filter, order_by: Sequence[OrderBy]):
    rm = registered_models.c
    cols = {
        "name": rm.name,
        "creation_timestamp": rm.creation_time,
        "timestamp": rm.creation_time,
        "last_updated_timestamp": rm.last_updated_time,
    }
    grouped, rest = split(filter, Kind.TAG)
    rmt = registered_model_tags
    stmt = sa.select(registered_models).where(
        *kv_conditions(grouped[Kind.TAG], rmt, rmt.c.name, rm.name, dialect,
                        len(grouped[Kind.TAG]) > MAX_SEMI_JOINS)
    )
    for cmp in rest:
        kind, key = cmp.ident.kind, cmp.ident.key
        if kind is Kind.ATTRIBUTE and key == "name":
            stmt = stmt.where(string_condition(rm.name, cmp.op, cmp.value, dialect))
        else:
            raise unsupported("registered model filter", cmp)
    return stmt.order_by(*_attribute_order(order_by, cols), rm.name.asc())


def model_versions_query(dialect: str, filter: Filter, order_by: Sequence[OrderBy]):
    mv = model_versions.c
    cols = {
        "name": mv.name,
        "run_id": mv.run_id,
        "source_path": mv.source,
        "version_number": mv.version,
        "creation_timestamp": mv.creation_time,
        "last_updated_timestamp": mv.last_updated_time,
    }
    grouped, rest = split(filter, Kind.TAG)
    mvt = model_version_tags.c
    stmt = sa.select(model_versions).where(
        *child_conditions(
            grouped[Kind.TAG],
            sa.and_(mvt.name == mv.name, mvt.version == mv.version),
            mvt.key,
            lambda c: string_condition(mvt.value, c.op, c.value, dialect),
            dialect,
            len(grouped[Kind.TAG]) > MAX_SEMI_JOINS,
        )
    )
    for cmp in rest:
        kind, key = cmp.ident.kind, cmp.ident.key
        if kind is Kind.ATTRIBUTE and key in cols:
            stmt = stmt.where(value_condition(cols[key], cmp, dialect, key == "version_number"))
        else:
            raise unsupported("model version filter", cmp)
    return stmt.order_by(*_attribute_order(order_by, cols), mv.name.asc(), mv.version.desc())


def _attribute_order(order_by: Sequence[OrderBy], cols: dict[str, Any]) -> list:
    """The ORDER BY terms of ``order_by`` over attribute columns ``cols`` (NULLs last);
    any other key is refused."""
    terms: list = []
    for ob in order_by:
        col = cols.get(ob.ident.key)
        if ob.ident.kind is not Kind.ATTRIBUTE or col is None:
            raise unsupported("order_by key", ob.ident)
        terms += nulls_last(col, ob.ascending)
    return terms
