"""A large artifact up and back through a repository, with the peak memory it took.

For plugin authors: streaming is part of the contract, and this is how a repository
proves it. The transfer runs in a child process, so the peak RSS it reports belongs to
the transfer alone::

    report = large_round_trip("myfs://host/bucket/mem", tmp_path)
    assert report["total"] < 40 * 1024 * 1024
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

__all__ = ["distinct_file", "large_round_trip"]

_CHILD = r"""
import hashlib, json, sys
from tracklog.plugins import resolve_repository

path, uri = sys.argv[1], sys.argv[2]
repo = resolve_repository(uri)
repo.file_info("")  # connected before the baseline


def peak():
    with open("/proc/self/status") as status:
        return int(next(x for x in status if x.startswith("VmHWM:")).split()[1]) * 1024

base = peak()
repo.log_artifact(path, "big")
up = peak() - base
digest = hashlib.sha256()
for chunk in repo.iter_artifact("big/big.bin"):
    digest.update(chunk)
print(json.dumps({"up": up, "total": peak() - base, "digest": digest.hexdigest()}))
"""


def distinct_file(path: Path, size: int) -> str:
    """Write ``size`` bytes of random data to ``path``, no two MiB alike (so a transfer
    that repeats or drops a block is caught), and return its SHA-256 in hex."""
    digest = hashlib.sha256()
    block = os.urandom(1024 * 1024)
    with open(path, "wb") as f:
        for i in range(size // len(block)):
            chunk = i.to_bytes(8, "big") + block[8:]
            digest.update(chunk)
            f.write(chunk)
    return digest.hexdigest()


def large_round_trip(uri: str, tmp: Path, size: int = 100 * 1024 * 1024,
                     env: dict[str, str] | None = None) -> dict[str, int]:
    """Upload a ``size``-byte file as ``big/big.bin`` under ``uri`` and read it back in a
    child process; checks the bytes came back unchanged and returns the peak RSS growth
    in bytes: ``up`` after the upload, ``total`` after the download as well. Needs
    Linux's /proc."""
    src = tmp / "big.bin"
    digest = distinct_file(src, size)
    result = subprocess.run([sys.executable, "-c", _CHILD, str(src), uri],
                            capture_output=True, text=True, timeout=600,
                            env=None if env is None else {**os.environ, **env})
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout)
    assert report.pop("digest") == digest, "the file came back changed"
    return report
