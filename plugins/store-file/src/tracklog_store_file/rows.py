"""The records every section of the file store reads: meta.yaml files, key files, and the
experiments, runs and edges they describe, found by id.

:class:`Rows` holds the store's state (root, caches, locks) and is the base of every
section class; the sections reach each other's records only through it.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from tracklog import errors
from tracklog.entities import (
    DatasetInput,
    Experiment,
    InputTag,
    LifecycleStage,
    LoggedModelInput,
    LoggedModelOutput,
    Metric,
    Run,
    RunData,
    RunInfo,
    RunInputs,
    RunOutputs,
    RunStatus,
    ViewType,
)
from tracklog.stores import TrackingStore
from tracklog_store_file import fsio, metrics, yamlio
from tracklog_store_file.paths import (
    DATASETS,
    DROP,
    EXP_ID,
    ID,
    INPUTS,
    META,
    METRICS,
    MODELS,
    OUTPUTS,
    PARAMS,
    RESERVED,
    RUN_NAME_TAG,
    RUN_STATUS,
    TAGS,
    TRASH,
    UNREADABLE,
    dataset_from,
    int64_field,
    read_or_skip,
    to_uri,
    unreadable,
)


class Rows(TrackingStore):
    """State and record reads shared by the sections of :class:`~.store.FileStore`."""

    def __init__(self, root_directory: str, artifact_root_uri: str | None = None) -> None:
        self.root = os.path.abspath(root_directory)
        self.trash = os.path.join(self.root, TRASH)
        if artifact_root_uri:
            self.artifact_root_uri = to_uri(artifact_root_uri).rstrip("/")
        else:
            self.artifact_root_uri = Path(self.root).as_uri()
        self._yaml = fsio.FileCache(fsio.parse_yaml)
        self._text = fsio.FileCache()
        self._metrics = metrics.MetricFiles()
        self._locks = fsio.EntityLocks()
        self._run_exp: dict[str, str] = {}
        self._model_exp: dict[str, str] = {}
        self._cache_lock = threading.Lock()
        os.makedirs(self.trash, exist_ok=True)

    # -- meta.yaml ---------------------------------------------------------------------

    def _load_meta(self, folder: str) -> dict[str, Any]:
        """The folder's meta.yaml as a dict; FileNotFoundError if absent, ValueError if bad."""
        data = self._yaml.load(os.path.join(folder, META))
        if not isinstance(data, dict):
            raise ValueError(f"{os.path.join(folder, META)} does not hold a mapping")
        return data

    def _write_meta(self, folder: str, data: dict[str, Any]) -> None:
        path = os.path.join(folder, META)
        fsio.atomic_write(path, yamlio.dumps(data))
        self._yaml.forget(path)

    # -- keys (params, tags) -----------------------------------------------------------

    def _write_key(self, folder: str, kind: str, key: str, value: str, field: str) -> None:
        base = os.path.join(folder, kind)
        path = fsio.key_path(base, key, field)
        os.makedirs(base, exist_ok=True)
        fsio.ensure_parent(path, base, field, key)
        if os.path.isdir(path):
            raise errors.invalid(f"Invalid {field} {key!r}: it is a prefix of another {field}")
        fsio.atomic_write(path, "" if value is None else str(value), tmp_dir=folder)

    def _delete_key(self, folder: str, kind: str, key: str, owner: str) -> None:
        base = os.path.join(folder, kind)
        path = fsio.key_path(base, key, "tag key")
        if not os.path.isfile(path):
            raise errors.not_found(f"No tag with key {key!r} in {owner}")
        os.unlink(path)

    def _key_values(self, folder: str, kind: str, keys: Iterable[str]) -> dict[str, str]:
        base = os.path.join(folder, kind)
        out = {}
        for key in keys:
            value = read_or_skip(
                "file", (base, key), self._key_text, base, key,
                absent=(FileNotFoundError, NotADirectoryError, IsADirectoryError,
                        errors.TracklogError),
                broken=(OSError, ValueError),
            )
            if value is not None:
                out[key] = value
        return out

    def _key_text(self, base: str, key: str) -> str:
        return self._text.load(fsio.key_path(base, key, "key"))

    def _latest_metrics(self, folder: str, keys: Iterable[str] | None = None) -> dict[str, Metric]:
        base = os.path.join(folder, METRICS)
        out = {}
        for key in fsio.list_keys(base) if keys is None else keys:
            points = read_or_skip(
                "metric", (base, key), self._metric_latest, base, key,
                absent=(), broken=(OSError, errors.TracklogError),
            )
            if points:
                out[key] = metrics.to_metric(key, points[0])
        return out

    def _metric_latest(self, base: str, key: str) -> list[metrics.Point]:
        return self._metrics.latest(fsio.key_path(base, key, "metric key"))

    # -- experiments -------------------------------------------------------------------

    def _experiment_dir(self, experiment_id: str) -> str | None:
        """The folder of an experiment (active or in the trash), None if there is none."""
        for parent in (self.root, self.trash):
            folder = os.path.join(parent, experiment_id)
            if os.path.isfile(os.path.join(folder, META)):
                return folder
        return None

    def _check_experiment_id(self, experiment_id: str) -> str:
        experiment_id = str(experiment_id)
        if not EXP_ID.match(experiment_id):
            raise errors.invalid(f"Invalid experiment id {experiment_id!r}")
        return experiment_id

    def _read_experiment(self, folder: str) -> Experiment:
        meta = self._load_meta(folder)
        exp_id = str(meta["experiment_id"])
        if exp_id != os.path.basename(folder):
            raise ValueError(f"experiment_id {exp_id!r} does not match its folder")
        stage = meta.get("lifecycle_stage") or LifecycleStage.ACTIVE.value
        return Experiment(
            experiment_id=exp_id,
            name=str(meta["name"]),
            artifact_location=str(meta.get("artifact_location") or ""),
            lifecycle_stage=LifecycleStage(stage),
            tags=fsio.read_key_files(os.path.join(folder, TAGS), self._text),
            creation_time=int64_field(meta, "creation_time"),
            last_update_time=int64_field(meta, "last_update_time"),
        )

    def _experiment_or_raise(self, experiment_id: str) -> tuple[Experiment, str]:
        experiment_id = self._check_experiment_id(experiment_id)
        folder = self._experiment_dir(experiment_id)
        if folder is None:
            raise errors.not_found(f"No Experiment with id={experiment_id} exists")
        try:
            return self._read_experiment(folder), folder
        except UNREADABLE as exc:
            raise unreadable(
                "Experiment", experiment_id, os.path.join(folder, META), exc
            ) from exc

    def _active_experiment(self, experiment_id: str) -> tuple[Experiment, str]:
        exp, folder = self._experiment_or_raise(experiment_id)
        if exp.lifecycle_stage != LifecycleStage.ACTIVE:
            raise errors.not_active("experiment", experiment_id, exp.lifecycle_stage)
        return exp, folder

    def _experiment_dirs(self, view_type: ViewType = ViewType.ALL) -> list[str]:
        parents = []
        if view_type in (ViewType.ACTIVE_ONLY, ViewType.ALL):
            parents.append(self.root)
        if view_type in (ViewType.DELETED_ONLY, ViewType.ALL):
            parents.append(self.trash)
        out = []
        for parent in parents:
            try:
                entries = list(os.scandir(parent))
            except FileNotFoundError:
                continue
            for entry in entries:
                # "models" at the root belongs to MLflow's file-based model registry.
                if entry.name.startswith(".") or (parent == self.root and entry.name == MODELS):
                    continue
                if EXP_ID.match(entry.name) and entry.is_dir():
                    out.append(entry.path)
        return out

    # -- runs and logged models --------------------------------------------------------

    def _run_dirs(self, exp_folder: str) -> list[str]:
        try:
            entries = list(os.scandir(exp_folder))
        except FileNotFoundError:
            return []
        return [
            e.path
            for e in entries
            if e.name not in RESERVED and not e.name.startswith(".") and e.is_dir()
        ]

    def _locate(
        self, what: str, entity_id: str, cache: dict[str, str], *sub: str
    ) -> tuple[str, str]:
        """``(experiment_id, folder)`` of a run or model (``sub`` is the folder between the
        experiment and the id); RESOURCE_DOES_NOT_EXIST if there is none."""
        if not isinstance(entity_id, str) or not ID.match(entity_id):
            raise errors.not_found(f"{what} with id={entity_id!r} not found")
        with self._cache_lock:
            exp_id = cache.get(entity_id)
        if exp_id is not None:
            for parent in (self.root, self.trash):
                folder = os.path.join(parent, exp_id, *sub, entity_id)
                if os.path.isfile(os.path.join(folder, META)):
                    return exp_id, folder
        for exp_folder in self._experiment_dirs(ViewType.ALL):
            folder = os.path.join(exp_folder, *sub, entity_id)
            if os.path.isfile(os.path.join(folder, META)):
                exp_id = os.path.basename(exp_folder)
                with self._cache_lock:
                    cache[entity_id] = exp_id
                return exp_id, folder
        raise errors.not_found(f"{what} with id={entity_id} not found")

    def _locate_run(self, run_id: str) -> tuple[str, str]:
        return self._locate("Run", run_id, self._run_exp)

    def _locate_model(self, model_id: str) -> tuple[str, str]:
        return self._locate("Logged model", model_id, self._model_exp, MODELS)

    def _read_run_info(self, folder: str, exp_id: str) -> RunInfo:
        meta = self._load_meta(folder)
        run_id = str(meta.get("run_id") or meta.get("run_uuid") or "")
        if run_id != os.path.basename(folder):
            raise ValueError(f"run_id {run_id!r} does not match its folder")
        if str(meta.get("experiment_id")) != exp_id:
            raise ValueError(f"experiment_id {meta.get('experiment_id')!r} does not match {exp_id}")
        status = meta.get("status", 1)
        status = RUN_STATUS[status] if isinstance(status, int) else RunStatus(str(status))
        name = meta.get("run_name")
        if not name:
            name_file = os.path.join(folder, TAGS, RUN_NAME_TAG)
            name = fsio.read_text(name_file) if os.path.isfile(name_file) else ""
        return RunInfo(
            run_id=run_id,
            experiment_id=exp_id,
            run_name=str(name),
            user_id=str(meta.get("user_id") or ""),
            status=status,
            start_time=int64_field(meta, "start_time"),
            end_time=int64_field(meta, "end_time"),
            artifact_uri=str(meta.get("artifact_uri") or ""),
            lifecycle_stage=LifecycleStage(meta.get("lifecycle_stage") or "active"),
        )

    def _run_info_or_raise(self, run_id: str) -> tuple[RunInfo, str]:
        exp_id, folder = self._locate_run(run_id)
        try:
            return self._read_run_info(folder, exp_id), folder
        except FileNotFoundError as exc:
            raise errors.not_found(f"Run with id={run_id} not found") from exc
        except UNREADABLE as exc:
            raise unreadable("Run", run_id, os.path.join(folder, META), exc) from exc

    def _active_run(self, run_id: str) -> tuple[RunInfo, str]:
        info, folder = self._run_info_or_raise(run_id)
        if info.lifecycle_stage != LifecycleStage.ACTIVE:
            raise errors.not_active("run", run_id, info.lifecycle_stage)
        return info, folder

    def _rewrite_run_meta(self, folder: str, **changes: Any) -> None:
        meta = dict(self._load_meta(folder))
        for key, value in changes.items():
            if value is DROP:
                meta.pop(key, None)
            else:
                meta[key] = value
        self._write_meta(folder, meta)

    def _forget_moved(self) -> None:
        with self._cache_lock:
            self._run_exp.clear()
            self._model_exp.clear()

    # -- run inputs and outputs --------------------------------------------------------

    def _edges(self, base: str, what: str, read: Callable[[dict], None]) -> None:
        """``read(meta)`` for each edge file under ``base`` in creation order, skipping
        edges that vanish and warning about unreadable ones."""
        try:
            entries = sorted(os.scandir(base), key=lambda e: (e.stat().st_mtime_ns, e.name))
        except FileNotFoundError:
            return
        for entry in entries:
            read_or_skip(what, (entry.path,), self._read_edge, entry.path, read)

    def _read_edge(self, folder: str, read: Callable[[dict], None]) -> None:
        read(self._load_meta(folder))

    def _read_inputs(self, folder: str, exp_folder: str) -> RunInputs:
        inputs = RunInputs()

        def read(edge: dict) -> None:
            if edge["source_type"] == "DATASET":
                ds = self._load_meta(os.path.join(exp_folder, DATASETS, edge["source_id"]))
                tags = tuple(InputTag(str(k), str(v)) for k, v in (edge.get("tags") or {}).items())
                inputs.dataset_inputs.append(DatasetInput(dataset_from(ds), tags))
            elif edge["source_type"] == "MODEL":
                inputs.model_inputs.append(LoggedModelInput(str(edge["source_id"])))

        self._edges(os.path.join(folder, INPUTS), "run input", read)
        return inputs

    def _read_outputs(self, folder: str) -> RunOutputs:
        outputs = RunOutputs()

        def read(edge: dict) -> None:
            if edge.get("destination_type") == "MODEL_OUTPUT":
                outputs.model_outputs.append(
                    LoggedModelOutput(str(edge["destination_id"]), int(edge.get("step") or 0))
                )

        self._edges(os.path.join(folder, OUTPUTS), "run output", read)
        return outputs

    def _full_run(self, info: RunInfo, folder: str) -> Run:
        exp_folder = os.path.dirname(folder)
        return Run(
            info=info,
            data=RunData(
                metrics=self._latest_metrics(folder),
                params=fsio.read_key_files(os.path.join(folder, PARAMS), self._text),
                tags=fsio.read_key_files(os.path.join(folder, TAGS), self._text),
            ),
            inputs=self._read_inputs(folder, exp_folder),
            outputs=self._read_outputs(folder),
        )

    # -- lifecycle ---------------------------------------------------------------------

    def close(self) -> None:
        self._yaml.clear()
        self._text.clear()
        self._metrics.clear()
        with self._cache_lock:
            self._run_exp.clear()
            self._model_exp.clear()
