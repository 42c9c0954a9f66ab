"""Transactions on the store's engine (built by :mod:`tracklog_store_sql.engines`).

Read and write transactions, SQLite's grouped writes and the writes and reads made on
the server's event loop, stopping a running statement when the caller goes away, and
the outage and timeout errors a client sees.

Limits on what one request may cost live in :mod:`tracklog_store_sql.limits`, schema
revisions and migrations in :mod:`tracklog_store_sql.revisions`.
"""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import StaticPool

from tracklog import errors
from tracklog.interrupt import cancelled, current, interruptible
from tracklog.stores import WouldWait, must_not_wait
from tracklog_store_sql.engines import (
    BUSY_TIMEOUT_PRAGMA,
    NO_BUSY_WAIT_PRAGMA,
    SQLITE_BUSY_TIMEOUT_S,
    create_engine,
    redact,
    scrub,
)
from tracklog_store_sql.limits import (
    RETRY_AFTER_S,
    driver_code,
    is_stopped,
    polling,
    statement_timeout,
    url_sets_timeout,
)
from tracklog_store_sql.writer import GroupWriter, Job

__all__ = ["Database", "create_engine", "is_transient", "redact", "scrub"]

T = TypeVar("T")

#: SQLITE_BUSY and SQLITE_LOCKED, with their extended codes (the low byte).
_SQLITE_BUSY = frozenset(code | ext << 8 for code in (5, 6) for ext in range(8))


def _unreachable() -> errors.TracklogError:
    """A lost or refused database connection: the client retries a 503, and a restarting
    database is back within seconds."""
    return errors.unavailable("The database cannot be reached; retry in a moment",
                              RETRY_AFTER_S)


