"""The tracking-store conformance kit against the file store."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tracklog.testing.tracking import TrackingStoreConformance
from tracklog_store_file.store import FileStore, open_store


class TestFileStoreConformance(TrackingStoreConformance):
    @pytest.fixture
    def store(self, tmp_path: Path) -> Iterator[FileStore]:
        s = open_store(f"file://{tmp_path}/mlruns")
        yield s
        s.close()
