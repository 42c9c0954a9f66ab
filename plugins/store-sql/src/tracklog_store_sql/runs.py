"""Runs: create, read, update, delete and restore, and search."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from functools import cache
from typing import TYPE_CHECKING, Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from tracklog import errors
from tracklog.entities import (
    LifecycleStage,
    PagedList,
    Run,
    RunData,
    RunInfo,
    RunStatus,
    RunTag,
    ViewType,
    now_ms,
)
from tracklog.names import generate_run_name
from tracklog.perf import gc_paused
from tracklog.search.ast import Filter, OrderBy
from tracklog.search.tokens import decode_offset_token
from tracklog.stores import WriteDone, converted
from tracklog.validation import check_int64, check_no_nul
from tracklog_store_sql import run_pages, run_wire
from tracklog_store_sql import search as sqlsearch
from tracklog_store_sql.rows import (
    ACTIVE,
    DELETED,
    INT32_MAX,
    RUN_NAME_TAG,
    RunSet,
    check_active_run,
    check_run_name,
    experiment_row,
    join_uri,
    load_runs,
    parse_experiment_id,
    run_info,
    run_row,
    run_tag_rows,
    select_runs,
    tuples,
)
from tracklog_store_sql.schema import experiments, runs, tags
from tracklog_store_sql.schema import tags as tags_table  # not shadowed by parameters
from tracklog_store_sql.sqlutil import (
    chunk_size,
    chunks,
    execute_plain,
    numbered_pairs,
    page,
    page_limit,
    upsert,
)

if TYPE_CHECKING:
    from tracklog_store_sql.db import Database

T = TypeVar("T")


class RunsMixin:
    """The runs section of the tracking store."""

    db: Database
    dialect: str
    #: Experiment id -> artifact location, as create_run last found it.
    _artifact_locations: dict[int, str]

    def create_run(
        self,
        experiment_id: str,
        user_id: str,
        start_time: int | None,
        tags: Sequence[RunTag] = (),
        run_name: str | None = None,
    ) -> Run:
        creation = self._run_creation(experiment_id, user_id, start_time, tags, run_name)
        known = creation.known
        if known is not None:
            checked = creation.checked(known)
            if self.db.write_statement(
                    lambda conn: _insert_run_and_tags(conn, checked, creation.tag_map)):
                return creation.made((creation.eid, known, checked["artifact_uri"]))
        # Concurrent creations share a transaction on SQLite (see write_grouped).
        return creation.made(self.db.write_grouped(creation.write))

    def submit_create_run(self, experiment_id: str, user_id: str, start_time: int | None,
                          tags: Sequence[RunTag], run_name: str | None,
                          done: WriteDone, *, now: bool = False) -> bool:
        """:meth:`create_run` queued for the SQLite writer thread, or made at once with
        ``now`` (see :class:`tracklog.stores.QueuedWrites`); False elsewhere."""
        if not self.db.queues_writes:
            return False
        creation = self._run_creation(experiment_id, user_id, start_time, tags, run_name)
        return self.db.submit_grouped(creation.write, converted(done, creation.made), now)

    def _run_creation(self, experiment_id: str, user_id: str, start_time: int | None,
                      tags: Sequence[RunTag], run_name: str | None) -> _Creation:
        tag_map = run_tag_rows(tags)
        tag_name = tag_map.get(RUN_NAME_TAG)
        if run_name and tag_name and run_name != tag_name:
            raise errors.invalid(
                f"Both 'run_name' argument and 'mlflow.runName' tag are specified, but with "
                f"different values (run_name='{run_name}', mlflow.runName='{tag_name}')."
            )
        name = run_name or tag_name or generate_run_name()
        check_run_name(name)
        check_no_nul("user_id", user_id)
        tag_map[RUN_NAME_TAG] = name
        start = check_int64(start_time, "start_time") if start_time is not None else now_ms()
        eid = parse_experiment_id(experiment_id)
        return _Creation(self._artifact_locations, experiment_id, eid, uuid.uuid4().hex,
                         name, user_id, start, tag_map)

    def get_run(self, run_id: str) -> Run:
        with self.db.read() as conn:
            if self.dialect in run_pages.DIALECTS and "\x00" not in run_id:
                # A search page of one: one statement (two on SQLite) instead of six.
                found = run_pages.load_page(conn, [run_id])
                if not found:
                    raise errors.not_found(f"Run with id={run_id} not found")
                return found[0]
            row = run_row(conn, run_id)
            return load_runs(conn, [row])[0]

    def update_run_info(
        self,
        run_id: str,
        run_status: RunStatus | None = None,
        end_time: int | None = None,
        run_name: str | None = None,
    ) -> RunInfo:
        update = _Update(run_id, run_status, end_time, run_name)
        if update.values and not run_name:
            made = self.db.write_statement(update.active_update)
            if made is not None:
                return run_info(made)
        # Concurrent updates share a transaction on SQLite (see write_grouped).
        return run_info(self.db.write_grouped(update.write))

    def submit_update_run_info(self, run_id: str, run_status: RunStatus | None,
                               end_time: int | None, run_name: str | None,
                               done: WriteDone, *, now: bool = False) -> bool:
        """:meth:`update_run_info` queued for the SQLite writer thread, or made at once
        with ``now`` (see :class:`tracklog.stores.QueuedWrites`); False elsewhere."""
        if not self.db.queues_writes:
            return False
        update = _Update(run_id, run_status, end_time, run_name)
        return self.db.submit_grouped(update.write, converted(done, run_info), now)

    def delete_run(self, run_id: str) -> None:
        self._set_run_stage(run_id, DELETED, now_ms())

    def restore_run(self, run_id: str) -> None:
        self._set_run_stage(run_id, ACTIVE, None)

    def _set_run_stage(self, run_id: str, stage: str, deleted_time: int | None) -> None:
        with self.db.write() as conn:
            run_row(conn, run_id)
            conn.execute(
                runs.update()
                .where(runs.c.run_uuid == run_id)
                .values(lifecycle_stage=stage, deleted_time=deleted_time)
            )

    def search_runs(
        self,
        experiment_ids: Sequence[str],
        filter: Filter = (),
        run_view_type: ViewType = ViewType.ACTIVE_ONLY,
        max_results: int = 1000,
        order_by: Sequence[OrderBy] = (),
        page_token: str | None = None,
    ) -> PagedList[Run]:
        if self.dialect in run_pages.DIALECTS:
            return self._page_of(run_pages.load_page, experiment_ids, filter, run_view_type,
                                 max_results, order_by, page_token)
        offset = decode_offset_token(page_token)
        ids = _experiment_keys(experiment_ids)
        if not ids:
            return PagedList([], None)
        view = ViewType(run_view_type)
        limit = page_limit(max_results)
        # The search sorts narrow rows (ids only); full rows are fetched for the page.
        stmt = sqlsearch.runs_query(self.dialect, ids, view, filter, order_by)
        with self.db.read() as conn, gc_paused():
            run_ids, token = page(tuples(conn, stmt.limit(limit).offset(offset)), max_results,
                                  offset)
            rows: dict[str, Any] = {}
            for chunk in chunks([r[0] for r in run_ids], chunk_size(self.dialect)):
                for r in tuples(conn, *RunSet(chunk, self.dialect).select(select_runs)):
                    rows[r[0]] = r
            found = [rows[r[0]] for r in run_ids if r[0] in rows]
            return PagedList(load_runs(conn, found), token)

    def search_runs_encoded(
        self,
        experiment_ids: Sequence[str],
        filter: Filter = (),
        run_view_type: ViewType = ViewType.ACTIVE_ONLY,
        max_results: int = 1000,
        order_by: Sequence[OrderBy] = (),
        page_token: str | None = None,
    ) -> PagedList[bytes] | None:
        """:meth:`search_runs` with the runs' JSON written by the database (see
        :mod:`tracklog_store_sql.run_wire`); None off SQLite and PostgreSQL."""
        if self.dialect not in run_pages.DIALECTS:
            return None
        return self._page_of(run_wire.encoded_page, experiment_ids, filter, run_view_type,
                             max_results, order_by, page_token)

    def _page_of(self, load: Callable[[Connection, list[str]], list[T]],
                 experiment_ids: Sequence[str], filter: Filter, run_view_type: ViewType,
                 max_results: int, order_by: Sequence[OrderBy],
                 page_token: str | None) -> PagedList[T]:
        """A search page on PostgreSQL or SQLite: the run ids in one statement (built
        once per search, see :func:`run_pages.search_query`), then ``load(conn, ids)``."""
        offset = decode_offset_token(page_token)
        ids = _experiment_keys(experiment_ids)
        if not ids:
            return PagedList([], None)
        stmt = run_pages.search_query(self.dialect, ids, ViewType(run_view_type), filter,
                                      order_by)
        bounds = {"page_limit": page_limit(max_results), "page_offset": offset}
        with self.db.read() as conn, gc_paused():
            run_ids, token = page(tuples(conn, stmt, bounds), max_results, offset)
            return PagedList(load(conn, [r[0] for r in run_ids]), token)


def _experiment_keys(experiment_ids: Sequence[str]) -> list[int]:
    # A malformed id is the caller's error (as MLflow); an unknown one matches nothing.
    return [i for i in map(parse_experiment_id, experiment_ids) if i <= INT32_MAX]


_RUN_INSERT = runs.insert()
#: The run inserted only if its experiment (``eid``) is active at ``location``.
_RUN_INSERT_CHECKED = runs.insert().from_select(
    [c.name for c in runs.c],
    sa.select(*[
        experiments.c.experiment_id if c.name == "experiment_id"
        else sa.bindparam(c.name, type_=c.type)
        for c in runs.c
    ]).where(
        experiments.c.experiment_id == sa.bindparam("eid"),
        experiments.c.lifecycle_stage == sa.bindparam("active"),
        experiments.c.artifact_location == sa.bindparam("location"),
    ),
)
#: Experiments whose artifact location create_run remembers (the cache is cleared past it).
_LOCATIONS_KEPT = 10_000
_TAG_INSERT = tags_table.insert()


@cache
def _run_update(columns: tuple[str, ...]) -> Any:
    """UPDATE runs SET <columns> for one run, built once per set of columns."""
    return (
        runs.update()
        .where(runs.c.run_uuid == sa.bindparam("rid"))
        .values({c: sa.bindparam(f"v_{c}") for c in columns})
    )


@cache
def _run_update_active(columns: tuple[str, ...]) -> Any:
    """UPDATE runs SET <columns> for one run if it is active, RETURNING the row."""
    return (
        _run_update(columns)
        .where(runs.c.lifecycle_stage == sa.bindparam("active"))
        .returning(*runs.c)
    )


def _insert_run_and_tags(conn: Connection, row: dict[str, Any], tag_map: dict[str, str]) -> int:
    """PostgreSQL: the run (as ``_RUN_INSERT_CHECKED``) and its tags in one statement;
    the number of tags inserted, 0 if the experiment check let no run in."""
    bound = {**row, **numbered_pairs(tag_map)}
    return execute_plain(conn, f"run_and_tags_insert:{len(tag_map)}",
                         _run_and_tags_insert(len(tag_map)), bound).rowcount


@cache
def _run_and_tags_insert(n: int) -> Any:
    """``n`` tags (``k0``/``v0``…) inserted with the run ``_RUN_INSERT_CHECKED`` makes."""
    run = _RUN_INSERT_CHECKED.returning(runs.c.run_uuid).cte("new_run")
    tag_values = sa.values(sa.column("k", sa.String), sa.column("v", sa.String), name="t").data(
        [(sa.bindparam(f"k{i}", type_=sa.String), sa.bindparam(f"v{i}", type_=sa.String))
         for i in range(n)])
    return tags.insert().add_cte(run).from_select(
        ["run_uuid", "key", "value"], sa.select(run.c.run_uuid, tag_values.c.k, tag_values.c.v))


class _Creation:
    """A run about to be created: its rows, the write that inserts them, and
    :meth:`made`, which turns the write's result into the new run."""

    def __init__(self, locations: dict[int, str], experiment_id: str, eid: int, run_id: str,
                 name: str, user_id: str, start: int, tag_map: dict[str, str]) -> None:
        self.locations = locations
        self.experiment_id = experiment_id
        self.eid = eid
        self.run_id = run_id
        self.name = name
        self.user_id = user_id
        self.start = start
        self.tag_map = tag_map
        self.known = locations.get(eid)
        self.row = {
            "run_uuid": run_id,
            "name": name,
            "user_id": user_id,
            "status": RunStatus.RUNNING.value,
            "start_time": start,
            "end_time": None,
            "deleted_time": None,
            "lifecycle_stage": ACTIVE,
        }

    def checked(self, known: str) -> dict[str, Any]:
        """The insert's parameters when the experiment's location is known: the run is
        inserted only while the experiment is active at that location."""
        return {**self.row, "artifact_uri": join_uri(known, self.run_id, "artifacts"),
                "eid": self.eid, "active": ACTIVE, "location": known}

    def write(self, conn: Connection) -> tuple[int, str, str]:
        row, run_id, known = self.row, self.run_id, self.known
        tag_rows = [{"run_uuid": run_id, "key": k, "value": v} for k, v in self.tag_map.items()]
        if known is not None:
            # One statement instead of a read and an insert: it inserts only while the
            # experiment is active and still has the location seen before (an id a
            # purged experiment left may be reused).
            checked = self.checked(known)
            if execute_plain(conn, "run_insert_checked", _RUN_INSERT_CHECKED,
                             checked).rowcount == 1:
                execute_plain(conn, "tag_insert", _TAG_INSERT, tag_rows)
                return self.eid, known, checked["artifact_uri"]
        exp = experiment_row(conn, self.experiment_id, for_write=True)
        artifact_uri = join_uri(exp.artifact_location, run_id, "artifacts")
        execute_plain(conn, "run_insert", _RUN_INSERT, {
            **row, "artifact_uri": artifact_uri, "experiment_id": exp.experiment_id,
        })
        execute_plain(conn, "tag_insert", _TAG_INSERT, tag_rows)
        return exp.experiment_id, exp.artifact_location, artifact_uri

    def made(self, written: tuple[int, str, str]) -> Run:
        exp_id, location, artifact_uri = written
        if location != self.known:
            if len(self.locations) >= _LOCATIONS_KEPT:
                self.locations.clear()
            self.locations[self.eid] = location
        info = RunInfo(
            run_id=self.run_id,
            experiment_id=str(exp_id),
            run_name=self.name,
            user_id=self.user_id,
            status=RunStatus.RUNNING,
            start_time=self.start,
            end_time=None,
            artifact_uri=artifact_uri,
            lifecycle_stage=LifecycleStage.ACTIVE,
        )
        return Run(info=info, data=RunData(tags=self.tag_map))


