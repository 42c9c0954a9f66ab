"""Fixtures shared by the file-store tests: the real MLflow client, run in a subprocess."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

SIDE = Path(__file__).with_name("mlflow_side.py")


def mlflow_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    # MLflow 3 refuses file stores without the opt-in; telemetry stays off in tests.
    env.update(MLFLOW_ALLOW_FILE_STORE="true", MLFLOW_DISABLE_TELEMETRY="true", **extra)
    return env


def _run_side(command: str, root: Path) -> Any:
    done = subprocess.run(
        [sys.executable, str(SIDE), command],
        env=mlflow_env(MLFLOW_TRACKING_URI=f"file:{root}"),
        cwd=root.parent,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    return json.loads(done.stdout) if command == "read" else None


@pytest.fixture
def run_mlflow() -> Callable[[str, Path], Any]:
    """``run_mlflow(command, root)`` runs tests/mlflow_side.py against ``root``."""
    return _run_side


@pytest.fixture(scope="session")
def _mlflow_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("mlflow-template") / "mlruns"
    _run_side("write", root)
    return root


@pytest.fixture
def mlflow_dir(_mlflow_template: Path, tmp_path: Path) -> Path:
    """A private copy of a directory the real MLflow client wrote (mlflow_side.write)."""
    root = tmp_path / "mlruns"
    shutil.copytree(_mlflow_template, root)
    return root
