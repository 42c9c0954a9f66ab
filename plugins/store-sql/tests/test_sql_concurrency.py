"""Many writer threads through one store object: no "database is locked", no lost rows,
and the latest value per key stays the greatest (step, timestamp, value)."""

from __future__ import annotations

import functools
import threading
import time

import pytest

from tracklog.entities import Metric, RunTag

THREADS = 8
CALLS = 500


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"], indirect=True)
def test_concurrent_log_batch(store):
    runs = [store.create_run("0", "u", 0).info.run_id for _ in range(2)]
    errors: list[BaseException] = []

    def writer(t: int) -> None:
        run = runs[t % 2]
        try:
            for i in range(CALLS):
                store.log_batch(
                    run,
                    metrics=[
                        Metric(f"own{t}", float(i), 1000 + i, i),
                        Metric("shared", float(t * CALLS + i), 1000 + i, t * CALLS + i),
                    ],
                    tags=[RunTag("last_writer", str(t))],
                )
        except BaseException as exc:  # reported below with the thread's number
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(t,)) for t in range(THREADS)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert errors == []
    for t in range(THREADS):
        history = store.get_metric_history(runs[t % 2], f"own{t}")
        assert [m.value for m in history] == [float(i) for i in range(CALLS)]
    for r, run in enumerate(runs):
        shared = store.get_metric_history(run, "shared")
        assert len(shared) == CALLS * THREADS // 2
        top = max(t * CALLS + CALLS - 1 for t in range(THREADS) if t % 2 == r)
        assert store.get_run(run).data.metrics["shared"].value == float(top)


