"""CPU time of the SQL store's hot reads and writes on SQLite, for comparing two checkouts
on a busy machine (figures, not a test).

Wall-clock figures move with whatever else the machine runs; the process's own CPU time
moves much less. Runs the operations of ``store_sql_bench.py`` (a 100,000-point history,
search over 10,000 runs with a metric filter and order, log_batch of 1,000 metrics) 15
times each, interleaved, and prints the minimum and median CPU milliseconds. To compare
two checkouts, run it from each in turn, a few times::

    (cd ../before && .venv/bin/python bench/store_sql_cpu.py)
    .venv/bin/python bench/store_sql_cpu.py
"""

from __future__ import annotations

import gc
import random
import statistics
import tempfile
import time

from store_sql_bench import populate_runs

from tracklog.entities import Metric
from tracklog.search import parse_run_filter, parse_run_order_by
from tracklog_store_sql.store import SqlTrackingStore


def main() -> None:
    random.seed(1)
    with tempfile.TemporaryDirectory() as tmp:
        store = SqlTrackingStore(f"sqlite:///{tmp}/cpu.db", "mlflow-artifacts:/")
        run_id = store.create_run("0", "bench", 0).info.run_id
        for b in range(100):
            store.log_batch(run_id, metrics=[
                Metric("h", random.random(), 1_000 + b * 1_000 + j, b * 1_000 + j)
                for j in range(1_000)])
        eid = store.create_experiment("cpu")
        populate_runs(store, eid)
        flt = parse_run_filter("metrics.loss < 0.5")
        order = parse_run_order_by(["metrics.acc DESC"])
        store.search_runs([eid], flt, max_results=1000, order_by=order)
        history, search, batch = [], [], []
        for i in range(15):
            gc.collect()
            t = time.process_time()
            points = store.get_metric_history(run_id, "h")
            history.append(time.process_time() - t)
            del points
            gc.collect()
            t = time.process_time()
            store.search_runs([eid], flt, max_results=1000, order_by=order)
            search.append(time.process_time() - t)
            metrics = [Metric(f"k{j % 10}", random.random(), 10**7 + i * 1_000 + j,
                              i * 1_000 + j) for j in range(1_000)]
            t = time.process_time()
            store.log_batch(run_id, metrics=metrics)
            batch.append(time.process_time() - t)
        store.close()

    def fmt(xs: list[float]) -> str:
        return f"min {min(xs) * 1000:.1f} ms, median {statistics.median(xs) * 1000:.1f} ms"

    print(f"get_metric_history, 100,000 points: {fmt(history)}")
    print(f"search_runs, 10,000 runs, filter + order, 1,000 returned: {fmt(search)}")
    print(f"log_batch, 1,000 metrics: {fmt(batch)}")


if __name__ == "__main__":
    main()
