"""Failures and settings: one-line errors with the MLflow code that fits, state checked
instead of OpenSSH's generic "Failure", settings refused at creation, and the pool's
connections shared safely between threads and replaced when they break."""

from __future__ import annotations

import io
import os
import random
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from tracklog.errors import ErrorCode, TracklogError
from tracklog_artifacts_sftp.location import parse_sftp_uri
from tracklog_artifacts_sftp.repository import SFTPArtifactRepository


def _error(func, *args) -> TracklogError:
    with pytest.raises(TracklogError) as excinfo:
        func(*args)
    assert "\n" not in excinfo.value.message
    return excinfo.value


def test_connection_refused(ssh_home, closed_port):
    repo = SFTPArtifactRepository(f"sftp://me:pw-secret@127.0.0.1:{closed_port}/srv/a")
    err = _error(repo.list_artifacts)
    assert err.error_code == ErrorCode.TEMPORARILY_UNAVAILABLE
    assert f"sftp://me@127.0.0.1:{closed_port}/srv/a failed: connection to" in err.message
    assert "pw-secret" not in err.message
    assert "pw-secret" not in _error(repo.verify).message


def test_permission_denied(sshd, ssh_home, password_login, remote_dir):
    """A user writing where it may not: PERMISSION_DENIED, and nothing left behind."""
    user, password, _own = password_login
    locked = remote_dir / "root-only"
    locked.mkdir(mode=0o755)
    repo = SFTPArtifactRepository(f"sftp://{user}:{password}@127.0.0.1:{sshd.port}{locked}")
    err = _error(repo.write_artifact, "sub/f.txt", io.BytesIO(b"x"))
    assert err.error_code == ErrorCode.PERMISSION_DENIED
    assert password not in err.message
    assert list(locked.iterdir()) == []
    with pytest.raises(TracklogError) as excinfo:
        repo.verify(probe_write=True)
    assert "permission denied" in excinfo.value.message


def test_parent_that_is_a_file(ssh_home, remote_dir):
    repo = SFTPArtifactRepository(f"sftp://sshd-test{remote_dir}")
    repo.write_artifact("a.txt", io.BytesIO(b"file"))
    err = _error(repo.write_artifact, "a.txt/b.txt", io.BytesIO(b"x"))
    assert err.error_code == ErrorCode.INVALID_PARAMETER_VALUE and "is a file" in err.message
    err = _error(repo.write_artifact, "a.txt/deeper/b.txt", io.BytesIO(b"x"))
    assert err.error_code == ErrorCode.INVALID_PARAMETER_VALUE
    repo.write_artifact("d/x.txt", io.BytesIO(b"x"))
    err = _error(repo.write_artifact, "d", io.BytesIO(b"x"))
    assert "is a directory" in err.message
    assert (remote_dir / "a.txt").read_bytes() == b"file"


def test_root_missing_then_made_root_a_file_refused(ssh_home, remote_dir):
    missing = SFTPArtifactRepository(f"sftp://sshd-test{remote_dir}/not/yet")
    missing.verify()
    assert missing.list_artifacts() == []
    missing.verify(probe_write=True)
    assert (remote_dir / "not" / "yet").is_dir()
    (remote_dir / "plain").write_bytes(b"x")
    err = _error(SFTPArtifactRepository(f"sftp://sshd-test{remote_dir}/plain").verify)
    assert "root is not a directory" in err.message


def test_interrupted_upload_leaves_old_file_and_no_temporary(ssh_home, remote_dir):
    repo = SFTPArtifactRepository(f"sftp://sshd-test{remote_dir}")
    repo.write_artifact("f.bin", io.BytesIO(b"old"))

    class Broken(io.RawIOBase):
        sent = 0

        def readable(self):
            return True

        def read(self, n=-1):
            self.sent += 1
            if self.sent > 3:
                raise ConnectionResetError("client went away")
            return b"n" * 100_000

    with pytest.raises(ConnectionResetError):
        repo.write_artifact("f.bin", Broken())
    assert os.listdir(remote_dir) == ["f.bin"]
    assert repo.open_artifact("f.bin").read() == b"old"


def test_stale_temporaries_swept(ssh_home, remote_dir):
    repo = SFTPArtifactRepository(f"sftp://sshd-test{remote_dir}")
    repo.write_artifact("d/keep.txt", io.BytesIO(b"k"))
    stale = remote_dir / "d" / ".tracklog-tmp-0123"
    stale.write_bytes(b"half")
    fresh = remote_dir / ".tracklog-tmp-4567"
    fresh.write_bytes(b"in progress")
    os.utime(stale, (1_000_000, 1_000_000))
    assert [f.path for f in repo.list_artifacts("d")] == ["d/keep.txt"]
    assert repo.remove_stale_temp_files(3600) == 1
    assert not stale.exists() and fresh.exists()


