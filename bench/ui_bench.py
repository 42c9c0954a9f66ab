"""Benchmark the web UI in headless Chromium: the issue's three targets.

Usage (from the repository root)::

    .venv/bin/python bench/ui_bench.py               # 10,000 runs, a 1,000,000-point metric
    .venv/bin/python bench/ui_bench.py --quick       # 1,000 runs, 100,000 points
    .venv/bin/python bench/ui_bench.py --dir /tmp/uib  # keep (and reuse) the seeded store

Seeds a SQLite store directly through the tracking-store contract (runs of 20 params and
10 metrics each, one extra run with a long history), starts ``tracklog server`` on it and
drives Debian's Chromium (``/usr/bin/chromium``) through Playwright. Prints, as the
median of the repetitions:

- the experiment page's first contentful paint (navigation start → FCP);
- the same for a filtered and metric-sorted runs page;
- the time from navigation start until the long history's chart is drawn (the page's
  script marks the plot once plotly has drawn the sampled series).

Each page is also timed until its content is there (the runs table's first row, the
chart's lines): for a server-rendered page that is close to its first paint; for a
single-page app such as MLflow's, first paint is only the empty frame.

``--mlflow`` measures the same pages of MLflow 3.17.2's UI (``mlflow server`` from the
full ``mlflow`` package, in the separate virtualenv ``bench/server_bench.py --mlflow``
creates under ``--mlflow-venv``), seeded the same way through MLflow's own SQL store.

The figures depend on the machine; nothing here asserts a timing.
"""

from __future__ import annotations

import argparse
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]


def seed(uri: str, runs: int, points: int) -> tuple[str, str]:
    from tracklog.entities import Metric, Param
    from tracklog.plugins import resolve_store

    store = resolve_store(uri, "mlflow-artifacts:/")
    try:
        existing = store.get_experiment_by_name("ui-bench")
        big_id = existing and _big_run(store, existing.experiment_id)
        if existing is not None and big_id:
            return existing.experiment_id, big_id
        exp = store.create_experiment("ui-bench", None, [])
        rnd = random.Random(7)
        t0 = time.perf_counter()
        for i in range(runs):
            run = store.create_run(exp, "bench", 1_700_000_000_000 + i, run_name=f"run-{i:05d}")
            store.log_batch(
                run.info.run_id,
                metrics=[Metric(f"m{k}", rnd.random(), 1_700_000_000_000 + i, 0)
                         for k in range(10)],
                params=[Param(f"p{k}", rnd.choice("abcdefgh")) for k in range(20)],
            )
        print(f"seeded {runs} runs in {time.perf_counter() - t0:.1f} s", flush=True)
        big = store.create_run(exp, "bench", 1_800_000_000_000, run_name="long-history")
        t0 = time.perf_counter()
        for start in range(0, points, 10_000):
            store.log_batch(big.info.run_id, metrics=[
                Metric("loss", 1 / (s + 1) + rnd.random() * 0.01, 1_800_000_000_000 + s, s)
                for s in range(start, min(points, start + 10_000))])
        print(f"seeded {points} points in {time.perf_counter() - t0:.1f} s", flush=True)
        return exp, big.info.run_id
    finally:
        store.close()


def _big_run(store, exp: str) -> str | None:
    from tracklog.search import parse_run_filter

    found = list(store.search_runs([exp], filter=parse_run_filter(
        "attributes.run_name = 'long-history'"), max_results=1))
    return found[0].info.run_id if found else None


