"""Several threads writing through one store object."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from tracklog.entities import Metric, Param, RunTag
from tracklog.stores import TrackingStore

from ._base import KitBase, new_experiment, new_run, points, requires

THREADS = 4
#: Real threads: a store whose driver releases the GIL (SQL drivers do) runs them at once.
BATCH_THREADS = 8
BATCHES = 6


class ConcurrencyTests(KitBase):
    """The server shares one store between request threads; no write may get lost."""

    @requires("concurrent_writers")
    def test_concurrent_writes(self, store: TrackingStore) -> None:
        """Threads creating runs and logging to a shared run lose nothing and mix nothing."""
        exp_id = new_experiment(store)
        shared = new_run(store, exp_id).info.run_id

        def work(worker: int) -> list[str]:
            own = []
            for i in range(5):
                run_id = store.create_run(exp_id, f"w{worker}", 1000 + i).info.run_id
                store.log_batch(run_id, metrics=[Metric("m", float(worker), 1, i)],
                                params=[Param("worker", str(worker))])
                store.log_metric(shared, Metric("shared", float(worker * 10 + i), 100 + i, i))
                own.append(run_id)
            return own

        with ThreadPoolExecutor(THREADS) as pool:
            results = list(pool.map(work, range(THREADS)))
        for worker, run_ids in enumerate(results):
            for run_id in run_ids:
                run = store.get_run(run_id)
                assert run.info.user_id == f"w{worker}"
                assert run.data.params == {"worker": str(worker)}
                assert run.data.metrics["m"].value == float(worker)
        assert len(store.search_runs([exp_id], max_results=100)) == THREADS * 5 + 1
        expected = sorted((100 + i, i, float(w * 10 + i)) for w in range(THREADS)
                          for i in range(5))
        assert points(store.get_metric_history(shared, "shared")) == expected

    @requires("concurrent_writers")
    def test_concurrent_batches(self, store: TrackingStore) -> None:
        """Eight threads logging batches at once, each to a run of its own and all to one
        shared run, lose no metric, param or tag and mix no values between runs."""
        exp_id = new_experiment(store)
        shared = new_run(store, exp_id).info.run_id
        own = [new_run(store, exp_id).info.run_id for _ in range(BATCH_THREADS)]

        def work(worker: int) -> None:
            for b in range(BATCHES):
                store.log_batch(
                    own[worker],
                    metrics=[Metric(f"m{k}", float(worker * 100 + b), 1000 + b, b)
                             for k in range(5)],
                    params=[Param(f"p{b}", f"w{worker}")],
                    tags=[RunTag("last", str(b)), RunTag(f"t{b}", f"w{worker}")],
                )
                store.log_batch(
                    shared,
                    metrics=[Metric("shared", float(worker * 100 + b), 1000 + b, worker)],
                    params=[Param(f"w{worker}-p{b}", str(b))],
                    tags=[RunTag(f"w{worker}", str(b))],
                )

        with ThreadPoolExecutor(BATCH_THREADS) as pool:
            list(pool.map(work, range(BATCH_THREADS)))
        for worker, run_id in enumerate(own):
            run = store.get_run(run_id)
            assert run.data.params == {f"p{b}": f"w{worker}" for b in range(BATCHES)}
            assert {k: v for k, v in run.data.tags.items() if k[0] in "tl"} == {
                "last": str(BATCHES - 1), **{f"t{b}": f"w{worker}" for b in range(BATCHES)}}
            for k in range(5):
                assert points(store.get_metric_history(run_id, f"m{k}")) == [
                    (1000 + b, b, float(worker * 100 + b)) for b in range(BATCHES)]
                assert run.data.metrics[f"m{k}"].value == float(worker * 100 + BATCHES - 1)
        run = store.get_run(shared)
        assert run.data.params == {f"w{w}-p{b}": str(b) for w in range(BATCH_THREADS)
                                   for b in range(BATCHES)}
        assert {k: v for k, v in run.data.tags.items() if k.startswith("w")} == {
            f"w{w}": str(BATCHES - 1) for w in range(BATCH_THREADS)}
        assert points(store.get_metric_history(shared, "shared")) == sorted(
            (1000 + b, w, float(w * 100 + b)) for w in range(BATCH_THREADS)
            for b in range(BATCHES))
        assert run.data.metrics["shared"].value == float((BATCH_THREADS - 1) * 100
                                                         + BATCHES - 1)
