"""Benchmark of tracklog-store-sql on SQLite and PostgreSQL (figures, not a test).

Measures, per backend:
  * log_batch throughput: metric rows/s with batches of 1,000 metrics (10 keys x 100 steps);
  * search_runs latency over 10,000 runs: a metric filter plus a metric order, 1,000 results;
  * get_metric_history latency for one key with 100,000 points.

The 10,000 runs are inserted with bulk SQL (populating is not what is measured); the
history points go through log_batch. Latencies are the median of several repetitions.

    .venv/bin/python bench/store_sql_bench.py [--backends sqlite,postgresql]
        [--pg-url postgresql://postgres@127.0.0.1:5432/test] [--repeat 15]
"""

from __future__ import annotations

import argparse
import gc
import os
import random
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator

import sqlalchemy as sa

from tracklog.entities import Metric
from tracklog.search import parse_run_filter, parse_run_order_by
from tracklog_store_sql.schema import latest_metrics, params, runs, tags
from tracklog_store_sql.store import SqlTrackingStore

N_RUNS = 10_000
HISTORY_POINTS = 100_000
BATCH = 1_000


def _payloads(batches: int) -> Iterator[list[Metric]]:
    """Each batch built just before it is logged, as the server's request decoding or a
    training script hands it over (not 50 batches built ahead, cold in the CPU cache)."""
    for b in range(batches):
        yield [
            Metric(f"k{j % 10}", random.random(), 1_000 + b * 100 + j // 10, b * 100 + j // 10)
            for j in range(BATCH)
        ]


class SqliteFloor:
    """What sqlite3 itself does on this machine at this moment: the same rows into a table
    of the same definition, executemany inside BEGIN IMMEDIATE / COMMIT, no tracklog or
    SQLAlchemy code. Timed interleaved with the store so both see the same load, in a
    database file of its own so its writes do not add to the store's WAL checkpoints."""

    def __init__(self, store_path: str, run_id: str) -> None:
        self.store = sqlite3.connect(store_path, isolation_level=None)
        self.path = store_path + ".floor"
        self.conn = sqlite3.connect(self.path, isolation_level=None)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=NORMAL")
        ddl = self.store.execute("SELECT sql FROM sqlite_master WHERE name = 'metric_points'")
        self.conn.execute(ddl.fetchone()[0])
        self.run_id = run_id

    def insert(self, metrics: list[Metric]) -> float:
        # The store's series ids of this run's keys (the store has created them by the
        # time the floor inserts the same batch).
        ids = dict(
            self.store.execute(
                "SELECT key, series_id FROM metric_series WHERE run_uuid = ?", (self.run_id,)
            ).fetchall()
        )
        rows = [(ids[m.key], m.timestamp, m.step, m.value, 0) for m in metrics]
        start = time.perf_counter()
        self.conn.execute("BEGIN IMMEDIATE")
        self.conn.executemany(
            "INSERT INTO metric_points VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING", rows
        )
        self.conn.execute("COMMIT")
        return time.perf_counter() - start

    def close(self) -> None:
        self.store.close()
        self.conn.close()
        for suffix in ("", "-wal", "-shm"):
            if os.path.exists(self.path + suffix):
                os.remove(self.path + suffix)


def bench_log_batch(
    store: SqlTrackingStore, batches: int, floor_path: str | None
) -> tuple[float, float, float | None]:
    """(overall rows/s, rows/s of the median batch, floor rows/s of the median batch)."""
    run_id = store.create_run("0", "bench", 0).info.run_id
    floor = SqliteFloor(floor_path, run_id) if floor_path else None
    times, floor_times = [], []
    for metrics in _payloads(batches):
        start = time.perf_counter()
        store.log_batch(run_id, metrics=metrics)
        times.append(time.perf_counter() - start)
        if floor is not None:
            floor_times.append(floor.insert(metrics))
    floor_rate = None
    if floor is not None:
        floor.close()
        floor_rate = BATCH / statistics.median(floor_times)
    return batches * BATCH / sum(times), BATCH / statistics.median(times), floor_rate


def populate_runs(store: SqlTrackingStore, experiment_id: str) -> None:
    rng = random.Random(7)
    eid = int(experiment_id)
    run_rows, tag_rows, param_rows, metric_rows = [], [], [], []
    for i in range(N_RUNS):
        rid = uuid.uuid4().hex
        run_rows.append(
            {
                "run_uuid": rid,
                "name": f"run-{i}",
                "user_id": "bench",
                "status": "FINISHED",
                "start_time": 1_000 + i,
                "end_time": 2_000 + i,
                "lifecycle_stage": "active",
                "artifact_uri": f"/a/{rid}",
                "experiment_id": eid,
            }
        )
        tag_rows += [
            {"run_uuid": rid, "key": "mlflow.runName", "value": f"run-{i}"},
            {"run_uuid": rid, "key": "team", "value": rng.choice(["a", "b", "c"])},
        ]
        param_rows += [
            {"run_uuid": rid, "key": "lr", "value": str(rng.choice([0.1, 0.01, 0.001]))},
            {"run_uuid": rid, "key": "model", "value": rng.choice(["cnn", "mlp"])},
        ]
        for key in ("loss", "acc", "f1"):
            metric_rows.append(
                {
                    "run_uuid": rid,
                    "key": key,
                    "value": rng.random(),
                    "timestamp": 1,
                    "step": 0,
                    "is_nan": False,
                }
            )
    with store.db.write() as conn:
        for table, rows in (
            (runs, run_rows),
            (tags, tag_rows),
            (params, param_rows),
            (latest_metrics, metric_rows),
        ):
            for k in range(0, len(rows), 5_000):
                conn.execute(table.insert(), rows[k : k + 5_000])


def timed(fn, repeat: int) -> tuple[list[float], object]:
    """Milliseconds of each of ``repeat`` calls, and the last result."""
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        times.append((time.perf_counter() - start) * 1000)
    return times, result


def fmt(times: list[float]) -> str:
    # This host's speed drifts by up to 2x within minutes: the best shows the code's
    # cost, the median what a user saw at the time.
    return f"{statistics.median(times):.1f} ms median, {min(times):.1f} ms best of {len(times)}"


def run_backend(name: str, url: str, repeat: int) -> None:
    store = SqlTrackingStore(url, "mlflow-artifacts:/")
    try:
        floor_path = sa.make_url(url).database if name == "sqlite" else None
        overall, median, floor_rate = bench_log_batch(store, 50, floor_path)
        print(
            f"[{name}] log_batch: {overall:,.0f} metric rows/s overall, {median:,.0f} in "
            f"the median batch (50 batches of 1,000 metrics, 10 keys)"
        )
        if floor_rate is not None:
            print(
                f"[{name}]   floor: sqlite3 executemany alone, same rows and table, "
                f"interleaved: {floor_rate:,.0f} rows/s in the median batch"
            )

        eid = store.create_experiment(f"bench-{uuid.uuid4().hex[:6]}")
        populate_runs(store, eid)
        if name == "postgresql":  # as autovacuum would after a bulk load
            with store.db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.exec_driver_sql("ANALYZE")
        flt = parse_run_filter("metrics.loss < 0.5")
        order = parse_run_order_by(["metrics.acc DESC"])
        store.search_runs([eid], flt, max_results=1000, order_by=order)  # warm caches
        times, found = timed(
            lambda: store.search_runs([eid], flt, max_results=1000, order_by=order), repeat
        )
        assert len(found) == 1000, len(found)
        print(
            f"[{name}] search_runs over {N_RUNS:,} runs (metric filter + metric order, "
            f"1,000 full runs returned): {fmt(times)}"
        )

        run_id = store.create_run("0", "bench", 0).info.run_id
        for b in range(HISTORY_POINTS // BATCH):
            store.log_batch(
                run_id,
                metrics=[
                    Metric("h", random.random(), 1_000 + b * BATCH + j, b * BATCH + j)
                    for j in range(BATCH)
                ],
            )
        conn = sqlite3.connect(sa.make_url(url).database) if name == "sqlite" else None
        query = (
            "SELECT timestamp, step, CASE WHEN is_nan = 1 THEN NULL ELSE value END "
            "FROM metric_points WHERE series_id = "
            '(SELECT series_id FROM metric_series WHERE run_uuid = ? AND "key" = ?) '
            "ORDER BY timestamp, step, value"
        )
        times, floor_times = [], []
        for _ in range(repeat):  # interleaved with the floor so both see the same load
            # Each call starts with no garbage of the other's 100,000 objects around.
            gc.collect()
            ms, history = timed(lambda: store.get_metric_history(run_id, "h"), 1)
            times += ms
            assert len(history) == HISTORY_POINTS
            del history
            gc.collect()
            if conn is not None:
                floor_ms, _ = timed(lambda: conn.execute(query, (run_id, "h")).fetchall(), 1)
                floor_times += floor_ms
        print(f"[{name}] get_metric_history of {HISTORY_POINTS:,} points: {fmt(times)}")
        if conn is not None:
            conn.close()
            print(f"[{name}]   floor: sqlite3 fetchall of the same query alone: {fmt(floor_times)}")
    finally:
        store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--pg-url", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()
    print("command:", " ".join([sys.executable.split("/")[-1], *sys.argv]))
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"machine: {os.cpu_count()} CPUs, load average {load} (other work shares them)")
    for backend in args.backends.split(","):
        if backend == "sqlite":
            with tempfile.TemporaryDirectory() as tmp:
                run_backend("sqlite", f"sqlite:///{tmp}/bench.db", args.repeat)
        elif backend == "postgresql":
            name = f"tracklog_bench_{uuid.uuid4().hex[:8]}"
            admin = sa.create_engine(args.pg_url, isolation_level="AUTOCOMMIT")
            try:
                with admin.connect() as conn:
                    conn.exec_driver_sql(f"CREATE DATABASE {name}")
            except Exception as exc:
                print(f"[postgresql] skipped: cannot reach {args.pg_url}: {exc}")
                continue
            url = sa.make_url(args.pg_url).set(database=name)
            try:
                run_backend("postgresql", url.render_as_string(hide_password=False), args.repeat)
            finally:
                with admin.connect() as conn:
                    conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
                admin.dispose()
        else:
            parser.error(f"unknown backend {backend!r}")


if __name__ == "__main__":
    main()
