"""Benchmark `tracklog server` through the real MLflow client, optionally beside MLflow.

Usage (from the repository root)::

    .venv/bin/python bench/server_bench.py                  # starts a tracklog server
    .venv/bin/python bench/server_bench.py --url http://127.0.0.1:5000   # a running one
    .venv/bin/python bench/server_bench.py --mlflow         # also `mlflow server` 3.17.2
    .venv/bin/python bench/server_bench.py --quick          # smaller sizes, for a smoke run

``--mlflow`` creates (once) a separate virtualenv with the full ``mlflow`` package under
``--mlflow-venv`` (default /tmp/mlflow-ref) with ``uv``; the project venv never gets it.
Both servers use SQLite and local artifacts in a temporary directory. Each scenario runs
once untimed (a server's first call of a route pays for compiling its statements), then
is timed through ``MlflowClient`` (median of the repetitions) and printed with the ratio
MLflow / tracklog. The figures depend on the machine; nothing here asserts a timing.

The "client" column is the MLflow client's own share of a scenario: the time it spends
outside waiting for HTTP, measured by wrapping ``requests.adapters.HTTPAdapter.send``
(instrumentation: every request still goes to the real server). Counted as waiting:

- the whole of ``send``: writing the request (an upload's body streams from the file
  inside it, paced by the server's reads) until the response headers arrive;
- for a non-streamed response, reading its body: the wrapper reads it before returning
  (``Session.send`` would read it right after; a big JSON body arrives while the server
  is still writing it);
- for a streamed response (artifact downloads), each step of ``iter_content``.

Everything else is client work: building entities and JSON, protobuf parsing of the
response, writing a download to disk. Client CPU spent inside ``send`` (http.client,
urllib3) counts as waiting, so the client figure is a lower bound of the client's cost
and the "ceiling" ratio (MLflow total / tracklog client) an upper bound of what any
server could reach with this client. For one thread the figure is wall time outside
``send``. For the 8-thread scenario, wall time outside ``send`` would include waiting
for the GIL while other threads parse responses; it is instead the CPU time of the
worker threads outside ``send`` (``time.thread_time``) summed over the threads and
divided by the calls: under the GIL that work runs one thread at a time, so it bounds
the time per call from below whatever the server does.

tracklog's own share of what the client waited comes from the server (when this script
starts it): "server" sums the request durations of its request log (first byte of a
request to the last byte of its answer) and "srv cpu" the CPU time of its process, each
divided by the client's time (for 8 threads, 8 × wall). "in send" (1 − client/total)
is larger: it also holds the client's own HTTP work and the loopback.
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, NamedTuple

os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "600")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

import mlflow  # noqa: E402
import transfer_floor  # noqa: E402
from mlflow.entities import Metric, Param  # noqa: E402

MLFLOW_VERSION = "3.17.2"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_healthy(url: str, process: subprocess.Popen, timeout: float = 120) -> float:
    import urllib.request

    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if process.poll() is not None:
            raise RuntimeError(f"server at {url} exited with {process.returncode}")
        try:
            with urllib.request.urlopen(url + "/health", timeout=1) as r:
                if r.status == 200:
                    return time.monotonic() - start
        except OSError:
            time.sleep(0.02)
    raise RuntimeError(f"server at {url} not healthy after {timeout} s")


def start_tracklog(tmp: Path) -> tuple[str, subprocess.Popen, float]:
    port = free_port()
    exe = Path(sys.executable).with_name("tracklog")
    cmd = [
        str(exe),
        "server",
        "--backend-store-uri",
        f"sqlite:///{tmp}/tracklog.db",
        "--artifacts-destination",
        str(tmp / "artifacts"),
        "--port",
        str(port),
    ]
    return launch(cmd, port, tmp, "tracklog.log")


def launch(
    cmd: list[str], port: int, tmp: Path, log: str, env: dict[str, str] | None = None
) -> tuple[str, subprocess.Popen, float]:
    """Start a server, its stderr to ``tmp/log``; (url, process, seconds to healthy)."""
    process = subprocess.Popen(
        cmd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=open(tmp / log, "wb"),
        cwd=tmp,
        env=env,
    )
    url = f"http://127.0.0.1:{port}"
    return url, process, wait_healthy(url, process)


def ensure_mlflow_venv(venv: Path) -> Path:
    exe = venv / "bin" / "mlflow"
    if exe.exists():
        return exe
    subprocess.run(["uv", "venv", str(venv)], check=True)
    subprocess.run(
        [
            "uv",
            "pip",
            "install",
            "--python",
            str(venv / "bin" / "python"),
            f"mlflow=={MLFLOW_VERSION}",
        ],
        check=True,
    )
    return exe


def start_mlflow(tmp: Path, venv: Path) -> tuple[str, subprocess.Popen, float]:
    exe = ensure_mlflow_venv(venv)
    port = free_port()
    cmd = [
        str(exe),
        "server",
        "--backend-store-uri",
        f"sqlite:///{tmp}/mlflow.db",
        "--artifacts-destination",
        str(tmp / "mlartifacts"),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    return launch(cmd, port, tmp, "mlflow.log", {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"})


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


class HttpMeter:
    """Time spent waiting for HTTP, from a wrapper around ``HTTPAdapter.send``: wall time
    over all threads and, per thread, CPU time (see the module docstring)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.wall = 0.0
        self.cpu = 0.0

    def add(self, wall: float, cpu: float) -> None:
        with self._lock:
            self.wall += wall
            self.cpu += cpu

    def install(self) -> None:
        from requests.adapters import HTTPAdapter

        original = HTTPAdapter.send
        meter = self

        def timed_iter(iterator: Any) -> Any:
            while True:
                wall, cpu = time.perf_counter(), time.thread_time()
                try:
                    chunk = next(iterator)
                except StopIteration:
                    return
                finally:
                    meter.add(time.perf_counter() - wall, time.thread_time() - cpu)
                yield chunk

        def send(adapter: Any, request: Any, stream: bool = False, **kwargs: Any) -> Any:
            wall, cpu = time.perf_counter(), time.thread_time()
            try:
                response = original(adapter, request, stream=stream, **kwargs)
                if stream:
                    iter_content = response.iter_content
                    response.iter_content = lambda *a, **k: timed_iter(iter_content(*a, **k))
                else:
                    response.content  # noqa: B018 - the body read belongs to the wait
                return response
            finally:
                meter.add(time.perf_counter() - wall, time.thread_time() - cpu)

        HTTPAdapter.send = send  # type: ignore[method-assign]