def test_threads_share_the_pool(ssh_home, remote_dir):
    """Sixteen threads write and read distinct files at once over pooled connections;
    every byte comes back and the pool keeps only a few idle connections."""
    repo = SFTPArtifactRepository(f"sftp://sshd-test{remote_dir}")
    blobs = {f"t/{i}.bin": random.Random(i).randbytes(200_000 + i) for i in range(32)}

    def work(item):
        path, data = item
        repo.write_artifact(path, io.BytesIO(data))
        return b"".join(repo.iter_artifact(path)) == data

    with ThreadPoolExecutor(16) as pool:
        assert all(pool.map(work, blobs.items()))
    assert {f.path: f.file_size for f in repo.list_artifacts("t")} == {
        p: len(d) for p, d in blobs.items()}
    assert 1 <= len(repo.pool._idle) <= 8


def test_broken_connection_is_replaced(sshd, ssh_home, remote_dir):
    """A pooled connection the server dropped is not handed out again."""
    repo = SFTPArtifactRepository(f"sftp://sshd-test{remote_dir}")
    repo.write_artifact("f.txt", io.BytesIO(b"one"))
    [conn] = repo.pool._idle
    # The server side of the connection goes away: its sshd session process ends.
    children = subprocess.run(["pgrep", "-P", str(sshd.process.pid)], capture_output=True,
                              text=True).stdout.split()
    assert children
    for pid in children:
        os.kill(int(pid), signal.SIGTERM)
    deadline = time.monotonic() + 10
    while conn.active and time.monotonic() < deadline:
        time.sleep(0.05)
    assert repo.open_artifact("f.txt").read() == b"one"
    assert conn not in repo.pool._idle


def test_abandoned_download_does_not_poison_the_pool(ssh_home, remote_dir):
    repo = SFTPArtifactRepository(f"sftp://sshd-test{remote_dir}")
    data = random.Random(5).randbytes(20 * 1024 * 1024)
    repo.write_artifact("big.bin", io.BytesIO(data))
    stream = repo.open_artifact("big.bin")
    assert stream.read(1000) == data[:1000]
    stream.close()  # with reads in flight
    assert len(repo.pool._idle) == 1
    assert b"".join(repo.iter_artifact("big.bin")) == data


@pytest.mark.parametrize(
    "name, value",
    [
        ("TRACKLOG_SFTP_STRICT_HOST_KEY_CHECKING", "maybe"),
        ("TRACKLOG_SFTP_CONNECT_TIMEOUT", "-1"),
        ("TRACKLOG_SFTP_CONNECT_TIMEOUT", "soon"),
    ],
)
def test_bad_settings_name_the_variable(ssh_home, monkeypatch, name, value):
    monkeypatch.setenv(name, value)
    err = _error(SFTPArtifactRepository, "sftp://sshd-test/srv")
    assert err.error_code == ErrorCode.INVALID_PARAMETER_VALUE and name in err.message


@pytest.mark.parametrize(
    "uri, expected",
    [
        ("sftp://host", ("host", None, None, None, ".")),
        ("sftp://u@host:2222/srv/a/", ("host", 2222, "u", None, "/srv/a")),
        ("sftp://u%40corp:p%3Aw@host/", ("host", None, "u@corp", "p:w", "/")),
    ],
)
def test_parse_uri(uri, expected):
    loc = parse_sftp_uri(uri)
    assert (loc.host, loc.port, loc.username, loc.password, loc.root) == expected
    assert "p:w" not in loc.display and "p%3Aw" not in loc.display


@pytest.mark.parametrize("uri", ["sftp:///srv", "sftp://h/x?y=1", "sftp://h:port/x",
                                 "sftp://h/a/../b", "s3://h/x"])
def test_parse_uri_refuses(uri):
    err = _error(parse_sftp_uri, uri)
    assert err.error_code == ErrorCode.INVALID_PARAMETER_VALUE


def test_plugin_registers_without_importing_paramiko():
    code = (
        "import sys\n"
        "from tracklog import plugins\n"
        "plugins.load_plugins()\n"
        "plugins.artifact_repository_factory('sftp://h/p')\n"
        "assert 'paramiko' not in sys.modules, 'imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
