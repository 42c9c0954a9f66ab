"""End to end: ``tracklog server --artifacts-destination gs://…`` on fake-gcs-server,
driven by the real MLflow client."""

from __future__ import annotations

import filecmp
import json
import os
import random
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from google.cloud import storage

from tracklog_artifacts_gcs.repository import GCSArtifactRepository


@pytest.fixture
def mlflow_client(gcs_server, monkeypatch):
    import mlflow

    for name in ("MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD", "MLFLOW_ENABLE_PROXY_MULTIPART_DOWNLOAD"):
        monkeypatch.delenv(name, raising=False)
    mlflow.set_tracking_uri(gcs_server.url)
    mlflow.set_experiment(f"gcs-{random.getrandbits(32):x}")
    yield mlflow.MlflowClient(gcs_server.url)
    while mlflow.active_run() is not None:
        mlflow.end_run()


def tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_server_info_advertises_both_capabilities(gcs_server):
    with urllib.request.urlopen(gcs_server.url + "/api/3.0/mlflow/server-info") as answer:
        info = json.load(answer)
    assert info["multipart_uploads_enabled"] is True
    assert info["multipart_downloads_enabled"] is True


def test_presigned_downloads_are_off_unless_asked_for(fresh_server):
    """Without --presigned-downloads the server neither advertises presigned downloads
    nor hands out a URL: a client told so would fetch every file from the bucket."""
    with urllib.request.urlopen(fresh_server.url + "/api/3.0/mlflow/server-info") as answer:
        info = json.load(answer)
    assert info["multipart_uploads_enabled"] is True
    assert info["multipart_downloads_enabled"] is False
    url = fresh_server.url + "/api/2.0/mlflow-artifacts/presigned/0/r/artifacts/a.txt"
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(url)
    assert refused.value.code == 501
    assert "--presigned-downloads" in json.load(refused.value)["message"]


@pytest.mark.parametrize("presigned", ["true", "false"])
def test_log_and_download_artifacts(mlflow_client, gcs_server, tmp_path, monkeypatch,
                                    presigned):
    """log_artifact(s) with a directory tree land in the bucket; download_artifacts
    brings them back, straight from the bucket through presigned URLs or through the
    server's proxy."""
    import mlflow

    monkeypatch.setenv("MLFLOW_ENABLE_PROXY_MULTIPART_DOWNLOAD", presigned)
    local = tmp_path / "up"
    files = {"a.txt": b"alpha", "nested/b.bin": random.Random(1).randbytes(300_000),
             "nested/deeper/c.json": b'{"c": 1}', "empty.txt": b""}
    for name, data in files.items():
        (local / name).parent.mkdir(parents=True, exist_ok=True)
        (local / name).write_bytes(data)
    single = tmp_path / "single.csv"
    single.write_bytes(b"x,y\n1,2\n")
    with mlflow.start_run() as run:
        mlflow.log_artifact(str(single))
        mlflow.log_artifacts(str(local), "tree")
    run_id = run.info.run_id
    listed = {f.path: f.file_size for f in mlflow_client.list_artifacts(run_id, "tree/nested")}
    assert listed == {"tree/nested/b.bin": 300_000, "tree/nested/deeper": None}
    back = Path(mlflow.artifacts.download_artifacts(run_id=run_id, dst_path=str(tmp_path / "d")))
    assert tree(back) == {"single.csv": single.read_bytes(),
                          **{f"tree/{k}": v for k, v in files.items()}}
    # The bytes live in the bucket, under the destination.
    repo = GCSArtifactRepository(gcs_server.destination)
    experiment_id = run.info.experiment_id
    stored = repo.list_artifacts(f"{experiment_id}/{run_id}/artifacts/tree/nested/deeper")
    assert [(f.path.rsplit("/", 1)[-1], f.file_size) for f in stored] == [("c.json", 8)]


def test_log_model_and_load_model(mlflow_client, tmp_path):
    import mlflow
    import pandas as pd
    from mlflow.pyfunc.model import PythonModel

    class AddOne(PythonModel):
        def predict(self, context, model_input, params=None):
            return model_input + 1

    with mlflow.start_run():
        info = mlflow.pyfunc.log_model(name="model", python_model=AddOne(),
                                       pip_requirements=["pandas"])
    loaded = mlflow.pyfunc.load_model(info.model_uri)
    frame = pd.DataFrame({"x": [1, 2, 3]})
    assert loaded.predict(frame)["x"].tolist() == [2, 3, 4]


