"""End to end: ``tracklog server --artifacts-destination wasbs://…`` on Azurite, driven by
the real MLflow client.

Azurite does not answer at ``devstoreaccount1.blob.core.windows.net``: the URI names the
container, account and prefix, and the connection string's ``BlobEndpoint`` says where
that account is served (here ``http://127.0.0.1:PORT/devstoreaccount1``).
"""

from __future__ import annotations

import hashlib
import os
import random
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tracklog.testing.server import TRACKLOG, start_server, stop_process
from tracklog_artifacts_azure.factory import open_repository

from .conftest import AZURE_VARIABLES, KEY

os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] = "0"
os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] = "120"
os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"
os.environ["DO_NOT_TRACK"] = "true"




@dataclass
class Server:
    url: str
    process: subprocess.Popen
    destination: str
    log: Path

    def peak_rss_mib(self) -> float:
        """The server process's high-water resident set size (Linux)."""
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        raise AssertionError("no VmHWM")


def _start(azurite, tmp: Path, *options: str) -> Server:
    started = start_server("--backend-store-uri", f"sqlite:///{tmp / 'tracklog.db'}",
                           *options, cwd=tmp, log=tmp / "server.log", unset=AZURE_VARIABLES,
                           env={"AZURE_STORAGE_CONNECTION_STRING": azurite.connection_string})
    return Server(started.url, started.process, azurite.uri("server-artifacts"), started.log)


def _stop(server: Server) -> None:
    stop_process(server.process)
    # Nothing secret reaches the server's log.
    assert KEY not in server.log.read_text(errors="replace")


@pytest.fixture(scope="module")
def server(azurite, tmp_path_factory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("azure-server")
    srv = _start(azurite, tmp, "--artifacts-destination", azurite.uri("server-artifacts"),
                 "--presigned-downloads")
    yield srv
    _stop(srv)


@pytest.fixture
def mlflow_run(server, azure_env, monkeypatch, request):
    import mlflow

    for name in ("MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD", "MLFLOW_ENABLE_PROXY_MULTIPART_DOWNLOAD"):
        monkeypatch.delenv(name, raising=False)
    # The client must not talk to Azure itself: only the server holds credentials.
    monkeypatch.delenv("AZURE_STORAGE_CONNECTION_STRING")
    mlflow.set_tracking_uri(server.url)
    mlflow.set_experiment(f"azure-{request.node.name}")
    with mlflow.start_run() as run:
        yield run
    mlflow.set_tracking_uri(None)  # type: ignore[arg-type]  # None resets it; the hint omits it


def _store_view(server: Server, run, azurite, monkeypatch):
    """The run's artifacts as the repository sees them, read straight from Azurite."""
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", azurite.connection_string)
    root = open_repository(server.destination)
    experiment_id = run.info.experiment_id
    return root, f"{experiment_id}/{run.info.run_id}/artifacts"


@pytest.mark.parametrize("download", ["presigned", "proxied"])
def test_log_and_download_artifacts(server, mlflow_run, azure_env, tmp_path, monkeypatch,
                                     download):
    """log_artifact(s) of a tree, listing and download_artifacts, with the client fetching
    files through presigned URLs (advertised by server-info) or through the proxy."""
    import mlflow

    if download == "proxied":
        monkeypatch.setenv("MLFLOW_ENABLE_PROXY_MULTIPART_DOWNLOAD", "false")
    tree = {
        "a.txt": b"alpha",
        "empty.bin": b"",
        "dir/b.txt": b"bravo",
        "dir/sub/c.json": b'{"k": 1}',
        "dir/sub/deep/d.bin": random.Random(5).randbytes(300_000),
    }
    local = tmp_path / "tree"
    for path, data in tree.items():
        (local / path).parent.mkdir(parents=True, exist_ok=True)
        (local / path).write_bytes(data)
    single = tmp_path / "single.txt"
    single.write_bytes(b"one file")
    mlflow.log_artifact(str(single))
    mlflow.log_artifact(str(single), "nested/dir")
    mlflow.log_artifacts(str(local), "tree")

    client = mlflow.MlflowClient()
    run_id = mlflow_run.info.run_id
    listed = {f.path: (f.is_dir, f.file_size) for f in client.list_artifacts(run_id, "tree")}
    assert listed == {"tree/a.txt": (False, 5), "tree/empty.bin": (False, 0),
                      "tree/dir": (True, None)}

    out = tmp_path / "out"
    out.mkdir()
    got = Path(mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path="tree",
                                                   dst_path=str(out)))
    for path, data in tree.items():
        assert (got / path).read_bytes() == data, path
    one = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path="nested/dir/single.txt",
                                              dst_path=str(out))
    assert Path(one).read_bytes() == b"one file"

    root, base = _store_view(server, mlflow_run, azure_env, monkeypatch)
    with root.open_artifact(f"{base}/tree/dir/sub/c.json") as f:
        assert f.read() == b'{"k": 1}'


def test_log_model_and_load_model(server, mlflow_run, azure_env, tmp_path):
    import mlflow
    from mlflow.pyfunc.model import PythonModel

    class AddOne(PythonModel):
        def predict(self, context, model_input: list[float], params=None) -> list[float]:
            return [x + 1 for x in model_input]

    info = mlflow.pyfunc.log_model(name="model", python_model=AddOne())
    loaded = mlflow.pyfunc.load_model(info.model_uri)
    assert loaded.predict([1.0, 2.0]) == [2.0, 3.0]


