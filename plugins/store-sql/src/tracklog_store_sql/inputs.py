"""Run inputs (datasets and logged models) and outputs (logged models)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING

import sqlalchemy as sa

from tracklog.entities import DatasetInput, LoggedModelInput, LoggedModelOutput
from tracklog.validation import check_int64_column
from tracklog_store_sql.rows import check_active_run, require_models, run_row
from tracklog_store_sql.schema import datasets as datasets_table  # not shadowed by parameters
from tracklog_store_sql.schema import input_tags, inputs, run_outputs
from tracklog_store_sql.sqlutil import insert_ignore, upsert

if TYPE_CHECKING:
    from tracklog_store_sql.db import Database


class InputsMixin:
    """The inputs and outputs section of the tracking store."""

    db: Database
    dialect: str

    def log_inputs(
        self,
        run_id: str,
        datasets: Sequence[DatasetInput] = (),
        models: Sequence[LoggedModelInput] = (),
    ) -> None:
        with self.db.write() as conn:
            run = run_row(conn, run_id, for_write=True)
            for di in datasets:
                ds = di.dataset
                dataset_uuid = conn.execute(
                    sa.select(datasets_table.c.dataset_uuid).where(
                        datasets_table.c.experiment_id == run.experiment_id,
                        datasets_table.c.name == ds.name,
                        datasets_table.c.digest == ds.digest,
                    )
                ).scalar()
                if dataset_uuid is None:
                    dataset_uuid = uuid.uuid4().hex
                    conn.execute(
                        datasets_table.insert().values(
                            dataset_uuid=dataset_uuid,
                            experiment_id=run.experiment_id,
                            name=ds.name,
                            digest=ds.digest,
                            dataset_source_type=ds.source_type,
                            dataset_source=ds.source,
                            dataset_schema=ds.schema,
                            dataset_profile=ds.profile,
                        )
                    )
                exists = conn.execute(
                    sa.select(inputs.c.input_uuid).where(
                        inputs.c.source_type == "DATASET",
                        inputs.c.source_id == dataset_uuid,
                        inputs.c.destination_type == "RUN",
                        inputs.c.destination_id == run_id,
                    )
                ).first()
                if exists:
                    continue
                input_uuid = uuid.uuid4().hex
                conn.execute(
                    inputs.insert().values(
                        input_uuid=input_uuid,
                        source_type="DATASET",
                        source_id=dataset_uuid,
                        destination_type="RUN",
                        destination_id=run_id,
                    )
                )
                tag_rows = {t.key: t.value for t in di.tags}
                if tag_rows:
                    conn.execute(
                        input_tags.insert(),
                        [
                            {"input_uuid": input_uuid, "name": k, "value": v}
                            for k, v in tag_rows.items()
                        ],
                    )
            model_ids = list(dict.fromkeys(m.model_id for m in models))
            if model_ids:
                require_models(conn, model_ids)
                insert_ignore(
                    conn,
                    inputs,
                    [
                        {
                            "input_uuid": uuid.uuid4().hex,
                            "source_type": "MODEL",
                            "source_id": mid,
                            "destination_type": "RUN",
                            "destination_id": run_id,
                        }
                        for mid in model_ids
                    ],
                    ["source_type", "source_id", "destination_type", "destination_id"],
                )

    def log_outputs(self, run_id: str, models: Sequence[LoggedModelOutput]) -> None:
        check_int64_column([m.step for m in models], "models[{}].step")
        with self.db.write() as conn:
            check_active_run(conn, run_id)
            rows = {m.model_id: m.step for m in models}
            if not rows:
                return
            require_models(conn, list(rows))
            upsert(
                conn,
                run_outputs,
                [{"run_uuid": run_id, "model_id": k, "step": v} for k, v in rows.items()],
                ["run_uuid", "model_id"],
                ["step"],
            )
