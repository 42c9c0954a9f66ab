"""The file store: MLflow's ``mlruns`` directory layout, read and written by tracklog.

Layout (the same as MLflow's file store, so either tool opens the other's directory)::

    <root>/<experiment_id>/meta.yaml            experiment; tags/<key> one file per tag
    <root>/<experiment_id>/<run_id>/meta.yaml   run; metrics/<key>, params/<key>, tags/<key>
    <root>/<experiment_id>/<run_id>/inputs/<id>/meta.yaml    dataset or model input edge
    <root>/<experiment_id>/<run_id>/outputs/<model_id>/meta.yaml
    <root>/<experiment_id>/datasets/<md5(name+digest)>/meta.yaml
    <root>/<experiment_id>/models/<model_id>/meta.yaml       logged model; metrics, params, tags
    <root>/.trash/<experiment_id>/...            deleted experiments

Keys containing ``/`` become sub-folders. An entity folder without its ``meta.yaml`` is
absent: ``meta.yaml`` is always written last, atomically, so a crash mid-creation never
shows a half-made run. Each run and model folder holds a ``.lock`` file serialising writers
across threads and processes.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import threading
import time
import uuid
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from tracklog import errors
from tracklog.artifacts.local import local_path_of
from tracklog.entities import (
    Dataset,
    DatasetInput,
    Experiment,
    ExperimentTag,
    InputTag,
    LifecycleStage,
    LoggedModel,
    LoggedModelInput,
    LoggedModelOutput,
    LoggedModelParameter,
    LoggedModelStatus,
    LoggedModelTag,
    Metric,
    PagedList,
    Param,
    Run,
    RunData,
    RunInfo,
    RunInputs,
    RunOutputs,
    RunStatus,
    RunTag,
    ViewType,
)
from tracklog.names import generate_run_name
from tracklog.search.ast import Filter, Kind, OrderBy
from tracklog.search.evaluate import (
    compile_experiment_filter,
    compile_logged_model_filter,
    compile_run_filter,
    sort_experiments,
    sort_logged_models,
    sort_runs,
)
from tracklog.search.tokens import paginate
from tracklog.stores import (
    DEFAULT_EXPERIMENT_ID,
    DEFAULT_EXPERIMENT_NAME,
    TraceStore,
    TrackingStore,
)
from tracklog.validation import (
    INT64_MAX,
    INT64_MIN,
    check_int64,
    check_int64_column,
    check_no_nul,
)
from tracklog_store_file import fsio, metrics, yamlio
from tracklog_store_file.fsio import log
from tracklog_store_file.traces import FileTracesMixin

TRASH = ".trash"
META = "meta.yaml"
METRICS, PARAMS, TAGS, ARTIFACTS = "metrics", "params", "tags", "artifacts"
INPUTS, OUTPUTS, DATASETS, MODELS = "inputs", "outputs", "datasets", "models"
# Folders of an experiment that are not runs (MLflow's reserved names).
RESERVED = frozenset({TAGS, DATASETS, "traces", MODELS})
RUN_NAME_TAG = "mlflow.runName"

_ID = re.compile(r"^[A-Za-z0-9][\w\-]{0,255}$", re.ASCII)
_EXP_ID = re.compile(r"^[A-Za-z0-9][\w\-]{0,63}$", re.ASCII)

# MLflow persists enums as integers.
_RUN_STATUS = {
    1: RunStatus.RUNNING,
    2: RunStatus.SCHEDULED,
    3: RunStatus.FINISHED,
    4: RunStatus.FAILED,
    5: RunStatus.KILLED,
}
_RUN_STATUS_INT = {v: k for k, v in _RUN_STATUS.items()}
_MODEL_STATUS = {
    0: LoggedModelStatus.LOGGED_MODEL_STATUS_UNSPECIFIED,
    1: LoggedModelStatus.LOGGED_MODEL_PENDING,
    2: LoggedModelStatus.LOGGED_MODEL_READY,
    3: LoggedModelStatus.LOGGED_MODEL_UPLOAD_FAILED,
}
_MODEL_STATUS_INT = {v: k for k, v in _MODEL_STATUS.items()}
_SOURCE_TYPE_LOCAL = 4


def _now() -> int:
    return int(time.time() * 1000)


def _to_uri(location: str) -> str:
    """Plain local paths become ``file://`` URIs (as MLflow stores them); URIs stay."""
    scheme = urlparse(location).scheme
    if len(scheme) > 1:
        return location
    return Path(os.path.abspath(location)).as_uri()


