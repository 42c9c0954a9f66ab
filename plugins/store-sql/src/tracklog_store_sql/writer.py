"""One thread per SQLite database that makes the grouped writes of its process.

Request threads hand their write to it and wait. It takes the write lock, then every
write queued by then, and makes them in one transaction (see
:meth:`tracklog_store_sql.db.Database.write_grouped`). Before it, the thread that took
the lock made the writes of the others, which then each had to take the lock in turn
only to see theirs made: a chain of thread switches between two transactions, and as
many threads running SQLite statements, each releasing and retaking the GIL.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

from tracklog import errors

log = logging.getLogger(__name__)


class Job:
    """One write; ``done`` once its result or error is set. Its caller either waits for
    it or is told by ``callback(result, error)``."""

    __slots__ = ("work", "result", "error", "done", "_finished", "_callback")

    def __init__(self, work: Callable[[Any], Any],
                 callback: Callable[[Any, BaseException | None], None] | None = None) -> None:
        self.work = work
        self.result: Any = None
        self.error: BaseException | None = None
        self.done = False
        self._callback = callback
        self._finished = threading.Lock()
        if callback is None:
            self._finished.acquire()  # released by finish(): wait() returns

    def finish(self) -> None:
        if not self.done:  # stopped before it was made: nobody waits for ever
            self.error, self.done = errors.TracklogError("The write was not made; retry it"), True
        callback = self._callback
        if callback is None:
            self._finished.release()
            return
        try:
            callback(self.result, self.error)
        except Exception:  # the caller's to report; the writer serves the others
            log.exception("a queued write's callback failed")

    def wait(self) -> Any:
        self._finished.acquire()
        if self.error is not None:
            raise self.error
        return self.result


class GroupWriter:
    """Makes the writes given to :meth:`run` in a thread of its own, in groups: each
    group under ``locked()``, by ``write(jobs)``, which sets every job's outcome. When
    no write waits and the write lock (the lock ``locked`` takes) is ``free``, the
    caller makes its write itself."""

    def __init__(self, name: str, locked: Callable[[], AbstractContextManager[Any]],
                 free: threading.RLock, write: Callable[[list[Job]], None]) -> None:
        self.name = name
        self._locked = locked
        self._free = free
        self._write = write
        self._queue: queue.SimpleQueue[Job | None] = queue.SimpleQueue()
        self._lock = threading.Lock()  # guards starting, stopping and queueing
        self._thread: threading.Thread | None = None
        self._pid = 0
        self._closed = False
        #: Writes handed over and not yet made (for tests that line writes up).
        self.waiting = 0

    @property
    def closed(self) -> bool:
        return self._closed

    def take_idle(self) -> bool:
        """Take the write lock if no write is queued and the lock is free, for a write
        the caller makes itself (writes arriving meanwhile queue for the thread, behind
        the lock); release it with :meth:`release_idle`. False, nothing taken, if not."""
        with self._lock:
            return self._take_if_idle()

    def _take_if_idle(self) -> bool:
        # Under self._lock: nothing queued and the lock free (taken if so).
        return not self._closed and not self.waiting and self._free.acquire(blocking=False)

    def release_idle(self) -> None:
        self._free.release()

    def run(self, work: Callable[[Any], Any]) -> Any:
        """``work``'s result once its group is committed, or its error."""
        job = Job(work)
        with self._lock:
            closed = self._closed
            # Nothing waits and the lock is free: made here, without a thread switch
            # (writes arriving meanwhile queue for the thread, behind the lock).
            alone = self._take_if_idle()
            if not closed and not alone:
                if self._thread is None or self._pid != os.getpid():
                    self._start()  # first use, or a process forked from ours
                self.waiting += 1
                self._queue.put(job)
        if alone:
            try:
                self._write([job])
            finally:
                self._free.release()
                job.finish()
            return job.wait()
        if not closed:
            return job.wait()
        # Closed: the write is made here, alone, as any other write.
        try:
            with self._locked():
                self._write([job])
        finally:
            job.finish()
        return job.wait()

    def submit(self, work: Callable[[Any], Any],
               callback: Callable[[Any, BaseException | None], None]) -> bool:
        """Queue ``work`` for the thread and return at once; ``callback(result, error)``
        is called from the thread once its group is committed or has failed. False
        (nothing queued) once closed."""
        with self._lock:
            if self._closed:
                return False
            if self._thread is None or self._pid != os.getpid():
                self._start()
            self.waiting += 1
            self._queue.put(Job(work, callback))
        return True

    def close(self, timeout: float = 10.0) -> None:
        """Stop the thread once the writes handed over are made."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            thread = self._thread if self._pid == os.getpid() else None
            if thread is not None:
                self._queue.put(None)
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def _start(self) -> None:
        self._queue = queue.SimpleQueue()
        self._pid = os.getpid()
        self.waiting = 0
        self._thread = threading.Thread(target=self._serve, args=(self._queue,),
                                        name=self.name, daemon=True)
        self._thread.start()

    def _serve(self, jobs_queue: queue.SimpleQueue[Job | None]) -> None:
        while True:
            first = jobs_queue.get()
            if first is None:
                return
            jobs = [first]
            stop = False
            try:
                with self._locked():
                    # Whatever queued while the lock was held goes in the same group.
                    while True:
                        try:
                            job = jobs_queue.get_nowait()
                        except queue.Empty:
                            break
                        if job is None:
                            stop = True
                            break
                        jobs.append(job)
                    self._write(jobs)
            except BaseException:  # noqa: S110 - each job below reports it was not made
                pass
            finally:
                with self._lock:
                    self.waiting -= len(jobs)
                for job in jobs:
                    job.finish()
            if stop:
                return

