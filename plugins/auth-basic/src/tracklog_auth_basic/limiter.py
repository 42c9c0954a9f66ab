"""Failed sign-ins counted per user name and per client address, in memory."""

from __future__ import annotations

import math
import threading
import time
from collections import deque

from tracklog import errors


class FailureLimiter:
    def __init__(self, max_failures: int, window: float) -> None:
        self.max_failures = max_failures
        self.window = window
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, key: str, now: float) -> deque[float] | None:
        times = self._failures.get(key)
        if times is None:
            return None
        while times and times[0] <= now - self.window:
            times.popleft()
        if not times:
            del self._failures[key]
            return None
        return times

    def check(self, *keys: str) -> None:
        """Refuse with 429 while any of ``keys`` has too many recent failures."""
        now = time.monotonic()
        with self._lock:
            for key in keys:
                times = self._recent(key, now)
                if times is not None and len(times) >= self.max_failures:
                    err = errors.TracklogError(
                        "Too many failed sign-ins; try again later.",
                        errors.ErrorCode.REQUEST_LIMIT_EXCEEDED)
                    err.retry_after = max(1, math.ceil(times[0] + self.window - now))
                    raise err

    def failed(self, *keys: str) -> None:
        now = time.monotonic()
        with self._lock:
            if len(self._failures) > 100_000:  # a flood of names: keep memory bounded
                for key in list(self._failures):
                    self._recent(key, now)
            for key in keys:
                self._failures.setdefault(key, deque(maxlen=self.max_failures)).append(now)

    def succeeded(self, key: str) -> None:
        with self._lock:
            self._failures.pop(key, None)
