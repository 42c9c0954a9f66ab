"""Logged models (MLflow 3): create, get, finalize, tags, params, delete, search, metrics."""

from __future__ import annotations

import re

import pytest

from tracklog.entities import (
    LifecycleStage,
    LoggedModelParameter,
    LoggedModelStatus,
    LoggedModelTag,
    Metric,
)
from tracklog.errors import ErrorCode, TracklogError
from tracklog.stores import TrackingStore

from ._base import (
    KitBase,
    collect_pages,
    error_code,
    logged_model_filter,
    logged_model_order,
    new_experiment,
    new_run,
)

MODEL_ID = re.compile(r"^m-[0-9a-f]{32}$")
UNKNOWN_MODEL = "m-" + "0" * 32


def build_model_scenario(store: TrackingStore) -> tuple[str, str, dict[str, str]]:
    """Three models with params, tags and dataset-scoped metrics, plus one elsewhere.

    ::

        model    type     status         lr    team  acc (dataset)   source run
        alpha    sklearn  READY          0.1   a     0.9 (ds1/d1)    -
        beta     torch    PENDING        0.01  b     0.7 (ds2/d2)    -
        gamma    -        UPLOAD_FAILED  -     A     -               the run

    Returns the experiment id, the run id and ``{name: model_id}``.
    """
    exp_id = new_experiment(store, "models")
    run_id = new_run(store, exp_id).info.run_id
    models = {
        "alpha": store.create_logged_model(
            exp_id, name="alpha", model_type="sklearn",
            params=[LoggedModelParameter("lr", "0.1")], tags=[LoggedModelTag("team", "a")]),
        "beta": store.create_logged_model(
            exp_id, name="beta", model_type="torch",
            params=[LoggedModelParameter("lr", "0.01")], tags=[LoggedModelTag("team", "b")]),
        "gamma": store.create_logged_model(
            exp_id, name="gamma", source_run_id=run_id, tags=[LoggedModelTag("team", "A")]),
    }
    ids = {name: model.model_id for name, model in models.items()}
    store.finalize_logged_model(ids["alpha"], LoggedModelStatus.LOGGED_MODEL_READY)
    store.finalize_logged_model(ids["gamma"], LoggedModelStatus.LOGGED_MODEL_UPLOAD_FAILED)
    store.log_batch(run_id, metrics=[
        Metric("acc", 0.9, 10, 0, model_id=ids["alpha"], dataset_name="ds1", dataset_digest="d1"),
        Metric("acc", 0.7, 10, 0, model_id=ids["beta"], dataset_name="ds2", dataset_digest="d2"),
    ])
    store.create_logged_model(new_experiment(store, "other-models"), name="alpha")
    return exp_id, run_id, ids


