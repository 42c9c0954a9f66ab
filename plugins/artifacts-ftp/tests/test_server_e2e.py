"""End to end: `tracklog server --artifacts-destination ftp://…` (and ftps://) on the
real vsftpd, driven by the real MLflow client."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] = "0"
os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] = "120"
os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"
os.environ["DO_NOT_TRACK"] = "true"

mlflow = pytest.importorskip("mlflow")

TRACKLOG = str(Path(sys.executable).with_name("tracklog"))
MiB = 1024 * 1024


PythonModel: Any = pytest.importorskip("mlflow.pyfunc").PythonModel


class _Doubler(PythonModel):
    def predict(self, context, model_input, params=None):
        return [2 * x for x in model_input]


def _server_args(tmp: Path, port: int, destination: str) -> list[str]:
    return [TRACKLOG, "server", "--backend-store-uri", f"sqlite:///{tmp / 'tracklog.db'}",
            "--artifacts-destination", destination, "--host", "127.0.0.1", "--port", str(port)]


@pytest.fixture(params=["ftp", "ftps"])
def server(request, vsftpd, vsftpd_dir, tmp_path, closed_port, monkeypatch):
    """A server whose artifacts go to vsftpd, over plain FTP and over FTPS (the
    certificate trusted through TRACKLOG_FTPS_CA_FILE)."""
    remote, _ = vsftpd_dir
    if request.param == "ftps":
        monkeypatch.setenv("TRACKLOG_FTPS_CA_FILE", str(vsftpd.cert))
    destination = (f"{request.param}://{vsftpd.user}:{vsftpd.password}@127.0.0.1:"
                   f"{vsftpd.port}{remote}/artifacts")
    log = tmp_path / "server.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            _server_args(tmp_path, closed_port, destination),
            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, cwd=tmp_path)
    url = f"http://127.0.0.1:{closed_port}"
    deadline = time.monotonic() + 30
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"tracklog server exited: {log.read_text()[-3000:]}")
        try:
            if httpx.get(url + "/health", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            process.kill()
            raise RuntimeError(f"tracklog server not healthy: {log.read_text()[-3000:]}")
        time.sleep(0.05)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", url)
    mlflow.set_tracking_uri(url)
    mlflow.set_experiment(experiment_id="0")
    try:
        yield url
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for p in root.rglob("*") if p.is_file()}


def _run_dir(remote_dir: Path, run_id: str) -> Path:
    [found] = list((remote_dir / "artifacts").glob(f"*/{run_id}/artifacts"))
    return found


def test_tree_big_file_and_model(server, vsftpd_dir, tmp_path):
    _, remote_dir = vsftpd_dir
    """A directory tree, a 50 MB file byte for byte and a pyfunc model go through the
    proxy onto the FTP server and come back through the MLflow client."""
    local = tmp_path / "upload"
    files = {"tree/a.json": b'{"a": 1}', "tree/deep/b.bin": os.urandom(3000),
             "tree/deep/empty.bin": b""}
    for name, data in files.items():
        (local / name).parent.mkdir(parents=True, exist_ok=True)
        (local / name).write_bytes(data)
    big = tmp_path / "weights.bin"
    digest = hashlib.sha256()
    with open(big, "wb") as f:
        for i in range(50):
            block = i.to_bytes(4, "big") + os.urandom(MiB - 4)
            digest.update(block)
            f.write(block)
    with mlflow.start_run() as run:
        mlflow.log_artifacts(str(local / "tree"), "tree")
        mlflow.log_artifact(str(big), "weights")
        info = mlflow.pyfunc.log_model(name="model", python_model=_Doubler(), pip_requirements=[])
    run_id = run.info.run_id
    client = mlflow.MlflowClient()
    assert [f.path for f in client.list_artifacts(run_id)] == ["tree", "weights"]
    assert {f.path: f.file_size for f in client.list_artifacts(run_id, "tree/deep")} == {
        "tree/deep/b.bin": 3000, "tree/deep/empty.bin": 0}
    back = Path(mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path="tree",
                                                    dst_path=str(tmp_path / "back")))
    assert _tree(back) == {k[len("tree/"):]: v for k, v in files.items()}
    weights = mlflow.artifacts.download_artifacts(run_id=run_id,
                                                  artifact_path="weights/weights.bin",
                                                  dst_path=str(tmp_path / "w"))
    with open(weights, "rb") as back_file:
        assert hashlib.file_digest(back_file, "sha256").hexdigest() == digest.hexdigest()
    loaded = mlflow.pyfunc.load_model(info.model_uri)
    assert list(loaded.predict([1, 2, 3])) == [2, 4, 6]
    # What the server wrote is on the FTP server's disk, where the run's root says.
    on_disk = _run_dir(remote_dir, run_id)
    assert (on_disk / "weights" / "weights.bin").stat().st_size == 50 * MiB
    assert _tree(on_disk / "tree") == {k[len("tree/"):]: v for k, v in files.items()}


def test_eight_concurrent_uploads(server, vsftpd_dir, tmp_path):
    _, remote_dir = vsftpd_dir
    """Eight clients upload at once to one run through the server's worker threads."""
    blobs = {f"part-{i}.bin": os.urandom(3 * MiB + i) for i in range(8)}
    for name, data in blobs.items():
        (tmp_path / name).write_bytes(data)
    client = mlflow.MlflowClient()
    run_id = client.create_run("0").info.run_id
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda n: client.log_artifact(run_id, str(tmp_path / n), "parts"), blobs))
    listed = {f.path: f.file_size for f in client.list_artifacts(run_id, "parts")}
    assert listed == {f"parts/{n}": len(d) for n, d in blobs.items()}
    with ThreadPoolExecutor(8) as pool:
        paths = list(pool.map(lambda n: mlflow.artifacts.download_artifacts(
            run_id=run_id, artifact_path=f"parts/{n}", dst_path=str(tmp_path / "back" / n)),
            blobs))
    assert [Path(p).read_bytes() for p in paths] == list(blobs.values())
    assert _tree(_run_dir(remote_dir, run_id) / "parts") == blobs


def test_missing_file_is_404(server):
    response = httpx.get(f"{server}/api/2.0/mlflow-artifacts/artifacts/0/nope/ghost.bin")
    assert response.status_code == 404
    assert response.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"


@pytest.mark.parametrize("problem", ["wrong-password", "untrusted-certificate", "refused"])
def test_server_refuses_an_unusable_destination(vsftpd, vsftpd_dir, tmp_path, closed_port,
                                                problem):
    """The start check stops the server with one line naming the destination (never
    its password) instead of a server that fails every upload."""
    remote, _ = vsftpd_dir
    destination = {
        "wrong-password": f"ftp://{vsftpd.user}:Not-The-Pw-77@127.0.0.1:{vsftpd.port}{remote}",
        "untrusted-certificate":
            f"ftps://{vsftpd.user}:{vsftpd.password}@127.0.0.1:{vsftpd.port}{remote}",
        "refused": f"ftp://{vsftpd.user}:Not-The-Pw-77@127.0.0.1:{closed_port}{remote}",
    }[problem]
    done = subprocess.run(_server_args(tmp_path, closed_port, destination),
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60,
                          cwd=tmp_path)
    assert done.returncode == 1, done.stdout + done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr
    assert "not usable" in lines[0] and remote in lines[0], lines[0]
    assert "Not-The-Pw-77" not in done.stdout + done.stderr
    assert vsftpd.password not in done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr
