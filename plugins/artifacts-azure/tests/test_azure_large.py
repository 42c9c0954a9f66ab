"""A 200 MiB round trip with bounded memory: the process's peak RSS grows far less than
the file size (measured in a child process, whose peak is its own)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SIZE_MB = 200


def test_large_round_trip_in_bounded_memory(azure_env, prefix, tmp_path):
    child = Path(__file__).with_name("large_round_trip.py")
    (tmp_path / "back").mkdir()
    result = subprocess.run(
        [sys.executable, str(child), azure_env.uri(prefix), str(tmp_path), str(SIZE_MB)],
        stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["size"] == SIZE_MB * 1024 * 1024
    assert report["downloaded"] == report["written"]
    assert report["streamed"] == report["written"]
    grown_mib = (report["peak_kib"] - report["baseline_kib"]) / 1024
    print(f"peak RSS {report['peak_kib'] / 1024:.0f} MiB, grown {grown_mib:.0f} MiB "
          f"for a {SIZE_MB} MiB file")
    # What the transfer adds to the process (upload blocks in flight, download ranges
    # read ahead) stays under a third of the file; the interpreter's own baseline varies.
    assert grown_mib < 64
