"""Expensive searches stay bounded: long filters plan at once, a statement has a timeout,
a busy pool answers 503, and a read is stopped when its caller goes away."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import sqlalchemy as sa

from tracklog.entities import Metric, Param, RunTag
from tracklog.errors import ErrorCode, TracklogError
from tracklog.interrupt import Interrupt, serving
from tracklog.search import MAX_FILTER_CLAUSES, parse_run_filter
from tracklog.search.ast import Comparison, Identifier, Kind, Op
from tracklog_store_sql.store import SqlTrackingStore


def _open(url: str, monkeypatch: pytest.MonkeyPatch, **env: object) -> SqlTrackingStore:
    for name, value in env.items():
        monkeypatch.setenv(f"TRACKLOG_SQLALCHEMYSTORE_{name}", str(value))
    return SqlTrackingStore(url, "/artifacts")


@contextmanager
def _closing(store: SqlTrackingStore) -> Iterator[SqlTrackingStore]:
    try:
        yield store
    finally:
        store.close()


def _runs(store: SqlTrackingStore, count: int = 30) -> tuple[str, list[str]]:
    exp = store.create_experiment(f"limits-{uuid.uuid4().hex[:8]}")
    ids = []
    for i in range(count):
        run_id = store.create_run(exp, "u", 1000 + i).info.run_id
        store.log_batch(
            run_id,
            metrics=[Metric(f"m{j}", float(i), 0, 0) for j in range(10)],
            params=[Param(f"p{j}", str(i)) for j in range(10)],
            tags=[RunTag(f"t{j}", f"v{i}") for j in range(10)],
        )
        ids.append(run_id)
    return exp, ids


def _session_timeout_url(url: str, backend: str, seconds: int) -> str:
    """``url`` with the server's own statement timeout set through the URL alone."""
    if backend == "postgresql":
        return f"{url}?options=-c%20statement_timeout%3D{seconds * 1000}"
    if backend == "mysql":
        return f"{url}?init_command=SET%20SESSION%20max_statement_time%3D{seconds}"
    return url


def test_filter_at_the_cap_plans_at_once(backend, server_url):
    """A filter of MAX_FILTER_CLAUSES comparisons of every kind is answered correctly well
    within a 5 s statement timeout (set on the connection through the URL). PostgreSQL
    used to plan one semi-join per comparison: 60 took 2.5 s, 100 minutes."""
    url = _session_timeout_url(server_url, backend, 5)
    with _closing(SqlTrackingStore(url, "/artifacts")) as store:
        exp, ids = _runs(store)
        cycle = ("metrics.m{j} >= 0", "params.p{j} != 'x{i}'", "tags.t{j} LIKE 'v%'",
                 "params.p{j} IS NOT NULL", "tags.t{j} != 'w{i}'", "metrics.m{j} < 1000",
                 "attributes.start_time >= 1000", "params.missing{i} IS NULL")
        clauses = [cycle[i % len(cycle)].format(i=i, j=i % 10)
                   for i in range(MAX_FILTER_CLAUSES - 1)]
        clauses.append("params.p3 = '7'")
        found = store.search_runs([exp], parse_run_filter(" AND ".join(clauses)))
        assert [r.info.run_id for r in found] == [ids[7]]


@pytest.mark.parametrize("backend", ["postgresql", "mysql"])
def test_statement_timeout_stops_a_read_with_a_400(backend, server_url, monkeypatch):
    """A statement running past TRACKLOG_SQLALCHEMYSTORE_STATEMENT_TIMEOUT is stopped and
    reported as the caller's error; the connection serves the next read."""
    sleep = "SELECT pg_sleep(30)" if backend == "postgresql" else "SELECT SLEEP(30)"
    with _closing(_open(server_url, monkeypatch, STATEMENT_TIMEOUT=0.5,
                        POOL_SIZE=1, MAX_OVERFLOW=0)) as store:
        exp = store.create_experiment(f"timeout-{uuid.uuid4().hex[:8]}")
        with pytest.raises(TracklogError) as err:
            with store.db.read() as conn:
                conn.exec_driver_sql(sleep).all()
        assert err.value.error_code is ErrorCode.INVALID_PARAMETER_VALUE
        assert "statement timeout of 0.5 s" in err.value.message
        assert "SELECT" not in err.value.message
        assert store.get_experiment(exp).experiment_id == exp


