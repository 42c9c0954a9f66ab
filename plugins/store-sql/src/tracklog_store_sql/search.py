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

Runs are searched here; experiments, logged models and the registry in
:mod:`tracklog_store_sql.search_other`, with the same comparisons.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa

from tracklog import errors
from tracklog.entities import ViewType
from tracklog.search.ast import Comparison, Filter, Kind, Op, OrderBy
from tracklog_store_sql.schema import (
    datasets,
    input_tags,
    inputs,
    latest_metrics,
    params,
    runs,
    tags,
)
from tracklog_store_sql.sqlutil import in_ids, numeric_condition, string_condition

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


def unsupported(what: str, cmp_or_key) -> errors.TracklogError:
    return errors.invalid(f"Invalid {what}: {cmp_or_key}")


def value_condition(col, cmp: Comparison, dialect: str, numeric: bool):
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


def child_conditions(clauses: Sequence[Comparison], owner_match, key_col, value_condition,
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


def kv_conditions(clauses: Sequence[Comparison], table, owner_col, owner, dialect: str,
                   group: bool) -> list:
    """Conditions for every comparison of ``clauses`` on a (owner, key, value) table."""
    return child_conditions(
        clauses,
        owner_col == owner,
        table.c.key,
        lambda c: string_condition(table.c.value, c.op, c.value, dialect),
        dialect,
        group,
    )


def split(filter: Filter, *kinds: Kind) -> tuple[dict[Kind, list[Comparison]], list]:
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


def run_conditions(filter: Filter, dialect: str, rid=runs.c.run_uuid) -> list:
    """The WHERE conditions of a run filter (see the module docstring for their shape);
    comparisons on child tables match their rows to ``rid``."""
    grouped, rest = split(filter, Kind.METRIC, Kind.PARAM, Kind.TAG)
    datasets_compared = sum(c.ident.kind is Kind.DATASET for c in rest)
    group = sum(map(len, grouped.values())) + datasets_compared > MAX_SEMI_JOINS
    lm = latest_metrics.c
    out = child_conditions(
        grouped[Kind.METRIC], lm.run_uuid == rid, lm.key, _latest_metric_value, dialect, group
    )
    out += kv_conditions(grouped[Kind.PARAM], params, params.c.run_uuid, rid, dialect, group)
    out += kv_conditions(grouped[Kind.TAG], tags, tags.c.run_uuid, rid, dialect, group)
    return out + [
        _unplanned(_run_row_condition(cmp, dialect, rid),
                   group and cmp.ident.kind is Kind.DATASET)
        for cmp in rest
    ]


def _run_row_condition(cmp: Comparison, dialect: str, rid):
    """An attribute or dataset comparison of a run filter."""
    kind, key = cmp.ident.kind, cmp.ident.key
    if kind is Kind.ATTRIBUTE:
        col = RUN_ATTRIBUTES.get(key)
        if col is None:
            raise unsupported("attribute key", key)
        return value_condition(col, cmp, dialect, key in _NUMERIC_RUN_ATTRIBUTES)
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
        raise unsupported("dataset key", key)
    raise unsupported("filter", cmp)


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
    """The ids of the matching runs, in order."""
    stmt, keys = runs_search(dialect, experiment_ids, view, filter, order_by)
    return stmt.add_columns(runs.c.run_uuid).order_by(*order_terms(keys))


def order_terms(keys: Sequence[tuple[sa.ColumnElement, bool]]) -> list:
    return [key.asc() if ascending else key.desc() for key, ascending in keys]


def runs_search(
    dialect: str,
    experiment_ids: Sequence[int],
    view: ViewType,
    filter: Filter,
    order_by: Sequence[OrderBy],
) -> tuple[sa.Select, list[tuple[sa.ColumnElement, bool]]]:
    """The matching runs as a statement without columns or order, and their ordering
    keys as (expression, ascending) pairs, the last one unique (the run id)."""
    stages = [s.value for s in view.stages()]
    source: sa.FromClause = runs
    keys: list[tuple[sa.ColumnElement, bool]] = []
    has_start_time = False
    # A run the filter requires to have the ordering metric joins it as an inner join
    # with the comparisons in its ON clause, and a comparison NaN fails leaves no rank
    # to sort on: the planner can then walk the metric's (key, value) index in order
    # instead of probing every run of the experiments (SQLite, 10,000 runs: 20 -> 4 ms).
    on_join, filter = _filtered_order_metrics(filter, order_by)
    rid = runs.c.run_uuid
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
                keys.append((rank, True))
            else:
                tests = [_latest_metric_value(c, lm.c) for c in required
                         if c.op is not Op.IS_NOT_NULL]
                source = source.join(lm, sa.and_(match, *tests))
                if i == 0:
                    # The filter's other comparisons match the metric's run, so SQLite
                    # tests them on each metric row it walks, before looking the run up
                    # (which it then does only for the runs that pass).
                    rid = lm.c.run_uuid
                if all(c.op in (Op.NE, Op.IS_NOT_NULL) for c in required):
                    keys.append((sa.case((lm.c.is_nan == _TRUE, 1), else_=0), True))
            keys.append((lm.c.value, ob.ascending))
        elif kind in (Kind.PARAM, Kind.TAG):
            table = (params if kind is Kind.PARAM else tags).alias(f"o{i}")
            source = source.outerjoin(
                table, sa.and_(table.c.run_uuid == runs.c.run_uuid, table.c.key == key)
            )
            keys += _nulls_last(table.c.value, ob.ascending)
        elif kind is Kind.ATTRIBUTE and key in RUN_ATTRIBUTES:
            has_start_time = has_start_time or key == "start_time"
            keys += _nulls_last(RUN_ATTRIBUTES[key], ob.ascending)
        else:
            raise unsupported("order_by key", ob.ident)
    if not has_start_time:
        keys += _nulls_last(runs.c.start_time, False)
    keys.append((runs.c.run_uuid, True))
    stmt = (
        sa.select()
        .select_from(source)
        .where(
            in_ids(runs.c.experiment_id, experiment_ids, dialect),
            runs.c.lifecycle_stage.in_(stages),
        )
    )
    return stmt.where(*run_conditions(filter, dialect, rid)), keys


def _nulls_last(col, ascending: bool) -> list[tuple[sa.ColumnElement, bool]]:
    """Ordering keys putting NULLs last either way (as :func:`sqlutil.nulls_last`)."""
    return [(sa.case((col.is_(None), 1), else_=0), True), (col, ascending)]
