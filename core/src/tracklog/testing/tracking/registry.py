"""The model registry (stores that are also a ``ModelRegistryStore``)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import pytest

from tracklog.entities import ModelVersionStatus, RegisteredModelAlias
from tracklog.errors import ErrorCode, TracklogError
from tracklog.stores import ModelRegistryStore

from ._base import (
    KitBase,
    collect_pages,
    error_code,
    model_version_filter,
    model_version_order,
    new_experiment,
    new_run,
    registered_model_filter,
    registered_model_order,
    requires,
    unique,
)

if TYPE_CHECKING:
    from tracklog.stores import TrackingStore

    class RegistryTrackingStore(TrackingStore, ModelRegistryStore):
        """A tracking store with the registry capability: what the registry tests receive
        (some of them also create runs and logged models)."""


SOURCE = "mlflow-artifacts:/0/abc/artifacts/model"
VERSION_THREADS = 16


@requires("model_registry")
class RegistryTests(KitBase):
    """Registered models, versions, stages, aliases, tags and registry searches."""

    def test_create_and_get_registered_model(self, store: ModelRegistryStore) -> None:
        """A registered model reads back with description, tags and no versions."""
        name = unique("reg")
        created = store.create_registered_model(name, tags=[("k", "v")], description="d")
        assert created.name == name
        got = store.get_registered_model(name)
        assert (got.name, got.description, got.tags) == (name, "d", {"k": "v"})
        assert got.latest_versions == [] and got.aliases == []
        assert isinstance(got.creation_timestamp, int) and got.creation_timestamp > 0
        assert got.last_updated_timestamp >= got.creation_timestamp

    def test_registered_model_errors(self, store: ModelRegistryStore) -> None:
        """A taken name is RESOURCE_ALREADY_EXISTS; unknown names are RESOURCE_DOES_NOT_EXIST."""
        name = unique("reg")
        store.create_registered_model(name)
        with pytest.raises(TracklogError) as excinfo:
            store.create_registered_model(name)
        assert excinfo.value.error_code == ErrorCode.RESOURCE_ALREADY_EXISTS
        for call in (lambda: store.get_registered_model("nope"),
                     lambda: store.delete_registered_model("nope"),
                     lambda: store.update_registered_model("nope", "x"),
                     lambda: store.create_model_version("nope", SOURCE)):
            with pytest.raises(TracklogError) as excinfo:
                call()
            assert excinfo.value.error_code == ErrorCode.RESOURCE_DOES_NOT_EXIST

    def test_unknown_model_version_rejected(self, store: ModelRegistryStore) -> None:
        """Every call naming a missing version (of an existing model) is 404."""
        name = unique("reg")
        store.create_registered_model(name)
        store.create_model_version(name, SOURCE)
        calls = {
            "get_model_version": lambda: store.get_model_version(name, "7"),
            "update_model_version": lambda: store.update_model_version(name, "7", "d"),
            "transition_model_version_stage": lambda: store.transition_model_version_stage(
                name, "7", "Staging", False),
            "delete_model_version": lambda: store.delete_model_version(name, "7"),
            "get_model_version_download_uri": lambda: store.get_model_version_download_uri(
                name, "7"),
            "set_model_version_tag": lambda: store.set_model_version_tag(name, "7", "k", "v"),
            "set_registered_model_alias": lambda: store.set_registered_model_alias(
                name, "champion", "7"),
        }
        codes = {call_name: error_code(call) for call_name, call in calls.items()}
        wrong = {n: c for n, c in codes.items() if c != ErrorCode.RESOURCE_DOES_NOT_EXIST}
        assert not wrong, f"expected RESOURCE_DOES_NOT_EXIST, got {wrong}"
        assert store.get_model_version(name, "1").current_stage == "None"
        assert store.get_registered_model(name).aliases == []

    def test_rename_update_delete_registered_model(self, store: ModelRegistryStore) -> None:
        """Rename carries the versions along; update sets the description; delete removes all."""
        old, new, other = unique("old"), unique("new"), unique("other")
        store.create_registered_model(old)
        store.create_registered_model(other)
        store.create_model_version(old, SOURCE)
        renamed = store.rename_registered_model(old, new)
        assert renamed.name == new
        assert store.get_model_version(new, "1").name == new
        with pytest.raises(TracklogError) as excinfo:
            store.get_registered_model(old)
        assert excinfo.value.error_code == ErrorCode.RESOURCE_DOES_NOT_EXIST
        with pytest.raises(TracklogError) as excinfo:
            store.rename_registered_model(new, other)
        assert excinfo.value.error_code == ErrorCode.RESOURCE_ALREADY_EXISTS
        assert store.update_registered_model(new, "described").description == "described"
        assert store.get_registered_model(new).description == "described"
        store.delete_registered_model(new)
        with pytest.raises(TracklogError) as excinfo:
            store.get_registered_model(new)
        assert excinfo.value.error_code == ErrorCode.RESOURCE_DOES_NOT_EXIST
        with pytest.raises(TracklogError) as excinfo:
            store.get_model_version(new, "1")
        assert excinfo.value.error_code == ErrorCode.RESOURCE_DOES_NOT_EXIST

    def test_registered_model_tags(self, store: ModelRegistryStore) -> None:
        """Registered model tags are set, overwritten and deleted."""
        name = unique("reg")
        store.create_registered_model(name)
        store.set_registered_model_tag(name, "a", "1")
        store.set_registered_model_tag(name, "a", "2")
        store.set_registered_model_tag(name, "b", "3")
        assert store.get_registered_model(name).tags == {"a": "2", "b": "3"}
        store.delete_registered_model_tag(name, "a")
        assert store.get_registered_model(name).tags == {"b": "3"}

    def test_create_model_versions(self, store: RegistryTrackingStore) -> None:
        """Versions count "1", "2", ... per model; new ones are READY in stage "None"."""
        exp_id = new_experiment(store)
        run_id = new_run(store, exp_id).info.run_id
        name, other = unique("reg"), unique("reg")
        store.create_registered_model(name)
        store.create_registered_model(other)
        v1 = store.create_model_version(name, SOURCE, run_id=run_id, tags=[("k", "v")],
                                        description="first")
        v2 = store.create_model_version(name, SOURCE + "2")
        v3 = store.create_model_version(name, SOURCE)
        assert [v1.version, v2.version, v3.version] == ["1", "2", "3"]
        assert store.create_model_version(other, SOURCE).version == "1"
        got = store.get_model_version(name, "1")
        assert (got.name, got.version, got.source, got.run_id, got.current_stage, got.status,
                got.description, got.tags) == (
            name, "1", SOURCE, run_id, "None", ModelVersionStatus.READY, "first", {"k": "v"})
        assert store.get_model_version(name, "2").description == ""
        assert store.get_model_version(name, "2").run_link == ""
        registered = store.get_registered_model(name)
        assert registered.last_updated_timestamp >= registered.creation_timestamp
        assert [v.version for v in registered.latest_versions] == ["3"]

    def test_model_version_errors_and_delete(self, store: ModelRegistryStore) -> None:
        """Unknown versions are 404; a deleted version is gone and its number not reused."""
        name = unique("reg")
        store.create_registered_model(name)
        for _ in range(3):
            store.create_model_version(name, SOURCE)
        store.delete_model_version(name, "2")
        with pytest.raises(TracklogError) as excinfo:
            store.get_model_version(name, "2")
        assert excinfo.value.error_code == ErrorCode.RESOURCE_DOES_NOT_EXIST
        with pytest.raises(TracklogError) as excinfo:
            store.get_model_version(name, "99")
        assert excinfo.value.error_code == ErrorCode.RESOURCE_DOES_NOT_EXIST
        assert store.create_model_version(name, SOURCE).version == "4"
        found = store.search_model_versions(filter=model_version_filter(f"name = '{name}'"))
        assert sorted(v.version for v in found) == ["1", "3", "4"]

    def test_update_model_version_and_tags(self, store: ModelRegistryStore) -> None:
        """Descriptions update; version tags are set, overwritten and deleted."""
        name = unique("reg")
        store.create_registered_model(name)
        store.create_model_version(name, SOURCE)
        assert store.update_model_version(name, "1", "new text").description == "new text"
        assert store.get_model_version(name, "1").description == "new text"
        store.set_model_version_tag(name, "1", "a", "1")
        store.set_model_version_tag(name, "1", "a", "2")
        store.set_model_version_tag(name, "1", "b", "3")
        assert store.get_model_version(name, "1").tags == {"a": "2", "b": "3"}
        store.delete_model_version_tag(name, "1", "a")
        assert store.get_model_version(name, "1").tags == {"b": "3"}

    def test_stage_transitions(self, store: ModelRegistryStore) -> None:
        """Stages change; archive_existing_versions archives the others in the target stage."""
        name = unique("reg")
        store.create_registered_model(name)
        for _ in range(3):
            store.create_model_version(name, SOURCE)
        moved = store.transition_model_version_stage(name, "1", "Production", False)
        assert moved.current_stage == "Production"
        store.transition_model_version_stage(name, "2", "Production", False)
        stages = {v: store.get_model_version(name, v).current_stage for v in ("1", "2", "3")}
        assert stages == {"1": "Production", "2": "Production", "3": "None"}
        store.transition_model_version_stage(name, "3", "Production", True)
        stages = {v: store.get_model_version(name, v).current_stage for v in ("1", "2", "3")}
        assert stages == {"1": "Archived", "2": "Archived", "3": "Production"}
        store.transition_model_version_stage(name, "1", "Staging", False)
        assert store.get_model_version(name, "1").current_stage == "Staging"

    def test_latest_versions(self, store: ModelRegistryStore) -> None:
        """The newest version per stage, optionally limited to some stages."""
        name = unique("reg")
        store.create_registered_model(name)
        for _ in range(5):
            store.create_model_version(name, SOURCE)
        store.transition_model_version_stage(name, "1", "Production", False)
        store.transition_model_version_stage(name, "2", "Production", False)
        store.transition_model_version_stage(name, "3", "Staging", False)

        def latest(stages: list[str]) -> dict[str, str]:
            return {v.current_stage: v.version for v in store.get_latest_versions(name, stages)}

        assert latest([]) == {"Production": "2", "Staging": "3", "None": "5"}
        assert latest(["Production"]) == {"Production": "2"}
        assert latest(["Staging", "Production"]) == {"Production": "2", "Staging": "3"}
        assert latest(["Archived"]) == {}
        registered = store.get_registered_model(name)
        assert {v.current_stage: v.version for v in registered.latest_versions} == {
            "Production": "2", "Staging": "3", "None": "5"}
        with pytest.raises(TracklogError) as excinfo:
            store.get_latest_versions("nope", [])
        assert excinfo.value.error_code == ErrorCode.RESOURCE_DOES_NOT_EXIST

    def test_aliases(self, store: ModelRegistryStore) -> None:
        """An alias points at one version, moves when set again, and can be deleted."""
        name = unique("reg")
        store.create_registered_model(name)
        store.create_model_version(name, SOURCE)
        store.create_model_version(name, SOURCE)
        store.set_registered_model_alias(name, "champion", "1")
        store.set_registered_model_alias(name, "challenger", "2")
        assert store.get_model_version_by_alias(name, "champion").version == "1"
        assert store.get_model_version(name, "1").aliases == ["champion"]
        store.set_registered_model_alias(name, "champion", "2")
        by_alias = store.get_model_version_by_alias(name, "champion")
        assert by_alias.version == "2"
        assert sorted(by_alias.aliases) == ["challenger", "champion"]
        assert store.get_model_version(name, "1").aliases == []
        assert sorted(store.get_registered_model(name).aliases, key=lambda a: a.alias) == [
            RegisteredModelAlias("challenger", "2"), RegisteredModelAlias("champion", "2")]
        store.delete_registered_model_alias(name, "champion")
        assert store.get_registered_model(name).aliases == [
            RegisteredModelAlias("challenger", "2")]
        # MLflow: an alias the model lacks is a bad parameter, an unknown model is missing.
        assert error_code(lambda: store.get_model_version_by_alias(
            name, "champion")) == ErrorCode.INVALID_PARAMETER_VALUE
        assert error_code(lambda: store.get_model_version_by_alias(
            unique("nope"), "challenger")) == ErrorCode.RESOURCE_DOES_NOT_EXIST

    def test_download_uri(self, store: RegistryTrackingStore) -> None:
        """A plain source comes back unchanged; models:/<model_id> resolves to the model."""
        exp_id = new_experiment(store)
        model = store.create_logged_model(exp_id, name="lm")
        name = unique("reg")
        store.create_registered_model(name)
        store.create_model_version(name, "s3://bucket/path/model")
        store.create_model_version(name, f"models:/{model.model_id}", model_id=model.model_id)
        assert store.get_model_version_download_uri(name, "1") == "s3://bucket/path/model"
        assert store.get_model_version_download_uri(name, "2") == model.artifact_location
        assert store.get_model_version(name, "2").model_id == model.model_id

    def test_search_registered_models(self, store: ModelRegistryStore) -> None:
        """Filters on name and tags; order by name; pages cover every model once."""
        for i, team in enumerate(["a", "b", "a", "c", "A"]):
            store.create_registered_model(f"search-{i}", tags=[("team", team)])
        store.create_registered_model("elsewhere")
        table = [
            ("", {"search-0", "search-1", "search-2", "search-3", "search-4", "elsewhere"}),
            ("name = 'search-1'", {"search-1"}),
            ("name LIKE 'search-%'", {f"search-{i}" for i in range(5)}),
            ("name ILIKE 'SEARCH-1'", {"search-1"}),
            ("name LIKE 'SEARCH-%'", set()),
            ("tags.team = 'a'", {"search-0", "search-2"}),
            ("tags.team ILIKE 'a'", {"search-0", "search-2", "search-4"}),
            ("name LIKE 'search-%' AND tags.team != 'a'", {"search-1", "search-3", "search-4"}),
        ]
        failures = []
        for text, expected in table:
            got = {m.name for m in store.search_registered_models(
                filter=registered_model_filter(text), max_results=100)}
            if got != expected:
                failures.append(f"{text!r}: expected {sorted(expected)}, got {sorted(got)}")
        assert not failures, "\n".join(failures)
        names = [m.name for m in store.search_registered_models(
            order_by=registered_model_order(["name DESC"]))]
        assert names == sorted(names, reverse=True)
        assert [m.name for m in store.search_registered_models()] == sorted(names)
        pages = collect_pages(lambda token: store.search_registered_models(
            max_results=4, page_token=token))
        assert [len(p) for p in pages] == [4, 2]
        assert [m.name for page in pages for m in page] == sorted(names)
        with pytest.raises(TracklogError) as excinfo:
            store.search_registered_models(max_results=4, page_token="garbage")
        assert excinfo.value.error_code == ErrorCode.INVALID_PARAMETER_VALUE

    def test_search_model_versions(self, store: RegistryTrackingStore) -> None:
        """Filters on name, run_id, version_number and tags; ordering; paging."""
        run_id = new_run(store).info.run_id
        for name in ("mv-a", "mv-b"):
            store.create_registered_model(name)
        for i in range(4):
            store.create_model_version("mv-a", SOURCE, run_id=run_id if i % 2 else None,
                                       tags=[("parity", str(i % 2))])
        store.create_model_version("mv-b", SOURCE, run_id=run_id)
        table = [
            ("name = 'mv-a'", {("mv-a", v) for v in "1234"}),
            (f"run_id = '{run_id}'", {("mv-a", "2"), ("mv-a", "4"), ("mv-b", "1")}),
            ("name = 'mv-a' AND version_number > 2", {("mv-a", "3"), ("mv-a", "4")}),
            ("name IN ('mv-b')", {("mv-b", "1")}),
            ("tags.parity = '0'", {("mv-a", "1"), ("mv-a", "3")}),
            ("name LIKE 'mv-%' AND tags.parity = '1'", {("mv-a", "2"), ("mv-a", "4")}),
        ]
        failures = []
        for text, expected in table:
            got = {(v.name, v.version) for v in store.search_model_versions(
                filter=model_version_filter(text), max_results=100)}
            if got != expected:
                failures.append(f"{text!r}: expected {sorted(expected)}, got {sorted(got)}")
        assert not failures, "\n".join(failures)
        ordered = store.search_model_versions(
            filter=model_version_filter("name = 'mv-a'"),
            order_by=model_version_order(["version_number DESC"]))
        assert [v.version for v in ordered] == ["4", "3", "2", "1"]
        pages = collect_pages(lambda token: store.search_model_versions(
            filter=model_version_filter("name = 'mv-a'"), max_results=3,
            order_by=model_version_order(["version_number ASC"]), page_token=token))
        assert [[v.version for v in page] for page in pages] == [["1", "2", "3"], ["4"]]

    def test_registry_search_hides_prompts(self, store: ModelRegistryStore) -> None:
        """Prompts (tag ``mlflow.prompt.is_prompt`` = 'true') are left out of both registry
        searches unless the first comparison on that tag is ``= 'true'`` or ``!= 'false'``;
        other comparisons on it are ignored, as in MLflow's SQL registry."""
        prompt_tag = ("mlflow.prompt.is_prompt", "true")
        store.create_registered_model("plain")
        store.create_registered_model("plain-false", tags=[("mlflow.prompt.is_prompt", "false")])
        store.create_registered_model("prompt", tags=[prompt_tag, ("team", "a")])
        store.create_model_version("plain", SOURCE, tags=[("team", "a")])
        store.create_model_version("prompt", SOURCE, tags=[prompt_tag, ("team", "a")])
        store.create_model_version("prompt", SOURCE, tags=[prompt_tag])
        tag = "tags.`mlflow.prompt.is_prompt`"
        models = [
            ("", {"plain", "plain-false"}),
            ("name = 'prompt'", set()),
            ("name LIKE 'p%'", {"plain", "plain-false"}),
            (f"{tag} = 'true'", {"prompt"}),
            (f"{tag} = 'True'", set()),
            (f"{tag} != 'false'", {"prompt"}),
            (f"{tag} = 'true' AND tags.team = 'a'", {"prompt"}),
            (f"name = 'prompt' AND {tag} = 'true'", {"prompt"}),
            (f"{tag} = 'false'", {"plain", "plain-false"}),
            (f"{tag} != 'true'", {"plain", "plain-false"}),
            (f"{tag} LIKE 'tr%'", {"plain", "plain-false"}),
            ("tags.team = 'a'", set()),
        ]
        versions = [
            ("", {("plain", "1")}),
            ("name = 'prompt'", set()),
            ("tags.team = 'a'", {("plain", "1")}),
            (f"{tag} = 'true'", {("prompt", "1"), ("prompt", "2")}),
            (f"{tag} = 'true' AND tags.team = 'a'", {("prompt", "1")}),
            (f"{tag} != 'false'", {("prompt", "1"), ("prompt", "2")}),
            (f"{tag} = 'false'", {("plain", "1")}),
        ]
        failures = []
        for what, text, expected in [("models", t, e) for t, e in models] + [
                ("versions", t, e) for t, e in versions]:
            got: set[Any]
            if what == "models":
                got = {m.name for m in store.search_registered_models(
                    filter=registered_model_filter(text), max_results=100)}
            else:
                got = {(v.name, v.version) for v in store.search_model_versions(
                    filter=model_version_filter(text), max_results=100)}
            if got != expected:
                failures.append(f"{what} {text!r}: expected {sorted(expected)}, got {sorted(got)}")
        assert not failures, "\n".join(failures)
        pages = collect_pages(lambda token: store.search_registered_models(
            max_results=1, page_token=token))
        assert [[m.name for m in page] for page in pages] == [["plain"], ["plain-false"]]
        # Hidden from searches only: a prompt is still read by name.
        assert store.get_registered_model("prompt").tags["mlflow.prompt.is_prompt"] == "true"

    @requires("concurrent_writers")
    def test_concurrent_model_versions(self, store: ModelRegistryStore) -> None:
        """Threads registering versions of one model at once all succeed, with the distinct,
        gap-free numbers 1..N (the MLflow client does not retry a refused registration)."""
        name = unique("reg")
        store.create_registered_model(name)
        barrier = threading.Barrier(VERSION_THREADS)

        def register(i: int) -> str:
            barrier.wait()
            return store.create_model_version(name, f"{SOURCE}/{i}").version

        with ThreadPoolExecutor(VERSION_THREADS) as pool:
            futures = [pool.submit(register, i) for i in range(VERSION_THREADS)]
        failures = [repr(f.exception()) for f in futures if f.exception() is not None]
        assert not failures, f"{len(failures)} registrations failed: {failures[:3]}"
        versions = sorted(int(f.result()) for f in futures)
        assert versions == list(range(1, VERSION_THREADS + 1))
        stored = store.search_model_versions(filter=model_version_filter(f"name = '{name}'"),
                                             max_results=100)
        assert sorted(int(v.version) for v in stored) == versions
        assert len({v.source for v in stored}) == VERSION_THREADS

    @requires("concurrent_writers")
    def test_concurrent_stage_transitions(self, store: ModelRegistryStore) -> None:
        """Threads moving different versions of one model to Production at once, each
        archiving the existing ones, leave exactly one version in Production."""
        name = unique("reg")
        store.create_registered_model(name)
        count = 8
        for i in range(count):
            store.create_model_version(name, f"{SOURCE}/{i}")
        barrier = threading.Barrier(count)

        def promote(version: int) -> None:
            barrier.wait()
            store.transition_model_version_stage(name, str(version), "Production", True)

        with ThreadPoolExecutor(count) as pool:
            futures = [pool.submit(promote, v) for v in range(1, count + 1)]
        failures = [repr(f.exception()) for f in futures if f.exception() is not None]
        assert not failures, f"{len(failures)} transitions failed: {failures[:3]}"
        stages = [store.get_model_version(name, str(v)).current_stage
                  for v in range(1, count + 1)]
        assert sorted(stages) == ["Archived"] * (count - 1) + ["Production"], stages
