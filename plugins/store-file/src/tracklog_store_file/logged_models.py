"""Logged models: ``<root>/<experiment_id>/models/<model_id>/`` with ``meta.yaml`` and
``metrics``, ``params`` and ``tags`` folders like a run's."""

from __future__ import annotations

import os
import uuid
from collections.abc import Sequence
from typing import Any

from tracklog import errors
from tracklog.entities import (
    LifecycleStage,
    LoggedModel,
    LoggedModelParameter,
    LoggedModelStatus,
    LoggedModelTag,
    Metric,
    PagedList,
    now_ms,
)
from tracklog.names import generate_run_name
from tracklog.search.ast import Filter, OrderBy
from tracklog.search.evaluate import compile_logged_model_filter, sort_logged_models
from tracklog.search.tokens import paginate
from tracklog_store_file import fsio, metrics
from tracklog_store_file.paths import (
    ARTIFACTS,
    EXP_ID,
    META,
    METRICS,
    MODEL_STATUS,
    MODEL_STATUS_INT,
    MODELS,
    PARAMS,
    TAGS,
    UNREADABLE,
    int64_field,
    read_or_skip,
    unreadable,
)
from tracklog_store_file.rows import Rows


class LoggedModels(Rows):
    """The logged-model methods of the tracking contract."""

    def _read_model(self, folder: str, exp_id: str) -> LoggedModel:
        meta = self._load_meta(folder)
        model_id = str(meta["model_id"])
        if model_id != os.path.basename(folder) or str(meta["experiment_id"]) != exp_id:
            raise ValueError("model_id or experiment_id does not match its folder")
        status = meta.get("status", 1)
        status = MODEL_STATUS[status] if isinstance(status, int) else LoggedModelStatus(status)
        base = os.path.join(folder, METRICS)
        model_metrics: list[Metric] = []
        for key in fsio.list_keys(base):
            points = read_or_skip(
                "metric", (base, key), self._metrics.latest,
                os.path.join(base, *key.split("/")), True, absent=(), broken=(OSError,),
            )
            if points is None:
                continue
            model_metrics.extend(metrics.to_metric(key, p, model_id) for p in points)
        return LoggedModel(
            model_id=model_id,
            experiment_id=exp_id,
            name=str(meta.get("name") or ""),
            artifact_location=str(meta.get("artifact_location") or ""),
            creation_timestamp=int64_field(meta, "creation_timestamp") or 0,
            last_updated_timestamp=int64_field(meta, "last_updated_timestamp") or 0,
            status=status,
            model_type=meta.get("model_type"),
            source_run_id=meta.get("source_run_id"),
            status_message=meta.get("status_message"),
            tags=fsio.read_key_files(os.path.join(folder, TAGS), self._text),
            params=fsio.read_key_files(os.path.join(folder, PARAMS), self._text),
            metrics=model_metrics,
            lifecycle_stage=LifecycleStage(meta.get("lifecycle_stage") or "active"),
        )

    def _model_or_raise(
        self, model_id: str, allow_deleted: bool = False
    ) -> tuple[LoggedModel, str]:
        exp_id, folder = self._locate_model(model_id)
        try:
            model = self._read_model(folder, exp_id)
        except FileNotFoundError as exc:
            raise errors.not_found(f"Logged model with id={model_id} not found") from exc
        except UNREADABLE as exc:
            raise unreadable("Logged model", model_id, os.path.join(folder, META), exc) from exc
        if model.lifecycle_stage == LifecycleStage.DELETED and not allow_deleted:
            raise errors.not_found(f"Logged model with id={model_id} not found")
        return model, folder

    def create_logged_model(
        self,
        experiment_id: str,
        name: str | None = None,
        source_run_id: str | None = None,
        tags: Sequence[LoggedModelTag] = (),
        params: Sequence[LoggedModelParameter] = (),
        model_type: str | None = None,
    ) -> LoggedModel:
        exp, exp_folder = self._active_experiment(experiment_id)
        keyed: list[LoggedModelTag | LoggedModelParameter] = [*tags, *params]
        for item in keyed:
            fsio.key_path(exp_folder, item.key, "key")
        model_id = f"m-{uuid.uuid4().hex}"
        folder = os.path.join(exp_folder, MODELS, model_id)
        os.makedirs(folder)
        for sub in (METRICS, PARAMS, TAGS):
            os.mkdir(os.path.join(folder, sub))
        for param in params:
            self._write_key(folder, PARAMS, param.key, param.value, "param key")
        for tag in tags:
            self._write_key(folder, TAGS, tag.key, tag.value, "tag key")
        now = now_ms()
        location = f"{exp.artifact_location.rstrip('/')}/{MODELS}/{model_id}/{ARTIFACTS}"
        self._write_meta(
            folder,
            {
                "artifact_location": location,
                "creation_timestamp": now,
                "experiment_id": exp.experiment_id,
                "last_updated_timestamp": now,
                "lifecycle_stage": LifecycleStage.ACTIVE.value,
                "model_id": model_id,
                "model_type": model_type,
                "name": name or generate_run_name(),
                "source_run_id": source_run_id,
                "status": MODEL_STATUS_INT[LoggedModelStatus.LOGGED_MODEL_PENDING],
                "status_message": None,
            },
        )
        with self._cache_lock:
            self._model_exp[model_id] = exp.experiment_id
        return self.get_logged_model(model_id)

    def get_logged_model(self, model_id: str, allow_deleted: bool = False) -> LoggedModel:
        return self._model_or_raise(model_id, allow_deleted)[0]

    def _touch_model(self, folder: str, **changes: Any) -> None:
        meta = dict(self._load_meta(folder))
        meta.update(changes)
        meta["last_updated_timestamp"] = now_ms()
        self._write_meta(folder, meta)

    def finalize_logged_model(self, model_id: str, status: LoggedModelStatus) -> LoggedModel:
        _, folder = self._model_or_raise(model_id)
        with self._locks.hold(folder):
            self._touch_model(folder, status=MODEL_STATUS_INT[LoggedModelStatus(status)])
        return self.get_logged_model(model_id)

    def set_logged_model_tags(self, model_id: str, tags: Sequence[LoggedModelTag]) -> None:
        _, folder = self._model_or_raise(model_id)
        for tag in tags:
            fsio.key_path(folder, tag.key, "tag key")
        with self._locks.hold(folder):
            for tag in tags:
                self._write_key(folder, TAGS, tag.key, tag.value, "tag key")

    def delete_logged_model_tag(self, model_id: str, key: str) -> None:
        _, folder = self._model_or_raise(model_id)
        with self._locks.hold(folder):
            self._delete_key(folder, TAGS, key, f"logged model {model_id}")

    def log_logged_model_params(
        self, model_id: str, params: Sequence[LoggedModelParameter]
    ) -> None:
        _, folder = self._model_or_raise(model_id)
        for param in params:
            fsio.key_path(folder, param.key, "param key")
        with self._locks.hold(folder):
            for param in params:
                self._write_key(folder, PARAMS, param.key, param.value, "param key")

    def delete_logged_model(self, model_id: str) -> None:
        _, folder = self._model_or_raise(model_id)
        with self._locks.hold(folder):
            self._touch_model(folder, lifecycle_stage=LifecycleStage.DELETED.value)

    def search_logged_models(
        self,
        experiment_ids: Sequence[str],
        filter: Filter = (),
        datasets: Sequence[dict[str, str]] = (),
        max_results: int = 50,
        order_by: Sequence[OrderBy] = (),
        page_token: str | None = None,
    ) -> PagedList[LoggedModel]:
        found: list[LoggedModel] = []
        for exp_id in dict.fromkeys(str(e) for e in experiment_ids):
            if not EXP_ID.match(exp_id):
                continue
            exp_folder = self._experiment_dir(exp_id)
            if exp_folder is None:
                continue
            try:
                entries = list(os.scandir(os.path.join(exp_folder, MODELS)))
            except FileNotFoundError:
                continue
            for entry in entries:
                if not entry.is_dir() or entry.name.startswith("."):
                    continue
                model = read_or_skip(
                    "model", (entry.path, META), self._read_model, entry.path, exp_id
                )
                if model is not None and model.lifecycle_stage == LifecycleStage.ACTIVE:
                    found.append(model)
        matches = compile_logged_model_filter(filter, datasets)
        ordered = sort_logged_models([m for m in found if matches(m)], order_by)
        return paginate(ordered, max_results, page_token)
