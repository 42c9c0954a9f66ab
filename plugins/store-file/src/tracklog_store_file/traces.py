"""The trace half of the file store (mixed into FileStore), in MLflow's layout::

    <experiment>/traces/<trace_id>/trace_info.yaml     the info, as MLflow writes it
                                  /tags/<key>           one file per tag
                                  /request_metadata/<key>
                                  /assessments/<assessment_id>.yaml
                                  /linked_runs/<run_id> (empty; runs linked afterwards)
                                  /artifacts/traces.json  (the spans, uploaded by the client)

Searches read the traces of the experiments asked and filter, sort and page them with
:mod:`tracklog.search`.
"""

from __future__ import annotations

import os
import re
import shutil
import threading
import uuid
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from tracklog import errors
from tracklog.entities import (
    Assessment,
    AssessmentKind,
    Experiment,
    LifecycleStage,
    PagedList,
    TraceInfo,
    now_ms,
)
from tracklog.search import compile_trace_filter, paginate, sort_traces
from tracklog.search.ast import Filter, OrderBy
from tracklog.server import tracecodec
from tracklog.stores import TRACE_ARTIFACT_LOCATION_TAG
from tracklog_store_file import fsio, yamlio

if TYPE_CHECKING:
    from tracklog.entities import RunInfo

TRACES = "traces"
TRACE_INFO = "trace_info.yaml"
TAGS = "tags"
METADATA = "request_metadata"
ASSESSMENTS = "assessments"
LINKED_RUNS = "linked_runs"
_TRACE_ID = re.compile(r"^[A-Za-z0-9][\w\-]{0,63}$", re.ASCII)
_ASSESSMENT_ID = re.compile(r"^[A-Za-z0-9][\w\-]{0,63}$", re.ASCII)



def _not_found(trace_id: str) -> errors.TracklogError:
    return errors.not_found(f"Trace with ID '{trace_id}' not found.")


def _assessment_not_found(trace_id: str, assessment_id: str) -> errors.TracklogError:
    return errors.not_found(
        f"Assessment with ID '{assessment_id}' not found for trace '{trace_id}'."
    )


