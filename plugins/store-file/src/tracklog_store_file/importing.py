"""The file store's :class:`~tracklog.importing.ImportStore`: experiments and runs
written with their own ids, times and lifecycle stages (``tracklog migrate`` into an
``mlruns`` directory). Logged models, traces and the registry are not imported here
(the store answers NOT_IMPLEMENTED, and a migration reports them as not copied)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING

from tracklog import errors
from tracklog.entities import Experiment, ExperimentTag, LifecycleStage, RunInfo, now_ms
from tracklog.importing import INCOMPLETE_TAG, ImportStore
from tracklog.validation import check_int64, check_no_nul
from tracklog_store_file.paths import (
    ARTIFACTS,
    DROP,
    ID,
    METRICS,
    PARAMS,
    RUN_STATUS_INT,
    SOURCE_TYPE_LOCAL,
    TAGS,
)
from tracklog_store_file.rows import Rows


class FileImport(Rows, ImportStore):
    if TYPE_CHECKING:  # provided by the other sections of the store
        def delete_experiment(self, experiment_id: str) -> None: ...
        def _name_taken(self, name: str) -> Experiment | None: ...
        def _write_new_experiment(self, experiment_id: str, name: str,
                                  artifact_location: str | None,
                                  tags: Sequence[ExperimentTag]) -> None: ...

    def import_experiment(self, experiment: Experiment) -> bool:
        eid = self._check_experiment_id(experiment.experiment_id)
        check_no_nul("name", experiment.name, experiment.artifact_location)
        with self._locks.hold(self.root):
            found = self._experiment_dir(eid)
            if found is not None:
                there = self._read_experiment(found)
                if there.name == experiment.name:
                    return False
                raise errors.invalid(
                    f"Experiment id {eid} is taken by {there.name!r} in the destination; "
                    f"cannot import {experiment.name!r} under it")
            if self._name_taken(experiment.name) is not None:
                raise errors.invalid(
                    f"An experiment named {experiment.name!r} already exists in the "
                    f"destination under another id")
            self._write_new_experiment(
                eid, experiment.name, experiment.artifact_location or None,
                [ExperimentTag(k, v) for k, v in experiment.tags.items()])
            folder = os.path.join(self.root, eid)
            meta = dict(self._load_meta(folder))
            now = now_ms()
            if experiment.artifact_location:  # kept as the source has it
                meta["artifact_location"] = experiment.artifact_location
            meta["creation_time"] = experiment.creation_time or now
            meta["last_update_time"] = experiment.last_update_time or now
            self._write_meta(folder, meta)
        if experiment.lifecycle_stage == LifecycleStage.DELETED:
            self.delete_experiment(eid)
        return True

    def import_run(self, info: RunInfo) -> None:
        check_no_nul("run", info.run_id, info.run_name, info.user_id, info.artifact_uri)
        try:
            _, folder = self._run_info_or_raise(info.run_id)
        except errors.TracklogError as exc:
            if exc.error_code != errors.ErrorCode.RESOURCE_DOES_NOT_EXIST:
                raise
        else:
            with self._locks.hold(folder):
                self._write_key(folder, TAGS, INCOMPLETE_TAG, "true", "tag key")
                self._rewrite_run_meta(folder, lifecycle_stage=LifecycleStage.ACTIVE.value,
                                       deleted_time=DROP)
            return
        _, exp_folder = self._experiment_or_raise(info.experiment_id)
        if not ID.match(info.run_id):
            raise errors.invalid(f"Invalid run id {info.run_id!r}")
        folder = os.path.join(exp_folder, info.run_id)
        os.makedirs(folder, exist_ok=True)
        for sub in (METRICS, PARAMS, ARTIFACTS, TAGS):
            os.makedirs(os.path.join(folder, sub), exist_ok=True)
        # The mark before meta.yaml: the run exists only once that is written.
        self._write_key(folder, TAGS, INCOMPLETE_TAG, "true", "tag key")
        self._write_meta(folder, {
            "artifact_uri": info.artifact_uri,
            "deleted_time": None,
            "end_time": None if info.end_time is None else check_int64(info.end_time,
                                                                      "end_time"),
            "entry_point_name": "",
            "experiment_id": info.experiment_id,
            "lifecycle_stage": LifecycleStage.ACTIVE.value,
            "run_id": info.run_id,
            "run_name": info.run_name,
            "source_name": "",
            "source_type": SOURCE_TYPE_LOCAL,
            "source_version": "",
            "start_time": info.start_time,
            "status": RUN_STATUS_INT[info.status],
            "tags": [],
            "user_id": info.user_id or "",
        })
        self._forget_moved()

    def run_experiments(self, run_ids: Sequence[str]) -> dict[str, str]:
        """The experiment folder each run's folder is found in (its meta names the same
        experiment, or the run cannot be read at all)."""
        out: dict[str, str] = {}
        for run_id in run_ids:
            try:
                out[run_id] = self._locate_run(run_id)[0]
            except errors.TracklogError as exc:
                if exc.error_code != "RESOURCE_DOES_NOT_EXIST":
                    raise
        return out

    def finish_import(self, run_id: str, lifecycle_stage: LifecycleStage) -> None:
        _, folder = self._run_info_or_raise(run_id)
        deleted = lifecycle_stage == LifecycleStage.DELETED
        with self._locks.hold(folder):
            self._rewrite_run_meta(folder, lifecycle_stage=str(lifecycle_stage),
                                   deleted_time=now_ms() if deleted else DROP)
            # The mark last: stopped before this, the run is found incomplete and redone.
            with contextlib.suppress(FileNotFoundError):
                os.unlink(os.path.join(folder, TAGS, INCOMPLETE_TAG))