def test_proxied_multipart_upload(mlflow_client, gcs_server, tmp_path, monkeypatch):
    """With MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD and a 1 MiB threshold and part size,
    the client uploads 4 parts to the URLs the server hands out; the stored object is
    their composition, byte for byte, and no part is left behind."""
    import mlflow

    monkeypatch.setenv("MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD", "true")
    monkeypatch.setenv("MLFLOW_MULTIPART_UPLOAD_MINIMUM_FILE_SIZE", str(1024 * 1024))
    monkeypatch.setenv("MLFLOW_MULTIPART_UPLOAD_CHUNK_SIZE", str(1024 * 1024))
    # Watch the client's part uploads (it still does them itself): proof that the
    # upload went in parts rather than as one proxied PUT.
    from mlflow.store.artifact.http_artifact_repo import HttpArtifactRepository

    real_upload_part = HttpArtifactRepository._upload_part
    part_urls = []

    def upload_part(credential, local_file, size, start_byte):
        part_urls.append(credential.url)
        return real_upload_part(credential, local_file, size, start_byte)

    monkeypatch.setattr(HttpArtifactRepository, "_upload_part", staticmethod(upload_part))
    big = tmp_path / "weights.bin"
    big.write_bytes(random.Random(2).randbytes(3 * 1024 * 1024 + 12345))
    with mlflow.start_run() as run:
        mlflow.log_artifact(str(big), "model")
    assert len(part_urls) == 4
    assert all(url.startswith(os.environ["STORAGE_EMULATOR_HOST"]) for url in part_urls)
    repo = GCSArtifactRepository(gcs_server.destination)
    back = mlflow.artifacts.download_artifacts(run_id=run.info.run_id,
                                               artifact_path="model/weights.bin",
                                               dst_path=str(tmp_path / "d"))
    assert filecmp.cmp(back, big, shallow=False)
    parts = storage.Client().list_blobs(repo.bucket_name,
                                        prefix=f"{repo.prefix}/.tracklog-uploads/")
    assert list(parts) == []


def test_plugins_command_lists_the_plugin():
    tracklog = str(Path(sys.executable).with_name("tracklog"))
    listing = subprocess.run([tracklog, "plugins"], capture_output=True, text=True,
                             check=True, stdin=subprocess.DEVNULL).stdout
    lines = listing.splitlines()
    row = next(i for i, line in enumerate(lines) if "tracklog-artifacts-gcs" in line)
    end = next((i for i in range(row + 1, len(lines)) if not lines[i][:1].isspace()), len(lines))
    block = "\n".join(lines[row:end])  # the plugin's row and its continuation lines
    assert "gs://" in lines[row] and "register_artifact_repositories" in block


def test_client_writes_gs_itself_and_the_server_lists(direct_server, tmp_path):
    """--no-serve-artifacts --default-artifact-root gs://…: MLflow's own GCS repository
    writes from the client, and the server lists those objects through this plugin."""
    import mlflow

    mlflow.set_tracking_uri(direct_server.url)
    mlflow.set_experiment(f"direct-{random.getrandbits(32):x}")
    local = tmp_path / "d"
    (local / "sub").mkdir(parents=True)
    (local / "sub" / "x.txt").write_bytes(b"x" * 10)
    (local / "y.txt").write_bytes(b"y")
    with mlflow.start_run() as run:
        mlflow.log_artifacts(str(local), "out")
    assert run.info.artifact_uri.startswith(direct_server.destination + "/")
    client = mlflow.MlflowClient(direct_server.url)
    listed = {f.path: f.file_size for f in client.list_artifacts(run.info.run_id, "out")}
    assert listed == {"out/sub": None, "out/y.txt": 1}
    back = Path(mlflow.artifacts.download_artifacts(run_id=run.info.run_id,
                                                    dst_path=str(tmp_path / "back")))
    assert tree(back) == {"out/sub/x.txt": b"x" * 10, "out/y.txt": b"y"}