def _unreadable(what: str, ident: str, path: str, exc: BaseException) -> errors.TracklogError:
    """A record that exists but cannot be read: the caller gets a 404 naming the record
    (searches leave it out the same way), the server log gets the file and the cause."""
    log.warning("Unreadable %s %s: %s", what.lower(), path, exc)
    # An OSError's text holds the server path: the caller gets its reason only.
    cause = (exc.strerror or type(exc).__name__) if isinstance(exc, OSError) else str(exc)
    return errors.not_found(
        f"{what} {ident} cannot be read: its record is malformed ({cause[:200]}). "
        "The server log names the file."
    )


def _int64_field(meta: dict[str, Any], key: str) -> int | None:
    """An optional integer field of a meta.yaml; ValueError if it is not an int64."""
    value = meta.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) \
            or not INT64_MIN <= value <= INT64_MAX:
        raise ValueError(f"{key} {value!r} is not a 64-bit integer")
    return value


def _md5(*parts: str) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    for part in parts:
        digest.update(part.encode("utf-8"))
    return digest.hexdigest()


class FileStore(FileTracesMixin, TrackingStore, TraceStore):
    """A :class:`~tracklog.stores.TrackingStore` (and trace store, see
    :mod:`tracklog_store_file.traces`) over a directory in MLflow's format.

    No model registry: the core answers those routes with NOT_IMPLEMENTED.
    """

    store_type = "FileStore"

    def __init__(self, root_directory: str, artifact_root_uri: str | None = None) -> None:
        self.root = os.path.abspath(root_directory)
        self.trash = os.path.join(self.root, TRASH)
        if artifact_root_uri:
            self.artifact_root_uri = _to_uri(artifact_root_uri).rstrip("/")
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
        # An existing directory is opened without writing anything (it may be read-only).
        if self._experiment_dir(DEFAULT_EXPERIMENT_ID) is None:
            with self._locks.hold(self.root):
                if self._experiment_dir(DEFAULT_EXPERIMENT_ID) is None:
                    self._write_new_experiment(
                        DEFAULT_EXPERIMENT_ID, DEFAULT_EXPERIMENT_NAME, None, ()
                    )

    def __repr__(self) -> str:
        return f"FileStore({self.root!r})"

    # -- low-level reads ---------------------------------------------------------------

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
        if not _EXP_ID.match(experiment_id):
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
            creation_time=_int64_field(meta, "creation_time"),
            last_update_time=_int64_field(meta, "last_update_time"),
        )

    def _experiment_or_raise(self, experiment_id: str) -> tuple[Experiment, str]:
        experiment_id = self._check_experiment_id(experiment_id)
        folder = self._experiment_dir(experiment_id)
        if folder is None:
            raise errors.not_found(f"No Experiment with id={experiment_id} exists")
        try:
            return self._read_experiment(folder), folder
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise _unreadable(
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
                if _EXP_ID.match(entry.name) and entry.is_dir():
                    out.append(entry.path)
        return out

    def _all_experiments(self, view_type: ViewType = ViewType.ALL) -> list[Experiment]:
        found = []
        for folder in self._experiment_dirs(view_type):
            try:
                exp = self._read_experiment(folder)
            except FileNotFoundError:
                continue  # being created, or not an experiment
            except (OSError, ValueError, KeyError, TypeError) as exc:
                log.warning(
                    "Skipping unreadable experiment %s: %s", os.path.join(folder, META), exc
                )
                continue
            if exp.lifecycle_stage in view_type.stages():
                found.append(exp)
        return found

    def _write_new_experiment(
        self,
        experiment_id: str,
        name: str,
        artifact_location: str | None,
        tags: Sequence[ExperimentTag],
    ) -> None:
        folder = os.path.join(self.root, experiment_id)
        os.makedirs(folder, exist_ok=True)
        os.makedirs(os.path.join(folder, TAGS), exist_ok=True)
        for tag in tags:
            self._write_key(folder, TAGS, tag.key, tag.value, "tag key")
        location = (
            _to_uri(artifact_location)
            if artifact_location
            else f"{self.artifact_root_uri}/{experiment_id}"
        )
        now = _now()
        self._write_meta(
            folder,
            {
                "artifact_location": location,
                "creation_time": now,
                "effective_trace_archival_retention": None,
                "experiment_id": experiment_id,
                "last_update_time": now,
                "lifecycle_stage": LifecycleStage.ACTIVE.value,
                "name": name,
                "trace_location": None,
                "workspace": "default",
            },
        )

    def _name_taken(self, name: str) -> Experiment | None:
        for exp in self._all_experiments(ViewType.ALL):
            if exp.name == name:
                return exp
        return None

    def create_experiment(
        self,
        name: str,
        artifact_location: str | None = None,
        tags: Sequence[ExperimentTag] = (),
    ) -> str:
        if not isinstance(name, str) or not name:
            raise errors.invalid("Invalid experiment name: must be a non-empty string")
        check_no_nul("name", name, artifact_location)
        check_no_nul("tags.value", *(t.value for t in tags))
        for tag in tags:
            fsio.key_path(self.root, tag.key, "tag key")
        with self._locks.hold(self.root):
            existing = self._name_taken(name)
            if existing is not None:
                state = " (deleted)" if existing.lifecycle_stage == LifecycleStage.DELETED else ""
                raise errors.already_exists(f"Experiment '{name}' already exists{state}.")
            while True:
                # 18 random digits without a leading zero, like MLflow's file store.
                experiment_id = str(10**17 + secrets.randbelow(9 * 10**17))
                try:
                    os.mkdir(os.path.join(self.root, experiment_id))
                    break
                except FileExistsError:
                    continue
            self._write_new_experiment(experiment_id, name, artifact_location, tags)
        return experiment_id

    def get_experiment(self, experiment_id: str) -> Experiment:
        return self._experiment_or_raise(experiment_id)[0]

    def get_experiment_by_name(self, name: str) -> Experiment | None:
        return None if "\x00" in name else self._name_taken(name)

    def search_experiments(
        self,
        view_type: ViewType = ViewType.ACTIVE_ONLY,
        max_results: int = 1000,
        filter: Filter = (),
        order_by: Sequence[OrderBy] = (),
        page_token: str | None = None,
    ) -> PagedList[Experiment]:
        matches = compile_experiment_filter(filter)
        found = [e for e in self._all_experiments(view_type) if matches(e)]
        return paginate(sort_experiments(found, order_by), max_results, page_token)

    def _update_experiment_meta(self, folder: str, **changes: Any) -> None:
        meta = dict(self._load_meta(folder))
        meta.pop("tags", None)
        meta.update(changes)
        meta["last_update_time"] = _now()
        self._write_meta(folder, meta)

    def rename_experiment(self, experiment_id: str, new_name: str) -> None:
        if not isinstance(new_name, str) or not new_name:
            raise errors.invalid("Invalid experiment name: must be a non-empty string")
        check_no_nul("new_name", new_name)
        with self._locks.hold(self.root):
            exp, folder = self._experiment_or_raise(experiment_id)
            if exp.lifecycle_stage != LifecycleStage.ACTIVE:
                raise errors.invalid(f"Cannot rename the deleted experiment {experiment_id}")
            if exp.name == new_name:
                return
            if self._name_taken(new_name) is not None:
                raise errors.already_exists(f"Experiment '{new_name}' already exists.")
            self._update_experiment_meta(folder, name=new_name)

    def _set_runs_stage(self, folder: str, stage: LifecycleStage, when: int) -> None:
        for run_dir in self._run_dirs(folder):
            with self._locks.hold(run_dir):
                try:
                    meta = dict(self._load_meta(run_dir))
                except FileNotFoundError:
                    continue
                except (OSError, ValueError) as exc:
                    log.warning("Skipping unreadable run %s: %s", os.path.join(run_dir, META), exc)
                    continue
                if meta.get("lifecycle_stage", LifecycleStage.ACTIVE.value) == stage.value:
                    continue
                meta["lifecycle_stage"] = stage.value
                if stage == LifecycleStage.DELETED:
                    meta["deleted_time"] = when
                else:
                    meta.pop("deleted_time", None)
                self._write_meta(run_dir, meta)

    def delete_experiment(self, experiment_id: str) -> None:
        experiment_id = self._check_experiment_id(experiment_id)
        if experiment_id == DEFAULT_EXPERIMENT_ID:
            # MLflow's words; 400, not its 500, which the client would retry.
            raise errors.invalid(
                f"Cannot delete the default experiment '{DEFAULT_EXPERIMENT_ID}'. "
                "This is an internally reserved experiment."
            )
        with self._locks.hold(self.root):
            folder = os.path.join(self.root, experiment_id)
            if not os.path.isfile(os.path.join(folder, META)):
                raise errors.not_found(f"No active experiment with id={experiment_id} exists")
            if os.path.exists(os.path.join(self.trash, experiment_id)):
                log.warning("Cannot delete experiment %s: %s already exists", experiment_id,
                            os.path.join(self.trash, experiment_id))
                raise errors.TracklogError(
                    f"Cannot delete experiment {experiment_id}: a deleted experiment with "
                    "that id already exists in the store's trash",
                    errors.ErrorCode.RESOURCE_CONFLICT,
                )
            now = _now()
            self._set_runs_stage(folder, LifecycleStage.DELETED, now)
            self._update_experiment_meta(folder, lifecycle_stage=LifecycleStage.DELETED.value)
            os.rename(folder, os.path.join(self.trash, experiment_id))
            fsio.fsync_dir(self.trash)
        self._forget_moved()

    def restore_experiment(self, experiment_id: str) -> None:
        experiment_id = self._check_experiment_id(experiment_id)
        with self._locks.hold(self.root):
            deleted = os.path.join(self.trash, experiment_id)
            if not os.path.isfile(os.path.join(deleted, META)):
                raise errors.not_found(f"No deleted experiment with id={experiment_id} exists")
            target = os.path.join(self.root, experiment_id)
            if os.path.exists(target):
                raise errors.already_exists(
                    f"Cannot restore experiment {experiment_id}: {target} already exists"
                )
            os.rename(deleted, target)
            fsio.fsync_dir(self.root)
            self._set_runs_stage(target, LifecycleStage.ACTIVE, _now())
            self._update_experiment_meta(target, lifecycle_stage=LifecycleStage.ACTIVE.value)
        self._forget_moved()

    def _forget_moved(self) -> None:
        with self._cache_lock:
            self._run_exp.clear()
            self._model_exp.clear()

    def set_experiment_tag(self, experiment_id: str, tag: ExperimentTag) -> None:
        check_no_nul("tag.value", tag.value)
        _, folder = self._active_experiment(experiment_id)
        self._write_key(folder, TAGS, tag.key, tag.value, "tag key")

    def delete_experiment_tag(self, experiment_id: str, key: str) -> None:
        _, folder = self._active_experiment(experiment_id)
        self._delete_key(folder, TAGS, key, f"experiment {experiment_id}")

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

    # -- runs --------------------------------------------------------------------------

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
        if not isinstance(entity_id, str) or not _ID.match(entity_id):
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

    def _read_run_info(self, folder: str, exp_id: str) -> RunInfo:
        meta = self._load_meta(folder)
        run_id = str(meta.get("run_id") or meta.get("run_uuid") or "")
        if run_id != os.path.basename(folder):
            raise ValueError(f"run_id {run_id!r} does not match its folder")
        if str(meta.get("experiment_id")) != exp_id:
            raise ValueError(f"experiment_id {meta.get('experiment_id')!r} does not match {exp_id}")
        status = meta.get("status", 1)
        status = _RUN_STATUS[status] if isinstance(status, int) else RunStatus(str(status))
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
            start_time=_int64_field(meta, "start_time"),
            end_time=_int64_field(meta, "end_time"),
            artifact_uri=str(meta.get("artifact_uri") or ""),
            lifecycle_stage=LifecycleStage(meta.get("lifecycle_stage") or "active"),
        )

    def _run_info_or_raise(self, run_id: str) -> tuple[RunInfo, str]:
        exp_id, folder = self._locate_run(run_id)
        try:
            return self._read_run_info(folder, exp_id), folder
        except FileNotFoundError as exc:
            raise errors.not_found(f"Run with id={run_id} not found") from exc
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise _unreadable("Run", run_id, os.path.join(folder, META), exc) from exc

    def _active_run(self, run_id: str) -> tuple[RunInfo, str]:
        info, folder = self._run_info_or_raise(run_id)
        if info.lifecycle_stage != LifecycleStage.ACTIVE:
            raise errors.not_active("run", run_id, info.lifecycle_stage)
        return info, folder

    def create_run(
        self,
        experiment_id: str,
        user_id: str,
        start_time: int | None,
        tags: Sequence[RunTag] = (),
        run_name: str | None = None,
    ) -> Run:
        start = _now() if start_time is None else check_int64(int(start_time), "start_time")
        exp, exp_folder = self._active_experiment(experiment_id)
        tag_name = next((t.value for t in tags if t.key == RUN_NAME_TAG), None)
        if run_name and tag_name and run_name != tag_name:
            raise errors.invalid(
                f"Both 'run_name' ({run_name!r}) and the '{RUN_NAME_TAG}' tag ({tag_name!r}) "
                "are given, with different values"
            )
        run_name = run_name or tag_name or generate_run_name()
        check_no_nul("run_name", run_name)
        check_no_nul("user_id", user_id)
        check_no_nul("tags.value", *(t.value for t in tags))
        all_tags = [t for t in tags if t.key != RUN_NAME_TAG] + [RunTag(RUN_NAME_TAG, run_name)]
        for tag in all_tags:
            fsio.key_path(exp_folder, tag.key, "tag key")
        run_id = uuid.uuid4().hex
        folder = os.path.join(exp_folder, run_id)
        os.mkdir(folder)
        for sub in (METRICS, PARAMS, ARTIFACTS, TAGS):
            os.mkdir(os.path.join(folder, sub))
        for tag in all_tags:
            self._write_key(folder, TAGS, tag.key, tag.value, "tag key")
        meta = {
            "artifact_uri": f"{exp.artifact_location.rstrip('/')}/{run_id}/{ARTIFACTS}",
            "deleted_time": None,
            "end_time": None,
            "entry_point_name": "",
            "experiment_id": exp.experiment_id,
            "lifecycle_stage": LifecycleStage.ACTIVE.value,
            "run_id": run_id,
            "run_name": run_name,
            "source_name": "",
            "source_type": _SOURCE_TYPE_LOCAL,
            "source_version": "",
            "start_time": start,
            "status": _RUN_STATUS_INT[RunStatus.RUNNING],
            "tags": [],
            "user_id": user_id or "",
        }
        self._write_meta(folder, meta)
        with self._cache_lock:
            self._run_exp[run_id] = exp.experiment_id
        return self.get_run(run_id)

    def _latest_metrics(self, folder: str, keys: Iterable[str] | None = None) -> dict[str, Metric]:
        base = os.path.join(folder, METRICS)
        out = {}
        for key in fsio.list_keys(base) if keys is None else keys:
            try:
                path = fsio.key_path(base, key, "metric key")
                points = self._metrics.latest(path)
            except (OSError, errors.TracklogError) as exc:
                log.warning("Skipping unreadable metric %s: %s", os.path.join(base, key), exc)
                continue
            if points:
                out[key] = metrics.to_metric(key, points[0])
        return out

    def _key_values(self, folder: str, kind: str, keys: Iterable[str]) -> dict[str, str]:
        base = os.path.join(folder, kind)
        out = {}
        for key in keys:
            try:
                out[key] = self._text.load(fsio.key_path(base, key, "key"))
            except (FileNotFoundError, NotADirectoryError, IsADirectoryError, errors.TracklogError):
                continue
            except (OSError, ValueError) as exc:
                log.warning("Skipping unreadable file %s: %s", os.path.join(base, key), exc)
        return out

    def _edges(self, base: str, what: str, read):
        """``read(entry, meta)`` for each edge file under ``base`` in creation order,
        skipping edges that vanish and warning about unreadable ones."""
        try:
            entries = sorted(os.scandir(base), key=lambda e: (e.stat().st_mtime_ns, e.name))
        except FileNotFoundError:
            return
        for entry in entries:
            try:
                read(self._load_meta(entry.path))
            except FileNotFoundError:
                continue
            except (OSError, ValueError, KeyError, TypeError) as exc:
                log.warning("Skipping unreadable %s %s: %s", what, entry.path, exc)

    def _read_inputs(self, folder: str, exp_folder: str) -> RunInputs:
        inputs = RunInputs()

        def read(edge: dict) -> None:
            if edge["source_type"] == "DATASET":
                ds = self._load_meta(os.path.join(exp_folder, DATASETS, edge["source_id"]))
                tags = tuple(InputTag(str(k), str(v)) for k, v in (edge.get("tags") or {}).items())
                inputs.dataset_inputs.append(DatasetInput(_dataset_from(ds), tags))
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

    def get_run(self, run_id: str) -> Run:
        info, folder = self._run_info_or_raise(run_id)
        return self._full_run(info, folder)

    def _rewrite_run_meta(self, folder: str, **changes: Any) -> None:
        meta = dict(self._load_meta(folder))
        for key, value in changes.items():
            if value is _DROP:
                meta.pop(key, None)
            else:
                meta[key] = value
        self._write_meta(folder, meta)

    def update_run_info(
        self,
        run_id: str,
        run_status: RunStatus | None = None,
        end_time: int | None = None,
        run_name: str | None = None,
    ) -> RunInfo:
        _, folder = self._active_run(run_id)
        changes: dict[str, Any] = {}
        if run_status is not None:
            changes["status"] = _RUN_STATUS_INT[RunStatus(run_status)]
        if end_time is not None:
            changes["end_time"] = check_int64(int(end_time), "end_time")
        check_no_nul("run_name", run_name)
        with self._locks.hold(folder):
            if run_name:
                changes["run_name"] = run_name
                self._write_key(folder, TAGS, RUN_NAME_TAG, run_name, "tag key")
            if changes:
                self._rewrite_run_meta(folder, **changes)
        return self._run_info_or_raise(run_id)[0]

    def delete_run(self, run_id: str) -> None:
        _, folder = self._run_info_or_raise(run_id)
        with self._locks.hold(folder):
            self._rewrite_run_meta(
                folder, lifecycle_stage=LifecycleStage.DELETED.value, deleted_time=_now()
            )

    def restore_run(self, run_id: str) -> None:
        _, folder = self._run_info_or_raise(run_id)
        with self._locks.hold(folder):
            self._rewrite_run_meta(
                folder, lifecycle_stage=LifecycleStage.ACTIVE.value, deleted_time=_DROP
            )

    def log_batch(
        self,
        run_id: str,
        metrics: Sequence[Metric] = (),
        params: Sequence[Param] = (),
        tags: Sequence[RunTag] = (),
    ) -> None:
        if metrics:
            check_int64_column([int(m.timestamp) for m in metrics], "metrics[{}].timestamp")
            check_int64_column([int(m.step) for m in metrics], "metrics[{}].step")
        check_no_nul("params.value", *(None if p.value is None else str(p.value) for p in params))
        check_no_nul("tags.value", *(t.value for t in tags))
        info, folder = self._active_run(run_id)
        base_metrics = os.path.join(folder, METRICS)
        base_params = os.path.join(folder, PARAMS)
        metric_paths = {
            key: fsio.key_path(base_metrics, key, "metric key")
            for key in dict.fromkeys(m.key for m in metrics)
        }
        param_paths = {p.key: fsio.key_path(base_params, p.key, "param key") for p in params}
        for tag in tags:
            fsio.key_path(folder, tag.key, "tag key")
        with self._locks.hold(folder):
            # Everything is checked before anything is written.
            new_params: dict[str, str] = {}
            for param in params:
                value = "" if param.value is None else str(param.value)
                path = param_paths[param.key]
                previous = new_params.get(param.key)
                if previous is None and os.path.isfile(path):
                    previous = fsio.read_text(path)
                if previous is not None and previous != value:
                    raise errors.invalid(
                        f"Changing param values is not allowed. Param with key='{param.key}' "
                        f"was already logged with value='{previous}' for run ID='{run_id}'. "
                        f"Attempted logging new value '{value}'."
                    )
                if not os.path.isfile(path):
                    new_params[param.key] = value
            for kind, field, keys in (
                (METRICS, "metric key", metric_paths),
                (PARAMS, "param key", param_paths),
                (TAGS, "tag key", [t.key for t in tags]),
            ):
                batch = set(keys)
                for key in batch:
                    fsio.check_slot(os.path.join(folder, kind), key, field)
                    parts = key.split("/")
                    if any("/".join(parts[:end]) in batch for end in range(1, len(parts))):
                        raise errors.invalid(
                            f"Invalid {field} {key!r}: a prefix of it is another {field} "
                            "of the same batch"
                        )
            for key, value in new_params.items():
                self._write_key(folder, PARAMS, key, value, "param key")
            self._append_metrics(folder, info, metrics, metric_paths)
            for tag in tags:
                self._write_key(folder, TAGS, tag.key, tag.value, "tag key")
                if tag.key == RUN_NAME_TAG and tag.value:
                    self._rewrite_run_meta(folder, run_name=tag.value)

    def _append_metrics(
        self, folder: str, info: RunInfo, points: Sequence[Metric], paths: dict[str, str]
    ) -> None:
        by_key: dict[str, list[Metric]] = {}
        for m in points:
            by_key.setdefault(m.key, []).append(m)
        base = os.path.join(folder, METRICS)
        for key, group in by_key.items():
            path = paths[key]
            fsio.ensure_parent(path, base, "metric key", key)
            text, added, idents = metrics.encode_new(group, self._metrics.seen(path))
            if text:
                where = fsio.append_lines(path, text)
                self._metrics.appended(path, added, idents, where)
        for m in points:
            if m.model_id:
                self._append_model_metric(m, info)

    def _append_model_metric(self, m: Metric, info: RunInfo) -> None:
        try:
            _, model_folder = self._locate_model(m.model_id)
        except errors.TracklogError:
            log.warning("Metric %r names unknown logged model %s", m.key, m.model_id)
            return
        base = os.path.join(model_folder, METRICS)
        path = fsio.key_path(base, m.key, "metric key")
        with self._locks.hold(model_folder):
            fsio.ensure_parent(path, base, "metric key", m.key)
            fsio.append_lines(path, metrics.model_line(m, info.run_id))

    def delete_tag(self, run_id: str, key: str) -> None:
        _, folder = self._active_run(run_id)
        with self._locks.hold(folder):
            self._delete_key(folder, TAGS, key, f"run {run_id}")

    def get_metric_history(
        self,
        run_id: str,
        metric_key: str,
        max_results: int | None = None,
        page_token: str | None = None,
    ) -> PagedList[Metric]:
        try:
            _, folder = self._locate_run(run_id)
            path = fsio.key_path(os.path.join(folder, METRICS), metric_key, "metric key")
            points, _ = metrics.read_points(path)
        except (errors.TracklogError, FileNotFoundError, NotADirectoryError, IsADirectoryError):
            points = []
        unique = {metrics.identity(p): p for p in points}
        ordered = sorted(unique.values(), key=lambda p: (p[0], p[2], metrics.order_key(p)[2]))
        history = [metrics.to_metric(metric_key, p) for p in ordered]
        if max_results is None:
            return PagedList(history, None)
        return paginate(history, max_results, page_token)

    def search_runs(
        self,
        experiment_ids: Sequence[str],
        filter: Filter = (),
        run_view_type: ViewType = ViewType.ACTIVE_ONLY,
        max_results: int = 1000,
        order_by: Sequence[OrderBy] = (),
        page_token: str | None = None,
    ) -> PagedList[Run]:
        # One predicate per comparison, attributes first (they need only meta.yaml), so
        # a run is dropped before the files of later comparisons are read.
        steps = sorted(
            ((c.ident.kind, c.ident.key, compile_run_filter((c,))) for c in filter),
            key=lambda step: step[0] != Kind.ATTRIBUTE,
        )
        order_keys = [(o.ident.kind, o.ident.key) for o in order_by]
        stages = run_view_type.stages()
        matched: list[Run] = []
        folders: dict[str, str] = {}
        for exp_id in dict.fromkeys(str(e) for e in experiment_ids):
            if not _EXP_ID.match(exp_id):
                continue
            exp_folder = self._experiment_dir(exp_id)
            if exp_folder is None:
                continue
            for folder in self._run_dirs(exp_folder):
                try:
                    info = self._read_run_info(folder, exp_id)
                except FileNotFoundError:
                    continue  # being created: meta.yaml comes last
                except (OSError, ValueError, KeyError, TypeError) as exc:
                    log.warning("Skipping unreadable run %s: %s", os.path.join(folder, META), exc)
                    continue
                if info.lifecycle_stage not in stages:
                    continue
                run = Run(info=info)
                loaded: set[tuple[Kind, str]] = set()
                if all(
                    self._load_for_search(run, folder, kind, key, loaded) and predicate(run)
                    for kind, key, predicate in steps
                ):
                    for kind, key in order_keys:
                        self._load_for_search(run, folder, kind, key, loaded)
                    matched.append(run)
                    folders[info.run_id] = folder
        page = paginate(sort_runs(matched, order_by), max_results, page_token)
        return PagedList([self._full_run(r.info, folders[r.info.run_id]) for r in page], page.token)

    def _load_for_search(
        self, run: Run, folder: str, kind: Kind, key: str, loaded: set[tuple[Kind, str]]
    ) -> bool:
        """Read into ``run`` the one value a comparison or ordering looks at."""
        if (kind, key) in loaded or kind == Kind.ATTRIBUTE:
            return True
        loaded.add((kind, key))
        if kind == Kind.METRIC:
            run.data.metrics.update(self._latest_metrics(folder, (key,)))
        elif kind == Kind.PARAM:
            run.data.params.update(self._key_values(folder, PARAMS, (key,)))
        elif kind == Kind.TAG:
            run.data.tags.update(self._key_values(folder, TAGS, (key,)))
        elif kind == Kind.DATASET and not any(k == Kind.DATASET for k, _ in loaded - {(kind, key)}):
            run.inputs = self._read_inputs(folder, os.path.dirname(folder))
        return True

    def log_inputs(
        self,
        run_id: str,
        datasets: Sequence[DatasetInput] = (),
        models: Sequence[LoggedModelInput] = (),
    ) -> None:
        info, folder = self._active_run(run_id)
        exp_folder = os.path.dirname(folder)
        with self._locks.hold(folder):
            for item in datasets:
                ds = item.dataset
                dataset_id = _md5(ds.name, ds.digest)
                ds_folder = os.path.join(exp_folder, DATASETS, dataset_id)
                if not os.path.isfile(os.path.join(ds_folder, META)):
                    os.makedirs(ds_folder, exist_ok=True)
                    self._write_meta(
                        ds_folder,
                        {
                            "digest": ds.digest,
                            "name": ds.name,
                            "profile": ds.profile,
                            "schema": ds.schema,
                            "source": ds.source,
                            "source_type": ds.source_type,
                        },
                    )
                self._write_edge(
                    folder,
                    INPUTS,
                    _md5(dataset_id, run_id),
                    {
                        "destination_id": dataset_id,
                        "destination_type": "RUN",
                        "source_id": dataset_id,
                        "source_type": "DATASET",
                        "tags": {t.key: t.value for t in item.tags},
                    },
                )
            for model in models:
                self._write_edge(
                    folder,
                    INPUTS,
                    _md5(model.model_id, run_id),
                    {
                        "destination_id": model.model_id,
                        "destination_type": "RUN",
                        "source_id": model.model_id,
                        "source_type": "MODEL",
                        "tags": {},
                    },
                )

    def _write_edge(self, folder: str, kind: str, name: str, data: dict[str, Any]) -> None:
        if not _ID.match(name):
            raise errors.invalid(f"Invalid model id {name!r}")
        edge = os.path.join(folder, kind, name)
        if os.path.isfile(os.path.join(edge, META)):
            return
        os.makedirs(edge, exist_ok=True)
        self._write_meta(edge, data)

    def log_outputs(self, run_id: str, models: Sequence[LoggedModelOutput]) -> None:
        check_int64_column([int(m.step) for m in models], "models[{}].step")
        _, folder = self._active_run(run_id)
        with self._locks.hold(folder):
            for model in models:
                # MLflow records the model id as both ends of the edge; readers use
                # destination_id.
                self._write_edge(
                    folder,
                    OUTPUTS,
                    model.model_id,
                    {
                        "destination_id": model.model_id,
                        "destination_type": "MODEL_OUTPUT",
                        "source_id": model.model_id,
                        "source_type": "RUN_OUTPUT",
                        "step": int(model.step),
                        "tags": {},
                    },
                )

    # -- logged models -----------------------------------------------------------------

    def _locate_model(self, model_id: str) -> tuple[str, str]:
        return self._locate("Logged model", model_id, self._model_exp, MODELS)

    def _read_model(self, folder: str, exp_id: str) -> LoggedModel:
        meta = self._load_meta(folder)
        model_id = str(meta["model_id"])
        if model_id != os.path.basename(folder) or str(meta["experiment_id"]) != exp_id:
            raise ValueError("model_id or experiment_id does not match its folder")
        status = meta.get("status", 1)
        status = _MODEL_STATUS[status] if isinstance(status, int) else LoggedModelStatus(status)
        base = os.path.join(folder, METRICS)
        model_metrics: list[Metric] = []
        for key in fsio.list_keys(base):
            try:
                points = self._metrics.latest(os.path.join(base, *key.split("/")), model=True)
            except OSError as exc:
                log.warning("Skipping unreadable metric %s: %s", os.path.join(base, key), exc)
                continue
            model_metrics.extend(metrics.to_metric(key, p, model_id) for p in points)
        return LoggedModel(
            model_id=model_id,
            experiment_id=exp_id,
            name=str(meta.get("name") or ""),
            artifact_location=str(meta.get("artifact_location") or ""),
            creation_timestamp=_int64_field(meta, "creation_timestamp") or 0,
            last_updated_timestamp=_int64_field(meta, "last_updated_timestamp") or 0,
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
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise _unreadable("Logged model", model_id, os.path.join(folder, META), exc) from exc
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
        for item in (*tags, *params):
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
        now = _now()
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
                "status": _MODEL_STATUS_INT[LoggedModelStatus.LOGGED_MODEL_PENDING],
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
        meta["last_updated_timestamp"] = _now()
        self._write_meta(folder, meta)

    def finalize_logged_model(self, model_id: str, status: LoggedModelStatus) -> LoggedModel:
        _, folder = self._model_or_raise(model_id)
        with self._locks.hold(folder):
            self._touch_model(folder, status=_MODEL_STATUS_INT[LoggedModelStatus(status)])
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
            if not _EXP_ID.match(exp_id):
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
                try:
                    model = self._read_model(entry.path, exp_id)
                except FileNotFoundError:
                    continue
                except (OSError, ValueError, KeyError, TypeError) as exc:
                    log.warning(
                        "Skipping unreadable model %s: %s", os.path.join(entry.path, META), exc
                    )
                    continue
                if model.lifecycle_stage == LifecycleStage.ACTIVE:
                    found.append(model)
        matches = compile_logged_model_filter(filter, datasets)
        ordered = sort_logged_models([m for m in found if matches(m)], order_by)
        return paginate(ordered, max_results, page_token)

    # -- lifecycle ---------------------------------------------------------------------

    def close(self) -> None:
        self._yaml.clear()
        self._text.clear()
        self._metrics.clear()
        with self._cache_lock:
            self._run_exp.clear()
            self._model_exp.clear()


_DROP = object()


def _referenced(filter: Filter, order_by: Sequence[OrderBy]) -> dict[Kind, set[str]]:
    """The metric, param, tag and dataset keys a search looks at (all it needs to read)."""
    needs: dict[Kind, set[str]] = {kind: set() for kind in Kind}
    for ident in [c.ident for c in filter] + [o.ident for o in order_by]:
        needs[ident.kind].add(ident.key)
    return needs


def _dataset_from(meta: dict[str, Any]) -> Dataset:
    return Dataset(
        name=str(meta["name"]),
        digest=str(meta["digest"]),
        source_type=str(meta.get("source_type") or ""),
        source=str(meta.get("source") or ""),
        schema=meta.get("schema"),
        profile=meta.get("profile"),
    )


def open_store(store_uri: str, default_artifact_root: str | None = None) -> FileStore:
    """The store for ``file:///abs``, ``file:relative`` or a plain path."""
    return FileStore(local_path_of(store_uri), default_artifact_root)