class _Update:
    """A run update: the values it sets, and its writes (each returns the run's row)."""

    def __init__(self, run_id: str, run_status: RunStatus | None, end_time: int | None,
                 run_name: str | None) -> None:
        values: dict[str, Any] = {}
        if run_status is not None:
            values["status"] = RunStatus(run_status).value
        if end_time is not None:
            values["end_time"] = check_int64(end_time, "end_time")
        if run_name:
            check_run_name(run_name)
            values["name"] = run_name
        self.run_id = run_id
        self.run_name = run_name
        self.values = values
        self.names = tuple(values)
        self.bound = {"rid": run_id, **{f"v_{k}": v for k, v in values.items()}}

    def active_update(self, conn: Connection) -> Any:
        """One statement for the check, the update and the read (``values`` not empty):
        the run's new row, or None for a run that is missing or not active, which is
        left as it is."""
        return execute_plain(conn, f"run_update_active:{','.join(self.names)}",
                             _run_update_active(self.names),
                             {**self.bound, "active": ACTIVE}).first()

    def write(self, conn: Connection) -> Any:
        run_id, run_name = self.run_id, self.run_name
        row = None
        if self.values and conn.dialect.update_returning:
            row = self.active_update(conn)  # if None, the check below says why
        if row is None:
            check_active_run(conn, run_id)
            if self.values:
                execute_plain(conn, f"run_update:{','.join(self.names)}",
                              _run_update(self.names), self.bound)
        if run_name:
            upsert(
                conn,
                tags,
                [{"run_uuid": run_id, "key": RUN_NAME_TAG, "value": run_name}],
                ["run_uuid", "key"],
                ["value"],
            )
        return row if row is not None else run_row(conn, run_id)