class LoggedModelTests(KitBase):
    """The LoggedModel entity that MLflow 3's ``log_model`` creates and searches."""

    def test_create_logged_model(self, store: TrackingStore) -> None:
        """A new model is PENDING with an m-<32 hex> id under the experiment's location."""
        exp_id = new_experiment(store)
        run_id = new_run(store, exp_id).info.run_id
        location = store.get_experiment(exp_id).artifact_location.rstrip("/")
        model = store.create_logged_model(
            exp_id, name="my-model", source_run_id=run_id, model_type="sklearn",
            tags=[LoggedModelTag("t", "1")], params=[LoggedModelParameter("lr", "0.1")])
        assert MODEL_ID.match(model.model_id), model.model_id
        assert model.status == LoggedModelStatus.LOGGED_MODEL_PENDING
        assert model.artifact_location == f"{location}/models/{model.model_id}/artifacts"
        assert (model.experiment_id, model.name, model.source_run_id, model.model_type) == (
            exp_id, "my-model", run_id, "sklearn")
        assert model.tags == {"t": "1"} and model.params == {"lr": "0.1"}
        assert isinstance(model.creation_timestamp, int) and model.creation_timestamp > 0
        assert model.last_updated_timestamp >= model.creation_timestamp
        assert model.lifecycle_stage == LifecycleStage.ACTIVE
        got = store.get_logged_model(model.model_id)
        assert (got.model_id, got.name, got.status, got.artifact_location, got.tags,
                got.params, got.source_run_id, got.experiment_id) == (
            model.model_id, "my-model", LoggedModelStatus.LOGGED_MODEL_PENDING,
            model.artifact_location, {"t": "1"}, {"lr": "0.1"}, run_id, exp_id)

    def test_generated_model_name(self, store: TrackingStore) -> None:
        """Without a name the store picks a non-empty one; ids are unique."""
        exp_id = new_experiment(store)
        models = [store.create_logged_model(exp_id) for _ in range(3)]
        assert all(m.name for m in models)
        assert len({m.model_id for m in models}) == 3

    def test_unknown_experiment_or_model(self, store: TrackingStore) -> None:
        """Unknown experiments and model ids are RESOURCE_DOES_NOT_EXIST."""
        calls = {
            "create_logged_model": lambda: store.create_logged_model("987654321", name="x"),
            "get_logged_model": lambda: store.get_logged_model(UNKNOWN_MODEL),
            "finalize_logged_model": lambda: store.finalize_logged_model(
                UNKNOWN_MODEL, LoggedModelStatus.LOGGED_MODEL_READY),
            "set_logged_model_tags": lambda: store.set_logged_model_tags(
                UNKNOWN_MODEL, [LoggedModelTag("k", "v")]),
            "delete_logged_model": lambda: store.delete_logged_model(UNKNOWN_MODEL),
        }
        codes = {name: error_code(call) for name, call in calls.items()}
        wrong = {n: c for n, c in codes.items() if c != ErrorCode.RESOURCE_DOES_NOT_EXIST}
        assert not wrong, f"expected RESOURCE_DOES_NOT_EXIST, got {wrong}"

    def test_finalize_logged_model(self, store: TrackingStore) -> None:
        """Finalize sets READY or UPLOAD_FAILED and returns the updated model."""
        exp_id = new_experiment(store)
        ok = store.create_logged_model(exp_id, name="ok")
        ready = store.finalize_logged_model(ok.model_id, LoggedModelStatus.LOGGED_MODEL_READY)
        assert ready.status == LoggedModelStatus.LOGGED_MODEL_READY
        assert ready.last_updated_timestamp >= ok.last_updated_timestamp
        stored = store.get_logged_model(ok.model_id)
        assert stored.status == LoggedModelStatus.LOGGED_MODEL_READY
        bad = store.create_logged_model(exp_id, name="bad").model_id
        store.finalize_logged_model(bad, LoggedModelStatus.LOGGED_MODEL_UPLOAD_FAILED)
        assert store.get_logged_model(bad).status == LoggedModelStatus.LOGGED_MODEL_UPLOAD_FAILED

    def test_logged_model_tags(self, store: TrackingStore) -> None:
        """Tags are set, overwritten and deleted; deleting a missing tag is 404."""
        model_id = store.create_logged_model(
            new_experiment(store), tags=[LoggedModelTag("a", "1")]).model_id
        store.set_logged_model_tags(model_id, [LoggedModelTag("a", "2"), LoggedModelTag("b", "3")])
        store.set_logged_model_tags(model_id, [LoggedModelTag("mlflow.modelVersions",
                                                              '[{"name": "n", "version": "1"}]')])
        assert store.get_logged_model(model_id).tags == {
            "a": "2", "b": "3", "mlflow.modelVersions": '[{"name": "n", "version": "1"}]'}
        store.delete_logged_model_tag(model_id, "a")
        assert "a" not in store.get_logged_model(model_id).tags
        with pytest.raises(TracklogError) as excinfo:
            store.delete_logged_model_tag(model_id, "a")
        assert excinfo.value.error_code == ErrorCode.RESOURCE_DOES_NOT_EXIST

    def test_logged_model_params(self, store: TrackingStore) -> None:
        """Params given at creation and logged later all read back."""
        model_id = store.create_logged_model(
            new_experiment(store), params=[LoggedModelParameter("a", "1")]).model_id
        store.log_logged_model_params(
            model_id, [LoggedModelParameter("b", "2"), LoggedModelParameter("c", "")])
        assert store.get_logged_model(model_id).params == {"a": "1", "b": "2", "c": ""}

    def test_delete_logged_model(self, store: TrackingStore) -> None:
        """A deleted model is hidden from get and search unless allow_deleted."""
        exp_id = new_experiment(store)
        keep = store.create_logged_model(exp_id, name="keep").model_id
        gone = store.create_logged_model(exp_id, name="gone").model_id
        store.delete_logged_model(gone)
        with pytest.raises(TracklogError) as excinfo:
            store.get_logged_model(gone)
        assert excinfo.value.error_code == ErrorCode.RESOURCE_DOES_NOT_EXIST
        deleted = store.get_logged_model(gone, allow_deleted=True)
        assert deleted.model_id == gone and deleted.lifecycle_stage == LifecycleStage.DELETED
        assert [m.model_id for m in store.search_logged_models([exp_id])] == [keep]

    def test_model_metrics_link_run_and_model(self, store: TrackingStore) -> None:
        """A run metric logged with model_id also shows on the model, with run and dataset."""
        exp_id = new_experiment(store)
        run_id = new_run(store, exp_id).info.run_id
        model_id = store.create_logged_model(exp_id, source_run_id=run_id).model_id
        store.log_batch(run_id, metrics=[
            Metric("acc", 0.8, 100, 2, model_id=model_id, dataset_name="eval",
                   dataset_digest="abc"),
            Metric("loss", 0.1, 100, 2)])
        (linked,) = store.get_logged_model(model_id).metrics
        assert (linked.key, linked.value, linked.timestamp, linked.step) == ("acc", 0.8, 100, 2)
        assert (linked.model_id, linked.run_id) == (model_id, run_id)
        assert (linked.dataset_name, linked.dataset_digest) == ("eval", "abc")
        run_metrics = store.get_run(run_id).data.metrics
        assert run_metrics["acc"].value == 0.8 and run_metrics["loss"].value == 0.1
        other = store.create_logged_model(exp_id).model_id
        assert store.get_logged_model(other).metrics == []

    def test_search_logged_models_filter(self, store: TrackingStore) -> None:
        """Filters on attributes, params, tags and (dataset-scoped) metrics."""
        exp_id, run_id, ids = build_model_scenario(store)
        names = {v: k for k, v in ids.items()}
        table = [
            ("", None, {"alpha", "beta", "gamma"}),
            ("name = 'alpha'", None, {"alpha"}),
            ("name != 'alpha'", None, {"beta", "gamma"}),
            ("name LIKE '%a'", None, {"alpha", "beta", "gamma"}),
            ("name LIKE 'A%'", None, set()),
            ("name ILIKE 'A%'", None, {"alpha"}),
            ("model_type = 'torch'", None, {"beta"}),
            (f"model_id = '{ids['beta']}'", None, {"beta"}),
            (f"source_run_id = '{run_id}'", None, {"gamma"}),
            ("creation_timestamp > 0", None, {"alpha", "beta", "gamma"}),
            ("params.lr = '0.1'", None, {"alpha"}),
            ("params.lr != '0.1'", None, {"beta"}),
            ("tags.team = 'a'", None, {"alpha"}),
            ("tags.team ILIKE 'a'", None, {"alpha", "gamma"}),
            ("metrics.acc > 0.8", None, {"alpha"}),
            ("metrics.acc >= 0.7", None, {"alpha", "beta"}),
            ("metrics.acc >= 0.7", [{"dataset_name": "ds2"}], {"beta"}),
            ("metrics.acc >= 0.7", [{"dataset_name": "ds1", "dataset_digest": "d1"}],
             {"alpha"}),
            ("metrics.acc >= 0.7", [{"dataset_name": "ds1", "dataset_digest": "zz"}], set()),
            ("name = 'alpha' AND tags.team = 'b'", None, set()),
        ]
        failures = []
        for text, datasets, expected in table:
            found = store.search_logged_models(
                [exp_id], filter=logged_model_filter(text), datasets=datasets or (),
                max_results=100)
            got = {names.get(m.model_id, m.model_id) for m in found}
            if got != expected:
                failures.append(f"{text!r} datasets={datasets}: expected {sorted(expected)}, "
                                f"got {sorted(got)}")
        assert not failures, "\n".join(failures)

    def test_search_logged_models_order(self, store: TrackingStore) -> None:
        """order_by name both ways, by metric with missing values last; default newest first."""
        exp_id, _, ids = build_model_scenario(store)
        names = {v: k for k, v in ids.items()}

        def order(clauses: list[dict]) -> list[str]:
            found = store.search_logged_models([exp_id], order_by=logged_model_order(clauses))
            return [names[m.model_id] for m in found]

        assert order([{"field_name": "name", "ascending": True}]) == ["alpha", "beta", "gamma"]
        assert order([{"field_name": "name", "ascending": False}]) == ["gamma", "beta", "alpha"]
        assert order([{"field_name": "metrics.acc", "ascending": False}]) == [
            "alpha", "beta", "gamma"]
        assert order([{"field_name": "metrics.acc", "ascending": True}]) == [
            "beta", "alpha", "gamma"]
        default = store.search_logged_models([exp_id])
        stamps = [(-m.creation_timestamp, m.model_id) for m in default]
        assert stamps == sorted(stamps)

    def test_search_logged_models_paging(self, store: TrackingStore) -> None:
        """Pages of 5 cover 12 models once each; a garbage token is INVALID_PARAMETER_VALUE."""
        exp_id = new_experiment(store)
        created = {store.create_logged_model(exp_id, name=f"m{i:02d}").model_id
                   for i in range(12)}
        order = logged_model_order([{"field_name": "name", "ascending": True}])
        pages = collect_pages(lambda token: store.search_logged_models(
            [exp_id], max_results=5, order_by=order, page_token=token))
        assert [len(p) for p in pages] == [5, 5, 2]
        seen = [m for page in pages for m in page]
        assert {m.model_id for m in seen} == created and len(seen) == 12
        assert [m.name for m in seen] == [f"m{i:02d}" for i in range(12)]
        with pytest.raises(TracklogError) as excinfo:
            store.search_logged_models([exp_id], max_results=5, page_token="garbage")
        assert excinfo.value.error_code == ErrorCode.INVALID_PARAMETER_VALUE
