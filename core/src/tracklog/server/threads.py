"""Running a request's blocking work in a worker thread.

``anyio.to_thread.run_sync`` costs about 50 µs of the event loop's time per call (its
limiter, cancel scope and worker hand-over); a ``ThreadPoolExecutor`` future costs about
20. Every JSON route makes at least one such call, so the route handlers use this pool.
It keeps what anyio gives them: the same limit of 40 threads (calls beyond it wait their
turn), the caller's context variables in the thread, and a cancelled caller that still
waits for work already running (a store call is never left running unowned).
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")

#: anyio's default thread limit.
LIMIT = 40

_pool = ThreadPoolExecutor(LIMIT, thread_name_prefix="tracklog-worker")


async def run_sync(fn: Callable[..., T], *args: Any) -> T:
    """``fn(*args)`` in a worker thread, in a copy of the caller's context."""
    work = _pool.submit(contextvars.copy_context().run, fn, *args)
    try:
        return await asyncio.wrap_future(work)
    except asyncio.CancelledError:
        # Not started yet: wrap_future has cancelled it. Running: wait for its end.
        while not work.done():
            try:
                await asyncio.wrap_future(work)
            except asyncio.CancelledError:
                continue
            except Exception:
                break
        raise
