"""Helpers for tests that build wheels or make throwaway virtualenvs with uv (the uv of
this environment, a dev dependency): never installing into the project's own venv."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

BIN = Path(sys.executable).parent


def run(*args: object, cwd: Path | None = None, timeout: float = 300,
        env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run a command to completion, capturing its output; the pytest variables of this
    run are not passed on to a pytest it starts."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    return subprocess.run([str(a) for a in args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL, env={**clean, **(env or {})})


def uv(*args: object, cwd: Path | None = None, timeout: float = 300) -> None:
    """Run ``uv ARGS`` from uv's cache when it holds everything, else with the package
    index; an index that cannot be reached is an unavailable service."""
    done = run(BIN / "uv", *args, "--offline", cwd=cwd, timeout=timeout)
    if done.returncode != 0:
        done = run(BIN / "uv", *args, cwd=cwd, timeout=timeout)
    if done.returncode != 0 and any(word in done.stderr.lower()
                                    for word in ("network", "connect", "dns")):
        from tracklog.testing import service_unavailable

        service_unavailable("package index", done.stderr.strip()[-500:])
    assert done.returncode == 0, done.stderr


def new_venv(path: Path) -> Path:
    """A fresh virtualenv on this interpreter; returns its python."""
    done = run(BIN / "uv", "venv", "-q", path, "--python", sys.executable)
    assert done.returncode == 0, done.stderr
    return path / "bin" / "python"
