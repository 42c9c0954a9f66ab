"""`tracklog migrate` from a real `mlflow server` (MLflow 3.17.2, installed by
tools/services/install-mlflow in an environment of its own) on SQLite and on PostgreSQL,
filled through the MLflow client: nested runs, NaN and ±inf metrics, 6,000-character
params, a deleted run, dataset inputs, logged models, a registry with aliases and
traces with assessments (one whose spans are only in MLflow's database, one whose spans
are only in a traces.json artifact). Migrated from the MLflow database directly and from
the server over HTTP, every record read back through the MLflow client from a tracklog server on
the result equals what the MLflow server answers. Also an MLflow file store into SQLite.
"""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.conftest import PG_ADMIN_URL
from tracklog.testing import service_unavailable
from tracklog.testing.server import free_port

ROOT = Path(__file__).resolve().parent.parent
TRACKLOG = str(Path(sys.executable).with_name("tracklog"))
T0 = 1_700_000_000_000


@dataclass
class MlflowServer:
    url: str
    database: str  # as tracklog migrate reads it
    artifacts: Path
    process: subprocess.Popen
    log: Path

    def wait(self) -> MlflowServer:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                service_unavailable("mlflow", f"server exited: {self.log.read_text()[-1500:]}")
            try:
                if httpx.get(self.url + "/health", timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        service_unavailable("mlflow", f"server not up in 120 s: {self.log.read_text()[-1500:]}")

    def stop(self) -> None:
        if self.process.poll() is None:
            # The server starts worker processes of its own: end the whole group.
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(15)


@pytest.fixture(scope="session")
def mlflow_bin() -> Path:
    """The directory of the full MLflow's executables, installed if missing."""
    try:
        done = subprocess.run([str(ROOT / "tools/services/install-mlflow")],
                              capture_output=True, text=True, timeout=900)
    except (OSError, subprocess.TimeoutExpired) as exc:
        service_unavailable("mlflow", f"tools/services/install-mlflow failed: {exc}")
    if done.returncode != 0:
        service_unavailable("mlflow", f"tools/services/install-mlflow failed: "
                                      f"{done.stderr[-1000:]}")
    return Path(done.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="session")
def mlflow_servers(mlflow_bin, tmp_path_factory, private_database
                   ) -> Iterator[dict[str, MlflowServer]]:
    """An MLflow server on SQLite and one on a fresh PostgreSQL database, started at
    once (each takes its time to build its schema)."""
    servers: dict[str, MlflowServer] = {}
    backends = {"sqlite": None, "postgresql": None}
    try:
        for backend in backends:
            tmp = tmp_path_factory.mktemp(f"mlflow-{backend}")
            if backend == "sqlite":
                uri = database = f"sqlite:///{tmp}/mlflow.db"
            else:
                uri = database = private_database(PG_ADMIN_URL, "postgresql")
            port = free_port()
            log = tmp / "server.log"
            env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
                   "MLFLOW_DISABLE_TELEMETRY": "true"}
            with open(log, "wb") as out:
                process = subprocess.Popen(
                    [str(mlflow_bin / "mlflow"), "server", "--backend-store-uri", uri,
                     "--artifacts-destination", str(tmp / "mlartifacts"), "--host",
                     "127.0.0.1", "--port", str(port), "--workers", "1"],
                    stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, cwd=tmp,
                    env=env, start_new_session=True)
            servers[backend] = MlflowServer(f"http://127.0.0.1:{port}", database,
                                            tmp / "mlartifacts", process, log)
        yield servers
    finally:
        for s in servers.values():
            s.stop()


