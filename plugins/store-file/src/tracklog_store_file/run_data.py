"""Metrics, params and tags of runs: ``log_batch``, ``delete_tag`` and metric histories.

``<run>/metrics/<key>`` holds one line per point (see :mod:`tracklog_store_file.metrics`),
``<run>/params/<key>`` and ``<run>/tags/<key>`` one value each.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from tracklog import errors
from tracklog.entities import Metric, PagedList, Param, RunInfo, RunTag
from tracklog.search.tokens import paginate
from tracklog.validation import check_int64_column, check_no_nul
from tracklog_store_file import fsio, metrics
from tracklog_store_file.fsio import log
from tracklog_store_file.paths import METRICS, PARAMS, RUN_NAME_TAG, TAGS
from tracklog_store_file.rows import Rows


class RunData(Rows):
    """Writing a run's metrics, params and tags, and reading a metric's history."""

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
                self._append_model_metric(m, m.model_id, info)

    def _append_model_metric(self, m: Metric, model_id: str, info: RunInfo) -> None:
        try:
            _, model_folder = self._locate_model(model_id)
        except errors.TracklogError:
            log.warning("Metric %r names unknown logged model %s", m.key, model_id)
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
