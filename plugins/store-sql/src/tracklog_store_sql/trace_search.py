"""Trace search as one SQL statement: the filter grammar's trace identifiers (tags,
request metadata, run links, attributes) as conditions, and the contract's order."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from tracklog import errors
from tracklog.entities import LifecycleStage
from tracklog.search.ast import Comparison, Filter, Kind, Op, OrderBy
from tracklog.stores import TRACE_SOURCE_RUN_METADATA
from tracklog_store_sql.schema import (
    experiments,
    trace_request_metadata,
    trace_run_links,
    trace_tags,
)
from tracklog_store_sql.schema import (
    trace_info as trace_info_table,
)
from tracklog_store_sql.sqlutil import in_ids, nulls_last, numeric_condition, string_condition

_ACTIVE = LifecycleStage.ACTIVE.value
ti = trace_info_table.c

_END_TIME = ti.timestamp_ms + ti.execution_time_ms
_ATTRIBUTES: dict[str, Any] = {
    "trace_id": ti.request_id,
    "status": ti.status,
    "client_request_id": ti.client_request_id,
    "timestamp_ms": ti.timestamp_ms,
    "execution_time_ms": ti.execution_time_ms,
    "end_time_ms": _END_TIME,
    "experiment_id": ti.experiment_id,
}
_NUMERIC = frozenset({"timestamp_ms", "execution_time_ms", "end_time_ms"})
_POSITIVE = {Op.NE: Op.EQ, Op.NOT_IN: Op.IN}


def _kv_condition(table: sa.Table, cmp: Comparison, dialect: str):
    match = sa.and_(table.c.request_id == ti.request_id, table.c.key == cmp.ident.key)
    if cmp.op is Op.IS_NULL:
        return ~sa.exists().where(match)
    if cmp.op is Op.IS_NOT_NULL:
        return sa.exists().where(match)
    return sa.exists().where(match, string_condition(table.c.value, cmp.op, cmp.value, dialect))


def _run_condition(cmp: Comparison, dialect: str):
    """``run_id``: the mlflow.sourceRun metadata or any linked run matches; for ``!=`` and
    ``NOT IN``, the trace has a run and none of its runs is excluded."""
    md, links = trace_request_metadata.c, trace_run_links.c
    source = sa.and_(md.request_id == ti.request_id, md.key == TRACE_SOURCE_RUN_METADATA)
    linked = links.request_id == ti.request_id
    op = _POSITIVE.get(cmp.op, cmp.op)

    def any_run(condition_on):
        return sa.or_(
            sa.exists().where(source, *condition_on(md.value)),
            sa.exists().where(linked, *condition_on(links.run_uuid)),
        )

    hit = any_run(lambda col: [string_condition(col, op, cmp.value, dialect)])
    if op is cmp.op:
        return hit
    return sa.and_(any_run(lambda col: []), ~hit)


def _condition(cmp: Comparison, dialect: str):
    kind, key = cmp.ident.kind, cmp.ident.key
    if kind is Kind.TAG:
        return _kv_condition(trace_tags, cmp, dialect)
    if kind is Kind.METADATA:
        return _kv_condition(trace_request_metadata, cmp, dialect)
    if kind is Kind.ATTRIBUTE and key == "run_id":
        return _run_condition(cmp, dialect)
    if kind is Kind.ATTRIBUTE and key in _ATTRIBUTES and key != "experiment_id":
        col = _ATTRIBUTES[key]
        if key in _NUMERIC:
            return numeric_condition(col, cmp.op, cmp.value)
        return string_condition(col, cmp.op, cmp.value, dialect)
    raise errors.invalid(f"Invalid search identifier '{cmp.ident}' for traces")


def _order_value(ob: OrderBy):
    kind, key = ob.ident.kind, ob.ident.key
    if kind is Kind.ATTRIBUTE and key == "run_id":
        kind, key = Kind.METADATA, TRACE_SOURCE_RUN_METADATA
    if kind in (Kind.TAG, Kind.METADATA):
        table = trace_tags if kind is Kind.TAG else trace_request_metadata
        return (
            sa.select(table.c.value)
            .where(table.c.request_id == ti.request_id, table.c.key == key)
            .scalar_subquery()
        )
    if kind is Kind.ATTRIBUTE and key in _ATTRIBUTES:
        return _ATTRIBUTES[key]
    raise errors.invalid(f"Invalid order_by key for traces: {ob.ident}")


def traces_query(dialect: str, experiment_ids: Sequence[int], filter: Filter,
                 order_by: Sequence[OrderBy]):
    """Traces of the active experiments among ``experiment_ids`` matching ``filter``, in
    the contract's order: the clauses, ``timestamp_ms DESC``, ``trace_id ASC``."""
    stmt = (
        sa.select(trace_info_table)
        .join(experiments, experiments.c.experiment_id == ti.experiment_id)
        .where(
            in_ids(ti.experiment_id, list(experiment_ids), dialect) if experiment_ids
            else sa.false(),
            experiments.c.lifecycle_stage == _ACTIVE,
            *[_condition(cmp, dialect) for cmp in filter],
        )
    )
    terms: list = []
    named = set()
    for ob in order_by:
        if ob.ident.kind is Kind.ATTRIBUTE:
            named.add(ob.ident.key)
        terms += nulls_last(_order_value(ob), ob.ascending)
    if "timestamp_ms" not in named:
        terms.append(ti.timestamp_ms.desc())
    if "trace_id" not in named:
        terms.append(ti.request_id.asc())
    return stmt.order_by(*terms)
