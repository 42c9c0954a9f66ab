"""How many statements the common writes make (each is a round trip on a database
server), and that the shortcuts which spare them refuse what the long way refuses."""

from __future__ import annotations

import threading
import time

import pytest
import sqlalchemy as sa
from sqlalchemy import event

from tracklog import errors
from tracklog.entities import Metric, Param, RunStatus
from tracklog_store_sql.points import pg_latest_literals
from tracklog_store_sql.rows import _RUN_ROW, _RUN_STAGE
from tracklog_store_sql.runs import _TAG_INSERT
from tracklog_store_sql.schema import tags as tags_table
from tracklog_store_sql.sqlutil import PlainResult, execute_plain

_TAGS_OF = sa.select(tags_table.c.key, tags_table.c.value).where(
    tags_table.c.run_uuid == sa.bindparam("rid"))

PAIRS = ["sqlite", "postgresql"]


def _counting(store) -> list[str]:
    statements: list[str] = []

    def count(_conn, _cursor, statement, *_args) -> None:
        if not statement.startswith("BEGIN"):
            statements.append(statement)

    event.listen(store.db.engine, "before_cursor_execute", count)
    return statements


@pytest.mark.parametrize("backend", PAIRS, indirect=True)
def test_run_create_params_and_update_take_one_statement_each_beyond_the_minimum(store):
    """A run created in an experiment seen before: the run and its tags (two inserts; one
    on PostgreSQL, outside a transaction); a batch of new params of an active run: one
    insert; a run update: one statement (outside a transaction on PostgreSQL)."""
    exp = store.create_experiment("counted")
    store.create_run(exp, "u", 1)  # the experiment's artifact location is learnt
    statements = _counting(store)

    run = store.create_run(exp, "u", 2).info
    assert len(statements) == (1 if store.dialect == "postgresql" else 2)
    statements.clear()
    store.log_batch(run.run_id, params=[Param(f"p{i}", "v") for i in range(10)])
    assert len(statements) == 1
    statements.clear()
    info = store.update_run_info(run.run_id, RunStatus.FINISHED, 9)
    assert len(statements) == 1
    assert (info.status, info.end_time) == (RunStatus.FINISHED, 9)

    got = store.get_run(run.run_id)
    assert got.info.artifact_uri == run.artifact_uri
    assert got.info.artifact_uri.startswith(store.get_experiment(exp).artifact_location)
    assert got.data.params == {f"p{i}": "v" for i in range(10)}
    assert (got.info.status, got.info.end_time) == (RunStatus.FINISHED, 9)


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_latest_values_bound_as_array_literals_keep_every_key(store):
    """The one-statement batch binds its latest values as array literals: keys that an
    unquoted literal would read otherwise (NULL, spaces, non-ASCII) come back as logged,
    and so would quotes and backslashes."""
    keys = ["NULL", "with space", "ünïcode_ключ", "a/b:c.d-e", " lead"]
    run_id = store.create_run("0", "u", 1).info.run_id
    store.log_batch(run_id, metrics=[Metric(k, 1.0, 10, 1) for k in keys])
    statements = _counting(store)
    store.log_batch(run_id, metrics=[Metric(k, float(i), 11, 2) for i, k in enumerate(keys)])
    assert len(statements) == 1
    got = store.get_run(run_id).data.metrics
    assert {k: (m.value, m.step) for k, m in got.items()} == {
        k: (float(i), 2) for i, k in enumerate(keys)}
    with store.db.engine.connect() as conn:
        back = conn.execute(sa.text("SELECT CAST(:a AS TEXT[])"),
                            {"a": pg_latest_literals([{"key": 'q"uo\\te{,}', "value": 1.5,
                                                       "timestamp": 1, "step": 2,
                                                       "is_nan": 0}])["lkeys"]}).scalar()
    assert back == ['q"uo\\te{,}']


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_metrics_of_known_series_take_one_statement_on_postgresql(store):
    """Once a run's series are known, a batch of its metrics (points, latest values and
    the run's check) is one statement outside a transaction; the latest value still
    follows (step, timestamp, value), NaN and infinities round-trip, and a run deleted
    meanwhile refuses the batch and keeps nothing of it."""
    run_id = store.create_run("0", "u", 1).info.run_id
    store.log_batch(run_id, metrics=[Metric("a", 1.0, 10, 5), Metric("b", 1.0, 10, 5)])
    statements = _counting(store)
    store.log_batch(run_id, metrics=[Metric("a", 0.1 + 0.2, 11, 6), Metric("b", 7.0, 9, 4),
                                     Metric("a", -0.0, 12, 6)])
    assert len(statements) == 1
    statements.clear()
    store.log_batch(run_id, metrics=[Metric("b", float("nan"), 12, 5),
                                     Metric("b", float("inf"), 13, 4)])
    assert len(statements) == 1

    got = store.get_run(run_id).data.metrics
    assert (got["a"].value, got["a"].step, got["a"].timestamp) == (-0.0, 6, 12)
    assert (got["b"].step, got["b"].timestamp) == (5, 12) and got["b"].value != got["b"].value
    history = [(m.timestamp, m.step, m.value) for m in store.get_metric_history(run_id, "a")]
    assert history == [(10, 5, 1.0), (11, 6, 0.1 + 0.2), (12, 6, -0.0)]
    assert len(store.get_metric_history(run_id, "b")) == 4

    store.delete_run(run_id)
    statements.clear()
    with pytest.raises(errors.TracklogError) as refused:
        store.log_batch(run_id, metrics=[Metric("a", 9.0, 99, 99)])
    assert refused.value.error_code == errors.ErrorCode.INVALID_PARAMETER_VALUE
    assert len(store.get_metric_history(run_id, "a")) == 3
    assert store.get_run(run_id).data.metrics["a"].step == 6


