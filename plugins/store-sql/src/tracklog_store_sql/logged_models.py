"""Logged models: create, read, finalize, tag, parametrize, delete and search."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING

from sqlalchemy.engine import Connection

from tracklog import errors
from tracklog.entities import (
    LoggedModel,
    LoggedModelParameter,
    LoggedModelStatus,
    LoggedModelTag,
    PagedList,
    now_ms,
)
from tracklog.names import generate_run_name
from tracklog.search.ast import Filter, OrderBy
from tracklog.search.tokens import decode_offset_token
from tracklog_store_sql import search_other as sqlsearch
from tracklog_store_sql.rows import (
    ACTIVE,
    DELETED,
    INT32_MAX,
    experiment_row,
    join_uri,
    load_models,
    model_row,
    parse_experiment_id,
    run_row,
)
from tracklog_store_sql.schema import logged_model_params, logged_model_tags, logged_models
from tracklog_store_sql.sqlutil import page, page_limit, upsert

if TYPE_CHECKING:
    from tracklog_store_sql.db import Database


class LoggedModelsMixin:
    """The logged-models section of the tracking store."""

    db: Database
    dialect: str

    def create_logged_model(
        self,
        experiment_id: str,
        name: str | None = None,
        source_run_id: str | None = None,
        tags: Sequence[LoggedModelTag] = (),
        params: Sequence[LoggedModelParameter] = (),
        model_type: str | None = None,
    ) -> LoggedModel:
        model_id = f"m-{uuid.uuid4().hex}"
        name = name or generate_run_name()
        now = now_ms()
        with self.db.write() as conn:
            exp = experiment_row(conn, experiment_id, for_write=True)
            if source_run_id:
                run_row(conn, source_run_id)
            location = join_uri(exp.artifact_location, "models", model_id, "artifacts")
            conn.execute(
                logged_models.insert().values(
                    model_id=model_id,
                    experiment_id=exp.experiment_id,
                    name=name,
                    artifact_location=location,
                    creation_timestamp=now,
                    last_updated_timestamp=now,
                    status=LoggedModelStatus.LOGGED_MODEL_PENDING.value,
                    lifecycle_stage=ACTIVE,
                    model_type=model_type,
                    source_run_id=source_run_id,
                )
            )
            tag_rows = {t.key: t.value for t in tags}
            if tag_rows:
                conn.execute(
                    logged_model_tags.insert(),
                    [{"model_id": model_id, "key": k, "value": v} for k, v in tag_rows.items()],
                )
            param_rows = {p.key: p.value for p in params}
            if param_rows:
                conn.execute(
                    logged_model_params.insert(),
                    [{"model_id": model_id, "key": k, "value": v} for k, v in param_rows.items()],
                )
            return load_models(conn, [model_row(conn, model_id)])[0]

    def get_logged_model(self, model_id: str, allow_deleted: bool = False) -> LoggedModel:
        with self.db.read() as conn:
            row = model_row(conn, model_id, allow_deleted=allow_deleted)
            return load_models(conn, [row])[0]

    def finalize_logged_model(self, model_id: str, status: LoggedModelStatus) -> LoggedModel:
        status = LoggedModelStatus(status)
        if status not in (
            LoggedModelStatus.LOGGED_MODEL_READY,
            LoggedModelStatus.LOGGED_MODEL_UPLOAD_FAILED,
        ):
            raise errors.invalid(
                f"Invalid logged model status {status.value}: a model is finalized as "
                "LOGGED_MODEL_READY or LOGGED_MODEL_UPLOAD_FAILED"
            )
        with self.db.write() as conn:
            model_row(conn, model_id, allow_deleted=False)
            conn.execute(
                logged_models.update()
                .where(logged_models.c.model_id == model_id)
                .values(status=status.value, last_updated_timestamp=now_ms())
            )
            return load_models(conn, [model_row(conn, model_id)])[0]

    def set_logged_model_tags(self, model_id: str, tags: Sequence[LoggedModelTag]) -> None:
        with self.db.write() as conn:
            model_row(conn, model_id, allow_deleted=False)
            rows = {t.key: t.value for t in tags}
            upsert(
                conn,
                logged_model_tags,
                [{"model_id": model_id, "key": k, "value": v} for k, v in rows.items()],
                ["model_id", "key"],
                ["value"],
            )
            self._touch_model(conn, model_id)

    def _touch_model(self, conn: Connection, model_id: str) -> None:
        conn.execute(
            logged_models.update()
            .where(logged_models.c.model_id == model_id)
            .values(last_updated_timestamp=now_ms())
        )

    def delete_logged_model_tag(self, model_id: str, key: str) -> None:
        with self.db.write() as conn:
            model_row(conn, model_id, allow_deleted=False)
            deleted = conn.execute(
                logged_model_tags.delete().where(
                    logged_model_tags.c.model_id == model_id, logged_model_tags.c.key == key
                )
            ).rowcount
            if not deleted:
                raise errors.not_found(f"No tag with key {key!r} on logged model {model_id}")
            self._touch_model(conn, model_id)

    def log_logged_model_params(
        self, model_id: str, params: Sequence[LoggedModelParameter]
    ) -> None:
        with self.db.write() as conn:
            model_row(conn, model_id, allow_deleted=False)
            rows = {p.key: p.value for p in params}
            upsert(
                conn,
                logged_model_params,
                [{"model_id": model_id, "key": k, "value": v} for k, v in rows.items()],
                ["model_id", "key"],
                ["value"],
            )

    def delete_logged_model(self, model_id: str) -> None:
        with self.db.write() as conn:
            model_row(conn, model_id, allow_deleted=False)
            conn.execute(
                logged_models.update()
                .where(logged_models.c.model_id == model_id)
                .values(lifecycle_stage=DELETED, last_updated_timestamp=now_ms())
            )

    def search_logged_models(
        self,
        experiment_ids: Sequence[str],
        filter: Filter = (),
        datasets: Sequence[dict[str, str]] = (),
        max_results: int = 50,
        order_by: Sequence[OrderBy] = (),
        page_token: str | None = None,
    ) -> PagedList[LoggedModel]:
        offset = decode_offset_token(page_token)
        ids = [parse_experiment_id(e) for e in experiment_ids]
        ids = [i for i in ids if i <= INT32_MAX]
        stmt = sqlsearch.logged_models_query(self.dialect, ids, filter, datasets, order_by)
        stmt = stmt.limit(page_limit(max_results)).offset(offset)
        with self.db.read() as conn:
            rows, token = page(conn.execute(stmt).all(), max_results, offset)
            return PagedList(load_models(conn, rows), token)
