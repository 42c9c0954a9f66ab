"""Inputs and outputs of runs: one edge folder per dataset or model under
``<run>/inputs/`` and ``<run>/outputs/``, datasets under ``<experiment>/datasets/``."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from tracklog import errors
from tracklog.entities import DatasetInput, LoggedModelInput, LoggedModelOutput
from tracklog.validation import check_int64_column
from tracklog_store_file.paths import DATASETS, ID, INPUTS, META, OUTPUTS, md5
from tracklog_store_file.rows import Rows


class Inputs(Rows):
    """``log_inputs`` and ``log_outputs``."""

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
                dataset_id = md5(ds.name, ds.digest)
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
                    md5(dataset_id, run_id),
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
                    md5(model.model_id, run_id),
                    {
                        "destination_id": model.model_id,
                        "destination_type": "RUN",
                        "source_id": model.model_id,
                        "source_type": "MODEL",
                        "tags": {},
                    },
                )

    def _write_edge(self, folder: str, kind: str, name: str, data: dict[str, Any]) -> None:
        if not ID.match(name):
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
