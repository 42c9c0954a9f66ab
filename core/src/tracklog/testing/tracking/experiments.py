"""Experiments: create, get, get by name, rename, delete/restore, tags, search."""

from __future__ import annotations

import pytest

from tracklog.entities import ExperimentTag, LifecycleStage, ViewType
from tracklog.errors import ErrorCode, TracklogError
from tracklog.stores import DEFAULT_EXPERIMENT_ID, DEFAULT_EXPERIMENT_NAME, TrackingStore

from ._base import (
    KitBase,
    collect_pages,
    experiment_filter,
    experiment_order,
    new_experiment,
    new_run,
    requires,
    unique,
)


class ExperimentTests(KitBase):
    """Experiment CRUD, naming rules, tags and ``search_experiments``."""

    def test_default_experiment_exists(self, store: TrackingStore) -> None:
        """A fresh store holds experiment "0" named Default, active, found by name."""
        exp = store.get_experiment(DEFAULT_EXPERIMENT_ID)
        assert exp.experiment_id == "0"
        assert exp.name == DEFAULT_EXPERIMENT_NAME == "Default"
        assert exp.lifecycle_stage == LifecycleStage.ACTIVE
        assert exp.artifact_location.rstrip("/").endswith("/0")
        by_name = store.get_experiment_by_name("Default")
        assert by_name is not None and by_name.experiment_id == "0"
        listed = store.search_experiments(view_type=ViewType.ALL)
        assert [e.experiment_id for e in listed] == ["0"]

    def test_create_and_get_experiment(self, store: TrackingStore) -> None:
        """An experiment reads back with its name, artifact location, tags and times."""
        name = unique("created")
        exp_id = store.create_experiment(
            name,
            artifact_location="file:///tmp/kit/custom-location",
            tags=[ExperimentTag("team", "vision"), ExperimentTag("k.e/y", "")],
        )
        assert isinstance(exp_id, str) and exp_id.isdigit()
        exp = store.get_experiment(exp_id)
        assert exp.experiment_id == exp_id
        assert exp.name == name
        assert exp.artifact_location == "file:///tmp/kit/custom-location"
        assert exp.lifecycle_stage == LifecycleStage.ACTIVE
        assert exp.tags == {"team": "vision", "k.e/y": ""}
        assert isinstance(exp.creation_time, int) and exp.creation_time > 0
        assert isinstance(exp.last_update_time, int)
        assert exp.last_update_time >= exp.creation_time

    def test_experiment_name_characters(self, store: TrackingStore) -> None:
        """Names keep spaces, slashes, colons, quotes and non-ASCII characters."""
        for name in ("with spaces/and:colons", "it's \"quoted\"", "Ünïcødé ✓ 实验"):
            exp_id = store.create_experiment(name)
            assert store.get_experiment(exp_id).name == name
            found = store.get_experiment_by_name(name)
            assert found is not None and found.experiment_id == exp_id

    def test_default_artifact_location(self, store: TrackingStore) -> None:
        """Without an artifact location (None or empty) it is ``<root>/<id>``, next to "0"."""
        root = store.get_experiment("0").artifact_location.rstrip("/")[: -len("/0")]
        for location in (None, ""):
            exp_id = new_experiment(store, artifact_location=location)
            exp = store.get_experiment(exp_id)
            assert exp.artifact_location.rstrip("/") == f"{root}/{exp_id}"

    def test_experiment_ids_are_distinct_decimal_strings(self, store: TrackingStore) -> None:
        """Each new experiment gets its own decimal-string id, never "0"."""
        ids = [new_experiment(store) for _ in range(4)]
        assert all(isinstance(i, str) and i.isdigit() for i in ids)
        assert len(set(ids)) == 4 and "0" not in ids

    @requires("integer_experiment_ids")
    def test_integer_experiment_ids(self, store: TrackingStore) -> None:
        """Ids increase with creation order; a non-integer id is INVALID_PARAMETER_VALUE."""
        ids = [int(new_experiment(store)) for _ in range(3)]
        assert ids == sorted(ids) and ids[0] > 0
        with pytest.raises(TracklogError) as excinfo:
            store.get_experiment("abc")
        assert excinfo.value.error_code == ErrorCode.INVALID_PARAMETER_VALUE

    def test_get_unknown_experiment(self, store: TrackingStore) -> None:
        """An unknown id is RESOURCE_DOES_NOT_EXIST; an unknown name gives None."""
        with pytest.raises(TracklogError) as excinfo:
            store.get_experiment("987654321")
        assert excinfo.value.error_code == ErrorCode.RESOURCE_DOES_NOT_EXIST
        assert store.get_experiment_by_name("no such experiment") is None

    def test_get_experiment_by_name_is_exact(self, store: TrackingStore) -> None:
        """Lookup by name is exact and case-sensitive."""
        exp_id = store.create_experiment("CaseName")
        found = store.get_experiment_by_name("CaseName")
        assert found is not None and found.experiment_id == exp_id
        assert store.get_experiment_by_name("casename") is None
        assert store.get_experiment_by_name("CaseNam") is None

    def test_duplicate_name_rejected(self, store: TrackingStore) -> None:
        """A name held by an active or a deleted experiment is RESOURCE_ALREADY_EXISTS."""
        name = unique("dup")
        exp_id = store.create_experiment(name)
        with pytest.raises(TracklogError) as excinfo:
            store.create_experiment(name)
        assert excinfo.value.error_code == ErrorCode.RESOURCE_ALREADY_EXISTS
        store.delete_experiment(exp_id)
        with pytest.raises(TracklogError) as excinfo:
            store.create_experiment(name)
        assert excinfo.value.error_code == ErrorCode.RESOURCE_ALREADY_EXISTS
        with pytest.raises(TracklogError) as excinfo:
            store.create_experiment("Default")
        assert excinfo.value.error_code == ErrorCode.RESOURCE_ALREADY_EXISTS
        names = [e.name for e in store.search_experiments(view_type=ViewType.ALL)]
        assert sorted(names) == sorted(["Default", name])

    def test_get_experiment_by_name_returns_deleted(self, store: TrackingStore) -> None:
        """Deleted experiments are still found by id and by name, marked deleted."""
        name = unique("gone")
        exp_id = store.create_experiment(name)
        store.delete_experiment(exp_id)
        by_name = store.get_experiment_by_name(name)
        assert by_name is not None and by_name.experiment_id == exp_id
        assert by_name.lifecycle_stage == LifecycleStage.DELETED
        assert store.get_experiment(exp_id).lifecycle_stage == LifecycleStage.DELETED

    def test_rename_experiment(self, store: TrackingStore) -> None:
        """Renaming changes the name everywhere and frees the old one."""
        old, new = unique("old"), unique("new")
        exp_id = store.create_experiment(old)
        before = store.get_experiment(exp_id)
        store.rename_experiment(exp_id, new)
        after = store.get_experiment(exp_id)
        assert after.name == new
        assert after.last_update_time is not None and before.last_update_time is not None
        assert after.last_update_time >= before.last_update_time
        assert store.get_experiment_by_name(old) is None
        found = store.get_experiment_by_name(new)
        assert found is not None and found.experiment_id == exp_id
        assert store.create_experiment(old) != exp_id

    def test_rename_to_taken_name_rejected(self, store: TrackingStore) -> None:
        """Renaming onto another experiment's name is RESOURCE_ALREADY_EXISTS, nothing changes."""
        a, b = unique("a"), unique("b")
        a_id = store.create_experiment(a)
        store.create_experiment(b)
        with pytest.raises(TracklogError) as excinfo:
            store.rename_experiment(a_id, b)
        assert excinfo.value.error_code == ErrorCode.RESOURCE_ALREADY_EXISTS
        assert store.get_experiment(a_id).name == a

    def test_rename_deleted_or_unknown_experiment_rejected(self, store: TrackingStore) -> None:
        """A deleted experiment cannot be renamed (INVALID_PARAMETER_VALUE); unknown is 404."""
        name = unique("deleted")
        exp_id = store.create_experiment(name)
        store.delete_experiment(exp_id)
        with pytest.raises(TracklogError) as excinfo:
            store.rename_experiment(exp_id, unique("renamed"))
        assert excinfo.value.error_code == ErrorCode.INVALID_PARAMETER_VALUE
        assert store.get_experiment(exp_id).name == name
        with pytest.raises(TracklogError) as excinfo:
            store.rename_experiment("987654321", unique("renamed"))
        assert excinfo.value.error_code == ErrorCode.RESOURCE_DOES_NOT_EXIST

    def test_delete_and_restore_experiment(self, store: TrackingStore) -> None:
        """Delete marks the experiment deleted, restore makes it active again, tags intact."""
        exp_id = new_experiment(store, tags=[ExperimentTag("team", "a")])
        before = store.get_experiment(exp_id)
        store.delete_experiment(exp_id)
        deleted = store.get_experiment(exp_id)
        assert deleted.lifecycle_stage == LifecycleStage.DELETED
        assert deleted.last_update_time is not None and before.last_update_time is not None
        assert deleted.last_update_time >= before.last_update_time
        store.restore_experiment(exp_id)
        restored = store.get_experiment(exp_id)
        assert restored.lifecycle_stage == LifecycleStage.ACTIVE
        assert (restored.name, restored.tags) == (before.name, {"team": "a"})
        assert restored.artifact_location == before.artifact_location

    def test_delete_restore_wrong_state_rejected(self, store: TrackingStore) -> None:
        """Deleting an unknown or deleted experiment, or restoring an active one, is 404."""
        exp_id = new_experiment(store)
        with pytest.raises(TracklogError) as excinfo:
            store.restore_experiment(exp_id)
        assert excinfo.value.error_code == ErrorCode.RESOURCE_DOES_NOT_EXIST
        store.delete_experiment(exp_id)
        with pytest.raises(TracklogError) as excinfo:
            store.delete_experiment(exp_id)
        assert excinfo.value.error_code == ErrorCode.RESOURCE_DOES_NOT_EXIST
        with pytest.raises(TracklogError) as excinfo:
            store.delete_experiment("987654321")
        assert excinfo.value.error_code == ErrorCode.RESOURCE_DOES_NOT_EXIST
        with pytest.raises(TracklogError) as excinfo:
            store.restore_experiment("987654321")
        assert excinfo.value.error_code == ErrorCode.RESOURCE_DOES_NOT_EXIST
        assert store.get_experiment(exp_id).lifecycle_stage == LifecycleStage.DELETED

    def test_default_experiment_cannot_be_deleted(self, store: TrackingStore) -> None:
        """Deleting experiment "0" is INVALID_PARAMETER_VALUE in MLflow's FileStore words
        (a 400, not its 500); "0" and its runs stay active."""
        run_id = new_run(store, DEFAULT_EXPERIMENT_ID).info.run_id
        with pytest.raises(TracklogError) as excinfo:
            store.delete_experiment(DEFAULT_EXPERIMENT_ID)
        assert excinfo.value.error_code == ErrorCode.INVALID_PARAMETER_VALUE
        assert excinfo.value.message == (
            "Cannot delete the default experiment '0'. This is an internally reserved "
            "experiment."
        )
        assert store.get_experiment("0").lifecycle_stage == LifecycleStage.ACTIVE
        assert store.get_run(run_id).info.lifecycle_stage == LifecycleStage.ACTIVE
        assert new_run(store, DEFAULT_EXPERIMENT_ID).info.experiment_id == "0"
        assert [e.experiment_id for e in store.search_experiments(
            view_type=ViewType.DELETED_ONLY)] == []

    def test_experiment_tags(self, store: TrackingStore) -> None:
        """Tags are set, overwritten and deleted; deleting a missing tag is 404."""
        exp_id = new_experiment(store, tags=[ExperimentTag("keep", "1")])
        store.set_experiment_tag(exp_id, ExperimentTag("team", "a"))
        store.set_experiment_tag(exp_id, ExperimentTag("team", "b"))
        store.set_experiment_tag(exp_id, ExperimentTag("long", "x" * 5000))
        assert store.get_experiment(exp_id).tags == {"keep": "1", "team": "b", "long": "x" * 5000}
        store.delete_experiment_tag(exp_id, "team")
        assert store.get_experiment(exp_id).tags == {"keep": "1", "long": "x" * 5000}
        with pytest.raises(TracklogError) as excinfo:
            store.delete_experiment_tag(exp_id, "team")
        assert excinfo.value.error_code == ErrorCode.RESOURCE_DOES_NOT_EXIST

    def test_experiment_tag_on_deleted_or_unknown_experiment(self, store: TrackingStore) -> None:
        """Tagging a deleted experiment is INVALID_PARAMETER_VALUE; an unknown one is 404."""
        exp_id = new_experiment(store)
        store.delete_experiment(exp_id)
        with pytest.raises(TracklogError) as excinfo:
            store.set_experiment_tag(exp_id, ExperimentTag("k", "v"))
        assert excinfo.value.error_code == ErrorCode.INVALID_PARAMETER_VALUE
        assert store.get_experiment(exp_id).tags == {}
        with pytest.raises(TracklogError) as excinfo:
            store.set_experiment_tag("987654321", ExperimentTag("k", "v"))
        assert excinfo.value.error_code == ErrorCode.RESOURCE_DOES_NOT_EXIST

    def test_search_experiments_view_type(self, store: TrackingStore) -> None:
        """ACTIVE_ONLY, DELETED_ONLY and ALL select by lifecycle stage."""
        live = new_experiment(store)
        dead = new_experiment(store)
        store.delete_experiment(dead)

        def ids(view: ViewType) -> set[str]:
            return {e.experiment_id for e in store.search_experiments(view_type=view)}

        assert ids(ViewType.ACTIVE_ONLY) == {"0", live}
        assert ids(ViewType.DELETED_ONLY) == {dead}
        assert ids(ViewType.ALL) == {"0", live, dead}

    def test_search_experiments_filter(self, store: TrackingStore) -> None:
        """Filters on name, experiment_id, times and tags select exactly the expected set."""
        ids = {
            "exp-alpha": store.create_experiment("exp-alpha", tags=[ExperimentTag("team", "a")]),
            "exp-Beta": store.create_experiment("exp-Beta", tags=[ExperimentTag("team", "b")]),
            "other": store.create_experiment("other", tags=[ExperimentTag("team", "A")]),
        }
        ids["Default"] = "0"
        table = [
            ("", {"Default", "exp-alpha", "exp-Beta", "other"}),
            ("name = 'exp-alpha'", {"exp-alpha"}),
            ("name != 'exp-alpha'", {"Default", "exp-Beta", "other"}),
            ("attributes.name LIKE 'exp-%'", {"exp-alpha", "exp-Beta"}),
            ("name LIKE '%beta'", set()),
            ("name ILIKE '%beta'", {"exp-Beta"}),
            ("tags.team = 'a'", {"exp-alpha"}),
            ("tags.team ILIKE 'a'", {"exp-alpha", "other"}),
            ("tags.team != 'a'", {"exp-Beta", "other"}),
            ("tags.team IS NULL", {"Default"}),
            ("tags.team IS NOT NULL", {"exp-alpha", "exp-Beta", "other"}),
            ("creation_time >= 0", {"Default", "exp-alpha", "exp-Beta", "other"}),
            ("creation_time < 0", set()),
            ("last_update_time > 0 AND tags.team = 'b'", {"exp-Beta"}),
            (f"experiment_id = '{ids['other']}'", {"other"}),
            (f"experiment_id IN ('{ids['other']}', '0')", {"other", "Default"}),
            (f"experiment_id NOT IN ('{ids['other']}', '0')", {"exp-alpha", "exp-Beta"}),
            ("name LIKE 'exp-%' AND tags.team = 'b'", {"exp-Beta"}),
        ]
        by_id = {v: k for k, v in ids.items()}
        failures = []
        for text, expected in table:
            got = {by_id[e.experiment_id] for e in store.search_experiments(
                filter=experiment_filter(text), max_results=100)}
            if got != expected:
                failures.append(f"{text!r}: expected {sorted(expected)}, got {sorted(got)}")
        assert not failures, "\n".join(failures)

    def test_search_experiments_order_by(self, store: TrackingStore) -> None:
        """order_by on name sorts both ways; the default is creation_time DESC."""
        for name in ("exp-b", "exp-a", "exp-c"):
            store.create_experiment(name)

        def names(order: list[str]) -> list[str]:
            found = store.search_experiments(order_by=experiment_order(order))
            return [e.name for e in found]

        assert names(["name ASC"]) == ["Default", "exp-a", "exp-b", "exp-c"]
        assert names(["name DESC"]) == ["exp-c", "exp-b", "exp-a", "Default"]
        default = store.search_experiments()
        times: list[int] = []
        for e in default:
            assert e.creation_time is not None
            times.append(e.creation_time)
        assert times == sorted(times, reverse=True)
        # Single-digit ids here, so string and numeric id order agree.
        keys = [(-t, e.experiment_id) for t, e in zip(times, default, strict=True)]
        assert keys == sorted(keys)
        assert {e.name for e in default} == {"Default", "exp-a", "exp-b", "exp-c"}
        by_time = store.search_experiments(order_by=experiment_order(["creation_time ASC"]))
        assert [e.creation_time for e in by_time] == sorted(times)

    def test_search_experiments_paging(self, store: TrackingStore) -> None:
        """Pages of 5 return every experiment exactly once; a garbage token is rejected."""
        created = {new_experiment(store) for _ in range(11)} | {"0"}
        pages = collect_pages(lambda token: store.search_experiments(
            max_results=5, order_by=experiment_order(["name ASC"]), page_token=token))
        assert [len(p) for p in pages] == [5, 5, 2]
        seen = [e.experiment_id for page in pages for e in page]
        assert sorted(seen) == sorted(created)
        names = [e.name for page in pages for e in page]
        assert names == sorted(names)
        exact = store.search_experiments(max_results=12)
        assert len(exact) == 12 and exact.token is None
        with pytest.raises(TracklogError) as excinfo:
            store.search_experiments(max_results=5, page_token="not a token")
        assert excinfo.value.error_code == ErrorCode.INVALID_PARAMETER_VALUE
