"""Progress of long commands (``tracklog migrate``, ``tracklog gc``): a tqdm bar on a
terminal; elsewhere (logs, CI) a quiet line now and then. The command prints its summary
itself once the work is done."""

from __future__ import annotations

import sys
import time
from typing import IO, Any


class Progress:
    """Counts units of work; ``step(status)`` after each one."""

    def __init__(self, desc: str, unit: str, stream: IO[str] | None = None,
                 every: float = 10.0) -> None:
        self.stream = stream or sys.stderr
        self.desc, self.unit, self.every = desc, unit, every
        self.count = 0
        self.started = self.last = time.monotonic()
        self.bar: Any = None
        if self.stream.isatty():
            from tqdm import tqdm

            self.bar = tqdm(desc=desc, unit=f" {unit}", file=self.stream, leave=False,
                            dynamic_ncols=True, mininterval=0.2)

    def step(self, status: str = "", n: int = 1) -> None:
        self.count += n
        if self.bar is not None:
            self.bar.update(n)
            if status:
                self.bar.set_postfix_str(status, refresh=False)
            return
        now = time.monotonic()
        if now - self.last >= self.every:
            self.last = now
            print(f"  {self.desc}: {status or f'{self.count} {self.unit}'} "
                  f"({now - self.started:.0f} s)", file=self.stream, flush=True)

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
