"""Writes handed over without waiting (:class:`tracklog.stores.QueuedWrites`), and writes
and point reads made at once when nothing would make them wait."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from functools import partial
from typing import Any

from tracklog.entities import Metric, Param, RunStatus, RunTag
from tracklog.errors import ErrorCode, TracklogError
from tracklog.stores import QueuedWrites, TrackingStore

from ._base import KitBase, error_code, new_experiment, new_run, points, requires

#: Seconds a queued write may take to be reported.
REPORTED_WITHIN = 30.0


class Outcome:
    """Collects what ``done`` is told; fails a test that is told twice. ``look``, if
    given, is called when ``done`` is first told (in the store's thread)."""

    def __init__(self, look: Callable[[], Any] | None = None) -> None:
        self.calls: list[tuple[Any, BaseException | None]] = []
        self._told = threading.Event()
        self._look = look
        #: What ``look()`` returned when ``done`` was told: the write must be visible then.
        self.seen: Any = None

    def __call__(self, result: Any, error: BaseException | None) -> None:
        if self._look is not None and not self.calls:
            self.seen = self._look()
        self.calls.append((result, error))
        self._told.set()

    def wait(self) -> tuple[Any, BaseException | None]:
        assert self._told.wait(REPORTED_WITHIN), "done was never called"
        time.sleep(0.05)  # a second call, if any, would come now
        assert len(self.calls) == 1, f"done was called {len(self.calls)} times"
        return self.calls[0]


def submitted(submit: Callable[[Outcome], bool], outcome: Outcome | None = None
              ) -> tuple[Any, BaseException | None] | None:
    """``submit``'s outcome once told; None when the store declined it (False), after
    checking it never calls ``done`` then. An error raised at once is returned too."""
    outcome = outcome or Outcome()
    try:
        queued = submit(outcome)
    except TracklogError as exc:
        assert not outcome.calls, "raised and also told done"
        return None, exc
    if not queued:
        time.sleep(0.1)
        assert not outcome.calls, "declined (False) but told done"
        return None
    return outcome.wait()


def code_of(error: BaseException | None) -> ErrorCode | None:
    assert error is None or isinstance(error, TracklogError), repr(error)
    return None if error is None else error.error_code


@requires("queued_writes")
class QueuedWriteTests(KitBase):
    """A queued write lands exactly as the synchronous one would, and its caller is told
    once: the result, or the error the synchronous method raises."""

    def test_queued_batch_reads_back(self, store: TrackingStore) -> None:
        """Metrics, params and tags of a queued batch read back; ``done`` told (None, None)."""
        assert isinstance(store, QueuedWrites)
        run_id = new_run(store, new_experiment(store)).info.run_id
        outcome = Outcome(lambda: store.get_run(run_id).data.params)
        told = submitted(lambda done: store.submit_log_batch(
            run_id, [Metric("m", 0.5, 1000, 1), Metric("m", 1.5, 1001, 2)],
            [Param("p", "v")], [RunTag("t", "w")], done), outcome)
        if told is None:
            assert store.get_run(run_id).data.params == {}
            return
        assert told == (None, None)
        assert outcome.seen == {"p": "v"}, "done was told before the write could be read"
        run = store.get_run(run_id)
        assert run.data.params == {"p": "v"}
        assert run.data.tags["t"] == "w"
        assert run.data.metrics["m"].value == 1.5
        assert points(store.get_metric_history(run_id, "m")) == [(1000, 1, 0.5), (1001, 2, 1.5)]

    def test_queued_errors_are_the_synchronous_ones(self, store: TrackingStore) -> None:
        """A missing run, a deleted run and a param conflict: ``done`` is told the code
        ``log_batch`` raises, and nothing of the batch is written."""
        assert isinstance(store, QueuedWrites)
        exp_id = new_experiment(store)
        run_id = new_run(store, exp_id).info.run_id
        store.log_batch(run_id, params=[Param("p", "first")])
        deleted = new_run(store, exp_id).info.run_id
        store.delete_run(deleted)
        cases = [
            ("0" * 32, [Metric("m", 1.0, 1, 0)], []),  # no such run
            (deleted, [Metric("m", 1.0, 1, 0)], []),  # deleted
            (run_id, [Metric("m", 1.0, 1, 0)], [Param("p", "other")]),  # param conflict
        ]
        for target, metrics, params in cases:
            expected = error_code(partial(store.log_batch, target, metrics, params))
            assert expected is not None
            told = submitted(partial(store.submit_log_batch, target, metrics, params, []))
            if told is not None:
                assert told[0] is None
                assert code_of(told[1]) == expected, (target, told)
        # Nothing of the refused batches was written.
        assert store.get_metric_history(run_id, "m") == []
        assert store.get_run(run_id).data.params == {"p": "first"}

    def test_queued_create_and_update(self, store: TrackingStore) -> None:
        """The run and run info ``done`` is told equal ``get_run``'s; errors as the
        synchronous calls'."""
        assert isinstance(store, QueuedWrites)
        exp_id = new_experiment(store)
        told = submitted(lambda done: store.submit_create_run(
            exp_id, "someone", 1234, [RunTag("t", "v")], "named", done))
        if told is None:
            return
        run, error = told
        assert error is None
        stored = store.get_run(run.info.run_id)
        assert stored.info == run.info
        assert (run.info.run_name, run.info.user_id, run.info.start_time) == \
            ("named", "someone", 1234)
        assert stored.data.tags["t"] == "v"

        info, error = submitted(lambda done: store.submit_update_run_info(
            run.info.run_id, RunStatus.FINISHED, 5678, None, done)) or (None, None)
        assert error is None
        assert info == store.get_run(run.info.run_id).info
        assert (info.status, info.end_time) == (RunStatus.FINISHED, 5678)

        missing = error_code(lambda: store.update_run_info("0" * 32, RunStatus.FAILED, 1))
        _none, error = submitted(lambda done: store.submit_update_run_info(
            "0" * 32, RunStatus.FAILED, 1, None, done)) or (None, None)
        assert code_of(error) == missing
        _none, error = submitted(lambda done: store.submit_create_run(
            "987654321", "someone", 1, [], None, done)) or (None, None)
        assert code_of(error) == error_code(
            lambda: store.create_run("987654321", "someone", 1))

    def test_many_queued_from_one_thread(self, store: TrackingStore) -> None:
        """One caller queues hundreds of writes without waiting between them, as a
        server's event loop does; a refused one among them costs the others nothing."""
        assert isinstance(store, QueuedWrites)
        exp_id = new_experiment(store)
        run_id = new_run(store, exp_id).info.run_id
        deleted = new_run(store, exp_id).info.run_id
        store.delete_run(deleted)
        outcomes: list[tuple[int, Outcome]] = []
        for i in range(300):
            outcome = Outcome()
            target = deleted if i % 50 == 7 else run_id
            if not store.submit_log_batch(target, [Metric("m", float(i), 10_000 + i, i)],
                                          [], [], outcome):
                assert not outcomes, "declined a write after queuing others"
                time.sleep(0.1)
                assert not outcome.calls, "declined (False) but told done"
                return  # this store does not queue writes here (another database, say)
            outcomes.append((i, outcome))
        landed = []
        for i, outcome in outcomes:
            result, error = outcome.wait()
            assert result is None
            if i % 50 == 7:
                assert code_of(error) == ErrorCode.INVALID_PARAMETER_VALUE
            else:
                assert error is None, (i, error)
                landed.append((10_000 + i, i, float(i)))
        assert points(store.get_metric_history(run_id, "m")) == landed
        assert store.get_metric_history(deleted, "m") == []

    def test_writes_made_now_are_the_queued_ones(self, store: TrackingStore) -> None:
        """With ``now`` (a store whose ``writes_now`` is True): a batch, a creation and
        an update land as queued ones do, errors are the synchronous ones, and ``done``
        is told once, the write readable by then, whether it was made at once or
        queued."""
        assert isinstance(store, QueuedWrites)
        if not store.writes_now:
            return
        exp_id = new_experiment(store)
        created = submitted(lambda done: store.submit_create_run(
            exp_id, "someone", 1234, [RunTag("t", "v")], "now", done, now=True))
        if created is None:
            return  # this store does not queue writes here (another database, say)
        run, error = created
        assert error is None
        run_id = run.info.run_id
        assert store.get_run(run_id).info == run.info
        outcome = Outcome(lambda: store.get_run(run_id).data.params)
        told = submitted(lambda done: store.submit_log_batch(
            run_id, [Metric("m", 0.5, 1000, 1)], [Param("p", "v")], [RunTag("u", "w")],
            done, now=True), outcome)
        assert told == (None, None)
        assert outcome.seen == {"p": "v"}, "done was told before the write could be read"
        info, error = submitted(lambda done: store.submit_update_run_info(
            run_id, RunStatus.FINISHED, 5678, None, done, now=True)) or (None, None)
        assert error is None
        assert info == store.get_run(run_id).info
        assert (info.status, info.end_time) == (RunStatus.FINISHED, 5678)
        run = store.get_run(run_id)
        assert run.data.tags["t"] == "v" and run.data.tags["u"] == "w"
        assert points(store.get_metric_history(run_id, "m")) == [(1000, 1, 0.5)]

        conflict = error_code(lambda: store.log_batch(run_id, params=[Param("p", "x")]))
        _none, error = submitted(lambda done: store.submit_log_batch(
            run_id, [Metric("m", 9.0, 2000, 2)], [Param("p", "x")], [], done,
            now=True)) or (None, None)
        assert conflict is not None and code_of(error) == conflict
        assert points(store.get_metric_history(run_id, "m")) == [(1000, 1, 0.5)]
        missing = error_code(lambda: store.update_run_info("0" * 32, RunStatus.FAILED, 1))
        _none, error = submitted(lambda done: store.submit_update_run_info(
            "0" * 32, RunStatus.FAILED, 1, None, done, now=True)) or (None, None)
        assert code_of(error) == missing


class ReadNowTests(KitBase):
    """Point reads inside ``answering_now`` (a store whose ``reads_now`` is True)."""

    def test_reads_now_are_the_ordinary_ones(self, store: TrackingStore) -> None:
        """``get_run``, ``get_experiment`` and ``get_experiment_by_name`` answer inside
        ``answering_now`` as outside (or raise WouldWait), errors included."""
        from tracklog.stores import WouldWait, answering_now

        if not store.reads_now:
            return
        exp_id = new_experiment(store)
        run_id = new_run(store, exp_id).info.run_id
        store.log_batch(run_id, [Metric("m", 1.5, 7, 1)], [Param("p", "v")], [RunTag("t", "w")])
        name = store.get_experiment(exp_id).name
        calls: list[Callable[[], Any]] = [
            partial(store.get_run, run_id), partial(store.get_experiment, exp_id),
            partial(store.get_experiment_by_name, name),
            partial(store.get_experiment_by_name, "no such experiment"),
        ]
        for call in calls:
            try:
                with answering_now():
                    now = call()
            except WouldWait:
                continue
            assert now == call()
        for call in (partial(store.get_run, "0" * 32), partial(store.get_experiment, "98765")):
            expected = error_code(call)
            assert expected is not None
            try:
                with answering_now():
                    got = error_code(call)
            except WouldWait:
                continue
            assert got == expected
