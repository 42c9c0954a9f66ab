"""The SQL store's :class:`~tracklog.gc.PurgeStore`: deleted records found and removed for
good (``tracklog gc``). Each purge is one transaction: a record goes whole or not at all."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from tracklog import errors
from tracklog.entities import (
    Experiment,
    LifecycleStage,
    LoggedModel,
    LoggedModelStatus,
    RunInfo,
    RunStatus,
)
from tracklog.gc import PurgeStore
from tracklog_store_sql.schema import assessments as assessments_table
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
    metric_points,
    metric_series,
    params,
    run_outputs,
    runs,
    tags,
    trace_info,
    trace_request_metadata,
    trace_run_links,
    trace_tags,
)

_DELETED = LifecycleStage.DELETED.value


class PurgeMixin(PurgeStore):
    db: Any

    # -- finding ---------------------------------------------------------------------------

    def deleted_runs(
        self, deleted_before: int | None, experiment_ids: Sequence[str] | None = None
    ) -> list[RunInfo]:
        r = runs.c
        stmt = sa.select(runs).where(r.lifecycle_stage == _DELETED)
        if deleted_before is not None:
            # A run deleted before deleted_time was recorded counts as deleted long ago.
            stmt = stmt.where(sa.or_(r.deleted_time.is_(None), r.deleted_time <= deleted_before))
        if experiment_ids is not None:
            stmt = stmt.where(r.experiment_id.in_([_int(e) for e in experiment_ids]))
        with self.db.read() as conn:
            return [
                RunInfo(row.run_uuid, str(row.experiment_id), row.name or "", row.user_id or "",
                        RunStatus(row.status), row.start_time, row.end_time,
                        row.artifact_uri or "", LifecycleStage.DELETED)
                for row in conn.execute(stmt.order_by(r.run_uuid))
            ]

    def deleted_experiments(self, deleted_before: int | None) -> list[Experiment]:
        e = experiments.c
        stmt = sa.select(experiments).where(e.lifecycle_stage == _DELETED)
        if deleted_before is not None:
            stmt = stmt.where(sa.or_(e.last_update_time.is_(None),
                                     e.last_update_time <= deleted_before))
        with self.db.read() as conn:
            return [
                Experiment(str(row.experiment_id), row.name, row.artifact_location or "",
                           LifecycleStage.DELETED, {}, row.creation_time, row.last_update_time)
                for row in conn.execute(stmt.order_by(e.experiment_id))
            ]

    def deleted_logged_models(
        self, deleted_before: int | None, experiment_ids: Sequence[str] | None = None
    ) -> list[LoggedModel]:
        m = logged_models.c
        stmt = sa.select(logged_models).where(m.lifecycle_stage == _DELETED)
        if deleted_before is not None:
            stmt = stmt.where(m.last_updated_timestamp <= deleted_before)
        if experiment_ids is not None:
            stmt = stmt.where(m.experiment_id.in_([_int(e) for e in experiment_ids]))
        with self.db.read() as conn:
            return [
                LoggedModel(row.model_id, str(row.experiment_id), row.name,
                            row.artifact_location, row.creation_timestamp,
                            row.last_updated_timestamp, LoggedModelStatus(row.status),
                            row.model_type, row.source_run_id, row.status_message,
                            lifecycle_stage=LifecycleStage.DELETED)
                for row in conn.execute(stmt.order_by(m.model_id))
            ]

    # -- removing --------------------------------------------------------------------------

    def purge_run(self, run_id: str) -> None:
        with self.db.write() as conn:
            stage = conn.execute(
                sa.select(runs.c.lifecycle_stage).where(runs.c.run_uuid == run_id)
            ).scalar()
            if stage is None:
                return
            if stage != _DELETED:
                raise errors.invalid(f"Run {run_id} is not deleted; delete it first")
            _purge_runs(conn, [run_id])

    def purge_logged_model(self, model_id: str) -> None:
        with self.db.write() as conn:
            stage = conn.execute(sa.select(logged_models.c.lifecycle_stage)
                                 .where(logged_models.c.model_id == model_id)).scalar()
            if stage is None:
                return
            if stage != _DELETED:
                raise errors.invalid(f"Logged model {model_id} is not deleted; delete it first")
            _purge_models(conn, [model_id])

    def purge_experiment(self, experiment_id: str) -> None:
        eid = _int(experiment_id)
        with self.db.write() as conn:
            stage = conn.execute(sa.select(experiments.c.lifecycle_stage)
                                 .where(experiments.c.experiment_id == eid)).scalar()
            if stage is None:
                return
            if stage != _DELETED:
                raise errors.invalid(
                    f"Experiment {experiment_id} is not deleted; delete it first")
            run_ids = list(conn.execute(
                sa.select(runs.c.run_uuid).where(runs.c.experiment_id == eid)).scalars())
            _purge_runs(conn, run_ids)
            model_ids = list(conn.execute(sa.select(logged_models.c.model_id)
                                          .where(logged_models.c.experiment_id == eid)).scalars())
            _purge_models(conn, model_ids)
            ds = list(conn.execute(sa.select(datasets.c.dataset_uuid)
                                   .where(datasets.c.experiment_id == eid)).scalars())
            for chunk in _chunks(ds):
                _purge_inputs(conn, inputs.c.source_id.in_(chunk))
                conn.execute(datasets.delete().where(datasets.c.dataset_uuid.in_(chunk)))
            traces = sa.select(trace_info.c.request_id).where(trace_info.c.experiment_id == eid)
            for table in (trace_tags, trace_request_metadata, trace_run_links):
                conn.execute(table.delete().where(table.c.request_id.in_(traces)))
            conn.execute(assessments_table.delete()
                         .where(assessments_table.c.trace_id.in_(traces)))
            conn.execute(trace_info.delete().where(trace_info.c.experiment_id == eid))
            conn.execute(experiment_tags.delete().where(experiment_tags.c.experiment_id == eid))
            conn.execute(experiments.delete().where(experiments.c.experiment_id == eid))


def _int(experiment_id: str) -> int:
    try:
        return int(experiment_id)
    except ValueError:
        raise errors.invalid(f"Experiment id {experiment_id!r} is not an integer") from None


def _chunks(ids: list[str], size: int = 500) -> list[list[str]]:
    return [ids[i:i + size] for i in range(0, len(ids), size)]


def _purge_inputs(conn: Connection, where: Any) -> None:
    found = list(conn.execute(sa.select(inputs.c.input_uuid).where(where)).scalars())
    for chunk in _chunks(found):
        conn.execute(input_tags.delete().where(input_tags.c.input_uuid.in_(chunk)))
        conn.execute(inputs.delete().where(inputs.c.input_uuid.in_(chunk)))


def _purge_runs(conn: Connection, run_ids: list[str]) -> None:
    for chunk in _chunks(run_ids):
        series = sa.select(metric_series.c.series_id).where(metric_series.c.run_uuid.in_(chunk))
        conn.execute(metric_points.delete().where(metric_points.c.series_id.in_(series)))
        conn.execute(metric_series.delete().where(metric_series.c.run_uuid.in_(chunk)))
        for table in (latest_metrics, params, tags, run_outputs, trace_run_links):
            conn.execute(table.delete().where(table.c.run_uuid.in_(chunk)))
        conn.execute(logged_model_metrics.delete()
                     .where(logged_model_metrics.c.run_uuid.in_(chunk)))
        _purge_inputs(conn, sa.and_(inputs.c.destination_type == "RUN",
                                    inputs.c.destination_id.in_(chunk)))
        conn.execute(runs.delete().where(runs.c.run_uuid.in_(chunk)))


def _purge_models(conn: Connection, model_ids: list[str]) -> None:
    for chunk in _chunks(model_ids):
        for table in (logged_model_tags, logged_model_params, logged_model_metrics,
                      run_outputs):
            conn.execute(table.delete().where(table.c.model_id.in_(chunk)))
        _purge_inputs(conn, inputs.c.source_id.in_(chunk))
        conn.execute(logged_models.delete().where(logged_models.c.model_id.in_(chunk)))
