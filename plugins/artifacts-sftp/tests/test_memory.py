"""A 100 MB artifact goes up and comes back through the repository with the process's
peak memory far below the file's size."""

from __future__ import annotations

from pathlib import Path

import pytest

from tracklog.testing.memory import large_round_trip

SIZE = 100 * 1024 * 1024


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux /proc")
def test_100mb_round_trip_in_bounded_memory(ssh_home, remote_dir, tmp_path):
    report = large_round_trip(f"sftp://sshd-test{remote_dir}/mem", tmp_path, SIZE)
    assert (remote_dir / "mem" / "big" / "big.bin").stat().st_size == SIZE
    print(report)
    assert report["total"] < 40 * 1024 * 1024, report
