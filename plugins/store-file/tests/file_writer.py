"""A writer process for the safety tests: logs metrics through the file store forever
(or ``count`` batches) and prints one line per acknowledged batch.

    python file_writer.py ROOT RUN_ID KEY START COUNT
"""

from __future__ import annotations

import sys

from tracklog.entities import Metric, Param, RunTag
from tracklog_store_file.store import open_store

BATCH = 10


def main() -> None:
    root, run_id, key, start, how_many = sys.argv[1:6]
    store = open_store(root)
    first, count = int(start), int(how_many)
    batch = 0
    while count < 0 or batch < count:
        base = first + batch * BATCH
        points = [Metric(key, float(i), i, i) for i in range(base, base + BATCH)]
        store.log_batch(
            run_id,
            metrics=points,
            params=[Param(f"p{batch}", str(batch))],
            tags=[RunTag("progress", str(batch))],
        )
        if batch % 25 == 0:
            extra = store.create_run("0", "writer", batch, run_name=f"extra-{key}-{batch}")
            store.log_batch(extra.info.run_id, params=[Param("batch", str(batch))])
        print(batch, flush=True)
        batch += 1


if __name__ == "__main__":
    main()