def _fill(url: str, tmp: Path) -> dict[str, str]:
    """Everything the migration must carry, written through the MLflow client."""
    import mlflow
    from mlflow import MlflowClient
    from mlflow.entities import (
        Dataset,
        DatasetInput,
        InputTag,
        LoggedModelOutput,
        Metric,
        Param,
        RunTag,
    )

    mlflow.set_tracking_uri(url)
    client = MlflowClient(url)
    exp = client.create_experiment("alpha", tags={"team": "vision"})
    mlflow.set_experiment(experiment_id=exp)
    with mlflow.start_run(run_name="parent") as parent:
        with mlflow.start_run(run_name="child", nested=True) as child:
            rid = child.info.run_id
            values = [0.5, math.nan, math.inf, -math.inf, 0.25]
            client.log_batch(rid, metrics=[Metric("loss", v, T0 + i, i)
                                           for i, v in enumerate(values)]
                             + [Metric("curve", math.sin(s / 9), T0 + s, s)
                                for s in range(300)],
                             params=[Param("long", "é" + "x" * 5999), Param("lr", "0.1")],
                             tags=[RunTag("note", "ünïcode")])
            client.log_inputs(rid, datasets=[DatasetInput(
                Dataset("train", "d1g3st", "local", '{"uri": "/data/train"}', '{"cols": 3}',
                        '{"rows": 10}'), [InputTag("mlflow.data.context", "training")])])
            f = tmp / "weights.txt"
            f.write_text("w" * 5000)
            client.log_artifact(rid, str(f), "files")
    model = client.create_logged_model(exp, name="clf", source_run_id=rid,
                                       params={"depth": "3"}, tags={"flavor": "sk"},
                                       model_type="classifier")
    client.finalize_logged_model(model.model_id, "READY")
    client.log_outputs(rid, [LoggedModelOutput(model.model_id, 4)])
    client.log_metric(rid, "acc", 0.875, step=4, model_id=model.model_id)
    trashed = client.create_run(exp, run_name="trashed")
    client.log_param(trashed.info.run_id, "p", "gone")
    client.delete_run(trashed.info.run_id)
    client.create_registered_model("reg", tags={"owner": "ana"}, description="a model")
    v1 = client.create_model_version("reg", f"runs:/{rid}/model", rid, tags={"v": "1"})
    client.create_model_version("reg", f"models:/{model.model_id}", rid,
                                model_id=model.model_id)
    client.set_registered_model_alias("reg", "champion", v1.version)

    # A fresh tracer: the client's span exporter is bound to the tracking URI it was set up
    # with and remembers a server that refused span ingest (earlier tests' tracklog servers).
    mlflow.tracing.reset()

    @mlflow.trace(name="answer")
    def answer(x: int) -> int:
        return x * 2

    answer(21)
    trace_id = mlflow.get_last_active_trace_id()
    assert trace_id is not None
    mlflow.flush_trace_async_logging()
    # The spans reach the server on their own path: wait until it serves them.
    deadline = time.monotonic() + 30
    while not _has_spans(client, trace_id):
        assert time.monotonic() < deadline, "the MLflow server never served the spans"
        time.sleep(0.2)
    client.set_trace_tag(trace_id, "reviewed", "yes")
    mlflow.log_feedback(trace_id=trace_id, name="quality", value=0.8, rationale="fine")

    @mlflow.trace(name="archived")
    def archived(x: int) -> int:
        return x + 1

    archived(1)
    archived_id = mlflow.get_last_active_trace_id()
    assert archived_id is not None
    mlflow.flush_trace_async_logging()
    deadline = time.monotonic() + 30
    while not _has_spans(client, archived_id):
        assert time.monotonic() < deadline, "the MLflow server never served the spans"
        time.sleep(0.2)
    gone = client.create_experiment("gone")
    client.create_run(gone, run_name="in-gone")
    client.delete_experiment(gone)
    return {"experiment": exp, "run": rid, "parent": parent.info.run_id,
            "trace": trace_id, "archived": archived_id, "model": model.model_id}


