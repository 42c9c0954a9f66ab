"""The search AST and order-by clauses as ONE SQL statement per search.

Each comparison on a param/tag/metric/dataset becomes a correlated ``EXISTS`` on the
child table's primary key (so a run lacking the key never matches, ``!=`` included);
each ordering key becomes a ``LEFT OUTER JOIN`` on a primary key (no row multiplication)
with NULLs (and NaN metrics) sorted last in both directions.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa

from tracklog import errors
from tracklog.entities import ViewType
from tracklog.search.ast import Comparison, Filter, Kind, Op, OrderBy
from tracklog_store_sql.schema import (
    datasets,
    experiment_tags,
    experiments,
    input_tags,
    inputs,
    latest_metrics,
    logged_model_metrics,
    logged_model_params,
    logged_model_tags,
    logged_models,
    model_version_tags,
    model_versions,
    params,
    registered_model_tags,
    registered_models,
    runs,
    tags,
)
from tracklog_store_sql.sqlutil import nulls_last, numeric_condition, string_condition

_TRUE = sa.true()

RUN_ATTRIBUTES = {
    "run_id": runs.c.run_uuid,
    "run_name": runs.c.name,
    "status": runs.c.status,
    "user_id": runs.c.user_id,
    "artifact_uri": runs.c.artifact_uri,
    "start_time": runs.c.start_time,
    "end_time": runs.c.end_time,
}
_NUMERIC_RUN_ATTRIBUTES = {"start_time", "end_time"}


def _unsupported(what: str, cmp_or_key) -> errors.TracklogError:
    return errors.invalid(f"Invalid {what}: {cmp_or_key}")


def _value_condition(col, cmp: Comparison, dialect: str, numeric: bool):
    if numeric:
        return numeric_condition(col, cmp.op, cmp.value)
    return string_condition(col, cmp.op, cmp.value, dialect)


def _kv_exists(table, owner_col, owner, key: str, cmp: Comparison, dialect: str):
    """EXISTS / NOT EXISTS on a key-value child table (params, tags)."""
    key_match = sa.and_(owner_col == owner, table.c.key == key)
    if cmp.op is Op.IS_NULL:
        return ~sa.exists().where(key_match)
    if cmp.op is Op.IS_NOT_NULL:
        return sa.exists().where(key_match)
    return sa.exists().where(key_match, string_condition(table.c.value, cmp.op, cmp.value, dialect))


# --- runs --------------------------------------------------------------------------------


def run_condition(cmp: Comparison, dialect: str):
    kind, key = cmp.ident.kind, cmp.ident.key
    rid = runs.c.run_uuid
    if kind is Kind.METRIC:
        lm = latest_metrics.c
        if cmp.op in (Op.IS_NULL, Op.IS_NOT_NULL):
            present = sa.exists().where(lm.run_uuid == rid, lm.key == key)
            return ~present if cmp.op is Op.IS_NULL else present
        return sa.exists().where(
            lm.run_uuid == rid,
            lm.key == key,
            lm.is_nan == sa.false(),
            numeric_condition(lm.value, cmp.op, cmp.value),
        )
    if kind is Kind.PARAM:
        return _kv_exists(params, params.c.run_uuid, rid, key, cmp, dialect)
    if kind is Kind.TAG:
        return _kv_exists(tags, tags.c.run_uuid, rid, key, cmp, dialect)
    if kind is Kind.ATTRIBUTE:
        col = RUN_ATTRIBUTES.get(key)
        if col is None:
            raise _unsupported("attribute key", key)
        return _value_condition(col, cmp, dialect, key in _NUMERIC_RUN_ATTRIBUTES)
    if kind is Kind.DATASET:
        link = sa.and_(
            inputs.c.destination_type == "RUN",
            inputs.c.destination_id == rid,
            inputs.c.source_type == "DATASET",
        )
        if key in ("name", "digest"):
            col = datasets.c.name if key == "name" else datasets.c.digest
            return sa.exists().where(
                link,
                datasets.c.dataset_uuid == inputs.c.source_id,
                string_condition(col, cmp.op, cmp.value, dialect),
            )
        if key == "context":
            return sa.exists().where(
                link,
                input_tags.c.input_uuid == inputs.c.input_uuid,
                input_tags.c.name == "mlflow.data.context",
                string_condition(input_tags.c.value, cmp.op, cmp.value, dialect),
            )
        raise _unsupported("dataset key", key)
    raise _unsupported("filter", cmp)


def runs_query(
    dialect: str,
    experiment_ids: Sequence[int],
    view: ViewType,
    filter: Filter,
    order_by: Sequence[OrderBy],
):
    stages = [s.value for s in view.stages()]
    source = runs
    order_terms: list = []
    has_start_time = False
    for i, ob in enumerate(order_by):
        kind, key = ob.ident.kind, ob.ident.key
        if kind is Kind.METRIC:
            lm = latest_metrics.alias(f"o{i}")
            source = source.outerjoin(
                lm, sa.and_(lm.c.run_uuid == runs.c.run_uuid, lm.c.key == key)
            )
            missing = sa.or_(lm.c.value.is_(None), lm.c.is_nan == _TRUE)
            order_terms += nulls_last(lm.c.value, ob.ascending, missing)
        elif kind in (Kind.PARAM, Kind.TAG):
            table = (params if kind is Kind.PARAM else tags).alias(f"o{i}")
            source = source.outerjoin(
                table, sa.and_(table.c.run_uuid == runs.c.run_uuid, table.c.key == key)
            )
            order_terms += nulls_last(table.c.value, ob.ascending)
        elif kind is Kind.ATTRIBUTE and key in RUN_ATTRIBUTES:
            has_start_time = has_start_time or key == "start_time"
            order_terms += nulls_last(RUN_ATTRIBUTES[key], ob.ascending)
        else:
            raise _unsupported("order_by key", ob.ident)
    if not has_start_time:
        order_terms += nulls_last(runs.c.start_time, False)
    order_terms.append(runs.c.run_uuid.asc())
    stmt = (
        sa.select(runs.c.run_uuid)
        .select_from(source)
        .where(runs.c.experiment_id.in_(list(experiment_ids)), runs.c.lifecycle_stage.in_(stages))
    )
    for cmp in filter:
        stmt = stmt.where(run_condition(cmp, dialect))
    return stmt.order_by(*order_terms)


# --- experiments -------------------------------------------------------------------------

_EXPERIMENT_ATTRIBUTES = {
    "name": experiments.c.name,
    "experiment_id": experiments.c.experiment_id,
    "creation_time": experiments.c.creation_time,
    "last_update_time": experiments.c.last_update_time,
}


def experiment_condition(cmp: Comparison, dialect: str):
    kind, key = cmp.ident.kind, cmp.ident.key
    if kind is Kind.TAG:
        return _kv_exists(
            experiment_tags,
            experiment_tags.c.experiment_id,
            experiments.c.experiment_id,
            key,
            cmp,
            dialect,
        )
    if kind is Kind.ATTRIBUTE and key in _EXPERIMENT_ATTRIBUTES:
        col = _EXPERIMENT_ATTRIBUTES[key]
        if key == "experiment_id":
            # Ids are strings on the wire: compare as text so LIKE and '007' behave.
            return string_condition(
                sa.cast(col, sa.String(20)), cmp.op, _as_strings(cmp.value), dialect
            )
        return _value_condition(col, cmp, dialect, key != "name")
    raise _unsupported("experiment filter", cmp)


def _as_strings(value):
    if isinstance(value, tuple):
        return tuple(str(v) for v in value)
    return str(value)


def experiments_query(dialect: str, view: ViewType, filter: Filter, order_by: Sequence[OrderBy]):
    stages = [s.value for s in view.stages()]
    stmt = sa.select(experiments).where(experiments.c.lifecycle_stage.in_(stages))
    for cmp in filter:
        stmt = stmt.where(experiment_condition(cmp, dialect))
    terms: list = []
    keys = set()
    for ob in order_by:
        col = _EXPERIMENT_ATTRIBUTES.get(ob.ident.key)
        if ob.ident.kind is not Kind.ATTRIBUTE or col is None:
            raise _unsupported("order_by key", ob.ident)
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


def _dataset_scope(mm, ds: Sequence[dict[str, str]]):
    if not ds:
        return sa.true()
    alts = []
    for d in ds:
        cond = mm.c.dataset_name == d.get("dataset_name")
        if d.get("dataset_digest"):
            cond = sa.and_(cond, mm.c.dataset_digest == d["dataset_digest"])
        alts.append(cond)
    return sa.or_(*alts)


def _model_metric_value(key: str, ds: Sequence[dict[str, str]], alias: str):
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


def logged_model_condition(cmp: Comparison, dialect: str, ds: Sequence[dict[str, str]], i: int):
    kind, key = cmp.ident.kind, cmp.ident.key
    mid = logged_models.c.model_id
    if kind is Kind.METRIC:
        return numeric_condition(_model_metric_value(key, ds, f"f{i}"), cmp.op, cmp.value)
    if kind is Kind.PARAM:
        return _kv_exists(
            logged_model_params, logged_model_params.c.model_id, mid, key, cmp, dialect
        )
    if kind is Kind.TAG:
        return _kv_exists(logged_model_tags, logged_model_tags.c.model_id, mid, key, cmp, dialect)
    if kind is Kind.ATTRIBUTE and key in _MODEL_ATTRIBUTES:
        return _value_condition(
            _MODEL_ATTRIBUTES[key], cmp, dialect, key in _NUMERIC_MODEL_ATTRIBUTES
        )
    raise _unsupported("logged model filter", cmp)


def logged_models_query(
    dialect: str,
    experiment_ids: Sequence[int],
    filter: Filter,
    ds: Sequence[dict[str, str]],
    order_by: Sequence[OrderBy],
):
    stmt = sa.select(logged_models).where(
        logged_models.c.experiment_id.in_(list(experiment_ids)),
        logged_models.c.lifecycle_stage == "active",
    )
    for i, cmp in enumerate(filter):
        stmt = stmt.where(logged_model_condition(cmp, dialect, ds, i))
    terms: list = []
    for i, ob in enumerate(order_by):
        kind, key = ob.ident.kind, ob.ident.key
        if kind is Kind.METRIC:
            scope = ds
            if ob.dataset_name:
                scope = [{"dataset_name": ob.dataset_name, "dataset_digest": ob.dataset_digest}]
            terms += nulls_last(_model_metric_value(key, scope, f"o{i}"), ob.ascending)
        elif kind is Kind.ATTRIBUTE and key in _MODEL_ATTRIBUTES:
            terms += nulls_last(_MODEL_ATTRIBUTES[key], ob.ascending)
        else:
            raise _unsupported("order_by key", ob.ident)
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
    stmt = sa.select(registered_models)
    for cmp in filter:
        kind, key = cmp.ident.kind, cmp.ident.key
        if kind is Kind.TAG:
            stmt = stmt.where(
                _kv_exists(
                    registered_model_tags, registered_model_tags.c.name, rm.name, key, cmp, dialect
                )
            )
        elif kind is Kind.ATTRIBUTE and key == "name":
            stmt = stmt.where(string_condition(rm.name, cmp.op, cmp.value, dialect))
        else:
            raise _unsupported("registered model filter", cmp)
    terms: list = []
    for ob in order_by:
        col = cols.get(ob.ident.key)
        if ob.ident.kind is not Kind.ATTRIBUTE or col is None:
            raise _unsupported("order_by key", ob.ident)
        terms += nulls_last(col, ob.ascending)
    terms.append(rm.name.asc())
    return stmt.order_by(*terms)


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
    stmt = sa.select(model_versions)
    for cmp in filter:
        kind, key = cmp.ident.kind, cmp.ident.key
        if kind is Kind.TAG:
            mvt = model_version_tags.c
            key_match = sa.and_(mvt.name == mv.name, mvt.version == mv.version, mvt.key == key)
            if cmp.op is Op.IS_NULL:
                cond = ~sa.exists().where(key_match)
            elif cmp.op is Op.IS_NOT_NULL:
                cond = sa.exists().where(key_match)
            else:
                cond = sa.exists().where(
                    key_match, string_condition(mvt.value, cmp.op, cmp.value, dialect)
                )
            stmt = stmt.where(cond)
        elif kind is Kind.ATTRIBUTE and key in cols:
            stmt = stmt.where(_value_condition(cols[key], cmp, dialect, key == "version_number"))
        else:
            raise _unsupported("model version filter", cmp)
    terms: list = []
    for ob in order_by:
        col = cols.get(ob.ident.key)
        if ob.ident.kind is not Kind.ATTRIBUTE or col is None:
            raise _unsupported("order_by key", ob.ident)
        terms += nulls_last(col, ob.ascending)
    terms += [mv.name.asc(), mv.version.desc()]
    return stmt.order_by(*terms)
