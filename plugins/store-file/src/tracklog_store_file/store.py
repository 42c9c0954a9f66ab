"""The file store: MLflow's ``mlruns`` directory layout, read and written by tracklog.

Layout (the same as MLflow's file store, so either tool opens the other's directory)::

    <root>/<experiment_id>/meta.yaml            experiment; tags/<key> one file per tag
    <root>/<experiment_id>/<run_id>/meta.yaml   run; metrics/<key>, params/<key>, tags/<key>
    <root>/<experiment_id>/<run_id>/inputs/<id>/meta.yaml    dataset or model input edge
    <root>/<experiment_id>/<run_id>/outputs/<model_id>/meta.yaml
    <root>/<experiment_id>/datasets/<md5(name+digest)>/meta.yaml
    <root>/<experiment_id>/models/<model_id>/meta.yaml       logged model; metrics, params, tags
    <root>/.trash/<experiment_id>/...            deleted experiments
    <root>/models/<name>/...                     model registry (see registry_files)
    <root>/<experiment_id>/traces/<trace_id>/... traces (see traces)

Keys containing ``/`` become sub-folders. An entity folder without its ``meta.yaml`` is
absent: ``meta.yaml`` is always written last, atomically, so a crash mid-creation never
shows a half-made run. Each run and model folder holds a ``.lock`` file serialising writers
across threads and processes.
"""

from __future__ import annotations

from tracklog.artifacts.local import local_path_of
from tracklog.stores import TraceStore
from tracklog_store_file.experiments import Experiments
from tracklog_store_file.importing import FileImport
from tracklog_store_file.inputs import Inputs
from tracklog_store_file.logged_models import LoggedModels
from tracklog_store_file.purging import Purging
from tracklog_store_file.registry import Registry
from tracklog_store_file.run_data import RunData
from tracklog_store_file.run_search import RunSearch
from tracklog_store_file.runs import Runs
from tracklog_store_file.traces import FileTracesMixin


class FileStore(
    FileTracesMixin, Experiments, Runs, RunData, RunSearch, Inputs, LoggedModels, Registry,
    Purging, FileImport, TraceStore,
):
    """A :class:`~tracklog.stores.TrackingStore`, :class:`~tracklog.stores.ModelRegistryStore`
    and :class:`~tracklog.stores.TraceStore` over a directory in MLflow's format.

    Each section of the contract lives in its own module; what they share (the layout,
    the store's state and the records they all read) is in :mod:`.paths` and :mod:`.rows`.
    Traces are kept in MLflow's layout too (:mod:`.traces`).
    """

    store_type = "FileStore"

    def __init__(self, root_directory: str, artifact_root_uri: str | None = None) -> None:
        super().__init__(root_directory, artifact_root_uri)
        self._ensure_default_experiment()

    def __repr__(self) -> str:
        return f"FileStore({self.root!r})"


def open_store(store_uri: str, default_artifact_root: str | None = None) -> FileStore:
    """The store for ``file:///abs``, ``file:relative`` or a plain path."""
    return FileStore(local_path_of(store_uri), default_artifact_root)
