"""hdfs:// through libhdfs against a real cluster: runs only where a Hadoop installation
(ARROW_LIBHDFS_DIR or HADOOP_HOME, with JAVA_HOME and CLASSPATH) and a cluster URI
(TRACKLOG_TEST_HDFS_URI, e.g. hdfs://namenode:8020/tmp/tracklog-tests) are configured.
Nowhere tracklog's CI runs can provide them, so elsewhere these tests skip."""

import os
import uuid

import pytest

from tracklog.testing.artifacts import ArtifactRepositoryConformance, ArtifactRequirements

CLUSTER = os.environ.get("TRACKLOG_TEST_HDFS_URI", "")
HADOOP = os.environ.get("ARROW_LIBHDFS_DIR") or os.environ.get("HADOOP_HOME")

if not (CLUSTER and HADOOP):
    pytest.skip("libhdfs tests need a Hadoop installation (ARROW_LIBHDFS_DIR or HADOOP_HOME) "
                "and a cluster in TRACKLOG_TEST_HDFS_URI", allow_module_level=True)


class TestLibHDFS(ArtifactRepositoryConformance):
    requirements = ArtifactRequirements(empty_directories=True)

    @pytest.fixture
    def repo(self):
        from tracklog_artifacts_hdfs.repository import HDFSArtifactRepository

        repo = HDFSArtifactRepository(f"{CLUSTER.rstrip('/')}/{uuid.uuid4().hex}")
        yield repo
        repo.delete_artifacts()
