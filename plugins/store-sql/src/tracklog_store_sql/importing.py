"""The SQL store's :class:`~tracklog.importing.ImportStore`: experiments and runs written
with their own ids, times and lifecycle stages (``tracklog migrate``)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from tracklog import errors
from tracklog.entities import Experiment, LifecycleStage, RunInfo, now_ms
from tracklog.importing import ImportStore
from tracklog_store_sql.schema import experiment_tags, experiments, runs

_INT32_MAX = 2**31 - 1


class ImportMixin(ImportStore):
    db: Any

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
                return
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

    def finish_import(self, run_id: str, lifecycle_stage: LifecycleStage) -> None:
        deleted = lifecycle_stage == LifecycleStage.DELETED
        with self.db.write() as conn:
            conn.execute(runs.update().where(runs.c.run_uuid == run_id).values(
                lifecycle_stage=str(lifecycle_stage),
                deleted_time=now_ms() if deleted else None,
            ))
