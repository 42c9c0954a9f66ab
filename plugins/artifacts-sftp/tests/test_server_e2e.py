"""End to end: `tracklog server --artifacts-destination sftp://…` on the real sshd, driven
by the real MLflow client. The server finds the host, user and key in the SSH
configuration of the home directory it runs with."""

from __future__ import annotations

import pytest

from tracklog.testing.proxied import ProxiedArtifactsTests
from tracklog.testing.server import refused_start


class TestProxiedSftp(ProxiedArtifactsTests):
    @pytest.fixture
    def destination(self, ssh_home, remote_dir) -> str:
        """Host, user and key come from the SSH configuration in the test's home."""
        return f"sftp://sshd-test{remote_dir}/artifacts"


@pytest.mark.parametrize("problem", ["unknown-host-key", "wrong-password", "refused"])
def test_server_refuses_an_unusable_destination(sshd, ssh_home, remote_dir, tmp_path,
                                                closed_port, problem):
    """The start check stops the server with one line naming the destination (never
    its password) instead of a server that fails every upload."""
    destination = {
        "unknown-host-key": f"sftp://sshd-test{remote_dir}",
        "wrong-password": f"sftp://{sshd.user}:Not-The-Pw-77@127.0.0.1:{sshd.port}{remote_dir}",
        "refused": f"sftp://{sshd.user}:Not-The-Pw-77@127.0.0.1:{closed_port}{remote_dir}",
    }[problem]
    if problem == "unknown-host-key":
        (ssh_home / ".ssh" / "known_hosts").write_text("")
    line, printed = refused_start("--backend-store-uri", f"sqlite:///{tmp_path / 't.db'}",
                                  "--artifacts-destination", destination, cwd=tmp_path)
    assert "not usable" in line and str(remote_dir) in line, line
    assert "Not-The-Pw-77" not in printed
