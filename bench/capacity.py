"""Server capacity under pre-encoded load: tracklog beside FastTrackML and MLflow.

No Python client in the loop: wrk (Debian's package; ``tools/services/install-wrk``)
sends requests built by a Lua script per scenario, one wrk thread, so the server keeps
the other core. Every request carries unique timestamps, so no server can skip a
duplicate point. Usage, from the repository root::

    .venv/bin/python bench/capacity.py --quick                    # tracklog, SQLite
    .venv/bin/python bench/capacity.py --servers tracklog,fasttrackml,mlflow \\
        --db sqlite,postgresql --workers 1,2 --connections 1,8,64

Peers are installed once into their own virtualenvs (never the project's):
FastTrackML 0.6.0 under ``--fml-venv`` (default /tmp/fml-ref) and MLflow 3.17.2 under
``--mlflow-venv`` (default /tmp/mlflow-ref). MLflow runs with ``--workers`` uvicorn
workers like tracklog; FastTrackML is one Go process whatever ``--workers`` says.

Each server is populated over plain REST (``--runs`` runs of 5 params and a metric, one
run with ``--points`` history points, a 10 MB artifact), then each scenario runs for
``--duration`` seconds per connection count. log-batch sends every batch to one run;
log-batch-runs spreads the same batches over 64 runs in turn, as many training jobs
logging at once do. The table shows requests per second (or
metrics per second for the log-batch scenarios), p50 and p99 latency, errors (non-2xx, timeouts,
socket errors), the server's peak RSS (all its processes) over each measure and over the run, and
tracklog's ratio to each peer (above 1: tracklog ahead). Nothing here asserts a figure.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
PG_ADMIN = os.environ.get("TRACKLOG_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
API = "/api/2.0/mlflow"
ARTIFACT_MB = 10

# --- Lua scenarios: each defines `request()`; `done()` is appended from _DONE. -----------

_COMMON = """
local counter = 0
local base = {base}
local headers = {{["Content-Type"] = "application/json"}}
"""

_BATCHES = """
local runs = {{{runs}}}
local parts = {{}}
request = function()
  counter = counter + 1
  local t0 = base + counter * 1000
  for i = 1, 1000 do
    parts[i] = string.format('{{"key":"b","value":%d.25,"timestamp":%d,"step":%d}}',
                             i, t0 + i, i)
  end
  local body = '{{"run_id":"' .. runs[counter % #runs + 1] .. '","metrics":['
    .. table.concat(parts, ",") .. ']}}'
  return wrk.format("POST", "{api}/runs/log-batch", headers, body)
end
"""

LUA = {
    "log-metric": """
request = function()
  counter = counter + 1
  local body = string.format(
    '{{"run_id":"{run}","key":"m","value":%d.5,"timestamp":%d,"step":%d}}',
    counter, base + counter, counter)
  return wrk.format("POST", "{api}/runs/log-metric", headers, body)
end
""",
    # Every batch to one run; log-batch-runs spreads the same batches over SPREAD runs
    # in turn: consecutive batches (on different connections) write different rows of
    # latest_metrics, as many training jobs logging at once do, instead of queueing on
    # one run's row lock.
    "log-batch": _BATCHES.replace("{runs}", '"{run}"'),
    "log-batch-runs": _BATCHES.replace("{runs}", "{spread}"),
    # create-run, then log-batch of 10 params, then update: run ids come back in
    # create-run responses (not update's, which carry "run_info") and wait in a queue for
    # their next two requests. Responses on several connections come back in any order.
    "create-log-update": """
local ready, updating = {{}}, {{}}
request = function()
  counter = counter + 1
  local id = table.remove(updating)
  if id then
    return wrk.format("POST", "{api}/runs/update", headers, string.format(
      '{{"run_id":"%s","status":"FINISHED","end_time":%d}}', id, base + counter))
  end
  id = table.remove(ready)
  if id then
    local ps = {{}}
    for i = 1, 10 do ps[i] = string.format('{{"key":"p%d","value":"v%d"}}', i, counter) end
    table.insert(updating, id)
    return wrk.format("POST", "{api}/runs/log-batch", headers,
      '{{"run_id":"' .. id .. '","params":[' .. table.concat(ps, ",") .. ']}}')
  end
  return wrk.format("POST", "{api}/runs/create", headers, string.format(
    '{{"experiment_id":"{experiment}","start_time":%d}}', base + counter))
end
response = function(status, hdrs, body)
  if status == 200 and not string.find(body, '"run_info"', 1, true) then
    local id = string.match(body, '"run_id"%s*:%s*"(%w+)"')
    if id then table.insert(ready, id) end
  end
end
""",
    "search": """
local body = '{{"experiment_ids":["{experiment}"],'
  .. '"filter":"metrics.m > 0.5 and params.p0 = \\'a\\'",'
  .. '"order_by":["metrics.m DESC"],"max_results":100}}'
request = function()
  return wrk.format("POST", "{api}/runs/search", headers, body)
end
""",
    "history": """
request = function()
  return wrk.format("GET", "{api}/metrics/get-history?run_id={history}&metric_key=loss")
end
""",
    "history-page": """
request = function()
  return wrk.format("GET",
    "{api}/metrics/get-history?run_id={history}&metric_key=loss&max_results=25000")
end
""",
    "upload": """
local blob = string.rep("x", {size})
request = function()
  counter = counter + 1
  return wrk.format("PUT", "/api/2.0/mlflow-artifacts/artifacts/capacity/{tag}/u" .. counter,
                    {{["Content-Type"] = "application/octet-stream"}}, blob)
end
""",
    "download": """
request = function()
  return wrk.format("GET", "/api/2.0/mlflow-artifacts/artifacts/capacity/{tag}/blob")
end
""",
}

_DONE = """
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'RESULT {"requests":%d,"duration_us":%d,"non2xx":%d,"socket":%d,"p50_us":%d,"p99_us":%d}\\n',
    summary.requests, summary.duration, e.status, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
"""

SCENARIOS = list(LUA)
UNIT = {"log-batch": 1000, "log-batch-runs": 1000}  # metrics per request
#: Runs the log-batch-runs scenario spreads its batches over.
SPREAD = 64
ARTIFACTS = {"upload", "download"}


# --- servers ------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ensure_venv(venv: Path, *packages: str, exe: str, no_deps: bool = False) -> Path:
    binary = venv / "bin" / exe
    if not binary.exists():
        subprocess.run(["uv", "venv", "-q", "--allow-existing", str(venv)], check=True)
        subprocess.run(["uv", "pip", "install", "-q", "--python", str(venv / "bin" / "python"),
                        *(["--no-deps"] if no_deps else []), *packages], check=True)
    return binary


@dataclass
class Server:
    name: str
    url: str
    process: subprocess.Popen
    artifacts: bool
    db_url: str = ""
    peak_rss: float = 0.0
    #: Peak over the current measure only (reset before each).
    window_rss: float = 0.0
    _stop: threading.Event = field(default_factory=threading.Event)

    def watch(self) -> None:
        def loop() -> None:
            while not self._stop.wait(0.25):
                rss = _tree_rss(self.process.pid)
                self.peak_rss = max(self.peak_rss, rss)
                self.window_rss = max(self.window_rss, rss)

        threading.Thread(target=loop, daemon=True).start()

    def stop(self) -> None:
        self._stop.set()
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(20)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(self.process.pid, signal.SIGKILL)


def _tree_rss(pid: int) -> float:
    """Resident MiB of a process and all its descendants (workers)."""
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        try:
            with open(f"/proc/{p}/status") as f:
                total += next(int(line.split()[1]) for line in f if line.startswith("VmRSS"))
            with open(f"/proc/{p}/task/{p}/children") as f:
                todo += [int(c) for c in f.read().split()]
        except (OSError, StopIteration):
            pass
    return total / 1024


def start(kind: str, db: str, workers: int, tmp: Path, args: argparse.Namespace) -> Server:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    work = tmp / f"{kind}-{db}-{workers}"
    work.mkdir(parents=True)
    db_url = _database(db, work)
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"}
    if kind == "tracklog":
        cmd = [str(Path(sys.executable).with_name("tracklog")), "server", "--backend-store-uri",
               db_url, "--artifacts-destination", str(work / "artifacts"), "--port", str(port),
               "--workers", str(workers), "--quiet"]
        if "--quiet" not in _server_help():
            cmd.remove("--quiet")
    elif kind == "mlflow":
        exe = ensure_venv(args.mlflow_venv, "mlflow==3.17.2", "psycopg2-binary", exe="mlflow")
        cmd = [str(exe), "server", "--backend-store-uri", db_url, "--artifacts-destination",
               str(work / "artifacts"), "--host", "127.0.0.1", "--port", str(port),
               "--workers", str(workers)]
    elif kind == "fasttrackml":
        # Only its Go binary is needed; its Python requirements (mlflow<3) do not resolve
        # beside a current pip index.
        exe = ensure_venv(args.fml_venv, "fasttrackml==0.6.0", exe="fml", no_deps=True)
        fml_db = db_url.replace("sqlite:///", "sqlite://").replace("postgresql://", "postgres://")
        cmd = [str(exe), "server", "--listen-address", f"127.0.0.1:{port}", "--database-uri",
               fml_db, "--default-artifact-root", str(work / "artifacts")]
    else:
        raise SystemExit(f"unknown server {kind!r}")
    log = open(work / "server.log", "wb")  # noqa: SIM115 - lives as long as the server
    process = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log, cwd=work,
                               env=env, start_new_session=True)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{kind} exited; see {work / 'server.log'}")
        try:
            if httpx.get(url + "/health", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            time.sleep(0.1)
    else:
        raise RuntimeError(f"{kind} did not become healthy; see {work / 'server.log'}")
    server = Server(kind, url, process, artifacts=kind != "fasttrackml", db_url=db_url)
    server.watch()
    return server


_HELP: list[str] = []


def _server_help() -> str:
    if not _HELP:
        exe = str(Path(sys.executable).with_name("tracklog"))
        _HELP.append(subprocess.run([exe, "server", "--help"], capture_output=True,
                                    text=True).stdout)
    return _HELP[0]


#: PostgreSQL databases made for this run, dropped once their server has stopped.
_CREATED: list[str] = []


def _database(db: str, work: Path) -> str:
    if db == "sqlite":
        return f"sqlite:///{work}/server.db"
    import sqlalchemy as sa

    name = f"capacity_{uuid.uuid4().hex[:10]}"
    engine = sa.create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE {name}")
    engine.dispose()
    _CREATED.append(name)
    return str(sa.make_url(PG_ADMIN).set(database=name))


def analyze(server: Server) -> None:
    """Refresh a PostgreSQL database's planner statistics once it is populated, as
    autovacuum would soon after (the tables were created empty, and a server running
    with autovacuum off would otherwise plan every query for empty tables)."""
    if not server.db_url.startswith("postgresql"):
        return
    import sqlalchemy as sa

    engine = sa.create_engine(server.db_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.exec_driver_sql("ANALYZE")
    engine.dispose()


def _drop_databases() -> None:
    import sqlalchemy as sa

    engine = sa.create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        while _CREATED:
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {_CREATED.pop()} WITH (FORCE)")
    engine.dispose()


# --- population over plain REST ----------------------------------------------------------


@dataclass
class Fixture:
    experiment: str
    run: str
    history: str
    tag: str
    spread: list[str] = field(default_factory=list)


def populate(server: Server, runs: int, points: int) -> Fixture:
    t0 = time.monotonic()
    with httpx.Client(base_url=server.url + API, timeout=600) as http:
        def post(path: str, body: dict) -> dict:
            r = http.post(path, json=body)
            if r.status_code != 200:
                raise RuntimeError(f"{server.name} {path}: {r.status_code} {r.text[:300]}")
            return r.json()

        exp = post("/experiments/create", {"name": f"capacity-{uuid.uuid4().hex[:6]}"})
        experiment = exp["experiment_id"]

        def one(i: int) -> None:
            run = post("/runs/create", {"experiment_id": experiment, "start_time": i + 1})
            post("/runs/log-batch", {
                "run_id": run["run"]["info"]["run_id"],
                "params": [{"key": f"p{k}", "value": "abcdefgh"[(i * 7 + k) % 8]}
                           for k in range(5)],
                # No zero values or timestamps: FastTrackML takes them for missing fields.
                "metrics": [{"key": "m", "value": (i * 7919 % 1000 + 1) / 1001,
                             "timestamp": i + 1, "step": 0}],
            })

        with ThreadPoolExecutor(8) as pool:
            list(pool.map(one, range(runs)))
        target = post("/runs/create", {"experiment_id": experiment, "start_time": 0})
        spread = [post("/runs/create", {"experiment_id": experiment, "start_time": 0})
                  ["run"]["info"]["run_id"] for _ in range(SPREAD)]
        history = post("/runs/create", {"experiment_id": experiment, "start_time": 0})
        hid = history["run"]["info"]["run_id"]
        for start in range(0, points, 1000):
            post("/runs/log-batch", {"run_id": hid, "metrics": [
                {"key": "loss", "value": 1 / (s + 1), "timestamp": s + 1, "step": s}
                for s in range(start, min(points, start + 1000))]})
    tag = uuid.uuid4().hex[:8]
    if server.artifacts:
        httpx.put(f"{server.url}/api/2.0/mlflow-artifacts/artifacts/capacity/{tag}/blob",
                  content=os.urandom(ARTIFACT_MB * 2**20), timeout=600).raise_for_status()
    print(f"  populated {server.name}: {runs} runs, {points} points in "
          f"{time.monotonic() - t0:.0f} s", flush=True)
    return Fixture(experiment, target["run"]["info"]["run_id"], hid, tag, spread)


# --- load ---------------------------------------------------------------------------------


@dataclass
class Result:
    rate: float  # requests (or metrics) per second
    p50_ms: float
    p99_ms: float
    errors: int


def run_wrk(wrk: str, url: str, scenario: str, fx: Fixture, connections: int,
            duration: int, tmp: Path) -> Result:
    script = tmp / f"{scenario}.lua"
    base = time.time_ns() // 1000  # microseconds: unique across runs and scenarios
    text = (_COMMON + LUA[scenario]).format(
        base=base, run=fx.run, history=fx.history, experiment=fx.experiment, api=API,
        tag=fx.tag, size=ARTIFACT_MB * 2**20, spread=",".join(f'"{r}"' for r in fx.spread))
    script.write_text(text + _DONE)
    out = subprocess.run(
        [wrk, "-t1", f"-c{connections}", f"-d{duration}s", "--timeout", "30s", "-s",
         str(script), url], capture_output=True, text=True, timeout=duration + 120)
    line = next((x for x in out.stdout.splitlines() if x.startswith("RESULT ")), None)
    if line is None:
        raise RuntimeError(f"wrk printed no result:\n{out.stdout}\n{out.stderr}")
    r = json.loads(line[7:])
    seconds = r["duration_us"] / 1e6
    return Result(r["requests"] * UNIT.get(scenario, 1) / seconds, r["p50_us"] / 1000,
                  r["p99_us"] / 1000, r["non2xx"] + r["socket"])


# --- report -------------------------------------------------------------------------------


def _cell(r: Result | None) -> str:
    if r is None:
        return "n/a"
    err = f" err {r.errors}" if r.errors else ""
    return f"{r.rate:,.0f}/s p50 {r.p50_ms:.0f} p99 {r.p99_ms:.0f}{err}"


def report(results: dict, servers: list[str], rss: dict) -> None:
    print()
    head = ["scenario", "db", "w", "c", *servers]
    peers = [s for s in servers if s != "tracklog"]
    if "tracklog" in servers:
        head += [f"vs {p}" for p in peers]
    rows = [head]
    for (scenario, db, workers, conns), by in results.items():
        row = [scenario, db, str(workers), str(conns)] + [_cell(by.get(s)) for s in servers]
        if "tracklog" in servers:
            mine = by.get("tracklog")
            for p in peers:
                other = by.get(p)
                if mine is None or other is None or not other.rate:
                    row.append("-")
                elif scenario.startswith(("history", "search")):
                    row.append(f"{other.p50_ms / max(mine.p50_ms, 1e-3):.2f}x (p50)")
                else:
                    row.append(f"{mine.rate / other.rate:.2f}x")
        rows.append(row)
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    for r in rows:
        print("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)))
    print("\npeak RSS (MiB, all processes of the server): over the whole run; and the "
          "highest single measure's, with its scenario")
    for key, (whole, worst) in rss.items():
        top = max(worst, key=worst.get) if worst else "-"
        print(f"  {key}: {whole:.0f}; single measure {worst.get(top, 0):.0f} ({top})")
    print("\nratios above 1: tracklog ahead (throughput, or peer p50 / tracklog p50)")


@contextmanager
def serving(kind: str, db: str, workers: int, tmp: Path, args) -> Iterator[Server]:
    server = start(kind, db, workers, tmp, args)
    try:
        yield server
    finally:
        server.stop()
        if _CREATED:
            _drop_databases()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--servers", default="tracklog")
    ap.add_argument("--db", default="sqlite")
    ap.add_argument("--workers", default="1")
    ap.add_argument("--connections")
    ap.add_argument("--scenarios", default=",".join(SCENARIOS))
    ap.add_argument("--duration", type=int)
    ap.add_argument("--runs", type=int)
    ap.add_argument("--points", type=int)
    ap.add_argument("--quick", action="store_true",
                    help="1,000 runs, 20,000 points, 3 s per measure, 1 and 8 connections")
    ap.add_argument("--fml-venv", type=Path, default=Path("/tmp/fml-ref"))
    ap.add_argument("--mlflow-venv", type=Path, default=Path("/tmp/mlflow-ref"))
    args = ap.parse_args()
    sizes = (1000, 20_000, 3, "1,8") if args.quick else (10_000, 100_000, 8, "1,8,64")
    for name, default in zip(("runs", "points", "duration", "connections"), sizes, strict=True):
        if getattr(args, name) is None:
            setattr(args, name, default)
    wrk = shutil.which("wrk")
    if wrk is None:
        raise SystemExit("wrk is not installed: run tools/services/install-wrk")
    servers = args.servers.split(",")
    scenarios = args.scenarios.split(",")
    unknown = set(scenarios) - set(SCENARIOS)
    if unknown:
        raise SystemExit(f"unknown scenarios {sorted(unknown)}; known: {SCENARIOS}")
    results: dict = {}
    rss: dict = {}
    tmp = Path(tempfile.mkdtemp(prefix="capacity-"))
    try:
        for db in args.db.split(","):
            for workers in (int(w) for w in args.workers.split(",")):
                for kind in servers:
                    print(f"{kind} on {db}, {workers} worker(s)", flush=True)
                    worst: dict[str, float] = {}
                    with serving(kind, db, workers, tmp, args) as server:
                        fx = populate(server, args.runs, args.points)
                        analyze(server)
                        for scenario in scenarios:
                            if scenario in ARTIFACTS and not server.artifacts:
                                continue
                            for conns in (int(c) for c in args.connections.split(",")):
                                server.window_rss = 0.0
                                r = run_wrk(wrk, server.url, scenario, fx, conns,
                                            args.duration, tmp)
                                results.setdefault((scenario, db, workers, conns), {})[kind] = r
                                worst[scenario] = max(worst.get(scenario, 0.0),
                                                      server.window_rss)
                                print(f"  {scenario:18} c={conns:<3} {_cell(r)} "
                                      f"rss {server.window_rss:.0f}", flush=True)
                        rss[f"{kind} {db} w={workers}"] = (server.peak_rss, worst)
        report(results, servers, rss)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
