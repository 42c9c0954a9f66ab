"""A 100 MB artifact goes up and comes back through the repository with the process's
peak memory far below the file's size (the transfer runs in a child process, so its
peak RSS belongs to the transfer alone)."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SIZE = 100 * 1024 * 1024

CHILD = r"""
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


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux /proc")
def test_100mb_round_trip_in_bounded_memory(ssh_home, remote_dir, tmp_path):
    src = tmp_path / "big.bin"
    digest = hashlib.sha256()
    with open(src, "wb") as f:
        block = os.urandom(1024 * 1024)
        for i in range(SIZE // len(block)):
            chunk = i.to_bytes(8, "big") + block[8:]
            digest.update(chunk)
            f.write(chunk)
    result = subprocess.run([sys.executable, "-c", CHILD, str(src),
                             f"sftp://sshd-test{remote_dir}/mem"],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout)
    assert report["digest"] == digest.hexdigest()
    assert (remote_dir / "mem" / "big" / "big.bin").stat().st_size == SIZE
    print({k: v for k, v in report.items() if k != "digest"})
    assert report["total"] < 40 * 1024 * 1024, report
