"""Several threads writing through one store object."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from tracklog.entities import Metric, Param
from tracklog.stores import TrackingStore

from ._base import KitBase, new_experiment, new_run, points, requires

THREADS = 4


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
