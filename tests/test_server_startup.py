"""`tracklog server` checks its artifact destination before serving: an unusable one stops
the start with one clear line (exit 1, no traceback) instead of a 500 on every upload."""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tracklog.testing.server import TRACKLOG, free_port


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


def test_port_in_use_is_one_line_before_startup(shared_dir):
    """A port another process listens on stops the start with one line, before the
    application starts (no 'Application startup complete' first)."""
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        line = start_refused(shared_dir, str(shared_dir / "artifacts"), "--port", str(port),
                             starts="Error: port")
        assert line == f"Error: port {port} on 127.0.0.1 is already in use"
        line = start_refused(shared_dir, str(shared_dir / "artifacts"), "--port", str(port),
                             "--workers", "2", starts="Error: port")
        assert line == f"Error: port {port} on 127.0.0.1 is already in use"


def _log_lines(server, contains: str) -> list[str]:
    for _ in range(200):
        lines = [x for x in server.log.read_text().splitlines() if contains in x]
        if lines:
            return lines
        time.sleep(0.05)
    return []


def test_banner_and_one_line_per_request(tmp_path, launch):
    """The banner says where data goes and which URL to use; every request, the MLflow
    client's included, gets one line with method, path, status and duration."""
    import httpx
    import mlflow

    server = launch(tmp_path)
    try:
        mlflow.set_tracking_uri(server.url)
        client = mlflow.MlflowClient(server.url)
        run = client.create_run("0")
        client.log_metric(run.info.run_id, "loss", 0.5)
        assert httpx.get(server.url + "/api/2.0/mlflow/runs/get").status_code == 400
        log = server.log.read_text()
        assert f"tracklog {tracklog_version()} serving on {server.url} " in log
        assert f"  tracking store   {server.backend} ({tmp_path / 'tracklog.db'})  " \
               "[store-sql]" in log
        assert f"  artifacts        {server.artifacts}  (clients reach it" in log
        assert f"  clients          export MLFLOW_TRACKING_URI={server.url}\n" in log
        lines = log.splitlines()
        start = next(i for i, x in enumerate(lines) if x.startswith("  plugins "))
        block = [lines[start]] + [x for x in itertools.takewhile(
            lambda x: x.startswith(" " * 19), lines[start + 1:])]
        assert all(len(x) <= 100 for x in block), block
        plugins = " ".join(block)
        assert "store-sql 0.1.0" in plugins and "tracklog.builtin" not in plugins
        assert "  authentication   off: whoever reaches this server" in log
        assert log.index("Application startup complete") < log.index("serving on")
        line = _log_lines(server, '"POST /api/2.0/mlflow/runs/log-metric HTTP/1.1" 200 ')
        assert len(line) == 1 and line[0].endswith(" ms"), line
        assert float(line[0].split()[-2]) > 0
        bad = _log_lines(server, '"GET /api/2.0/mlflow/runs/get HTTP/1.1" 400 ')
        assert len(bad) == 1, bad
    finally:
        server.stop()


@pytest.mark.parametrize("option", [["--quiet"], ["--uvicorn-opts", "--no-access-log"]])
def test_quiet_logs_no_requests(tmp_path, launch, option):
    import httpx

    server = launch(tmp_path, *option)
    try:
        assert httpx.get(server.url + "/version").status_code == 200
        httpx.get(server.url + "/health")
        time.sleep(0.3)
        log = server.log.read_text()
        assert "request log      off (--quiet)" in log
        assert "GET /version" not in log and "GET /health" not in log
    finally:
        server.stop()


def test_unknown_host_is_one_line(shared_dir):
    line = start_refused(shared_dir, str(shared_dir / "artifacts"), "--host",
                         "no-such-host.invalid", starts="Error: cannot listen on")
    assert "'no-such-host.invalid'" in line


def test_banner_masks_the_store_password(tmp_path, private_database, serve):
    """PostgreSQL here trusts any password: the one in the URI must still not be shown."""
    from sqlalchemy.engine import make_url

    url = make_url(private_database("postgresql://postgres@127.0.0.1:5432/test", "postgresql"))
    uri = url.set(password="s3cret-pw").render_as_string(hide_password=False)
    server = serve(tmp_path, uri)
    try:
        log = server.log.read_text()
        assert "s3cret-pw" not in log
        assert f"  tracking store   postgresql://postgres:***@127.0.0.1:5432/{url.database}" \
               in log
    finally:
        server.stop()


def tracklog_version() -> str:
    import tracklog

    return tracklog.__version__


def test_mask_and_url():
    from tracklog.server.startup import mask, server_url

    assert mask("postgresql://u:p%40ss@db/x?sslmode=require&password=pw") == \
        "postgresql://u:***@db/x?sslmode=require&password=***"
    assert mask("s3://bucket/prefix") == "s3://bucket/prefix"
    assert mask("wasbs://c@acct.blob.core.windows.net/p?sig=abc") == \
        "wasbs://c@acct.blob.core.windows.net/p?sig=***"
    assert server_url("0.0.0.0", 5000, "/t/") == "http://127.0.0.1:5000/t"
    assert server_url("::", 80) == "http://[::1]:80"
    assert server_url("fe80::1", 80) == "http://[fe80::1]:80"
