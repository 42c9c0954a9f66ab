"""Stopping store work whose caller has gone.

The server runs a read route's handler in a worker thread with a fresh :class:`Interrupt`
as the current one (a context variable: worker threads get a copy of the caller's
context). When the HTTP client disconnects before the answer, the server fires it. A
store makes its long work stoppable by registering, around that work, a callback that
stops it from another thread::

    with interruptible(connection.cancel):   # e.g. cancel the running SQL statement
        rows = connection.execute(query)

Firing calls every registered callback once; work started after the interrupt fired is
refused with CANCELLED. Outside the server (the SDK, tests) there is no current
interrupt and :func:`interruptible` costs one context-variable lookup.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from tracklog.errors import ErrorCode, TracklogError

__all__ = ["Interrupt", "cancelled", "current", "interruptible", "serving"]

log = logging.getLogger("tracklog.interrupt")


class Interrupt:
    """A one-shot signal from the caller's side to the thread doing its work."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._stops: list[Callable[[], None]] = []
        self.fired = False

    def fire(self) -> None:
        """Stop the registered work (each callback once) and refuse new work.

        Callbacks run under the lock that unregistering takes, so once a block of
        :func:`interruptible` has ended, its callback can no longer be running or start
        (a late cancel would otherwise hit the next statement on that connection).
        """
        with self._lock:
            if self.fired:
                return
            self.fired = True
            for stop in self._stops:
                try:
                    stop()
                except Exception:
                    log.warning("stopping interrupted work failed", exc_info=True)
            self._stops.clear()

    def _register(self, stop: Callable[[], None]) -> bool:
        with self._lock:
            if not self.fired:
                self._stops.append(stop)
                return True
        return False

    def _unregister(self, stop: Callable[[], None]) -> None:
        with self._lock:
            if stop in self._stops:
                self._stops.remove(stop)


_CURRENT: ContextVar[Interrupt | None] = ContextVar("tracklog_interrupt", default=None)


def current() -> Interrupt | None:
    """The interrupt of the request being served in this context, if any."""
    return _CURRENT.get()


@contextmanager
def serving(interrupt: Interrupt) -> Iterator[Interrupt]:
    """Make ``interrupt`` the current one inside the block (the server's side)."""
    token = _CURRENT.set(interrupt)
    try:
        yield interrupt
    finally:
        _CURRENT.reset(token)


def cancelled() -> TracklogError:
    """CANCELLED (HTTP 499): the caller went away before its answer was ready."""
    return TracklogError("The request was cancelled: the client disconnected",
                         ErrorCode.CANCELLED)


@contextmanager
def interruptible(stop: Callable[[], None]) -> Iterator[None]:
    """Register ``stop`` with the current interrupt while the block runs.

    Raises :func:`cancelled` at once if the interrupt has already fired.
    """
    interrupt = _CURRENT.get()
    if interrupt is None:
        yield
        return
    if not interrupt._register(stop):
        raise cancelled()
    try:
        yield
    finally:
        interrupt._unregister(stop)
