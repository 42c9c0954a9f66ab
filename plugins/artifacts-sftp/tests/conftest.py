"""A real OpenSSH sshd on a free loopback port for the whole session, with its own
configuration, host key and user keys in a temporary directory; and, per test, a home
directory whose ``~/.ssh`` (config, known_hosts) is the only SSH setup the plugin sees.

Key logins use the user running the tests. Password logins need a local account with a
password: as root the fixture creates ``tracklog-sftp`` (no shell, no home) and sets its
password; otherwise those tests are skipped with the reason.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tracklog.testing import service_unavailable
from tracklog.testing.server import free_port, stop_process

SSHD = "/usr/sbin/sshd"
PASSWORD_USER = "tracklog-sftp"
# Only usable through this loopback sshd, whose AllowUsers admits the account.
PASSWORD = "tracklog-sftp-test-password"
ENV_SETTINGS = ("TRACKLOG_SFTP_STRICT_HOST_KEY_CHECKING", "TRACKLOG_SFTP_SSH_CONFIG",
                "TRACKLOG_SFTP_CONNECT_TIMEOUT", "SSH_AUTH_SOCK")


def make_key(path: Path) -> str:
    """A new ed25519 key pair at ``path``; returns the public key line."""
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", path.name,
                    "-f", str(path)], check=True, stdin=subprocess.DEVNULL)
    return path.with_suffix(".pub").read_text().strip()


@dataclass
class Sshd:
    port: int
    dir: Path
    host_key: str  # "ssh-ed25519 AAAA…"
    client_key: Path  # authorised for every user
    user: str  # the user running the tests
    password_user: str | None  # None: password logins cannot be tested here
    process: subprocess.Popen
    log: Path

    @property
    def known_hosts_line(self) -> str:
        return f"[127.0.0.1]:{self.port} {self.host_key}\n"

    def stop(self) -> None:
        stop_process(self.process)


def _password_user() -> str | None:
    if os.geteuid() != 0 or not shutil.which("useradd") or not shutil.which("chpasswd"):
        return None
    try:
        pwd.getpwnam(PASSWORD_USER)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", "--home-dir", "/nonexistent",
                        "--shell", "/usr/sbin/nologin", PASSWORD_USER], check=True,
                       capture_output=True)
    subprocess.run(["chpasswd"], input=f"{PASSWORD_USER}:{PASSWORD}\n", text=True,
                   check=True, capture_output=True)
    return PASSWORD_USER


@pytest.fixture(scope="session")
def sshd() -> Iterator[Sshd]:
    if not os.path.exists(SSHD) or not shutil.which("ssh-keygen"):
        service_unavailable("sshd", f"{SSHD} or ssh-keygen is missing "
                            "(apt-get install openssh-server openssh-client)")
    folder = Path(tempfile.mkdtemp(prefix="tracklog-sshd-"))
    os.chmod(folder, 0o755)
    host_key = make_key(folder / "host_ed25519")
    client_pub = make_key(folder / "client_ed25519")
    (folder / "authorized_keys").write_text(client_pub + "\n")
    user = pwd.getpwuid(os.geteuid()).pw_name
    password_user = _password_user()
    port = free_port()
    config = folder / "sshd_config"
    config.write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {folder}/host_ed25519\n"
        f"PidFile {folder}/sshd.pid\nAuthorizedKeysFile {folder}/authorized_keys\n"
        "StrictModes no\nUsePAM no\nPubkeyAuthentication yes\nPasswordAuthentication yes\n"
        "KbdInteractiveAuthentication no\nPermitRootLogin yes\n"
        f"AllowUsers {user} {password_user or ''}\n"
        "Subsystem sftp internal-sftp\nForceCommand internal-sftp\n"
        "MaxStartups 64:30:128\nMaxSessions 32\nLogLevel VERBOSE\n"
    )
    if os.geteuid() == 0:
        os.makedirs("/run/sshd", exist_ok=True)  # the privilege-separation directory
    log = folder / "sshd.log"
    with open(log, "wb") as out:
        process = subprocess.Popen([SSHD, "-D", "-e", "-f", str(config)],
                                   stdin=subprocess.DEVNULL, stdout=out, stderr=out)
    server = Sshd(port, folder, " ".join(host_key.split()[:2]), folder / "client_ed25519",
                  user, password_user, process, log)
    deadline = time.monotonic() + 15
    while True:
        if process.poll() is not None:
            service_unavailable("sshd", f"sshd exited: {log.read_text()[-800:]}")
        scan = subprocess.run(["ssh-keyscan", "-t", "ed25519", "-p", str(port), "127.0.0.1"],
                              capture_output=True, text=True, stdin=subprocess.DEVNULL)
        if server.host_key.split()[1] in scan.stdout:
            break
        if time.monotonic() > deadline:
            server.stop()
            service_unavailable("sshd", f"no host key from sshd in 15 s: {log.read_text()[-800:]}")
        time.sleep(0.1)
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def ssh_home(sshd, tmp_path, monkeypatch) -> Iterator[Path]:
    """A home directory for this test: ``~/.ssh/config`` names the server ``sshd-test``
    (port, user, identity file), ``~/.ssh/known_hosts`` holds its host key; no agent and
    none of the plugin's variables."""
    from tracklog_artifacts_sftp import connection

    home = tmp_path / "home"
    ssh = home / ".ssh"
    ssh.mkdir(parents=True)
    (ssh / "config").write_text(
        "Host sshd-test\n    HostName 127.0.0.1\n"
        f"    Port {sshd.port}\n    User {sshd.user}\n"
        f"    IdentityFile {sshd.client_key}\n    IdentitiesOnly yes\n"
    )
    (ssh / "known_hosts").write_text(sshd.known_hosts_line)
    monkeypatch.setenv("HOME", str(home))
    for name in ENV_SETTINGS:
        monkeypatch.delenv(name, raising=False)
    yield home
    for pool in list(connection._pools.values()):
        pool.clear()
    connection._pools.clear()


@pytest.fixture
def remote_dir(sshd) -> Iterator[Path]:
    """A fresh directory the server's users can reach (the server runs here, so the
    test can also look at it directly)."""
    path = Path(tempfile.mkdtemp(prefix="tracklog-sftp-"))
    os.chmod(path, 0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def password_login(sshd, remote_dir) -> tuple[str, str, Path]:
    """``(user, password, directory owned by that user)`` for password logins; skips (not a
    service failure) where no account with a password can be made."""
    if sshd.password_user is None:
        pytest.skip("password logins need a local account with a password: "
                    "run as root, or the tests cannot create one")
    own = remote_dir / f"pw-{uuid.uuid4().hex[:8]}"
    own.mkdir()
    entry = pwd.getpwnam(sshd.password_user)
    os.chown(own, entry.pw_uid, entry.pw_gid)
    return sshd.password_user, PASSWORD, own


@pytest.fixture
def closed_port() -> int:
    return free_port()


@pytest.fixture(name="keygen")
def keygen_fixture():
    """Make an ed25519 key pair at a path; returns the public key line."""
    return make_key