@pytest.mark.parametrize("backend", ["sqlite", "postgresql", "mysql"], indirect=True)
def test_writers_racing_for_a_new_key_and_param(store):
    """Threads released together log the same new metric key and param on a fresh run:
    each sees the series or param another one just committed (on every isolation level)."""
    from tracklog.entities import Param

    for round_ in range(15):
        run = store.create_run("0", "u", 0).info.run_id
        barrier = threading.Barrier(4)
        errors: list[BaseException] = []

        def writer(
            t: int, run: str = run, barrier: threading.Barrier = barrier, errors: list = errors
        ) -> None:
            try:
                barrier.wait()
                store.log_batch(
                    run, metrics=[Metric("new", float(t), 1, t)], params=[Param("p", "same")]
                )
            except BaseException as exc:  # reported below
                errors.append(exc)

        threads = [threading.Thread(target=writer, args=(t,)) for t in range(4)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        assert errors == [], (round_, errors)
        assert sorted(m.step for m in store.get_metric_history(run, "new")) == [0, 1, 2, 3]
        assert store.get_run(run).data.params == {"p": "same"}


def test_sqlite_writers_of_one_process_queue_instead_of_polling(tmp_path):
    """A writer that finds another writing waits in the process and starts once it
    commits: it never meets SQLite's lock, not even with no busy timeout at all."""
    import time

    import sqlalchemy as sa
    from sqlalchemy import event

    from tracklog_store_sql.db import Database

    db = Database(f"sqlite:///{tmp_path}/w.db")

    @event.listens_for(db.engine, "connect")
    def _no_busy_timeout(dbapi_conn, _record) -> None:
        dbapi_conn.execute("PRAGMA busy_timeout=0")

    with db.write() as conn:
        conn.exec_driver_sql("CREATE TABLE t (n INTEGER)")
    first_in = threading.Event()
    errors: list[BaseException] = []

    def first() -> None:
        with db.write() as conn:
            conn.exec_driver_sql("INSERT INTO t VALUES (1)")
            first_in.set()
            time.sleep(0.3)

    def second() -> None:
        first_in.wait(10)
        try:
            with db.write() as conn:
                conn.exec_driver_sql("INSERT INTO t VALUES (2)")
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors, errors
    with db.read() as conn:
        assert [n for (n,) in conn.execute(sa.text("SELECT n FROM t ORDER BY n"))] == [1, 2]
    db.dispose()


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_sqlite_writers_that_queue_together_commit_together(store):
    """Batches that queue while another write holds SQLite's lock are then made in one
    transaction and one commit; if one of them fails, it fails alone (as it would by
    itself) and the others are written all the same."""
    from sqlalchemy import event

    from tracklog.entities import Param

    run = store.create_run("0", "u", 0).info.run_id
    store.log_batch(run, params=[Param("p", "1")])
    commits: list[int] = []
    event.listen(store.db.engine, "commit", lambda _conn: commits.append(1))

    def queue_batches(batches: list[dict]) -> list:
        return _queued_behind_a_write(store, commits, [
            functools.partial(store.log_batch, run, **batch) for batch in batches])

    good = [{"metrics": [Metric("m", float(i), 1000 + i, i)]} for i in range(THREADS)]
    assert queue_batches(good) == [None] * THREADS
    # The holder's commit, then one for every queued batch together.
    assert len(commits) == 2

    more = [{"metrics": [Metric("m", float(i), 2000 + i, i)]} for i in range(THREADS, 15)]
    outcome = queue_batches([*more, {"params": [Param("p", "2")]}])
    assert outcome[:-1] == [None] * len(more)
    assert "Changing param values is not allowed" in str(outcome[-1])
    assert [m.step for m in store.get_metric_history(run, "m")] == list(range(15))
    assert store.get_run(run).data.params == {"p": "1"}


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_sqlite_run_creations_and_updates_that_queue_together_commit_together(store):
    """Run creations and run updates queued behind another write share one transaction,
    as batches do; one that fails (an unknown experiment, a deleted run) fails alone with
    its own error and the others are made."""
    from sqlalchemy import event

    from tracklog import errors
    from tracklog.entities import RunStatus

    runs = [store.create_run("0", "u", 0).info.run_id for _ in range(3)]
    store.delete_run(runs[2])
    commits: list[int] = []
    event.listen(store.db.engine, "commit", lambda _conn: commits.append(1))

    outcome = _queued_behind_a_write(store, commits, [
        lambda: store.create_run("0", "u", 5, run_name="queued-a"),
        lambda: store.create_run("0", "u", 6, run_name="queued-b"),
        lambda: store.update_run_info(runs[0], RunStatus.FINISHED, 7),
        lambda: store.update_run_info(runs[1], RunStatus.FAILED, 8, "renamed"),
    ])
    assert len(commits) == 2  # the holder's commit, then one for all four together
    created = [store.get_run(outcome[i].info.run_id).info for i in (0, 1)]
    assert [(r.run_name, r.start_time) for r in created] == [("queued-a", 5), ("queued-b", 6)]
    assert (outcome[2].status, outcome[2].end_time) == (RunStatus.FINISHED, 7)
    assert (outcome[3].run_name, outcome[3].status) == ("renamed", RunStatus.FAILED)
    assert store.get_run(runs[1]).data.tags["mlflow.runName"] == "renamed"

    outcome = _queued_behind_a_write(store, commits, [
        lambda: store.create_run("987654", "u", 9),
        lambda: store.create_run("0", "u", 10, run_name="queued-c"),
        lambda: store.update_run_info(runs[2], RunStatus.FINISHED, 11),
        lambda: store.update_run_info(runs[0], None, 12),
    ])
    assert isinstance(outcome[0], errors.TracklogError)
    assert outcome[0].error_code == errors.ErrorCode.RESOURCE_DOES_NOT_EXIST
    assert store.get_run(outcome[1].info.run_id).info.run_name == "queued-c"
    assert isinstance(outcome[2], errors.TracklogError)
    assert store.get_run(runs[2]).info.end_time is None
    assert outcome[3].end_time == 12


def _queued_behind_a_write(store, commits: list[int], calls: list) -> list:
    """Start each of ``calls`` in a thread of its own while this thread holds the store's
    write lock, wait until all of them are queued behind it, then let go. Returns each
    call's result, or the exception it raised; ``commits`` is emptied just before the
    lock is let go, so it then counts the queued calls' commits only."""
    outcome: list = [None] * len(calls)

    def call(i: int) -> None:
        try:
            outcome[i] = calls[i]()
        except BaseException as exc:  # reported to the caller
            outcome[i] = exc

    threads = [threading.Thread(target=call, args=(i,)) for i in range(len(calls))]
    with store.db.write():
        for th in threads:
            th.start()
        deadline = time.monotonic() + 10
        while store.db.writes_waiting() < len(calls) and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.1)  # every writer now waits for the lock
        commits.clear()
    for th in threads:
        th.join(30)
    return outcome


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_sqlite_queued_writes_are_made_by_one_thread_of_the_store(store):
    """Writes that queue behind a held lock are made by the store's writer thread, not
    by the threads that asked for them (which would each take the lock in turn only to
    find their write made); a write with nothing before it is made by its caller."""
    from sqlalchemy import event

    callers: set[int] = set()
    makers: list[int] = []

    def made(_conn, _cursor, statement, *_args) -> None:
        if statement.startswith("INSERT INTO runs"):
            makers.append(threading.get_ident())

    event.listen(store.db.engine, "before_cursor_execute", made)

    def create(i: int):
        callers.add(threading.get_ident())
        return store.create_run("0", "u", i)

    outcome = _queued_behind_a_write(store, [], [functools.partial(create, i) for i in range(6)])
    assert sorted(r.info.start_time for r in outcome) == list(range(6))
    assert len(makers) == 6 and len(set(makers)) == 1
    assert makers[0] not in callers | {threading.get_ident()}

    makers.clear()
    store.create_run("0", "u", 7)
    assert makers == [threading.get_ident()]


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_sqlite_store_closes_with_its_writer_and_still_writes_after(store):
    """Closing stops the writer thread promptly, after the writes handed to it; a write
    after that is made by its caller."""
    outcome = _queued_behind_a_write(store, [], [
        functools.partial(store.create_run, "0", "u", i) for i in range(3)])
    writer = store.db._writer._thread
    assert writer is not None and writer.is_alive()
    started = time.monotonic()
    store.close()
    assert time.monotonic() - started < 5
    assert not writer.is_alive()
    run = store.create_run("0", "u", 9).info.run_id
    assert store.get_run(run).info.start_time == 9
    assert {store.get_run(r.info.run_id).info.start_time for r in outcome} == {0, 1, 2}


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_sqlite_submitted_writes_queue_together_and_stop_with_the_store(store):
    """Writes submitted (not waited for) while the lock is held are made together, in
    one commit, each caller told once; a store closed takes no more."""
    from sqlalchemy import event

    commits: list[int] = []
    event.listen(store.db.engine, "commit", lambda _conn: commits.append(1))
    run_id = store.create_run("0", "u", 1).info.run_id
    told: list = []
    with store.db.write():
        for i in range(20):
            assert store.submit_log_batch(run_id, [Metric("m", float(i), 100 + i, i)], [], [],
                                          lambda r, e: told.append((r, e)))
        time.sleep(0.1)
        assert not told  # none made while the lock is held
        commits.clear()
    deadline = time.monotonic() + 10
    while len(told) < 20 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert told == [(None, None)] * 20
    assert len(commits) == 2  # this thread's, then the twenty's
    assert [m.step for m in store.get_metric_history(run_id, "m")] == list(range(20))

    store.close()
    assert not store.submit_log_batch(run_id, [Metric("m", 1.0, 1, 99)], [], [],
                                      lambda r, e: told.append((r, e)))
    assert not store.submit_create_run("0", "u", 1, [], None, lambda r, e: told.append(e))
    time.sleep(0.1)
    assert len(told) == 20


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_sqlite_grouped_writes_keep_one_connection_until_closed(store):
    """Grouped writes, waited for or queued, are made on one connection held between
    them: no pool checkout per write. Closing the store gives it back."""
    from sqlalchemy import event

    run_id = store.create_run("0", "u", 1).info.run_id
    pool = store.db.engine.pool
    checkouts: list[int] = []
    event.listen(pool, "checkout", lambda *_args: checkouts.append(1))
    told: list = []
    for i in range(5):
        store.log_batch(run_id, [Metric("m", float(i), 10 + i, i)])
        assert store.submit_log_batch(run_id, [Metric("q", float(i), 10 + i, i)], [], [],
                                      lambda r, e: told.append(e))
    deadline = time.monotonic() + 10
    while len(told) < 5 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert told == [None] * 5 and checkouts == []
    assert pool.checkedout() == 1
    assert [m.step for m in store.get_metric_history(run_id, "q")] == list(range(5))
    store.close()
    assert pool.checkedout() == 0