@pytest.mark.parametrize("backend", ["postgresql"])
def test_statement_timeout_stops_a_binary_history_read_with_a_400(backend, server_url,
                                                                   monkeypatch):
    """Long histories are read through the driver's own cursor on PostgreSQL: a timeout
    there is the same 400 as anywhere else, not the driver's exception."""
    with _closing(_open(server_url, monkeypatch)) as store:
        run_id = store.create_run(store.create_experiment(f"h-{uuid.uuid4().hex[:8]}"),
                                  "u", 0).info.run_id
        for start in range(0, 300_000, 10_000):
            store.log_batch(run_id, [Metric("m", float(i), i, i)
                                     for i in range(start, start + 10_000)])
    # 10 ms: the store's own schema check at open stays well inside it even on a busy
    # machine, reading 300,000 points does not.
    with _closing(_open(server_url, monkeypatch, STATEMENT_TIMEOUT=0.01)) as store:
        with pytest.raises(TracklogError) as err:
            store.get_metric_history(run_id, "m")
        assert err.value.error_code is ErrorCode.INVALID_PARAMETER_VALUE
        assert "statement timeout" in err.value.message


def test_busy_pool_answers_503_with_retry_after(backend, server_url, monkeypatch):
    """With every pooled connection taken, a request waits pool_timeout seconds and is
    then told to come back (503 + Retry-After), not handed a 500."""
    with _closing(_open(server_url, monkeypatch, POOL_SIZE=1, MAX_OVERFLOW=0,
                        POOL_TIMEOUT=1)) as store:
        exp = store.create_experiment(f"pool-{uuid.uuid4().hex[:8]}")
        with store.db.read():
            with pytest.raises(TracklogError) as err:
                store.get_experiment(exp)
        assert err.value.error_code is ErrorCode.TEMPORARILY_UNAVAILABLE
        assert err.value.http_status == 503
        assert err.value.retry_after == 2
        assert store.get_experiment(exp).experiment_id == exp


@contextmanager
def _runs_locked(url: str, backend: str) -> Iterator[sa.Connection]:
    """Another session holding a lock that makes every read of ``runs`` wait."""
    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
    try:
        with engine.connect() as conn:
            if backend == "postgresql":
                conn.exec_driver_sql("LOCK TABLE runs IN ACCESS EXCLUSIVE MODE")
            else:
                conn.exec_driver_sql("LOCK TABLES runs WRITE")
            try:
                yield conn
            finally:
                if backend == "mysql":
                    conn.exec_driver_sql("UNLOCK TABLES")
                conn.rollback()
    finally:
        engine.dispose()


def _waiting_on_runs(conn: sa.Connection, backend: str) -> int:
    if backend == "postgresql":
        # The statistics views are a snapshot per transaction, and this one is open.
        conn.exec_driver_sql("SELECT pg_stat_clear_snapshot()")
        sql = ("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
               "AND state = 'active' AND query LIKE '%%FROM runs%%' "
               "AND pid <> pg_backend_pid()")
    else:
        sql = ("SELECT count(*) FROM information_schema.processlist WHERE db = DATABASE() "
               "AND info LIKE '%%FROM runs%%' AND id <> CONNECTION_ID()")
    count = conn.exec_driver_sql(sql).scalar()
    assert count is not None
    return count


def _wait_for(condition, what: str, limit: float = 30.0) -> None:
    deadline = time.monotonic() + limit
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"still not {what} after {limit:.0f} s")
        time.sleep(0.05)


@pytest.mark.parametrize("backend", ["postgresql", "mysql"])
def test_interrupt_stops_a_waiting_search(backend, server_url, monkeypatch):
    """Firing the request's interrupt stops the statement the search is running (here
    waiting on a lock), the search ends with CANCELLED, and the connection is free."""
    with _closing(_open(server_url, monkeypatch, POOL_SIZE=1, MAX_OVERFLOW=0)) as store:
        exp = store.create_experiment(f"cancel-{uuid.uuid4().hex[:8]}")
        outcome: list[BaseException | object] = []
        interrupt = Interrupt()

        def search() -> None:
            with serving(interrupt):
                try:
                    outcome.append(store.search_runs([exp]))
                except BaseException as exc:
                    outcome.append(exc)

        with _runs_locked(server_url, backend) as locker:
            worker = threading.Thread(target=search)
            worker.start()
            _wait_for(lambda: _waiting_on_runs(locker, backend) == 1, "waiting on the lock")
            interrupt.fire()
            worker.join(30)
            assert not worker.is_alive(), "the search kept running after the interrupt"
            _wait_for(lambda: _waiting_on_runs(locker, backend) == 0, "stopped")
        (result,) = outcome
        assert isinstance(result, TracklogError)
        assert result.error_code is ErrorCode.CANCELLED
        # The only pooled connection came back and works.
        assert list(store.search_runs([exp])) == []


