"""The artifact conformance kit against a real OpenSSH sshd: through the SSH
configuration's host alias with a key, and as another user with a password."""

import pytest

from tracklog.plugins import resolve_repository
from tracklog.testing.artifacts import ArtifactRepositoryConformance, ArtifactRequirements
from tracklog_artifacts_sftp.repository import SFTPArtifactRepository


class TestSFTPKeyLogin(ArtifactRepositoryConformance):
    requirements = ArtifactRequirements(empty_directories=True)

    @pytest.fixture
    def repo(self, ssh_home, remote_dir):
        repo = resolve_repository(f"sftp://sshd-test{remote_dir}/artifacts")
        assert isinstance(repo, SFTPArtifactRepository)
        yield repo


class TestSFTPPasswordLogin(ArtifactRepositoryConformance):
    """A password in the URI (discouraged, but it works), a plain host and port, and a
    root directory owned by that user."""

    requirements = ArtifactRequirements(empty_directories=True, large_files=False)

    @pytest.fixture
    def repo(self, sshd, ssh_home, password_login):
        user, password, own = password_login
        yield resolve_repository(f"sftp://{user}:{password}@127.0.0.1:{sshd.port}{own}/root")
