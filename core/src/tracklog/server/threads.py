"""Running a request's blocking work in a worker thread.

``anyio.to_thread.run_sync`` costs about 50 µs of the event loop's time per call (its
limiter, cancel scope and worker hand-over), a ``ThreadPoolExecutor`` future chained to
an asyncio one about 20; this pool hands the work over on a queue and the result back
with one ``call_soon_threadsafe``. Every JSON route makes at least one such call.
It keeps what anyio gives the routes: a limit of 40 threads (calls beyond it wait their
turn), the caller's context variables in the thread, and a cancelled caller that still
waits for work already running (a store call is never left running unowned); work not
yet started when its caller is cancelled is dropped (and the caller does not wait).
"""

from __future__ import annotations

import asyncio
import contextvars
import queue
import threading
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

#: anyio's default thread limit.
LIMIT = 40


class _Work:
    __slots__ = ("loop", "future", "context", "fn", "args", "taken", "finished", "waiter")

    def __init__(self, loop: asyncio.AbstractEventLoop, fn: Callable[..., Any],
                 args: tuple[Any, ...]) -> None:
        self.loop = loop
        self.future = loop.create_future()
        self.context = contextvars.copy_context()
        self.fn = fn
        self.args = args
        self.taken = False  # set by the worker before it looks at ``future``
        self.finished = False  # set on the loop's thread once the worker is done with it
        self.waiter: asyncio.Future[None] | None = None

    def settle(self, result: Any, error: BaseException | None) -> None:
        """On the loop's thread: hand the outcome to the caller."""
        self.finished = True
        future = self.future
        if not future.done():
            if error is None:
                future.set_result(result)
            else:
                future.set_exception(error)
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)


class _Pool:
    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.queue: queue.SimpleQueue[_Work] = queue.SimpleQueue()
        self.lock = threading.Lock()
        self.threads = 0
        self.idle = 0  # threads waiting for work
        self.queued = 0  # work not yet taken by a thread

    def submit(self, work: _Work) -> None:
        with self.lock:
            self.queued += 1
            spawn = self.queued > self.idle and self.threads < self.limit
            if spawn:
                self.threads += 1
        self.queue.put(work)
        if spawn:
            threading.Thread(target=self._worker, daemon=True,
                             name=f"tracklog-worker-{self.threads}").start()

    def _worker(self) -> None:
        get = self.queue.get
        while True:
            with self.lock:
                self.idle += 1
            work = get()
            with self.lock:
                self.idle -= 1
                self.queued -= 1
            work.taken = True
            result: Any = None
            error: BaseException | None = None
            if work.future.cancelled():  # its caller has gone: never started
                pass
            else:
                try:
                    result = work.context.run(work.fn, *work.args)
                except StopIteration as exc:  # an asyncio future refuses to carry it
                    error = RuntimeError("worker raised StopIteration")
                    error.__cause__ = exc
                except BaseException as exc:
                    error = exc
            try:
                work.loop.call_soon_threadsafe(work.settle, result, error)
            except RuntimeError:  # the loop has closed: nobody waits
                pass
            del work, result, error


_pool = _Pool(LIMIT)


async def run_sync(fn: Callable[..., T], *args: Any) -> T:
    """``fn(*args)`` in a worker thread, in a copy of the caller's context."""
    work = _Work(asyncio.get_running_loop(), fn, args)
    _pool.submit(work)
    try:
        return await work.future
    except asyncio.CancelledError:
        # Not taken yet: the worker will find it cancelled and drop it. Taken: it may be
        # running, so wait for the worker to be done with it.
        if work.taken and not work.finished:
            work.waiter = work.loop.create_future()
            while not work.waiter.done():
                try:
                    await asyncio.shield(work.waiter)
                except asyncio.CancelledError:
                    continue
        raise


def _settle(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if future.done():  # its caller has gone
        return
    if error is None:
        future.set_result(result)
    else:
        future.set_exception(error)


def settler(future: asyncio.Future[Any]) -> Callable[[Any, BaseException | None], None]:
    """A callable for any thread that hands ``(result, error)`` to ``future`` on its
    loop (a store's queued write reports through it). Made on the loop's thread."""
    loop = future.get_loop()
    loop_thread = threading.get_ident()  # made on the loop's thread

    def done(result: Any, error: BaseException | None) -> None:
        if threading.get_ident() == loop_thread:  # told at once, on the loop itself
            _settle(future, result, error)
            return
        try:
            loop.call_soon_threadsafe(_settle, future, result, error)
        except RuntimeError:  # the loop has closed: nobody waits
            pass

    return done