def _spans_in_one_place(server: MlflowServer, ids: dict[str, str]) -> None:
    """Leave the first trace's spans only in MLflow's database (a traces.json the server
    may have written too removed) and move the archived one's into a traces.json
    artifact, as MLflow before 3 kept them (span rows and spans-location tag removed), so
    each way of reading spans must carry them alone."""
    import json

    import sqlalchemy as sa

    for spans_file in server.artifacts.glob(f"*/traces/{ids['trace']}/artifacts/*"):
        spans_file.unlink()
    engine = sa.create_engine(server.database)
    try:
        with engine.begin() as conn:
            t = {"t": ids["archived"]}
            spans = [json.loads(c) for c, in conn.execute(sa.text(
                "SELECT content FROM spans WHERE trace_id = :t "
                "ORDER BY start_time_unix_nano"), t)]
            assert spans
            [experiment] = {e for e, in conn.execute(sa.text(
                "SELECT experiment_id FROM trace_info WHERE request_id = :t"), t)}
            conn.execute(sa.text("DELETE FROM spans WHERE trace_id = :t"), t)
            conn.execute(sa.text("DELETE FROM trace_tags WHERE request_id = :t AND "
                                 "key = 'mlflow.trace.spansLocation'"), t)
    finally:
        engine.dispose()
    folder = server.artifacts / str(experiment) / "traces" / ids["archived"] / "artifacts"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "traces.json").write_text(json.dumps({"spans": spans}))


def _has_spans(client, trace_id: str) -> bool:
    try:
        return bool(client.get_trace(trace_id).data.spans)
    except Exception:
        return False


