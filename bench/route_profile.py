"""Profile one route of the server in-process: the application is built on a fresh SQLite
store and called through ASGI with pre-encoded requests, so every middleware, the body
read, decoding, validation and the store run as under uvicorn, without the socket.

Usage (from the repository root)::

    .venv/bin/python bench/route_profile.py log-batch            # ms per request
    .venv/bin/python bench/route_profile.py log-metric --profile  # and cProfile's top entries
    .venv/bin/python bench/route_profile.py update-run --inline   # profile the store too
    .venv/bin/python bench/route_profile.py search --inline       # capacity.py's search

``search`` is capacity.py's request (a metric and a param filter, ordered by the metric,
100 of 10,000 runs of 5 params and a metric); its database is built once and kept under
``--cache`` (a minute or so).

``--inline`` runs the worker-thread part on the event loop's thread so that cProfile sees
it (cProfile follows one thread); it leaves out the thread hop. On a shared machine, wall
times vary: compare profile shares, or count instructions with
``valgrind --tool=callgrind`` around a real server (``bench/server_instructions.py``).
Nothing here asserts a timing.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import pstats
import shutil
import tempfile
import time
from collections.abc import Callable
from typing import Any

import anyio.to_thread

from tracklog.config import ServerConfig
from tracklog.server.app import create_app

API = "/api/2.0/mlflow"


def _bodies(scenario: str, run_id: str, experiment_id: str) -> Callable[[int], tuple[str, bytes]]:
    def log_batch(i: int) -> tuple[str, bytes]:
        t0 = 10**12 + i * 1000
        points = ",".join(
            f'{{"key":"b","value":{j}.25,"timestamp":{t0 + j},"step":{j}}}'
            for j in range(1, 1001)
        )
        return "/runs/log-batch", f'{{"run_id":"{run_id}","metrics":[{points}]}}'.encode()

    def log_metric(i: int) -> tuple[str, bytes]:
        body = (f'{{"run_id":"{run_id}","key":"m","value":{i}.5,'
                f'"timestamp":{10**12 + i},"step":{i}}}')
        return "/runs/log-metric", body.encode()

    def update_run(i: int) -> tuple[str, bytes]:
        body = f'{{"run_id":"{run_id}","status":"RUNNING","end_time":{i}}}'
        return "/runs/update", body.encode()

    def create_run(i: int) -> tuple[str, bytes]:
        return "/runs/create", f'{{"experiment_id":"{experiment_id}","start_time":{i}}}'.encode()

    def search(i: int) -> tuple[str, bytes]:
        return "/runs/search", (
            f'{{"experiment_ids":["{experiment_id}"],'
            '"filter":"metrics.m > 0.5 and params.p0 = \'a\'",'
            '"order_by":["metrics.m DESC"],"max_results":100}').encode()

    return {"log-batch": log_batch, "log-metric": log_metric, "update-run": update_run,
            "create-run": create_run, "search": search}[scenario]


def _search_db(path: str, runs: int) -> None:
    """capacity.py's population of a search: ``runs`` runs of 5 params and a metric."""
    from tracklog.entities import Metric, Param
    from tracklog_store_sql.store import SqlTrackingStore

    store = SqlTrackingStore(f"sqlite:///{path}.tmp", "mlflow-artifacts:/")
    experiment_id = store.create_experiment("profile")
    for i in range(runs):
        run_id = store.create_run(experiment_id, user_id="bench", start_time=i + 1,
                                  tags=[]).info.run_id
        store.log_batch(run_id, params=[Param(f"p{k}", "abcdefgh"[(i * 7 + k) % 8])
                                        for k in range(5)],
                        metrics=[Metric("m", (i * 7919 % 1000 + 1) / 1001, i + 1, 0)])
    store.close()
    os.replace(f"{path}.tmp", path)


async def _call(app: Any, path: str, body: bytes) -> None:
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
        "scheme": "http", "path": API + path, "raw_path": (API + path).encode(),
        "query_string": b"", "root_path": "", "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 5000),
        "headers": [(b"host", b"127.0.0.1:5000"), (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode())],
    }
    sent = False
    status: list[int] = []

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.sleep(3600)  # no disconnect while the request is served
        raise AssertionError("unreachable")

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            status.append(message["status"])

    await app(scope, receive, send)
    if status != [200]:
        raise SystemExit(f"{path} answered {status}")


async def _run(args: argparse.Namespace) -> None:
    work = tempfile.mkdtemp(prefix="route-profile-")
    if args.scenario == "search":
        cached = os.path.join(args.cache, f"route-profile-search-{args.runs}.db")
        if not os.path.exists(cached):
            _search_db(cached, args.runs)
        shutil.copy(cached, f"{work}/t.db")
    app = create_app(ServerConfig(backend_store_uri=f"sqlite:///{work}/t.db",
                                  artifacts_destination=f"{work}/artifacts", access_log=False))
    store = app.state.tracklog.store
    experiment_id = (store.get_experiment_by_name("profile").experiment_id
                     if args.scenario == "search" else store.create_experiment("profile"))
    run_id = store.create_run(experiment_id, user_id="bench", start_time=0, tags=[],
                              run_name="profile").info.run_id
    body = _bodies(args.scenario, run_id, experiment_id)
    requests = [body(i) for i in range(args.requests + 5)]
    for path, data in requests[:5]:  # warm caches and compiled statements
        await _call(app, path, data)
    if args.inline:
        async def inline(fn: Callable[..., Any], *a: Any, **_: Any) -> Any:
            return fn(*a)

        anyio.to_thread.run_sync = inline  # type: ignore[assignment]
    profile = cProfile.Profile() if args.profile or args.inline else None
    started, cpu = time.perf_counter(), time.process_time()
    if profile is not None:
        profile.enable()
    for path, data in requests[5:]:
        await _call(app, path, data)
    if profile is not None:
        profile.disable()
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    # CPU time moves less than wall time with what else the machine runs.
    print(f"{args.scenario}: {elapsed * 1000 / args.requests:.3f} ms per request, "
          f"{cpu * 1000 / args.requests:.3f} ms CPU "
          f"({args.requests} requests{', profiled' if profile else ''})")
    if profile is not None:
        stats = pstats.Stats(profile)
        stats.sort_stats("tottime").print_stats(args.top)
        stats.sort_stats("cumulative").print_stats(args.top)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("scenario", choices=["log-batch", "log-metric", "update-run", "create-run",
                                         "search"])
    ap.add_argument("--requests", type=int, default=0, help="default: 200 batches, else 2,000")
    ap.add_argument("--profile", action="store_true", help="cProfile the event loop's thread")
    ap.add_argument("--inline", action="store_true",
                    help="run handlers on the event loop's thread and profile them too")
    ap.add_argument("--top", type=int, default=30)
    ap.add_argument("--runs", type=int, default=10_000, help="search: runs in the database")
    ap.add_argument("--cache", default=tempfile.gettempdir(),
                    help="search: where its database is kept between invocations")
    args = ap.parse_args()
    args.requests = args.requests or (200 if args.scenario in ("log-batch", "search")
                                     else 2000)
    asyncio.run(_run(args))


if __name__ == "__main__":
    main()
