"""The search AST and order-by clauses as ONE SQL statement per search.

Each comparison on a param/tag/metric/dataset becomes a correlated ``EXISTS`` on the
child table's primary key (so a run lacking the key never matches, ``!=`` included),
which the planner turns into a semi-join. Past :data:`MAX_SEMI_JOINS` such comparisons,
PostgreSQL's planning time explodes, so a long filter is compiled differently: the
comparisons on one child table become ONE correlated count (a run has at most one row per
key, so "every key's row satisfies its comparisons" is "the rows satisfying them number
as many as the keys"), and dataset comparisons, which cannot be counted (different
inputs may satisfy different ones), stay per-row tests inside a ``CASE``. Each ordering
key becomes a ``LEFT OUTER JOIN`` on a primary key (no row multiplication) with NULLs
sorted last in both directions (NaN metrics just before them).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

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
from tracklog_store_sql.sqlutil import in_ids, nulls_last, numeric_condition, string_condition

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


#: Backends whose key comparison ignores trailing spaces ('k' = 'k '): such keys share a row.
_PAD_SPACE = frozenset({"mysql", "mariadb", "mssql"})


#: Up to this many comparisons on child tables, each is its own ``EXISTS``: the planner
#: turns them into semi-joins and picks the best order. Beyond it PostgreSQL's planning
#: time explodes (4 semi-joins: 1 ms, 6: 12 ms, 8: 125 ms, 60: 2.5 s, 100: minutes), so
#: comparisons are grouped.
MAX_SEMI_JOINS = 6


def _child_conditions(clauses: Sequence[Comparison], owner_match, key_col, value_condition,
                      dialect: str, group: bool) -> list:
    """WHERE conditions for comparisons on one child table keyed by (owner, key).

    ``owner_match`` ties a child row to the searched entity, ``value_condition(cmp)`` is
    the comparison on a present row. Each comparison is an ``EXISTS`` (``NOT EXISTS`` for
    IS NULL), unless ``group`` and there are several: then one correlated count of the rows
    satisfying their key's comparisons must equal the number of keys (a row per key at
    most), and one ``NOT EXISTS`` covers the IS NULL keys. A count is a per-row test the
    planner does not join, so planning stays instant; it costs an index probe per
    candidate row, which is why lone and few comparisons keep their ``EXISTS``.
    """
    if not group or len(clauses) == 1:
        return [_exists(cmp, owner_match, key_col, value_condition) for cmp in clauses]
    absent: list[str] = []
    keys: dict[str, tuple[str, list]] = {}
    for cmp in clauses:
        key = cmp.ident.key
        if cmp.op is Op.IS_NULL:
            absent.append(key)
            continue
        _, conditions = keys.setdefault(key.rstrip(" ") if dialect in _PAD_SPACE else key,
                                        (key, []))
        if cmp.op is not Op.IS_NOT_NULL:
            conditions.append(value_condition(cmp))
    out = []
    if keys:
        satisfied = sa.or_(*[sa.and_(key_col == key, *conds) for key, conds in keys.values()])
        count = sa.select(sa.func.count()).where(owner_match, satisfied).scalar_subquery()
        out.append(count == len(keys))
    if absent:
        out.append(~sa.exists().where(owner_match, in_ids(key_col, absent, dialect)))
    return out


def _exists(cmp: Comparison, owner_match, key_col, value_condition):
    key_match = sa.and_(owner_match, key_col == cmp.ident.key)
    if cmp.op is Op.IS_NULL:
        return ~sa.exists().where(key_match)
    if cmp.op is Op.IS_NOT_NULL:
        return sa.exists().where(key_match)
    return sa.exists().where(key_match, value_condition(cmp))


def _kv_conditions(clauses: Sequence[Comparison], table, owner_col, owner, dialect: str,
                   group: bool) -> list:
    """Conditions for every comparison of ``clauses`` on a (owner, key, value) table."""
    return _child_conditions(
        clauses,
        owner_col == owner,
        table.c.key,
        lambda c: string_condition(table.c.value, c.op, c.value, dialect),
        dialect,
        group,
    )


def _split(filter: Filter, *kinds: Kind) -> tuple[dict[Kind, list[Comparison]], list]:
    """The comparisons on each of ``kinds`` (child tables), and the others in order."""
    grouped: dict[Kind, list[Comparison]] = {k: [] for k in kinds}
    rest = []
    for cmp in filter:
        if cmp.ident.kind in grouped:
            grouped[cmp.ident.kind].append(cmp)
        else:
            rest.append(cmp)
    return grouped, rest


def _unplanned(condition, many: bool):
    """``condition`` kept out of the planner's join search when there are ``many``
    comparisons: an EXISTS inside a CASE stays a per-row test, not a semi-join."""
    return sa.case((condition, 1), else_=0) == 1 if many else condition


# --- runs --------------------------------------------------------------------------------


def _latest_metric_value(cmp: Comparison, lm=latest_metrics.c):
    # NaN is stored as 0 with is_nan set: it fails every comparison but != (as MLflow).
    if cmp.op is Op.NE:
        return sa.or_(lm.is_nan == _TRUE, numeric_condition(lm.value, cmp.op, cmp.value))
    return sa.and_(lm.is_nan == sa.false(), numeric_condition(lm.value, cmp.op, cmp.value))


def run_conditions(filter: Filter, dialect: str) -> list:
    """The WHERE conditions of a run filter (see the module docstring for their shape)."""
    rid = runs.c.run_uuid
    grouped, rest = _split(filter, Kind.METRIC, Kind.PARAM, Kind.TAG)
    datasets_compared = sum(c.ident.kind is Kind.DATASET for c in rest)
    group = sum(map(len, grouped.values())) + datasets_compared > MAX_SEMI_JOINS
    lm = latest_metrics.c
    out = _child_conditions(
        grouped[Kind.METRIC], lm.run_uuid == rid, lm.key, _latest_metric_value, dialect, group
    )
    out += _kv_conditions(grouped[Kind.PARAM], params, params.c.run_uuid, rid, dialect, group)
    out += _kv_conditions(grouped[Kind.TAG], tags, tags.c.run_uuid, rid, dialect, group)
    return out + [
        _unplanned(_run_row_condition(cmp, dialect), group and cmp.ident.kind is Kind.DATASET)
        for cmp in rest
    ]


def _run_row_condition(cmp: Comparison, dialect: str):
    """An attribute or dataset comparison of a run filter."""
    kind, key = cmp.ident.kind, cmp.ident.key
    rid = runs.c.run_uuid
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


def _filtered_order_metrics(filter: Filter, order_by: Sequence[OrderBy]):
    """The comparisons of ``filter`` on a metric the runs are also ordered by (the first
    ordering on each key), which the ordering's join can test itself, and the rest."""
    ordered = {ob.ident.key for ob in order_by if ob.ident.kind is Kind.METRIC}
    on_join: dict[str, list[Comparison]] = {}
    rest = []
    for cmp in filter:
        if (cmp.ident.kind is Kind.METRIC and cmp.ident.key in ordered
                and cmp.op is not Op.IS_NULL):
            on_join.setdefault(cmp.ident.key, []).append(cmp)
        else:
            rest.append(cmp)
    return on_join, tuple(rest)


