"""The file store's :class:`~tracklog.gc.PurgeStore`: deleted runs, experiments and logged
models found in the directory and removed for good (``tracklog gc``). A record's folder is
renamed out of sight first, then removed, so an interrupted purge never leaves a record
half there: the hidden folder is removed by the next purge."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Sequence

from tracklog import errors
from tracklog.entities import Experiment, LifecycleStage, LoggedModel, RunInfo, ViewType
from tracklog.gc import PurgeStore
from tracklog_store_file.paths import META, MODELS, int64_field, read_or_skip
from tracklog_store_file.rows import Rows

_GONE = ".purging-"


class Purging(Rows, PurgeStore):
    """Finding and removing deleted records."""

    def _remove(self, folder: str) -> None:
        hidden = os.path.join(os.path.dirname(folder), f"{_GONE}{uuid.uuid4().hex}")
        os.rename(folder, hidden)
        shutil.rmtree(hidden, ignore_errors=True)
        self._forget_moved()

    def _sweep_hidden(self, parent: str) -> None:
        try:
            entries = list(os.scandir(parent))
        except FileNotFoundError:
            return
        for entry in entries:
            if entry.name.startswith(_GONE):
                shutil.rmtree(entry.path, ignore_errors=True)

    def deleted_runs(
        self, deleted_before: int | None, experiment_ids: Sequence[str] | None = None
    ) -> list[RunInfo]:
        wanted = None if experiment_ids is None else {str(e) for e in experiment_ids}
        out = []
        for exp_folder in self._experiment_dirs(ViewType.ALL):
            exp_id = os.path.basename(exp_folder)
            if wanted is not None and exp_id not in wanted:
                continue
            for run_dir in self._run_dirs(exp_folder):
                info = read_or_skip("run", (run_dir, META), self._read_run_info, run_dir, exp_id)
                if info is None or info.lifecycle_stage != LifecycleStage.DELETED:
                    continue
                if deleted_before is not None:
                    when = int64_field(self._load_meta(run_dir), "deleted_time")
                    if when is not None and when > deleted_before:
                        continue
                out.append(info)
        return sorted(out, key=lambda i: i.run_id)

    def purge_run(self, run_id: str) -> None:
        try:
            info, folder = self._run_info_or_raise(run_id)
        except errors.TracklogError as exc:
            if exc.error_code == errors.ErrorCode.RESOURCE_DOES_NOT_EXIST:
                return
            raise
        if info.lifecycle_stage != LifecycleStage.DELETED:
            raise errors.invalid(f"Run {run_id} is not deleted; delete it first")
        with self._locks.hold(folder):
            self._remove(folder)
        self._sweep_hidden(os.path.dirname(folder))

    def deleted_experiments(self, deleted_before: int | None) -> list[Experiment]:
        out = []
        for folder in self._experiment_dirs(ViewType.DELETED_ONLY):
            exp = read_or_skip("experiment", (folder, META), self._read_experiment, folder)
            if exp is None:
                continue
            if deleted_before is not None and (exp.last_update_time or 0) > deleted_before:
                continue
            out.append(exp)
        return sorted(out, key=lambda e: int(e.experiment_id))

    def purge_experiment(self, experiment_id: str) -> None:
        experiment_id = self._check_experiment_id(experiment_id)
        if os.path.isfile(os.path.join(self.root, experiment_id, META)):
            raise errors.invalid(
                f"Experiment {experiment_id} is not deleted; delete it first")
        folder = os.path.join(self.trash, experiment_id)
        if not os.path.isdir(folder):
            return
        with self._locks.hold(self.root):
            self._remove(folder)
        self._sweep_hidden(self.trash)

    def deleted_logged_models(
        self, deleted_before: int | None, experiment_ids: Sequence[str] | None = None
    ) -> list[LoggedModel]:
        wanted = None if experiment_ids is None else {str(e) for e in experiment_ids}
        out = []
        for exp_folder in self._experiment_dirs(ViewType.ALL):
            if wanted is not None and os.path.basename(exp_folder) not in wanted:
                continue
            try:
                ids = [e.name for e in os.scandir(os.path.join(exp_folder, MODELS))
                       if e.is_dir() and not e.name.startswith(".")]
            except FileNotFoundError:
                continue
            for model_id in ids:
                try:
                    model = self.get_logged_model(model_id, allow_deleted=True)
                except errors.TracklogError:
                    continue
                if model.lifecycle_stage != LifecycleStage.DELETED:
                    continue
                if deleted_before is not None and model.last_updated_timestamp > deleted_before:
                    continue
                out.append(model)
        return sorted(out, key=lambda m: m.model_id)

    def purge_logged_model(self, model_id: str) -> None:
        try:
            model = self.get_logged_model(model_id, allow_deleted=True)
            _, folder = self._locate_model(model_id)
        except errors.TracklogError as exc:
            if exc.error_code == errors.ErrorCode.RESOURCE_DOES_NOT_EXIST:
                return
            raise
        if model.lifecycle_stage != LifecycleStage.DELETED:
            raise errors.invalid(f"Logged model {model_id} is not deleted; delete it first")
        with self._locks.hold(folder):
            self._remove(folder)
