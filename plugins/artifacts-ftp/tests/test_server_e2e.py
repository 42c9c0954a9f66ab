"""End to end: `tracklog server --artifacts-destination ftp://…` (and ftps://) on the
real vsftpd, driven by the real MLflow client."""

from __future__ import annotations

import pytest

from tracklog.testing.proxied import ProxiedArtifactsTests
from tracklog.testing.server import refused_start


class TestProxiedFtp(ProxiedArtifactsTests):
    @pytest.fixture(params=["ftp", "ftps"])
    def destination(self, request, vsftpd, vsftpd_dir, monkeypatch) -> str:
        """vsftpd over plain FTP and over FTPS (its certificate trusted through
        TRACKLOG_FTPS_CA_FILE, which the server inherits)."""
        remote, _ = vsftpd_dir
        if request.param == "ftps":
            monkeypatch.setenv("TRACKLOG_FTPS_CA_FILE", str(vsftpd.cert))
        return (f"{request.param}://{vsftpd.user}:{vsftpd.password}@127.0.0.1:"
                f"{vsftpd.port}{remote}/artifacts")


@pytest.mark.parametrize("problem", ["wrong-password", "untrusted-certificate", "refused"])
def test_server_refuses_an_unusable_destination(vsftpd, vsftpd_dir, tmp_path, closed_port,
                                                problem):
    """The start check stops the server with one line naming the destination (never
    its password) instead of a server that fails every upload."""
    remote, _ = vsftpd_dir
    destination = {
        "wrong-password": f"ftp://{vsftpd.user}:Not-The-Pw-77@127.0.0.1:{vsftpd.port}{remote}",
        "untrusted-certificate":
            f"ftps://{vsftpd.user}:{vsftpd.password}@127.0.0.1:{vsftpd.port}{remote}",
        "refused": f"ftp://{vsftpd.user}:Not-The-Pw-77@127.0.0.1:{closed_port}{remote}",
    }[problem]
    line, printed = refused_start("--backend-store-uri", f"sqlite:///{tmp_path / 't.db'}",
                                  "--artifacts-destination", destination, cwd=tmp_path)
    assert "not usable" in line and remote in line, line
    assert "Not-The-Pw-77" not in printed
    assert vsftpd.password not in printed
