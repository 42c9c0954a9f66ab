"""File primitives of the store: atomic writes, locked appends, key paths, cached YAML reads.

Temporary files live in the entity's own folder (run, experiment or model directory), never
inside ``metrics/``, ``params/`` or ``tags/``: a reader walking those folders (tracklog or
MLflow) never mistakes a temporary file for a key, even one left behind by a crash.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import logging
import os
import secrets
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from typing import Any

from tracklog import errors
from tracklog_store_file import yamlio

log = logging.getLogger("tracklog_store_file")

LOCK_FILE = ".lock"


def fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: str, data: str, tmp_dir: str | None = None) -> None:
    """Write ``data`` to ``path`` so readers see the old content or the new, never a part.

    The temporary file is created in ``tmp_dir`` (same file system; default: beside
    ``path``), fsynced, then renamed over ``path``. The folder itself is not fsynced: after
    a power loss the rename may be lost, never half-applied.
    """
    folder = tmp_dir or os.path.dirname(path)
    tmp = os.path.join(folder, f".tmp-{secrets.token_hex(8)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def append_lines(path: str, data: str) -> tuple[int, int, int]:
    """Append complete lines to ``path`` (caller holds the owning entity's lock); returns
    ``(inode, offset where the lines start, offset after them)``.

    A tail without a final newline can only come from a writer that died mid-write; it is
    cut off first so the new lines never glue onto a torn one.
    """
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        st = os.fstat(fd)
        size = st.st_size
        if size and os.pread(fd, 1, size - 1) != b"\n":
            log.warning("Cutting off a torn last line of %s (an interrupted write)", path)
            size = _last_newline_before(fd, size)
            os.ftruncate(fd, size)
        payload = data.encode("utf-8")
        written = 0
        while written < len(payload):
            written += os.write(fd, payload[written:])
        return st.st_ino, size, size + written
    finally:
        os.close(fd)


def _last_newline_before(fd: int, end: int) -> int:
    while end > 0:
        start = max(0, end - 65536)
        chunk = os.pread(fd, end - start, start)
        cut = chunk.rfind(b"\n")
        if cut >= 0:
            return start + cut + 1
        end = start
    return 0


def read_text(path: str) -> str:
    with open(path, encoding="utf-8", newline="") as fh:
        return fh.read()


@functools.lru_cache(maxsize=65536)
def _check_key(key: str, field: str) -> None:
    if not isinstance(key, str) or not key:
        raise errors.invalid(f"Invalid {field} {key!r}: must be a non-empty string")
    if (
        key.startswith("/")
        or "\\" in key
        or "\x00" in key
        or any(p in ("", ".", "..") for p in key.split("/"))
    ):
        raise errors.invalid(
            f"Invalid {field} {key!r}: names may not be absolute or contain empty, '.' or "
            "'..' path segments"
        )


def key_path(folder: str, key: str, field: str) -> str:
    """``folder/<key>`` with ``/`` in the key as sub-folders; unsafe keys are refused."""
    if not isinstance(key, str):
        raise errors.invalid(f"Invalid {field} {key!r}: must be a string")
    _check_key(key, field)
    return f"{folder}/{key}"


def ensure_parent(path: str, stop: str, field: str, key: str) -> None:
    """Create the sub-folders of a nested key; a clash with an existing key is refused."""
    parent = os.path.dirname(path)
    if parent == stop:
        return
    try:
        os.makedirs(parent, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise errors.invalid(
            f"Invalid {field} {key!r}: a prefix of it is already used as a {field}"
        ) from None


def check_slot(base: str, key: str, field: str) -> None:
    """Refuse a key whose path is a folder (a prefix of other keys) or lies under a file
    (another key is its prefix), before anything of a batch is written."""
    path = key_path(base, key, field)
    if os.path.isdir(path):
        raise errors.invalid(f"Invalid {field} {key!r}: it is a prefix of another {field}")
    parts = key.split("/")
    for end in range(1, len(parts)):
        if os.path.isfile(f"{base}/{'/'.join(parts[:end])}"):
            raise errors.invalid(
                f"Invalid {field} {key!r}: a prefix of it is already used as a {field}"
            )


def list_keys(folder: str) -> list[str]:
    """Every key stored under ``folder`` (files, nested folders joined with ``/``)."""
    out: list[str] = []
    pending = [("", folder)]
    while pending:
        prefix, path = pending.pop()
        try:
            entries = list(os.scandir(path))
        except (FileNotFoundError, NotADirectoryError):
            continue
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                pending.append((f"{prefix}{entry.name}/", entry.path))
            else:
                out.append(prefix + entry.name)
    return out


def read_key_files(folder: str, cache: FileCache) -> dict[str, str]:
    """``{key: file content}`` for params and tags."""
    values: dict[str, str] = {}
    for key in list_keys(folder):
        try:
            values[key] = cache.load(f"{folder}/{key}")
        except FileNotFoundError:
            continue  # deleted meanwhile
        except (OSError, ValueError) as exc:
            log.warning("Skipping unreadable file %s/%s: %s", folder, key, exc)
    return values


class EntityLocks:
    """One lock per entity directory: a threading lock for this process plus ``flock`` on
    ``<dir>/.lock`` for other processes."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._locks: dict[str, threading.Lock] = {}

    @contextlib.contextmanager
    def hold(self, directory: str) -> Iterator[None]:
        with self._guard:
            lock = self._locks.setdefault(directory, threading.Lock())
        with lock:
            fd = os.open(os.path.join(directory, LOCK_FILE), os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                yield
            finally:
                os.close(fd)  # closing releases the flock


def parse_yaml(text: str) -> Any:
    try:
        return yamlio.loads(text)
    except yamlio.YAMLError as exc:
        raise ValueError(f"malformed YAML: {exc}") from exc


class FileCache:
    """File contents (optionally parsed) keyed by path, validated by (inode, size, mtime):
    a hit costs one ``stat``. Every rewrite is a rename, so a changed file has a new inode."""

    def __init__(self, parse: Callable[[str], Any] | None = None, capacity: int = 200_000):
        self._parse = parse
        self._capacity = capacity
        self._items: OrderedDict[str, tuple[tuple[int, int, int], Any]] = OrderedDict()
        self._lock = threading.Lock()

    def load(self, path: str) -> Any:
        """The file's content; FileNotFoundError if absent, ValueError if unparsable."""
        st = os.stat(path)
        stamp = (st.st_ino, st.st_size, st.st_mtime_ns)
        with self._lock:
            hit = self._items.get(path)
            if hit is not None and hit[0] == stamp:
                self._items.move_to_end(path)
                return hit[1]
        try:
            data = read_text(path)
        except UnicodeDecodeError as exc:
            raise ValueError(f"not UTF-8: {exc}") from exc
        if self._parse is not None:
            data = self._parse(data)
        with self._lock:
            self._items[path] = (stamp, data)
            if len(self._items) > self._capacity:
                self._items.popitem(last=False)
        return data

    def forget(self, path: str) -> None:
        with self._lock:
            self._items.pop(path, None)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
