"""The artifact conformance kit against a real vsftpd (LIST dialect, no MLSD), the same
vsftpd over explicit FTPS with its certificate trusted through TRACKLOG_FTPS_CA_FILE,
and pyftpdlib (MLSD dialect)."""

import shutil

import pytest

from tracklog.plugins import resolve_repository
from tracklog.testing.artifacts import ArtifactRepositoryConformance, ArtifactRequirements
from tracklog_artifacts_ftp.repository import FTPArtifactRepository


class TestVsftpd(ArtifactRepositoryConformance):
    requirements = ArtifactRequirements(empty_directories=True)

    @pytest.fixture
    def repo(self, vsftpd, vsftpd_dir):
        remote, _ = vsftpd_dir
        repo = resolve_repository(
            f"ftp://{vsftpd.user}:{vsftpd.password}@127.0.0.1:{vsftpd.port}{remote}/art")
        assert isinstance(repo, FTPArtifactRepository)
        with repo.pool.borrow() as conn:
            assert "MLST" not in conn.features  # really the LIST dialect
        yield repo


class TestVsftpdTLS(ArtifactRepositoryConformance):
    requirements = ArtifactRequirements(empty_directories=True)

    @pytest.fixture
    def repo(self, vsftpd, vsftpd_dir, monkeypatch):
        remote, _ = vsftpd_dir
        monkeypatch.setenv("TRACKLOG_FTPS_CA_FILE", str(vsftpd.cert))
        yield resolve_repository(
            f"ftps://{vsftpd.user}:{vsftpd.password}@127.0.0.1:{vsftpd.port}{remote}")


class TestPyftpdlib(ArtifactRepositoryConformance):
    requirements = ArtifactRequirements(empty_directories=True, large_files=False)

    @pytest.fixture
    def repo(self, pyftpd, ftp_env):
        remote, local = pyftpd.directory()
        repo = resolve_repository(
            f"ftp://{pyftpd.user}:{pyftpd.password}@127.0.0.1:{pyftpd.port}{remote}")
        assert isinstance(repo, FTPArtifactRepository)
        with repo.pool.borrow() as conn:
            assert "MLST" in conn.features
        yield repo
        shutil.rmtree(local, ignore_errors=True)
