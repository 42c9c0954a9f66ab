"""Reading a database written by MLflow's own SQL store, for ``tracklog migrate``.

MLflow's schema is not tracklog's: runs, params, tags, ``metrics`` (one row per point,
keyed by run id and metric key) and ``latest_metrics``; dataset inputs and logged-model
inputs and outputs in ``inputs``; logged models, the registry, traces and assessments in
tables of their own. Its tables are read with SQLAlchemy Core as they are found
(reflected, so any MLflow 2.x or 3.x revision reads: a table an older revision lacks is
simply nothing to copy, a column it lacks reads as empty), inside read-only
transactions; nothing is ever written. Runs are read a page at a time with their params,
tags, latest metrics and inputs fetched per page, never per run.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import sqlalchemy as sa

from tracklog.entities import (
    Assessment,
    AssessmentKind,
    AssessmentSourceType,
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
    ModelVersion,
    ModelVersionStatus,
    RegisteredModel,
    RegisteredModelAlias,
    Run,
    RunData,
    RunInfo,
    RunStatus,
    TraceInfo,
    TraceState,
    metric_from_fields,
)

_PAGE = 500
_FIRST_FETCH = 10_000
_NAN = float("nan")
#: Every table read; those a revision lacks are left out.
_TABLES = ("experiments", "experiment_tags", "runs", "params", "tags", "metrics",
           "latest_metrics", "datasets", "inputs", "input_tags", "logged_models",
           "logged_model_tags", "logged_model_params", "logged_model_metrics",
           "registered_models", "registered_model_tags", "model_versions",
           "model_version_tags", "registered_model_aliases", "trace_info", "trace_tags",
           "trace_request_metadata", "assessments", "spans")
#: Columns MLflow 3 promotes trace tags and metadata into (read back as its server does).
_TOKEN_COLUMNS = ("input_tokens", "output_tokens", "total_tokens", "cache_read_input_tokens",
                  "cache_creation_input_tokens", "cache_creation_input_tokens_above_1hr")
_COST_COLUMNS = ("input_cost", "output_cost", "total_cost")
#: MLflow's integer logged-model statuses (its proto numbers).
_MODEL_STATUS = {0: LoggedModelStatus.LOGGED_MODEL_STATUS_UNSPECIFIED,
                 1: LoggedModelStatus.LOGGED_MODEL_PENDING,
                 2: LoggedModelStatus.LOGGED_MODEL_READY,
                 3: LoggedModelStatus.LOGGED_MODEL_UPLOAD_FAILED}
#: The stage MLflow gives a deleted model version (kept to hold its number).
_DELETED_VERSION = "Deleted_Internal"


def is_mlflow_database(conn: sa.Connection) -> bool:
    """Whether the database holds MLflow's tracking schema (its per-point ``metrics``
    table keyed by ``run_uuid``; tracklog keeps points in ``metric_points``)."""
    inspector = sa.inspect(conn)
    tables = set(inspector.get_table_names())
    if "metrics" not in tables or "runs" not in tables:
        return False
    return "run_uuid" in {c["name"] for c in inspector.get_columns("metrics")}


def mlflow_revision(conn: sa.Connection) -> str | None:
    try:
        return conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()
    except sa.exc.DBAPIError:
        return None


def looks_like_mlflow(uri: str) -> bool:
    """Whether ``uri`` names a database holding MLflow's tracking schema. A SQLite file
    that does not exist is an error (never created by probing it); an unreachable server
    is not MLflow's (opening it as a tracklog store then says why)."""
    import os

    url = sa.make_url(uri)
    if url.get_backend_name() == "sqlite" and url.database and not os.path.exists(url.database):
        from tracklog import errors

        raise errors.invalid(f"No SQLite database at {url.database}")
    engine = sa.create_engine(read_only_url(uri))
    try:
        with engine.connect() as conn:
            return is_mlflow_database(conn)
    except sa.exc.DBAPIError:
        return False
    finally:
        engine.dispose()


