"""The SQL store's :class:`~tracklog.importing.ImportStore`: experiments, runs, logged
models, traces and registered models written with their own ids, times and lifecycle
stages (``tracklog migrate``)."""

from __future__ import annotations

import json
import math
from array import array
from collections.abc import Iterator, Sequence
from itertools import groupby
from operator import itemgetter
from typing import Any

import sqlalchemy as sa

from tracklog import errors
from tracklog.entities import (
    Experiment,
    LifecycleStage,
    LoggedModel,
    ModelVersion,
    RegisteredModel,
    RunInfo,
    TraceInfo,
    now_ms,
)
from tracklog.importing import (
    INCOMPLETE_TAG,
    HistoryColumns,
    ImportedRun,
    ImportedRunColumns,
    ImportStore,
)
from tracklog.perf import gc_paused
from tracklog.stores import TRACE_ARTIFACT_LOCATION_TAG
from tracklog.validation import check_no_nul, validate_param, validate_tag
from tracklog_store_sql.metrics import metric_rows
from tracklog_store_sql.points import binary_copy_reads, copy_new_metric_points, point_arrays
from tracklog_store_sql.rows import load_runs, tuples
from tracklog_store_sql.schema import (
    ALL_TABLES,
    assessments,
    experiment_tags,
    experiments,
    latest_metrics,
    logged_model_metrics,
    logged_model_params,
    logged_model_tags,
    logged_models,
    metric_points,
    metric_series,
    model_version_tags,
    model_versions,
    params,
    registered_model_aliases,
    registered_model_tags,
    registered_models,
    runs,
    tags,
    trace_info,
    trace_request_metadata,
    trace_tags,
)
from tracklog_store_sql.sqlutil import (
    by_index,
    chunk_size,
    chunks,
    history_head,
    in_ids,
    insert_text_rows,
    upsert,
)

_INT32_MAX = 2**31 - 1


_m, _series = metric_points.c, metric_series.c
#: The first points of one history (NaN read as NULL), as get_metric_history orders them.
_HISTORY_HEAD = (
    sa.select(_m.timestamp, _m.step,
              sa.case((_m.is_nan == sa.true(), sa.null()), else_=_m.value))
    .where(_m.series_id == sa.select(_series.series_id).where(
        _series.run_uuid == sa.bindparam("run_id"),
        _series.key == sa.bindparam("key")).scalar_subquery())
    .order_by(_m.timestamp, _m.step, _m.value)
    .limit(sa.bindparam("lim", type_=sa.Integer))
    .offset(sa.bindparam("off", type_=sa.Integer))
)


