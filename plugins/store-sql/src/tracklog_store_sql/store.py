"""SqlTrackingStore: the TrackingStore and ModelRegistryStore contracts on SQLAlchemy Core."""

from __future__ import annotations

import math
import operator
import os
import time
import uuid
from collections.abc import Iterable, Sequence
from types import SimpleNamespace
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from tracklog import errors
from tracklog.entities import (
    Dataset,
    DatasetInput,
    Experiment,
    ExperimentTag,
    InputTag,
    LifecycleStage,
    LoggedModel,
    LoggedModelInput,
    LoggedModelOutput,
    LoggedModelParameter,
    LoggedModelStatus,
    LoggedModelTag,
    Metric,
    PagedList,
    Param,
    Run,
    RunData,
    RunInfo,
    RunStatus,
    RunTag,
    ViewType,
)
from tracklog.names import generate_run_name
from tracklog.perf import gc_paused
from tracklog.search.ast import Filter, OrderBy
from tracklog.stores import (
    DEFAULT_EXPERIMENT_ID,
    DEFAULT_EXPERIMENT_NAME,
    ModelRegistryStore,
    TraceStore,
    TrackingStore,
)
from tracklog.validation import check_int64, check_int64_column, check_no_nul
from tracklog_store_sql import db as dbmod
from tracklog_store_sql import search as sqlsearch
from tracklog_store_sql.registry import RegistryMixin
from tracklog_store_sql.schema import (
    KEY_MAX,
    PARAM_VALUE_MAX,
    TAG_VALUE_MAX,
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
)
from tracklog_store_sql.sqlutil import (
    MAX_DOUBLE,
    bound_ids,
    chunk_size,
    chunks,
    decode_token,
    in_bound_ids,
    in_ids,
    insert_ignore,
    page,
    page_limit,
    upsert,
    write_metric_points,
)
from tracklog_store_sql.traces import TracesMixin

RUN_NAME_TAG = "mlflow.runName"
RUN_NAME_MAX = 250
_INT32_MAX = 2**31 - 1
_WRITE_ATTEMPTS = 3
_SERIES_CACHE_MAX = 200_000
_ACTIVE = LifecycleStage.ACTIVE.value
_DELETED = LifecycleStage.DELETED.value


def _now() -> int:
    return int(time.time() * 1000)


def _join_uri(root: str, *parts: str) -> str:
    """Append path parts to a URI or path without doubling or dropping slashes."""
    base = root.rstrip("/")
    if base.endswith(":"):  # "mlflow-artifacts:/" -> "mlflow-artifacts:/0"
        base += "/"
        return base + "/".join(parts)
    return "/".join([base, *parts])


def parse_experiment_id(experiment_id: Any) -> int:
    try:
        value = int(str(experiment_id), 10)
    except (TypeError, ValueError):
        raise errors.invalid(f"Invalid experiment ID '{experiment_id}'") from None
    if value < 0:
        raise errors.invalid(f"Invalid experiment ID '{experiment_id}'")
    return value