def read_only_url(url: str) -> str:
    parsed = sa.make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        return f"sqlite:///file:{parsed.database}?mode=ro&uri=true"
    if parsed.drivername in ("mysql", "mariadb"):
        # The driver this plugin installs (as the store itself does).
        return parsed.set(drivername=f"{parsed.drivername}+pymysql").render_as_string(
            hide_password=False)
    return url


class MlflowDatabaseSource:
    """A :class:`tracklog.importing.MigrationSource` over an MLflow SQL database."""

    def __init__(self, url: str) -> None:
        from tracklog_store_sql.db import redact

        self.url = url
        self.engine = sa.create_engine(read_only_url(url))
        self._redacted = redact(url)
        md = sa.MetaData()
        with self.engine.connect() as conn:
            if not is_mlflow_database(conn):
                self.engine.dispose()
                raise ValueError(f"{self._redacted} is not an MLflow tracking database")
            self.revision = mlflow_revision(conn)
            present = set(sa.inspect(conn).get_table_names())
            md.reflect(conn, only=[n for n in _TABLES if n in present])
        self.t = md.tables

    def describe(self) -> str:
        return f"MLflow database {self._redacted} (schema {self.revision or 'unknown'})"

    def _rows(self, stmt: Any) -> Sequence[Any]:
        with self.engine.connect() as conn:
            return conn.execute(stmt).all()

    def experiments(self) -> Iterator[Experiment]:
        e, et = self.t["experiments"].c, self.t["experiment_tags"].c
        tags: dict[int, dict[str, str]] = {}
        for row in self._rows(sa.select(et.experiment_id, et.key, et.value)):
            tags.setdefault(row.experiment_id, {})[row.key] = row.value
        for row in self._rows(sa.select(self.t["experiments"]).order_by(e.experiment_id)):
            m = row._mapping
            yield Experiment(
                experiment_id=str(m["experiment_id"]),
                name=m["name"],
                artifact_location=m["artifact_location"] or "",
                lifecycle_stage=LifecycleStage(m["lifecycle_stage"]),
                tags=tags.get(m["experiment_id"], {}),
                creation_time=m.get("creation_time"),
                last_update_time=m.get("last_update_time"),
            )

    def runs(self, experiment_id: str) -> Iterator[Run]:
        r = self.t["runs"].c
        last = ""
        while True:
            page = self._rows(
                sa.select(self.t["runs"])
                .where(r.experiment_id == int(experiment_id), r.run_uuid > last)
                .order_by(r.run_uuid)
                .limit(_PAGE)
            )
            if not page:
                return
            last = page[-1].run_uuid
            yield from self._runs(page)

    def _runs(self, page: Sequence[Any]) -> list[Run]:
        ids = [row.run_uuid for row in page]
        data = {i: RunData() for i in ids}
        for table, attr in (("params", "params"), ("tags", "tags")):
            c = self.t[table].c
            for row in self._rows(sa.select(c.run_uuid, c.key, c.value)
                                  .where(c.run_uuid.in_(ids))):
                getattr(data[row.run_uuid], attr)[row.key] = row.value
        lm = self.t["latest_metrics"].c
        for row in self._rows(sa.select(lm.run_uuid, lm.key, lm.value, lm.timestamp, lm.step,
                                        lm.is_nan).where(lm.run_uuid.in_(ids))):
            value = _NAN if row.is_nan else row.value
            data[row.run_uuid].metrics[row.key] = Metric(row.key, value, row.timestamp, row.step)
        io = self._io(ids)
        out = []
        for row in page:
            m = row._mapping
            inputs, outputs = io.get(m["run_uuid"], (None, None))
            out.append(Run(
                info=RunInfo(
                    run_id=m["run_uuid"],
                    experiment_id=str(m["experiment_id"]),
                    run_name=m.get("name") or "",
                    user_id=m.get("user_id") or "",
                    status=RunStatus(m["status"]),
                    start_time=m.get("start_time"),
                    end_time=m.get("end_time"),
                    artifact_uri=m.get("artifact_uri") or "",
                    lifecycle_stage=LifecycleStage(m["lifecycle_stage"]),
                ),
                data=data[m["run_uuid"]],
                **({"inputs": inputs, "outputs": outputs} if inputs is not None else {}),
            ))
        return out

    def _io(self, ids: list[str]) -> dict[str, tuple[Any, Any]]:
        """Dataset inputs, model inputs and model outputs of a page of runs."""
        from tracklog.entities import RunInputs, RunOutputs

        if "inputs" not in self.t:
            return {}
        i = self.t["inputs"].c
        out: dict[str, tuple[Any, Any]] = {}

        def of(run_id: str) -> tuple[Any, Any]:
            return out.setdefault(run_id, (RunInputs(), RunOutputs()))

        rows = self._rows(sa.select(self.t["inputs"]).where(sa.or_(
            sa.and_(i.destination_type == "RUN", i.destination_id.in_(ids)),
            sa.and_(i.source_type.in_(("RUN_INPUT", "RUN_OUTPUT")), i.source_id.in_(ids)))))
        datasets = [r for r in rows if r.source_type == "DATASET"]
        found: dict[str, Any] = {}
        input_tags: dict[str, list[InputTag]] = {}
        if datasets and "datasets" in self.t:
            d = self.t["datasets"].c
            for r in self._rows(sa.select(self.t["datasets"]).where(
                    d.dataset_uuid.in_([x.source_id for x in datasets]))):
                found[r.dataset_uuid] = r
            if "input_tags" in self.t:
                t = self.t["input_tags"].c
                for r in self._rows(sa.select(t.input_uuid, t.name, t.value).where(
                        t.input_uuid.in_([x.input_uuid for x in datasets]))):
                    input_tags.setdefault(r.input_uuid, []).append(InputTag(r.name, r.value))
        for r in rows:
            m = r._mapping
            if r.source_type == "DATASET" and r.source_id in found:
                ds = found[r.source_id]
                of(r.destination_id)[0].dataset_inputs.append(DatasetInput(
                    Dataset(ds.name, ds.digest, ds.dataset_source_type, ds.dataset_source,
                            ds.dataset_schema, ds.dataset_profile),
                    tuple(input_tags.get(r.input_uuid, ()))))
            elif r.source_type == "RUN_INPUT":
                of(r.source_id)[0].model_inputs.append(LoggedModelInput(r.destination_id))
            elif r.source_type == "RUN_OUTPUT":
                of(r.source_id)[1].model_outputs.append(
                    LoggedModelOutput(r.destination_id, m.get("step") or 0))
        return out

    def history(self, run_id: str, key: str) -> Iterable[Metric]:
        c = self.t["metrics"].c
        stmt = (sa.select(c.timestamp, c.step, c.value, c.is_nan)
                .where(c.run_uuid == run_id, c.key == key)
                .order_by(c.timestamp, c.step, c.value))
        new, nan = metric_from_fields, _NAN

        def points(rows: Iterable[Any]) -> list[Metric]:
            return [new((key, nan if is_nan else value, ts, step or 0, None, None, None, None))
                    for ts, step, value, is_nan in rows]

        with self.engine.connect() as conn:
            # Most histories fit one plain fetch (a server-side cursor costs several round
            # trips); a longer one is streamed on from there in chunks, never held whole.
            first = conn.execute(stmt.limit(_FIRST_FETCH)).all()
            yield from points(first)
            if len(first) < _FIRST_FETCH:
                return
            result = conn.execution_options(stream_results=True, yield_per=10_000).execute(
                stmt.offset(_FIRST_FETCH))
            for rows in result.partitions():
                yield from points(rows)

    def history_columns(self, run_id: str, key: str,
                        limit: int) -> tuple[Sequence[int], Sequence[int], Sequence[float]] | None:
        """The history as columns when it holds at most ``limit`` points (one fetch of
        plain tuples, split in C), else None."""
        from tracklog_store_sql.points import binary_copy_reads
        from tracklog_store_sql.sqlutil import history_head

        with self.engine.connect() as conn:
            if binary_copy_reads(conn):
                return _history_arrays(conn, run_id, key, limit)
        c = self.t["metrics"].c
        stmt = (sa.select(c.timestamp, c.step, c.value, c.is_nan)
                .where(c.run_uuid == sa.bindparam("run_id"), c.key == sa.bindparam("key"))
                .order_by(c.timestamp, c.step, c.value)
                .limit(sa.bindparam("lim", type_=sa.Integer))
                .offset(sa.bindparam("off", type_=sa.Integer)))
        with self.engine.connect() as conn:
            # Built each time (cheap) but compiled once: execution is most of the cost.
            rows = history_head(conn, "mlflow_history_head", stmt, run_id, key, limit)
        if rows is None:
            return None
        if not rows:
            return (), (), ()
        timestamps, steps, values, nans = zip(*rows, strict=True)
        if any(nans):
            values = tuple(_NAN if nan else v for v, nan in zip(values, nans, strict=True))
        if None in steps:
            steps = tuple(s or 0 for s in steps)
        return timestamps, steps, values

    # -- logged models, traces, registry ------------------------------------------------

    def _by_key(self, table: str, id_col: str, ids: Sequence[Any], key: str,
                value: str) -> dict[Any, dict[str, str]]:
        out: dict[Any, dict[str, str]] = {}
        if table not in self.t or not ids:
            return out
        c = self.t[table].c
        for row in self._rows(sa.select(c[id_col], c[key], c[value])
                              .where(c[id_col].in_(list(ids)))):
            out.setdefault(row[0], {})[row[1]] = row[2] if row[2] is not None else ""
        return out

    def logged_models(self, experiment_id: str) -> Iterator[LoggedModel]:
        if "logged_models" not in self.t:
            return
        lm = self.t["logged_models"].c
        rows = self._rows(sa.select(self.t["logged_models"])
                          .where(lm.experiment_id == int(experiment_id))
                          .order_by(lm.model_id))
        for i in range(0, len(rows), _PAGE):
            page = rows[i:i + _PAGE]
            ids = [r.model_id for r in page]
            tags = self._by_key("logged_model_tags", "model_id", ids, "tag_key", "tag_value")
            params = self._by_key("logged_model_params", "model_id", ids, "param_key",
                                  "param_value")
            metrics: dict[str, list[Metric]] = {}
            if "logged_model_metrics" in self.t:
                mm = self.t["logged_model_metrics"].c
                for r in self._rows(sa.select(self.t["logged_model_metrics"])
                                    .where(mm.model_id.in_(ids))):
                    value = r.metric_value
                    metrics.setdefault(r.model_id, []).append(Metric(
                        r.metric_name, _NAN if value is None else value,
                        r.metric_timestamp_ms, r.metric_step, r.model_id, r.dataset_name,
                        r.dataset_digest, r.run_id))
            for r in page:
                m = r._mapping
                yield LoggedModel(
                    model_id=r.model_id, experiment_id=str(r.experiment_id), name=r.name,
                    artifact_location=r.artifact_location,
                    creation_timestamp=r.creation_timestamp_ms,
                    last_updated_timestamp=r.last_updated_timestamp_ms,
                    status=_MODEL_STATUS.get(r.status,
                                             LoggedModelStatus.LOGGED_MODEL_STATUS_UNSPECIFIED),
                    model_type=m.get("model_type"), source_run_id=m.get("source_run_id"),
                    status_message=m.get("status_message"), tags=tags.get(r.model_id, {}),
                    params=params.get(r.model_id, {}), metrics=metrics.get(r.model_id, []),
                    lifecycle_stage=LifecycleStage(m.get("lifecycle_stage") or "active"))

    def traces(self, experiment_id: str) -> Iterator[TraceInfo]:
        if "trace_info" not in self.t:
            return
        ti = self.t["trace_info"].c
        rows = self._rows(sa.select(self.t["trace_info"])
                          .where(ti.experiment_id == int(experiment_id))
                          .order_by(ti.request_id))
        for i in range(0, len(rows), _PAGE):
            page = rows[i:i + _PAGE]
            ids = [r.request_id for r in page]
            tags = self._by_key("trace_tags", "request_id", ids, "key", "value")
            meta = self._by_key("trace_request_metadata", "request_id", ids, "key", "value")
            found: dict[str, list[Assessment]] = {}
            if "assessments" in self.t:
                a = self.t["assessments"].c
                for r in self._rows(sa.select(self.t["assessments"])
                                    .where(a.trace_id.in_(ids))):
                    assessment = _assessment(r._mapping)
                    if assessment is not None:
                        found.setdefault(r.trace_id, []).append(assessment)
            for r in page:
                m = r._mapping
                tag_map, meta_map = tags.get(r.request_id, {}), meta.get(r.request_id, {})
                _promoted(m, tag_map, meta_map)
                yield TraceInfo(
                    trace_id=r.request_id, experiment_id=str(r.experiment_id),
                    request_time=r.timestamp_ms, execution_duration=r.execution_time_ms,
                    state=TraceState(r.status) if r.status in TraceState.__members__
                    else TraceState.STATE_UNSPECIFIED,
                    request_preview=m.get("request_preview"),
                    response_preview=m.get("response_preview"),
                    client_request_id=m.get("client_request_id"),
                    trace_metadata=meta_map, tags=tag_map,
                    assessments=found.get(r.request_id, []))

    def spans(self, trace_id: str) -> bytes | None:
        """The trace's spans as MLflow's ``traces.json``, when this database holds them
        (MLflow 3 keeps spans in its tracking store); None otherwise."""
        if "spans" not in self.t:
            return None
        c = self.t["spans"].c
        rows = self._rows(sa.select(c.content).where(c.trace_id == trace_id)
                          .order_by(c.start_time_unix_nano, c.span_id))
        if not rows:
            return None
        body = ",".join(r.content for r in rows if r.content)
        return ('{"spans": [' + body + "]}").encode()

    def registered_models(self) -> Iterator[tuple[RegisteredModel, list[ModelVersion]]]:
        if "registered_models" not in self.t:
            return
        models = self._rows(sa.select(self.t["registered_models"])
                            .order_by(self.t["registered_models"].c.name))
        names = [r.name for r in models]
        tags = self._by_key("registered_model_tags", "name", names, "key", "value")
        versions: dict[str, list[ModelVersion]] = {}
        if "model_versions" in self.t:
            mv = self.t["model_versions"].c
            vtags: dict[tuple[str, int], dict[str, str]] = {}
            if "model_version_tags" in self.t:
                t = self.t["model_version_tags"].c
                for r in self._rows(sa.select(t.name, t.version, t.key, t.value)):
                    vtags.setdefault((r.name, r.version), {})[r.key] = r.value or ""
            for r in self._rows(sa.select(self.t["model_versions"])
                                .where(mv.current_stage != _DELETED_VERSION)
                                .order_by(mv.name, mv.version)):
                m = r._mapping
                versions.setdefault(r.name, []).append(ModelVersion(
                    name=r.name, version=str(r.version), creation_timestamp=r.creation_time,
                    last_updated_timestamp=r.last_updated_time or r.creation_time,
                    source=r.source or "", current_stage=r.current_stage or "None",
                    description=r.description or "", user_id=r.user_id,
                    run_id=r.run_id or None, run_link=r.run_link or "",
                    status=ModelVersionStatus(r.status or "READY"),
                    status_message=r.status_message, tags=vtags.get((r.name, r.version), {}),
                    model_id=m.get("model_id")))
        aliases: dict[str, list[RegisteredModelAlias]] = {}
        if "registered_model_aliases" in self.t:
            a = self.t["registered_model_aliases"].c
            for r in self._rows(sa.select(a.name, a.alias, a.version)):
                aliases.setdefault(r.name, []).append(RegisteredModelAlias(r.alias,
                                                                           str(r.version)))
        for r in models:
            yield RegisteredModel(
                name=r.name, creation_timestamp=r.creation_time,
                last_updated_timestamp=r.last_updated_time or r.creation_time,
                description=r.description or "", user_id=r._mapping.get("user_id"),
                tags=tags.get(r.name, {}), aliases=aliases.get(r.name, [])), \
                versions.get(r.name, [])

    def close(self) -> None:
        self.engine.dispose()


