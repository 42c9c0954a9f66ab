"""Experiments: create, read, search, rename, delete and restore, and their tags."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from tracklog import errors
from tracklog.entities import Experiment, ExperimentTag, PagedList, ViewType, now_ms
from tracklog.search.ast import Filter, OrderBy
from tracklog.search.tokens import decode_offset_token
from tracklog.stores import DEFAULT_EXPERIMENT_ID, DEFAULT_EXPERIMENT_NAME
from tracklog.validation import check_no_nul, validate_experiment_name
from tracklog_store_sql import search_other as sqlsearch
from tracklog_store_sql.rows import (
    ACTIVE,
    DELETED,
    experiment_row,
    experiment_row_by_name,
    join_uri,
    load_experiments,
)
from tracklog_store_sql.schema import experiment_tags, experiments, runs
from tracklog_store_sql.sqlutil import page, page_limit, upsert

if TYPE_CHECKING:
    from tracklog_store_sql.db import Database


class ExperimentsMixin:
    """The experiments section of the tracking store."""

    db: Database
    dialect: str
    default_artifact_root: str

    def _ensure_default_experiment(self) -> None:
        with self.db.read() as conn:
            exists = conn.execute(
                sa.select(experiments.c.experiment_id).where(experiments.c.experiment_id == 0)
            ).first()
        if exists:
            return
        now = now_ms()
        row = {
            "experiment_id": 0,
            "name": DEFAULT_EXPERIMENT_NAME,
            "artifact_location": join_uri(self.default_artifact_root, DEFAULT_EXPERIMENT_ID),
            "lifecycle_stage": ACTIVE,
            "creation_time": now,
            "last_update_time": now,
        }
        try:
            with self.db.write() as conn:
                insert_default_experiment(conn, row)
        except sa.exc.IntegrityError:
            pass  # another process created it first

    def create_experiment(
        self,
        name: str,
        artifact_location: str | None = None,
        tags: Sequence[ExperimentTag] = (),
    ) -> str:
        validate_experiment_name(name)
        check_no_nul("name", name, artifact_location)
        _check_tags(tags, "tags")
        now = now_ms()
        try:
            with self.db.write() as conn:
                taken = conn.execute(
                    sa.select(experiments.c.experiment_id).where(experiments.c.name == name)
                ).first()
                if taken:
                    raise errors.already_exists(f"Experiment(name={name}) already exists.")
                result = conn.execute(
                    experiments.insert().values(
                        name=name,
                        artifact_location=artifact_location or None,
                        lifecycle_stage=ACTIVE,
                        creation_time=now,
                        last_update_time=now,
                    )
                )
                inserted = result.inserted_primary_key
                assert inserted is not None  # a single-row INSERT always reports its key
                eid = inserted[0]
                if not artifact_location:
                    conn.execute(
                        experiments.update()
                        .where(experiments.c.experiment_id == eid)
                        .values(artifact_location=join_uri(self.default_artifact_root, str(eid)))
                    )
                tag_rows = {t.key: t.value for t in tags}
                if tag_rows:
                    conn.execute(
                        experiment_tags.insert(),
                        [{"experiment_id": eid, "key": k, "value": v} for k, v in tag_rows.items()],
                    )
        except sa.exc.IntegrityError:
            raise errors.already_exists(f"Experiment(name={name}) already exists.") from None
        return str(eid)

    def get_experiment(self, experiment_id: str) -> Experiment:
        with self.db.read() as conn:
            row = experiment_row(conn, experiment_id)
            return load_experiments(conn, [row])[0]

    def get_experiment_by_name(self, name: str) -> Experiment | None:
        if "\x00" in name:
            return None  # never stored (and PostgreSQL cannot even compare it)
        with self.db.read() as conn:
            row = experiment_row_by_name(conn, name)
            if row is None:
                return None
            return load_experiments(conn, [row])[0]

    def search_experiments(
        self,
        view_type: ViewType = ViewType.ACTIVE_ONLY,
        max_results: int = 1000,
        filter: Filter = (),
        order_by: Sequence[OrderBy] = (),
        page_token: str | None = None,
    ) -> PagedList[Experiment]:
        offset = decode_offset_token(page_token)
        stmt = (
            sqlsearch.experiments_query(self.dialect, ViewType(view_type), filter, order_by)
            .limit(page_limit(max_results))
            .offset(offset)
        )
        with self.db.read() as conn:
            rows, token = page(conn.execute(stmt).all(), max_results, offset)
            return PagedList(load_experiments(conn, rows), token)

    def rename_experiment(self, experiment_id: str, new_name: str) -> None:
        validate_experiment_name(new_name, "new_name")
        check_no_nul("new_name", new_name)
        try:
            with self.db.write() as conn:
                row = experiment_row(conn, experiment_id)
                if row.lifecycle_stage != ACTIVE:
                    raise errors.invalid("Cannot rename a non-active experiment.")
                taken = conn.execute(
                    sa.select(experiments.c.experiment_id).where(
                        experiments.c.name == new_name,
                        experiments.c.experiment_id != row.experiment_id,
                    )
                ).first()
                if taken:
                    raise errors.already_exists(f"Experiment(name={new_name}) already exists.")
                conn.execute(
                    experiments.update()
                    .where(experiments.c.experiment_id == row.experiment_id)
                    .values(name=new_name, last_update_time=now_ms())
                )
        except sa.exc.IntegrityError:
            raise errors.already_exists(f"Experiment(name={new_name}) already exists.") from None

    def delete_experiment(self, experiment_id: str) -> None:
        with self.db.write() as conn:
            row = experiment_row(conn, experiment_id)
            if row.experiment_id == int(DEFAULT_EXPERIMENT_ID):
                # MLflow's words; 400, not its 500, which the client would retry.
                raise errors.invalid(
                    f"Cannot delete the default experiment '{DEFAULT_EXPERIMENT_ID}'. "
                    "This is an internally reserved experiment."
                )
            if row.lifecycle_stage != ACTIVE:
                raise errors.not_found(
                    f"Experiment with id={experiment_id} does not exist or is already deleted"
                )
            now = now_ms()
            conn.execute(
                experiments.update()
                .where(experiments.c.experiment_id == row.experiment_id)
                .values(lifecycle_stage=DELETED, last_update_time=now)
            )
            conn.execute(
                runs.update()
                .where(
                    runs.c.experiment_id == row.experiment_id,
                    runs.c.lifecycle_stage == ACTIVE,
                )
                .values(lifecycle_stage=DELETED, deleted_time=now)
            )

    def restore_experiment(self, experiment_id: str) -> None:
        with self.db.write() as conn:
            row = experiment_row(conn, experiment_id)
            if row.lifecycle_stage != DELETED:
                raise errors.not_found(
                    f"Experiment with id={experiment_id} is not deleted; nothing to restore"
                )
            # Every deleted run comes back, also those deleted before the experiment (MLflow).
            conn.execute(
                runs.update()
                .where(
                    runs.c.experiment_id == row.experiment_id,
                    runs.c.lifecycle_stage == DELETED,
                )
                .values(lifecycle_stage=ACTIVE, deleted_time=None)
            )
            conn.execute(
                experiments.update()
                .where(experiments.c.experiment_id == row.experiment_id)
                .values(lifecycle_stage=ACTIVE, last_update_time=now_ms())
            )

    def set_experiment_tag(self, experiment_id: str, tag: ExperimentTag) -> None:
        _check_tags([tag], "tag")
        with self.db.write() as conn:
            row = experiment_row(conn, experiment_id, for_write=True)
            upsert(
                conn,
                experiment_tags,
                [{"experiment_id": row.experiment_id, "key": tag.key, "value": tag.value}],
                ["experiment_id", "key"],
                ["value"],
            )
            conn.execute(
                experiments.update()
                .where(experiments.c.experiment_id == row.experiment_id)
                .values(last_update_time=now_ms())
            )

    def delete_experiment_tag(self, experiment_id: str, key: str) -> None:
        with self.db.write() as conn:
            row = experiment_row(conn, experiment_id, for_write=True)
            deleted = conn.execute(
                experiment_tags.delete().where(
                    experiment_tags.c.experiment_id == row.experiment_id,
                    experiment_tags.c.key == key,
                )
            ).rowcount
            if not deleted:
                raise errors.not_found(
                    f"No tag with name: {key} in experiment with id {experiment_id}"
                )


def insert_default_experiment(conn: Connection, row: dict[str, Any]) -> None:
    """Insert experiment 0, which auto-increment columns do not accept by default."""
    dialect = conn.dialect.name
    if dialect in ("mysql", "mariadb"):
        conn.exec_driver_sql(
            "SET SESSION sql_mode = CONCAT(@@SESSION.sql_mode, ',NO_AUTO_VALUE_ON_ZERO')"
        )
    if dialect == "mssql":
        conn.exec_driver_sql("SET IDENTITY_INSERT experiments ON")
    conn.execute(experiments.insert().values(**row))
    if dialect == "mssql":
        conn.exec_driver_sql("SET IDENTITY_INSERT experiments OFF")


def _check_tags(tags: Iterable[Any], field: str) -> None:
    for tag in tags:
        check_no_nul(f"{field}.key", tag.key)
        check_no_nul(f"{field}.value", tag.value)
