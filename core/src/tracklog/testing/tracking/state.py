"""What a store keeps: a second store opened on the same storage sees it all, and the
entities a store hands out are the caller's own."""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from tracklog.entities import (
    Dataset,
    DatasetInput,
    ExperimentTag,
    InputTag,
    LoggedModelInput,
    LoggedModelOutput,
    LoggedModelParameter,
    LoggedModelStatus,
    LoggedModelTag,
    Metric,
    RunStatus,
    RunTag,
    ViewType,
)
from tracklog.stores import ModelRegistryStore, TrackingStore

from ._base import KitBase, metric, new_experiment, params, points, tags, unique

Reopen = Callable[[], TrackingStore]


@contextmanager
def _opened(reopen: Reopen) -> Iterator[TrackingStore]:
    other = reopen()
    try:
        yield other
    finally:
        other.close()


def _scenario(store: TrackingStore, registry: bool) -> dict[str, Any]:
    """Something of every kind, written through ``store``; returns the ids and names."""
    exp_id = store.create_experiment(unique("kept"), tags=[ExperimentTag("team", "kit")])
    gone_exp = new_experiment(store, "gone")
    store.delete_experiment(gone_exp)
    run = store.create_run(exp_id, "kit-user", 1000, tags=tags(origin="first"),
                           run_name="kept-run")
    run_id = run.info.run_id
    store.log_batch(run_id, metrics=[metric("loss", 1.0, 10, 0), metric("loss", 0.5, 20, 1)],
                    params=params(lr="0.1"), tags=tags(phase="train"))
    store.log_inputs(run_id, datasets=[DatasetInput(
        Dataset("ds", "d1", "local", "/data/ds"), (InputTag("mlflow.data.context", "train"),))])
    model = store.create_logged_model(exp_id, name="lm", source_run_id=run_id,
                                      tags=[LoggedModelTag("k", "v")],
                                      params=[LoggedModelParameter("depth", "3")])
    store.finalize_logged_model(model.model_id, LoggedModelStatus.LOGGED_MODEL_READY)
    store.log_batch(run_id, metrics=[Metric("acc", 0.9, 30, 1, model_id=model.model_id)])
    store.log_outputs(run_id, [LoggedModelOutput(model.model_id, 1)])
    store.update_run_info(run_id, run_status=RunStatus.FINISHED, end_time=2000)
    store.set_tag(run_id, RunTag("note", "set on its own"))
    gone_run = store.create_run(exp_id, "kit-user", 1500).info.run_id
    store.delete_run(gone_run)
    out = {"exp": exp_id, "gone_exp": gone_exp, "run": run_id, "gone_run": gone_run,
           "model": model.model_id}
    if registry:
        assert isinstance(store, ModelRegistryStore)
        name = unique("kept-model")
        store.create_registered_model(name, tags=[("k", "v")], description="d")
        store.create_model_version(name, model.artifact_location, run_id=run_id,
                                   tags=[("vk", "vv")], model_id=model.model_id)
        store.set_registered_model_alias(name, "champion", "1")
        out["registered"] = name
    return out


def _view(store: TrackingStore, ids: dict[str, Any]) -> dict[str, Any]:
    """Everything the scenario wrote, read back through ``store``."""
    exp_id, run_id = ids["exp"], ids["run"]
    seen: dict[str, Any] = {
        "experiment": store.get_experiment(exp_id),
        "by_name": store.get_experiment_by_name(store.get_experiment(exp_id).name),
        "gone_experiment": store.get_experiment(ids["gone_exp"]),
        "run": store.get_run(run_id),
        "gone_run": store.get_run(ids["gone_run"]),
        "loss": points(store.get_metric_history(run_id, "loss")),
        "runs": sorted(r.info.run_id for r in store.search_runs(
            [exp_id], run_view_type=ViewType.ALL)),
        "model": store.get_logged_model(ids["model"]),
        "models": [m.model_id for m in store.search_logged_models([exp_id])],
    }
    if "registered" in ids:
        assert isinstance(store, ModelRegistryStore)
        name = ids["registered"]
        seen["registered"] = store.get_registered_model(name)
        seen["version"] = store.get_model_version(name, "1")
        seen["by_alias"] = store.get_model_version_by_alias(name, "champion")
        seen["latest"] = store.get_latest_versions(name)
    return seen


