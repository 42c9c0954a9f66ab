"""Failures, settings and the protocol as spoken: RemoteException errors mapped to
MLflow codes in one line naming the URI, the two-step redirects really taken, the
listing fallback for old clusters, and hdfs:// on a machine without libhdfs."""

from __future__ import annotations

import io
import os
import subprocess
import sys

import pytest

from tracklog.errors import ErrorCode, TracklogError
from tracklog_artifacts_hdfs.repository import HDFSArtifactRepository

NO_LIBHDFS = not (os.environ.get("ARROW_LIBHDFS_DIR") or os.environ.get("HADOOP_HOME"))


def _error(func, *args) -> TracklogError:
    with pytest.raises(TracklogError) as excinfo:
        func(*args)
    assert "\n" not in excinfo.value.message and "Traceback" not in excinfo.value.message
    return excinfo.value


def test_permission_denied(namenode):
    """HDFS refuses alice a write under /locked (owned by hdfs): PERMISSION_DENIED, and
    nothing is left there."""
    repo = HDFSArtifactRepository(f"webhdfs://alice@127.0.0.1:{namenode.port}/locked/runs")
    err = _error(repo.write_artifact, "f.txt", io.BytesIO(b"x"))
    assert err.error_code == ErrorCode.PERMISSION_DENIED
    assert "AccessControlException" in err.message and "user=alice" in err.message
    assert f"webhdfs://alice@127.0.0.1:{namenode.port}/locked/runs/f.txt" in err.message
    assert list((namenode.root / "locked").iterdir()) == []
    assert "not usable" in _error(repo.verify, True).message


def test_user_from_hadoop_user_name(namenode, monkeypatch):
    monkeypatch.setenv("HADOOP_USER_NAME", "hdfs")
    repo = HDFSArtifactRepository(f"webhdfs://127.0.0.1:{namenode.port}/locked")
    repo.write_artifact("ok.txt", io.BytesIO(b"owner"))
    assert (namenode.root / "locked" / "ok.txt").read_bytes() == b"owner"


def test_parent_that_is_a_file(namenode):
    repo = HDFSArtifactRepository(f"webhdfs://127.0.0.1:{namenode.port}/data")
    repo.write_artifact("a.txt", io.BytesIO(b"file"))
    err = _error(repo.write_artifact, "a.txt/b.txt", io.BytesIO(b"x"))
    assert err.error_code == ErrorCode.INVALID_PARAMETER_VALUE and "is a file" in err.message
    repo.write_artifact("d/x.txt", io.BytesIO(b"x"))
    assert "is a directory" in _error(repo.write_artifact, "d", io.BytesIO(b"x")).message
    assert (namenode.root / "data" / "a.txt").read_bytes() == b"file"


def test_two_step_create_and_open(namenode):
    """The body goes to the DataNode the NameNode redirects to, both ways."""
    repo = HDFSArtifactRepository(f"webhdfs://127.0.0.1:{namenode.port}/data")
    repo.write_artifact("f.bin", io.BytesIO(b"payload" * 1000))
    assert repo.open_artifact("f.bin").read() == b"payload" * 1000
    for op in ("CREATE", "OPEN"):
        method = "PUT" if op == "CREATE" else "GET"
        assert ("namenode", method, op) in namenode.requests
        assert ("datanode", method, op) in namenode.requests
    assert not any(role == "datanode" and op not in ("CREATE", "OPEN")
                   for role, _, op in namenode.requests)


def test_old_cluster_lists_without_batches(make_namenode):
    double = make_namenode(batch=False)
    repo = HDFSArtifactRepository(f"webhdfs://127.0.0.1:{double.port}/data")
    for i in range(3):
        repo.write_artifact(f"d/{i}.txt", io.BytesIO(b"x" * i))
    assert [(f.path, f.file_size) for f in repo.list_artifacts("d")] == [
        ("d/0.txt", 0), ("d/1.txt", 1), ("d/2.txt", 2)]
    assert ("namenode", "GET", "LISTSTATUS") in double.requests


def test_stale_temporaries_swept(namenode):
    repo = HDFSArtifactRepository(f"webhdfs://127.0.0.1:{namenode.port}/data")
    repo.write_artifact("d/keep.txt", io.BytesIO(b"k"))
    stale = namenode.root / "data" / "d" / ".tracklog-tmp-0123"
    stale.write_bytes(b"half")
    os.utime(stale, (1_000_000, 1_000_000))
    (namenode.root / "data" / ".tracklog-tmp-4567").write_bytes(b"in progress")
    assert [f.path for f in repo.list_artifacts("d")] == ["d/keep.txt"]
    assert repo.remove_stale_temp_files(3600) == 1
    assert not stale.exists() and (namenode.root / "data" / ".tracklog-tmp-4567").exists()


def test_connection_refused(hdfs_env, closed_port):
    repo = HDFSArtifactRepository(f"webhdfs://127.0.0.1:{closed_port}/data")
    err = _error(repo.list_artifacts)
    assert err.error_code == ErrorCode.TEMPORARILY_UNAVAILABLE
    assert f"webhdfs://127.0.0.1:{closed_port}/data failed: cannot connect" in err.message
    assert "not usable" in _error(repo.verify).message


@pytest.mark.skipif(not NO_LIBHDFS, reason="a Hadoop installation is configured here")
@pytest.mark.parametrize("uri", ["hdfs://namenode:8020/mlflow", "viewfs://cluster/mlflow",
                                 "hdfs:///mlflow"])
def test_hdfs_without_libhdfs_says_what_to_install(hdfs_env, uri):
    repo = HDFSArtifactRepository(uri)
    err = _error(repo.verify)
    assert uri in err.message and "not usable" in err.message
    assert "HADOOP_HOME" in err.message and "webhdfs://" in err.message


@pytest.mark.parametrize("value", ["{bad", "[1]", '{"a": 1}'])
def test_extra_conf_must_be_an_object_of_strings(hdfs_env, monkeypatch, value):
    monkeypatch.setenv("MLFLOW_PYARROW_EXTRA_CONF", value)
    err = _error(HDFSArtifactRepository, "hdfs://nn:8020/x")
    assert err.error_code == ErrorCode.INVALID_PARAMETER_VALUE
    assert "MLFLOW_PYARROW_EXTRA_CONF" in err.message


@pytest.mark.parametrize("uri", ["webhdfs:///x", "webhdfs://u:pw@h:1/x", "webhdfs://h/x?y",
                                 "webhdfs://h/a/../b", "webhdfs://h:port/x"])
def test_bad_uris_refused(hdfs_env, uri):
    err = _error(HDFSArtifactRepository, uri)
    assert err.error_code == ErrorCode.INVALID_PARAMETER_VALUE
    assert "pw" not in err.message


def test_plugin_registers_without_importing_clients():
    code = (
        "import sys\n"
        "from tracklog import plugins\n"
        "plugins.load_plugins()\n"
        "plugins.artifact_repository_factory('webhdfs://h:1/p')\n"
        "assert 'pyarrow' not in sys.modules and 'tracklog_artifacts_hdfs.webhdfs' "
        "not in sys.modules, 'imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