class SqlTrackingStore(
    RegistryMixin, TracesMixin, TrackingStore, ModelRegistryStore, TraceStore
):
    """A tracking store (with the model registry and traces) in a SQL database."""

    store_type = "SqlStore"

    def __init__(self, store_uri: str, default_artifact_root: str | None = None) -> None:
        if default_artifact_root is None:
            default_artifact_root = os.path.abspath("tracklog-artifacts")
        self.store_uri = store_uri
        self.default_artifact_root = default_artifact_root
        self.db = dbmod.Database(store_uri)
        try:
            dbmod.ensure_schema(self.db)
            self._ensure_default_experiment()
            self.db.opened = True
        except errors.TracklogError:
            self.db.dispose()
            raise
        except sa.exc.SQLAlchemyError as exc:
            self.db.dispose()
            cause = exc.orig if isinstance(exc, sa.exc.DBAPIError) else exc
            raise errors.TracklogError(
                f"Cannot open the database {dbmod.redact(store_uri)!r}: "
                f"{type(cause).__name__}: {dbmod.scrub(str(cause).strip(), store_uri)}"
            ) from None
        self.dialect = self.db.dialect
        # (run_id, key) -> series id. Series rows are only ever inserted, never changed
        # or deleted, so an id once committed stays right for every process.
        self._series_cache: dict[tuple[str, str], int] = {}

    def __repr__(self) -> str:
        return f"SqlTrackingStore({dbmod.redact(self.store_uri)!r})"

    def close(self) -> None:
        self.db.dispose()

    # -- helpers ------------------------------------------------------------------------

    def _ensure_default_experiment(self) -> None:
        with self.db.read() as conn:
            exists = conn.execute(
                sa.select(experiments.c.experiment_id).where(experiments.c.experiment_id == 0)
            ).first()
        if exists:
            return
        now = _now()
        row = {
            "experiment_id": 0,
            "name": DEFAULT_EXPERIMENT_NAME,
            "artifact_location": _join_uri(self.default_artifact_root, DEFAULT_EXPERIMENT_ID),
            "lifecycle_stage": _ACTIVE,
            "creation_time": now,
            "last_update_time": now,
        }
        try:
            with self.db.write() as conn:
                insert_default_experiment(conn, row)
        except sa.exc.IntegrityError:
            pass  # another process created it first

    def _experiment_row(self, conn: Connection, experiment_id: str, for_write: bool = False):
        eid = parse_experiment_id(experiment_id)
        row = None
        if eid <= _INT32_MAX:
            row = conn.execute(
                sa.select(experiments).where(experiments.c.experiment_id == eid)
            ).first()
        if row is None:
            raise errors.not_found(f"No Experiment with id={experiment_id} exists")
        if for_write and row.lifecycle_stage != _ACTIVE:
            raise errors.not_active("experiment", experiment_id, row.lifecycle_stage)
        return row

    def _run_row(self, conn: Connection, run_id: str, for_write: bool = False):
        # An id with NUL was never handed out (and PostgreSQL cannot even compare it).
        row = None if "\x00" in run_id else conn.execute(_RUN_ROW, {"run_id": run_id}).first()
        if row is None:
            raise errors.not_found(f"Run with id={run_id} not found")
        if for_write and row.lifecycle_stage != _ACTIVE:
            raise errors.not_active("run", run_id, row.lifecycle_stage)
        return row

    def _check_active_run(self, conn: Connection, run_id: str) -> None:
        stage = conn.execute(_RUN_STAGE, {"run_id": run_id}).scalar()
        if stage is None:
            raise errors.not_found(f"Run with id={run_id} not found")
        if stage != _ACTIVE:
            raise errors.not_active("run", run_id, stage)

    def _experiments(self, conn: Connection, rows: Sequence[Any]) -> list[Experiment]:
        ids = [r.experiment_id for r in rows]
        tag_map: dict[int, dict[str, str]] = {i: {} for i in ids}
        for chunk in chunks(ids, chunk_size(self.dialect)):
            for t in conn.execute(
                sa.select(experiment_tags).where(
                    in_ids(experiment_tags.c.experiment_id, chunk, self.dialect)
                )
            ):
                tag_map[t.experiment_id][t.key] = t.value
        return [
            Experiment(
                experiment_id=str(r.experiment_id),
                name=r.name,
                artifact_location=r.artifact_location,
                lifecycle_stage=LifecycleStage(r.lifecycle_stage),
                tags=tag_map[r.experiment_id],
                creation_time=r.creation_time,
                last_update_time=r.last_update_time,
            )
            for r in rows
        ]

    # -- experiments --------------------------------------------------------------------

    def create_experiment(
        self,
        name: str,
        artifact_location: str | None = None,
        tags: Sequence[ExperimentTag] = (),
    ) -> str:
        if not name or not isinstance(name, str):
            raise errors.invalid("Invalid experiment name: the name must be a non-empty string")
        if len(name) > 500:
            raise errors.invalid("Experiment name exceeds the maximum length of 500 characters")
        check_no_nul("name", name, artifact_location)
        _check_tags(tags, "tags")
        now = _now()
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
                        lifecycle_stage=_ACTIVE,
                        creation_time=now,
                        last_update_time=now,
                    )
                )
                eid = result.inserted_primary_key[0]
                if not artifact_location:
                    conn.execute(
                        experiments.update()
                        .where(experiments.c.experiment_id == eid)
                        .values(artifact_location=_join_uri(self.default_artifact_root, str(eid)))
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
            row = self._experiment_row(conn, experiment_id)
            return self._experiments(conn, [row])[0]

    def get_experiment_by_name(self, name: str) -> Experiment | None:
        if "\x00" in name:
            return None  # never stored (and PostgreSQL cannot even compare it)
        with self.db.read() as conn:
            row = conn.execute(sa.select(experiments).where(experiments.c.name == name)).first()
            if row is None:
                return None
            return self._experiments(conn, [row])[0]

    def search_experiments(
        self,
        view_type: ViewType = ViewType.ACTIVE_ONLY,
        max_results: int = 1000,
        filter: Filter = (),
        order_by: Sequence[OrderBy] = (),
        page_token: str | None = None,
    ) -> PagedList[Experiment]:
        offset = decode_token(page_token)
        stmt = (
            sqlsearch.experiments_query(self.dialect, ViewType(view_type), filter, order_by)
            .limit(page_limit(max_results))
            .offset(offset)
        )
        with self.db.read() as conn:
            rows, token = page(conn.execute(stmt).all(), max_results, offset)
            return PagedList(self._experiments(conn, rows), token)

    def rename_experiment(self, experiment_id: str, new_name: str) -> None:
        if not new_name:
            raise errors.invalid("Invalid experiment name: the name must be a non-empty string")
        check_no_nul("new_name", new_name)
        try:
            with self.db.write() as conn:
                row = self._experiment_row(conn, experiment_id)
                if row.lifecycle_stage != _ACTIVE:
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
                    .values(name=new_name, last_update_time=_now())
                )
        except sa.exc.IntegrityError:
            raise errors.already_exists(f"Experiment(name={new_name}) already exists.") from None

    def delete_experiment(self, experiment_id: str) -> None:
        with self.db.write() as conn:
            row = self._experiment_row(conn, experiment_id)
            if row.experiment_id == int(DEFAULT_EXPERIMENT_ID):
                # MLflow's words; 400, not its 500, which the client would retry.
                raise errors.invalid(
                    f"Cannot delete the default experiment '{DEFAULT_EXPERIMENT_ID}'. "
                    "This is an internally reserved experiment."
                )
            if row.lifecycle_stage != _ACTIVE:
                raise errors.not_found(
                    f"Experiment with id={experiment_id} does not exist or is already deleted"
                )
            now = _now()
            conn.execute(
                experiments.update()
                .where(experiments.c.experiment_id == row.experiment_id)
                .values(lifecycle_stage=_DELETED, last_update_time=now)
            )
            conn.execute(
                runs.update()
                .where(
                    runs.c.experiment_id == row.experiment_id,
                    runs.c.lifecycle_stage == _ACTIVE,
                )
                .values(lifecycle_stage=_DELETED, deleted_time=now)
            )

    def restore_experiment(self, experiment_id: str) -> None:
        with self.db.write() as conn:
            row = self._experiment_row(conn, experiment_id)
            if row.lifecycle_stage != _DELETED:
                raise errors.not_found(
                    f"Experiment with id={experiment_id} is not deleted; nothing to restore"
                )
            # Every deleted run comes back, also those deleted before the experiment (MLflow).
            conn.execute(
                runs.update()
                .where(
                    runs.c.experiment_id == row.experiment_id,
                    runs.c.lifecycle_stage == _DELETED,
                )
                .values(lifecycle_stage=_ACTIVE, deleted_time=None)
            )
            conn.execute(
                experiments.update()
                .where(experiments.c.experiment_id == row.experiment_id)
                .values(lifecycle_stage=_ACTIVE, last_update_time=_now())
            )

    def set_experiment_tag(self, experiment_id: str, tag: ExperimentTag) -> None:
        _check_tags([tag], "tag")
        with self.db.write() as conn:
            row = self._experiment_row(conn, experiment_id, for_write=True)
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
                .values(last_update_time=_now())
            )

    def delete_experiment_tag(self, experiment_id: str, key: str) -> None:
        with self.db.write() as conn:
            row = self._experiment_row(conn, experiment_id, for_write=True)
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

    # -- runs ---------------------------------------------------------------------------

    def create_run(
        self,
        experiment_id: str,
        user_id: str,
        start_time: int | None,
        tags: Sequence[RunTag] = (),
        run_name: str | None = None,
    ) -> Run:
        tag_map = {t.key: t.value for t in tags}
        tag_name = tag_map.get(RUN_NAME_TAG)
        if run_name and tag_name and run_name != tag_name:
            raise errors.invalid(
                f"Both 'run_name' argument and 'mlflow.runName' tag are specified, but with "
                f"different values (run_name='{run_name}', mlflow.runName='{tag_name}')."
            )
        name = run_name or tag_name or generate_run_name()
        _check_run_name(name)
        check_no_nul("user_id", user_id)
        _check_tags(tags, "tags")
        tag_map[RUN_NAME_TAG] = name
        run_id = uuid.uuid4().hex
        start = check_int64(start_time, "start_time") if start_time is not None else _now()
        with self.db.write() as conn:
            exp = self._experiment_row(conn, experiment_id, for_write=True)
            artifact_uri = _join_uri(exp.artifact_location, run_id, "artifacts")
            conn.execute(
                runs.insert().values(
                    run_uuid=run_id,
                    name=name,
                    user_id=user_id,
                    status=RunStatus.RUNNING.value,
                    start_time=start,
                    end_time=None,
                    lifecycle_stage=_ACTIVE,
                    artifact_uri=artifact_uri,
                    experiment_id=exp.experiment_id,
                )
            )
            conn.execute(
                tags_table.insert(),
                [
                    {"run_uuid": run_id, "key": k, "value": _clip(v, TAG_VALUE_MAX)}
                    for k, v in tag_map.items()
                ],
            )
        info = RunInfo(
            run_id=run_id,
            experiment_id=str(exp.experiment_id),
            run_name=name,
            user_id=user_id,
            status=RunStatus.RUNNING,
            start_time=start,
            end_time=None,
            artifact_uri=artifact_uri,
            lifecycle_stage=LifecycleStage.ACTIVE,
        )
        return Run(info=info, data=RunData(tags=tag_map))

    def get_run(self, run_id: str) -> Run:
        with self.db.read() as conn:
            row = self._run_row(conn, run_id)
            return self._load_runs(conn, [row])[0]

    def update_run_info(
        self,
        run_id: str,
        run_status: RunStatus | None = None,
        end_time: int | None = None,
        run_name: str | None = None,
    ) -> RunInfo:
        values: dict[str, Any] = {}
        if run_status is not None:
            values["status"] = RunStatus(run_status).value
        if end_time is not None:
            values["end_time"] = check_int64(end_time, "end_time")
        if run_name:
            _check_run_name(run_name)
            values["name"] = run_name
        with self.db.write() as conn:
            self._check_active_run(conn, run_id)
            if values:
                conn.execute(runs.update().where(runs.c.run_uuid == run_id).values(**values))
            if run_name:
                upsert(
                    conn,
                    tags,
                    [{"run_uuid": run_id, "key": RUN_NAME_TAG, "value": run_name}],
                    ["run_uuid", "key"],
                    ["value"],
                )
            row = self._run_row(conn, run_id)
        return _run_info(row)

    def delete_run(self, run_id: str) -> None:
        self._set_run_stage(run_id, _DELETED, _now())

    def restore_run(self, run_id: str) -> None:
        self._set_run_stage(run_id, _ACTIVE, None)

    def _set_run_stage(self, run_id: str, stage: str, deleted_time: int | None) -> None:
        with self.db.write() as conn:
            self._run_row(conn, run_id)
            conn.execute(
                runs.update()
                .where(runs.c.run_uuid == run_id)
                .values(lifecycle_stage=stage, deleted_time=deleted_time)
            )

    def log_batch(
        self,
        run_id: str,
        metrics: Sequence[Metric] = (),
        params: Sequence[Param] = (),
        tags: Sequence[RunTag] = (),
    ) -> None:
        param_rows = _param_rows(run_id, params)
        with gc_paused():  # thousands of small acyclic tuples; see gc_paused
            metric_rows, latest_rows, model_rows = _metric_rows(run_id, metrics)
        tag_rows = {t.key: _clip(t.value, TAG_VALUE_MAX) for t in sorted(tags, key=_key)}
        for key in tag_rows:
            _check_key(key, "tag")
        check_no_nul("tags.value", *tag_rows.values())
        if RUN_NAME_TAG in tag_rows:
            _check_run_name(tag_rows[RUN_NAME_TAG])
        for attempt in range(_WRITE_ATTEMPTS):
            try:
                with gc_paused():
                    self._log_batch(
                        run_id, param_rows, metric_rows, latest_rows, model_rows, tag_rows
                    )
                return
            except sa.exc.DBAPIError as exc:
                # Rerunning is safe: every part of a batch is idempotent.
                if attempt + 1 == _WRITE_ATTEMPTS or not dbmod.is_transient(exc):
                    raise

    def _log_batch(self, run_id, param_rows, metric_rows, latest_rows, model_rows, tag_rows):
        series: dict[str, int] = {}
        with self.db.write() as conn:
            self._check_active_run(conn, run_id)
            if param_rows:
                self._write_params(conn, run_id, param_rows)
            if metric_rows is not None:
                series = self._write_metrics(conn, run_id, metric_rows, latest_rows)
            if model_rows:
                self._write_model_metrics(conn, run_id, model_rows)
            if tag_rows:
                upsert(
                    conn,
                    tags_table,
                    [{"run_uuid": run_id, "key": k, "value": v} for k, v in tag_rows.items()],
                    ["run_uuid", "key"],
                    ["value"],
                )
                if RUN_NAME_TAG in tag_rows:
                    conn.execute(
                        runs.update()
                        .where(runs.c.run_uuid == run_id)
                        .values(name=tag_rows[RUN_NAME_TAG])
                    )
        # Only once committed: a rolled-back transaction's new series do not exist.
        if len(self._series_cache) > _SERIES_CACHE_MAX:
            self._series_cache.clear()
        for key, sid in series.items():
            self._series_cache[run_id, key] = sid

    def _write_params(self, conn: Connection, run_id: str, rows: dict[str, str]) -> None:
        # Insert first, then compare what is stored: a concurrent writer of the same key
        # is waited for by the insert, so a conflicting value is always seen.
        insert_ignore(
            conn,
            params,
            [{"run_uuid": run_id, "key": k, "value": v} for k, v in rows.items()],
            ["run_uuid", "key"],
        )
        conflicts = []
        for chunk in chunks(list(rows)):
            for key, value in conn.execute(
                sa.select(params.c.key, params.c.value).where(
                    params.c.run_uuid == run_id, in_ids(params.c.key, chunk, self.dialect)
                )
            ):
                # .get: MySQL's PAD SPACE collations match 'k' for 'k ' (a conflict too).
                if value != rows.get(key):
                    conflicts.append({"key": key, "old_value": value, "new_value": rows.get(key)})
        if conflicts:
            # Raising rolls the whole batch back.
            raise errors.invalid(
                f"Changing param values is not allowed. Params were already logged="
                f"'{conflicts}' for run ID='{run_id}'."
            )

    def _write_metrics(
        self, conn: Connection, run_id: str, points: _Points, latest: list[dict[str, Any]]
    ) -> dict[str, int]:
        """Write history points and latest values; returns the batch's series ids."""
        ids = self._series_ids(conn, run_id, [r["key"] for r in latest])
        write_metric_points(
            conn,
            list(map(ids.__getitem__, points.keys)),
            points.timestamps,
            points.steps,
            points.values,
            points.nans,
        )
        dialect = conn.dialect.name
        if dialect in ("sqlite", "postgresql"):
            conn.execute(_latest_upsert(dialect), latest)
        else:
            insert_ignore(conn, latest_metrics, latest, ["run_uuid", "key"])
            conn.execute(_LATEST_UPDATE, [{f"b_{k}": v for k, v in r.items()} for r in latest])
        return ids

    def _series_ids(self, conn: Connection, run_id: str, keys: list[str]) -> dict[str, int]:
        """The series id of each (run, key), creating the missing ones. A run logs the
        same keys batch after batch: usually every id comes from the cache."""
        cache = self._series_cache
        ids = {k: cache[run_id, k] for k in keys if (run_id, k) in cache}
        if len(ids) == len(keys):
            return ids
        known = self._find_series(conn, run_id, [k for k in keys if k not in ids])
        ids.update(known)
        missing = [k for k in keys if k not in ids]
        if missing:
            insert_ignore(
                conn,
                metric_series,
                [{"run_uuid": run_id, "key": k} for k in missing],
                ["run_uuid", "key"],
            )
            ids.update(self._find_series(conn, run_id, missing))
            clash = [k for k in missing if k not in ids]
            if clash:
                # MySQL's PAD SPACE collations treat 'k ' as 'k': one series for both.
                raise errors.invalid(
                    f"Metric key {clash[0]!r} collides with an existing key of run "
                    f"'{run_id}' that differs only in trailing spaces"
                )
        return ids

    def _find_series(self, conn: Connection, run_id: str, keys: list[str]) -> dict[str, int]:
        s = metric_series.c
        found: dict[str, int] = {}
        for chunk in chunks(keys, chunk_size(self.dialect)):
            found.update(
                conn.execute(
                    sa.select(s.key, s.series_id).where(
                        s.run_uuid == run_id, in_ids(s.key, chunk, self.dialect)
                    )
                ).all()
            )
        return found

    def _write_model_metrics(
        self, conn: Connection, run_id: str, rows: list[dict[str, Any]]
    ) -> None:
        ids = sorted({r["model_id"] for r in rows})
        found = set(
            conn.execute(
                sa.select(logged_models.c.model_id).where(
                    in_ids(logged_models.c.model_id, ids, self.dialect)
                )
            ).scalars()
        )
        missing = [i for i in ids if i not in found]
        if missing:
            raise errors.not_found(f"Logged model with id={missing[0]} not found")
        insert_ignore(
            conn, logged_model_metrics, rows, ["model_id", "key", "timestamp", "step", "run_uuid"]
        )

    def delete_tag(self, run_id: str, key: str) -> None:
        with self.db.write() as conn:
            self._check_active_run(conn, run_id)
            deleted = conn.execute(
                tags.delete().where(tags.c.run_uuid == run_id, tags.c.key == key)
            ).rowcount
            if not deleted:
                raise errors.not_found(f"No tag with name: {key} in run with id {run_id}")

    def get_metric_history(
        self,
        run_id: str,
        metric_key: str,
        max_results: int | None = None,
        page_token: str | None = None,
    ) -> PagedList[Metric]:
        offset = decode_token(page_token)
        m, series = metric_points.c, metric_series.c
        # A scalar subquery, not a join: the planner then walks the primary key of the one
        # series in history order, with no sort.
        series_id = (
            sa.select(series.series_id)
            .where(series.run_uuid == run_id, series.key == metric_key)
            .scalar_subquery()
        )
        # NaN comes back as NULL: one column fewer to fetch than the value and its flag.
        value = sa.case((m.is_nan == sa.true(), sa.null()), else_=m.value)
        stmt = (
            sa.select(m.timestamp, m.step, value)
            .where(m.series_id == series_id)
            .order_by(m.timestamp, m.step, m.value)
        )
        if max_results is not None:
            stmt = stmt.limit(page_limit(max_results)).offset(offset)
        elif offset:
            stmt = stmt.offset(offset).limit(_NO_LIMIT)
        with self.db.read() as conn, gc_paused():
            # Entities straight from the DBAPI cursor: SQLAlchemy Row objects, result
            # processors and an intermediate list of tuples cost more than the query
            # itself on long histories.
            if conn.dialect.driver == "psycopg":
                # Binary results: numbers arrive as machine values, not text to parse
                # (a third of the fetch on long histories).
                compiled = stmt.compile(dialect=conn.dialect)
                dbapi = conn.dialect.loaded_dbapi
                try:
                    with conn.connection.driver_connection.cursor() as cur:
                        cur.execute(compiled.string, compiled.params, binary=True)
                        points = _history(metric_key, cur)
                except dbapi.Error as exc:
                    # As SQLAlchemy wraps it, so that timeouts and lost connections get
                    # the store's usual answers.
                    raise sa.exc.DBAPIError.instance(
                        compiled.string, compiled.params, exc, dbapi.Error,
                        connection_invalidated=conn.dialect.is_disconnect(exc, None, None),
                    ) from exc
            else:
                result = conn.execute(stmt)
                try:
                    points = _history(metric_key, result.cursor)
                finally:
                    result.close()
            token = None
            if max_results is not None:
                points, token = page(points, max_results, offset)
            return PagedList(points, token)

    def search_runs(
        self,
        experiment_ids: Sequence[str],
        filter: Filter = (),
        run_view_type: ViewType = ViewType.ACTIVE_ONLY,
        max_results: int = 1000,
        order_by: Sequence[OrderBy] = (),
        page_token: str | None = None,
    ) -> PagedList[Run]:
        offset = decode_token(page_token)
        # A malformed id is the caller's error (as MLflow); an unknown one matches nothing.
        ids = [i for i in map(parse_experiment_id, experiment_ids) if i <= _INT32_MAX]
        if not ids:
            return PagedList([], None)
        # The search sorts narrow rows (ids only); full rows are fetched for the page.
        stmt = (
            sqlsearch.runs_query(self.dialect, ids, ViewType(run_view_type), filter, order_by)
            .limit(page_limit(max_results))
            .offset(offset)
        )
        with self.db.read() as conn, gc_paused():
            run_ids, token = page(_tuples(conn, stmt), max_results, offset)
            rows: dict[str, Any] = {}
            for chunk in chunks([r[0] for r in run_ids], chunk_size(self.dialect)):
                stmt, args = self._runs_where(chunk)(
                    "runs", lambda of: sa.select(runs).where(of(runs.c.run_uuid))
                )
                for r in _tuples(conn, stmt, args):
                    rows[r[0]] = r
            found = [rows[r[0]] for r in run_ids if r[0] in rows]
            return PagedList(self._load_runs(conn, found), token)

    def _load_runs(self, conn: Connection, rows: Sequence[Any]) -> list[Run]:
        """Runs with their data: a constant number of statements per chunk of runs."""
        out: dict[str, Run] = {}
        for r in rows:
            out[r[0]] = Run(info=_run_info(r))
        ids = list(out)
        lm, o = latest_metrics.c, run_outputs.c
        for chunk in chunks(ids, chunk_size(self.dialect)):
            where = self._runs_where(chunk)
            latest = _tuples(
                conn,
                *where(
                    "latest",
                    lambda of: sa.select(
                        lm.run_uuid, lm.key, lm.timestamp, lm.step, lm.value, lm.is_nan
                    ).where(of(lm.run_uuid)),
                ),
            )
            new = tuple.__new__  # Metric(...) without its Python-level __new__
            for run_uuid, key, ts, step, value, is_nan in latest:
                out[run_uuid].data.metrics[key] = new(
                    Metric, (key, _NAN if is_nan else value, ts, step, None, None, None, None)
                )
            for run_uuid, key, value in _tuples(
                conn,
                *where(
                    "params",
                    lambda of: sa.select(params.c.run_uuid, params.c.key, params.c.value).where(
                        of(params.c.run_uuid)
                    ),
                ),
            ):
                out[run_uuid].data.params[key] = value
            for run_uuid, key, value in _tuples(
                conn,
                *where(
                    "tags",
                    lambda of: sa.select(tags.c.run_uuid, tags.c.key, tags.c.value).where(
                        of(tags.c.run_uuid)
                    ),
                ),
            ):
                out[run_uuid].data.tags[key] = value
            self._load_inputs(conn, where, out)
            for run_uuid, model_id, step in _tuples(
                conn,
                *where(
                    "outputs",
                    lambda of: (
                        sa.select(o.run_uuid, o.model_id, o.step)
                        .where(of(o.run_uuid))
                        .order_by(o.run_uuid, o.model_id)
                    ),
                ),
            ):
                out[run_uuid].outputs.model_outputs.append(LoggedModelOutput(model_id, step))
        return list(out.values())

    def _runs_where(self, chunk: Sequence[str]):
        """``where(name, build)`` -> (statement, parameters) selecting rows of the runs in
        ``chunk``; ``build(of)`` makes the statement, with ``of(column)`` as its condition.
        The statements are built once and the ids bound: building and caching a fresh
        statement cost more than running it (get_run, the commonest read, is one run)."""
        if len(chunk) == 1:
            run_id = chunk[0]

            def one(name: str, build) -> tuple[Any, dict[str, str]]:
                stmt = _ONE_RUN_STATEMENTS.get(name)
                if stmt is None:
                    stmt = _ONE_RUN_STATEMENTS[name] = build(
                        lambda col: col == sa.bindparam("one_run_id")
                    )
                return stmt, {"one_run_id": run_id}

            return one
        dialect = self.dialect
        if dialect in ("sqlite", "postgresql"):  # the id list is one parameter
            args = {"run_ids": bound_ids(chunk, dialect)}

            def many(name: str, build) -> tuple[Any, dict[str, Any]]:
                stmt = _MANY_RUN_STATEMENTS.get((name, dialect))
                if stmt is None:
                    stmt = _MANY_RUN_STATEMENTS[name, dialect] = build(
                        lambda col: in_bound_ids(col, "run_ids", dialect)
                    )
                return stmt, args

            return many
        return lambda name, build: (build(lambda col: in_ids(col, chunk, dialect)), None)

    def _load_inputs(self, conn: Connection, where, out: dict[str, Run]) -> None:
        i, d, t = inputs.c, datasets.c, input_tags.c
        stmt, args = where(
            "inputs",
            lambda of: (
                sa.select(
                    i.input_uuid,
                    i.destination_id,
                    i.source_type,
                    i.source_id,
                    d.name,
                    d.digest,
                    d.dataset_source_type,
                    d.dataset_source,
                    d.dataset_schema,
                    d.dataset_profile,
                    t.name.label("tag_name"),
                    t.value.label("tag_value"),
                )
                .select_from(
                    inputs.outerjoin(
                        datasets, sa.and_(i.source_type == "DATASET", d.dataset_uuid == i.source_id)
                    ).outerjoin(input_tags, t.input_uuid == i.input_uuid)
                )
                .where(i.destination_type == "RUN", of(i.destination_id))
                .order_by(i.destination_id, i.input_uuid, t.name)
            ),
        )
        grouped: dict[str, dict[str, Any]] = {}
        for r in conn.execute(stmt, args):
            g = grouped.get(r.input_uuid)
            if g is None:
                g = grouped[r.input_uuid] = {"row": r, "tags": []}
            if r.tag_name is not None:
                g["tags"].append(InputTag(r.tag_name, r.tag_value))
        for g in grouped.values():
            r = g["row"]
            run = out[r.destination_id]
            if r.source_type == "MODEL":
                run.inputs.model_inputs.append(LoggedModelInput(r.source_id))
            elif r.name is not None:
                ds = Dataset(
                    name=r.name,
                    digest=r.digest,
                    source_type=r.dataset_source_type,
                    source=r.dataset_source,
                    schema=r.dataset_schema,
                    profile=r.dataset_profile,
                )
                run.inputs.dataset_inputs.append(DatasetInput(ds, tuple(g["tags"])))

    def log_inputs(
        self,
        run_id: str,
        datasets: Sequence[DatasetInput] = (),
        models: Sequence[LoggedModelInput] = (),
    ) -> None:
        with self.db.write() as conn:
            run = self._run_row(conn, run_id, for_write=True)
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
                self._require_models(conn, model_ids)
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
            self._check_active_run(conn, run_id)
            rows = {m.model_id: m.step for m in models}
            if not rows:
                return
            self._require_models(conn, list(rows))
            upsert(
                conn,
                run_outputs,
                [{"run_uuid": run_id, "model_id": k, "step": v} for k, v in rows.items()],
                ["run_uuid", "model_id"],
                ["step"],
            )

    def _require_models(self, conn: Connection, model_ids: list[str]) -> None:
        found = set(
            conn.execute(
                sa.select(logged_models.c.model_id).where(
                    in_ids(logged_models.c.model_id, model_ids, self.dialect)
                )
            ).scalars()
        )
        for mid in model_ids:
            if mid not in found:
                raise errors.not_found(f"Logged model with id={mid} not found")

    # -- logged models ------------------------------------------------------------------

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
        now = _now()
        with self.db.write() as conn:
            exp = self._experiment_row(conn, experiment_id, for_write=True)
            if source_run_id:
                self._run_row(conn, source_run_id)
            location = _join_uri(exp.artifact_location, "models", model_id, "artifacts")
            conn.execute(
                logged_models.insert().values(
                    model_id=model_id,
                    experiment_id=exp.experiment_id,
                    name=name,
                    artifact_location=location,
                    creation_timestamp=now,
                    last_updated_timestamp=now,
                    status=LoggedModelStatus.LOGGED_MODEL_PENDING.value,
                    lifecycle_stage=_ACTIVE,
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
            return self._load_models(conn, [self._model_row(conn, model_id)])[0]

    def _model_row(self, conn: Connection, model_id: str, allow_deleted: bool = True):
        row = conn.execute(
            sa.select(logged_models).where(logged_models.c.model_id == model_id)
        ).first()
        if row is None or (not allow_deleted and row.lifecycle_stage != _ACTIVE):
            raise errors.not_found(f"Logged model with id={model_id} not found")
        return row

    def _load_models(self, conn: Connection, rows: Sequence[Any]) -> list[LoggedModel]:
        out: dict[str, LoggedModel] = {}
        for r in rows:
            out[r.model_id] = LoggedModel(
                model_id=r.model_id,
                experiment_id=str(r.experiment_id),
                name=r.name,
                artifact_location=r.artifact_location,
                creation_timestamp=r.creation_timestamp,
                last_updated_timestamp=r.last_updated_timestamp,
                status=LoggedModelStatus(r.status),
                model_type=r.model_type,
                source_run_id=r.source_run_id,
                status_message=r.status_message,
                lifecycle_stage=LifecycleStage(r.lifecycle_stage),
            )
        ids = list(out)
        for chunk in chunks(ids):
            for r in conn.execute(
                sa.select(logged_model_tags).where(
                    in_ids(logged_model_tags.c.model_id, chunk, self.dialect)
                )
            ):
                out[r.model_id].tags[r.key] = r.value
            for r in conn.execute(
                sa.select(logged_model_params).where(
                    in_ids(logged_model_params.c.model_id, chunk, self.dialect)
                )
            ):
                out[r.model_id].params[r.key] = r.value
            mm = logged_model_metrics.c
            for r in conn.execute(
                sa.select(logged_model_metrics)
                .where(in_ids(mm.model_id, chunk, self.dialect))
                .order_by(mm.model_id, mm.key, mm.timestamp, mm.step)
            ):
                out[r.model_id].metrics.append(
                    Metric(
                        key=r.key,
                        value=_NAN if r.is_nan else r.value,
                        timestamp=r.timestamp,
                        step=r.step,
                        model_id=r.model_id,
                        dataset_name=r.dataset_name,
                        dataset_digest=r.dataset_digest,
                        run_id=r.run_uuid,
                    )
                )
        return list(out.values())

    def get_logged_model(self, model_id: str, allow_deleted: bool = False) -> LoggedModel:
        with self.db.read() as conn:
            row = self._model_row(conn, model_id, allow_deleted=allow_deleted)
            return self._load_models(conn, [row])[0]

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
            self._model_row(conn, model_id, allow_deleted=False)
            conn.execute(
                logged_models.update()
                .where(logged_models.c.model_id == model_id)
                .values(status=status.value, last_updated_timestamp=_now())
            )
            return self._load_models(conn, [self._model_row(conn, model_id)])[0]

    def set_logged_model_tags(self, model_id: str, tags: Sequence[LoggedModelTag]) -> None:
        with self.db.write() as conn:
            self._model_row(conn, model_id, allow_deleted=False)
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
            .values(last_updated_timestamp=_now())
        )

    def delete_logged_model_tag(self, model_id: str, key: str) -> None:
        with self.db.write() as conn:
            self._model_row(conn, model_id, allow_deleted=False)
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
            self._model_row(conn, model_id, allow_deleted=False)
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
            self._model_row(conn, model_id, allow_deleted=False)
            conn.execute(
                logged_models.update()
                .where(logged_models.c.model_id == model_id)
                .values(lifecycle_stage=_DELETED, last_updated_timestamp=_now())
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
        offset = decode_token(page_token)
        ids = [parse_experiment_id(e) for e in experiment_ids]
        ids = [i for i in ids if i <= _INT32_MAX]
        stmt = sqlsearch.logged_models_query(self.dialect, ids, filter, datasets, order_by)
        stmt = stmt.limit(page_limit(max_results)).offset(offset)
        with self.db.read() as conn:
            rows, token = page(conn.execute(stmt).all(), max_results, offset)
            return PagedList(self._load_models(conn, rows), token)


# --- module helpers ---------------------------------------------------------------------

# The tables under names that method parameters (``tags``, ``datasets``) do not shadow.
tags_table = tags
datasets_table = datasets
_NAN = float("nan")
_NO_LIMIT = 2**62
_RUN_ROW = sa.select(runs).where(runs.c.run_uuid == sa.bindparam("run_id"))
_RUN_STAGE = sa.select(runs.c.lifecycle_stage).where(runs.c.run_uuid == sa.bindparam("run_id"))


def _newer(old, new):
    """``new`` is a later point than ``old``: greater (step, timestamp, value)."""
    return sa.or_(
        old.step < new.step,
        sa.and_(
            old.step == new.step,
            sa.or_(
                old.timestamp < new.timestamp,
                sa.and_(old.timestamp == new.timestamp, old.value < new.value),
            ),
        ),
    )


_LATEST_UPDATE = (
    latest_metrics.update()
    .where(
        latest_metrics.c.run_uuid == sa.bindparam("b_run_uuid"),
        latest_metrics.c.key == sa.bindparam("b_key"),
        _newer(
            latest_metrics.c,
            SimpleNamespace(
                step=sa.bindparam("b_step"),
                timestamp=sa.bindparam("b_timestamp"),
                value=sa.bindparam("b_value"),
            ),
        ),
    )
    .values(
        value=sa.bindparam("b_value"),
        timestamp=sa.bindparam("b_timestamp"),
        step=sa.bindparam("b_step"),
        is_nan=sa.bindparam("b_is_nan"),
    )
)


def _latest_upsert(dialect: str):
    """One INSERT … ON CONFLICT DO UPDATE … WHERE newer (SQLite, PostgreSQL)."""
    stmt = _LATEST_UPSERTS.get(dialect)
    if stmt is None:
        if dialect == "sqlite":
            from sqlalchemy.dialects.sqlite import insert
        else:
            from sqlalchemy.dialects.postgresql import insert
        ins = insert(latest_metrics)
        ex = ins.excluded
        stmt = _LATEST_UPSERTS[dialect] = ins.on_conflict_do_update(
            index_elements=["run_uuid", "key"],
            set_={
                "value": ex.value,
                "timestamp": ex.timestamp,
                "step": ex.step,
                "is_nan": ex.is_nan,
            },
            where=_newer(latest_metrics.c, ex),
        )
    return stmt


_LATEST_UPSERTS: dict[str, Any] = {}


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


def _key(item: Any) -> str:
    return item.key


def _clip(value: str | None, limit: int) -> str | None:
    if value is not None and len(value) > limit:
        return value[:limit]
    return value


def _check_run_name(name: str) -> None:
    if len(name) > RUN_NAME_MAX:
        raise errors.invalid(
            f"Run name {name[:50]!r}... is {len(name)} characters long; the limit is {RUN_NAME_MAX}"
        )
    check_no_nul("run_name", name)


def _check_key(key: str, what: str) -> None:
    if not key or len(key) > KEY_MAX:
        raise errors.invalid(
            f"Invalid {what} key {key[:50]!r}: keys must be 1 to {KEY_MAX} characters long"
        )
    check_no_nul(f"{what} key", key)


def _check_tags(tags: Iterable[Any], field: str) -> None:
    for tag in tags:
        check_no_nul(f"{field}.key", tag.key)
        check_no_nul(f"{field}.value", tag.value)


def _param_rows(run_id: str, params: Iterable[Param]) -> dict[str, str]:
    rows: dict[str, str] = {}
    for p in params:
        _check_key(p.key, "param")
        value = _clip(str(p.value), PARAM_VALUE_MAX)
        check_no_nul("params.value", value)
        if p.key in rows and rows[p.key] != value:
            raise errors.invalid(
                f"Duplicate parameter keys with different values in the batch for run "
                f"ID='{run_id}': {p.key!r}"
            )
        rows[p.key] = value
    return rows


class _Points(NamedTuple):
    """History points of one batch, column by column (keys not yet mapped to series)."""

    keys: Sequence[str]
    timestamps: Sequence[int]
    steps: Sequence[int]
    values: Sequence[float]
    nans: Sequence[bool]


_INT = {int}
_NUMBER = {int, float}
_FLOAT = {float}


def _metric_rows(run_id: str, metrics_: Sequence[Metric]):
    """The batch's history points as columns, the newest point per key (as latest_metrics
    rows), and the rows that link points to logged models.

    The common batch (finite numbers, integer steps and timestamps, no model links) is
    handled column-wise by built-ins, without a Python-level step per point.
    """
    if not metrics_:
        return None, [], []
    # Metric is a named tuple: one C-level transposition gives every column.
    keys, vals, tss, steps, model_ids, *_ = zip(*metrics_, strict=True)
    value_types = set(map(type, vals))
    if (
        set(map(type, tss)) == _INT
        and set(map(type, steps)) == _INT
        and value_types <= _NUMBER
        and math.isfinite(sum(vals))  # no NaN or ±inf among the values
        and not any(model_ids)
    ):
        if value_types != _FLOAT:  # drivers want one type per column (psycopg arrays)
            vals = [float(v) for v in vals]
        n = len(keys)
        # is_nan as int: sqlite3 binds an exact int directly, a bool only through its
        # adapter lookup (which costs more than inserting the row).
        points = _Points(keys, tss, steps, vals, [0] * n)
        order = list(zip(steps, tss, strict=True))
        if all(map(operator.le, order, order[1:])) and n == len(
            set(zip(keys, steps, tss, strict=True))
        ):
            # In history order, no key twice at one (step, timestamp): the last point
            # of each key is its newest.
            last = dict(zip(keys, range(n), strict=True))
            best = {k: (steps[i], tss[i], vals[i], False) for k, i in last.items()}
        else:
            best = _newest(keys, steps, tss, vals, points.nans)
        model_rows: list[dict[str, Any]] = []
    else:
        points, best, model_rows = _metric_rows_general(run_id, metrics_)
    check_int64_column(points.timestamps, "metrics[{}].timestamp")
    check_int64_column(points.steps, "metrics[{}].step")
    for key in best:
        _check_key(key, "metric")
    # Sorted so concurrent writers lock latest_metrics rows in one order (no deadlocks).
    latest = [
        {
            "run_uuid": run_id,
            "key": k,
            "step": b[0],
            "timestamp": b[1],
            "value": b[2],
            "is_nan": b[3],
        }
        for k, b in sorted(best.items())
    ]
    return points, latest, model_rows


def _newest(keys, steps, tss, vals, nans) -> dict[str, tuple]:
    best: dict[str, tuple] = {}
    for key, step, ts, v, nan in zip(keys, steps, tss, vals, nans, strict=True):
        cur = best.get(key)
        # (step, ts, v) > (step, ts, v, nan) is False: an equal point keeps the first.
        if cur is None or (step, ts, v) > cur:
            best[key] = (step, ts, v, bool(nan))
    return best


def _metric_rows_general(run_id: str, metrics_: Sequence[Metric]):
    """Any batch: converts steps and timestamps to int, stores NaN as a flag and clamps
    ±inf to the largest double (as MLflow stores them), collects logged-model links."""
    keys, tss, steps, vals, nans = [], [], [], [], []
    model_rows: list[dict[str, Any]] = []
    for m in metrics_:
        key, v, ts, step = m.key, m.value, int(m.timestamp), int(m.step)
        if v != v:
            v, nan = 0.0, True
        elif v > MAX_DOUBLE:
            v, nan = MAX_DOUBLE, False
        elif v < -MAX_DOUBLE:
            v, nan = -MAX_DOUBLE, False
        else:
            v, nan = float(v), False
        keys.append(key)
        tss.append(ts)
        steps.append(step)
        vals.append(v)
        nans.append(int(nan))
        if m.model_id:
            model_rows.append(
                {
                    "model_id": m.model_id,
                    "key": key,
                    "timestamp": ts,
                    "step": step,
                    "run_uuid": run_id,
                    "value": v,
                    "is_nan": nan,
                    "dataset_name": m.dataset_name,
                    "dataset_digest": m.dataset_digest,
                }
            )
    points = _Points(keys, tss, steps, vals, nans)
    return points, _newest(keys, steps, tss, vals, nans), model_rows


_STATUS = {s.value: s for s in RunStatus}
_ONE_RUN_STATEMENTS: dict[str, Any] = {}
_MANY_RUN_STATEMENTS: dict[tuple[str, str], Any] = {}
_STAGE = {s.value: s for s in LifecycleStage}


def _tuples(conn: Connection, stmt, args: dict[str, Any] | None = None) -> list[tuple]:
    """Rows of ``stmt`` as plain DBAPI tuples (no Row objects or result processors; for
    columns that need no conversion, on paths that read many rows)."""
    result = conn.execute(stmt, args)
    try:
        return result.cursor.fetchall()
    finally:
        result.close()


def _run_info(r: Sequence[Any]) -> RunInfo:
    """RunInfo from a ``runs`` row (a Row or a plain tuple, in the table's column order)."""
    run_uuid, name, user_id, status, start, end, _deleted, stage, uri, experiment_id = r
    return RunInfo(
        run_id=run_uuid,
        experiment_id=str(experiment_id),
        run_name=name or "",
        user_id=user_id or "",
        status=_STATUS[status],
        start_time=start,
        end_time=end,
        artifact_uri=uri,
        lifecycle_stage=_STAGE[stage],
    )


def _history(key: str, rows: Iterable[Any]) -> list[Metric]:
    new = tuple.__new__  # Metric(...) without its Python-level __new__
    return [
        new(Metric, (key, _NAN if value is None else value, ts, step, None, None, None, None))
        for ts, step, value in rows
    ]
