"""``hdfs://`` and ``viewfs://`` through Hadoop's native client (libhdfs and a JVM), via
``pyarrow.fs.HadoopFileSystem``, as MLflow's own HDFS repository connects:

- ``hdfs://namenode:8020/path`` (or ``hdfs:///path`` for the configuration's default
  file system), ``viewfs://cluster/path``;
- ``MLFLOW_KERBEROS_TICKET_CACHE`` (a Kerberos ticket cache file) and
  ``MLFLOW_KERBEROS_USER``; ``MLFLOW_PYARROW_EXTRA_CONF`` (a JSON object of Hadoop
  settings).

The native client is loaded on first use; a machine without it gets an error saying
what to install, and pointing at ``webhdfs://``, which needs nothing but HTTP.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Iterator
from typing import Any, BinaryIO

from tracklog import errors
from tracklog.artifacts.base import CHUNK_SIZE, ReadableStream
from tracklog_artifacts_hdfs.filesystem import FileSystem, HDFSError, Kind, Status

log = logging.getLogger(__name__)

TICKET_CACHE = "MLFLOW_KERBEROS_TICKET_CACHE"
KERBEROS_USER = "MLFLOW_KERBEROS_USER"
EXTRA_CONF = "MLFLOW_PYARROW_EXTRA_CONF"

INSTALL_HINT = (
    "install Hadoop with a Java runtime and point HADOOP_HOME (or ARROW_LIBHDFS_DIR) at "
    "it, with JAVA_HOME and CLASSPATH=$(hadoop classpath --glob) set, and pip install "
    "'tracklog-artifacts-hdfs[libhdfs]'; or use webhdfs://namenode:9870/path, which "
    "needs only HTTP access to the NameNode"
)


def _one_line(text: object) -> str:
    return " ".join(str(text).split())[:300]


def read_settings() -> dict[str, Any]:
    """The Kerberos and extra-configuration settings; malformed values are refused
    naming the variable."""
    extra = os.environ.get(EXTRA_CONF)
    conf = None
    if extra:
        try:
            conf = json.loads(extra)
        except ValueError:
            conf = None
        if not isinstance(conf, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in conf.items()
        ):
            raise errors.invalid(f"{EXTRA_CONF} must be a JSON object of strings")
    return {"user": os.environ.get(KERBEROS_USER) or None,
            "kerb_ticket": os.environ.get(TICKET_CACHE) or None,
            "extra_conf": conf}


class LibHDFS(FileSystem):
    def __init__(self, scheme: str, host: str | None, port: int | None) -> None:
        self.host = f"{scheme}://{host}" if host else "default"
        self.port = port or 0
        self.settings = read_settings()
        self._fs: Any = None
        self._lock = threading.Lock()

    def _native(self) -> Any:
        with self._lock:
            if self._fs is None:
                try:
                    from pyarrow import fs as pafs
                except ImportError:
                    raise HDFSError(Kind.UNAVAILABLE,
                                    f"hdfs:// needs pyarrow and libhdfs: {INSTALL_HINT}") from None
                try:
                    self._fs = pafs.HadoopFileSystem(self.host, self.port, **self.settings)
                except OSError as exc:
                    # pyarrow says only in words which part was missing; its words carry
                    # local library paths, which stay in the log.
                    log.info("HadoopFileSystem(%s, %s) failed: %s", self.host, self.port, exc)
                    text = str(exc)
                    if "libjvm" in text:
                        missing = "no Java runtime (libjvm) was found"
                    elif "libhdfs" in text:
                        missing = "Hadoop's libhdfs was not found"
                    else:
                        raise HDFSError(Kind.UNAVAILABLE,
                                        f"cannot connect to {self.host}") from None
                    raise HDFSError(Kind.UNAVAILABLE, f"{missing}: {INSTALL_HINT}") from None
            return self._fs

    def _call(self, func: Any, *args: Any) -> Any:
        try:
            return func(*args)
        except FileNotFoundError as exc:
            raise HDFSError(Kind.NOT_FOUND, _one_line(exc)) from None
        except PermissionError as exc:
            raise HDFSError(Kind.PERMISSION, _one_line(exc)) from None
        except NotADirectoryError as exc:
            raise HDFSError(Kind.PARENT_IS_FILE, _one_line(exc)) from None
        except OSError as exc:
            raise HDFSError(Kind.OTHER, _one_line(exc)) from None

    def status(self, path: str) -> Status | None:
        from pyarrow import fs as pafs

        native = self._native()
        info = self._call(native.get_file_info, path)
        if info.type == pafs.FileType.NotFound:
            return None
        return _status(info)

    def list(self, path: str) -> Iterator[Status]:
        from pyarrow import fs as pafs

        native = self._native()
        infos = self._call(native.get_file_info, pafs.FileSelector(path, recursive=False))
        for info in infos:
            yield _status(info)

    def open(self, path: str) -> BinaryIO:
        return self._call(self._native().open_input_stream, path)

    def create(self, path: str, stream: ReadableStream) -> None:
        out = self._call(self._native().open_output_stream, path)
        try:
            while chunk := stream.read(CHUNK_SIZE):
                self._call(out.write, chunk)
        finally:
            self._call(out.close)

    def mkdirs(self, path: str) -> None:
        self._call(self._native().create_dir, path, True)

    def rename(self, src: str, dst: str) -> bool:
        if self.status(dst) is not None:
            return False
        self._call(self._native().move, src, dst)
        return True

    def delete(self, path: str, recursive: bool) -> bool:
        found = self.status(path)
        if found is None:
            return False
        native = self._native()
        if found.is_dir:
            self._call(native.delete_dir if recursive else native.delete_dir_contents, path)
        else:
            self._call(native.delete_file, path)
        return True


def _status(info: Any) -> Status:
    from pyarrow import fs as pafs

    mtime = info.mtime.timestamp() if info.mtime is not None else 0.0
    is_dir = info.type == pafs.FileType.Directory
    return Status(info.base_name, is_dir, 0 if is_dir else int(info.size or 0), mtime)
