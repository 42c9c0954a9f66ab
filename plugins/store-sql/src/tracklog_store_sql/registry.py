"""Registered models, their tags and aliases, and the row helpers the model versions
(model_versions.py) share: the first half of the SQL store's registry."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from tracklog import errors
from tracklog.entities import (
    ModelVersion,
    ModelVersionStage,
    ModelVersionStatus,
    PagedList,
    RegisteredModel,
    RegisteredModelAlias,
    now_ms,
)
from tracklog.search.ast import Filter, Kind, Op, OrderBy
from tracklog.search.tokens import decode_offset_token
from tracklog_store_sql import search_other as sqlsearch
from tracklog_store_sql.schema import (
    model_version_tags,
    model_versions,
    registered_model_aliases,
    registered_model_tags,
    registered_models,
)
from tracklog_store_sql.sqlutil import (
    chunk_size,
    chunks,
    in_ids,
    page,
    page_limit,
    string_condition,
    upsert,
)

if TYPE_CHECKING:
    from tracklog_store_sql.db import Database

_STAGES = {s.value.lower(): s.value for s in ModelVersionStage}
_PROMPT_TAG = "mlflow.prompt.is_prompt"


def canonical_stage(stage: str) -> str:
    try:
        return _STAGES[str(stage).lower()]
    except KeyError:
        raise errors.invalid(
            f"Invalid Model Version stage: {stage}. Value must be one of "
            f"{', '.join(_STAGES.values())}."
        ) from None


def _check_model_name(name: str) -> None:
    if not name:
        raise errors.invalid("Registered model name cannot be empty.")
    if len(name) > 256:
        raise errors.invalid(
            f"Registered model name {name[:50]!r}... exceeds the limit of 256 characters"
        )


def prompt_filter(filter: Filter) -> tuple[Filter, bool]:
    """``(filter, prompts wanted)``: registry searches hide prompts, as MLflow's do, unless
    the first comparison on the prompt tag is ``= 'true'`` or ``!= 'false'`` (value in any case).
    Otherwise comparisons on that tag are dropped, so they never hide plain models."""
    for cmp in filter:
        if cmp.ident.kind is Kind.TAG and cmp.ident.key == _PROMPT_TAG:
            value = cmp.value.lower() if isinstance(cmp.value, str) else None
            if (cmp.op is Op.EQ and value == "true") or (cmp.op is Op.NE and value == "false"):
                return filter, True
            break
    kept = tuple(c for c in filter if not (c.ident.kind is Kind.TAG and c.ident.key == _PROMPT_TAG))
    return kept, False


def no_prompt(tags: sa.Table, name_col, dialect: str):
    """No row of ``tags`` for this name marks a prompt. For versions MLflow matches any
    version of the name, not the version itself."""
    return ~sa.exists().where(
        tags.c.name == name_col,
        tags.c.key == _PROMPT_TAG,
        string_condition(tags.c.value, Op.EQ, "true", dialect),
    )


def version_number(version: Any) -> int:
    try:
        value = int(str(version), 10)
    except (TypeError, ValueError):
        raise errors.invalid(f"Parameter 'version' must be an integer, got '{version}'.") from None
    if not 0 < value <= 2**31 - 1:
        raise errors.invalid(f"Parameter 'version' must be a positive integer, got '{version}'.")
    return value


class RegistryMixin:
    db: Database
    dialect: str

    # -- helpers ------------------------------------------------------------------------

    def _rm_row(self, conn: Connection, name: str, lock: bool = False):
        """The registered model's row; ``lock`` holds it until the transaction ends, which
        serialises the writes that read a model's versions and then change them (version
        numbering, archiving on a stage transition)."""
        if not name:
            raise errors.invalid("Registered model name cannot be empty.")
        query = sa.select(registered_models).where(registered_models.c.name == name)
        if lock:
            # SQL Server takes the row lock from a table hint rather than FOR UPDATE;
            # SQLite ignores both: its BEGIN IMMEDIATE already serialises writers.
            query = query.with_for_update().with_hint(
                registered_models, "WITH (UPDLOCK, ROWLOCK)", "mssql"
            )
        row = conn.execute(query).first()
        if row is None:
            raise errors.not_found(f"Registered Model with name={name} not found")
        return row

    def _mv_row(self, conn: Connection, name: str, version: Any):
        number = version_number(version)
        row = conn.execute(
            sa.select(model_versions).where(
                model_versions.c.name == name, model_versions.c.version == number
            )
        ).first()
        if row is None:
            raise errors.not_found(f"Model Version (name={name}, version={version}) not found")
        return row

    def _load_versions(self, conn: Connection, rows: Sequence[Any]) -> list[ModelVersion]:
        out: dict[tuple[str, int], ModelVersion] = {}
        for r in rows:
            out[(r.name, r.version)] = ModelVersion(
                name=r.name,
                version=str(r.version),
                creation_timestamp=r.creation_time,
                last_updated_timestamp=r.last_updated_time,
                source=r.source,
                current_stage=r.current_stage or ModelVersionStage.NONE.value,
                description=r.description or "",
                user_id=r.user_id,
                run_id=r.run_id,
                run_link=r.run_link or "",
                status=ModelVersionStatus(r.status or "READY"),
                status_message=r.status_message,
                model_id=r.model_id,
            )
        names = sorted({r.name for r in rows})
        for chunk in chunks(names, chunk_size(self.dialect)):
            for t in conn.execute(
                sa.select(model_version_tags).where(
                    in_ids(model_version_tags.c.name, chunk, self.dialect)
                )
            ):
                mv = out.get((t.name, t.version))
                if mv is not None:
                    mv.tags[t.key] = t.value
            for a in conn.execute(
                sa.select(registered_model_aliases)
                .where(in_ids(registered_model_aliases.c.name, chunk, self.dialect))
                .order_by(registered_model_aliases.c.alias)
            ):
                mv = out.get((a.name, a.version))
                if mv is not None:
                    mv.aliases.append(a.alias)
        return list(out.values())

    def _load_models_rm(self, conn: Connection, rows: Sequence[Any]) -> list[RegisteredModel]:
        out: dict[str, RegisteredModel] = {}
        for r in rows:
            out[r.name] = RegisteredModel(
                name=r.name,
                creation_timestamp=r.creation_time,
                last_updated_timestamp=r.last_updated_time,
                description=r.description or "",
                user_id=r.user_id,
            )
        names = list(out)
        for chunk in chunks(names, chunk_size(self.dialect)):
            for t in conn.execute(
                sa.select(registered_model_tags).where(
                    in_ids(registered_model_tags.c.name, chunk, self.dialect)
                )
            ):
                out[t.name].tags[t.key] = t.value
            for a in conn.execute(
                sa.select(registered_model_aliases)
                .where(in_ids(registered_model_aliases.c.name, chunk, self.dialect))
                .order_by(registered_model_aliases.c.alias)
            ):
                out[a.name].aliases.append(RegisteredModelAlias(a.alias, str(a.version)))
            # The newest version per (model, stage), in one statement.
            mv = model_versions.c
            newest = (
                sa.select(mv.name, mv.current_stage, sa.func.max(mv.version).label("version"))
                .where(in_ids(mv.name, chunk, self.dialect))
                .group_by(mv.name, mv.current_stage)
                .subquery()
            )
            latest_rows = conn.execute(
                sa.select(model_versions)
                .join(
                    newest,
                    sa.and_(mv.name == newest.c.name, mv.version == newest.c.version),
                )
                .order_by(mv.name, mv.version)
            ).all()
            for v in self._load_versions(conn, latest_rows):
                out[v.name].latest_versions.append(v)
        return list(out.values())

    # -- registered models --------------------------------------------------------------

    def create_registered_model(
        self, name: str, tags: Sequence[tuple[str, str]] = (), description: str | None = None
    ) -> RegisteredModel:
        _check_model_name(name)
        now = now_ms()
        try:
            with self.db.write() as conn:
                if conn.execute(
                    sa.select(registered_models.c.name).where(registered_models.c.name == name)
                ).first():
                    raise errors.already_exists(f"Registered Model (name={name}) already exists.")
                conn.execute(
                    registered_models.insert().values(
                        name=name,
                        creation_time=now,
                        last_updated_time=now,
                        description=description or "",
                    )
                )
                tag_rows = dict(tag_pairs(tags))
                if tag_rows:
                    conn.execute(
                        registered_model_tags.insert(),
                        [{"name": name, "key": k, "value": v} for k, v in tag_rows.items()],
                    )
                return self._load_models_rm(conn, [self._rm_row(conn, name)])[0]
        except sa.exc.IntegrityError:
            raise errors.already_exists(f"Registered Model (name={name}) already exists.") from None

    def get_registered_model(self, name: str) -> RegisteredModel:
        with self.db.read() as conn:
            return self._load_models_rm(conn, [self._rm_row(conn, name)])[0]

    def rename_registered_model(self, name: str, new_name: str) -> RegisteredModel:
        _check_model_name(new_name)
        try:
            with self.db.write() as conn:
                self._rm_row(conn, name)
                if (
                    new_name != name
                    and conn.execute(
                        sa.select(registered_models.c.name).where(
                            registered_models.c.name == new_name
                        )
                    ).first()
                ):
                    raise errors.already_exists(
                        f"Registered Model (name={new_name}) already exists."
                    )
                # Child rows follow through ON UPDATE CASCADE foreign keys.
                conn.execute(
                    registered_models.update()
                    .where(registered_models.c.name == name)
                    .values(name=new_name, last_updated_time=now_ms())
                )
                return self._load_models_rm(conn, [self._rm_row(conn, new_name)])[0]
        except sa.exc.IntegrityError:
            raise errors.already_exists(
                f"Registered Model (name={new_name}) already exists."
            ) from None

    def update_registered_model(self, name: str, description: str | None) -> RegisteredModel:
        with self.db.write() as conn:
            self._rm_row(conn, name)
            conn.execute(
                registered_models.update()
                .where(registered_models.c.name == name)
                .values(description=description or "", last_updated_time=now_ms())
            )
            return self._load_models_rm(conn, [self._rm_row(conn, name)])[0]

    def delete_registered_model(self, name: str) -> None:
        with self.db.write() as conn:
            self._rm_row(conn, name)
            for table in (
                model_version_tags,
                registered_model_aliases,
                model_versions,
                registered_model_tags,
                registered_models,
            ):
                conn.execute(table.delete().where(table.c.name == name))

    def search_registered_models(
        self,
        filter: Filter = (),
        max_results: int = 100,
        order_by: Sequence[OrderBy] = (),
        page_token: str | None = None,
    ) -> PagedList[RegisteredModel]:
        offset = decode_offset_token(page_token)
        filter, prompts = prompt_filter(filter)
        stmt = sqlsearch.registered_models_query(self.dialect, filter, order_by)
        if not prompts:
            stmt = stmt.where(
                no_prompt(registered_model_tags, registered_models.c.name, self.dialect)
            )
        stmt = stmt.limit(page_limit(max_results)).offset(offset)
        with self.db.read() as conn:
            rows, token = page(conn.execute(stmt).all(), max_results, offset)
            return PagedList(self._load_models_rm(conn, rows), token)

    def get_latest_versions(self, name: str, stages: Sequence[str] = ()) -> list[ModelVersion]:
        wanted = {canonical_stage(s) for s in stages}
        with self.db.read() as conn:
            model = self._load_models_rm(conn, [self._rm_row(conn, name)])[0]
        return [v for v in model.latest_versions if not wanted or v.current_stage in wanted]

    def set_registered_model_tag(self, name: str, key: str, value: str) -> None:
        with self.db.write() as conn:
            self._rm_row(conn, name)
            upsert(
                conn,
                registered_model_tags,
                [{"name": name, "key": key, "value": value}],
                ["name", "key"],
                ["value"],
            )

    def delete_registered_model_tag(self, name: str, key: str) -> None:
        with self.db.write() as conn:
            self._rm_row(conn, name)
            deleted = conn.execute(
                registered_model_tags.delete().where(
                    registered_model_tags.c.name == name, registered_model_tags.c.key == key
                )
            ).rowcount
            if not deleted:
                raise errors.not_found(f"No tag with key {key!r} on registered model {name}")

    # -- aliases ------------------------------------------------------------------------

    def set_registered_model_alias(self, name: str, alias: str, version: str) -> None:
        with self.db.write() as conn:
            row = self._mv_row(conn, name, version)
            upsert(
                conn,
                registered_model_aliases,
                [{"name": name, "alias": alias, "version": row.version}],
                ["name", "alias"],
                ["version"],
            )

    def delete_registered_model_alias(self, name: str, alias: str) -> None:
        with self.db.write() as conn:
            self._rm_row(conn, name)
            conn.execute(
                registered_model_aliases.delete().where(
                    registered_model_aliases.c.name == name,
                    registered_model_aliases.c.alias == alias,
                )
            )

    def get_model_version_by_alias(self, name: str, alias: str) -> ModelVersion:
        with self.db.read() as conn:
            self._rm_row(conn, name)
            version = conn.execute(
                sa.select(registered_model_aliases.c.version).where(
                    registered_model_aliases.c.name == name,
                    registered_model_aliases.c.alias == alias,
                )
            ).scalar()
            if version is None:
                # MLflow answers an unknown alias of a known model with 400, not 404.
                raise errors.invalid(f"Registered model alias {alias} not found.")
            return self._load_versions(conn, [self._mv_row(conn, name, version)])[0]


def tag_pairs(tags: Sequence[Any]):
    """Accept ``(key, value)`` tuples or objects with ``key``/``value`` attributes."""
    for t in tags:
        if isinstance(t, tuple):
            yield t
        else:
            yield t.key, t.value
