"""Runs of the file store: ``<root>/<experiment_id>/<run_id>/meta.yaml``."""

from __future__ import annotations

import os
import uuid
from collections.abc import Sequence
from typing import Any

from tracklog import errors
from tracklog.entities import (
    LifecycleStage,
    Run,
    RunInfo,
    RunStatus,
    RunTag,
    now_ms,
)
from tracklog.names import generate_run_name
from tracklog.validation import check_int64, check_no_nul
from tracklog_store_file import fsio
from tracklog_store_file.paths import (
    ARTIFACTS,
    DROP,
    METRICS,
    PARAMS,
    RUN_NAME_TAG,
    RUN_STATUS_INT,
    SOURCE_TYPE_LOCAL,
    TAGS,
)
from tracklog_store_file.rows import Rows


class Runs(Rows):
    """Creating, reading, renaming, deleting and restoring runs."""

    def create_run(
        self,
        experiment_id: str,
        user_id: str,
        start_time: int | None,
        tags: Sequence[RunTag] = (),
        run_name: str | None = None,
    ) -> Run:
        start = now_ms() if start_time is None else check_int64(int(start_time), "start_time")
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
        meta: dict[str, Any] = {
            "artifact_uri": f"{exp.artifact_location.rstrip('/')}/{run_id}/{ARTIFACTS}",
            "deleted_time": None,
            "end_time": None,
            "entry_point_name": "",
            "experiment_id": exp.experiment_id,
            "lifecycle_stage": LifecycleStage.ACTIVE.value,
            "run_id": run_id,
            "run_name": run_name,
            "source_name": "",
            "source_type": SOURCE_TYPE_LOCAL,
            "source_version": "",
            "start_time": start,
            "status": RUN_STATUS_INT[RunStatus.RUNNING],
            "tags": [],
            "user_id": user_id or "",
        }
        self._write_meta(folder, meta)
        with self._cache_lock:
            self._run_exp[run_id] = exp.experiment_id
        return self.get_run(run_id)

    def get_run(self, run_id: str) -> Run:
        info, folder = self._run_info_or_raise(run_id)
        return self._full_run(info, folder)

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
            changes["status"] = RUN_STATUS_INT[RunStatus(run_status)]
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
                folder, lifecycle_stage=LifecycleStage.DELETED.value, deleted_time=now_ms()
            )

    def restore_run(self, run_id: str) -> None:
        _, folder = self._run_info_or_raise(run_id)
        with self._locks.hold(folder):
            self._rewrite_run_meta(
                folder, lifecycle_stage=LifecycleStage.ACTIVE.value, deleted_time=DROP
            )
