"""Logging in and checking the server, against the real sshd: keys from the SSH
configuration, from ~/.ssh and from an agent, a password from the URI; a wrong key, a
wrong password, an unknown and a changed host key are refused with one line naming the
URI (never the password), and the host-key opt-outs do what they say."""

from __future__ import annotations

import io
import os
import shutil
import signal
import subprocess

import pytest

from tracklog.errors import ErrorCode, TracklogError
from tracklog_artifacts_sftp.repository import SFTPArtifactRepository


def _round_trip(uri: str) -> bytes:
    repo = SFTPArtifactRepository(uri)
    repo.write_artifact("dir/f.txt", io.BytesIO(b"over ssh"))
    return b"".join(repo.iter_artifact("dir/f.txt"))


def _refused(uri: str, secret: str | None = None) -> TracklogError:
    repo = SFTPArtifactRepository(uri)
    with pytest.raises(TracklogError) as excinfo:
        repo.verify()
    err = excinfo.value
    assert "\n" not in err.message and "Traceback" not in err.message
    assert "not usable" in err.message
    if secret:
        assert secret not in err.message
    return err


def test_identity_file_from_ssh_config(ssh_home, remote_dir):
    assert _round_trip(f"sftp://sshd-test{remote_dir}") == b"over ssh"
    assert (remote_dir / "dir" / "f.txt").read_bytes() == b"over ssh"


def test_default_identity_in_home(sshd, ssh_home, remote_dir):
    """No SSH configuration for the address: ~/.ssh/id_ed25519 is found as ssh finds it."""
    shutil.copy(sshd.client_key, ssh_home / ".ssh" / "id_ed25519")
    uri = f"sftp://{sshd.user}@127.0.0.1:{sshd.port}{remote_dir}"
    assert _round_trip(uri) == b"over ssh"


