"""Benchmark of the file store (tracklog-store-file): log_batch throughput and search_runs.

    python bench/store_file_bench.py                  # LibYAML and pure-Python YAML
    python bench/store_file_bench.py --yaml pure --runs 500

For each YAML backend it measures, on a fresh directory:

- ``log_batch`` rows per second, for batches of 1,000 metric points and for mixed
  batches (50 metrics, 25 params, 25 tags);
- run creation (``create_run`` + one ``log_batch`` of 5 metrics, 3 params, 3 tags);
- ``search_runs`` over ``--runs`` runs: the first page of 100 with no filter, cold (a new
  store object, empty caches) and warm, and a filtered, metric-ordered search paged to the
  end.

It prints figures, not verdicts; compare runs on the same machine.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import tempfile
import time
from collections.abc import Callable

from tracklog.entities import Metric, Param, RunTag
from tracklog.search import parse_run_filter, parse_run_order_by
from tracklog_store_file import yamlio
from tracklog_store_file.store import FileStore


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def bench(backend: str, runs: int, batches: int, workdir: str) -> list[tuple[str, str]]:
    active = yamlio.set_backend(backend)
    root = tempfile.mkdtemp(prefix=f"bench-{active}-", dir=workdir)
    store = FileStore(os.path.join(root, "mlruns"))
    exp = store.create_experiment("bench")
    rows: list[tuple[str, str]] = [("yaml backend", active)]

    run_id = store.create_run(exp, "bench", 0).info.run_id

    def metric_batches() -> None:
        for b in range(batches):
            store.log_batch(
                run_id,
                metrics=[
                    Metric(f"m{k}", float(s), b * 100 + s, b * 100 + s)
                    for k in range(10)
                    for s in range(100)
                ],
            )

    seconds = timed(metric_batches)
    rows.append(("log_batch, 1000 metrics/batch", f"{batches * 1000 / seconds:,.0f} rows/s"))

    mixed_run = store.create_run(exp, "bench", 0).info.run_id

    def mixed_batches() -> None:
        for b in range(batches):
            store.log_batch(
                mixed_run,
                metrics=[Metric(f"x{k}", float(b), b, b) for k in range(50)],
                params=[Param(f"p{b}-{k}", str(k)) for k in range(25)],
                tags=[RunTag(f"t{k}", str(b)) for k in range(25)],
            )

    seconds = timed(mixed_batches)
    rows.append(
        ("log_batch, 50 metrics+25 params+25 tags", f"{batches * 100 / seconds:,.0f} rows/s")
    )

    def populate() -> None:
        for i in range(runs):
            rid = store.create_run(exp, "bench", 1_700_000_000_000 + i).info.run_id
            store.log_batch(
                rid,
                metrics=[Metric(f"m{k}", ((i * 7919 + k) % 1000) / 1000, i, 0) for k in range(5)],
                params=[Param("p0", "abc"[i % 3]), Param("p1", str(i)), Param("p2", "x")],
                tags=[
                    RunTag("t0", "yes" if i % 2 else "no"),
                    RunTag("t1", str(i)),
                    RunTag("t2", "z"),
                ],
            )

    seconds = timed(populate)
    rows.append((f"create {runs} runs (+ log_batch of 11 rows)", f"{runs / seconds:,.0f} runs/s"))

    ids = [exp]
    cold = FileStore(os.path.join(root, "mlruns"))
    seconds = timed(lambda: cold.search_runs(ids, max_results=100))
    rows.append((f"search_runs, first 100 of {runs + 2}, cold", f"{seconds * 1000:,.0f} ms"))
    seconds = min(timed(lambda: cold.search_runs(ids, max_results=100)) for _ in range(3))
    rows.append((f"search_runs, first 100 of {runs + 2}, warm", f"{seconds * 1000:,.0f} ms"))

    flt = parse_run_filter("metrics.m0 > 0.5 and params.p0 = 'a' and tags.t0 = 'yes'")
    order = parse_run_order_by(["metrics.m1 DESC"])
    found: list[int] = []

    def filtered() -> None:
        found.clear()
        token = None
        while True:
            page = cold.search_runs(
                ids, filter=flt, order_by=order, max_results=100, page_token=token
            )
            found.append(len(page))
            token = page.token
            if token is None:
                return

    seconds = min(timed(filtered) for _ in range(3))
    rows.append(
        (
            f"search_runs, filter+order, {sum(found)} hits in {len(found)} pages, warm",
            f"{seconds * 1000:,.0f} ms",
        )
    )
    cold = FileStore(os.path.join(root, "mlruns"))
    seconds = timed(filtered)
    rows.append(("search_runs, same, cold", f"{seconds * 1000:,.0f} ms"))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=2000)
    parser.add_argument("--batches", type=int, default=200)
    parser.add_argument("--yaml", choices=("both", "libyaml", "pure"), default="both")
    parser.add_argument("--dir", default=None, help="work directory (default: a temp dir)")
    args = parser.parse_args()
    workdir = args.dir or tempfile.mkdtemp(prefix="tracklog-file-bench-")
    backends = ("libyaml", "pure") if args.yaml == "both" else (args.yaml,)
    results = [bench(b, args.runs, args.batches, workdir) for b in backends]
    width = max(len(label) for rows in results for label, _ in rows)
    for rows in results:
        print()
        for label, value in rows:
            print(f"{label:<{width}}  {value}")
    print()
    print("command:", shlex.join([os.path.relpath(sys.executable), *sys.argv]))
    print(f"data: {workdir}")


if __name__ == "__main__":
    main()