class Database:
    """An engine plus transaction helpers that are safe to share between threads."""

    def __init__(self, store_uri: str) -> None:
        self.uri = store_uri
        self.engine = create_engine(store_uri)
        self.dialect = self.engine.dialect.name
        self.statement_timeout = statement_timeout()
        self._url_timeout = url_sets_timeout(self.engine.url)
        # One shared in-memory connection (StaticPool) must not be used concurrently.
        self._lock = threading.RLock() if isinstance(self.engine.pool, StaticPool) else None
        # SQLite has one writer at a time. Writers of this process queue here and each
        # starts the moment the previous one commits; on SQLite's own lock they would
        # poll, sleeping up to 100 ms between tries, and the database would sit idle while
        # they sleep. Other processes still meet SQLite's lock and busy timeout.
        self._write_lock = (threading.RLock() if self.dialect == "sqlite" and self._lock is None
                            else None)
        #: The thread that makes grouped writes (see write_grouped).
        self._writer = (GroupWriter("tracklog-sqlite-writer", self._writing, self._write_lock,
                                    self._write_jobs)
                        if self._write_lock is not None else None)
        #: The connection grouped writes are made on, kept between groups (they are made
        #: one group at a time, under the write lock): a pool checkout and return per
        #: group cost about a tenth of a small write's server time.
        self._held: Connection | None = None
        self._held_pid = 0
        self._killer: Engine | None = None
        #: The connection reads made inside ``answering_now`` use (see read): its own
        #: engine, so opening it never waits for the pool; busy timeout 0.
        self._now: Connection | None = None
        self._now_engine: Engine | None = None
        self._now_pid = 0
        self._now_lock = threading.Lock()
        #: Set once the store has opened the database: a connection lost after that is a
        #: passing outage (503), before it a configuration error the store reports itself.
        self.opened = False

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """A write transaction (BEGIN IMMEDIATE on SQLite); commits on success."""
        with self._write_errors(), self._writing(), self._locked(), \
                self._connect() as conn:
            conn.execution_options(tracklog_write=True)
            with conn.begin():
                yield conn

    def write_statement(self, statement: Callable[[Connection], T]) -> T | None:
        """``statement(conn)``, a single statement atomic by itself, made outside a
        transaction on PostgreSQL: psycopg sends BEGIN and COMMIT each in a round trip
        of its own, as many as the statement. Elsewhere None, and nothing is made."""
        if self.dialect != "postgresql":
            return None
        with self._write_errors(), self._connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT")
            return statement(conn)

    @contextmanager
    def _write_errors(self) -> Iterator[None]:
        """A write's driver errors as the client should see them (see _write_error)."""
        try:
            yield
        except sa.exc.DBAPIError as exc:
            mapped = self._write_error(exc)
            if mapped is exc:
                raise
            raise mapped from None

    def _write_error(self, exc: sa.exc.DBAPIError) -> BaseException:
        if exc.connection_invalidated and self.opened:
            return _unreachable()
        if not is_stopped(exc):
            return exc
        return errors.unavailable(
            f"A write took longer than the statement timeout of {self._timeout_text()} "
            "and was rolled back; retry later", RETRY_AFTER_S
        )

    def write_grouped(self, work: Callable[[Connection], T]) -> T:
        """``work(conn)`` in a write transaction, which on SQLite it may share with the
        writes other threads of this process hand over meanwhile: one thread per
        database (:mod:`tracklog_store_sql.writer`) takes the write lock and makes every
        write queued by then in one transaction and one commit, instead of a
        transaction, a commit and a lock hand-over each. If any of them fails, that
        transaction is rolled back and each is made again in its own, so a write fails
        or succeeds as it would alone. ``work`` must be safe to run again after a
        rollback, and keep its effects outside the database until it has returned; it
        runs in another thread (without the caller's context variables)."""
        if self._writer is None:
            with self.write() as conn:
                return work(conn)
        return self._writer.run(work)

    @property
    def queues_writes(self) -> bool:
        """Whether :meth:`submit_grouped` may queue writes (SQLite, not an in-memory
        database)."""
        return self._writer is not None

    def submit_grouped(self, work: Callable[[Connection], T],
                       done: Callable[[T | None, BaseException | None], None],
                       now: bool = False) -> bool:
        """:meth:`write_grouped` without waiting: ``work`` is queued for the writer
        thread, which calls ``done(result, error)`` once its group is committed or has
        failed. False, with nothing queued, where there is no writer thread (off SQLite,
        or once closed). With ``now``, the write is made in the caller's thread instead
        when that needs no waiting (:meth:`_write_now`), and ``done`` called before this
        returns."""
        if self._writer is None:
            return False
        if now and self._write_now(work, done):
            return True
        return self._writer.submit(work, done)

    def _write_now(self, work: Callable[[Connection], T],
                   done: Callable[[T | None, BaseException | None], None]) -> bool:
        """``work`` made here, on the held connection, if no write of this process is
        queued or in progress and SQLite's lock is free at once (another process may
        hold it: no busy wait here); then ``done`` is told and True returned. False,
        with nothing made, otherwise."""
        writer = self._writer
        if writer is None or not writer.take_idle():
            return False
        result: T | None = None
        error: BaseException | None = None
        try:
            try:
                held = self._held_connection()
                dbapi = held.connection.dbapi_connection
                assert dbapi is not None, "a held connection has its DBAPI connection"
                dbapi.execute(NO_BUSY_WAIT_PRAGMA)
                try:
                    transaction = held.begin()  # BEGIN IMMEDIATE
                finally:
                    dbapi.execute(BUSY_TIMEOUT_PRAGMA)
            except sa.exc.DBAPIError:
                return False  # locked elsewhere (or failing): the writer thread's to meet
            try:
                with self._write_errors(), transaction:  # committed, or rolled back
                    result = work(held)
            except Exception as exc:
                error = exc
        finally:
            writer.release_idle()
        done(result, error)
        return True

    def writes_waiting(self) -> int:
        """Grouped writes handed over and not yet made (0 off SQLite)."""
        return 0 if self._writer is None else self._writer.waiting

    def _write_jobs(self, jobs: list[Job]) -> None:
        # Always under the write lock (see GroupWriter).
        if len(jobs) > 1:
            try:
                with self._held_write() as conn:
                    results = [job.work(conn) for job in jobs]
            except Exception:
                pass  # rolled back: each again on its own, below
            else:
                for job, result in zip(jobs, results, strict=True):
                    job.result, job.done = result, True
                return
        for job in jobs:
            try:
                with self._held_write() as conn:
                    job.result = job.work(conn)
            except Exception as exc:
                job.error = exc
            job.done = True

    @contextmanager
    def _held_write(self) -> Iterator[Connection]:
        """:meth:`write` on the held connection; only under the write lock."""
        if self._writer is None or self._writer.closed:  # closed: writes as any other
            with self.write() as pooled:
                yield pooled
            return
        with self._write_errors():
            held = self._held_connection()
            with held.begin():
                yield held

    def _held_connection(self) -> Connection:
        """The connection grouped writes are made on; only under the write lock."""
        held = self._held
        if (held is None or held.closed or held.invalidated
                or self._held_pid != os.getpid()):  # a forked process opens its own
            held = self._held = self._checkout()
            self._held_pid = os.getpid()
            held.execution_options(tracklog_write=True)
        return held

    @property
    def reads_now(self) -> bool:
        """Whether :meth:`read` answers inside ``answering_now`` (a SQLite file)."""
        return self._writer is not None

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A read-only transaction (committed at the end on PostgreSQL, else rolled
        back). Inside a server request it is interruptible: when the client disconnects,
        the running statement is stopped and the connection goes back to the pool.
        Inside ``tracklog.stores.answering_now`` it waits for nothing: see
        :meth:`_read_now`."""
        if must_not_wait():
            with self._read_now() as conn:
                yield conn
            return
        try:
            with self._locked(), self._connect() as conn:
                interrupt = current()
                if interrupt is None:
                    yield conn
                elif self.dialect == "sqlite":
                    with polling(conn.connection.dbapi_connection, interrupt):
                        yield conn
                else:
                    with interruptible(self._stopper(conn)):
                        yield conn
                if self.dialect == "postgresql" and conn.in_transaction():
                    # psycopg forgets its prepared statements on every ROLLBACK: ending
                    # reads with one meant no statement was ever prepared, and each was
                    # planned anew (1.4 ms of a run search's 9).
                    conn.commit()
        except sa.exc.DBAPIError as exc:
            if exc.connection_invalidated and self.opened:
                raise _unreachable() from None
            if not is_stopped(exc):
                raise
            interrupt = current()
            if interrupt is not None and interrupt.fired:
                raise cancelled() from None
            raise errors.invalid(
                f"The query ran longer than the statement timeout of {self._timeout_text()} "
                "and was stopped; narrow the search (a more selective filter, fewer "
                "experiments or a smaller page)"
            ) from None

    @contextmanager
    def _read_now(self) -> Iterator[Connection]:
        """A read on a connection of its own with SQLite's busy timeout at 0, for the
        server's event loop: WouldWait, nothing read, if that connection is in use or
        SQLite would make the read wait (a lock held in exclusive mode, a recovery)."""
        if not self.reads_now or not self._now_lock.acquire(blocking=False):
            raise WouldWait
        try:
            try:
                conn = self._now_connection()
                with conn.begin():
                    yield conn
            except sa.exc.OperationalError as exc:
                if getattr(exc.orig, "sqlite_errorcode", None) in _SQLITE_BUSY:
                    raise WouldWait from None
                raise
        finally:
            self._now_lock.release()

    def _now_connection(self) -> Connection:
        conn = self._now
        if (conn is None or conn.closed or conn.invalidated
                or self._now_pid != os.getpid()):  # a forked process opens its own
            if self._now_engine is None or self._now_pid != os.getpid():
                self._now_engine = create_engine(self.uri, pooled=False, busy_wait=False)
                self._now_pid = os.getpid()
            conn = self._now = self._now_engine.connect()
        return conn

    def _timeout_text(self) -> str:
        if self._url_timeout:
            return "the database URL"
        return f"{self.statement_timeout:g} s"

    def _checkout(self) -> Connection:
        try:
            return self.engine.connect()
        except sa.exc.TimeoutError:
            raise errors.unavailable(
                "Every database connection is busy; retry in a moment", RETRY_AFTER_S
            ) from None
        except sa.exc.DBAPIError:
            if not self.opened:
                raise
            raise _unreachable() from None  # the server is down or restarting

    @contextmanager
    def _connect(self) -> Iterator[Connection]:
        with self._checkout() as conn:
            yield conn

    def _stopper(self, conn: Connection) -> Callable[[], None]:
        """A callable that stops the statement ``conn`` is running, from another thread."""
        dbapi_conn = conn.connection.dbapi_connection
        assert dbapi_conn is not None, "a checked-out connection has its DBAPI connection"
        if self.dialect == "postgresql":
            return getattr(dbapi_conn, "cancel_safe", None) or dbapi_conn.cancel
        if self.dialect in ("mysql", "mariadb"):
            return functools.partial(self._kill_query, dbapi_conn.thread_id())
        return lambda: None

    def _kill_query(self, thread_id: int) -> None:
        # A connection of its own: the pool may have none to spare.
        if self._killer is None:
            self._killer = create_engine(self.uri, pooled=False)
        with self._killer.connect() as conn:
            conn.exec_driver_sql(f"KILL QUERY {int(thread_id)}")

    @contextmanager
    def _writing(self) -> Iterator[None]:
        lock = self._write_lock
        # Bounded like SQLite's busy timeout; past it the write goes on to meet SQLite's
        # lock, which answers as it always does.
        if lock is None or not lock.acquire(timeout=SQLITE_BUSY_TIMEOUT_S):
            yield
            return
        try:
            yield
        finally:
            lock.release()

    @contextmanager
    def _locked(self) -> Iterator[None]:
        if self._lock is None:
            yield
        else:
            with self._lock:
                yield

    def dispose(self) -> None:
        with self._now_lock:
            if self._now_engine is not None and self._now_pid == os.getpid():
                if self._now is not None:
                    self._now.close()
                self._now_engine.dispose()
            self._now = self._now_engine = None
        if self._writer is not None:
            self._writer.close()
            held = self._held
            if held is not None and self._held_pid == os.getpid():
                with self._writing():
                    held.close()
            self._held = None
        self.engine.dispose()
        if self._killer is not None:
            self._killer.dispose()


#: Driver error codes of transient conflicts worth retrying: PostgreSQL deadlock and
#: serialization failure, MySQL deadlock and lock wait timeout.
_RETRYABLE = {"40P01", "40001", 1213, 1205}


def is_transient(exc: BaseException) -> bool:
    """A deadlock or serialization failure: the whole transaction may simply be rerun."""
    return driver_code(exc) in _RETRYABLE
