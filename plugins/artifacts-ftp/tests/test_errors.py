"""Logins, TLS trust, failures and listing dialects: one-line errors naming the URI
without its password, with the MLflow code that fits; 550 answers resolved by looking at
the state; pooled connections shared by threads."""

from __future__ import annotations

import io
import os
import random
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest

from tracklog.errors import ErrorCode, TracklogError
from tracklog_artifacts_ftp.connection import _FTPS, parse_target
from tracklog_artifacts_ftp.listing import Entry, parse_list_line
from tracklog_artifacts_ftp.repository import FTPArtifactRepository


def _error(func, *args) -> TracklogError:
    with pytest.raises(TracklogError) as excinfo:
        func(*args)
    assert "\n" not in excinfo.value.message and "Traceback" not in excinfo.value.message
    return excinfo.value


def _uri(server, remote: str, scheme: str = "ftp", password: str | None = None) -> str:
    return (f"{scheme}://{server.user}:{password or server.password}@127.0.0.1:"
            f"{server.port}{remote}")


def test_wrong_password(vsftpd, vsftpd_dir):
    remote, _ = vsftpd_dir
    repo = FTPArtifactRepository(_uri(vsftpd, remote, password="Wrong-Pw-31"))
    err = _error(repo.verify)
    assert "not usable" in err.message and "Wrong-Pw-31" not in err.message
    assert f"ftp://{vsftpd.user}@127.0.0.1:{vsftpd.port}{remote}" in err.message
    err = _error(repo.list_artifacts)
    assert err.error_code == ErrorCode.UNAUTHENTICATED and "530" in err.message


def test_untrusted_certificate_refused(vsftpd, vsftpd_dir):
    """Certificates are checked by default: the self-signed one is refused, with the way
    to trust it in the message."""
    remote, _ = vsftpd_dir
    err = _error(FTPArtifactRepository(_uri(vsftpd, remote, "ftps")).list_artifacts)
    assert err.error_code == ErrorCode.TEMPORARILY_UNAVAILABLE
    assert "not trusted" in err.message and "TRACKLOG_FTPS_CA_FILE" in err.message


def test_trusted_ca_file_and_encrypted_data(vsftpd, vsftpd_dir, monkeypatch):
    remote, local = vsftpd_dir
    monkeypatch.setenv("TRACKLOG_FTPS_CA_FILE", str(vsftpd.cert))
    repo = FTPArtifactRepository(_uri(vsftpd, remote, "ftps"))
    repo.write_artifact("secret.txt", io.BytesIO(b"over tls"))
    assert repo.open_artifact("secret.txt").read() == b"over tls"
    assert (local / "secret.txt").read_bytes() == b"over tls"
    with repo.pool.borrow() as conn:
        assert isinstance(conn.ftp, _FTPS)
        assert conn.ftp._prot_p  # the data connections are encrypted too


def test_missing_ca_file_refused(ftp_env, monkeypatch, tmp_path):
    monkeypatch.setenv("TRACKLOG_FTPS_CA_FILE", str(tmp_path / "none.pem"))
    err = _error(FTPArtifactRepository, "ftps://u:p@h/x")
    assert err.error_code == ErrorCode.INVALID_PARAMETER_VALUE
    assert "TRACKLOG_FTPS_CA_FILE" in err.message


def test_connection_refused(ftp_env, closed_port):
    repo = FTPArtifactRepository(f"ftp://me:pw-secret@127.0.0.1:{closed_port}/srv")
    err = _error(repo.list_artifacts)
    assert err.error_code == ErrorCode.TEMPORARILY_UNAVAILABLE
    assert f"ftp://me@127.0.0.1:{closed_port}/srv failed: connection to" in err.message
    assert "pw-secret" not in _error(repo.verify).message


def test_permission_denied(vsftpd, vsftpd_dir, tmp_path):
    """Writing into a directory of root's: PERMISSION_DENIED and nothing left."""
    remote, local = vsftpd_dir
    locked = local / "locked"
    locked.mkdir()
    os.chown(locked, 0, 0)
    repo = FTPArtifactRepository(_uri(vsftpd, f"{remote}/locked"))
    err = _error(repo.write_artifact, "sub/f.txt", io.BytesIO(b"x"))
    assert err.error_code == ErrorCode.PERMISSION_DENIED and "550" in err.message
    err = _error(repo.write_artifact, "f.txt", io.BytesIO(b"x"))
    assert err.error_code == ErrorCode.PERMISSION_DENIED
    assert list(locked.iterdir()) == []


