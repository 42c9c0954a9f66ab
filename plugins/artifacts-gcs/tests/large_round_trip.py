"""Run alone in a fresh process: upload a local file to a gs:// repository, stream it
back, and print the digest and the process's peak RSS as JSON."""

import hashlib
import json
import resource
import sys

from tracklog.artifacts import resolve_repository


def main(uri: str, local: str) -> None:
    repo = resolve_repository(uri)
    repo.log_artifact(local, "large")
    digest = hashlib.sha256()
    size = 0
    for chunk in repo.iter_artifact("large/" + local.rsplit("/", 1)[-1]):
        digest.update(chunk)
        size += len(chunk)
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"sha256": digest.hexdigest(), "size": size, "peak_rss": peak_kib * 1024}))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