class FileTracesMixin:
    """:class:`tracklog.stores.TraceStore` over the file store's directories; needs the
    host's ``root``, ``trash``, ``_locks``, ``_text``, ``_experiment_or_raise``,
    ``_active_experiment``, ``_active_run`` and ``_write_key``."""

    if TYPE_CHECKING:
        root: str
        trash: str
        _locks: fsio.EntityLocks
        _text: fsio.FileCache

        def _experiment_or_raise(self, experiment_id: str) -> tuple[Experiment, str]: ...
        def _active_experiment(self, experiment_id: str) -> tuple[Experiment, str]: ...
        def _active_run(self, run_id: str) -> tuple[RunInfo, str]: ...
        def _write_key(self, folder: str, kind: str, key: str, value: str,
                       field: str) -> None: ...

    _trace_exp: dict[str, str]
    _trace_exp_lock = threading.Lock()

    # -- locating and reading -------------------------------------------------------------

    def _trace_cache(self) -> dict[str, str]:
        cache = getattr(self, "_trace_exp", None)
        if cache is None:
            cache = self._trace_exp = {}
        return cache

    def _find_trace(self, trace_id: str) -> tuple[str, str] | None:
        """(experiment folder, trace folder) of a trace, active or in the trash."""
        if not isinstance(trace_id, str) or not _TRACE_ID.match(trace_id):
            return None
        with self._trace_exp_lock:
            exp_id = self._trace_cache().get(trace_id)
        candidates = []
        if exp_id is not None:
            candidates = [os.path.join(p, exp_id) for p in (self.root, self.trash)]
        for exp_folder in [*candidates, *self._all_experiment_folders()]:
            folder = os.path.join(exp_folder, TRACES, trace_id)
            if os.path.isfile(os.path.join(folder, TRACE_INFO)):
                with self._trace_exp_lock:
                    self._trace_cache()[trace_id] = os.path.basename(exp_folder)
                return exp_folder, folder
        return None

    def _all_experiment_folders(self) -> list[str]:
        out = []
        for parent in (self.root, self.trash):
            try:
                out += [e.path for e in os.scandir(parent)
                        if e.is_dir() and not e.name.startswith(".")]
            except FileNotFoundError:
                continue
        return out

    def _trace_or_raise(self, trace_id: str, for_write: bool = False) -> tuple[str, str]:
        found = self._find_trace(trace_id)
        if found is None:
            raise _not_found(trace_id)
        exp_folder, folder = found
        if for_write and os.path.dirname(exp_folder) == self.trash:
            raise errors.not_active("experiment", os.path.basename(exp_folder),
                                    LifecycleStage.DELETED.value)
        return exp_folder, folder

    def _read_trace(self, folder: str) -> TraceInfo:
        try:
            data = yamlio.loads(fsio.read_text(os.path.join(folder, TRACE_INFO)))
            # MLflow writes the duration as integer milliseconds under its own key.
            duration = data.pop("execution_duration_ms", None) if isinstance(data, dict) else None
            info = tracecodec.trace_info_from_json(data, TRACE_INFO)
            if isinstance(duration, int) and not isinstance(duration, bool):
                info.execution_duration = duration
        except (OSError, ValueError, yamlio.YAMLError, errors.TracklogError) as exc:
            raise errors.TracklogError(
                f"The trace in {os.path.basename(folder)!r} cannot be read: {exc}"
            ) from None
        info.tags = fsio.read_key_files(os.path.join(folder, TAGS), self._text)
        info.trace_metadata = fsio.read_key_files(os.path.join(folder, METADATA), self._text)
        info.assessments = self._read_assessments(folder)
        return info

    def _read_assessments(self, folder: str) -> list[Assessment]:
        base = os.path.join(folder, ASSESSMENTS)
        try:
            names = sorted(n for n in os.listdir(base) if n.endswith(".yaml"))
        except FileNotFoundError:
            return []
        found = [self._read_assessment(os.path.join(base, n)) for n in names]
        return sorted(found, key=lambda a: (a.create_time, a.assessment_id))

    @staticmethod
    def _read_assessment(path: str) -> Assessment:
        data = yamlio.loads(fsio.read_text(path))
        kind = tracecodec.assessment_kind(data, "assessment")
        made = tracecodec.assessment_from_json(data, data["trace_id"])
        made.assessment_id = data["assessment_id"]
        made.kind = kind
        made.create_time = tracecodec.timestamp_to_ms(data["create_time"], "create_time")
        made.last_update_time = tracecodec.timestamp_to_ms(data["last_update_time"],
                                                           "last_update_time")
        return made

    @staticmethod
    def _linked_runs(folder: str) -> list[str]:
        try:
            return os.listdir(os.path.join(folder, LINKED_RUNS))
        except FileNotFoundError:
            return []

    def _write_info(self, folder: str, info: TraceInfo) -> None:
        data = tracecodec.trace_info(TraceInfo(**{**vars(info), "tags": {},
                                                  "trace_metadata": {}, "assessments": []}))
        data.pop("execution_duration", None)  # MLflow's file store keeps milliseconds
        if info.execution_duration is not None:
            data["execution_duration_ms"] = info.execution_duration
        fsio.atomic_write(os.path.join(folder, TRACE_INFO), yamlio.dumps(data))

    # -- traces ---------------------------------------------------------------------------

    def start_trace(self, trace_info: TraceInfo) -> TraceInfo:
        info = trace_info
        exp, exp_folder = self._active_experiment(info.experiment_id)
        if not _TRACE_ID.match(info.trace_id):
            raise errors.invalid(f"Invalid trace id {info.trace_id!r}")
        with self._locks.hold(exp_folder):
            found = self._find_trace(info.trace_id)
            if found is not None and found[0] != exp_folder:
                raise errors.invalid(
                    f"Trace with ID '{info.trace_id}' already exists in experiment "
                    f"{os.path.basename(found[0])}."
                )
            folder = os.path.join(exp_folder, TRACES, info.trace_id)
            os.makedirs(folder, exist_ok=True)
            location = f"{exp.artifact_location.rstrip('/')}/traces/{info.trace_id}/artifacts"
            tags = {**info.tags, TRACE_ARTIFACT_LOCATION_TAG: location}
            for key in tags:
                fsio.check_slot(os.path.join(folder, TAGS), key, "tag key")
            for key in info.trace_metadata:
                fsio.check_slot(os.path.join(folder, METADATA), key, "metadata key")
            for key, value in tags.items():
                self._write_key(folder, TAGS, key, value, "tag key")
            for key, value in info.trace_metadata.items():
                self._write_key(folder, METADATA, key, value, "metadata key")
            self._write_info(folder, info)
            self._forget_keys(folder)
            return self._read_trace(folder)

    def _forget_keys(self, folder: str) -> None:
        for kind in (TAGS, METADATA):
            for key in fsio.list_keys(os.path.join(folder, kind)):
                self._text.forget(os.path.join(folder, kind, key))

    def get_trace_info(self, trace_id: str) -> TraceInfo:
        return self._read_trace(self._trace_or_raise(trace_id)[1])

    def batch_get_trace_infos(
        self, trace_ids: Sequence[str], experiment_ids: Sequence[str] | None = None
    ) -> list[TraceInfo]:
        out = []
        for trace_id in dict.fromkeys(trace_ids):
            found = self._find_trace(trace_id)
            if found is None:
                continue
            if experiment_ids is not None and os.path.basename(found[0]) not in experiment_ids:
                continue
            out.append(self._read_trace(found[1]))
        return out

    def _traces_of(self, exp_folder: str) -> list[tuple[TraceInfo, str]]:
        base = os.path.join(exp_folder, TRACES)
        try:
            entries = [e.path for e in os.scandir(base) if e.is_dir()]
        except FileNotFoundError:
            return []
        return [(self._read_trace(p), p) for p in entries
                if os.path.isfile(os.path.join(p, TRACE_INFO))]

    def search_traces(
        self,
        experiment_ids: Sequence[str],
        filter: Filter = (),
        max_results: int = 100,
        order_by: Sequence[OrderBy] = (),
        page_token: str | None = None,
    ) -> PagedList[TraceInfo]:
        links: dict[str, list[str]] = {}
        found: list[TraceInfo] = []
        for experiment_id in dict.fromkeys(experiment_ids):
            folder = os.path.join(self.root, str(experiment_id))
            if "/" in str(experiment_id) or not os.path.isdir(folder):
                continue  # unknown, or deleted (in the trash)
            for info, path in self._traces_of(folder):
                links[info.trace_id] = self._linked_runs(path)
                found.append(info)
        matches = compile_trace_filter(filter, lambda t: links.get(t.trace_id, ()))
        return paginate(sort_traces([t for t in found if matches(t)], order_by), max_results,
                        page_token)

    def experiment_trace_ids(self, experiment_id: str) -> Iterator[str]:
        """The trace folders of the experiment's folder, active or in the trash."""
        if not isinstance(experiment_id, str) or "/" in experiment_id \
                or experiment_id.startswith("."):
            return
        for parent in (self.root, self.trash):
            base = os.path.join(parent, experiment_id, TRACES)
            try:
                entries = list(os.scandir(base))
            except (FileNotFoundError, NotADirectoryError):
                continue
            for entry in entries:
                if _TRACE_ID.match(entry.name) and os.path.isfile(
                        os.path.join(entry.path, TRACE_INFO)):
                    yield entry.name
            return

    def set_trace_tag(self, trace_id: str, key: str, value: str) -> None:
        exp_folder, folder = self._trace_or_raise(trace_id, for_write=True)
        with self._locks.hold(exp_folder):
            self._write_key(folder, TAGS, key, value, "tag key")
            self._text.forget(fsio.key_path(os.path.join(folder, TAGS), key, "tag key"))

    def delete_trace_tag(self, trace_id: str, key: str) -> None:
        exp_folder, folder = self._trace_or_raise(trace_id, for_write=True)
        with self._locks.hold(exp_folder):
            path = fsio.key_path(os.path.join(folder, TAGS), key, "tag key")
            if not os.path.isfile(path):
                raise errors.not_found(f"No tag with name: {key} in trace with ID {trace_id}.")
            os.unlink(path)
            self._text.forget(path)

    def delete_traces(
        self,
        experiment_id: str,
        max_timestamp_millis: int | None = None,
        max_traces: int | None = None,
        trace_ids: Sequence[str] = (),
    ) -> int:
        _, exp_folder = self._active_experiment(experiment_id)
        with self._locks.hold(exp_folder):
            traces = self._traces_of(exp_folder)
            if trace_ids:
                wanted = set(trace_ids)
                doomed = [p for t, p in traces if t.trace_id in wanted]
            elif max_timestamp_millis is not None:
                old = sorted(((t.request_time, t.trace_id, p) for t, p in traces
                              if t.request_time <= max_timestamp_millis))
                doomed = [p for _, _, p in old[:max_traces]]
            else:
                return 0
            for path in doomed:
                shutil.rmtree(path)
                with self._trace_exp_lock:
                    self._trace_cache().pop(os.path.basename(path), None)
            return len(doomed)

    def link_traces_to_run(self, trace_ids: Sequence[str], run_id: str) -> None:
        self._active_run(run_id)
        folders = [self._trace_or_raise(t, for_write=True)[1] for t in dict.fromkeys(trace_ids)]
        for folder in folders:
            base = os.path.join(folder, LINKED_RUNS)
            os.makedirs(base, exist_ok=True)
            fsio.atomic_write(os.path.join(base, run_id), "")

    # -- assessments ----------------------------------------------------------------------

    def _assessment_path(self, folder: str, trace_id: str, assessment_id: str) -> str:
        path = os.path.join(folder, ASSESSMENTS, f"{assessment_id}.yaml")
        if not _ASSESSMENT_ID.match(assessment_id) or not os.path.isfile(path):
            raise _assessment_not_found(trace_id, assessment_id)
        return path

    def _write_assessment(self, folder: str, assessment: Assessment) -> None:
        base = os.path.join(folder, ASSESSMENTS)
        os.makedirs(base, exist_ok=True)
        fsio.atomic_write(os.path.join(base, f"{assessment.assessment_id}.yaml"),
                          yamlio.dumps(tracecodec.assessment(assessment)))

    def create_assessment(self, assessment: Assessment) -> Assessment:
        exp_folder, folder = self._trace_or_raise(assessment.trace_id, for_write=True)
        now = now_ms()
        made = Assessment(**{**vars(assessment), "assessment_id": f"a-{uuid.uuid4().hex}",
                             "create_time": now, "last_update_time": now})
        with self._locks.hold(exp_folder):
            self._write_assessment(folder, made)
        return self.get_assessment(made.trace_id, made.assessment_id)

    def get_assessment(self, trace_id: str, assessment_id: str) -> Assessment:
        _, folder = self._trace_or_raise(trace_id)
        return self._read_assessment(self._assessment_path(folder, trace_id, assessment_id))

    def update_assessment(
        self,
        trace_id: str,
        assessment_id: str,
        name: str | None = None,
        kind: AssessmentKind | None = None,
        value: dict[str, Any] | None = None,
        rationale: str | None = None,
        metadata: dict[str, str] | None = None,
    ) -> Assessment:
        exp_folder, folder = self._trace_or_raise(trace_id, for_write=True)
        with self._locks.hold(exp_folder):
            current = self._read_assessment(
                self._assessment_path(folder, trace_id, assessment_id))
            if name is not None:
                current.name = name
            if value is not None:
                if kind is not None and kind is not current.kind:
                    raise errors.invalid(
                        f"Assessment '{assessment_id}' is a {current.kind.value}; it cannot "
                        f"be given a value of {kind.value}."
                    )
                current.value = value
            if rationale is not None:
                current.rationale = rationale or None
            if metadata is not None:
                current.metadata = {**current.metadata, **metadata}
            current.last_update_time = max(now_ms(), current.create_time)
            self._write_assessment(folder, current)
        return self.get_assessment(trace_id, assessment_id)

    def delete_assessment(self, trace_id: str, assessment_id: str) -> None:
        exp_folder, folder = self._trace_or_raise(trace_id, for_write=True)
        with self._locks.hold(exp_folder):
            os.unlink(self._assessment_path(folder, trace_id, assessment_id))