def test_multipart_upload_through_the_proxy(server, mlflow_run, azure_env, tmp_path,
                                            monkeypatch):
    """MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD with a small minimum size: the client PUTs
    each part to a SAS URL (Azure answers Put Block without an ETag) and the server
    commits the block list."""
    import mlflow

    monkeypatch.setenv("MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD", "true")
    monkeypatch.setenv("MLFLOW_MULTIPART_UPLOAD_MINIMUM_FILE_SIZE", str(1024 * 1024))
    monkeypatch.setenv("MLFLOW_MULTIPART_UPLOAD_CHUNK_SIZE", str(1024 * 1024))
    data = random.Random(9).randbytes(3 * 1024 * 1024 + 123)
    source = tmp_path / "parts.bin"
    source.write_bytes(data)
    mlflow.log_artifact(str(source), "mpu")

    root, base = _store_view(server, mlflow_run, azure_env, monkeypatch)
    blob = root.container.get_blob_client(root.location.key(f"{base}/mpu/parts.bin"))
    committed = blob.get_block_list("committed")[0]
    assert len(committed) == 4  # four parts, so the multipart path was taken
    with root.open_artifact(f"{base}/mpu/parts.bin") as f:
        assert f.read() == data


def test_large_proxied_round_trip_in_bounded_server_memory(server, mlflow_run, azure_env,
                                                           tmp_path, monkeypatch):
    """200 MiB up and down through the proxy: the server's peak RSS stays far below it."""
    import mlflow

    monkeypatch.setenv("MLFLOW_ENABLE_PROXY_MULTIPART_DOWNLOAD", "false")
    size = 200 * 1024 * 1024
    source = tmp_path / "big.bin"
    digest = hashlib.sha256()
    rng = random.Random(11)
    with open(source, "wb") as f:
        for _ in range(size // (1024 * 1024)):
            block = rng.randbytes(1024 * 1024)
            digest.update(block)
            f.write(block)
    before = server.peak_rss_mib()
    mlflow.log_artifact(str(source), "large")
    source.unlink()
    out = tmp_path / "out"
    out.mkdir()
    got = mlflow.artifacts.download_artifacts(run_id=mlflow_run.info.run_id,
                                              artifact_path="large/big.bin", dst_path=str(out))
    back = hashlib.sha256()
    with open(got, "rb") as f:
        while chunk := f.read(1024 * 1024):
            back.update(chunk)
    assert back.hexdigest() == digest.hexdigest()
    peak = server.peak_rss_mib()
    print(f"server peak RSS {before:.0f} MiB before, {peak:.0f} MiB after a 200 MiB round trip")
    assert peak - before < 64


def test_plugins_command_lists_the_plugin():
    out = subprocess.run([TRACKLOG, "plugins"], stdin=subprocess.DEVNULL, capture_output=True,
                         text=True, timeout=60, check=True).stdout
    lines = out.splitlines()
    row = next(i for i, line in enumerate(lines) if "tracklog-artifacts-azure" in line)
    end = next((i for i in range(row + 1, len(lines)) if not lines[i][:1].isspace()), len(lines))
    block = "\n".join(lines[row:end])  # the plugin's row and its continuation lines
    assert "wasbs://" in block and "abfss://" in block


def test_without_the_proxy_the_client_talks_to_azure(azurite, azure_env, tmp_path):
    """``--no-serve-artifacts --default-artifact-root wasbs://…``: MLflow's own Azure client
    writes the blobs; the server lists them through this plugin, and the plugin reads what
    MLflow wrote."""
    import mlflow

    root = azurite.uri("direct")
    srv = _start(azurite, tmp_path, "--no-serve-artifacts", "--default-artifact-root", root)
    try:
        mlflow.set_tracking_uri(srv.url)
        mlflow.set_experiment("azure-direct")
        source = tmp_path / "direct.txt"
        source.write_bytes(b"written by mlflow")
        with mlflow.start_run() as run:
            mlflow.log_artifact(str(source), "sub")
        assert run.info.artifact_uri.startswith(root + "/")
        listed = httpx.get(f"{srv.url}/api/2.0/mlflow/artifacts/list",
                           params={"run_id": run.info.run_id, "path": "sub"}).json()
        assert listed["files"] == [{"path": "sub/direct.txt", "is_dir": False, "file_size": 17}]
        repo = open_repository(run.info.artifact_uri)
        with repo.open_artifact("sub/direct.txt") as f:
            assert f.read() == b"written by mlflow"
        out = tmp_path / "out"
        out.mkdir()
        got = mlflow.artifacts.download_artifacts(run_id=run.info.run_id,
                                                  artifact_path="sub/direct.txt",
                                                  dst_path=str(out))
        assert Path(got).read_bytes() == b"written by mlflow"
    finally:
        mlflow.set_tracking_uri(None)  # type: ignore[arg-type]  # None resets it; the hint omits it
        _stop(srv)


def test_multipart_route_names_the_file_like_mlflow(server):
    """The URL holds the directory and the body's ``path`` the client's local file: only
    its base name counts (Windows separators too); '.' or '..' name no file."""
    create = f"{server.url}/api/2.0/mlflow-artifacts/mpu/create/some/dir"
    body = httpx.post(create, json={"path": "C:\\Users\\me\\model.bin", "num_parts": 1}).json()
    assert "/server-artifacts/some/dir/model.bin?" in body["credentials"][0]["url"]
    for bad in ("/tmp/x/..", "/tmp/."):
        response = httpx.post(create, json={"path": bad, "num_parts": 1})
        assert response.status_code == 400
        assert response.json()["error_code"] == "INVALID_PARAMETER_VALUE"
