"""The SQL store samples long histories for charts inside the database: the points it
keeps are real points, the first and last and every span's extremes among them, and it
gives the core's answer wherever its time spans would not fit the history."""

from __future__ import annotations

import math
import random

from tracklog.entities import Metric
from tracklog.stores import TrackingStore

T0 = 1_700_000_000_000


def _log(store, points: list[Metric]) -> str:
    run = store.create_run("0", "u", T0, run_name="long")
    for i in range(0, len(points), 1000):
        store.log_batch(run.info.run_id, metrics=points[i:i + 1000])
    return run.info.run_id


def _core_way(store, run_id: str, key: str, n: int, start=None, end=None) -> list[Metric]:
    return TrackingStore.sample_metric_history(store, run_id, key, n, start, end)


def test_long_history_keeps_real_points_with_every_extreme(store, backend):
    rnd = random.Random(3)
    # One point a second, with spikes: each must survive the thinning.
    points = [Metric("loss", 1 / (s + 1) + rnd.random() * 0.01, T0 + 1000 * s, s)
              for s in range(20_000)]
    points[7_777] = Metric("loss", 50.0, points[7_777].timestamp, 7_777)
    points[12_345] = Metric("loss", -50.0, points[12_345].timestamp, 12_345)
    points[500] = Metric("loss", math.nan, points[500].timestamp, 500)
    run_id = _log(store, points)

    got = store.sample_metric_history(run_id, "loss", 400)
    if backend == "mysql":  # MariaDB has no LATERAL join: the core's way, whole history
        assert got == _core_way(store, run_id, "loss", 400)
        return

    assert 0.5 * 400 <= len(got) <= 400
    logged = {(p.step, p.timestamp): p.value for p in points}
    assert all(logged[(p.step, p.timestamp)] == p.value for p in got)
    steps = [p.step for p in got]
    assert steps == sorted(steps) and len(set(steps)) == len(steps)
    assert steps[0] == 0 and steps[-1] == 19_999
    assert {7_777, 12_345} <= set(steps)
    assert not any(math.isnan(p.value) for p in got)
    # Each of the 199 equal spans of logging time has its lowest and highest point in
    # the sample.
    spans, covered = (400 - 2) // 2, points[-1].timestamp - T0 + 1
    chosen = {p.step for p in got}
    for i in range(spans):
        lo, hi = T0 + covered * i // spans, T0 + covered * (i + 1) // spans
        inside = [p for p in points if lo <= p.timestamp < hi and not math.isnan(p.value)]
        assert min(inside, key=lambda p: p.value).step in chosen
        assert max(inside, key=lambda p: p.value).step in chosen


def test_short_history_and_step_ranges_give_the_core_answer(store):
    points = [Metric("acc", s / 10, T0 + s, s) for s in range(300)]
    run_id = _log(store, points)
    assert store.sample_metric_history(run_id, "acc", 400) == _core_way(store, run_id, "acc", 400)
    assert (store.sample_metric_history(run_id, "acc", 50, 10, 200)
            == _core_way(store, run_id, "acc", 50, 10, 200))
    assert store.sample_metric_history(run_id, "missing", 50) == []
    assert store.sample_metric_history("0" * 32, "acc", 50) == []


def test_history_packed_into_few_milliseconds_gives_the_core_answer(store):
    # 5,000 points logged within 40 ms: time spans cannot cut it into 200 pieces.
    points = [Metric("lr", math.sin(s / 50), T0 + s // 125, s) for s in range(5_000)]
    run_id = _log(store, points)
    got = store.sample_metric_history(run_id, "lr", 400)
    assert got == _core_way(store, run_id, "lr", 400)
    assert len(got) > 300


def test_bursts_far_apart_give_the_core_answer(store):
    # Two bursts a week apart leave nearly every time span empty.
    first = [Metric("m", float(s % 17), T0 + s, s) for s in range(3_000)]
    second = [Metric("m", float(s % 13), T0 + 7 * 86_400_000 + s, s) for s in range(3_000, 6_000)]
    run_id = _log(store, first + second)
    got = store.sample_metric_history(run_id, "m", 400)
    assert got == _core_way(store, run_id, "m", 400)
