"""No search or read loads whole tables, and nothing is N+1: statements are counted with
SQLAlchemy's ``before_cursor_execute`` event (an executemany counts once)."""

from __future__ import annotations

import uuid
from contextlib import contextmanager

import sqlalchemy as sa
from sqlalchemy import event

from tracklog.entities import LoggedModelOutput, Metric, Param, RunTag
from tracklog.search import parse_run_filter, parse_run_order_by
from tracklog_store_sql.schema import metric_series
from tracklog_store_sql.sqlutil import bound_ids, in_bound_ids, in_ids


@contextmanager
def statements(store):
    seen: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany):
        seen.append(statement)

    event.listen(store.db.engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(store.db.engine, "before_cursor_execute", record)


def _fill(store, eid, n_runs, n_keys):
    for i in range(n_runs):
        run = store.create_run(eid, "u", i)
        store.log_batch(
            run.info.run_id,
            metrics=[Metric(f"m{k}", float(i + k), 1, 0) for k in range(n_keys)],
            params=[Param(f"p{k}", str(i)) for k in range(n_keys)],
            tags=[RunTag(f"t{k}", "x") for k in range(n_keys)],
        )


def _search_count(store, eid):
    flt = parse_run_filter("metrics.m0 >= 0 AND params.p1 != 'zz' AND tags.t0 = 'x'")
    order = parse_run_order_by(["metrics.m1 DESC", "params.p0"])
    with statements(store) as seen:
        found = store.search_runs([eid], flt, order_by=order)
    return found, seen


def test_search_runs_is_one_query_plus_constant_loads(store):
    small = store.create_experiment("small")
    big = store.create_experiment("big")
    _fill(store, small, 2, 2)
    _fill(store, big, 40, 6)
    few, seen_small = _search_count(store, small)
    many, seen_big = _search_count(store, big)
    assert len(few) == 2 and len(many) == 40
    assert len(seen_small) == len(seen_big) <= 8
    searches = [s for s in seen_big if "ORDER BY" in s and "EXISTS" in s]
    assert len(searches) == 1  # the filter and the order are one statement
    # The history table is never read by a search: latest values live in latest_metrics.
    assert not any("metric_points" in s for s in seen_big)
    assert [r.data.metrics["m1"].value for r in many] == sorted(
        (float(i + 1) for i in range(40)), reverse=True
    )


def test_encoded_search_is_constant_statements_and_runs_with_models_cost_a_few_more(store):
    """SQLite's encoded page: the search, the page and the latest metrics, whatever the
    page holds; runs with inputs or outputs add the few statements of one entity page."""
    import orjson

    if store.search_runs_encoded(["0"]) is None:
        return  # offered on SQLite only
    small = store.create_experiment("small")
    big = store.create_experiment("big")
    _fill(store, small, 2, 2)
    _fill(store, big, 40, 6)
    flt = parse_run_filter("metrics.m0 >= 0 AND params.p1 != 'zz' AND tags.t0 = 'x'")
    order = parse_run_order_by(["metrics.m1 DESC", "params.p0"])
    counts = []
    for eid in (small, big):
        with statements(store) as seen:
            found = store.search_runs_encoded([eid], flt, order_by=order)
        counts.append(len(seen))
    assert counts[0] == counts[1] <= 5
    latest = [{m["key"]: m["value"] for m in orjson.loads(r)["data"]["metrics"]}
              for r in found]
    assert [m["m1"] for m in latest] == sorted(
        (float(i + 1) for i in range(40)), reverse=True)
    with_model = store.search_runs([big])[0].info.run_id
    model = store.create_logged_model(big, name="m", source_run_id=with_model).model_id
    store.log_outputs(with_model, [LoggedModelOutput(model, 1)])
    with statements(store) as seen:
        found = store.search_runs_encoded([big], flt, order_by=order)
    assert len(seen) <= counts[1] + 4
    outputs = [orjson.loads(r)["outputs"] for r in found]
    assert outputs.count({"model_outputs": [{"model_id": model, "step": 1}]}) == 1
    assert outputs.count({}) == 39

def test_get_run_and_log_batch_statement_counts(store):
    run = store.create_run("0", "u", 0).info.run_id
    with statements(store) as seen:
        store.log_batch(
            run,
            metrics=[Metric(f"k{i % 10}", float(i), i, i) for i in range(1000)],
            params=[Param(f"p{i}", "v") for i in range(100)],
            tags=[RunTag(f"t{i}", "v") for i in range(100)],
        )
    writes = [s for s in seen if not s.startswith(("BEGIN", "SAVEPOINT", "RELEASE"))]
    # run check, params insert+select, series find+create+find, points, latest (x2), tags
    assert len(writes) <= 10
    with statements(store) as seen_again:
        store.log_batch(
            run, metrics=[Metric(f"k{i % 10}", float(i), i, i + 1) for i in range(1000)]
        )
    again = [s for s in seen_again if not s.startswith(("BEGIN", "SAVEPOINT", "RELEASE"))]
    assert len(again) <= 5  # known keys: run check, series find, points, latest (x2)
    empty = store.create_run("0", "u", 0).info.run_id
    with statements(store) as seen_one:
        small = store.get_run(empty)
    with statements(store) as seen_big:
        big = store.get_run(run)
    assert len(small.data.params) == 0 and len(big.data.params) == 100
    assert len(big.data.metrics) == 10 and big.data.metrics["k9"].value == 999.0
    assert len(seen_big) == len(seen_one)


ODD_STRINGS = ["a b", "NULL", "", "x,y", "{z}", 'q"uote', "back\\slash", "ü/é", "null"]


def test_id_lists_bound_as_one_parameter_keep_every_string(store):
    """The id list of a page is bound as one parameter (an array literal on PostgreSQL, a
    JSON array on SQLite): strings that need quoting or escaping match themselves only."""
    run_id = store.create_run("0", "u", 0).info.run_id
    with store.db.write() as conn:
        conn.execute(metric_series.insert(), [{"run_uuid": run_id, "key": k} for k in ODD_STRINGS])
    # Without and with strings that need escaping (two ways of building the literal).
    for wanted in (["a b", "NULL", "", "x,y", "{z}"], ['q"uote', "back\\slash", "ü/é"]):
        _match(store, run_id, wanted)


def _match(store, run_id, wanted):
    s = metric_series.c
    with store.db.read() as conn:
        got = conn.execute(
            sa.select(s.key).where(s.run_uuid == run_id, in_ids(s.key, wanted, store.dialect))
        ).scalars()
        assert sorted(got) == sorted(wanted)
        if store.dialect in ("sqlite", "postgresql"):
            stmt = sa.select(s.key).where(
                s.run_uuid == run_id, in_bound_ids(s.key, "keys", store.dialect)
            )
            got = conn.execute(stmt, {"keys": bound_ids(wanted, store.dialect)}).scalars()
            assert sorted(got) == sorted(wanted)
            assert list(conn.execute(stmt, {"keys": bound_ids([], store.dialect)})) == []


def _prepared_after_searches(pg_url: str) -> int:
    """Prepared statements on the connection of a new store (one connection: the pool
    hands it out again and again) after the same search eight times."""
    from tracklog_store_sql.store import SqlTrackingStore

    store = SqlTrackingStore(pg_url, "mlflow-artifacts:/")
    try:
        eid = store.create_experiment(f"prepared-{uuid.uuid4().hex}")
        _fill(store, eid, 5, 2)
        run_filter = parse_run_filter("metrics.m0 > 1 and params.p1 != 'x'")
        for _ in range(8):
            assert len(store.search_runs([eid], run_filter)) == 3
        with store.db.read() as conn:
            return int(conn.exec_driver_sql(
                "SELECT count(*) FROM pg_prepared_statements WHERE statement LIKE '%%params%%'"
            ).scalar_one())
    finally:
        store.close()


def test_repeated_reads_use_prepared_statements_on_postgresql(pg_url):
    """psycopg prepares a statement on its fifth run on a connection, and forgets every
    prepared statement on a ROLLBACK: reads must end without one, or every search is
    planned from scratch (about a sixth of its time)."""
    assert _prepared_after_searches(pg_url) >= 2  # the search and the page's params


def test_prepared_statements_can_be_switched_off(pg_url, monkeypatch):
    """``TRACKLOG_SQLALCHEMYSTORE_PREPARE_THRESHOLD=0``, for a PgBouncer that cannot route
    prepared statements: the same reads prepare nothing."""
    monkeypatch.setenv("TRACKLOG_SQLALCHEMYSTORE_PREPARE_THRESHOLD", "0")
    assert _prepared_after_searches(pg_url) == 0


def test_sqlite_tests_the_filter_on_the_ordering_metric_before_the_run(tmp_path):
    """Ordered by a metric the filter requires, SQLite walks the metric's index and tests
    the filter's other comparisons on each metric row before it looks the run up (which
    it does for the runs that pass only: capacity.py's search, 10,000 runs, 5.2 -> 3.6 ms
    CPU)."""
    from tracklog.entities import ViewType
    from tracklog_store_sql import search as sqlsearch
    from tracklog_store_sql.store import SqlTrackingStore

    store = SqlTrackingStore(f"sqlite:///{tmp_path}/plan.db", "mlflow-artifacts:/")
    try:
        stmt = sqlsearch.runs_query(
            "sqlite", [1], ViewType.ACTIVE_ONLY,
            parse_run_filter("metrics.m > 0.5 and params.p0 = 'a' and tags.t = 'x'"),
            parse_run_order_by(["metrics.m DESC"]))
        with store.db.engine.connect() as conn:
            plan = [row[3] for row in conn.execute(
                sa.text("EXPLAIN QUERY PLAN " + str(stmt.compile(
                    dialect=conn.dialect, compile_kwargs={"literal_binds": True}))))]
    finally:
        store.close()
    steps = [next(i for i, d in enumerate(plan) if d.startswith(f"SEARCH {t} "))
             for t in ("o0", "params", "tags", "runs")]
    assert steps == sorted(steps), plan
