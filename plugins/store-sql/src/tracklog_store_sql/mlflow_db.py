"""Reading a database written by MLflow's own SQL store, for ``tracklog migrate``.

MLflow's schema is not tracklog's: runs, params, tags, ``metrics`` (one row per point,
keyed by run id and metric key) and ``latest_metrics``. Its tables are read with
SQLAlchemy Core as they are found (reflected, so any MLflow 2.x or 3.x revision reads),
inside read-only transactions; nothing is ever written. Runs are read a page at a time
with their params, tags and latest metrics fetched per page, never per run.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import sqlalchemy as sa

from tracklog.entities import (
    Experiment,
    LifecycleStage,
    Metric,
    Run,
    RunData,
    RunInfo,
    RunStatus,
    metric_from_fields,
)

_PAGE = 500
_NAN = float("nan")


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
            names = ("experiments", "experiment_tags", "runs", "params", "tags", "metrics",
                     "latest_metrics")
            md.reflect(conn, only=names)
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
        out = []
        for row in page:
            m = row._mapping
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
            ))
        return out

    def history(self, run_id: str, key: str) -> Iterable[Metric]:
        c = self.t["metrics"].c
        stmt = (sa.select(c.timestamp, c.step, c.value, c.is_nan)
                .where(c.run_uuid == run_id, c.key == key)
                .order_by(c.timestamp, c.step, c.value))
        new, nan = metric_from_fields, _NAN
        with self.engine.connect() as conn:
            # Streamed in chunks (a server-side cursor where the driver has one): a long
            # history is never held whole.
            result = conn.execution_options(stream_results=True, yield_per=10_000).execute(stmt)
            for rows in result.partitions():
                yield from [new((key, nan if is_nan else value, ts, step or 0,
                                 None, None, None, None))
                            for ts, step, value, is_nan in rows]

    def close(self) -> None:
        self.engine.dispose()
