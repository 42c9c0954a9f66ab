"""Experiments of the file store: ``<root>/<id>/meta.yaml``, deleted ones under ``.trash``."""

from __future__ import annotations

import os
import secrets
from collections.abc import Sequence
from typing import Any

from tracklog import errors
from tracklog.entities import (
    Experiment,
    ExperimentTag,
    LifecycleStage,
    PagedList,
    ViewType,
    now_ms,
)
from tracklog.search.ast import Filter, OrderBy
from tracklog.search.evaluate import compile_experiment_filter, sort_experiments
from tracklog.search.tokens import paginate
from tracklog.stores import DEFAULT_EXPERIMENT_ID, DEFAULT_EXPERIMENT_NAME
from tracklog.validation import check_no_nul
from tracklog_store_file import fsio
from tracklog_store_file.fsio import log
from tracklog_store_file.paths import META, TAGS, read_or_skip, to_uri
from tracklog_store_file.rows import Rows


class Experiments(Rows):
    """The experiment methods of the tracking contract."""

    def _ensure_default_experiment(self) -> None:
        # An existing directory is opened without writing anything (it may be read-only).
        if self._experiment_dir(DEFAULT_EXPERIMENT_ID) is None:
            with self._locks.hold(self.root):
                if self._experiment_dir(DEFAULT_EXPERIMENT_ID) is None:
                    self._write_new_experiment(
                        DEFAULT_EXPERIMENT_ID, DEFAULT_EXPERIMENT_NAME, None, ()
                    )

    def _all_experiments(self, view_type: ViewType = ViewType.ALL) -> list[Experiment]:
        found = []
        for folder in self._experiment_dirs(view_type):
            exp = read_or_skip(
                "experiment", (folder, META), self._read_experiment, folder
            )
            if exp is not None and exp.lifecycle_stage in view_type.stages():
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
            to_uri(artifact_location)
            if artifact_location
            else f"{self.artifact_root_uri}/{experiment_id}"
        )
        now = now_ms()
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
        meta["last_update_time"] = now_ms()
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
                meta = read_or_skip(
                    "run", (run_dir, META), self._load_meta, run_dir
                )
                if meta is None:
                    continue
                meta = dict(meta)
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
            now = now_ms()
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
            self._set_runs_stage(target, LifecycleStage.ACTIVE, now_ms())
            self._update_experiment_meta(target, lifecycle_stage=LifecycleStage.ACTIVE.value)
        self._forget_moved()

    def set_experiment_tag(self, experiment_id: str, tag: ExperimentTag) -> None:
        check_no_nul("tag.value", tag.value)
        _, folder = self._active_experiment(experiment_id)
        self._write_key(folder, TAGS, tag.key, tag.value, "tag key")

    def delete_experiment_tag(self, experiment_id: str, key: str) -> None:
        _, folder = self._active_experiment(experiment_id)
        self._delete_key(folder, TAGS, key, f"experiment {experiment_id}")