class ImportMixin(ImportStore):
    db: Any
    dialect: str

    def import_experiment(self, experiment: Experiment) -> bool:
        try:
            eid = int(experiment.experiment_id)
        except ValueError:
            raise errors.invalid(
                f"Experiment id {experiment.experiment_id!r} is not an integer: this store "
                f"keeps integer experiment ids"
            ) from None
        if not 0 <= eid <= _INT32_MAX:
            raise errors.invalid(
                f"Experiment id {eid} does not fit this store's 32-bit experiment ids "
                f"(ids from a file store do not); give experiments new ids "
                f"(tracklog migrate --new-experiment-ids)"
            )
        e = experiments.c
        with self.db.write() as conn:
            same_id = conn.execute(sa.select(e.name).where(e.experiment_id == eid)).first()
            if same_id is not None:
                if same_id.name == experiment.name:
                    return False
                raise errors.invalid(
                    f"Experiment id {eid} is taken by {same_id.name!r} in the destination; "
                    f"cannot import {experiment.name!r} under it"
                )
            if conn.execute(sa.select(e.experiment_id).where(e.name == experiment.name)).first():
                raise errors.invalid(
                    f"An experiment named {experiment.name!r} already exists in the "
                    f"destination under another id"
                )
            conn.execute(experiments.insert().values(
                experiment_id=eid,
                name=experiment.name,
                artifact_location=experiment.artifact_location,
                lifecycle_stage=str(experiment.lifecycle_stage),
                creation_time=experiment.creation_time,
                last_update_time=experiment.last_update_time,
            ))
            if experiment.tags:
                conn.execute(experiment_tags.insert(), [
                    {"experiment_id": eid, "key": k, "value": v}
                    for k, v in experiment.tags.items()
                ])
            if conn.dialect.name == "postgresql":
                # Explicit ids leave the sequence behind: new experiments start above them.
                conn.exec_driver_sql(
                    "SELECT setval(pg_get_serial_sequence('experiments', 'experiment_id'), "
                    "(SELECT max(experiment_id) FROM experiments))"
                )
        return True

    def import_run(self, info: RunInfo) -> None:
        r = runs.c
        with self.db.write() as conn:
            exists = conn.execute(sa.select(r.run_uuid).where(r.run_uuid == info.run_id)).first()
            if exists:
                conn.execute(runs.update().where(r.run_uuid == info.run_id).values(
                    lifecycle_stage=LifecycleStage.ACTIVE.value, deleted_time=None))
            else:
                conn.execute(runs.insert().values(
                    run_uuid=info.run_id,
                    name=info.run_name,
                    user_id=info.user_id,
                    status=str(info.status),
                    start_time=info.start_time,
                    end_time=info.end_time,
                    deleted_time=None,
                    lifecycle_stage=LifecycleStage.ACTIVE.value,
                    artifact_uri=info.artifact_uri,
                    experiment_id=int(info.experiment_id),
                ))
            upsert(conn, tags, [{"run_uuid": info.run_id, "key": INCOMPLETE_TAG,
                                 "value": "true"}], ["run_uuid", "key"], ["value"])

    def finish_import(self, run_id: str, lifecycle_stage: LifecycleStage) -> None:
        deleted = lifecycle_stage == LifecycleStage.DELETED
        with self.db.write() as conn:
            conn.execute(runs.update().where(runs.c.run_uuid == run_id).values(
                lifecycle_stage=str(lifecycle_stage),
                deleted_time=now_ms() if deleted else None,
            ))
            conn.execute(tags.delete().where(tags.c.run_uuid == run_id,
                                             tags.c.key == INCOMPLETE_TAG))

    def existing_runs(self, run_ids: Sequence[str]) -> dict[str, bool]:
        out: dict[str, bool] = {}
        with self.db.read() as conn:
            by_index(conn)
            for chunk in chunks(list(run_ids), chunk_size(self.dialect)):
                for rid in conn.execute(sa.select(runs.c.run_uuid)
                                        .where(in_ids(runs.c.run_uuid, chunk, self.dialect))
                                        ).scalars():
                    out[rid] = True
                for rid in conn.execute(
                    sa.select(tags.c.run_uuid).where(
                        in_ids(tags.c.run_uuid, chunk, self.dialect),
                        tags.c.key == INCOMPLETE_TAG)
                ).scalars():
                    out[rid] = False
        return out

    def run_experiments(self, run_ids: Sequence[str]) -> dict[str, str]:
        r = runs.c
        out: dict[str, str] = {}
        with self.db.read() as conn:
            by_index(conn)
            for chunk in chunks(list(run_ids), chunk_size(self.dialect)):
                for rid, eid in conn.execute(sa.select(r.run_uuid, r.experiment_id).where(
                        in_ids(r.run_uuid, chunk, self.dialect))):
                    out[rid] = str(eid)
        return out

    def history_columns(self, run_id: str, key: str, limit: int) -> HistoryColumns | None:
        """The history query of ``get_metric_history`` limited to ``limit`` + 1 rows,
        compiled once, fetched as plain tuples and split into columns in C."""
        with self.db.read() as conn, gc_paused():
            rows = history_head(conn, "history_head", _HISTORY_HEAD, run_id, key, limit)
        if rows is None:
            return None
        if not rows:
            return (), (), ()
        timestamps, steps, values = zip(*rows, strict=True)
        if None in values:  # NaN is read as NULL
            values = tuple(math.nan if v is None else v for v in values)
        return timestamps, steps, values

    def imported_runs(self, run_ids: Sequence[str]) -> Iterator[ImportedRunColumns]:
        """A few statements for the runs and their data and one for every point of
        theirs (a binary COPY on PostgreSQL), split into columns in C."""
        m, series = metric_points.c, metric_series.c
        value = sa.case((m.is_nan == sa.true(), sa.null()), else_=m.value)
        for chunk in chunks(list(run_ids), chunk_size(self.dialect)):
            with self.db.read() as conn:
                by_index(conn)
                found = load_runs(conn, conn.execute(
                    sa.select(runs).where(in_ids(runs.c.run_uuid, chunk, self.dialect))
                ).all())
                # The series first, then their points by series id: joined in one
                # statement, a planner without statistics (a table just filled) scans
                # every point.
                named = {sid: (run_id, key) for sid, run_id, key in tuples(
                    conn, sa.select(series.series_id, series.run_uuid, series.key)
                    .where(in_ids(series.run_uuid, chunk, self.dialect)))}
                if not named:
                    rows: Any = ()
                elif binary_copy_reads(conn):
                    rows = list(_copied_histories(conn, list(named)))
                else:
                    rows = list(_grouped(tuples(
                        conn, sa.select(m.series_id, m.timestamp, m.step, value)
                        .where(in_ids(m.series_id, list(named), self.dialect))
                        .order_by(m.series_id, m.timestamp, m.step, m.value))))
            histories: dict[str, dict[str, HistoryColumns]] = {
                r.info.run_id: {} for r in found}
            for sid, columns in rows:
                run_id, key = named[sid]
                histories[run_id][key] = columns
            for run in found:
                yield run, histories[run.info.run_id]

    def import_runs(self, items: Sequence[ImportedRun]) -> None:
        """All of ``items`` in one transaction: a handful of bulk statements for the
        batch rather than a few per run."""
        if not items:
            return
        now = now_ms()
        run_rows, param_rows, tag_rows, latest_rows = [], [], [], []
        columns: list[tuple[str, Any]] = []
        for item in items:
            info, data = item.run.info, item.run.data
            check_no_nul("run", info.run_id, info.run_name, info.user_id, info.artifact_uri)
            deleted = info.lifecycle_stage == LifecycleStage.DELETED
            run_rows.append({
                "run_uuid": info.run_id, "name": info.run_name, "user_id": info.user_id,
                "status": str(info.status), "start_time": info.start_time,
                "end_time": info.end_time, "deleted_time": now if deleted else None,
                "lifecycle_stage": str(info.lifecycle_stage),
                "artifact_uri": info.artifact_uri, "experiment_id": int(info.experiment_id),
            })
            for k, v in data.params.items():
                p = validate_param(k, v, "params")
                param_rows.append({"run_uuid": info.run_id, "key": p.key, "value": p.value})
            for k, v in data.tags.items():
                t = validate_tag(k, v, "tags")
                tag_rows.append({"run_uuid": info.run_id, "key": t.key, "value": t.value})
            points, latest, _ = metric_rows(info.run_id, item.metrics)
            if points is not None:
                columns.append((info.run_id, points))
                latest_rows += latest
        with self.db.write() as conn:
            if conn.dialect.name == "postgresql":
                # The commit need not wait for the WAL flush: a batch a server crash loses
                # is absent as a whole, and the migration copies it again when resumed.
                conn.exec_driver_sql("SET LOCAL synchronous_commit = off")
            conn.execute(runs.insert(), run_rows)
            if param_rows:
                insert_text_rows(conn, params, ("run_uuid", "key", "value"), param_rows)
            if tag_rows:
                insert_text_rows(conn, tags, ("run_uuid", "key", "value"), tag_rows)
            if not latest_rows:
                return
            conn.execute(metric_series.insert(),
                         [{"run_uuid": r["run_uuid"], "key": r["key"]} for r in latest_rows])
            ids: dict[tuple[str, str], int] = {}
            by_index(conn)
            s = metric_series.c
            run_ids = [rid for rid, _ in columns]
            for chunk in chunks(run_ids, chunk_size(self.dialect)):
                for rid, key, sid in conn.execute(
                    sa.select(s.run_uuid, s.key, s.series_id)
                    .where(in_ids(s.run_uuid, chunk, self.dialect))
                ):
                    ids[rid, key] = sid
            sids: list[int] = []
            tss: list[int] = []
            steps: list[int] = []
            vals: list[float] = []
            nans: list[Any] = []
            for rid, pts in columns:
                # A key's points mostly follow one another: a lookup per stretch.
                for key, same in groupby(pts.keys):
                    sids += [ids[rid, key]] * len(list(same))
                tss += pts.timestamps
                steps += pts.steps
                vals += pts.values
                nans += pts.nans
            copy_new_metric_points(conn, sids, tss, steps, vals, nans)
            conn.execute(latest_metrics.insert(), latest_rows)

    def refresh_statistics(self) -> None:
        """ANALYZE every table of the schema on PostgreSQL and MySQL/MariaDB (neither
        may have done it yet after a bulk load). SQLite is left as it is: its planner
        without statistics is what this store's queries are written for."""
        names = [t.name for t in ALL_TABLES]
        if self.dialect == "postgresql":
            with self.db.write() as conn:
                conn.exec_driver_sql("ANALYZE " + ", ".join(names))
        elif self.dialect in ("mysql", "mariadb"):
            with self.db.write() as conn:
                # Answers a result row per table, to be read before the next statement.
                conn.exec_driver_sql("ANALYZE TABLE " + ", ".join(names)).all()

    # -- logged models, traces, registry: each written whole in one transaction ---------

    def _experiment_of(self, conn: Any, experiment_id: str) -> Any:
        row = conn.execute(sa.select(experiments.c.experiment_id,
                                     experiments.c.artifact_location)
                           .where(experiments.c.experiment_id == int(experiment_id))).first()
        if row is None:
            raise errors.not_found(f"No experiment with id={experiment_id}")
        return row

    def import_logged_model(self, model: LoggedModel) -> bool:
        m = logged_models.c
        with self.db.write() as conn:
            if conn.execute(sa.select(m.model_id).where(m.model_id == model.model_id)).first():
                return False
            exp = self._experiment_of(conn, model.experiment_id)
            conn.execute(logged_models.insert().values(
                model_id=model.model_id, experiment_id=exp.experiment_id, name=model.name,
                artifact_location=model.artifact_location,
                creation_timestamp=model.creation_timestamp,
                last_updated_timestamp=model.last_updated_timestamp,
                status=str(model.status), lifecycle_stage=str(model.lifecycle_stage),
                model_type=model.model_type, source_run_id=model.source_run_id,
                status_message=model.status_message))
            if model.tags:
                conn.execute(logged_model_tags.insert(), [
                    {"model_id": model.model_id, "key": k, "value": v}
                    for k, v in model.tags.items()])
            if model.params:
                conn.execute(logged_model_params.insert(), [
                    {"model_id": model.model_id, "key": k, "value": v}
                    for k, v in model.params.items()])
            rows = {
                (x.key, x.timestamp, x.step, x.run_id or ""): {
                    "model_id": model.model_id, "key": x.key, "timestamp": x.timestamp,
                    "step": x.step, "run_uuid": x.run_id or "",
                    "value": 0.0 if math.isnan(x.value) else x.value,
                    "is_nan": math.isnan(x.value), "dataset_name": x.dataset_name,
                    "dataset_digest": x.dataset_digest}
                for x in model.metrics}
            if rows:
                conn.execute(logged_model_metrics.insert(), list(rows.values()))
        return True

    def import_trace(self, trace: TraceInfo) -> bool:
        from tracklog_store_sql.traces import _join

        t = trace_info.c
        with self.db.write() as conn:
            if conn.execute(sa.select(t.request_id)
                            .where(t.request_id == trace.trace_id)).first():
                return False
            exp = self._experiment_of(conn, trace.experiment_id)
            conn.execute(trace_info.insert().values(
                request_id=trace.trace_id, experiment_id=exp.experiment_id,
                timestamp_ms=trace.request_time, execution_time_ms=trace.execution_duration,
                status=trace.state.value, client_request_id=trace.client_request_id,
                request_preview=trace.request_preview,
                response_preview=trace.response_preview))
            location = _join(exp.artifact_location, "traces", trace.trace_id, "artifacts")
            tag_rows = {**trace.tags, TRACE_ARTIFACT_LOCATION_TAG: location}
            conn.execute(trace_tags.insert(), [
                {"request_id": trace.trace_id, "key": k, "value": v}
                for k, v in tag_rows.items()])
            if trace.trace_metadata:
                conn.execute(trace_request_metadata.insert(), [
                    {"request_id": trace.trace_id, "key": k, "value": v}
                    for k, v in trace.trace_metadata.items()])
            if trace.assessments:
                conn.execute(assessments.insert(), [{
                    "assessment_id": a.assessment_id, "trace_id": trace.trace_id,
                    "name": a.name, "kind": a.kind.value, "value": json.dumps(a.value),
                    "source_type": a.source_type.value, "source_id": a.source_id,
                    "span_id": a.span_id, "rationale": a.rationale,
                    "metadata": json.dumps(a.metadata) if a.metadata else None,
                    "overrides": a.overrides, "valid": a.valid,
                    "create_time": a.create_time, "last_update_time": a.last_update_time,
                } for a in trace.assessments])
        return True

    def import_registered_model(
        self, model: RegisteredModel, versions: Sequence[ModelVersion]
    ) -> bool:
        r = registered_models.c
        with self.db.write() as conn:
            if conn.execute(sa.select(r.name).where(r.name == model.name)).first():
                return False
            conn.execute(registered_models.insert().values(
                name=model.name, creation_time=model.creation_timestamp,
                last_updated_time=model.last_updated_timestamp,
                description=model.description or "", user_id=model.user_id))
            if model.tags:
                conn.execute(registered_model_tags.insert(), [
                    {"name": model.name, "key": k, "value": v} for k, v in model.tags.items()])
            if versions:
                conn.execute(model_versions.insert(), [{
                    "name": model.name, "version": int(v.version),
                    "creation_time": v.creation_timestamp,
                    "last_updated_time": v.last_updated_timestamp,
                    "description": v.description or "", "user_id": v.user_id,
                    "current_stage": v.current_stage, "source": v.source,
                    "run_id": v.run_id or None, "run_link": v.run_link or "",
                    "status": str(v.status), "status_message": v.status_message,
                    "model_id": v.model_id or None,
                } for v in versions])
                version_tags = [{"name": model.name, "version": int(v.version), "key": k,
                                 "value": value}
                                for v in versions for k, value in v.tags.items()]
                if version_tags:
                    conn.execute(model_version_tags.insert(), version_tags)
            if model.aliases:
                conn.execute(registered_model_aliases.insert(), [
                    {"name": model.name, "alias": a.alias, "version": int(a.version)}
                    for a in model.aliases])
        return True


def _grouped(rows: Sequence[tuple]) -> Iterator[tuple[int, HistoryColumns]]:
    """(series id, columns) of (series id, timestamp, step, value) rows ordered by
    series, NaN read as NULL."""
    for sid, points in groupby(rows, itemgetter(0)):
        _, timestamps, steps, values = zip(*points, strict=True)
        if None in values:
            values = tuple(math.nan if v is None else v for v in values)
        yield sid, (timestamps, steps, values)


def _copied_histories(conn: Any, series_ids: list[int]) -> Iterator[tuple[int, HistoryColumns]]:
    """(series id, columns) of every point of ``series_ids``, read on PostgreSQL as
    binary arrays, one row per series (a fetch builds a tuple and four objects per
    point)."""
    for sid, timestamps, steps, values, nans in point_arrays(conn, series_ids):
        if any(nans):
            values = array("d", [math.nan if flag else v
                                 for v, flag in zip(values, nans, strict=True)])
        yield sid, (timestamps, steps, values)
