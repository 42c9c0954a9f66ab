"""`tracklog server` checks its artifact destination before serving: an unusable one stops
the start with one clear line (exit 1, no traceback) instead of a 500 on every upload."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import TRACKLOG, free_port


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A directory any user may enter (pytest's own tmp_path is private to root)."""
    path = Path(tempfile.mkdtemp(prefix="tracklog-startup-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def start_refused(cwd: Path, destination: str, *extra: str, as_nobody: bool = False,
                  env: dict[str, str] | None = None,
                  starts: str = "Error: Artifact destination ") -> str:
    """Run `tracklog server` expecting it to refuse to start; returns its one line."""
    args = [TRACKLOG, "server", "--artifacts-only", "--artifacts-destination", destination,
            "--host", "127.0.0.1", "--port", str(free_port()), *extra]
    if as_nobody:
        args = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *args]
    done = subprocess.run(args, cwd=cwd, stdin=subprocess.DEVNULL, capture_output=True,
                          text=True, timeout=60, env={**os.environ, **(env or {})})
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(starts), lines
    return lines[0]


def test_destination_that_is_a_file_or_under_a_file(shared_dir):
    (shared_dir / "plain").write_text("x")
    line = start_refused(shared_dir, str(shared_dir / "plain"))
    assert "is a file, not a directory" in line
    line = start_refused(shared_dir, str(shared_dir / "plain" / "artifacts"))
    assert f"its parent {shared_dir / 'plain'} is a file" in line


def test_unwritable_destination(shared_dir):
    """A directory the server's user cannot write to (as root, the server runs as
    nobody, since root may write anywhere)."""
    locked = shared_dir / "locked"
    locked.mkdir(mode=0o555)
    locked.chmod(0o555)
    as_nobody = os.geteuid() == 0
    if as_nobody and shutil.which("setpriv") is None:
        pytest.skip("running as root without setpriv: no way to make a directory unwritable")
    if as_nobody and subprocess.run(
        ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", TRACKLOG, "--version"],
        stdin=subprocess.DEVNULL, capture_output=True, timeout=60,
    ).returncode != 0:
        pytest.skip("user nobody cannot run this checkout's tracklog (a private directory "
                    "above it), so the server cannot be run as a user without root's rights")
    line = start_refused(shared_dir, str(locked), as_nobody=as_nobody)
    assert "is not writable by this process" in line
    line = start_refused(shared_dir, str(locked / "sub"), as_nobody=as_nobody)
    assert f"its parent {locked} is not writable" in line


def test_write_probe_on_request(shared_dir):
    """With --verify-artifacts-write (or its environment variable) a destination where
    no file can be created is refused: /proc accepts no new entries, even from root."""
    line = start_refused(shared_dir, "/proc/tracklog-artifacts", "--verify-artifacts-write")
    assert "'/proc/tracklog-artifacts' is not usable" in line
    start_refused(shared_dir, "/proc/tracklog-artifacts",
                  env={"TRACKLOG_VERIFY_ARTIFACTS_WRITE": "true"})


def test_default_artifact_root_follows_the_location_rules(shared_dir):
    line = start_refused(shared_dir, str(shared_dir / "artifacts"), "--default-artifact-root",
                         "mlflow-artifacts:/team/artifacts", starts="Error: Invalid value")
    assert "'--default-artifact-root'" in line and "inside a run's artifact directory" in line


def test_write_probe_passes_and_leaves_nothing(tmp_path, launch):
    """The probe is deleted again: the destination lists empty through the proxy."""
    import httpx

    server = launch(tmp_path, "--verify-artifacts-write")
    try:
        listing = httpx.get(server.url + "/api/2.0/mlflow-artifacts/artifacts")
        assert listing.status_code == 200 and listing.json() == {}
        assert not any(server.artifacts.iterdir())
    finally:
        server.stop()


def test_stale_upload_temporaries_are_removed_at_start(tmp_path, launch):
    """Temporaries of uploads a crash interrupted are removed in the background once they
    are old enough; a recent one (a live upload of another worker) stays."""
    deep = tmp_path / "artifacts" / "1" / "abc" / "artifacts" / "model"
    deep.mkdir(parents=True)
    stale = [tmp_path / "artifacts" / ".tracklog-tmp-old1", deep / ".tracklog-tmp-old2"]
    old = time.time() - 7 * 3600
    for path in stale:
        path.write_bytes(b"x" * 1000)
        os.utime(path, (old, old))
    (deep / ".tracklog-tmp-live").write_bytes(b"uploading")
    (deep / "MLmodel").write_bytes(b"m")
    server = launch(tmp_path)
    try:
        for _ in range(600):
            if not any(p.exists() for p in stale):
                break
            time.sleep(0.05)
        assert not any(p.exists() for p in stale)
        assert sorted(os.listdir(deep)) == [".tracklog-tmp-live", "MLmodel"]
    finally:
        server.stop()
