"""Benchmark of the server's start-up work on a large local artifact destination.

    python bench/artifact_startup_bench.py                   # 200,000 files
    python bench/artifact_startup_bench.py --files 1000000 --per-dir 500

It builds a destination of ``--files`` artifact files (``<exp>/<run>/artifacts/...``,
``--per-dir`` per directory) with one stale upload temporary per 1,000 files, then
measures:

- the sweep itself (``LocalArtifactRepository.remove_stale_temp_files``; the tree was
  just written, so its metadata is in the page cache);
- ``verify()`` and ``verify(probe_write=True)``;
- ``tracklog server`` start to first healthy ``/health``, on an empty destination and
  on the large one (the sweep runs in a background thread, so the two should match), and
  how long after start the last stale temporary is gone.

It prints figures, not verdicts; compare runs on the same machine.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from tracklog.artifacts.local import TEMP_PREFIX, LocalArtifactRepository

TRACKLOG = str(Path(sys.executable).with_name("tracklog"))
STALE = time.time() - 7 * 3600


def build(root: Path, files: int, per_dir: int) -> list[Path]:
    temps = []
    for i in range(files):
        directory = root / str(i // (per_dir * 20)) / f"run{i // per_dir}" / "artifacts"
        if i % per_dir == 0:
            directory.mkdir(parents=True, exist_ok=True)
        (directory / f"f{i}.bin").write_bytes(b"x")
        if i % 1000 == 0:
            temp = directory / f"{TEMP_PREFIX}{i}"
            temp.write_bytes(b"partial")
            os.utime(temp, (STALE, STALE))
            temps.append(temp)
    return temps


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_to_healthy(workdir: Path, destination: Path, temps: list[Path]) -> tuple[float, float]:
    """Seconds from spawn to a healthy server, and to the last stale temporary gone."""
    port = free_port()
    args = [TRACKLOG, "server", "--backend-store-uri", f"sqlite:///{workdir / 'bench.db'}",
            "--artifacts-destination", str(destination), "--port", str(port)]
    started = time.perf_counter()
    process = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, cwd=workdir)
    try:
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if process.poll() is not None:
                raise RuntimeError("server exited")
            time.sleep(0.01)
        healthy = time.perf_counter() - started
        while any(t.exists() for t in temps):
            time.sleep(0.01)
        swept = time.perf_counter() - started
    finally:
        process.terminate()
        process.wait(10)
    return healthy, swept


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--files", type=int, default=200_000)
    parser.add_argument("--per-dir", type=int, default=200)
    parser.add_argument("--starts", type=int, default=3)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="bench-artifacts-"))
    try:
        big = workdir / "big"
        began = time.perf_counter()
        temps = build(big, args.files, args.per_dir)
        print(f"built {args.files:,} files, {len(temps)} stale temporaries in "
              f"{time.perf_counter() - began:.1f} s")
        repo = LocalArtifactRepository(str(big))
        began = time.perf_counter()
        removed = repo.remove_stale_temp_files(6 * 3600)
        print(f"sweep: {removed} removed in {time.perf_counter() - began:.2f} s")
        for probe in (False, True):
            began = time.perf_counter()
            repo.verify(probe_write=probe)
            print(f"verify(probe_write={probe}): {(time.perf_counter() - began) * 1000:.2f} ms")
        empty = workdir / "empty"
        empty.mkdir()
        for label, destination in (("empty destination", empty), ("large destination", big)):
            healthy, swept = [], []
            for _ in range(args.starts):
                pending = _restore(temps) if destination is big else []
                h, s = start_to_healthy(workdir, destination, pending)
                healthy.append(h)
                swept.append(s)
            line = f"{label}: start to healthy {statistics.median(healthy):.2f} s"
            if destination is big:
                line += f", last stale temporary gone {statistics.median(swept):.2f} s"
            print(line)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _restore(temps: list[Path]) -> list[Path]:
    for temp in temps:
        temp.write_bytes(b"partial")
        os.utime(temp, (STALE, STALE))
    return temps


if __name__ == "__main__":
    main()
