"""WebHDFS tests run against the test double in ``webhdfs_double.py`` (no NameNode can
run here): a NameNode and a DataNode port over a temporary directory, per test."""

from __future__ import annotations

import importlib.util
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

_spec = importlib.util.spec_from_file_location(
    "tracklog_hdfs_webhdfs_double", Path(__file__).with_name("webhdfs_double.py"))
assert _spec is not None and _spec.loader is not None  # a .py file always has both
webhdfs_double = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(webhdfs_double)

ENV_SETTINGS = ("HADOOP_USER_NAME", "TRACKLOG_WEBHDFS_DELEGATION_TOKEN",
                "MLFLOW_KERBEROS_TICKET_CACHE", "MLFLOW_KERBEROS_USER",
                "MLFLOW_PYARROW_EXTRA_CONF")
#: The double's page size: small, so listings of the kit span pages.
PAGE_SIZE = 50


@pytest.fixture
def hdfs_env(monkeypatch):
    from tracklog_artifacts_hdfs import webhdfs

    for name in ENV_SETTINGS:
        monkeypatch.delenv(name, raising=False)
    yield
    with webhdfs._clients_lock:
        for client in webhdfs._clients.values():
            client.close()
        webhdfs._clients.clear()


@pytest.fixture
def namenode(tmp_path, hdfs_env) -> Iterator:
    """A WebHDFS test double over ``tmp_path/hdfs``; ``/locked`` belongs to user hdfs."""
    root = tmp_path / "hdfs"
    (root / "locked").mkdir(parents=True)
    double = webhdfs_double.WebHDFSDouble(root, page_size=PAGE_SIZE,
                                          owners={"/locked": "hdfs"}).start()
    try:
        yield double
    finally:
        double.stop()


@pytest.fixture
def make_namenode(tmp_path, hdfs_env):
    """Start another double (e.g. ``batch=False`` for a pre-2.8 cluster)."""
    started: list[Any] = []

    def make(**options):
        root = tmp_path / f"hdfs-{len(started)}"
        root.mkdir()
        double = webhdfs_double.WebHDFSDouble(root, **options).start()
        started.append(double)
        return double

    yield make
    for double in started:
        double.stop()


@pytest.fixture
def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