class StateTests(KitBase):
    """A second store on the same storage, and entities that are snapshots."""

    def test_reopened_store_sees_everything(self, store: TrackingStore, reopen: Reopen) -> None:
        """A store opened again on the same storage (``reopen``) reads back everything the
        first wrote, and each sees what the other writes while both are open."""
        registry = bool(self.requirements.resolved(store).model_registry)
        ids = _scenario(store, registry)
        expected = _view(store, ids)
        assert expected["run"].data.tags["origin"] == "first"
        with _opened(reopen) as other:
            assert _view(other, ids) == expected
            later = other.create_run(ids["exp"], "second", 3000).info.run_id
            other.set_tag(ids["run"], RunTag("seen_by", "second"))
            other.log_metric(ids["run"], metric("loss", 0.25, 40, 2))
            assert store.get_run(later).info.user_id == "second"
            assert store.get_run(ids["run"]).data.tags.get("seen_by") == "second"
            assert points(store.get_metric_history(ids["run"], "loss"))[-1] == (40, 2, 0.25)
            store.set_tag(later, RunTag("seen_by", "first"))
            assert other.get_run(later).data.tags.get("seen_by") == "first"

    def test_returned_entities_are_snapshots(self, store: TrackingStore) -> None:
        """Changing an entity a store returned (its tags dict, params, metrics, lists)
        changes nothing stored: the next read gives the stored values again."""
        registry = bool(self.requirements.resolved(store).model_registry)
        ids = _scenario(store, registry)
        exp_id, run_id = ids["exp"], ids["run"]
        pristine = copy.deepcopy(_view(store, ids))
        for _ in range(2):  # twice: a store that caches may hand out its cache on re-reads
            got = _view(store, ids)
            _scribble(got)
            for run in store.search_runs([exp_id], run_view_type=ViewType.ALL):
                _scribble_run(run)
            for exp in store.search_experiments(view_type=ViewType.ALL):
                exp.tags["scribbled"] = "x"
                exp.name = "scribbled"
            for model in store.search_logged_models([exp_id]):
                model.tags["scribbled"] = "x"
                model.params.clear()
                model.metrics.clear()
            if registry:
                assert isinstance(store, ModelRegistryStore)
                for rm in store.search_registered_models():
                    rm.tags.clear()
                    rm.aliases.clear()
                for mv in store.search_model_versions():
                    mv.tags["scribbled"] = "x"
                    mv.aliases.append("scribbled")
            assert _view(store, ids) == pristine
        found = {r.info.run_id: r for r in store.search_runs([exp_id])}
        assert found[run_id].data.params == {"lr": "0.1"}
        assert found[run_id].data.tags["phase"] == "train"
        assert store.get_experiment(exp_id).tags == {"team": "kit"}


def _scribble_run(run: Any) -> None:
    run.info.run_name = "scribbled"
    run.info.status = RunStatus.KILLED
    run.data.tags["scribbled"] = "x"
    run.data.tags.pop("phase", None)
    run.data.params["lr"] = "scribbled"
    run.data.params["new"] = "x"
    run.data.metrics["loss"] = Metric("loss", -1.0, 0, 0)
    run.data.metrics.pop("acc", None)
    run.inputs.dataset_inputs.clear()
    run.inputs.model_inputs.append(LoggedModelInput("m-scribbled"))
    run.outputs.model_outputs.clear()


def _scribble(seen: dict[str, Any]) -> None:
    for key in ("experiment", "by_name", "gone_experiment"):
        seen[key].tags["scribbled"] = "x"
        seen[key].tags.pop("team", None)
        seen[key].name = "scribbled"
    _scribble_run(seen["run"])
    _scribble_run(seen["gone_run"])
    model = seen["model"]
    model.tags["scribbled"] = "x"
    model.params["depth"] = "scribbled"
    model.metrics.clear()
    if "registered" in seen:
        rm = seen["registered"]
        rm.tags["scribbled"] = "x"
        rm.aliases.clear()
        for mv in rm.latest_versions:
            mv.tags["scribbled"] = "x"
            mv.aliases.clear()
        rm.latest_versions.clear()
        for mv in (seen["version"], seen["by_alias"], *seen["latest"]):
            mv.tags["scribbled"] = "x"
            mv.aliases.clear()
            mv.run_id = "scribbled"
        seen["latest"].clear()
