"""Traces in MLflow's on-disk layout, both ways: MLflow's own file store reads what
tracklog wrote, and tracklog reads a trace MLflow's client recorded (in a subprocess, so
MLflow's global tracing state stays out of other tests)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tracklog.entities import Assessment, AssessmentKind, AssessmentSourceType, TraceInfo
from tracklog.search import parse_trace_filter
from tracklog_store_file.store import open_store

_READ = """
import json, sys, warnings
warnings.simplefilter("ignore")
from mlflow.store.tracking.file_store import FileStore
store = FileStore(sys.argv[2])
info = store.get_trace_info(sys.argv[1])
found = store.search_traces(locations=[sys.argv[3]])[0]
print(json.dumps({
    "request_time": info.request_time, "state": str(info.state), "tags": info.tags,
    "metadata": info.trace_metadata, "found": [t.trace_id for t in found],
    "assessments": [(a.name, a.feedback.value, a.source.source_type) for a in info.assessments],
}))
"""

_WRITE = """
import mlflow, sys
mlflow.set_experiment("made-by-mlflow")
@mlflow.trace(name="root")
def f(x):
    with mlflow.start_span("child"):
        return x + 1
f(1)
print(mlflow.get_last_active_trace_id())
"""


def _mlflow(script: str, root: Path, *args: str) -> str:
    env = {**os.environ, "MLFLOW_TRACKING_URI": root.as_uri(), "MLFLOW_ALLOW_FILE_STORE": "true",
           "MLFLOW_ENABLE_ASYNC_TRACE_LOGGING": "false", "MLFLOW_DISABLE_TELEMETRY": "true"}
    done = subprocess.run([sys.executable, "-c", script, *args], env=env, capture_output=True,
                          text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout.strip().splitlines()[-1]


def test_mlflow_reads_traces_tracklog_wrote(tmp_path: Path) -> None:
    root = tmp_path / "mlruns"
    store = open_store(str(root))
    exp = store.create_experiment("traces")
    trace = store.start_trace(TraceInfo(
        "tr-" + "b" * 32, exp, 1_700_000_000_123, 36, tags={"mlflow.traceName": "root"},
        trace_metadata={"mlflow.sourceRun": "r1"}))
    store.create_assessment(Assessment("", trace.trace_id, "quality", AssessmentKind.FEEDBACK,
                                       {"value": 0.5}, AssessmentSourceType.HUMAN, "me"))
    seen = json.loads(_mlflow(_READ, root, trace.trace_id, str(root), exp))
    assert seen["request_time"] == 1_700_000_000_123
    assert seen["state"].endswith("OK")
    assert seen["tags"]["mlflow.traceName"] == "root"
    assert seen["tags"]["mlflow.artifactLocation"] == trace.tags["mlflow.artifactLocation"]
    assert seen["metadata"] == {"mlflow.sourceRun": "r1"}
    assert seen["found"] == [trace.trace_id]
    assert seen["assessments"] == [["quality", 0.5, "HUMAN"]]


def test_tracklog_reads_a_trace_mlflow_recorded(tmp_path: Path) -> None:
    root = tmp_path / "mlruns"
    trace_id = _mlflow(_WRITE, root)
    store = open_store(str(root))
    info = store.get_trace_info(trace_id)
    assert info.state.value == "OK" and info.tags["mlflow.traceName"] == "root"
    assert info.execution_duration is not None
    exp = store.get_experiment_by_name("made-by-mlflow")
    assert exp is not None
    found = store.search_traces([exp.experiment_id], parse_trace_filter("name = 'root'"))
    assert [t.trace_id for t in found] == [trace_id]
    spans = Path(info.tags["mlflow.artifactLocation"].removeprefix("file://")) / "traces.json"
    assert {s["name"] for s in json.loads(spans.read_text())["spans"]} == {"root", "child"}
