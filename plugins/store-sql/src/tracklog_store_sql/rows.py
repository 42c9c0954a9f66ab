"""What every section of the SQL store shares: rows turned into entities, the lookups
that refuse a missing or inactive experiment, run or logged model, and small helpers.

The section modules (experiments, runs, metrics, batch, inputs, logged_models) import
this one and never each other. Functions take the open connection; the dialect name
comes from it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from tracklog import errors
from tracklog.entities import (
    Dataset,
    DatasetInput,
    Experiment,
    InputTag,
    LifecycleStage,
    LoggedModel,
    LoggedModelInput,
    LoggedModelOutput,
    LoggedModelStatus,
    Metric,
    Run,
    RunInfo,
    RunStatus,
    metric_from_fields,
)
from tracklog.validation import check_length, check_no_nul, validate_tag
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
    params,
    run_outputs,
    runs,
    tags,
)
from tracklog_store_sql.sqlutil import (
    bound_ids,
    chunk_size,
    chunks,
    execute_plain,
    in_bound_ids,
    in_ids,
)

RUN_NAME_TAG = "mlflow.runName"
#: Width of ``runs.name``; the name is also the ``mlflow.runName`` tag.
RUN_NAME_MAX = 250
INT32_MAX = 2**31 - 1
ACTIVE = LifecycleStage.ACTIVE.value
DELETED = LifecycleStage.DELETED.value
NAN = float("nan")

_EXPERIMENT_ROW = sa.select(experiments).where(
    experiments.c.experiment_id == sa.bindparam("eid")
)
_EXPERIMENT_BY_NAME = sa.select(experiments).where(experiments.c.name == sa.bindparam("name"))
_EXPERIMENT_TAGS = sa.select(experiment_tags.c.key, experiment_tags.c.value).where(
    experiment_tags.c.experiment_id == sa.bindparam("eid")
)
_RUN_ROW = sa.select(runs).where(runs.c.run_uuid == sa.bindparam("run_id"))
_RUN_STAGE = sa.select(runs.c.lifecycle_stage).where(runs.c.run_uuid == sa.bindparam("run_id"))
_STATUS = {s.value: s for s in RunStatus}
_STAGE = {s.value: s for s in LifecycleStage}


def join_uri(root: str, *parts: str) -> str:
    """Append path parts to a URI or path without doubling or dropping slashes."""
    base = root.rstrip("/")
    if base.endswith(":"):  # "mlflow-artifacts:/" -> "mlflow-artifacts:/0"
        base += "/"
        return base + "/".join(parts)
    return "/".join([base, *parts])


def parse_experiment_id(experiment_id: Any) -> int:
    try:
        value = int(str(experiment_id), 10)
    except (TypeError, ValueError):
        raise errors.invalid(f"Invalid experiment ID '{experiment_id}'") from None
    if value < 0:
        raise errors.invalid(f"Invalid experiment ID '{experiment_id}'")
    return value


def check_run_name(name: str) -> None:
    check_length("run_name", name, RUN_NAME_MAX)
    check_no_nul("run_name", name)


def run_tag_rows(tags: Iterable[Any], field: str = "tags") -> dict[str, str]:
    """``{key: value}`` of run tags checked and trimmed as core validates them (the last
    of a repeated key wins); text holding NUL is refused."""
    rows: dict[str, str] = {}
    for t in tags:
        tag = validate_tag(t.key, t.value, field)
        rows[tag.key] = tag.value
    check_no_nul(f"{field}.value", *rows.values())
    return rows


def tuples(conn: Connection, stmt, args: dict[str, Any] | None = None) -> Sequence[tuple]:
    """Rows of ``stmt`` as plain DBAPI tuples (no Row objects or result processors; for
    columns that need no conversion, on paths that read many rows)."""
    result = conn.execute(stmt, args)
    try:
        return result.cursor.fetchall()
    finally:
        result.close()


# --- lookups -----------------------------------------------------------------------------


def experiment_row(conn: Connection, experiment_id: str, for_write: bool = False):
    eid = parse_experiment_id(experiment_id)
    row = None
    if eid <= INT32_MAX:
        row = execute_plain(conn, "experiment_row", _EXPERIMENT_ROW, {"eid": eid}).first()
    if row is None:
        raise errors.not_found(f"No Experiment with id={experiment_id} exists")
    if for_write and row.lifecycle_stage != ACTIVE:
        raise errors.not_active("experiment", experiment_id, row.lifecycle_stage)
    return row


def experiment_row_by_name(conn: Connection, name: str) -> Any:
    """The experiment named ``name``, or None."""
    return execute_plain(conn, "experiment_by_name", _EXPERIMENT_BY_NAME,
                         {"name": name}).first()


def run_row(conn: Connection, run_id: str, for_write: bool = False):
    # An id with NUL was never handed out (and PostgreSQL cannot even compare it).
    row = (None if "\x00" in run_id
           else execute_plain(conn, "run_row", _RUN_ROW, {"run_id": run_id}).first())
    if row is None:
        raise errors.not_found(f"Run with id={run_id} not found")
    if for_write and row.lifecycle_stage != ACTIVE:
        raise errors.not_active("run", run_id, row.lifecycle_stage)
    return row


def check_active_run(conn: Connection, run_id: str) -> None:
    # Every write asks this first: plain execution (see execute_plain).
    stage = execute_plain(conn, "run_stage", _RUN_STAGE, {"run_id": run_id}).scalar()
    if stage is None:
        raise errors.not_found(f"Run with id={run_id} not found")
    if stage != ACTIVE:
        raise errors.not_active("run", run_id, stage)


def model_row(conn: Connection, model_id: str, allow_deleted: bool = True):
    row = conn.execute(sa.select(logged_models).where(logged_models.c.model_id == model_id)).first()
    if row is None or (not allow_deleted and row.lifecycle_stage != ACTIVE):
        raise errors.not_found(f"Logged model with id={model_id} not found")
    return row


def require_models(conn: Connection, model_ids: list[str]) -> None:
    """Refuse the first of ``model_ids`` that names no logged model."""
    found = set(
        conn.execute(
            sa.select(logged_models.c.model_id).where(
                in_ids(logged_models.c.model_id, model_ids, conn.dialect.name)
            )
        ).scalars()
    )
    for mid in model_ids:
        if mid not in found:
            raise errors.not_found(f"Logged model with id={mid} not found")


# --- experiments ---------------------------------------------------------------------------


def load_experiments(conn: Connection, rows: Sequence[Any]) -> list[Experiment]:
    dialect = conn.dialect.name
    ids = [r.experiment_id for r in rows]
    tag_map: dict[int, dict[str, str]] = {i: {} for i in ids}
    if len(ids) == 1:  # a get: plain execution (see execute_plain), a third of the time
        tag_map[ids[0]] = dict(execute_plain(conn, "experiment_tags", _EXPERIMENT_TAGS,
                                             {"eid": ids[0]}).cursor.fetchall())
        ids = []
    for chunk in chunks(ids, chunk_size(dialect)):
        for t in conn.execute(
            sa.select(experiment_tags).where(
                in_ids(experiment_tags.c.experiment_id, chunk, dialect)
            )
        ):
            tag_map[t.experiment_id][t.key] = t.value
    return [
        Experiment(
            experiment_id=str(r.experiment_id),
            name=r.name,
            artifact_location=r.artifact_location,
            lifecycle_stage=LifecycleStage(r.lifecycle_stage),
            tags=tag_map[r.experiment_id],
            creation_time=r.creation_time,
            last_update_time=r.last_update_time,
        )
        for r in rows
    ]


# --- runs ----------------------------------------------------------------------------------


def run_info(r: Sequence[Any]) -> RunInfo:
    """RunInfo from a ``runs`` row (a Row or a plain tuple, in the table's column order)."""
    run_uuid, name, user_id, status, start, end, _deleted, stage, uri, experiment_id = r
    return RunInfo(
        run_id=run_uuid,
        experiment_id=str(experiment_id),
        run_name=name or "",
        user_id=user_id or "",
        status=_STATUS[status],
        start_time=start,
        end_time=end,
        artifact_uri=uri,
        lifecycle_stage=_STAGE[stage],
    )


class RunSet:
    """The runs of one chunk of ids, for the statements that read their rows.

    ``select(build)`` gives ``build``'s statement over these runs and its parameters.
    ``build(of)`` makes the statement with ``of(column)`` as its condition on the run id.
    Where the ids are bound (one run; a list as one parameter on SQLite and PostgreSQL)
    each builder's statement is built once and cached: building and caching a fresh
    statement cost more than running it (get_run, the commonest read, is one run)."""

    __slots__ = ("binding", "of", "params")

    def __init__(self, run_ids: Sequence[str], dialect: str) -> None:
        if len(run_ids) == 1:
            self.binding: str | None = "one"
            self.params: dict[str, Any] | None = {"one_run_id": run_ids[0]}
            self.of = _one_run
        elif dialect in ("sqlite", "postgresql"):
            self.binding = dialect
            self.params = {"run_ids": bound_ids(run_ids, dialect)}
            self.of = lambda col: in_bound_ids(col, "run_ids", dialect)
        else:  # the ids inlined: a statement of its own each time
            self.binding = self.params = None
            self.of = lambda col: in_ids(col, run_ids, dialect)

    def select(self, build) -> tuple[Any, dict[str, Any] | None]:
        if self.binding is None:
            return build(self.of), None
        stmt = _RUN_STATEMENTS.get((build, self.binding))
        if stmt is None:
            stmt = _RUN_STATEMENTS[build, self.binding] = build(self.of)
        return stmt, self.params

    def rows(self, conn: Connection, build) -> Sequence[tuple]:
        """The rows of ``build``'s statement as plain tuples. A statement built once
        runs as its SQL text (:func:`execute_plain`): SQLAlchemy's compiled-cache lookup
        and execution context cost a run read more than its two statements on SQLite.
        Its values must all be bound here (a literal in it would be a missing
        parameter: write it as a literal column)."""
        stmt, params = self.select(build)
        if params is None:
            return tuples(conn, stmt)
        result = execute_plain(conn, f"{build.__module__}.{build.__qualname__}:{self.binding}",
                               stmt, params)
        try:
            return result.cursor.fetchall()
        finally:
            result.close()


_RUN_STATEMENTS: dict[tuple[Any, str], Any] = {}


def _one_run(col):
    return col == sa.bindparam("one_run_id")


def select_runs(of):
    return sa.select(runs).where(of(runs.c.run_uuid))


def _select_latest(of):
    lm = latest_metrics.c
    return sa.select(lm.run_uuid, lm.key, lm.timestamp, lm.step, lm.value, lm.is_nan).where(
        of(lm.run_uuid)
    )


def _select_params(of):
    return sa.select(params.c.run_uuid, params.c.key, params.c.value).where(of(params.c.run_uuid))


def _select_tags(of):
    return sa.select(tags.c.run_uuid, tags.c.key, tags.c.value).where(of(tags.c.run_uuid))


def _select_outputs(of):
    o = run_outputs.c
    return (
        sa.select(o.run_uuid, o.model_id, o.step)
        .where(of(o.run_uuid))
        .order_by(o.run_uuid, o.model_id)
    )


def _select_inputs(of):
    i, d, t = inputs.c, datasets.c, input_tags.c
    return (
        sa.select(
            i.input_uuid,
            i.destination_id,
            i.source_type,
            i.source_id,
            d.name,
            d.digest,
            d.dataset_source_type,
            d.dataset_source,
            d.dataset_schema,
            d.dataset_profile,
            t.name.label("tag_name"),
            t.value.label("tag_value"),
        )
        .select_from(
            inputs.outerjoin(
                datasets, sa.and_(i.source_type == "DATASET", d.dataset_uuid == i.source_id)
            ).outerjoin(input_tags, t.input_uuid == i.input_uuid)
        )
        .where(i.destination_type == "RUN", of(i.destination_id))
        .order_by(i.destination_id, i.input_uuid, t.name)
    )


def load_runs(conn: Connection, rows: Sequence[Any]) -> list[Run]:
    """Runs with their data: a constant number of statements per chunk of runs."""
    out: dict[str, Run] = {}
    for r in rows:
        out[r[0]] = Run(info=run_info(r))
    dialect = conn.dialect.name
    for chunk in chunks(list(out), chunk_size(dialect)):
        run_set = RunSet(chunk, dialect)
        load_metrics(conn, run_set, out)
        for run_uuid, key, value in run_set.rows(conn, _select_params):
            out[run_uuid].data.params[key] = value
        for run_uuid, key, value in run_set.rows(conn, _select_tags):
            out[run_uuid].data.tags[key] = value
        load_inputs(conn, run_set, out)
        load_outputs(conn, run_set, out)
    return list(out.values())


def load_metrics(conn: Connection, run_set: RunSet, out: dict[str, Run]) -> None:
    new = metric_from_fields
    for run_uuid, key, ts, step, value, is_nan in run_set.rows(conn, _select_latest):
        out[run_uuid].data.metrics[key] = new(
            (key, NAN if is_nan else value, ts, step, None, None, None, None)
        )


def load_outputs(conn: Connection, run_set: RunSet, out: dict[str, Run]) -> None:
    for run_uuid, model_id, step in run_set.rows(conn, _select_outputs):
        out[run_uuid].outputs.model_outputs.append(LoggedModelOutput(model_id, step))


def load_inputs(conn: Connection, run_set: RunSet, out: dict[str, Run]) -> None:
    grouped: dict[str, dict[str, Any]] = {}
    for r in conn.execute(*run_set.select(_select_inputs)):
        g = grouped.get(r.input_uuid)
        if g is None:
            g = grouped[r.input_uuid] = {"row": r, "tags": []}
        if r.tag_name is not None:
            g["tags"].append(InputTag(r.tag_name, r.tag_value))
    for g in grouped.values():
        r = g["row"]
        run = out[r.destination_id]
        if r.source_type == "MODEL":
            run.inputs.model_inputs.append(LoggedModelInput(r.source_id))
        elif r.name is not None:
            ds = Dataset(
                name=r.name,
                digest=r.digest,
                source_type=r.dataset_source_type,
                source=r.dataset_source,
                schema=r.dataset_schema,
                profile=r.dataset_profile,
            )
            run.inputs.dataset_inputs.append(DatasetInput(ds, tuple(g["tags"])))


# --- metrics and logged models -------------------------------------------------------------


def history(key: str, rows: Iterable[Any]) -> list[Metric]:
    """History points of ``key`` from (timestamp, step, value) rows, NaN read as NULL."""
    new = metric_from_fields
    return [
        new((key, NAN if value is None else value, ts, step, None, None, None, None))
        for ts, step, value in rows
    ]


def load_models(conn: Connection, rows: Sequence[Any]) -> list[LoggedModel]:
    """Logged models with their tags, params and metrics."""
    dialect = conn.dialect.name
    out: dict[str, LoggedModel] = {}
    for r in rows:
        out[r.model_id] = LoggedModel(
            model_id=r.model_id,
            experiment_id=str(r.experiment_id),
            name=r.name,
            artifact_location=r.artifact_location,
            creation_timestamp=r.creation_timestamp,
            last_updated_timestamp=r.last_updated_timestamp,
            status=LoggedModelStatus(r.status),
            model_type=r.model_type,
            source_run_id=r.source_run_id,
            status_message=r.status_message,
            lifecycle_stage=LifecycleStage(r.lifecycle_stage),
        )
    mm = logged_model_metrics.c
    for chunk in chunks(list(out)):
        for r in conn.execute(
            sa.select(logged_model_tags).where(in_ids(logged_model_tags.c.model_id, chunk, dialect))
        ):
            out[r.model_id].tags[r.key] = r.value
        for r in conn.execute(
            sa.select(logged_model_params).where(
                in_ids(logged_model_params.c.model_id, chunk, dialect)
            )
        ):
            out[r.model_id].params[r.key] = r.value
        for r in conn.execute(
            sa.select(logged_model_metrics)
            .where(in_ids(mm.model_id, chunk, dialect))
            .order_by(mm.model_id, mm.key, mm.timestamp, mm.step)
        ):
            out[r.model_id].metrics.append(
                Metric(
                    key=r.key,
                    value=NAN if r.is_nan else r.value,
                    timestamp=r.timestamp,
                    step=r.step,
                    model_id=r.model_id,
                    dataset_name=r.dataset_name,
                    dataset_digest=r.dataset_digest,
                    run_id=r.run_uuid,
                )
            )
    return list(out.values())
