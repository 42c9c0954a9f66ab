"""Run alone in a fresh process: upload a local file to a gs:// repository, stream it
back, and print the digest and the process's peak RSS as JSON."""

import hashlib
import json
import sys

from tracklog.plugins import resolve_repository


def main(uri: str, local: str) -> None:
    repo = resolve_repository(uri)
    repo.log_artifact(local, "large")
    digest = hashlib.sha256()
    size = 0
    for chunk in repo.iter_artifact("large/" + local.rsplit("/", 1)[-1]):
        digest.update(chunk)
        size += len(chunk)
    # VmHWM belongs to this process's own memory map; getrusage's ru_maxrss would also
    # count the parent's resident size at fork time.
    with open("/proc/self/status") as status:
        line = next(x for x in status if x.startswith("VmHWM:"))
    peak = int(line.split()[1]) * 1024
    print(json.dumps({"sha256": digest.hexdigest(), "size": size, "peak_rss": peak}))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
