"""End to end: `tracklog server` with its artifacts in moto's S3, driven by the real MLflow
client — proxied (``--artifacts-destination s3://…``, multipart included) and not
(``--no-serve-artifacts --default-artifact-root s3://…``, the client talks to moto)."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest

from tracklog.testing.memory import distinct_file
from tracklog.testing.server import TRACKLOG, start_server, stop_process

os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] = "0"
os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] = "60"
os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"
os.environ["DO_NOT_TRACK"] = "true"

mlflow = pytest.importorskip("mlflow")

MiB = 1024 * 1024


PythonModel: Any = pytest.importorskip("mlflow.pyfunc").PythonModel


class _Doubler(PythonModel):
    def predict(self, context, model_input, params=None):
        return [2 * x for x in model_input]


def _start(tmp: Path, port: int, *options: str) -> subprocess.Popen:
    return start_server("--backend-store-uri", f"sqlite:///{tmp / 'tracklog.db'}", *options,
                        port=port, cwd=tmp).process


@pytest.fixture
def server_process(request, bucket, tmp_path, closed_port, monkeypatch):
    """A server whose artifact options come from the test's ``server_options`` marker,
    with ``{bucket}`` filled in; the MLflow client points at it."""
    options = [o.format(bucket=bucket) for o in request.node.get_closest_marker(
        "server_options").args]
    process = _start(tmp_path, closed_port, *options)
    url = f"http://127.0.0.1:{closed_port}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", url)
    mlflow.set_tracking_uri(url)
    mlflow.set_experiment(experiment_id="0")  # not one an earlier test chose elsewhere
    try:
        yield url, process
    finally:
        stop_process(process)


@pytest.fixture
def server(server_process) -> Iterator[str]:
    yield server_process[0]


def _keys(bucket: str, prefix: str = "") -> dict[str, dict]:
    s3 = boto3.client("s3", endpoint_url=os.environ["MLFLOW_S3_ENDPOINT_URL"])
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return {o["Key"]: o for page in pages for o in page.get("Contents", ())}


def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for p in root.rglob("*") if p.is_file()}


def _log_and_read_back(tmp_path: Path) -> tuple[str, dict[str, bytes]]:
    local = tmp_path / "upload"
    files = {"top.txt": b"top", "tree/a.json": b'{"a": 1}', "tree/deep/b.bin": os.urandom(3000),
             "tree/deep/empty.bin": b""}
    for name, data in files.items():
        (local / name).parent.mkdir(parents=True, exist_ok=True)
        (local / name).write_bytes(data)
    with mlflow.start_run() as run:
        mlflow.log_artifact(str(local / "top.txt"))
        mlflow.log_artifacts(str(local / "tree"), "tree")
        info = mlflow.pyfunc.log_model(name="model", python_model=_Doubler(), pip_requirements=[])
    client = mlflow.MlflowClient()
    run_id = run.info.run_id
    assert [f.path for f in client.list_artifacts(run_id)] == ["top.txt", "tree"]
    assert {f.path: f.file_size for f in client.list_artifacts(run_id, "tree/deep")} == {
        "tree/deep/b.bin": 3000, "tree/deep/empty.bin": 0}
    back = Path(mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path="tree",
                                                    dst_path=str(tmp_path / "back")))
    assert _tree(back) == {k[len("tree/"):]: v for k, v in files.items() if k.startswith("tree/")}
    single = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path="top.txt",
                                                 dst_path=str(tmp_path / "single"))
    assert Path(single).read_bytes() == b"top"
    loaded = mlflow.pyfunc.load_model(info.model_uri)
    assert list(loaded.predict([1, 2, 3])) == [2, 4, 6]
    return run_id, files


@pytest.mark.server_options("--artifacts-destination", "s3://{bucket}/proxied",
                            "--presigned-downloads")
def test_proxied_artifacts_live_in_s3(server, bucket, tmp_path):
    run_id, files = _log_and_read_back(tmp_path)
    keys = _keys(bucket, "proxied/")
    marker = f"/{run_id}/artifacts/"
    run_keys = {k.split(marker, 1)[1] for k in keys if marker in k}
    assert set(files) <= run_keys
    assert any(k.endswith("MLmodel") for k in keys)  # the logged model's files
    info = httpx.get(server + "/api/3.0/mlflow/server-info").json()
    assert info["multipart_uploads_enabled"] is True
    assert info["multipart_downloads_enabled"] is True


@pytest.mark.server_options("--artifacts-destination", "s3://{bucket}/proxied")
def test_downloads_through_the_proxy(server, bucket, tmp_path, monkeypatch):
    """With presigned downloads off on the client, files stream from S3 through the
    server; a missing file is a 404 with MLflow's error code."""
    monkeypatch.setenv("MLFLOW_ENABLE_PROXY_MULTIPART_DOWNLOAD", "false")
    data = os.urandom(9 * MiB)
    (tmp_path / "blob.bin").write_bytes(data)
    with mlflow.start_run() as run:
        mlflow.log_artifact(str(tmp_path / "blob.bin"))
    back = mlflow.artifacts.download_artifacts(run_id=run.info.run_id, artifact_path="blob.bin",
                                               dst_path=str(tmp_path / "back"))
    assert Path(back).read_bytes() == data
    root = run.info.artifact_uri.split(":", 1)[1].strip("/")
    missing = httpx.get(f"{server}/api/2.0/mlflow-artifacts/artifacts/{root}/ghost.bin")
    assert missing.status_code == 404
    assert missing.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"