#: The first ``lim`` points of one history on PostgreSQL, in history order: their count,
#: then their timestamps, steps, values and NaN flags as binary arrays (a fetch of the
#: rows built a tuple and four numbers per point, most of the time of reading them).
_PG_HISTORY_ARRAYS = (
    "SELECT count(*), array_send(array_agg(t)), array_send(array_agg(s)), "
    "array_send(array_agg(v)), array_send(array_agg(n)) FROM (SELECT "
    "timestamp::bigint AS t, coalesce(step, 0)::bigint AS s, value::double precision AS v, "
    "is_nan::boolean AS n FROM metrics WHERE run_uuid = %(run_id)s AND key = %(key)s "
    "ORDER BY timestamp, step, value LIMIT %(lim)s) AS points"
)


def _history_arrays(conn: Any, run_id: str, key: str, limit: int
                    ) -> tuple[Sequence[int], Sequence[int], Sequence[float]] | None:
    """:meth:`MlflowDatabaseSource.history_columns` on PostgreSQL (psycopg): one row of
    binary arrays, split into columns without a Python object per point."""
    from array import array

    from tracklog_store_sql.points import array_columns

    raw: Any = conn.connection.driver_connection
    with raw.cursor() as cur:
        cur.execute(_PG_HISTORY_ARRAYS, {"run_id": run_id, "key": key, "lim": limit + 1},
                    binary=True)
        count, *arrays = cur.fetchone()
    if count > limit:
        return None
    if not count:
        return (), (), ()
    timestamps, steps, values, nans = array_columns(arrays)
    if any(nans):
        values = array("d", [_NAN if nan else v for v, nan in zip(values, nans, strict=True)])
    return timestamps, steps, values


