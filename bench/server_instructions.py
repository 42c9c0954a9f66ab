"""Instructions the server executes per operation of the real MLflow client: a figure that
does not move with what else the machine is doing, unlike the times of server_bench.py.

Usage (from the repository root; needs valgrind)::

    .venv/bin/python bench/server_instructions.py                    # both scenarios
    .venv/bin/python bench/server_instructions.py --scenario log_metric --ops 300

``tracklog server`` (SQLite, local artifacts) runs under ``valgrind --tool=callgrind``;
after a warm-up its counters are zeroed and dumped around ``--ops`` operations of
``mlflow.MlflowClient``, and the instructions of all its threads are divided by the
operations. Scenarios: ``create_run`` (a run's create, 10 params in one log_batch, and
set_terminated: create, log-batch, get and update requests) and ``log_metric`` (one
log-metric request). Under callgrind the server runs about 30 times slower, so only the
count is a measure; to compare two versions, point ``PYTHONPATH`` at the other's
sources. Nothing here asserts a figure.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "600")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

import mlflow  # noqa: E402
from mlflow.entities import Param  # noqa: E402
from server_bench import free_port, stop, wait_healthy  # noqa: E402

WARM_UP = 20


def _operation(client: mlflow.MlflowClient, scenario: str) -> Callable[[], None]:
    experiment_id = client.create_experiment("instructions")
    run_id = client.create_run(experiment_id).info.run_id
    steps = iter(range(10**9))

    def create_run() -> None:
        run = client.create_run(experiment_id)
        client.log_batch(run.info.run_id, params=[Param(f"p{i}", str(i)) for i in range(10)])
        client.set_terminated(run.info.run_id)

    def log_metric() -> None:
        client.log_metric(run_id, "m", 1.0, step=next(steps))

    return {"create_run": create_run, "log_metric": log_metric}[scenario]


def _callgrind(action: str, pid: int) -> None:
    subprocess.run(["callgrind_control", action, str(pid)], check=True, capture_output=True)


def _instructions(dump: Path) -> int:
    for line in dump.read_text().splitlines():
        if line.startswith("summary:"):
            return int(line.split()[1])
    raise SystemExit(f"no summary in {dump}")


def measure(scenario: str, ops: int, tmp: Path) -> float:
    """Millions of server instructions per operation of ``scenario``."""
    port = free_port()
    exe = Path(sys.executable).with_name("tracklog")
    process = subprocess.Popen(
        ["valgrind", "--tool=callgrind", f"--callgrind-out-file={tmp}/callgrind.out.%p",
         str(exe), "server", "--backend-store-uri", f"sqlite:///{tmp}/tracklog.db",
         "--artifacts-destination", str(tmp / "artifacts"), "--port", str(port)],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        cwd=tmp)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_healthy(url, process, timeout=300)  # under valgrind a start takes a while
        # The client prints a line per set_terminated.
        with contextlib.redirect_stdout(io.StringIO()):
            operation = _operation(mlflow.MlflowClient(url), scenario)
            for _ in range(WARM_UP):
                operation()
            _callgrind("--zero", process.pid)
            for _ in range(ops):
                operation()
        _callgrind("--dump", process.pid)
        deadline = time.monotonic() + 60
        while not (dumps := list(tmp.glob("callgrind.out.*.1"))):
            if time.monotonic() > deadline:
                raise SystemExit("callgrind wrote no dump")
            time.sleep(0.2)
        time.sleep(0.5)  # the dump is written in one go, but let it finish
        return _instructions(dumps[0]) / ops / 1e6
    finally:
        stop(process)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--scenario", choices=["create_run", "log_metric", "all"], default="all")
    ap.add_argument("--ops", type=int, default=100)
    args = ap.parse_args()
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed (apt-get install valgrind)")
    scenarios = ["create_run", "log_metric"] if args.scenario == "all" else [args.scenario]
    for scenario in scenarios:
        tmp = Path(tempfile.mkdtemp(prefix="tracklog-instructions-"))
        try:
            figure = measure(scenario, args.ops, tmp)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        print(f"{scenario:12} {figure:.3f} M instructions per operation ({args.ops} operations)",
              flush=True)


if __name__ == "__main__":
    main()
