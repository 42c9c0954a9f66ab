"""Run a real ``tracklog server`` in a test: start it on a free port, wait until it is
healthy, stop it afterwards.

    from tracklog.testing.server import start_server

    def test_through_a_server(tmp_path):
        with start_server("--backend-store-uri", f"sqlite:///{tmp_path}/t.db",
                          cwd=tmp_path) as server:
            httpx.get(server.url + "/api/2.0/mlflow/experiments/search?max_results=1")

The server is the ``tracklog`` command installed beside the running Python, so it sees the
same plugins as the test.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx

TRACKLOG = str(Path(sys.executable).with_name("tracklog"))


def free_port(host: str = "127.0.0.1") -> int:
    """A port nobody listens on right now (and, until someone binds it, a closed one)."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def stop_process(process: subprocess.Popen, timeout: float = 10) -> None:
    """Terminate ``process`` and wait for it; kill it if it has not ended in ``timeout``
    seconds. Safe to call on a process that has already ended."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout)


@dataclass
class ServerProcess:
    """A running server: ``url`` includes the static prefix, ``base`` does not."""

    url: str
    base: str
    port: int
    process: subprocess.Popen
    log: Path

    def stop(self) -> None:
        stop_process(self.process)

    def output(self) -> str:
        """What the server has printed so far."""
        return self.log.read_text(errors="replace")

    def __enter__(self) -> ServerProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_server(*args: str, cwd: Path, prefix: str = "", port: int | None = None,
                 host: str = "127.0.0.1", env: Mapping[str, str] | None = None,
                 unset: Iterable[str] = (), log: Path | None = None,
                 timeout: float = 30.0) -> ServerProcess:
    """Start ``tracklog server --host HOST --port PORT ARGS…`` and wait for ``/health``.

    :param cwd: the server's working directory (its log goes there unless ``log`` is given).
    :param prefix: passed as ``--static-prefix`` and included in the returned ``url``.
    :param env: variables added to this process's environment for the server.
    :param unset: variables of this process's environment the server must not see.
    :raises RuntimeError: with the end of the server's output, if it exits or is not
        healthy within ``timeout`` seconds.
    """
    port = port or free_port(host)
    log = log or cwd / f"server-{port}.log"
    command = [TRACKLOG, "server", "--host", host, "--port", str(port), *args]
    if prefix:
        command += ["--static-prefix", prefix]
    child_env = {k: v for k, v in os.environ.items() if k not in set(unset)}
    child_env.update(env or {})
    if child_env.pop("PYTHONDONTWRITEBYTECODE", None):
        # Without cached bytecode every start recompiles FastAPI, pydantic and SQLAlchemy
        # (~2 s); cache it outside the source tree instead.
        child_env["PYTHONPYCACHEPREFIX"] = os.path.join(tempfile.gettempdir(),
                                                        "tracklog-test-pycache")
    with open(log, "wb") as out:
        process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=out,
                                   stderr=subprocess.STDOUT, cwd=cwd, env=child_env)
    base = f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
    server = ServerProcess(base + prefix, base, port, process, log)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"tracklog server exited: {server.output()[-3000:]}")
        try:
            if httpx.get(server.url + "/health", timeout=1).status_code == 200:
                return server
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    server.stop()
    raise RuntimeError(f"tracklog server not healthy in {timeout:.0f} s: "
                       f"{server.output()[-3000:]}")


def refused_start(*args: str, cwd: Path, timeout: float = 60.0) -> tuple[str, str]:
    """Run ``tracklog server ARGS…`` expecting it to refuse to start, as a broken
    configuration must: exit code 1 and one line on stderr, no traceback.

    :returns: that line, and everything the server printed (to check what it must not say).
    """
    done = subprocess.run([TRACKLOG, "server", "--host", "127.0.0.1",
                           "--port", str(free_port()), *args],
                          stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=timeout, cwd=cwd)
    printed = done.stdout + done.stderr
    assert done.returncode == 1, printed
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr
    assert "Traceback" not in printed, printed
    return lines[0], printed