def _promoted(m: Any, tags: dict[str, str], meta: dict[str, str]) -> None:
    """Put back the tags and metadata MLflow 3 keeps in trace_info columns."""
    if m.get("trace_name") is not None:
        tags["mlflow.traceName"] = m["trace_name"]
    if m.get("session_id") is not None:
        meta["mlflow.trace.session"] = m["session_id"]
    tokens = {k: int(m[k]) for k in _TOKEN_COLUMNS if m.get(k) is not None}
    if tokens:
        meta["mlflow.trace.tokenUsage"] = json.dumps(tokens)
    cost = {k: m[k] for k in _COST_COLUMNS if m.get(k) is not None}
    if cost:
        meta["mlflow.trace.cost"] = json.dumps(cost)


def _assessment(m: Any) -> Assessment | None:
    """An MLflow assessment row as tracklog's; kinds tracklog has no room for (issue
    references) are left out."""
    kind = m.get("assessment_type")
    if kind not in ("feedback", "expectation"):
        return None
    value: dict[str, Any] = {"value": json.loads(m["value"])}
    if m.get("error"):
        value["error"] = json.loads(m["error"])
    source = m.get("source_type")
    return Assessment(
        assessment_id=m["assessment_id"], trace_id=m["trace_id"], name=m["name"],
        kind=AssessmentKind(kind), value=value,
        source_type=AssessmentSourceType(source) if source in AssessmentSourceType.__members__
        else AssessmentSourceType.SOURCE_TYPE_UNSPECIFIED,
        source_id=m.get("source_id") or "", create_time=m["created_timestamp"],
        last_update_time=m["last_updated_timestamp"], span_id=m.get("span_id"),
        rationale=m.get("rationale"),
        metadata=json.loads(m["assessment_metadata"]) if m.get("assessment_metadata") else {},
        overrides=m.get("overrides"), valid=bool(m.get("valid", True)))
