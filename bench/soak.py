"""Soak `tracklog server` on PostgreSQL: mixed load, slow clients, database restarts.

Usage (from the repository root, as root: the private cluster runs as user postgres)::

    .venv/bin/python bench/soak.py                      # 30 minutes
    .venv/bin/python bench/soak.py --minutes 3 --restart-every 45

What it does:

1. starts a private PostgreSQL cluster (``initdb`` + ``pg_ctl`` as user ``postgres``, on a
   free loopback port, in a temporary directory) and one ``tracklog server`` on it with
   local artifacts;
2. runs, for ``--minutes``: writers (each creates runs and logs batches of metrics,
   params and tags), searchers (``runs/search`` with filters and orderings, metric
   histories), artifact workers (upload, download and compare files of 64 KiB–1 MiB),
   and slow clients (an upload trickling one byte every few seconds, a connection that
   sends half a request line and then nothing);
3. restarts PostgreSQL (``pg_ctl restart -m fast``) every ``--restart-every`` seconds
   while all of that runs; requests failing meanwhile are counted, not retried;
4. afterwards checks, through the API, that every acknowledged write (a 200 answer) is
   there: each batch's metric points in the history, each param and tag, each artifact
   byte for byte; that the server answers without having been restarted; and prints the
   server's resident memory sampled every ``--sample-every`` seconds.

Nothing here asserts a timing; the exit status is 1 if an acknowledged write is missing
or the server did not recover.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
TRACKLOG = str(Path(sys.executable).with_name("tracklog"))
API = "/api/2.0/mlflow"
PROXY = "/api/2.0/mlflow-artifacts/artifacts"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pg_bin(name: str) -> str:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"))
    if not candidates:
        sys.exit(f"soak: {name} not found (install PostgreSQL's server binaries)")
    return str(candidates[-1])


class Cluster:
    """A private PostgreSQL cluster run as user postgres."""

    def __init__(self, base: Path) -> None:
        self.dir = base / "pg"
        self.port = free_port()
        self.dir.mkdir()
        shutil.chown(base, "postgres")
        shutil.chown(self.dir, "postgres")
        self._as_postgres([pg_bin("initdb"), "-D", str(self.dir), "-A", "trust", "-U",
                           "postgres", "--no-sync"])

    def _as_postgres(self, argv: list[str]) -> None:
        subprocess.run(["runuser", "-u", "postgres", "--", *argv], check=True,
                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                       stderr=subprocess.STDOUT)

    def _ctl(self, *args: str) -> None:
        options = (f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.dir} "
                   "-c max_connections=100 -c fsync=on")
        self._as_postgres([pg_bin("pg_ctl"), "-D", str(self.dir), "-w", "-l",
                           str(self.dir / "server.log"), "-o", options, *args])

    def start(self) -> None:
        self._ctl("start")

    def restart(self) -> None:
        self._ctl("-m", "fast", "restart")

    def stop(self) -> None:
        self._ctl("-m", "fast", "stop")

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"


@dataclass
class Ledger:
    """Acknowledged writes, and what failed (by kind), shared by the workers."""

    batches: list[tuple[str, int]] = field(default_factory=list)  # (run_id, batch number)
    artifacts: dict[str, str] = field(default_factory=dict)  # path -> sha256
    ok: Counter = field(default_factory=Counter)
    failed: Counter = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def count(self, kind: str, success: bool, answer: int | str = "") -> None:
        """One request of ``kind``; a failure is kept by its answer (status or error)."""
        with self.lock:
            if success:
                self.ok[kind] += 1
            else:
                self.failed[f"{kind} ({answer})" if answer else kind] += 1


def writer(base: str, experiment: str, ledger: Ledger, stop: threading.Event) -> None:
    with httpx.Client(base_url=base, timeout=30) as c:
        run_id, batch = None, 0
        while not stop.is_set():
            try:
                if run_id is None or batch >= 20:
                    r = c.post(API + "/runs/create", json={"experiment_id": experiment,
                                                           "start_time": int(time.time())})
                    ledger.count("create run", r.status_code == 200, r.status_code)
                    if r.status_code != 200:
                        time.sleep(0.2)
                        continue
                    run_id, batch = r.json()["run"]["info"]["run_id"], 0
                body = {
                    "run_id": run_id,
                    "metrics": [{"key": f"m{k}", "value": batch + k / 10, "timestamp": batch,
                                 "step": batch} for k in range(50)],
                    "params": [{"key": f"p{batch}", "value": str(batch)}],
                    "tags": [{"key": f"t{batch}", "value": str(batch)}],
                }
                r = c.post(API + "/runs/log-batch", json=body)
                ledger.count("log-batch", r.status_code == 200, r.status_code)
                if r.status_code == 200:
                    with ledger.lock:
                        ledger.batches.append((run_id, batch))
                    batch += 1
                else:
                    time.sleep(0.2)
            except httpx.HTTPError as exc:
                ledger.count("log-batch", False, type(exc).__name__)
                time.sleep(0.2)


def searcher(base: str, experiment: str, ledger: Ledger, stop: threading.Event) -> None:
    filters = ["", "metrics.m1 > 3", "params.p0 = '0'", "attributes.status = 'RUNNING'",
               "tags.t1 LIKE '1%'"]
    with httpx.Client(base_url=base, timeout=30) as c:
        while not stop.is_set():
            try:
                r = c.post(API + "/runs/search", json={
                    "experiment_ids": [experiment], "filter": random.choice(filters),
                    "max_results": 100, "order_by": ["metrics.m0 DESC"]})
                ledger.count("search", r.status_code == 200, r.status_code)
                runs = r.json().get("runs", []) if r.status_code == 200 else []
                if runs:
                    r = c.get(API + "/metrics/get-history", params={
                        "run_id": runs[0]["info"]["run_id"], "metric_key": "m1"})
                    ledger.count("history", r.status_code == 200, r.status_code)
            except httpx.HTTPError as exc:
                ledger.count("search", False, type(exc).__name__)
                time.sleep(0.2)


def artifact_worker(base: str, prefix: str, ledger: Ledger, stop: threading.Event) -> None:
    rng = random.Random(prefix)
    with httpx.Client(base_url=base, timeout=60) as c:
        n = 0
        while not stop.is_set():
            data = rng.randbytes(rng.choice([64, 256, 1024]) * 1024)
            path = f"{prefix}/file-{n}.bin"
            try:
                r = c.put(f"{PROXY}/{path}", content=data)
                ledger.count("upload", r.status_code == 200, r.status_code)
                if r.status_code == 200:
                    with ledger.lock:
                        ledger.artifacts[path] = hashlib.sha256(data).hexdigest()
                    r = c.get(f"{PROXY}/{path}")
                    ledger.count("download", r.status_code == 200 and r.content == data)
                n += 1
            except httpx.HTTPError as exc:
                ledger.count("upload", False, type(exc).__name__)
                time.sleep(0.2)


def slow_uploader(base: str, prefix: str, ledger: Ledger, stop: threading.Event,
                  pause: float) -> None:
    """An upload whose body trickles in one byte per ``pause`` seconds."""

    def trickle():
        for _ in range(1000):
            if stop.is_set():
                return
            yield b"x"
            time.sleep(pause)

    while not stop.is_set():
        try:
            with httpx.Client(base_url=base, timeout=httpx.Timeout(120, read=120)) as c:
                r = c.put(f"{PROXY}/{prefix}/slow-{uuid.uuid4().hex}.bin", content=trickle())
                ledger.count("slow upload answered", r.status_code < 500)
        except httpx.HTTPError:
            ledger.count("slow upload cut off", True)


def idle_connection(port: int, ledger: Ledger, stop: threading.Event) -> None:
    """Half a request line, then silence, until the server hangs up."""
    while not stop.is_set():
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
                s.sendall(b"GET /api/2.0/mlflow/runs/get?run_id=")
                s.settimeout(1)
                while not stop.is_set():
                    try:
                        if s.recv(1024) == b"":
                            ledger.count("idle connection closed by server", True)
                            break
                    except TimeoutError:
                        continue
        except OSError:
            time.sleep(1)


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def verify(base: str, ledger: Ledger) -> list[str]:
    """Every acknowledged write, read back through the API."""
    problems: list[str] = []
    by_run: dict[str, set[int]] = {}
    for run_id, batch in ledger.batches:
        by_run.setdefault(run_id, set()).add(batch)
    with httpx.Client(base_url=base, timeout=60) as c:
        for run_id, batches in by_run.items():
            run = c.get(API + "/runs/get", params={"run_id": run_id}).json()["run"]
            params = {p["key"] for p in run["data"].get("params", [])}
            tags = {t["key"] for t in run["data"].get("tags", [])}
            history = c.get(API + "/metrics/get-history",
                            params={"run_id": run_id, "metric_key": "m7"}).json()
            steps = {m["step"] for m in history.get("metrics", [])}
            for b in batches:
                if f"p{b}" not in params or f"t{b}" not in tags or b not in steps:
                    problems.append(f"run {run_id}: batch {b} acknowledged but missing")
        for path, digest in ledger.artifacts.items():
            r = c.get(f"{PROXY}/{path}")
            if r.status_code != 200 or hashlib.sha256(r.content).hexdigest() != digest:
                problems.append(f"artifact {path}: acknowledged but {r.status_code}/differs")
    return problems


def wait_healthy(base: str, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if httpx.get(base + "/health", timeout=2).status_code == 200:
                return True
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    return False


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=30)
    ap.add_argument("--restart-every", type=float, default=120,
                    help="seconds between PostgreSQL restarts")
    ap.add_argument("--sample-every", type=float, default=15, help="seconds between RSS samples")
    ap.add_argument("--writers", type=int, default=4)
    ap.add_argument("--searchers", type=int, default=2)
    ap.add_argument("--artifact-workers", type=int, default=2)
    ap.add_argument("--slow-clients", type=int, default=3)
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="tracklog-soak-"))
    cluster = Cluster(tmp)
    cluster.start()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = tmp / "server.log"
    with open(log, "wb") as out:
        server = subprocess.Popen(
            [TRACKLOG, "server", "--backend-store-uri", cluster.url,
             "--artifacts-destination", str(tmp / "artifacts"), "--host", "127.0.0.1",
             "--port", str(port)],
            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, cwd=tmp)
    ledger = Ledger()
    stop = threading.Event()
    threads: list[threading.Thread] = []
    try:
        if not wait_healthy(base, 60):
            print(log.read_text()[-3000:])
            return 1
        experiment = httpx.post(base + API + "/experiments/create",
                                json={"name": "soak"}).json()["experiment_id"]
        workers = (
            [(writer, (base, experiment, ledger, stop))] * args.writers
            + [(searcher, (base, experiment, ledger, stop))] * args.searchers
            + [(artifact_worker, (base, f"soak/a{i}", ledger, stop))
               for i in range(args.artifact_workers)]
            + [(slow_uploader, (base, f"soak/s{i}", ledger, stop, 5.0))
               for i in range(max(0, args.slow_clients - 1))]
            + [(idle_connection, (port, ledger, stop))] * min(1, args.slow_clients)
        )
        for target, targs in workers:
            t = threading.Thread(target=target, args=targs, daemon=True)
            t.start()
            threads.append(t)

        started = time.monotonic()
        end = started + args.minutes * 60
        next_restart = started + args.restart_every
        next_sample = started
        samples: list[tuple[float, int]] = []
        restarts: list[float] = []
        print(f"soak: {args.minutes} min on PostgreSQL :{cluster.port}, server pid "
              f"{server.pid}, restart every {args.restart_every:.0f} s")
        while time.monotonic() < end:
            now = time.monotonic()
            if server.poll() is not None:
                print("soak: the server exited")
                break
            if now >= next_sample:
                samples.append((now - started, rss_kib(server.pid)))
                with ledger.lock:
                    done = sum(ledger.ok.values())
                    failed = sum(ledger.failed.values())
                print(f"  t={now - started:6.0f} s  rss={samples[-1][1] / 1024:7.1f} MiB  "
                      f"ok={done}  failed={failed}", flush=True)
                next_sample += args.sample_every
            if now >= next_restart:
                t0 = time.monotonic()
                cluster.restart()
                restarts.append(time.monotonic() - t0)
                print(f"  t={now - started:6.0f} s  PostgreSQL restarted "
                      f"({restarts[-1]:.1f} s)", flush=True)
                next_restart += args.restart_every
            time.sleep(0.2)
        stop.set()
        for t in threads:
            t.join(30)

        recovered = server.poll() is None and wait_healthy(base, 30)
        write = httpx.post(base + API + "/runs/create", json={"experiment_id": experiment},
                           timeout=30)
        recovered = recovered and write.status_code == 200
        problems = verify(base, ledger) if recovered else ["server did not recover"]
        print("soak: results")
        print(f"  database restarts: {len(restarts)} "
              f"(each {', '.join(f'{r:.1f}' for r in restarts)} s)")
        for kind in sorted(ledger.ok):
            print(f"  {kind:34s} ok={ledger.ok[kind]:7d}")
        for kind in sorted(ledger.failed):
            print(f"  {kind:34s} failed={ledger.failed[kind]:5d}")
        print(f"  acknowledged batches: {len(ledger.batches)} "
              f"({len(ledger.batches) * 50} metric points), artifacts: {len(ledger.artifacts)}")
        print(f"  server recovered without restart: {recovered} (pid {server.pid})")
        if samples:
            warm = [s for s in samples if s[0] >= min(60.0, samples[-1][0] / 4)] or samples
            print(f"  RSS MiB: start {samples[0][1] / 1024:.1f}, after warm-up "
                  f"{warm[0][1] / 1024:.1f}, end {samples[-1][1] / 1024:.1f}, "
                  f"max {max(s[1] for s in samples) / 1024:.1f}")
        print(f"  acknowledged writes missing: {len(problems)}")
        for p in problems[:20]:
            print(f"    {p}")
        return 0 if recovered and not problems else 1
    finally:
        stop.set()
        if server.poll() is None:
            server.terminate()
            try:
                server.wait(15)
            except subprocess.TimeoutExpired:
                server.kill()
        try:
            cluster.stop()
        except subprocess.CalledProcessError:
            pass
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    os.chdir(ROOT)
    sys.exit(main())
