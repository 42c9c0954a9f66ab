"""Batch logging: params, tags and metrics of a run written in one transaction, and
tags deleted."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from functools import cache
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from tracklog import errors
from tracklog.entities import Metric, Param, RunTag
from tracklog.perf import gc_paused
from tracklog.stores import WriteDone, converted
from tracklog.validation import check_no_nul, validate_param
from tracklog_store_sql import db as dbmod
from tracklog_store_sql.metrics import MetricsMixin
from tracklog_store_sql.rows import (
    ACTIVE,
    RUN_NAME_TAG,
    check_active_run,
    check_run_name,
    run_tag_rows,
)
from tracklog_store_sql.schema import params, runs, tags
from tracklog_store_sql.schema import tags as tags_table  # not shadowed by parameters
from tracklog_store_sql.sqlutil import (
    chunks,
    execute_plain,
    in_ids,
    insert_ignore,
    numbered_pairs,
    upsert,
)

if TYPE_CHECKING:
    from tracklog_store_sql.db import Database


class BatchMixin(MetricsMixin):
    """The params, tags and batch-logging section of the tracking store. The metrics of
    a batch go through ``_metric_rows``, ``_write_metrics``, ``_write_model_metrics`` and
    ``_remember_series``, inherited from :class:`~tracklog_store_sql.metrics.MetricsMixin`."""

    db: Database
    dialect: str

    def log_batch(
        self,
        run_id: str,
        metrics: Sequence[Metric] = (),
        params: Sequence[Param] = (),
        tags: Sequence[RunTag] = (),
    ) -> None:
        rows = self._batch_rows(run_id, metrics, params, tags)
        param_rows, metric_rows, latest_rows, model_rows, tag_rows = rows
        if (param_rows and metric_rows is None and not model_rows and not tag_rows
                and len(param_rows) <= _RETURNED_PARAMS
                and self.db.write_statement(lambda conn: _insert_new_params(
                    conn, run_id, param_rows))):
            return
        if (metric_rows is not None and not param_rows and not model_rows and not tag_rows
                and self.dialect == "postgresql"
                and self._write_metrics_statement(run_id, metric_rows, latest_rows)):
            return
        write = self._batch_write(run_id, *rows)
        for attempt in range(_WRITE_ATTEMPTS):
            try:
                with gc_paused():
                    # Concurrent batches share a transaction on SQLite (see write_grouped).
                    series = self.db.write_grouped(write)
                # Only once committed: a rolled-back transaction's new series do not exist.
                self._remember_series(run_id, series)
                return
            except sa.exc.DBAPIError as exc:
                # Rerunning is safe: every part of a batch is idempotent.
                if attempt + 1 == _WRITE_ATTEMPTS or not dbmod.is_transient(exc):
                    raise

    def submit_log_batch(self, run_id: str, metrics: Sequence[Metric],
                         params: Sequence[Param], tags: Sequence[RunTag],
                         done: WriteDone, *, now: bool = False) -> bool:
        """:meth:`log_batch` queued for the SQLite writer thread, or made at once with
        ``now`` (see :class:`tracklog.stores.QueuedWrites`); False elsewhere."""
        if not self.db.queues_writes:
            return False
        write = self._batch_write(run_id, *self._batch_rows(run_id, metrics, params, tags))
        attempts = 1
        # Only once committed, as in log_batch.
        report = converted(done, lambda series: self._remember_series(run_id, series))

        def finished(series: dict[str, int] | None, error: BaseException | None) -> None:
            nonlocal attempts
            if (isinstance(error, sa.exc.DBAPIError) and attempts < _WRITE_ATTEMPTS
                    and dbmod.is_transient(error)):
                attempts += 1  # rerunning is safe, as in log_batch
                if self.db.submit_grouped(write, finished):
                    return
            report(series, error)

        return self.db.submit_grouped(write, finished, now)

    def _batch_rows(self, run_id: str, metrics: Sequence[Metric], params: Sequence[Param],
                    tags: Sequence[RunTag]) -> tuple[Any, ...]:
        """The batch's param, metric, latest-value, logged-model and tag rows, checked."""
        param_rows = _param_rows(run_id, params)
        with gc_paused():  # thousands of small acyclic tuples; see gc_paused
            metric_rows, latest_rows, model_rows = self._metric_rows(run_id, metrics)
        return param_rows, metric_rows, latest_rows, model_rows, _tag_rows(tags)

    def _batch_write(self, run_id, param_rows, metric_rows, latest_rows, model_rows, tag_rows):
        """The batch's write, for :meth:`Database.write_grouped`: it returns the series
        ids of the batch's metrics."""

        def write(conn: Connection) -> dict[str, int]:
            series: dict[str, int] = {}
            if param_rows:
                self._write_params(conn, run_id, param_rows)  # checks the run first
            else:
                check_active_run(conn, run_id)
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
            return series

        return write

    def _write_params(self, conn: Connection, run_id: str, rows: dict[str, str]) -> None:
        """Insert params of an active run, or refuse them if one is stored with another
        value; first refuses a run that is missing or not active."""
        # Insert first, then compare what is stored: a concurrent writer of the same key
        # is waited for by the insert, so a conflicting value is always seen.
        keys = list(rows)
        if self.dialect in ("sqlite", "postgresql") and len(rows) <= _RETURNED_PARAMS:
            # One statement inserts only into an active run and returns the keys it
            # added; only the others need the run checked and their values read back.
            bound = {"rid": run_id, "active": ACTIVE, **numbered_pairs(rows)}
            added = set(execute_plain(conn, f"param_insert:{len(rows)}",
                                      _param_insert(self.dialect, len(rows)), bound).scalars())
            if len(added) == len(rows):
                return
            check_active_run(conn, run_id)
            keys = [k for k in rows if k not in added]
        else:
            check_active_run(conn, run_id)
            insert_ignore(
                conn,
                params,
                [{"run_uuid": run_id, "key": k, "value": v} for k, v in rows.items()],
                ["run_uuid", "key"],
            )
        conflicts = []
        for chunk in chunks(keys):
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

    def delete_tag(self, run_id: str, key: str) -> None:
        with self.db.write() as conn:
            check_active_run(conn, run_id)
            deleted = conn.execute(
                tags.delete().where(tags.c.run_uuid == run_id, tags.c.key == key)
            ).rowcount
            if not deleted:
                raise errors.not_found(f"No tag with name: {key} in run with id {run_id}")


