"""tracklog.interrupt: how a request's interrupt reaches the store work it started."""

from __future__ import annotations

import contextvars
import threading

import pytest

from tracklog.errors import ErrorCode, TracklogError
from tracklog.interrupt import Interrupt, current, interruptible, serving


def test_without_a_request_nothing_is_registered():
    assert current() is None
    with interruptible(lambda: pytest.fail("no interrupt to fire")):
        pass


def test_fire_stops_registered_work_once_and_refuses_new_work():
    stopped: list[str] = []
    interrupt = Interrupt()
    with serving(interrupt):
        with interruptible(lambda: stopped.append("a")):
            interrupt.fire()
            interrupt.fire()
        assert stopped == ["a"]
        with pytest.raises(TracklogError) as err:
            with interruptible(lambda: stopped.append("b")):
                pass
    assert err.value.error_code is ErrorCode.CANCELLED
    assert err.value.http_status == 499
    assert stopped == ["a"] and current() is None


def test_finished_work_is_not_stopped():
    stopped: list[str] = []
    interrupt = Interrupt()
    with serving(interrupt):
        with interruptible(lambda: stopped.append("done")):
            pass
    interrupt.fire()
    assert stopped == []


def test_the_interrupt_follows_the_context_into_a_worker_thread():
    interrupt = Interrupt()
    seen: list[Interrupt | None] = []
    with serving(interrupt):
        context = contextvars.copy_context()  # what the server's thread pool does
    worker = threading.Thread(target=context.run, args=(lambda: seen.append(current()),))
    worker.start()
    worker.join()
    assert seen == [interrupt]
