"""The artifact conformance kit through WebHDFS, against the WebHDFS test double (a
NameNode and a DataNode speaking the REST protocol over a temporary directory)."""

import pytest

from tracklog.plugins import resolve_repository
from tracklog.testing.artifacts import ArtifactRepositoryConformance, ArtifactRequirements
from tracklog_artifacts_hdfs.repository import HDFSArtifactRepository

PAGE_SIZE = 50  # the double's, see conftest


class TestWebHDFS(ArtifactRepositoryConformance):
    requirements = ArtifactRequirements(empty_directories=True, listing_page_size=PAGE_SIZE)

    @pytest.fixture
    def repo(self, namenode):
        repo = resolve_repository(f"webhdfs://alice@127.0.0.1:{namenode.port}/user/alice/mlflow")
        assert isinstance(repo, HDFSArtifactRepository)
        yield repo


class TestWebHDFSAtRoot(ArtifactRepositoryConformance):
    """The file system's root as the artifact root, on a cluster without
    LISTSTATUS_BATCH (before Hadoop 2.8)."""

    requirements = ArtifactRequirements(empty_directories=True, large_files=False)

    @pytest.fixture
    def repo(self, make_namenode):
        double = make_namenode(batch=False)
        yield resolve_repository(f"webhdfs://127.0.0.1:{double.port}/")