_WRITE_ATTEMPTS = 3


def _tag_rows(tags: Sequence[RunTag]) -> dict[str, str]:
    # Sorted so concurrent writers lock tag rows in one order (no deadlocks).
    tag_rows = run_tag_rows(sorted(tags, key=_key))
    if RUN_NAME_TAG in tag_rows:
        check_run_name(tag_rows[RUN_NAME_TAG])
    return tag_rows


#: Params up to which a batch inserts them in one statement that returns the keys added
#: (MLflow takes 100 a batch).
_RETURNED_PARAMS = 100


def _insert_new_params(conn: Connection, run_id: str, rows: dict[str, str]) -> bool:
    """PostgreSQL, outside a transaction: insert every param of ``rows`` if the run is
    active and none of its keys is stored yet, else nothing; whether they were."""
    bound = {"rid": run_id, "active": ACTIVE, **numbered_pairs(rows)}
    try:
        added = execute_plain(conn, f"new_params_insert:{len(rows)}",
                              _param_insert(conn.dialect.name, len(rows), True), bound).all()
    except sa.exc.IntegrityError:
        return False  # a concurrent writer stored one of the keys: nothing was inserted
    return len(added) == len(rows)


@cache
def _param_insert(dialect: str, n: int, all_new: bool = False) -> Any:
    """INSERT of ``n`` params (``k0``/``v0``…) of run ``rid`` if its stage is ``active``,
    returning the keys it inserted. It skips keys already stored; ``all_new``: it inserts
    nothing if any is, and fails on a key stored meanwhile (the statement is atomic)."""
    key = '"key"' if dialect == "sqlite" else "key"
    values = ", ".join(f"(:k{i}, :v{i})" for i in range(n))
    # SQLite names the columns of a VALUES list column1, column2…
    source = (f"(VALUES {values}) AS v" if dialect == "sqlite"
              else f"(VALUES {values}) AS v (column1, column2)")
    if all_new:
        keys = ", ".join(f":k{i}" for i in range(n))
        only = (f" AND NOT EXISTS (SELECT 1 FROM params AS p WHERE p.run_uuid = :rid "
                f"AND p.{key} IN ({keys}))")
        conflict = ""
    else:
        only = ""
        conflict = f" ON CONFLICT (run_uuid, {key}) DO NOTHING"
    return sa.text(
        f"INSERT INTO params (run_uuid, {key}, value) "
        f"SELECT runs.run_uuid, v.column1, v.column2 FROM runs, {source} "
        f"WHERE runs.run_uuid = :rid AND runs.lifecycle_stage = :active{only}"
        f"{conflict} RETURNING {key}"
    )


def _key(item: Any) -> str:
    return item.key


def _param_rows(run_id: str, params: Iterable[Param]) -> dict[str, str]:
    rows: dict[str, str] = {}
    for p in params:
        value = validate_param(p.key, str(p.value), "params").value
        check_no_nul("params.value", value)
        if p.key in rows and rows[p.key] != value:
            raise errors.invalid(
                f"Duplicate parameter keys with different values in the batch for run "
                f"ID='{run_id}': {p.key!r}"
            )
        rows[p.key] = value
    return rows
