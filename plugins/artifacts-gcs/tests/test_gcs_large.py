"""A 256 MiB artifact goes up and comes back through a process whose peak memory stays
far below the file's size: uploads and downloads stream in bounded chunks."""

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

SIZE = 256 * 1024 * 1024
SCRIPT = Path(__file__).with_name("large_round_trip.py")


def test_large_round_trip_in_bounded_memory(repo_uri, tmp_path):
    local = tmp_path / "large.bin"
    digest = hashlib.sha256()
    block = os.urandom(1024 * 1024)
    with open(local, "wb") as f:
        for i in range(SIZE // len(block)):
            piece = i.to_bytes(8, "big") + block[8:]  # no two blocks alike
            digest.update(piece)
            f.write(piece)
    done = subprocess.run([sys.executable, str(SCRIPT), repo_uri, str(local)],
                          capture_output=True, text=True, stdin=subprocess.DEVNULL,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout)
    assert result["size"] == SIZE
    assert result["sha256"] == digest.hexdigest()
    # The interpreter with google-cloud-storage loaded takes ~60 MiB; the default chunks
    # (16 MiB up, 8 MiB down) add a few times their size at most.
    assert result["peak_rss"] < SIZE // 2, result
    print(f"peak RSS {result['peak_rss'] / 2**20:.0f} MiB for a {SIZE / 2**20:.0f} MiB file")
