"""Run tags: mutable, deletable."""

from __future__ import annotations

import pytest

from tracklog.entities import RunTag
from tracklog.errors import ErrorCode, TracklogError
from tracklog.stores import TrackingStore

from ._base import KitBase, new_run


class TagTests(KitBase):
    """Run tags overwrite, delete, and a missing one is RESOURCE_DOES_NOT_EXIST."""

    def test_set_and_overwrite_tag(self, store: TrackingStore) -> None:
        """set_tag stores a value and a second set_tag replaces it."""
        run_id = new_run(store).info.run_id
        store.set_tag(run_id, RunTag("team", "a"))
        store.set_tag(run_id, RunTag("team", "b"))
        store.set_tag(run_id, RunTag("empty", ""))
        tags = store.get_run(run_id).data.tags
        assert tags["team"] == "b" and tags["empty"] == ""

    def test_long_tag_value(self, store: TrackingStore) -> None:
        """A value of the protocol's maximum length (8000 characters) round trips."""
        run_id = new_run(store).info.run_id
        value = ("abcdefgh" * 1000)[:8000]
        store.set_tag(run_id, RunTag("long", value))
        assert store.get_run(run_id).data.tags["long"] == value

    def test_delete_tag(self, store: TrackingStore) -> None:
        """delete_tag removes only that tag; deleting it again is RESOURCE_DOES_NOT_EXIST."""
        run_id = new_run(store).info.run_id
        store.set_tag(run_id, RunTag("a", "1"))
        store.set_tag(run_id, RunTag("b", "2"))
        store.delete_tag(run_id, "a")
        tags = store.get_run(run_id).data.tags
        assert "a" not in tags and tags["b"] == "2"
        with pytest.raises(TracklogError) as excinfo:
            store.delete_tag(run_id, "a")
        assert excinfo.value.error_code == ErrorCode.RESOURCE_DOES_NOT_EXIST
        with pytest.raises(TracklogError) as excinfo:
            store.delete_tag(run_id, "never-set")
        assert excinfo.value.error_code == ErrorCode.RESOURCE_DOES_NOT_EXIST
        assert store.get_run(run_id).data.tags["b"] == "2"

    def test_tag_keys_with_punctuation(self, store: TrackingStore) -> None:
        """Keys may hold dots, slashes, dashes, spaces and colons."""
        run_id = new_run(store).info.run_id
        key = "mlflow.source/git.commit-x y:z"
        store.set_tag(run_id, RunTag(key, "v"))
        assert store.get_run(run_id).data.tags[key] == "v"
        store.delete_tag(run_id, key)
        assert key not in store.get_run(run_id).data.tags
