"""A 200 MB artifact goes up and comes back through the repository with the process's
peak memory far below the file's size. The transfer runs in a child process so its peak
RSS (``ru_maxrss``) belongs to the transfer alone."""

from __future__ import annotations

import json
import subprocess
import sys

from tracklog.testing.memory import distinct_file
from tracklog_artifacts_s3.upload import PART_SIZE, PARTS_IN_FLIGHT

SIZE = 200 * 1024 * 1024

CHILD = r"""
import hashlib, io, json, os, sys
from tracklog.plugins import resolve_repository

path, uri = sys.argv[1], sys.argv[2]
repo = resolve_repository(uri)
repo.file_info("")  # the client is made and used before the baseline is taken


class Unseekable(io.RawIOBase):
    # A stream like the proxy's request body: read-only, no seek, no length.
    def __init__(self, f):
        self.f = f
    def readable(self):
        return True
    def readinto(self, b):
        return self.f.readinto(b)


def peak():
    with open("/proc/self/status") as status:
        return int(next(x for x in status if x.startswith("VmHWM:")).split()[1]) * 1024

base = peak()
repo.log_artifact(path, "seekable")
after_file_upload = peak()
with open(path, "rb") as f:
    repo.write_artifact("streamed/big.bin", Unseekable(f))
after_stream_upload = peak()
digests = {}
for name in ("seekable/big.bin", "streamed/big.bin"):
    h = hashlib.sha256()
    for chunk in repo.iter_artifact(name):
        h.update(chunk)
    digests[name] = h.hexdigest()
print(json.dumps({
    "base": base,
    "file_upload": after_file_upload - base,
    "stream_upload": after_stream_upload - base,
    "total": peak() - base,
    "sizes": {f.path: f.file_size for f in repo.list_artifacts("seekable")},
    "digests": digests,
}))
"""


def test_200mb_round_trip_in_bounded_memory(bucket, tmp_path):

    src = tmp_path / "big.bin"
    digest = distinct_file(src, SIZE)
    result = subprocess.run(
        [sys.executable, "-c", CHILD, str(src), f"s3://{bucket}/large"],
        capture_output=True, text=True, check=False, timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout)
    print({k: v for k, v in report.items() if k != "digests"})
    assert report["sizes"] == {"seekable/big.bin": SIZE}
    assert set(report["digests"].values()) == {digest}
    # Bounded by the parts in flight (plus slack for the allocator), whatever the size.
    assert report["total"] < (PARTS_IN_FLIGHT + 4) * PART_SIZE < SIZE // 3, report
