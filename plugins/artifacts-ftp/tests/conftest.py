"""A real vsftpd on a free loopback port for the session (plain FTP and explicit FTPS with
a self-signed certificate, passive ports on loopback, its own configuration in a
temporary directory), and pyftpdlib as a second dialect (MLSD, bare NLST names).

vsftpd refuses root and logs local users in through PAM: as root the fixture creates
``tracklog-ftp`` (a system account whose home is a directory of its own) with a password,
and vsftpd's user list admits only that account. Without root there is no such account
and the vsftpd tests are skipped with the reason.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tracklog.testing import service_unavailable
from tracklog.testing.server import free_port, stop_process
from tracklog.testing.tls import self_signed

VSFTPD = "/usr/sbin/vsftpd"
FTP_USER = "tracklog-ftp"
# Only vsftpd's own loopback instance admits the account (userlist_deny=NO).
FTP_PASSWORD = "tracklog-ftp-test-password"
FTP_HOME = "/var/tmp/tracklog-ftp-home"
ENV_SETTINGS = ("TRACKLOG_FTPS_CA_FILE", "TRACKLOG_FTP_TIMEOUT", "NETRC")


def _free_range(count: int) -> tuple[int, int]:
    """``count`` consecutive loopback ports free right now."""
    import random

    for _ in range(200):
        start = random.randint(30000, 60000 - count)
        try:
            for port in range(start, start + count):
                with socket.socket() as s:
                    s.bind(("127.0.0.1", port))
        except OSError:
            continue
        return start, start + count - 1
    raise RuntimeError("no free passive port range")


@dataclass
class FtpServer:
    port: int
    user: str
    password: str
    cert: Path | None  # the self-signed certificate (vsftpd only)
    owner: tuple[int, int] | None  # uid, gid files must belong to (vsftpd's account)
    base: Path  # where the server's paths start ("/" for vsftpd, its home for pyftpdlib)
    stop: object

    def directory(self) -> tuple[str, Path]:
        """A fresh directory the account owns: ``(its path in URIs, its local path)``."""
        local = Path(tempfile.mkdtemp(prefix="tracklog-ftp-", dir=self.base if
                                      self.base != Path("/") else None))
        os.chmod(local, 0o755)
        if self.owner:
            os.chown(local, *self.owner)
        remote = "/" + local.relative_to(self.base).as_posix()
        return remote, local


def _ftp_account() -> tuple[int, int] | None:
    if os.geteuid() != 0 or not shutil.which("useradd"):
        return None
    try:
        entry = pwd.getpwnam(FTP_USER)
    except KeyError:
        # A login shell from /etc/shells: vsftpd's PAM service requires one.
        subprocess.run(["useradd", "--system", "--no-create-home", "--home-dir", FTP_HOME,
                        "--shell", "/bin/sh", FTP_USER], check=True, capture_output=True)
        entry = pwd.getpwnam(FTP_USER)
    subprocess.run(["chpasswd"], input=f"{FTP_USER}:{FTP_PASSWORD}\n", text=True,
                   check=True, capture_output=True)
    os.makedirs(entry.pw_dir, exist_ok=True)
    os.chown(entry.pw_dir, entry.pw_uid, entry.pw_gid)
    return entry.pw_uid, entry.pw_gid


@pytest.fixture(scope="session")
def vsftpd() -> Iterator[FtpServer]:
    if not os.path.exists(VSFTPD):
        service_unavailable("vsftpd", f"{VSFTPD} is missing (apt-get install vsftpd)")
    owner = _ftp_account()
    if owner is None:
        pytest.skip("vsftpd needs a local account with a password (it refuses root): "
                    "run the tests as root so they can create one")
    folder = Path(tempfile.mkdtemp(prefix="tracklog-vsftpd-"))
    cert, key = self_signed(folder)
    (folder / "user_list").write_text(FTP_USER + "\n")
    port = free_port()
    low, high = _free_range(40)
    config = folder / "vsftpd.conf"
    config.write_text("\n".join([
        "listen=YES", "listen_ipv6=NO", "listen_address=127.0.0.1", f"listen_port={port}",
        "background=NO", "anonymous_enable=NO", "local_enable=YES", "write_enable=YES",
        "local_umask=022", "pasv_enable=YES", "pasv_address=127.0.0.1",
        f"pasv_min_port={low}", f"pasv_max_port={high}", "port_enable=NO",
        "seccomp_sandbox=NO", "secure_chroot_dir=/var/run/vsftpd/empty",
        "pam_service_name=vsftpd", "userlist_enable=YES", "userlist_deny=NO",
        f"userlist_file={folder}/user_list", "utf8_filesystem=YES", "max_per_ip=0",
        "max_clients=0", "delay_failed_login=0", "xferlog_enable=YES",
        f"vsftpd_log_file={folder}/vsftpd.log", "log_ftp_protocol=NO",
        "ssl_enable=YES", f"rsa_cert_file={cert}", f"rsa_private_key_file={key}",
        "force_local_logins_ssl=NO", "force_local_data_ssl=NO", "require_ssl_reuse=YES",
        "ssl_ciphers=HIGH", "",
    ]))
    log = folder / "stderr.log"
    with open(log, "wb") as out:
        process = subprocess.Popen([VSFTPD, str(config)], stdin=subprocess.DEVNULL,
                                   stdout=out, stderr=out)

    def stop() -> None:
        stop_process(process)

    deadline = time.monotonic() + 15
    while True:
        if process.poll() is not None:
            service_unavailable("vsftpd", f"vsftpd exited: {log.read_text()[-800:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
                if s.recv(100).startswith(b"220"):
                    break
        except OSError:
            pass
        if time.monotonic() > deadline:
            stop()
            service_unavailable("vsftpd", f"no 220 banner in 15 s: {log.read_text()[-800:]}")
        time.sleep(0.05)
    try:
        yield FtpServer(port, FTP_USER, FTP_PASSWORD, cert, owner, Path("/"), stop)
    finally:
        stop()
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session")
def pyftpd(tmp_path_factory) -> Iterator[FtpServer]:
    """pyftpdlib in a thread of this process: a virtual root at its home directory."""
    try:
        # pyftpdlib ships no type hints (no py.typed, no stub package).
        from pyftpdlib.authorizers import DummyAuthorizer  # type: ignore[import-untyped]
        from pyftpdlib.handlers import FTPHandler  # type: ignore[import-untyped]
        from pyftpdlib.servers import ThreadedFTPServer  # type: ignore[import-untyped]
    except ImportError as exc:
        service_unavailable("pyftpdlib", f"not installed ({exc})")
    home = tmp_path_factory.mktemp("pyftpd-home")
    authorizer = DummyAuthorizer()
    authorizer.add_user("alice", "alice-password", str(home), perm="elradfmwMT")

    class Handler(FTPHandler):
        pass

    Handler.authorizer = authorizer
    Handler.passive_ports = None
    server = ThreadedFTPServer(("127.0.0.1", 0), Handler)
    server.max_cons = 256
    port = server.socket.getsockname()[1]
    thread = threading.Thread(target=server.serve_forever, kwargs={"timeout": 0.2},
                              daemon=True)
    thread.start()

    def stop() -> None:
        server.close_all()
        thread.join(10)

    try:
        yield FtpServer(port, "alice", "alice-password", None, None, home, stop)
    finally:
        stop()


@pytest.fixture
def ftp_env(tmp_path, monkeypatch) -> Iterator[Path]:
    """No settings of the developer's own, an empty home (no ~/.netrc) and an empty
    pool after the test."""
    from tracklog_artifacts_ftp import connection

    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    for name in ENV_SETTINGS:
        monkeypatch.delenv(name, raising=False)
    yield home
    for pool in list(connection._pools.values()):
        pool.clear()
    connection._pools.clear()


@pytest.fixture
def vsftpd_dir(vsftpd, ftp_env) -> Iterator[tuple[str, Path]]:
    remote, local = vsftpd.directory()
    try:
        yield remote, local
    finally:
        shutil.rmtree(local, ignore_errors=True)


@pytest.fixture
def closed_port() -> int:
    return free_port()


@pytest.fixture
def unique() -> str:
    return uuid.uuid4().hex[:10]