def _told_within(told: list, n: int, seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while len(told) < n and time.monotonic() < deadline:
        time.sleep(0.01)


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_sqlite_write_now_is_made_by_its_caller_when_nothing_else_writes(store):
    """With ``now`` and nothing else writing, the write is made in the caller's thread
    and ``done`` told before the call returns; while a write of another thread holds
    the lock, the same call returns at once and the write waits its turn."""
    run_id = store.create_run("0", "u", 1).info.run_id
    told: list = []

    def done(result, error) -> None:
        told.append((threading.get_ident(), result, error))

    assert store.submit_log_batch(run_id, [Metric("m", 1.0, 10, 1)], [], [], done, now=True)
    assert told == [(threading.get_ident(), None, None)]

    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        with store.db.write():
            held.set()
            release.wait(10)

    holder = threading.Thread(target=hold)
    holder.start()
    assert held.wait(10)
    started = time.monotonic()
    assert store.submit_log_batch(run_id, [Metric("m", 2.0, 20, 2)], [], [], done, now=True)
    assert time.monotonic() - started < 1
    time.sleep(0.1)
    assert len(told) == 1  # queued behind the held lock, not made
    release.set()
    holder.join(10)
    _told_within(told, 2)
    assert told[1][1:] == (None, None) and told[1][0] != threading.get_ident()
    assert [m.step for m in store.get_metric_history(run_id, "m")] == [1, 2]


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_sqlite_write_now_never_waits_for_another_process(store, tmp_path):
    """A connection outside the store (another process, say) holding SQLite's write
    lock: a write asked ``now`` returns at once (SQLite's busy timeout is a minute)
    and is made by the writer thread once the lock is free; the store's connections
    keep their busy timeout, so a write that meets the lock later waits again."""
    import sqlite3

    run_id = store.create_run("0", "u", 1).info.run_id
    path = store.db.engine.url.database
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    told: list = []
    try:
        other.execute("BEGIN IMMEDIATE")
        started = time.monotonic()
        assert store.submit_update_run_info(run_id, None, 77, None,
                                            lambda r, e: told.append((r, e)), now=True)
        assert time.monotonic() - started < 1
        time.sleep(0.2)
        assert told == []
        other.execute("COMMIT")
        _told_within(told, 1)
        assert told[0][1] is None and told[0][0].end_time == 77

        # The lock taken again by the other connection, briefly: a write now waits
        # for it (busy timeout restored) instead of failing.
        other.execute("BEGIN IMMEDIATE")
        threading.Timer(0.3, other.execute, ("COMMIT",)).start()
        store.update_run_info(run_id, end_time=88)
    finally:
        time.sleep(0.4)
        other.close()
    assert store.get_run(run_id).info.end_time == 88
    with store.db.read() as conn:
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 60_000


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_sqlite_read_now_never_waits(store):
    """Inside answering_now, a point read on SQLite answers as any read does, or raises
    WouldWait at once: while another thread makes such a read, and while another
    connection holds the database in exclusive locking mode (SQLite would make the read
    wait a minute). Reads outside keep their busy timeout."""
    import sqlite3

    from tracklog.stores import WouldWait, answering_now

    run_id = store.create_run("0", "u", 1).info.run_id
    with answering_now():
        assert store.get_run(run_id) == store.get_run(run_id)
        assert store.get_experiment_by_name("Default").experiment_id == "0"

    inside, leave = threading.Event(), threading.Event()

    def read_slowly() -> None:
        with answering_now(), store.db.read():
            inside.set()
            leave.wait(10)

    reader = threading.Thread(target=read_slowly)
    reader.start()
    assert inside.wait(10)
    with answering_now(), pytest.raises(WouldWait):
        store.get_experiment("0")
    leave.set()
    reader.join(10)

    # Exclusive locking mode needs every other connection closed to begin with.
    store.db.dispose()
    other = sqlite3.connect(store.db.engine.url.database, isolation_level=None)
    try:
        other.execute("PRAGMA locking_mode=EXCLUSIVE")
        other.execute("BEGIN EXCLUSIVE")
        other.execute("UPDATE runs SET end_time = 5")
        other.execute("COMMIT")  # the lock stays: exclusive mode keeps it
        started = time.monotonic()
        with answering_now(), pytest.raises(WouldWait):
            store.get_run(run_id)
        assert time.monotonic() - started < 1
    finally:
        other.close()
    with answering_now():
        assert store.get_run(run_id).info.end_time == 5
    with store.db.read() as conn:
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 60_000