@pytest.mark.server_options("--artifacts-destination", "s3://{bucket}/proxied")
def test_proxied_multipart_upload(server, bucket, tmp_path, monkeypatch):
    """With proxy multipart on and a small minimum size, the client uploads parts straight
    to S3 through presigned URLs: the object's ETag shows it was assembled from parts."""
    monkeypatch.setenv("MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD", "true")
    monkeypatch.setenv("MLFLOW_MULTIPART_UPLOAD_MINIMUM_FILE_SIZE", str(5 * MiB))
    monkeypatch.setenv("MLFLOW_MULTIPART_UPLOAD_CHUNK_SIZE", str(5 * MiB))
    big = tmp_path / "weights.bin"
    data = os.urandom(12 * MiB)
    big.write_bytes(data)
    with mlflow.start_run() as run:
        mlflow.log_artifact(str(big), "weights")
    [key] = [k for k in _keys(bucket, "proxied/") if k.endswith("weights/weights.bin")]
    etag = _keys(bucket, "proxied/")[key]["ETag"].strip('"')
    assert etag.endswith("-3"), etag  # three parts: 5 + 5 + 2 MiB
    back = mlflow.artifacts.download_artifacts(run_id=run.info.run_id,
                                               artifact_path="weights/weights.bin",
                                               dst_path=str(tmp_path / "back"))
    assert Path(back).read_bytes() == data


@pytest.mark.server_options("--artifacts-destination", "s3://{bucket}/proxied")
def test_multipart_part_count_is_capped(server, bucket):
    """More parts than S3 allows is a 400 naming num_parts, before any URL is signed."""
    url = f"{server}/api/2.0/mlflow-artifacts/mpu/create/0/r/artifacts"
    refused = httpx.post(url, json={"path": "big.bin", "num_parts": 10_001})
    assert refused.status_code == 400
    assert "num_parts" in refused.json()["message"]
    accepted = httpx.post(url, json={"path": "big.bin", "num_parts": 2})
    assert [c["part_number"] for c in accepted.json()["credentials"]] == [1, 2]


@pytest.mark.server_options("--no-serve-artifacts", "--default-artifact-root",
                            "s3://{bucket}/direct")
def test_client_writes_to_s3_itself(server, bucket, tmp_path):
    """Without the proxy the client writes to moto with its own S3 code; the server reads
    the same objects back through the plugin for its listing route."""
    run_id, files = _log_and_read_back(tmp_path)
    run = mlflow.MlflowClient().get_run(run_id)
    assert run.info.artifact_uri.startswith(f"s3://{bucket}/direct/")
    keys = _keys(bucket, "direct/")
    assert f"direct/{run.info.experiment_id}/{run_id}/artifacts/top.txt" in keys
    listed = httpx.get(server + "/api/2.0/mlflow/artifacts/list",
                       params={"run_id": run_id, "path": "tree/deep"}).json()
    assert listed["root_uri"] == run.info.artifact_uri
    assert {f["path"]: int(f["file_size"]) for f in listed["files"]} == {
        "tree/deep/b.bin": 3000, "tree/deep/empty.bin": 0}


def test_plugins_command_lists_the_plugin():
    out = subprocess.run([TRACKLOG, "plugins"], capture_output=True, text=True, check=True)
    assert "tracklog-artifacts-s3" in out.stdout and "s3" in out.stdout


def _peak_rss(pid: int) -> int:
    """The process's peak resident set (VmHWM) in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM")


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux /proc")
@pytest.mark.server_options("--artifacts-destination", "s3://{bucket}/proxied")
def test_proxy_streams_200mb_both_ways(server_process, bucket, tmp_path):
    """A 200 MB upload and download through the proxy leave the server's peak memory far
    below the file's size."""
    import hashlib

    url, process = server_process
    size = 200 * MiB
    src = tmp_path / "big.bin"
    digest = distinct_file(src, size)
    target = f"{url}/api/2.0/mlflow-artifacts/artifacts/big/big.bin"
    with httpx.Client(timeout=300) as http:
        http.put(f"{url}/api/2.0/mlflow-artifacts/artifacts/warm/up.bin",
                 content=os.urandom(9 * MiB)).raise_for_status()
        before = _peak_rss(process.pid)
        with open(src, "rb") as f:
            http.put(target, content=f).raise_for_status()
        back = hashlib.sha256()
        with http.stream("GET", target) as response:
            response.raise_for_status()
            for chunk in response.iter_bytes():
                back.update(chunk)
    grown = _peak_rss(process.pid) - before
    assert back.hexdigest() == digest
    assert _keys(bucket, "proxied/big/")["proxied/big/big.bin"]["Size"] == size
    assert grown < size // 4, f"server peak RSS grew by {grown / MiB:.0f} MiB"


def test_server_refuses_to_start_on_a_missing_bucket(s3_env, tmp_path, closed_port):
    """A destination bucket that does not exist stops the server at start with one line
    naming it, instead of a server that answers 500 to every upload."""
    done = subprocess.run(
        [TRACKLOG, "server", "--backend-store-uri", f"sqlite:///{tmp_path / 'tracklog.db'}",
         "--artifacts-destination", "s3://no-such-bucket/artifacts", "--host", "127.0.0.1",
         "--port", str(closed_port)],
        stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert done.returncode == 1, done.stdout + done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr
    assert "s3://no-such-bucket/artifacts" in lines[0] and "not usable" in lines[0], lines[0]
    assert "Traceback" not in done.stdout + done.stderr
