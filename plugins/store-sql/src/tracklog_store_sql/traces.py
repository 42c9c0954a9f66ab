"""The trace half of the SQL store (mixed into SqlTrackingStore): trace infos, their tags,
request metadata, run links and assessments. Searches are single SQL statements (built in
:mod:`tracklog_store_sql.trace_search`); spans are artifacts the client uploads
(``traces.json``), never rows here."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from tracklog import errors
from tracklog.entities import (
    Assessment,
    AssessmentKind,
    AssessmentSourceType,
    LifecycleStage,
    PagedList,
    TraceInfo,
    TraceState,
    now_ms,
)
from tracklog.search.ast import Filter, OrderBy
from tracklog.search.tokens import decode_offset_token
from tracklog.stores import TRACE_ARTIFACT_LOCATION_TAG
from tracklog_store_sql.rows import experiment_row, run_row
from tracklog_store_sql.schema import (
    assessments,
    experiments,
    trace_request_metadata,
    trace_run_links,
    trace_tags,
)
from tracklog_store_sql.schema import (
    trace_info as trace_info_table,
)
from tracklog_store_sql.sqlutil import (
    chunk_size,
    chunks,
    in_ids,
    insert_ignore,
    page,
    page_limit,
    upsert,
)
from tracklog_store_sql.trace_search import traces_query

if TYPE_CHECKING:
    from tracklog_store_sql.db import Database

_ACTIVE = LifecycleStage.ACTIVE.value
_INT32_MAX = 2**31 - 1
#: Trace ids read per statement by experiment_trace_ids.
_TRACE_ID_PAGE = 1000
ti = trace_info_table.c



def _join(root: str, *parts: str) -> str:
    base = root.rstrip("/")
    if base.endswith(":"):  # "mlflow-artifacts:" -> "mlflow-artifacts:/1/traces/…"
        return base + "/" + "/".join(parts)
    return "/".join([base, *parts])


def _trace_not_found(trace_id: str) -> errors.TracklogError:
    return errors.not_found(f"Trace with ID '{trace_id}' not found.")


class TracesMixin:
    """:class:`tracklog.stores.TraceStore` on SQLAlchemy Core; needs the host store's
    ``db``, ``dialect``, ``_experiment_row`` and ``_run_row``."""

    db: Database
    dialect: str

    if TYPE_CHECKING:
        def _experiment_row(self, conn: Connection, experiment_id: str,
                            for_write: bool = False) -> Any: ...

        def _run_row(self, conn: Connection, run_id: str, for_write: bool = False) -> Any: ...

    # -- helpers ------------------------------------------------------------------------

    def _trace_row(self, conn: Connection, trace_id: str, for_write: bool = False) -> Any:
        row = None
        if "\x00" not in trace_id:
            row = conn.execute(
                sa.select(trace_info_table, experiments.c.lifecycle_stage)
                .join(experiments, experiments.c.experiment_id == ti.experiment_id)
                .where(ti.request_id == trace_id)
            ).first()
        if row is None:
            raise _trace_not_found(trace_id)
        if for_write and row.lifecycle_stage != _ACTIVE:
            raise errors.not_active("experiment", str(row.experiment_id), row.lifecycle_stage)
        return row

    def _load_traces(self, conn: Connection, rows: Sequence[Any]) -> list[TraceInfo]:
        out: dict[str, TraceInfo] = {}
        for r in rows:
            out[r.request_id] = TraceInfo(
                trace_id=r.request_id,
                experiment_id=str(r.experiment_id),
                request_time=r.timestamp_ms,
                execution_duration=r.execution_time_ms,
                state=TraceState(r.status),
                request_preview=r.request_preview,
                response_preview=r.response_preview,
                client_request_id=r.client_request_id,
            )
        ids = list(out)
        for chunk in chunks(ids, chunk_size(self.dialect)):
            for t in conn.execute(
                sa.select(trace_tags).where(in_ids(trace_tags.c.request_id, chunk, self.dialect))
            ):
                out[t.request_id].tags[t.key] = t.value or ""
            md = trace_request_metadata.c
            for m in conn.execute(
                sa.select(trace_request_metadata).where(in_ids(md.request_id, chunk, self.dialect))
            ):
                out[m.request_id].trace_metadata[m.key] = m.value or ""
            for a in conn.execute(
                sa.select(assessments)
                .where(in_ids(assessments.c.trace_id, chunk, self.dialect))
                .order_by(assessments.c.create_time, assessments.c.assessment_id)
            ):
                out[a.trace_id].assessments.append(_assessment(a))
        return list(out.values())

    # -- traces -------------------------------------------------------------------------

    def start_trace(self, trace_info: TraceInfo) -> TraceInfo:
        try:
            return self._start_trace(trace_info)
        except sa.exc.IntegrityError:
            # The same trace sent twice at once (a client retry): the other insert won,
            # so this one now finds the row and updates it.
            return self._start_trace(trace_info)

    def _start_trace(self, info: TraceInfo) -> TraceInfo:
        with self.db.write() as conn:
            exp = experiment_row(conn, info.experiment_id, for_write=True)
            existing = conn.execute(
                sa.select(ti.experiment_id).where(ti.request_id == info.trace_id)
            ).first()
            if existing is not None and existing.experiment_id != exp.experiment_id:
                raise errors.invalid(
                    f"Trace with ID '{info.trace_id}' already exists in experiment "
                    f"{existing.experiment_id}."
                )
            location = _join(exp.artifact_location, "traces", info.trace_id, "artifacts")
            values = {
                "experiment_id": exp.experiment_id,
                "timestamp_ms": info.request_time,
                "execution_time_ms": info.execution_duration,
                "status": info.state.value,
                "client_request_id": info.client_request_id,
                "request_preview": info.request_preview,
                "response_preview": info.response_preview,
            }
            if existing is None:
                conn.execute(trace_info_table.insert().values(request_id=info.trace_id, **values))
            else:  # a retry, or the final info of a trace sent while in progress
                conn.execute(trace_info_table.update().where(ti.request_id == info.trace_id)
                             .values(**values))
            tags = {**info.tags, TRACE_ARTIFACT_LOCATION_TAG: location}
            upsert(conn, trace_tags,
                   [{"request_id": info.trace_id, "key": k, "value": v} for k, v in tags.items()],
                   ["request_id", "key"], ["value"])
            upsert(conn, trace_request_metadata,
                   [{"request_id": info.trace_id, "key": k, "value": v}
                    for k, v in info.trace_metadata.items()],
                   ["request_id", "key"], ["value"])
            return self._load_traces(conn, [self._trace_row(conn, info.trace_id)])[0]

    def get_trace_info(self, trace_id: str) -> TraceInfo:
        with self.db.read() as conn:
            return self._load_traces(conn, [self._trace_row(conn, trace_id)])[0]

    def batch_get_trace_infos(
        self, trace_ids: Sequence[str], experiment_ids: Sequence[str] | None = None
    ) -> list[TraceInfo]:
        wanted = [t for t in dict.fromkeys(trace_ids) if "\x00" not in t]
        if not wanted or experiment_ids is not None and not experiment_ids:
            return []
        found: dict[str, TraceInfo] = {}
        with self.db.read() as conn:
            for chunk in chunks(wanted, chunk_size(self.dialect)):
                stmt = sa.select(trace_info_table).where(in_ids(ti.request_id, chunk, self.dialect))
                if experiment_ids is not None:
                    stmt = stmt.where(ti.experiment_id.in_(_experiment_ints(experiment_ids)))
                rows = conn.execute(stmt).all()
                found.update((t.trace_id, t) for t in self._load_traces(conn, rows))
        return [found[t] for t in wanted if t in found]

    def search_traces(
        self,
        experiment_ids: Sequence[str],
        filter: Filter = (),
        max_results: int = 100,
        order_by: Sequence[OrderBy] = (),
        page_token: str | None = None,
    ) -> PagedList[TraceInfo]:
        offset = decode_offset_token(page_token)
        ids = _experiment_ints(experiment_ids)
        stmt = traces_query(self.dialect, ids, filter, order_by)
        stmt = stmt.limit(page_limit(max_results)).offset(offset)
        with self.db.read() as conn:
            rows, token = page(conn.execute(stmt).all(), max_results, offset)
            return PagedList(self._load_traces(conn, rows), token)

    def experiment_trace_ids(self, experiment_id: str) -> Iterator[str]:
        """A page of ids at a time, by id, whatever the experiment's stage."""
        try:
            eid = int(experiment_id)
        except (TypeError, ValueError):
            return
        if not 0 <= eid <= _INT32_MAX:
            return
        last = ""
        while True:
            with self.db.read() as conn:
                ids = conn.execute(
                    sa.select(ti.request_id)
                    .where(ti.experiment_id == eid, ti.request_id > last)
                    .order_by(ti.request_id).limit(_TRACE_ID_PAGE)).scalars().all()
            yield from ids
            if len(ids) < _TRACE_ID_PAGE:
                return
            last = ids[-1]

    def set_trace_tag(self, trace_id: str, key: str, value: str) -> None:
        with self.db.write() as conn:
            self._trace_row(conn, trace_id, for_write=True)
            upsert(conn, trace_tags, [{"request_id": trace_id, "key": key, "value": value}],
                   ["request_id", "key"], ["value"])

    def delete_trace_tag(self, trace_id: str, key: str) -> None:
        with self.db.write() as conn:
            self._trace_row(conn, trace_id, for_write=True)
            gone = conn.execute(
                trace_tags.delete().where(trace_tags.c.request_id == trace_id,
                                          trace_tags.c.key == key)
            ).rowcount
            if not gone:
                raise errors.not_found(f"No tag with name: {key} in trace with ID {trace_id}.")

    def delete_traces(
        self,
        experiment_id: str,
        max_timestamp_millis: int | None = None,
        max_traces: int | None = None,
        trace_ids: Sequence[str] = (),
    ) -> int:
        with self.db.write() as conn:
            exp = experiment_row(conn, experiment_id, for_write=True)
            stmt = sa.select(ti.request_id).where(ti.experiment_id == exp.experiment_id)
            if trace_ids:
                wanted = [t for t in dict.fromkeys(trace_ids) if "\x00" not in t]
                doomed: list[str] = []
                for chunk in chunks(wanted, chunk_size(self.dialect)):
                    doomed += conn.execute(
                        stmt.where(in_ids(ti.request_id, chunk, self.dialect))
                    ).scalars().all()
            elif max_timestamp_millis is not None:
                stmt = stmt.where(ti.timestamp_ms <= max_timestamp_millis).order_by(
                    ti.timestamp_ms, ti.request_id
                )
                if max_traces is not None:
                    stmt = stmt.limit(max_traces)
                doomed = list(conn.execute(stmt).scalars().all())
            else:
                return 0
            for chunk in chunks(doomed, chunk_size(self.dialect)):
                for table, col in ((trace_tags, trace_tags.c.request_id),
                                   (trace_request_metadata, trace_request_metadata.c.request_id),
                                   (trace_run_links, trace_run_links.c.request_id),
                                   (assessments, assessments.c.trace_id),
                                   (trace_info_table, ti.request_id)):
                    conn.execute(table.delete().where(in_ids(col, chunk, self.dialect)))
            return len(doomed)

    def link_traces_to_run(self, trace_ids: Sequence[str], run_id: str) -> None:
        wanted = list(dict.fromkeys(trace_ids))
        if not wanted:
            return
        with self.db.write() as conn:
            run_row(conn, run_id, for_write=True)
            found: dict[str, Any] = {}
            for chunk in chunks([t for t in wanted if "\x00" not in t], chunk_size(self.dialect)):
                for hit in conn.execute(
                    sa.select(ti.request_id, ti.experiment_id, experiments.c.lifecycle_stage)
                    .join(experiments, experiments.c.experiment_id == ti.experiment_id)
                    .where(in_ids(ti.request_id, chunk, self.dialect))
                ):
                    found[hit.request_id] = hit
            for trace_id in wanted:
                row = found.get(trace_id)
                if row is None:
                    raise _trace_not_found(trace_id)
                if row.lifecycle_stage != _ACTIVE:
                    raise errors.not_active("experiment", str(row.experiment_id),
                                            row.lifecycle_stage)
            insert_ignore(conn, trace_run_links,
                          [{"request_id": t, "run_uuid": run_id} for t in wanted],
                          ["request_id", "run_uuid"])

    # -- assessments --------------------------------------------------------------------

    def create_assessment(self, assessment: Assessment) -> Assessment:
        now = now_ms()
        assessment_id = f"a-{uuid.uuid4().hex}"
        with self.db.write() as conn:
            self._trace_row(conn, assessment.trace_id, for_write=True)
            conn.execute(assessments.insert().values(
                assessment_id=assessment_id,
                trace_id=assessment.trace_id,
                name=assessment.name,
                kind=assessment.kind.value,
                value=json.dumps(assessment.value),
                source_type=assessment.source_type.value,
                source_id=assessment.source_id,
                span_id=assessment.span_id,
                rationale=assessment.rationale,
                metadata=json.dumps(assessment.metadata) if assessment.metadata else None,
                overrides=assessment.overrides,
                valid=assessment.valid,
                create_time=now,
                last_update_time=now,
            ))
            return self._assessment_row(conn, assessment.trace_id, assessment_id)

    def _assessment_row(self, conn: Connection, trace_id: str, assessment_id: str) -> Assessment:
        row = None
        if "\x00" not in assessment_id:
            row = conn.execute(sa.select(assessments).where(
                assessments.c.assessment_id == assessment_id,
                assessments.c.trace_id == trace_id,
            )).first()
        if row is None:
            raise errors.not_found(
                f"Assessment with ID '{assessment_id}' not found for trace '{trace_id}'."
            )
        return _assessment(row)

    def get_assessment(self, trace_id: str, assessment_id: str) -> Assessment:
        with self.db.read() as conn:
            self._trace_row(conn, trace_id)
            return self._assessment_row(conn, trace_id, assessment_id)

    def update_assessment(
        self,
        trace_id: str,
        assessment_id: str,
        name: str | None = None,
        kind: AssessmentKind | None = None,
        value: dict[str, Any] | None = None,
        rationale: str | None = None,
        metadata: dict[str, str] | None = None,
    ) -> Assessment:
        with self.db.write() as conn:
            self._trace_row(conn, trace_id, for_write=True)
            current = self._assessment_row(conn, trace_id, assessment_id)
            changes: dict[str, Any] = {"last_update_time": max(now_ms(), current.create_time)}
            if name is not None:
                changes["name"] = name
            if value is not None:
                if kind is not None and kind is not current.kind:
                    raise errors.invalid(
                        f"Assessment '{assessment_id}' is a {current.kind.value}; it cannot "
                        f"be given a value of {kind.value}."
                    )
                changes["value"] = json.dumps(value)
            if rationale is not None:
                changes["rationale"] = rationale or None
            if metadata is not None:
                changes["metadata"] = json.dumps({**current.metadata, **metadata})
            conn.execute(assessments.update().where(
                assessments.c.assessment_id == assessment_id).values(**changes))
            return self._assessment_row(conn, trace_id, assessment_id)

    def delete_assessment(self, trace_id: str, assessment_id: str) -> None:
        with self.db.write() as conn:
            self._trace_row(conn, trace_id, for_write=True)
            self._assessment_row(conn, trace_id, assessment_id)
            conn.execute(assessments.delete().where(assessments.c.assessment_id == assessment_id))


# --- module helpers -------------------------------------------------------------------


def _assessment(row: Any) -> Assessment:
    return Assessment(
        assessment_id=row.assessment_id,
        trace_id=row.trace_id,
        name=row.name,
        kind=AssessmentKind(row.kind),
        value=json.loads(row.value),
        source_type=AssessmentSourceType(row.source_type),
        source_id=row.source_id,
        create_time=row.create_time,
        last_update_time=row.last_update_time,
        span_id=row.span_id,
        rationale=row.rationale,
        metadata=json.loads(row.metadata) if row.metadata else {},
        overrides=row.overrides,
        valid=bool(row.valid),
    )


def _experiment_ints(experiment_ids: Sequence[str]) -> list[int]:
    out = []
    for e in experiment_ids:
        try:
            value = int(str(e), 10)
        except ValueError:
            raise errors.invalid(f"Invalid experiment ID '{e}'") from None
        if 0 <= value <= _INT32_MAX:
            out.append(value)
    return out