def test_id_lists_are_bound_as_one_parameter(store):
    """70,000 experiment ids and a 70,000-value IN list (more than PostgreSQL's 65,535
    bind parameters) are answered: id lists never become one placeholder per value."""
    exp = store.create_experiment(f"ids-{uuid.uuid4().hex[:8]}")
    run_id = store.create_run(exp, "u", 1).info.run_id
    experiment_ids = [str(i) for i in range(1_000_000, 1_070_000)] + [exp]
    run_ids = tuple(f"{i:032x}" for i in range(70_000)) + (run_id,)
    flt = (Comparison(Identifier(Kind.ATTRIBUTE, "run_id"), Op.IN, run_ids),)
    found = store.search_runs(experiment_ids, filter=flt)
    assert [r.info.run_id for r in found] == [run_id]
    not_in = (Comparison(Identifier(Kind.ATTRIBUTE, "run_id"), Op.NOT_IN, run_ids),)
    assert list(store.search_runs(experiment_ids, filter=not_in)) == []
    assert list(store.search_logged_models(experiment_ids)) == []


_ENDLESS = ("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c "
            "WHERE x < 2000000000) SELECT count(*) FROM c")


def test_interrupt_stops_a_running_statement(backend, server_url, monkeypatch):
    """A statement that would run for minutes ends as soon as the request's interrupt
    fires (sqlite3's progress handler, a PostgreSQL cancel request, KILL QUERY)."""
    with _closing(_open(server_url, monkeypatch, POOL_SIZE=1, MAX_OVERFLOW=0)) as store:
        exp = store.create_experiment(f"endless-{uuid.uuid4().hex[:8]}")
        interrupt = Interrupt()
        outcome: list[BaseException | object] = []

        def endless() -> None:
            with serving(interrupt):
                try:
                    with store.db.read() as conn:
                        if backend == "mysql":  # both cap recursion at 1,000 by default
                            mariadb = getattr(conn.dialect, "is_mariadb", False)
                            variable = ("max_recursive_iterations" if mariadb
                                        else "cte_max_recursion_depth")
                            conn.exec_driver_sql(f"SET SESSION {variable} = 4294967295")
                        outcome.append(conn.exec_driver_sql(_ENDLESS).scalar())
                except BaseException as exc:
                    outcome.append(exc)

        worker = threading.Thread(target=endless)
        worker.start()
        time.sleep(0.5)  # let it start; firing earlier is handled too, just not this path
        interrupt.fire()
        worker.join(60)
        assert not worker.is_alive(), "the statement kept running after the interrupt"
        (result,) = outcome
        assert isinstance(result, TracklogError), result
        assert result.error_code is ErrorCode.CANCELLED
        assert store.get_experiment(exp).experiment_id == exp


@pytest.mark.parametrize("topic", ["metrics", "params", "tags", "datasets", "combined"])
def test_grouped_compilation_agrees_with_the_truth_tables(store, monkeypatch, topic):
    """The form long filters compile to (a count per child table, datasets as per-row
    tests) answers every filter of the kit's truth tables as the EXISTS form does."""
    from tracklog.testing.tracking.search_runs import FILTER_TRUTH_TABLE, build_run_scenario
    from tracklog_store_sql import run_pages
    from tracklog_store_sql import search as sqlsearch

    monkeypatch.setattr(sqlsearch, "MAX_SEMI_JOINS", 0)
    # Statements built before (an experiment id reused after a reset) were not grouped.
    run_pages.forget_statements()
    exp, ids = build_run_scenario(store)
    names = {v: k for k, v in ids.items()}
    for text, expected in FILTER_TRUTH_TABLE[topic]:
        flt = parse_run_filter(text.format(**ids))
        got = {names[r.info.run_id] for r in store.search_runs([exp], flt, max_results=100)}
        assert got == expected, text