@pytest.mark.parametrize("backend", PAIRS, indirect=True)
def test_get_run_takes_one_statement_and_two_on_sqlite(store):
    """A run is read as a search page of one: its row, params, tags (and on PostgreSQL
    latest metrics) in one statement; SQLite reads the metrics in a second. Inputs and
    outputs only when it has some; a missing run is still RESOURCE_DOES_NOT_EXIST."""
    run_id = store.create_run("0", "u", 1).info.run_id
    store.log_batch(run_id, metrics=[Metric("m", 0.5, 1, 2)], params=[Param("p", "v")])
    statements = _counting(store)
    run = store.get_run(run_id)
    assert len(statements) == (1 if store.dialect == "postgresql" else 2)
    assert (run.data.params, run.data.metrics["m"].value, run.info.start_time) == \
        ({"p": "v"}, 0.5, 1)
    with pytest.raises(errors.TracklogError) as missing:
        store.get_run("0" * 32)
    assert missing.value.error_code == errors.ErrorCode.RESOURCE_DOES_NOT_EXIST
    assert "0" * 32 in missing.value.message


def test_run_creation_in_an_experiment_seen_before_checks_it_again(store):
    """The remembered artifact location spares reading the experiment, not checking it:
    a deleted experiment refuses new runs, a restored one takes them again."""
    exp = store.create_experiment("seen")
    store.create_run(exp, "u", 1)
    store.delete_experiment(exp)
    with pytest.raises(errors.TracklogError) as refused:
        store.create_run(exp, "u", 2)
    assert refused.value.error_code == errors.ErrorCode.INVALID_PARAMETER_VALUE
    store.restore_experiment(exp)
    run = store.create_run(exp, "u", 3).info
    assert store.get_run(run.run_id).info.experiment_id == exp
    assert len(store.search_runs([exp])) == 2


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_run_created_under_a_reused_experiment_id_gets_the_new_location(store):
    """SQLite hands a purged experiment's id to the next one: its runs go under the new
    experiment's artifact location, not the one remembered for the id."""
    exp = store.create_experiment("first", artifact_location="file:///first")
    store.create_run(exp, "u", 1)
    store.delete_experiment(exp)
    store.purge_experiment(exp)
    again = store.create_experiment("second", artifact_location="file:///second")
    assert again == exp
    run = store.create_run(again, "u", 2).info
    assert run.artifact_uri == f"file:///second/{run.run_id}/artifacts"
    assert store.get_run(run.run_id).info.artifact_uri == run.artifact_uri


def test_params_inserted_beside_stored_ones_are_still_compared(store):
    """Keys the insert skipped (stored before) are read back: the same value is
    accepted, another refused with nothing of the batch written."""
    run = store.create_run("0", "u", 1).info.run_id
    store.log_batch(run, params=[Param("a", "1"), Param("b", "2")])
    store.log_batch(run, params=[Param("a", "1"), Param("c", "3")])
    with pytest.raises(errors.TracklogError) as refused:
        store.log_batch(run, params=[Param("d", "4"), Param("b", "other")])
    assert refused.value.error_code == errors.ErrorCode.INVALID_PARAMETER_VALUE
    assert "'old_value': '2'" in refused.value.message
    assert store.get_run(run).data.params == {"a": "1", "b": "2", "c": "3"}


def test_updates_of_a_missing_or_deleted_run_are_refused_and_change_nothing(store):
    run = store.create_run("0", "u", 1).info.run_id
    store.delete_run(run)
    with pytest.raises(errors.TracklogError) as refused:
        store.update_run_info(run, RunStatus.FINISHED, 5)
    assert refused.value.error_code == errors.ErrorCode.INVALID_PARAMETER_VALUE
    with pytest.raises(errors.TracklogError) as missing:
        store.update_run_info("f" * 32, RunStatus.FINISHED, 5)
    assert missing.value.error_code == errors.ErrorCode.RESOURCE_DOES_NOT_EXIST
    store.restore_run(run)
    info = store.get_run(run).info
    assert (info.status, info.end_time) == (RunStatus.RUNNING, None)
    assert store.update_run_info(run, None, None, "renamed").run_name == "renamed"
    assert store.get_run(run).data.tags["mlflow.runName"] == "renamed"