def _migrate(src: str, dst: str, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([TRACKLOG, "migrate", src, dst, *extra], capture_output=True,
                          text=True, timeout=300)


def _histories(client, run) -> dict[str, list[tuple[int, int, str]]]:
    """Every point; ±inf as the largest double, as SQL stores (MLflow's too) keep it."""
    top = sys.float_info.max
    return {k: sorted((m.timestamp, m.step, repr(min(max(m.value, -top), top)))
                      for m in client.get_metric_history(run.info.run_id, k))
            for k in run.data.metrics}


def _datasets(run) -> list[tuple]:
    inputs = run.inputs.dataset_inputs if run.inputs else []
    return [(d.dataset.name, d.dataset.digest, d.dataset.source, d.dataset.schema,
             [(t.key, t.value) for t in d.tags]) for d in inputs]


def _trace_view(t) -> tuple:
    managed = {"mlflow.artifactLocation", "mlflow.trace.spansLocation"}
    info = t.info
    return (info.trace_id, info.request_time, str(info.state),
            {k: v for k, v in info.tags.items() if k not in managed},
            dict(info.trace_metadata),
            sorted((a.assessment_id, a.name, repr(a.value), a.rationale)
                   for a in info.assessments))


def _assert_same(theirs_url: str, ours_url: str, ids: dict[str, str],
                 spans: bool) -> None:
    import mlflow
    from mlflow import MlflowClient
    from mlflow.entities import ViewType

    theirs, ours = MlflowClient(theirs_url), MlflowClient(ours_url)
    exps = theirs.search_experiments(view_type=ViewType.ALL)
    assert {e.name for e in exps} == {"Default", "alpha", "gone"}
    for e in exps:
        got_exp = ours.get_experiment(e.experiment_id)
        assert (got_exp.name, got_exp.lifecycle_stage, got_exp.tags) == (
            e.name, e.lifecycle_stage, e.tags)
    exp_ids = [e.experiment_id for e in exps]
    runs = theirs.search_runs(exp_ids, run_view_type=ViewType.ALL, max_results=1000)
    assert len(runs) == 4
    mine = {r.info.run_id: r for r in ours.search_runs(exp_ids, run_view_type=ViewType.ALL,
                                                       max_results=1000)}
    assert set(mine) == {r.info.run_id for r in runs}
    for r in runs:
        got = mine[r.info.run_id]
        assert got.info.to_proto() == r.info.to_proto()
        assert got.data.params == r.data.params
        assert got.data.tags == r.data.tags
        assert _histories(ours, got) == _histories(theirs, r)
        assert _datasets(got) == _datasets(r)
        assert [(o.model_id, o.step) for o in (got.outputs.model_outputs if got.outputs
                                               else [])] == [
            (o.model_id, o.step) for o in (r.outputs.model_outputs if r.outputs else [])]
    child = mine[ids["run"]]
    assert child.data.tags["mlflow.parentRunId"] == ids["parent"]
    assert len(child.data.params["long"]) == 6000
    assert _datasets(child) and child.outputs and child.outputs.model_outputs
    # MLflow's SQL store keeps ±inf as ±max double: the copy answers what MLflow does.
    loss = [m.value for m in ours.get_metric_history(ids["run"], "loss")]
    assert loss[0] == 0.5 and math.isnan(loss[1]) and abs(loss[2]) >= 1.7e308 > loss[3]
    assert [f.path for f in ours.list_artifacts(ids["run"], "files")] == [
        "files/weights.txt"]

    model, their_model = ours.get_logged_model(ids["model"]), theirs.get_logged_model(
        ids["model"])
    assert (model.name, model.status, model.params, model.tags, model.source_run_id,
            model.model_type) == (their_model.name, their_model.status, their_model.params,
                                  their_model.tags, their_model.source_run_id,
                                  their_model.model_type)
    assert [(m.key, m.value, m.step) for m in model.metrics or ()] == [
        (m.key, m.value, m.step) for m in their_model.metrics or ()]
    assert model.metrics

    reg, their_reg = ours.get_registered_model("reg"), theirs.get_registered_model("reg")
    assert (reg.tags, reg.description, reg.aliases) == (their_reg.tags, their_reg.description,
                                                        their_reg.aliases)
    for v in ("1", "2"):
        mv, their_mv = ours.get_model_version("reg", v), theirs.get_model_version("reg", v)
        assert (mv.source, mv.run_id, mv.status, mv.tags, mv.aliases,
                mv.creation_timestamp) == (their_mv.source, their_mv.run_id,
                                           their_mv.status, their_mv.tags, their_mv.aliases,
                                           their_mv.creation_timestamp)
    assert ours.get_model_version_by_alias("reg", "champion").version == "1"

    # The client reads a trace's mlflow-artifacts: location from the server its global
    # tracking URI names, whichever client asks.
    mlflow.set_tracking_uri(theirs_url)
    their_traces = theirs.search_traces(locations=[ids["experiment"]])
    their_spans = {t: [s.name for s in theirs.get_trace(ids[t]).data.spans]
                   for t in ("trace", "archived")}
    mlflow.set_tracking_uri(ours_url)
    traces = ours.search_traces(locations=[ids["experiment"]])
    assert [_trace_view(t) for t in traces] == [_trace_view(t) for t in their_traces]
    assert len(traces) == 2
    if spans:
        got_trace = ours.get_trace(ids["trace"])
        assert [s.name for s in got_trace.data.spans] == their_spans["trace"] == ["answer"]
        assert got_trace.data.spans[0].outputs == 42
        got_trace = ours.get_trace(ids["archived"])
        assert [s.name for s in got_trace.data.spans] == their_spans["archived"] == [
            "archived"]
        assert got_trace.data.spans[0].outputs == 2


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_mlflow_server_migrates_from_its_database_and_over_http(
        backend, mlflow_servers, tmp_path, serve):
    server = mlflow_servers[backend].wait()
    ids = _fill(server.url, tmp_path)
    _spans_in_one_place(server, ids)

    # From the database directly (artifacts read from the server's directory).
    direct = tmp_path / "direct"
    direct.mkdir()
    done = _migrate(server.database, f"sqlite:///{direct}/t.db", "--artifacts",
                    "--artifacts-destination", str(direct / "artifacts"),
                    "--source-artifacts-destination", str(server.artifacts))
    assert done.returncode == 0, done.stderr
    assert "MLflow database" in done.stderr
    assert "copied 2 experiments, 4 runs" in done.stdout  # Default is there already
    assert "1 logged models, 2 traces, 1 registered models (2 versions)" in done.stdout

    # Over HTTP (artifacts through the server's proxy).
    http = tmp_path / "http"
    http.mkdir()
    done = _migrate(server.url, f"sqlite:///{http}/t.db", "--artifacts",
                    "--artifacts-destination", str(http / "artifacts"))
    assert done.returncode == 0, done.stderr
    assert "tracking server" in done.stderr
    assert "1 logged models, 2 traces, 1 registered models (2 versions)" in done.stdout

    for where in (direct, http):
        ours = serve(where, f"sqlite:///{where}/t.db")
        try:
            _assert_same(server.url, ours.url, ids, spans=True)
        finally:
            ours.stop()

    # Again: everything is there, nothing is written twice.
    again = _migrate(server.url, f"sqlite:///{http}/t.db", "--artifacts",
                     "--artifacts-destination", str(http / "artifacts"))
    assert again.returncode == 0, again.stderr
    assert "copied 0 experiments, 0 runs" in again.stdout
    assert "skipped 3 experiments, 4 runs and 4 other records" in again.stdout
    assert "copied 0 files" in again.stdout


def test_mlflow_file_store_into_sqlite(tmp_path, serve, monkeypatch):
    import mlflow
    from mlflow import MlflowClient
    from mlflow.entities import LoggedModelStatus, Metric, ViewType

    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    src = f"file://{tmp_path}/mlruns"
    client = MlflowClient(src, registry_uri=src)
    exp = client.create_experiment("files", tags={"k": "v"})
    run = client.create_run(exp, run_name="first")
    rid = run.info.run_id
    client.log_batch(rid, metrics=[Metric("loss", v, T0 + i, i) for i, v in
                                   enumerate([1.0, math.nan, math.inf, -math.inf])],
                     params=[mlflow.entities.Param("long", "y" * 6000)])
    client.set_terminated(rid)
    client.delete_run(client.create_run(exp, run_name="second").info.run_id)
    client.create_registered_model("files-model", tags={"o": "1"})
    client.create_model_version("files-model", f"runs:/{rid}/m", rid)
    client.set_registered_model_alias("files-model", "best", "1")
    model = client.create_logged_model(exp, name="fm", source_run_id=rid,
                                       params={"a": "1"}, tags={"t": "x"})
    client.finalize_logged_model(model.model_id, "READY")
    mlflow.set_tracking_uri(src)
    try:
        mlflow.set_experiment(experiment_id=exp)

        @mlflow.trace(name="in-files")
        def step(x: int) -> int:
            return x + 1

        step(1)
        trace_id = mlflow.get_last_active_trace_id()
        assert trace_id is not None
        mlflow.flush_trace_async_logging()
        client.set_trace_tag(trace_id, "k", "v")
        mlflow.log_feedback(trace_id=trace_id, name="q", value=1.0)
    finally:
        mlflow.set_tracking_uri(None)  # type: ignore[arg-type]  # None resets it

    dst = f"sqlite:///{tmp_path}/out.db"
    done = _migrate(src, dst, "--new-experiment-ids")
    assert done.returncode == 0, done.stderr
    assert "copied 1 experiments, 2 runs" in done.stdout  # Default is found by name
    ours_server = serve(tmp_path, dst)
    try:
        ours = MlflowClient(ours_server.url)
        new_exp = ours.get_experiment_by_name("files")
        assert new_exp is not None and new_exp.tags.get("k") == "v"
        theirs = client.search_runs([exp], run_view_type=ViewType.ALL)
        mine = {r.info.run_id: r for r in ours.search_runs([new_exp.experiment_id],
                                                           run_view_type=ViewType.ALL)}
        assert set(mine) == {r.info.run_id for r in theirs}
        for r in theirs:
            got = mine[r.info.run_id]
            assert (got.info.run_name, got.info.status, got.info.lifecycle_stage,
                    got.info.start_time, got.info.end_time) == (
                r.info.run_name, r.info.status, r.info.lifecycle_stage, r.info.start_time,
                r.info.end_time)
            assert (got.data.params, got.data.tags) == (r.data.params, r.data.tags)
            assert _histories(ours, got) == _histories(client, r)
        got_model = ours.get_logged_model(model.model_id)
        assert (got_model.name, got_model.status, got_model.params, got_model.tags) == (
            "fm", LoggedModelStatus.READY, {"a": "1"}, {"t": "x"})
        assert got_model.experiment_id == new_exp.experiment_id
        [trace] = ours.search_traces(locations=[new_exp.experiment_id])
        assert trace.info.trace_id == trace_id and trace.info.tags["k"] == "v"
        assert [a.name for a in trace.info.assessments] == ["q"]
        assert [s.name for s in trace.data.spans] == ["in-files"]
        mv = ours.get_model_version_by_alias("files-model", "best")
        assert (mv.version, mv.run_id) == ("1", rid)
        assert ours.get_registered_model("files-model").tags == {"o": "1"}
    finally:
        ours_server.stop()
