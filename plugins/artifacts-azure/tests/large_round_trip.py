"""Child process of test_azure_large: uploads and downloads one large file through the
repository and prints the sizes, digests and its own peak RSS as JSON."""

from __future__ import annotations

import hashlib
import json
import os
import random
import resource
import sys

from tracklog.plugins import load_plugins, resolve_repository


def main(uri: str, workdir: str, size_mb: int) -> None:
    load_plugins()
    source = os.path.join(workdir, "big.bin")
    written = hashlib.sha256()
    rng = random.Random(3)
    with open(source, "wb") as f:
        for _ in range(size_mb):
            block = rng.randbytes(1024 * 1024)
            written.update(block)
            f.write(block)
    baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    repo = resolve_repository(uri)
    repo.log_artifact(source, "large")
    os.unlink(source)
    info = repo.file_info("large/big.bin")
    target = repo.download_artifacts("large/big.bin", os.path.join(workdir, "back"))
    read = hashlib.sha256()
    with open(target, "rb") as f:
        while chunk := f.read(1024 * 1024):
            read.update(chunk)
    streamed = hashlib.sha256()
    for chunk in repo.iter_artifact("large/big.bin"):
        streamed.update(chunk)
    print(json.dumps({
        "size": info.file_size if info is not None else None,
        "written": written.hexdigest(),
        "downloaded": read.hexdigest(),
        "streamed": streamed.hexdigest(),
        "baseline_kib": baseline,
        "peak_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
    }))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