def start_server(tmp: Path, uri: str) -> tuple[subprocess.Popen, str]:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    tracklog = str(Path(sys.executable).with_name("tracklog"))
    log = open(tmp / "server.log", "wb")  # noqa: SIM115 - lives as long as the server
    proc = subprocess.Popen([tracklog, "server", "--backend-store-uri", uri,
                             "--artifacts-destination", str(tmp / "artifacts"),
                             "--port", str(port)], stdin=subprocess.DEVNULL, stdout=log,
                            stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            if httpx.get(url + "/health", timeout=1).status_code == 200:
                return proc, url
        except httpx.TransportError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("server did not start")


def fcp(page, url: str) -> float:
    page.goto(url, wait_until="load")
    return page.evaluate("""() => new Promise(done => {
        new PerformanceObserver(list => {
            for (const e of list.getEntries())
                if (e.name === 'first-contentful-paint') done(e.startTime);
        }).observe({type: 'paint', buffered: true});
        setTimeout(() => done(NaN), 5000);
    })""")


def visible(selector: str):
    """Navigation start → ``selector`` is in the page."""
    def measure(page, url: str) -> float:
        page.goto(url, wait_until="commit")
        page.wait_for_selector(selector, timeout=120_000)
        return page.evaluate("performance.now()")
    return measure


MLFLOW_SEED = """
import random, sys
from mlflow.entities import Metric, Param
from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore
uri, artifacts, runs, points = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
store = SqlAlchemyStore(uri, artifacts)
rnd = random.Random(7)
exp = store.create_experiment("ui-bench")
for i in range(runs):
    run = store.create_run(exp, "bench", 1_700_000_000_000 + i, [], f"run-{i:05d}")
    store.log_batch(run.info.run_id, params=[Param(f"p{k}", rnd.choice("abcdefgh"))
                                             for k in range(20)], tags=[],
                    metrics=[Metric(f"m{k}", rnd.random(), 1_700_000_000_000 + i, 0)
                             for k in range(10)])
big = store.create_run(exp, "bench", 1_800_000_000_000, [], "long-history")
for start in range(0, points, 1000):
    store.log_batch(big.info.run_id, params=[], tags=[], metrics=[
        Metric("loss", 1 / (s + 1) + rnd.random() * 0.01, 1_800_000_000_000 + s, s)
        for s in range(start, min(points, start + 1000))])
print(exp, big.info.run_id)
"""


def mlflow_server(tmp: Path, venv: Path, runs: int, points: int
                  ) -> tuple[subprocess.Popen, str, str, str]:
    import socket

    db = tmp / "mlflow.db"
    ids = tmp / "mlflow-ids.txt"
    if not ids.exists():
        out = subprocess.run([str(venv / "bin" / "python"), "-c", MLFLOW_SEED,
                              f"sqlite:///{db}", str(tmp / "mlartifacts"), str(runs),
                              str(points)], check=True, capture_output=True, text=True)
        ids.write_text(out.stdout.strip().splitlines()[-1])
    exp, big = ids.read_text().split()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = open(tmp / "mlflow.log", "wb")  # noqa: SIM115 - lives as long as the server
    proc = subprocess.Popen([str(venv / "bin" / "mlflow"), "server", "--backend-store-uri",
                             f"sqlite:///{db}", "--port", str(port)],
                            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    for _ in range(1200):
        try:
            if httpx.get(url + "/health", timeout=1).status_code == 200:
                return proc, url, exp, big
        except httpx.TransportError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("mlflow server did not start")


def report(page, cases: dict, repeat: int) -> None:
    for name, (measure, target) in cases.items():
        measure(page, target)  # warm: caches, scripts parsed once
        times = [measure(page, target) for _ in range(repeat)]
        print(f"  {name:<52} {statistics.median(times):8.0f} ms"
              f"   (min {min(times):.0f}, max {max(times):.0f})", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--dir")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--mlflow", action="store_true", help="also MLflow 3.17.2's UI")
    ap.add_argument("--mlflow-venv", default="/tmp/mlflow-ref", type=Path)
    args = ap.parse_args()
    runs, points = (1000, 100_000) if args.quick else (10_000, 1_000_000)
    tmp = Path(args.dir or tempfile.mkdtemp(prefix="ui-bench-"))
    tmp.mkdir(parents=True, exist_ok=True)
    uri = f"sqlite:///{tmp}/bench.db"
    exp, big = seed(uri, runs, points)
    proc, url = start_server(tmp, uri)
    from playwright.sync_api import sync_playwright

    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            page = browser.new_page(viewport={"width": 1440, "height": 900})
            flt = "?filter=metrics.m0+%3E+0.5+and+params.p0+%3D+%27a%27&order_by=metrics.m1+DESC"
            row = visible("#runs tbody tr")
            cases = {
                "experiment page, first paint": (fcp, f"{url}/experiments/{exp}"),
                "experiment page, runs shown": (row, f"{url}/experiments/{exp}"),
                "filtered + sorted runs page, first paint": (
                    fcp, f"{url}/experiments/{exp}{flt}"),
                "filtered + sorted runs page, runs shown": (row, f"{url}/experiments/{exp}{flt}"),
                f"{points:,}-point chart drawn": (
                    visible(".plot[data-metric='loss'][data-drawn]"),
                    f"{url}/experiments/{exp}/runs/{big}"),
            }
            print(f"tracklog: {runs:,} runs × 20 params × 10 metrics; median of {args.repeat}")
            report(page, cases, args.repeat)
            if args.mlflow:
                mproc, murl, mexp, mbig = mlflow_server(tmp, args.mlflow_venv, runs, points)
                try:
                    mflt = ("?searchFilter=metrics.m0%20%3E%200.5%20and%20params.p0%20%3D%20"
                            "%27a%27&orderByKey=metrics.%60m1%60&orderByAsc=false")
                    mrow = visible("text=run-0")
                    print(f"MLflow 3.17.2 UI, same data; median of {args.repeat}")
                    report(page, {
                        "experiment page, first paint": (
                            fcp, f"{murl}/#/experiments/{mexp}/runs"),
                        "experiment page, runs shown": (
                            mrow, f"{murl}/#/experiments/{mexp}/runs"),
                        "filtered + sorted runs page, runs shown": (
                            mrow, f"{murl}/#/experiments/{mexp}/runs{mflt}"),
                        f"{points:,}-point chart drawn": (
                            visible(".js-plotly-plot .scatterlayer path.js-line"),
                            f"{murl}/#/experiments/{mexp}/runs/{mbig}/model-metrics"),
                    }, args.repeat)
                finally:
                    mproc.terminate()
                    mproc.wait(15)
            browser.close()
    finally:
        proc.terminate()
        proc.wait(10)


if __name__ == "__main__":
    main()