def test_agent_key(sshd, ssh_home, remote_dir, monkeypatch, tmp_path):
    """The key lives only in an ssh-agent."""
    if not shutil.which("ssh-agent") or not shutil.which("ssh-add"):
        pytest.skip("ssh-agent is not installed")
    sock = tmp_path / "agent.sock"
    agent = subprocess.Popen(["ssh-agent", "-D", "-a", str(sock)], stdin=subprocess.DEVNULL,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        env = {**os.environ, "SSH_AUTH_SOCK": str(sock)}
        for _ in range(50):
            if sock.exists():
                break
            subprocess.run(["sleep", "0.1"])
        subprocess.run(["ssh-add", "-q", str(sshd.client_key)], env=env, check=True,
                       capture_output=True)
        monkeypatch.setenv("SSH_AUTH_SOCK", str(sock))
        uri = f"sftp://{sshd.user}@127.0.0.1:{sshd.port}{remote_dir}"
        assert _round_trip(uri) == b"over ssh"
    finally:
        agent.send_signal(signal.SIGTERM)
        agent.wait(10)


def test_password_in_uri(sshd, ssh_home, password_login):
    user, password, own = password_login
    uri = f"sftp://{user}:{password}@127.0.0.1:{sshd.port}{own}"
    assert _round_trip(uri) == b"over ssh"
    assert (own / "dir" / "f.txt").stat().st_uid != os.geteuid()  # written as that user


def test_wrong_password_refused(sshd, ssh_home, password_login):
    user, _, own = password_login
    err = _refused(f"sftp://{user}:Wrong-Secret-9@127.0.0.1:{sshd.port}{own}", "Wrong-Secret-9")
    assert err.error_code == ErrorCode.INVALID_STATE
    assert f"sftp://{user}@127.0.0.1:{sshd.port}{own}" in err.message
    assert f"authentication as '{user}' failed" in err.message


def test_wrong_key_refused(sshd, ssh_home, remote_dir, tmp_path, keygen):
    stranger = tmp_path / "stranger"
    keygen(stranger)
    (ssh_home / ".ssh" / "config").write_text(
        f"Host stranger\n    HostName 127.0.0.1\n    Port {sshd.port}\n"
        f"    User {sshd.user}\n    IdentityFile {stranger}\n    IdentitiesOnly yes\n")
    err = _refused(f"sftp://stranger{remote_dir}")
    assert f"sftp://stranger{remote_dir}" in err.message
    assert f"authentication as '{sshd.user}' failed" in err.message
    with pytest.raises(TracklogError) as excinfo:
        SFTPArtifactRepository(f"sftp://stranger{remote_dir}").list_artifacts()
    assert excinfo.value.error_code == ErrorCode.UNAUTHENTICATED


def test_unknown_host_key_refused(sshd, ssh_home, remote_dir):
    (ssh_home / ".ssh" / "known_hosts").write_text("")
    err = _refused(f"sftp://sshd-test{remote_dir}")
    assert "is not in known_hosts" in err.message and "ssh-keyscan" in err.message
    assert not list(remote_dir.iterdir())


def test_changed_host_key_refused(sshd, ssh_home, remote_dir, tmp_path, monkeypatch,
                                  keygen):
    """A known_hosts entry with another key: refused, also with accept-new."""
    impostor = keygen(tmp_path / "impostor")
    (ssh_home / ".ssh" / "known_hosts").write_text(
        f"[127.0.0.1]:{sshd.port} {' '.join(impostor.split()[:2])}\n")
    err = _refused(f"sftp://sshd-test{remote_dir}")
    assert "does not match the one in known_hosts" in err.message
    monkeypatch.setenv("TRACKLOG_SFTP_STRICT_HOST_KEY_CHECKING", "accept-new")
    assert "does not match" in _refused(f"sftp://sshd-test{remote_dir}").message


def test_hashed_known_hosts_entry(sshd, ssh_home, remote_dir):
    """Entries hashed by `ssh-keygen -H` (Debian's HashKnownHosts) are recognised."""
    known = ssh_home / ".ssh" / "known_hosts"
    subprocess.run(["ssh-keygen", "-H", "-f", str(known)], check=True, capture_output=True)
    assert "127.0.0.1" not in known.read_text()
    assert _round_trip(f"sftp://sshd-test{remote_dir}") == b"over ssh"


def test_accept_new_trusts_an_unknown_host(sshd, ssh_home, remote_dir, monkeypatch):
    (ssh_home / ".ssh" / "known_hosts").write_text("")
    monkeypatch.setenv("TRACKLOG_SFTP_STRICT_HOST_KEY_CHECKING", "accept-new")
    assert _round_trip(f"sftp://sshd-test{remote_dir}") == b"over ssh"
    assert (ssh_home / ".ssh" / "known_hosts").read_text() == ""  # nothing saved


def test_checking_off_accepts_even_a_changed_key(sshd, ssh_home, remote_dir, tmp_path,
                                                 monkeypatch, keygen):
    impostor = keygen(tmp_path / "impostor")
    (ssh_home / ".ssh" / "known_hosts").write_text(
        f"[127.0.0.1]:{sshd.port} {' '.join(impostor.split()[:2])}\n")
    monkeypatch.setenv("TRACKLOG_SFTP_STRICT_HOST_KEY_CHECKING", "no")
    assert _round_trip(f"sftp://sshd-test{remote_dir}") == b"over ssh"


def test_ssh_config_strict_checking_no_is_honoured(sshd, ssh_home, remote_dir):
    (ssh_home / ".ssh" / "known_hosts").write_text("")
    config = ssh_home / ".ssh" / "config"
    config.write_text(config.read_text() + "    StrictHostKeyChecking no\n")
    assert _round_trip(f"sftp://sshd-test{remote_dir}") == b"over ssh"


def test_other_ssh_config_file(sshd, ssh_home, remote_dir, tmp_path, monkeypatch):
    """TRACKLOG_SFTP_SSH_CONFIG names another configuration (a service account's)."""
    other = tmp_path / "service_ssh_config"
    other.write_text(f"Host svc\n    HostName 127.0.0.1\n    Port {sshd.port}\n"
                     f"    User {sshd.user}\n    IdentityFile {sshd.client_key}\n")
    monkeypatch.setenv("TRACKLOG_SFTP_SSH_CONFIG", str(other))
    assert _round_trip(f"sftp://svc{remote_dir}") == b"over ssh"