def _tag_filter(prefix: str, value: str, null: bool = False) -> str:
    """Nine comparisons (past MAX_SEMI_JOINS) that hold for tags k0..k3 = value only."""
    clauses = [f"{prefix}k{i} = '{value}'" for i in range(4)]
    clauses += [f"{prefix}k{i} LIKE '{value[0]}%'" for i in range(4)]
    clauses.append(f"{prefix}gone IS NULL" if null else f"{prefix}k0 != 'zz'")
    return " AND ".join(clauses)


def test_long_filters_of_every_search_kind(store):
    """Experiments, logged models, registered models and model versions answer long
    filters (the grouped form) exactly."""
    from tracklog.entities import ExperimentTag, LoggedModelParameter, LoggedModelTag
    from tracklog.search import (
        parse_experiment_filter,
        parse_logged_model_filter,
        parse_model_version_filter,
        parse_registered_model_filter,
    )

    tags = {"x": [(f"k{i}", "xv") for i in range(4)],
            "y": [(f"k{i}", "xv") for i in range(3)] + [("k3", "yv")]}
    exps = {}
    for name, pairs in tags.items():
        exps[name] = store.create_experiment(f"long-{name}-{uuid.uuid4().hex[:6]}")
        for key, value in pairs:
            store.set_experiment_tag(exps[name], ExperimentTag(key, value))
    flt = parse_experiment_filter(_tag_filter("tags.", "xv", null=True))
    found = store.search_experiments(filter=flt)
    assert [e.experiment_id for e in found] == [exps["x"]]

    models = {name: store.create_logged_model(
        exps["x"], name=name, tags=[LoggedModelTag(k, v) for k, v in pairs],
        params=[LoggedModelParameter(k, v) for k, v in pairs]).model_id
        for name, pairs in tags.items()}
    for prefix in ("tags.", "params."):
        flt = parse_logged_model_filter(_tag_filter(prefix, "xv"))
        found = store.search_logged_models([exps["x"]], filter=flt)
        assert [m.model_id for m in found] == [models["x"]]

    for name, pairs in tags.items():
        store.create_registered_model(f"rm-{name}", tags=pairs)
        store.create_model_version(f"rm-{name}", "s3://b/m", tags=pairs)
    flt = parse_registered_model_filter(_tag_filter("tags.", "xv"))
    found = store.search_registered_models(flt)
    assert [m.name for m in found] == ["rm-x"]
    found = store.search_model_versions(parse_model_version_filter(_tag_filter("tags.", "xv")))
    assert [(v.name, v.version) for v in found] == [("rm-x", "1")]


@pytest.mark.parametrize("value", ["soon", "-1", "nan"])
def test_bad_statement_timeout_is_refused_by_name(tmp_path, monkeypatch, value):
    monkeypatch.setenv("TRACKLOG_SQLALCHEMYSTORE_STATEMENT_TIMEOUT", value)
    with pytest.raises(TracklogError, match="TRACKLOG_SQLALCHEMYSTORE_STATEMENT_TIMEOUT"):
        SqlTrackingStore(f"sqlite:///{tmp_path}/t.db", "/artifacts")


def test_repeated_and_unhashable_searches(store):
    """A search asked again (its statement reused) answers for the data of now and for
    its own values; a direct caller's filter in a list, or with a list of values, works
    as the parsed tuple does."""
    from tracklog.search.ast import Comparison

    exp = store.create_experiment("repeat")
    run, other = (store.create_run(exp, "u", i).info.run_id for i in (1, 2))
    in_list = parse_run_filter(f"attributes.run_id IN ('{run}', 'nothing')")
    for _ in range(2):
        assert [r.info.run_id for r in store.search_runs([exp], in_list)] == [run]
        assert [r.info.run_id for r in store.search_runs(
            [exp], parse_run_filter(f"attributes.run_id = '{other}'"))] == [other]
    store.delete_run(run)
    for _ in range(2):
        assert list(store.search_runs([exp], in_list)) == []
    store.restore_run(run)
    (cmp,) = in_list
    as_list = [Comparison(cmp.ident, cmp.op, list(cmp.value))]  # type: ignore[arg-type]
    assert [r.info.run_id for r in store.search_runs([exp], as_list)] == [run]
