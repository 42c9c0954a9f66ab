"""The worker pool route handlers run in: results and errors come back, the caller's
context variables are seen, the limit holds, and a cancelled caller waits for work
already running while work not yet started is dropped."""

from __future__ import annotations

import asyncio
import contextvars
import threading
import time

import pytest

from tracklog.server import threads

VAR: contextvars.ContextVar[str] = contextvars.ContextVar("VAR", default="unset")


def test_results_errors_and_context() -> None:
    async def main() -> None:
        VAR.set("caller's")
        assert await threads.run_sync(lambda a, b: (a + b, VAR.get()), 1, 2) == (3, "caller's")
        assert await threads.run_sync(threading.current_thread) is not \
            threading.current_thread()

        def fails() -> None:
            raise KeyError("inside")

        with pytest.raises(KeyError, match="inside"):
            await threads.run_sync(fails)

        def stops() -> None:
            raise StopIteration

        with pytest.raises(RuntimeError):
            await threads.run_sync(stops)

    asyncio.run(main())


def test_no_more_threads_than_the_limit() -> None:
    running = 0
    most = 0
    lock = threading.Lock()

    def work() -> None:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        time.sleep(0.05)
        with lock:
            running -= 1

    async def main() -> None:
        await asyncio.gather(*(threads.run_sync(work) for _ in range(threads.LIMIT + 20)))

    asyncio.run(main())
    assert most == threads.LIMIT


def test_cancelled_caller_waits_for_running_work_and_drops_the_rest() -> None:
    started = threading.Event()
    release = threading.Event()
    ran: list[str] = []

    def slow() -> None:
        started.set()
        release.wait(10)
        ran.append("slow")

    async def main() -> None:
        task = asyncio.ensure_future(threads.run_sync(slow))
        while not started.is_set():
            await asyncio.sleep(0.01)
        task.cancel()
        await asyncio.sleep(0.1)
        assert not task.done()  # still waiting for the running work
        release.set()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert ran == ["slow"]

        # Every thread busy: a queued call cancelled before it starts never runs.
        gate = threading.Event()
        busy = [asyncio.ensure_future(threads.run_sync(gate.wait, 10))
                for _ in range(threads.LIMIT)]
        await asyncio.sleep(0.1)
        queued = asyncio.ensure_future(threads.run_sync(ran.append, "queued"))
        await asyncio.sleep(0.05)
        queued.cancel()
        with pytest.raises(asyncio.CancelledError):
            await queued  # at once: it was not started
        gate.set()
        await asyncio.gather(*busy)
        await threads.run_sync(lambda: None)  # the queue has been worked through
        assert ran == ["slow"]

    asyncio.run(main())
