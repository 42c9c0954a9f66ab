"""Profile one route of the server in-process: the application is built on a fresh SQLite
store and called through ASGI with pre-encoded requests, so every middleware, the body
read, decoding, validation and the store run as under uvicorn, without the socket.

Usage (from the repository root)::

    .venv/bin/python bench/route_profile.py log-batch            # ms per request
    .venv/bin/python bench/route_profile.py log-metric --profile  # and cProfile's top entries
    .venv/bin/python bench/route_profile.py update-run --inline   # profile the store too

``--inline`` runs the worker-thread part on the event loop's thread so that cProfile sees
it (cProfile follows one thread); it leaves out the thread hop. On a shared machine, wall
times vary: compare profile shares, or count instructions with
``valgrind --tool=callgrind`` around a real server. Nothing here asserts a timing.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats
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

    return {"log-batch": log_batch, "log-metric": log_metric, "update-run": update_run,
            "create-run": create_run}[scenario]


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
    app = create_app(ServerConfig(backend_store_uri=f"sqlite:///{work}/t.db",
                                  artifacts_destination=f"{work}/artifacts", access_log=False))
    store = app.state.tracklog.store
    experiment_id = store.create_experiment("profile")
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
    started = time.perf_counter()
    if profile is not None:
        profile.enable()
    for path, data in requests[5:]:
        await _call(app, path, data)
    if profile is not None:
        profile.disable()
    elapsed = time.perf_counter() - started
    print(f"{args.scenario}: {elapsed * 1000 / args.requests:.3f} ms per request "
          f"({args.requests} requests{', profiled' if profile else ''})")
    if profile is not None:
        stats = pstats.Stats(profile)
        stats.sort_stats("tottime").print_stats(args.top)
        stats.sort_stats("cumulative").print_stats(args.top)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("scenario", choices=["log-batch", "log-metric", "update-run", "create-run"])
    ap.add_argument("--requests", type=int, default=0, help="default: 200 batches, else 2,000")
    ap.add_argument("--profile", action="store_true", help="cProfile the event loop's thread")
    ap.add_argument("--inline", action="store_true",
                    help="run handlers on the event loop's thread and profile them too")
    ap.add_argument("--top", type=int, default=30)
    args = ap.parse_args()
    args.requests = args.requests or (200 if args.scenario == "log-batch" else 2000)
    asyncio.run(_run(args))


if __name__ == "__main__":
    main()
