"""End to end: `tracklog server --artifacts-destination webhdfs://…` against the WebHDFS
test double, driven by the real MLflow client."""

from __future__ import annotations

import os

import pytest

from tracklog.testing.proxied import ProxiedArtifactsTests
from tracklog.testing.server import refused_start

NO_LIBHDFS = not (os.environ.get("ARROW_LIBHDFS_DIR") or os.environ.get("HADOOP_HOME"))


class TestProxiedWebHdfs(ProxiedArtifactsTests):
    @pytest.fixture
    def destination(self, namenode) -> str:
        """The WebHDFS test double, as user alice."""
        return f"webhdfs://alice@127.0.0.1:{namenode.port}/user/alice/artifacts"


@pytest.mark.parametrize("problem", ["refused", "no-libhdfs"])
def test_server_refuses_an_unusable_destination(hdfs_env, tmp_path, closed_port, problem):
    """The start check stops the server with one line naming the destination, and for
    hdfs:// without libhdfs what to install, instead of a server that fails every
    upload."""
    if problem == "no-libhdfs" and not NO_LIBHDFS:
        pytest.skip("a Hadoop installation is configured here")
    destination = {
        "refused": f"webhdfs://127.0.0.1:{closed_port}/artifacts",
        "no-libhdfs": "hdfs://namenode:8020/artifacts",
    }[problem]
    line, _ = refused_start("--backend-store-uri", f"sqlite:///{tmp_path / 't.db'}",
                            "--artifacts-destination", destination, cwd=tmp_path)
    assert "not usable" in line and destination in line, line
    if problem == "no-libhdfs":
        assert "HADOOP_HOME" in line and "webhdfs://" in line