def runs_query(
    dialect: str,
    experiment_ids: Sequence[int],
    view: ViewType,
    filter: Filter,
    order_by: Sequence[OrderBy],
):
    stages = [s.value for s in view.stages()]
    source: sa.FromClause = runs
    order_terms: list = []
    has_start_time = False
    # A run the filter requires to have the ordering metric joins it as an inner join
    # with the comparisons in its ON clause, and a comparison NaN fails leaves no rank
    # to sort on: the planner can then walk the metric's (key, value) index in order
    # instead of probing every run of the experiments (SQLite, 10,000 runs: 20 -> 4 ms).
    on_join, filter = _filtered_order_metrics(filter, order_by)
    for i, ob in enumerate(order_by):
        kind, key = ob.ident.kind, ob.ident.key
        if kind is Kind.METRIC:
            lm = latest_metrics.alias(f"o{i}")
            match = sa.and_(lm.c.run_uuid == runs.c.run_uuid, lm.c.key == key)
            required = on_join.pop(key, None)
            if required is None:
                source = source.outerjoin(lm, match)
                # After every number come NaN, then runs without the metric, either way
                # (as MLflow); NaN rows all hold 0, so they tie on the value.
                rank = sa.case((lm.c.is_nan == _TRUE, 1), (lm.c.value.is_(None), 2), else_=0)
                order_terms.append(rank)
            else:
                tests = [_latest_metric_value(c, lm.c) for c in required
                         if c.op is not Op.IS_NOT_NULL]
                source = source.join(lm, sa.and_(match, *tests))
                if all(c.op in (Op.NE, Op.IS_NOT_NULL) for c in required):
                    order_terms.append(sa.case((lm.c.is_nan == _TRUE, 1), else_=0))
            order_terms.append(lm.c.value.asc() if ob.ascending else lm.c.value.desc())
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
        .where(
            in_ids(runs.c.experiment_id, experiment_ids, dialect),
            runs.c.lifecycle_stage.in_(stages),
        )
    )
    return stmt.where(*run_conditions(filter, dialect)).order_by(*order_terms)


# --- experiments -------------------------------------------------------------------------

_EXPERIMENT_ATTRIBUTES = {
    "name": experiments.c.name,
    "experiment_id": experiments.c.experiment_id,
    "creation_time": experiments.c.creation_time,
    "last_update_time": experiments.c.last_update_time,
}


def experiment_conditions(filter: Filter, dialect: str) -> list:
    grouped, rest = _split(filter, Kind.TAG)
    et = experiment_tags
    out = _kv_conditions(
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
        return _value_condition(col, cmp, dialect, key != "name")
    raise _unsupported("experiment filter", cmp)


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
    grouped, rest = _split(filter, Kind.PARAM, Kind.TAG)
    mid = logged_models.c.model_id
    lmp, lmt = logged_model_params, logged_model_tags
    group = len(grouped[Kind.PARAM]) + len(grouped[Kind.TAG]) > MAX_SEMI_JOINS
    out = _kv_conditions(grouped[Kind.PARAM], lmp, lmp.c.model_id, mid, dialect, group)
    out += _kv_conditions(grouped[Kind.TAG], lmt, lmt.c.model_id, mid, dialect, group)
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
    grouped, rest = _split(filter, Kind.TAG)
    rmt = registered_model_tags
    stmt = sa.select(registered_models).where(
        *_kv_conditions(grouped[Kind.TAG], rmt, rmt.c.name, rm.name, dialect,
                        len(grouped[Kind.TAG]) > MAX_SEMI_JOINS)
    )
    for cmp in rest:
        kind, key = cmp.ident.kind, cmp.ident.key
        if kind is Kind.ATTRIBUTE and key == "name":
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
    grouped, rest = _split(filter, Kind.TAG)
    mvt = model_version_tags.c
    stmt = sa.select(model_versions).where(
        *_child_conditions(
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