def test_params_of_a_missing_or_deleted_run_are_refused_and_not_written(store):
    run = store.create_run("0", "u", 1).info.run_id
    store.delete_run(run)
    with pytest.raises(errors.TracklogError) as refused:
        store.log_batch(run, params=[Param("a", "1")])
    assert refused.value.error_code == errors.ErrorCode.INVALID_PARAMETER_VALUE
    with pytest.raises(errors.TracklogError) as missing:
        store.log_batch("f" * 32, params=[Param("a", "1")])
    assert missing.value.error_code == errors.ErrorCode.RESOURCE_DOES_NOT_EXIST
    store.restore_run(run)
    assert store.get_run(run).data.params == {}
    store.log_batch(run, params=[Param("a", "1")])
    assert store.get_run(run).data.params == {"a": "1"}


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
@pytest.mark.parametrize("theirs", ["ours", "theirs"])
def test_params_racing_a_writer_of_the_same_key_are_compared_with_its_value(store, theirs):
    """Another session inserts key ``a`` first and commits while our batch waits for it:
    the same value is taken (with the rest of the batch), another refused with nothing
    of the batch written."""
    import sqlalchemy as sa

    from tracklog_store_sql.schema import params

    run = store.create_run("0", "u", 1).info.run_id
    other = sa.create_engine(store.db.uri)
    outcome: list = []

    def ours() -> None:
        try:
            outcome.append(store.log_batch(run, params=[Param("a", "ours"), Param("b", "2")]))
        except errors.TracklogError as exc:
            outcome.append(exc)

    try:
        with other.connect() as conn, other.connect() as watch:
            watch.execution_options(isolation_level="AUTOCOMMIT")  # a fresh view each time
            conn.execute(params.insert().values(run_uuid=run, key="a", value=theirs))
            thread = threading.Thread(target=ours)
            thread.start()
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and not _waiting_for_a_lock(watch):
                time.sleep(0.02)
            conn.commit()
        thread.join(30)
    finally:
        other.dispose()
    if theirs == "ours":
        assert outcome == [None]
        assert store.get_run(run).data.params == {"a": "ours", "b": "2"}
    else:
        assert isinstance(outcome[0], errors.TracklogError)
        assert "Changing param values is not allowed" in outcome[0].message
        assert store.get_run(run).data.params == {"a": "theirs"}


def _waiting_for_a_lock(conn) -> bool:
    return bool(conn.exec_driver_sql(
        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
        "AND datname = current_database()").scalar())


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_plain_statements_on_sqlites_cursor_answer_as_sqlalchemy_does(store):
    """SQLite's plain statements skip SQLAlchemy's execution inside a transaction where
    no cursor event listens: the rows (columns by name), counts, errors and the
    transaction are the same either way."""
    exp = store.create_experiment("plain")
    run_id = store.create_run(exp, "u", 1).info.run_id
    tag = {"run_uuid": run_id, "key": "k", "value": "v"}

    def answers(conn, name):
        row = execute_plain(conn, f"{name}:row", _RUN_ROW, {"run_id": run_id}).first()
        missing = execute_plain(conn, f"{name}:row", _RUN_ROW, {"run_id": "none"}).first()
        stage = execute_plain(conn, f"{name}:stage", _RUN_STAGE, {"run_id": run_id}).scalar()
        inserted = execute_plain(conn, f"{name}:tag", _TAG_INSERT, [tag]).rowcount
        with pytest.raises(sa.exc.IntegrityError) as raised:
            execute_plain(conn, f"{name}:tag", _TAG_INSERT, [tag])
        tags = execute_plain(conn, f"{name}:tags", _TAGS_OF, {"rid": run_id}).all()
        assert conn.in_transaction()  # the first statement began it, as SQLAlchemy's would
        conn.rollback()
        return (row.run_uuid, row.lifecycle_stage, tuple(row), missing, stage, inserted,
                "UNIQUE" in str(raised.value.orig),
                [(t.key, t.value) for t in tags if t.key == "k"])

    with store.db.engine.connect() as conn:
        plain = answers(conn, "plain")
        with conn.begin():
            assert isinstance(execute_plain(conn, "plain:row", _RUN_ROW, {"run_id": run_id}),
                              PlainResult)
    statements = _counting(store)
    with store.db.engine.connect() as conn:
        seen = answers(conn, "seen")
    assert statements and plain == seen
    assert plain[:2] == (run_id, "active") and plain[3:] == (None, "active", 1, True,
                                                             [("k", "v")])
    assert store.get_run(run_id).data.tags.get("k") is None  # both rolled back
