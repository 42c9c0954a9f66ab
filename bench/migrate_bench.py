"""`tracklog migrate` throughput and memory, into PostgreSQL.

Two sources of ``--runs`` runs × ``--points`` points per run (default 1,000 × 1,000 =
1,000,000 points): a tracklog SQLite database, and a database with MLflow's own schema on
PostgreSQL (the schema made by the installed ``mlflow`` package's SQL store, the rows
written straight into its tables). Each is migrated into a fresh PostgreSQL database by
the ``tracklog migrate`` command, with and without the read-back verification; the
figures are metric points per second of wall time (process start included) and the
command's peak resident memory (VmHWM). Usage::

    .venv/bin/python bench/migrate_bench.py            # 1,000 runs × 1,000 points
    .venv/bin/python bench/migrate_bench.py --quick    # 200 runs × 500 points
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import sqlalchemy as sa

PG_ADMIN = os.environ.get("TRACKLOG_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
TRACKLOG = str(Path(sys.executable).with_name("tracklog"))
T0 = 1_700_000_000_000


def new_pg_db(prefix: str) -> str:
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    engine = sa.create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE {name}")
    engine.dispose()
    return sa.make_url(PG_ADMIN).set(database=name).render_as_string(hide_password=False)


def drop_pg_db(url: str) -> None:
    name = sa.make_url(url).database
    engine = sa.create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    engine.dispose()


def tracklog_source(path: Path, runs: int, points: int) -> str:
    from tracklog.entities import Metric, Param
    from tracklog.plugins import resolve_store

    uri = f"sqlite:///{path}"
    store = resolve_store(uri, None)
    exp = store.create_experiment("bench")
    for r in range(runs):
        rid = store.create_run(exp, "u", T0 + r, run_name=f"r{r}").info.run_id
        store.log_batch(rid, metrics=[Metric("loss", 1 / (s + 1), T0 + s, s)
                                      for s in range(points)],
                        params=[Param(f"p{k}", str(k)) for k in range(5)])
    store.close()
    return uri


def mlflow_pg_source(runs: int, points: int) -> str:
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    url = new_pg_db("mlflow_src")
    ml = SqlAlchemyStore(url.replace("postgresql://", "postgresql+psycopg2://"), "/tmp/ml")
    exp = ml.create_experiment("bench")
    ids = [ml.create_run(exp, "u", T0 + r, [], f"r{r}").info.run_id for r in range(runs)]
    ml.engine.dispose()
    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg2://"))
    with engine.begin() as conn:
        for rid in ids:
            conn.exec_driver_sql(
                "INSERT INTO metrics (key, value, timestamp, run_uuid, step, is_nan) "
                "VALUES (%(k)s, %(v)s, %(t)s, %(r)s, %(s)s, false)",
                [{"k": "loss", "v": 1 / (s + 1), "t": T0 + s, "r": rid, "s": s}
                 for s in range(points)])
            conn.exec_driver_sql(
                "INSERT INTO latest_metrics (key, value, timestamp, step, is_nan, run_uuid) "
                "VALUES ('loss', %(v)s, %(t)s, %(s)s, false, %(r)s)",
                {"v": 1 / points, "t": T0 + points - 1, "s": points - 1, "r": rid})
    engine.dispose()
    return url


def timed_migrate(src: str, dst: str, *extra: str) -> tuple[float, float, str]:
    """(seconds, peak MiB, last output line) of one `tracklog migrate`."""
    start = time.monotonic()
    proc = subprocess.Popen([TRACKLOG, "migrate", src, dst, *extra], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    peak = [0]

    def watch() -> None:
        while proc.poll() is None:
            try:
                with open(f"/proc/{proc.pid}/status") as f:
                    for line in f:
                        if line.startswith("VmHWM"):
                            peak[0] = max(peak[0], int(line.split()[1]))
            except OSError:
                pass
            time.sleep(0.05)

    t = threading.Thread(target=watch)
    t.start()
    out, err = proc.communicate()
    t.join()
    if proc.returncode:
        raise RuntimeError(f"migrate failed: {err[-2000:]}")
    return time.monotonic() - start, peak[0] / 1024, out.strip().splitlines()[-1]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=1000)
    ap.add_argument("--points", type=int, default=1000)
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    if args.quick:
        args.runs, args.points = 200, 500
    total = args.runs * args.points
    tmp = Path(tempfile.mkdtemp(prefix="migrate-bench-"))
    print(f"{args.runs:,} runs × {args.points:,} points = {total:,} points", flush=True)
    sources = {"tracklog SQLite": tracklog_source(tmp / "src.db", args.runs, args.points),
               "MLflow PostgreSQL": mlflow_pg_source(args.runs, args.points)}
    try:
        print(f"{'source':20} {'verify':7} {'points/s':>10} {'seconds':>8} {'peak MiB':>9}")
        for label, src in sources.items():
            for verify in (False, True):
                dst = new_pg_db("migrate_dst")
                try:
                    seconds, peak, _ = timed_migrate(src, dst, *([] if verify else
                                                               ["--no-verify"]))
                finally:
                    drop_pg_db(dst)
                print(f"{label:20} {'yes' if verify else 'no':7} {total / seconds:>10,.0f} "
                      f"{seconds:>8.1f} {peak:>9.0f}", flush=True)
    finally:
        drop_pg_db(sources["MLflow PostgreSQL"])


if __name__ == "__main__":
    main()
