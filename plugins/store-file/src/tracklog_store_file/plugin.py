"""Plugin registration for tracklog-store-file (no heavy imports here)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from tracklog.plugins import hookimpl

if TYPE_CHECKING:
    from tracklog.stores import TrackingStore

    Factory = Callable[[str, str | None], TrackingStore]


def _factory(store_uri: str, default_artifact_root: str | None) -> TrackingStore:
    from tracklog_store_file.store import open_store

    return open_store(store_uri, default_artifact_root)


@hookimpl
def register_tracking_stores(register: Callable[[str, Factory], None]) -> None:
    """Serve ``file:`` URIs and plain paths with :class:`~tracklog_store_file.store.FileStore`."""
    register("file", _factory)
