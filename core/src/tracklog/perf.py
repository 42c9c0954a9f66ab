"""Small helpers for the hot paths of stores and the server."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while building many small acyclic objects.

    Tens of thousands of fresh entities, tuples or dicts trigger repeated collections
    that scan every live object (about half the time of a 100,000-point history read).
    Only the outermost of nested or concurrent pauses turns collection back on.
    """
    was_enabled = gc.isenabled()
    if was_enabled:
        gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
