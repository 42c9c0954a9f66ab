"""The tracking-store conformance kit against the file store."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tracklog.testing.tracking import TrackingStoreConformance
from tracklog_store_file.store import FileStore, open_store


class TestFileStoreConformance(TrackingStoreConformance):
    @pytest.fixture
    def reopen(self, tmp_path: Path) -> Callable[[], FileStore]:
        return lambda: open_store(f"file://{tmp_path}/mlruns")

    @pytest.fixture
    def store(self, reopen: Callable[[], FileStore]) -> Iterator[FileStore]:
        s = reopen()
        yield s
        s.close()
