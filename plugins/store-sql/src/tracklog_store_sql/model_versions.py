"""Model versions: the second half of the SQL store's registry (mixed into
SqlTrackingStore beside RegistryMixin, whose row helpers it uses)."""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa

from tracklog import errors
from tracklog.entities import (
    ModelVersion,
    ModelVersionStage,
    ModelVersionStatus,
    PagedList,
    now_ms,
)
from tracklog.search.ast import Filter, OrderBy
from tracklog.search.tokens import decode_offset_token
from tracklog_store_sql import db as dbmod
from tracklog_store_sql import search_other as sqlsearch
from tracklog_store_sql.registry import (
    RegistryMixin,
    canonical_stage,
    no_prompt,
    prompt_filter,
    tag_pairs,
)
from tracklog_store_sql.schema import (
    logged_models,
    model_version_tags,
    model_versions,
    registered_model_aliases,
    registered_models,
)
from tracklog_store_sql.sqlutil import page, page_limit, upsert

_VERSION_ATTEMPTS = 5


class ModelVersionsMixin(RegistryMixin):
    def create_model_version(
        self,
        name: str,
        source: str,
        run_id: str | None = None,
        tags: Sequence[tuple[str, str]] = (),
        run_link: str | None = None,
        description: str | None = None,
        model_id: str | None = None,
    ) -> ModelVersion:
        if not source:
            raise errors.invalid("Model version source cannot be empty.")
        tag_rows = dict(tag_pairs(tags))
        for attempt in range(_VERSION_ATTEMPTS):
            try:
                return self._create_model_version(
                    name, source, run_id, tag_rows, run_link, description, model_id
                )
            except sa.exc.DBAPIError as exc:
                # The model row lock serialises registrations; a deadlock or serialization
                # failure left is transient, and rerunning the transaction is safe.
                if not dbmod.is_transient(exc):
                    raise
                if attempt + 1 == _VERSION_ATTEMPTS:
                    raise errors.TracklogError(
                        f"Could not register a version of model {name!r}: the database "
                        "stayed busy; try again",
                        errors.ErrorCode.TEMPORARILY_UNAVAILABLE,
                    ) from None
        raise AssertionError("unreachable")

    def _create_model_version(self, name, source, run_id, tag_rows, run_link, description,
                              model_id) -> ModelVersion:
        with self.db.write() as conn:
            # Lock the model row first, so concurrent registrations take numbers one at
            # a time.
            self._rm_row(conn, name, lock=True)
            now = now_ms()
            current = conn.execute(
                sa.select(sa.func.max(model_versions.c.version)).where(
                    model_versions.c.name == name
                )
            ).scalar()
            version = (current or 0) + 1
            conn.execute(
                model_versions.insert().values(
                    name=name,
                    version=version,
                    creation_time=now,
                    last_updated_time=now,
                    description=description or "",
                    current_stage=ModelVersionStage.NONE.value,
                    source=source,
                    run_id=run_id or None,
                    run_link=run_link or "",
                    status=ModelVersionStatus.READY.value,
                    model_id=model_id or None,
                )
            )
            if tag_rows:
                conn.execute(
                    model_version_tags.insert(),
                    [
                        {"name": name, "version": version, "key": k, "value": v}
                        for k, v in tag_rows.items()
                    ],
                )
            conn.execute(
                registered_models.update()
                .where(registered_models.c.name == name)
                .values(last_updated_time=now)
            )
            return self._load_versions(conn, [self._mv_row(conn, name, version)])[0]

    def get_model_version(self, name: str, version: str) -> ModelVersion:
        with self.db.read() as conn:
            return self._load_versions(conn, [self._mv_row(conn, name, version)])[0]

    def update_model_version(
        self, name: str, version: str, description: str | None
    ) -> ModelVersion:
        with self.db.write() as conn:
            row = self._mv_row(conn, name, version)
            conn.execute(
                model_versions.update()
                .where(model_versions.c.name == name, model_versions.c.version == row.version)
                .values(description=description or "", last_updated_time=now_ms())
            )
            return self._load_versions(conn, [self._mv_row(conn, name, version)])[0]

    def transition_model_version_stage(
        self, name: str, version: str, stage: str, archive_existing_versions: bool
    ) -> ModelVersion:
        stage = canonical_stage(stage)
        now = now_ms()
        with self.db.write() as conn:
            row = self._mv_row(conn, name, version)
            self._rm_row(conn, name, lock=True)
            if archive_existing_versions and stage in (
                ModelVersionStage.STAGING.value,
                ModelVersionStage.PRODUCTION.value,
            ):
                conn.execute(
                    model_versions.update()
                    .where(
                        model_versions.c.name == name,
                        model_versions.c.version != row.version,
                        model_versions.c.current_stage == stage,
                    )
                    .values(current_stage=ModelVersionStage.ARCHIVED.value, last_updated_time=now)
                )
            conn.execute(
                model_versions.update()
                .where(model_versions.c.name == name, model_versions.c.version == row.version)
                .values(current_stage=stage, last_updated_time=now)
            )
            conn.execute(
                registered_models.update()
                .where(registered_models.c.name == name)
                .values(last_updated_time=now)
            )
            return self._load_versions(conn, [self._mv_row(conn, name, version)])[0]

    def delete_model_version(self, name: str, version: str) -> None:
        with self.db.write() as conn:
            row = self._mv_row(conn, name, version)
            self._rm_row(conn, name, lock=True)
            for table in (model_version_tags, registered_model_aliases, model_versions):
                conn.execute(
                    table.delete().where(table.c.name == name, table.c.version == row.version)
                )
            conn.execute(
                registered_models.update()
                .where(registered_models.c.name == name)
                .values(last_updated_time=now_ms())
            )

    def get_model_version_download_uri(self, name: str, version: str) -> str:
        with self.db.read() as conn:
            row = self._mv_row(conn, name, version)
            source = row.source or ""
            if source.startswith("models:/m-"):
                model_id = source[len("models:/") :].split("/", 1)[0]
                location = conn.execute(
                    sa.select(logged_models.c.artifact_location).where(
                        logged_models.c.model_id == model_id
                    )
                ).scalar()
                if location:
                    return location
            return source

    def search_model_versions(
        self,
        filter: Filter = (),
        max_results: int = 10000,
        order_by: Sequence[OrderBy] = (),
        page_token: str | None = None,
    ) -> PagedList[ModelVersion]:
        offset = decode_offset_token(page_token)
        filter, prompts = prompt_filter(filter)
        stmt = sqlsearch.model_versions_query(self.dialect, filter, order_by)
        if not prompts:
            stmt = stmt.where(no_prompt(model_version_tags, model_versions.c.name, self.dialect))
        stmt = stmt.limit(page_limit(max_results)).offset(offset)
        with self.db.read() as conn:
            rows, token = page(conn.execute(stmt).all(), max_results, offset)
            return PagedList(self._load_versions(conn, rows), token)

    def set_model_version_tag(self, name: str, version: str, key: str, value: str) -> None:
        with self.db.write() as conn:
            row = self._mv_row(conn, name, version)
            upsert(
                conn,
                model_version_tags,
                [{"name": name, "version": row.version, "key": key, "value": value}],
                ["name", "version", "key"],
                ["value"],
            )

    def delete_model_version_tag(self, name: str, version: str, key: str) -> None:
        with self.db.write() as conn:
            row = self._mv_row(conn, name, version)
            deleted = conn.execute(
                model_version_tags.delete().where(
                    model_version_tags.c.name == name,
                    model_version_tags.c.version == row.version,
                    model_version_tags.c.key == key,
                )
            ).rowcount
            if not deleted:
                raise errors.not_found(
                    f"No tag with key {key!r} on model version (name={name}, version={version})"
                )
