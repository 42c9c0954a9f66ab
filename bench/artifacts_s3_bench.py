"""Benchmark proxied artifact throughput with S3 (moto) behind the server.

Usage (from the repository root)::

    .venv/bin/python bench/artifacts_s3_bench.py               # tracklog: S3 and local disk
    .venv/bin/python bench/artifacts_s3_bench.py --mlflow      # also `mlflow server` 3.17.2
    .venv/bin/python bench/artifacts_s3_bench.py --size-mb 50  # a smaller file

One moto S3 server on a free loopback port holds the bucket. Each server gets a run,
then the MLflow client uploads one file with ``log_artifact`` and downloads it with
``download_artifacts`` through the proxy (presigned and multipart transfers off, so the
bytes go through the server). "direct" is boto3 in this process talking to moto itself:
the ceiling for any proxy in front of the same emulator. ``--mlflow`` uses (or creates,
with ``uv``) the virtualenv of ``bench/server_bench.py`` (default /tmp/mlflow-ref), whose
``mlflow server`` runs with one uvicorn worker, as tracklog does. Figures are MB/s
(10^6 bytes), best of ``--repeat``; they depend on the machine and nothing asserts them.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

for name, value in {
    "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true",
    "MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD": "false",
    "MLFLOW_ENABLE_PROXY_MULTIPART_DOWNLOAD": "false",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "600", "MLFLOW_DISABLE_TELEMETRY": "true",
}.items():
    os.environ[name] = value

sys.path.insert(0, str(Path(__file__).parent))

import boto3  # noqa: E402
import mlflow  # noqa: E402
from server_bench import ensure_mlflow_venv, free_port, launch  # noqa: E402


def start_moto(tmp: Path) -> tuple[str, subprocess.Popen]:
    port = free_port()
    exe = Path(sys.executable).with_name("moto_server")
    process = subprocess.Popen([str(exe), "-H", "127.0.0.1", "-p", str(port)],
                               stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                               stderr=open(tmp / "moto.log", "wb"))
    endpoint = f"http://127.0.0.1:{port}"
    import urllib.request

    for _ in range(300):
        try:
            with urllib.request.urlopen(endpoint + "/moto-api/", timeout=1):
                return endpoint, process
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("moto did not start")


def proxied(url: str, src: Path, tmp: Path, repeat: int) -> tuple[float, float]:
    mlflow.set_tracking_uri(url)
    client = mlflow.MlflowClient()
    size = src.stat().st_size
    up = down = 0.0
    for i in range(repeat):
        run = client.create_run("0")
        start = time.perf_counter()
        client.log_artifact(run.info.run_id, str(src))
        up = max(up, size / (time.perf_counter() - start) / 1e6)
        dst = tmp / f"down-{i}-{run.info.run_id}"
        dst.mkdir()
        start = time.perf_counter()
        client.download_artifacts(run.info.run_id, src.name, str(dst))
        down = max(down, size / (time.perf_counter() - start) / 1e6)
        assert (dst / src.name).stat().st_size == size
    return up, down


def direct(endpoint: str, bucket: str, src: Path, tmp: Path, repeat: int) -> tuple[float, float]:
    s3 = boto3.client("s3", endpoint_url=endpoint)
    size = src.stat().st_size
    up = down = 0.0
    for i in range(repeat):
        start = time.perf_counter()
        s3.upload_file(str(src), bucket, f"direct/{i}")
        up = max(up, size / (time.perf_counter() - start) / 1e6)
        start = time.perf_counter()
        s3.download_file(bucket, f"direct/{i}", str(tmp / f"direct-{i}"))
        down = max(down, size / (time.perf_counter() - start) / 1e6)
    return up, down


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--mlflow", action="store_true")
    parser.add_argument("--mlflow-venv", default="/tmp/mlflow-ref", type=Path)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="tracklog-s3-bench-"))
    src = tmp / "payload.bin"
    with open(src, "wb") as f:
        for _ in range(args.size_mb):
            f.write(os.urandom(1_000_000))
    processes = []
    try:
        endpoint, moto = start_moto(tmp)
        processes.append(moto)
        os.environ["MLFLOW_S3_ENDPOINT_URL"] = endpoint
        bucket = "bench"
        boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket=bucket)
        tracklog = str(Path(sys.executable).with_name("tracklog"))
        servers = {
            "tracklog, S3": [tracklog, "server", "--artifacts-destination",
                             f"s3://{bucket}/tracklog"],
            "tracklog, local disk": [tracklog, "server", "--artifacts-destination",
                                     str(tmp / "local-artifacts")],
        }
        if args.mlflow:
            exe = ensure_mlflow_venv(args.mlflow_venv)
            servers["mlflow 3.17.2, S3"] = [str(exe), "server", "--host", "127.0.0.1",
                                            "--workers", "1", "--serve-artifacts",
                                            "--artifacts-destination", f"s3://{bucket}/mlflow"]
        rows = []
        for label, cmd in servers.items():
            port = free_port()
            folder = tmp / label.replace(" ", "_").replace(",", "")
            folder.mkdir()
            full = [*cmd, "--backend-store-uri", f"sqlite:///{folder}/db.sqlite",
                    "--port", str(port)]
            url, process, _ = launch(full, port, folder, "server.log", env=dict(os.environ))
            processes.append(process)
            rows.append((label, *proxied(url, src, folder, args.repeat)))
            process.terminate()
            process.wait(30)
        rows.append(("boto3 direct to moto", *direct(endpoint, bucket, src, tmp, args.repeat)))
        print(f"\n{args.size_mb} MB file, best of {args.repeat}, MB/s")
        print(f"{'':28}{'upload':>10}{'download':>10}")
        for label, up, down in rows:
            print(f"{label:28}{up:>10.1f}{down:>10.1f}")
    finally:
        for process in processes:
            if process.poll() is None:
                process.terminate()
                process.wait(30)
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
