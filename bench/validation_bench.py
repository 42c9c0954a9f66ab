"""Time the route layer's share of a ``log-batch``: decoding the JSON body and validating
its 1,000 metrics (plus 100 params), the work every batch pays before the store.

Usage (from the repository root)::

    .venv/bin/python bench/validation_bench.py

Prints the best of several rounds (microseconds per call) for
``tracklog.server.codec.request_from_json`` and ``tracklog.validation.validate_metrics``.
The figures depend on the machine; nothing here asserts a timing.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import orjson

from tracklog import validation
from tracklog.server.codec import request_from_json

METRICS = [
    {"key": f"loss_{i % 10}", "value": i * 0.5, "timestamp": 1_700_000_000_000 + i, "step": i}
    for i in range(1000)
]
BODY = orjson.dumps({
    "run_id": "0123456789abcdef0123456789abcdef",
    "metrics": METRICS,
    "params": [{"key": f"p{i}", "value": f"value {i}"} for i in range(100)],
    "tags": [],
})


def best(fn: Callable[[], object], calls: int = 300, rounds: int = 7) -> float:
    """Best mean time per call over ``rounds`` rounds of ``calls`` calls, in µs."""
    times = []
    for _ in range(rounds):
        start = time.process_time()
        for _ in range(calls):
            fn()
        times.append((time.process_time() - start) / calls)
    return min(times) * 1e6


def main() -> None:
    figures = {
        "request_from_json (log-batch, 1,000 metrics + 100 params)":
            best(lambda: request_from_json(BODY, None, "application/json")),
        "validate_metrics (1,000 points)": best(lambda: validation.validate_metrics(METRICS)),
    }
    for name, micros in figures.items():
        print(f"{name:<60} {micros:9.1f} µs")


if __name__ == "__main__":
    main()