def test_parent_that_is_a_file(vsftpd, vsftpd_dir):
    remote, local = vsftpd_dir
    repo = FTPArtifactRepository(_uri(vsftpd, remote))
    repo.write_artifact("a.txt", io.BytesIO(b"file"))
    err = _error(repo.write_artifact, "a.txt/b.txt", io.BytesIO(b"x"))
    assert err.error_code == ErrorCode.INVALID_PARAMETER_VALUE and "is a file" in err.message
    repo.write_artifact("d/x.txt", io.BytesIO(b"x"))
    assert "is a directory" in _error(repo.write_artifact, "d", io.BytesIO(b"x")).message
    assert (local / "a.txt").read_bytes() == b"file"


def test_interrupted_upload_keeps_old_file(vsftpd, vsftpd_dir):
    remote, local = vsftpd_dir
    repo = FTPArtifactRepository(_uri(vsftpd, remote))
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
    assert os.listdir(local) == ["f.bin"]
    assert repo.open_artifact("f.bin").read() == b"old"


def test_netrc_login(vsftpd, vsftpd_dir, ftp_env):
    """Without a password in the URI, ~/.netrc supplies the login."""
    remote, local = vsftpd_dir
    netrc = ftp_env / ".netrc"
    netrc.write_text(f"machine 127.0.0.1 login {vsftpd.user} password {vsftpd.password}\n")
    os.chmod(netrc, 0o600)
    repo = FTPArtifactRepository(f"ftp://127.0.0.1:{vsftpd.port}{remote}")
    repo.write_artifact("n.txt", io.BytesIO(b"netrc"))
    assert (local / "n.txt").read_bytes() == b"netrc"


@pytest.mark.parametrize("dialect", ["vsftpd", "pyftpd"])
def test_threads_share_the_pool(request, dialect, ftp_env):
    server = request.getfixturevalue(dialect)
    remote, _ = server.directory()
    repo = FTPArtifactRepository(_uri(server, remote))
    blobs = {f"t/{i}.bin": random.Random(i).randbytes(100_000 + i) for i in range(24)}

    def work(item):
        path, data = item
        repo.write_artifact(path, io.BytesIO(data))
        return b"".join(repo.iter_artifact(path)) == data

    with ThreadPoolExecutor(8) as pool:
        assert all(pool.map(work, blobs.items()))
    assert {f.path: f.file_size for f in repo.list_artifacts("t")} == {
        p: len(d) for p, d in blobs.items()}


def test_abandoned_download_then_reuse(vsftpd, vsftpd_dir):
    remote, _ = vsftpd_dir
    repo = FTPArtifactRepository(_uri(vsftpd, remote))
    data = random.Random(2).randbytes(8 * 1024 * 1024)
    repo.write_artifact("big.bin", io.BytesIO(data))
    stream = repo.open_artifact("big.bin")
    assert stream.read(1000) == data[:1000]
    stream.close()
    assert b"".join(repo.iter_artifact("big.bin")) == data


@pytest.mark.parametrize(
    "line, entry",
    [
        ("-rw-r--r--    1 1001     1001            5 Dec 03 13:31 a b.txt",
         Entry("a b.txt", False, 5)),
        ("drwxr-xr-x    2 0        0            4096 Jan  1  2025 dir",
         Entry("dir", True, None)),
        ("-rw-r--r-- 1 owner group 12 2026-01-02 03:04 iso.txt", Entry("iso.txt", False, 12)),
        ("lrwxrwxrwx    1 0        0               4 Dec 03 13:31 link -> dest",
         Entry("link", False, None, is_link=True)),
        ("12-03-26  01:31PM                 1234 dos file.txt", Entry("dos file.txt", False, 1234)),
        ("12-03-26  01:31PM       <DIR>          Folder", Entry("Folder", True, None)),
        ("total 8", None),
    ],
)
def test_list_dialects(line, entry):
    assert parse_list_line(line) == entry


@pytest.mark.parametrize(
    "uri, expected",
    [
        ("ftp://h", ("h", 21, "anonymous", "/", False)),
        ("ftps://u%40x:p%3Aw@h:2121/a/b/", ("h", 2121, "u@x", "/a/b", True)),
    ],
)
def test_parse_uri(ftp_env, uri, expected):
    target = parse_target(uri)
    assert (target.host, target.port, target.username, target.root, target.tls) == expected
    assert "p:w" not in target.display and "p%3Aw" not in target.display


@pytest.mark.parametrize("uri", ["ftp:///x", "ftp://h/x?y", "ftp://h/a/../b", "ftp://h:x/"])
def test_parse_uri_refuses(ftp_env, uri):
    assert _error(parse_target, uri).error_code == ErrorCode.INVALID_PARAMETER_VALUE


def test_plugin_registers_without_importing_the_repository():
    code = (
        "import sys\n"
        "from tracklog import plugins\n"
        "plugins.load_plugins()\n"
        "plugins.artifact_repository_factory('ftps://h/p')\n"
        "assert 'tracklog_artifacts_ftp.repository' not in sys.modules, 'imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