METER = HttpMeter()


class ServerLog:
    """The server's own time, from its request log (``tracklog server`` writes each
    request's duration, first byte to last byte of the answer, on stderr) and the CPU
    time of its process from /proc."""

    def __init__(self) -> None:
        self.path: Path | None = None
        self.pid = 0

    def attach(self, path: Path | None, pid: int) -> None:
        self.path, self.pid = path, pid

    def mark(self) -> tuple[int, float]:
        if self.path is None:
            return 0, 0.0
        return self.path.stat().st_size, self.cpu()

    def cpu(self) -> float:
        with open(f"/proc/{self.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def since(self, mark: tuple[int, float]) -> tuple[float, float] | None:
        """(seconds of request durations, CPU seconds) since ``mark``; None when no
        log is attached (a server given by --url)."""
        if self.path is None:
            return None
        time.sleep(0.05)  # the last answer's line is written just after it is sent
        with open(self.path, "rb") as f:
            f.seek(mark[0])
            text = f.read().decode(errors="replace")
        ms = 0.0
        for line in text.splitlines():
            if line.endswith(" ms") and '"' in line:
                ms += float(line.rsplit(" ", 2)[1])
        return ms / 1000, self.cpu() - mark[1]


SERVER = ServerLog()


def median_time(fn: Callable[[], None], repeat: int) -> Timing:
    """Median total and client-side seconds of ``fn`` over ``repeat`` runs in this
    thread, and the server's shares of the total (see :class:`ServerLog`). One run
    before them is not timed: the first call of a route in a server process compiles its
    statements (several milliseconds, once), which is not the steady state measured."""
    fn()
    times, client = [], []
    mark = SERVER.mark()
    for _ in range(repeat):
        waited = METER.wall
        start = time.perf_counter()
        fn()
        elapsed = time.perf_counter() - start
        times.append(elapsed)
        client.append(elapsed - (METER.wall - waited))
    return Timing(statistics.median(times), statistics.median(client),
                  *shares(SERVER.since(mark), sum(times)))


def shares(server: tuple[float, float] | None, waited: float) -> tuple[float, float]:
    """The server's request time and CPU time as fractions of the client's ``waited``."""
    if server is None:
        return math.nan, math.nan
    return server[0] / waited, server[1] / waited


class Timing(NamedTuple):
    total: float
    client: float
    server: float = math.nan  # request durations in the server's log / client time
    server_cpu: float = math.nan  # the server process's CPU time / client time


def per(value: Timing, n: int) -> Timing:
    return value._replace(total=value.total / n, client=value.client / n)


class Scenarios:
    """Each scenario returns (total, client-side) seconds per operation, medians."""

    def __init__(self, url: str, sizes: dict[str, int], tmp: Path) -> None:
        self.url = url
        self.sizes = sizes
        self.tmp = tmp
        mlflow.set_tracking_uri(url)
        self.client = mlflow.MlflowClient(url)
        self.exp = self.client.create_experiment(f"bench-{uuid.uuid4().hex[:8]}")
        self.run_id = self.client.create_run(self.exp).info.run_id

    def log_metric(self) -> Timing:
        n = self.sizes["single"]
        counter = iter(range(10**9))

        def once() -> None:
            for _ in range(n):
                self.client.log_metric(self.run_id, "single", 1.0, step=next(counter))

        return per(median_time(once, 3), n)

    def log_batch(self) -> Timing:
        now = int(time.time() * 1000)
        counter = iter(range(10**9))

        def once() -> None:
            base = next(counter) * 1000
            metrics = [Metric(f"b{i % 10}", float(i), now + i, base + i) for i in range(1000)]
            self.client.log_batch(self.run_id, metrics=metrics)

        return median_time(once, 5)

    def create_run(self) -> Timing:
        def once() -> None:
            run = self.client.create_run(self.exp)
            self.client.log_batch(
                run.info.run_id, params=[Param(f"p{i}", str(i)) for i in range(10)]
            )
            self.client.set_terminated(run.info.run_id)

        return median_time(once, 10)

    def threaded_log_metric(self) -> Timing:
        per_thread = self.sizes["threaded"]
        calls = 8 * per_thread
        counter = iter(range(10**9))
        lock = threading.Lock()

        def worker() -> float:
            cpu = time.thread_time()
            for _ in range(per_thread):
                with lock:
                    step = next(counter)
                self.client.log_metric(self.run_id, "threaded", 1.0, step=step)
            return time.thread_time() - cpu

        totals, client = [], []
        mark = SERVER.mark()
        for _ in range(3):
            waited = METER.cpu
            start = time.perf_counter()
            with ThreadPoolExecutor(8) as pool:
                cpu = sum(f.result() for f in [pool.submit(worker) for _ in range(8)])
            totals.append((time.perf_counter() - start) / calls)
            client.append((cpu - (METER.cpu - waited)) / calls)
        # Each of the 8 threads waits for its own calls: the client's time is 8 × wall.
        return Timing(statistics.median(totals), statistics.median(client),
                      *shares(SERVER.since(mark), 8 * calls * sum(totals)))

    def search(self) -> Timing:
        exp = self.client.create_experiment(f"search-{uuid.uuid4().hex[:8]}")
        n_runs = self.sizes["runs"]

        def seed(i: int) -> None:
            run = self.client.create_run(exp, start_time=1_000_000 + i)
            self.client.log_metric(run.info.run_id, "score", float(i % 997), step=0)

        with ThreadPoolExecutor(8) as pool:
            list(pool.map(seed, range(n_runs)))
        expected = sum(1 for i in range(n_runs) if i % 997 > 10)

        def once() -> None:
            runs = self.client.search_runs(
                [exp], "metrics.score > 10", max_results=1000, order_by=["metrics.score DESC"]
            )
            assert len(runs) == min(1000, expected)

        return median_time(once, 5)

    def history(self) -> Timing:
        run = self.client.create_run(self.exp).info.run_id
        n = self.sizes["history"]
        now = int(time.time() * 1000)
        for start in range(0, n, 1000):
            metrics = [Metric("h", float(i), now + i, i) for i in range(start, start + 1000)]
            self.client.log_batch(run, metrics=metrics)

        def once() -> None:
            points = self.client.get_metric_history(run, "h")
            assert len(points) == n

        return median_time(once, 3)

    def artifact(self) -> tuple[Timing, Timing]:
        size_mb = self.sizes["artifact_mb"]
        path = self.tmp / "payload.bin"
        block = os.urandom(1024 * 1024)
        with open(path, "wb") as f:
            for _ in range(size_mb):
                f.write(block)
        run = self.client.create_run(self.exp).info.run_id
        up = median_time(lambda: self.client.log_artifact(run, str(path), "blob"), 3)
        dst = self.tmp / f"down-{uuid.uuid4().hex[:6]}"
        local: list[str] = []

        def download() -> None:
            shutil.rmtree(dst, ignore_errors=True)
            dst.mkdir()
            local.append(self.client.download_artifacts(run, "blob/payload.bin", str(dst)))

        down = median_time(download, 3)
        assert os.path.getsize(local[-1]) == size_mb * 1024 * 1024
        path.unlink()
        shutil.rmtree(dst)
        return up, down

    def all(self) -> dict[str, Timing]:
        out: dict[str, Timing] = {}

        def record(name: str, seconds: Timing) -> None:
            out[name] = seconds
            print(
                f"  {self.url}  {name:40} {fmt(seconds[0])}  client {fmt(seconds[1])}",
                file=sys.stderr,
                flush=True,
            )

        record("log_metric (per call)", self.log_metric())
        record("log_batch 1000 metrics", self.log_batch())
        record("create_run + 10 params + end", self.create_run())
        record("8 threads log_metric (per call)", self.threaded_log_metric())
        record(f"search_runs 1000 of {self.sizes['runs']}", self.search())
        record(f"get_metric_history {self.sizes['history']}", self.history())
        up, down = self.artifact()
        record(f"artifact {self.sizes['artifact_mb']} MB upload", up)
        record(f"artifact {self.sizes['artifact_mb']} MB download", down)
        return out


def fmt(seconds: float) -> str:
    return f"{seconds * 1000:10.2f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--url", help="benchmark this running tracklog server")
    parser.add_argument(
        "--mlflow", action="store_true", help=f"also benchmark mlflow server {MLFLOW_VERSION}"
    )
    parser.add_argument("--mlflow-venv", default="/tmp/mlflow-ref", type=Path)
    parser.add_argument("--quick", action="store_true", help="small sizes (smoke run)")
    args = parser.parse_args()
    METER.install()
    sizes = (
        {"single": 50, "threaded": 10, "runs": 1000, "history": 10000, "artifact_mb": 20}
        if args.quick
        else {"single": 300, "threaded": 50, "runs": 10000, "history": 100000, "artifact_mb": 200}
    )
    tmp = Path(tempfile.mkdtemp(prefix="tracklog-bench-"))
    processes = []
    results: dict[str, dict[str, float]] = {}
    try:
        if args.url:
            url = args.url
        else:
            url, proc, startup = start_tracklog(tmp)
            processes.append(proc)
            SERVER.attach(tmp / "tracklog.log", proc.pid)
            print(f"tracklog server healthy after {startup:.2f} s")
        results["tracklog"] = Scenarios(url, sizes, tmp).all()
        SERVER.attach(None, 0)
        if args.mlflow:
            ref_url, ref_proc, startup = start_mlflow(tmp, args.mlflow_venv)
            processes.append(ref_proc)
            print(f"mlflow server healthy after {startup:.2f} s")
            results["mlflow"] = Scenarios(ref_url, sizes, tmp).all()
        floor = transfer_floor.measure(sizes["artifact_mb"], tmp)
    finally:
        for proc in processes:
            stop(proc)
        shutil.rmtree(tmp, ignore_errors=True)
    print()
    print("command:", " ".join([Path(sys.executable).name, *sys.argv]))
    header = (f"{'scenario':36} {'tracklog':>13} {'client':>13} {'in send':>8} "
              f"{'server':>7} {'srv cpu':>8}")
    if "mlflow" in results:
        header += f" {'mlflow':>13} {'ratio':>7} {'ceiling':>8} {'mlflow client':>14}"
    print(header)
    for name, t in results["tracklog"].items():
        line = (f"{name:36} {fmt(t.total)} {fmt(t.client)} {1 - t.client / t.total:7.0%} "
                f"{t.server:6.0%} {t.server_cpu:7.0%}")
        if "mlflow" in results:
            ref = results["mlflow"][name]
            line += (f" {fmt(ref.total)} {ref.total / t.total:6.1f}x "
                     f"{ref.total / t.client:7.1f}x {fmt(ref.client)}")
        print(line)
    print("in send: 1 - client/total, the time inside the client's HTTP stack (its own "
          "http.client and urllib3 work, the loopback and the server); server: the "
          "server's request durations from its log, and srv cpu: its CPU time, each as a "
          "share of the time the client waited in all (for 8 threads, 8 × wall)")
    # A transfer lasts as long as the client takes to send or read it, so the server's
    # request spans nearly all of it: measured instead against a server that only
    # moves the bytes.
    mb = sizes["artifact_mb"]
    for kind, seconds in zip(("upload", "download"), floor, strict=True):
        total = results["tracklog"][f"artifact {mb} MB {kind}"].total
        print(f"artifact {mb} MB {kind}: floor {fmt(seconds).strip()} (the same client "
              f"against a server that only moves the bytes to or from a file); tracklog "
              f"beyond it: "
              f"{max(0.0, total - seconds) / total:.0%} of the client's time")


if __name__ == "__main__":
    main()
