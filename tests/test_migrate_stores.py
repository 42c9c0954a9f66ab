"""`tracklog migrate` between tracklog stores: a file store (MLflow's mlruns layout) into
SQLite, read back equal through the store contract."""

from __future__ import annotations

import math
import subprocess
from dataclasses import replace
from pathlib import Path
from typing import Any

from tracklog.entities import Metric, Param, RunStatus, RunTag, ViewType
from tracklog.importing import checksum
from tracklog.plugins import resolve_store
from tracklog.testing.server import TRACKLOG


def _migrate(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([TRACKLOG, "migrate", *args], capture_output=True, text=True,
                          timeout=120)


def test_file_store_into_sqlite(tmp_path):
    src_uri = f"file://{tmp_path}/mlruns"
    src = resolve_store(src_uri, None)
    exp = src.create_experiment("files", None, [])
    run = src.create_run(exp, "ana", 1_000, [RunTag("k", "v")], run_name="first")
    rid = run.info.run_id
    src.log_batch(rid, metrics=[Metric("loss", math.nan if s == 3 else 1 / (s + 1), 1_000 + s, s)
                                for s in range(50)], params=[Param("lr", "0.1")])
    src.update_run_info(rid, RunStatus.FINISHED, 2_000)
    src.delete_run(src.create_run(exp, "ana", 1_500, [], run_name="second").info.run_id)

    dst_uri = f"sqlite:///{tmp_path}/out.db"
    # A file store's experiment ids are 18 digits: a SQL store keeps 32-bit ids.
    kept = _migrate(src_uri, dst_uri)
    assert kept.returncode != 0 and "--new-experiment-ids" in kept.stderr
    done = _migrate(src_uri, dst_uri, "--new-experiment-ids")
    assert done.returncode == 0, done.stderr
    assert "copied 1 experiments, 2 runs" in done.stdout
    dst = resolve_store(dst_uri, None)
    try:
        copied = dst.get_experiment_by_name("files")
        assert copied is not None
        new_id = copied.experiment_id
        for r in src.search_runs([exp], run_view_type=ViewType.ALL):
            got = dst.get_run(r.info.run_id)
            assert got.info == replace(r.info, experiment_id=new_id)
            assert got.data.params == r.data.params and got.data.tags == r.data.tags
            keys = sorted(r.data.metrics)
            assert checksum(got.data.params, {k: dst.get_metric_history(r.info.run_id, k)
                                              for k in keys}) == checksum(
                r.data.params, {k: src.get_metric_history(r.info.run_id, k) for k in keys})
    finally:
        dst.close()
        src.close()


def test_from_a_tracking_server_over_http(tmp_path, serve):
    from mlflow.tracking import MlflowClient

    server = serve(tmp_path, f"sqlite:///{tmp_path}/served.db")
    try:
        client = MlflowClient(server.url)
        exp = client.create_experiment("remote", tags={"k": "v"})
        rid = client.create_run(exp, run_name="r").info.run_id
        client.log_batch(rid, metrics=[
            __import__("mlflow").entities.Metric("loss", float(s), 1000 + s, s)
            for s in range(30_000 // 30)])
        client.log_param(rid, "p", "x")
        client.log_metric(rid, "nan", math.nan)
        client.delete_run(client.create_run(exp, run_name="d").info.run_id)
        dst_uri = f"sqlite:///{tmp_path}/copy.db"
        done = _migrate(server.url, dst_uri)
        assert done.returncode == 0, done.stderr
        assert "tracking server" in done.stderr
        assert "copied 1 experiments, 2 runs" in done.stdout and "verified 2 runs" in done.stdout
        dst = resolve_store(dst_uri, None)
        try:
            got = dst.get_run(rid)
            assert got.data.params == {"p": "x"}
            assert len(list(dst.get_metric_history(rid, "loss"))) == 1000
            assert math.isnan(got.data.metrics["nan"].value)
            assert dst.get_experiment(exp).tags["k"] == "v"
        finally:
            dst.close()
    finally:
        server.stop()


def test_hook_migration_source(tmp_path):
    """A plugin's migration_source is asked first: what it offers is the source."""
    from click.testing import CliRunner

    from tracklog.cli import cli
    from tracklog.importing import StoreSource
    from tracklog.plugins import hookimpl, register_plugin, unregister_plugin

    held = resolve_store(f"sqlite:///{tmp_path}/held.db", None)
    exp = held.create_experiment("offered")
    held.create_run(exp, "u", 1, run_name="r")
    held.close()

    class Offers:
        @hookimpl
        def migration_source(self, uri):
            if uri == "legacy:thing":
                return StoreSource(resolve_store(f"sqlite:///{tmp_path}/held.db", None), uri)
            return None

    register_plugin(Offers(), "offers")
    try:
        out = CliRunner().invoke(cli, ["migrate", "legacy:thing", f"sqlite:///{tmp_path}/o.db"])
    finally:
        unregister_plugin("offers")
    assert out.exit_code == 0, out.output
    assert "copied 1 experiments, 1 runs" in out.output


def test_bad_input_is_one_line_and_writes_nothing(tmp_path):
    """Nonsense sources and destinations, an unreachable server, and a destination whose
    experiment ids belong to other experiments: one line on stderr, a non-zero exit,
    nothing created or written."""
    src_uri = f"sqlite:///{tmp_path}/src.db"
    src = resolve_store(src_uri, None)
    exp = src.create_experiment("alpha")
    src.create_run(exp, "u", 1, run_name="r")
    src.close()
    out = str(tmp_path / "out.db")
    for args in (("nonsense", f"sqlite:///{out}"), ("foo://bar", f"sqlite:///{out}"),
                 (f"sqlite:///{tmp_path}/typo.db", f"sqlite:///{out}"),
                 ("http://127.0.0.1:9", f"sqlite:///{out}"),
                 (src_uri, "nonsense"), (src_uri, "bogus://x")):
        done = _migrate(*args)
        assert done.returncode != 0, args
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("Error: "), (args, done.stderr)
    assert not (tmp_path / "typo.db").exists() and not Path(out).exists()
    assert not Path("nonsense").exists()

    # The destination holds another experiment under the source's id.
    dst_uri = f"sqlite:///{tmp_path}/taken.db"
    dst = resolve_store(dst_uri, None)
    other = dst.create_experiment("other")
    assert other == exp
    dst.close()
    done = _migrate(src_uri, dst_uri)
    assert done.returncode != 0
    started, line = done.stderr.strip().splitlines()
    assert started.startswith("Migrating ")
    assert line.startswith(f"Error: Experiment id {exp} is taken by 'other'")
    dst = resolve_store(dst_uri, None)
    try:
        assert {e.name for e in dst.search_experiments(ViewType.ALL)} == {"Default", "other"}
        assert list(dst.search_runs([exp], run_view_type=ViewType.ALL)) == []
    finally:
        dst.close()
    # With new ids it goes in beside it.
    moved = _migrate(src_uri, dst_uri, "--new-experiment-ids")
    assert moved.returncode == 0, moved.stderr
    assert "copied 1 experiments, 1 runs" in moved.stdout


def test_sqlite_into_a_file_store(tmp_path):
    """Into MLflow's mlruns layout: experiments and runs with their ids; what the file
    store cannot import with ids (logged models) is named as not copied."""
    src_uri = f"sqlite:///{tmp_path}/src.db"
    src = resolve_store(src_uri, None)
    exp = src.create_experiment("to-files", tags=[])
    run = src.create_run(exp, "ana", 1_000, [RunTag("k", "v")], run_name="r")
    rid = run.info.run_id
    src.log_batch(rid, metrics=[Metric("loss", math.nan if s == 2 else s / 10, 1_000 + s, s)
                                for s in range(20)], params=[Param("p", "1")])
    src.update_run_info(rid, RunStatus.FINISHED, 3_000)
    gone = src.create_run(exp, "ana", 1_500, [], run_name="gone").info.run_id
    src.delete_run(gone)
    src.create_logged_model(exp, name="m")
    src.close()
    dst_uri = f"file://{tmp_path}/mlruns"
    done = _migrate(src_uri, dst_uri)
    assert done.returncode == 0, done.stderr
    assert "copied 1 experiments, 2 runs" in done.stdout
    assert "not copied: logged models" in done.stderr
    src, dst = resolve_store(src_uri, None), resolve_store(dst_uri, None)
    try:
        for r in src.search_runs([exp], run_view_type=ViewType.ALL):
            got = dst.get_run(r.info.run_id)
            assert got.info == r.info
            assert (got.data.params, got.data.tags) == (r.data.params, r.data.tags)
            keys = sorted(r.data.metrics)
            assert checksum(got.data.params, {k: dst.get_metric_history(r.info.run_id, k)
                                              for k in keys}) == checksum(
                r.data.params, {k: src.get_metric_history(r.info.run_id, k) for k in keys})
        assert dst.get_experiment(exp).name == "to-files"
    finally:
        src.close()
        dst.close()
    again = _migrate(src_uri, dst_uri)
    assert again.returncode == 0 and "skipped 2 experiments, 2 runs" in again.stdout


def test_deleted_logged_models_are_copied_with_their_stage(tmp_path):
    """From a tracklog store: a deleted logged model keeps its stage (and its params and
    tags), and a deleted experiment's logged models come with it."""
    from tracklog.entities import LifecycleStage, LoggedModelParameter, LoggedModelTag

    src_uri = f"sqlite:///{tmp_path}/src.db"
    src = resolve_store(src_uri, str(tmp_path / "src-artifacts"))
    exp = src.create_experiment("kept")
    src.create_logged_model(exp, name="live")
    trashed = src.create_logged_model(exp, name="trashed",
                                      params=[LoggedModelParameter("depth", "3")],
                                      tags=[LoggedModelTag("flavor", "sk")])
    src.delete_logged_model(trashed.model_id)
    gone = src.create_experiment("gone")
    in_gone = src.create_logged_model(gone, name="in-gone")
    src.delete_experiment(gone)
    src.close()

    dst_uri = f"sqlite:///{tmp_path}/dst.db"
    done = _migrate(src_uri, dst_uri)
    assert done.returncode == 0, done.stderr
    assert "3 logged models" in done.stdout and "verified 0 runs, 3 logged" in done.stdout
    dst = resolve_store(dst_uri, None)
    try:
        got = dst.get_logged_model(trashed.model_id, allow_deleted=True)
        assert got.lifecycle_stage == LifecycleStage.DELETED
        assert (got.name, got.params, got.tags) == ("trashed", {"depth": "3"},
                                                    {"flavor": "sk"})
        assert [m.name for m in dst.search_logged_models([exp])] == ["live"]
        assert dst.get_logged_model(in_gone.model_id).name == "in-gone"
        assert dst.get_experiment(gone).lifecycle_stage == LifecycleStage.DELETED
    finally:
        dst.close()
    again = _migrate(src_uri, dst_uri)
    assert again.returncode == 0 and "3 other records already there" in again.stdout


def test_a_run_id_taken_by_another_experiment_is_named_and_the_rest_go_on(tmp_path):
    """A destination run under another experiment with a source run's id: one line
    naming the run and both experiments, that run left alone, the others copied."""
    src_uri = f"sqlite:///{tmp_path}/src.db"
    src = resolve_store(src_uri, None)
    exp = src.create_experiment("alpha")
    runs = [src.create_run(exp, "u", 1_000 + i, [], run_name=f"r{i}").info.run_id
            for i in range(3)]
    src.log_batch(runs[1], params=[Param("p", "source")])
    src.close()
    # The destination holds the second run's id, under an experiment of its own.
    from tracklog.entities import Run, RunData
    from tracklog.importing import ImportedRun, ImportStore

    dst_uri = f"sqlite:///{tmp_path}/dst.db"
    dst = resolve_store(dst_uri, None)
    other = dst.create_experiment("other")
    src = resolve_store(src_uri, None)
    info = replace(src.get_run(runs[1]).info, experiment_id=other)
    src.close()
    assert isinstance(dst, ImportStore)
    dst.import_runs([ImportedRun(Run(info, RunData(params={"p": "theirs"})), [])])
    dst.close()

    done = _migrate(src_uri, dst_uri, "--new-experiment-ids")
    assert done.returncode == 1
    conflicts = [line for line in done.stderr.splitlines() if line.startswith("conflict:")]
    assert len(conflicts) == 1
    assert runs[1] in conflicts[0] and f"experiment {other} in the destination" in conflicts[0]
    dst = resolve_store(dst_uri, None)
    try:
        assert dst.get_run(runs[1]).data.params == {"p": "theirs"}
        assert dst.get_run(runs[1]).info.experiment_id == other
        new_alpha = dst.get_experiment_by_name("alpha")
        assert new_alpha is not None
        assert {dst.get_run(r).info.experiment_id for r in (runs[0], runs[2])} == {
            new_alpha.experiment_id}
    finally:
        dst.close()


def test_traces_of_a_deleted_experiment_are_copied(tmp_path):
    """From a tracklog store (SQLite, and a file store under new experiment ids), the
    traces of a deleted experiment come with it, though searches do not see them."""
    from tracklog.entities import LifecycleStage, TraceInfo, TraceState

    def trace(exp: str, n: int) -> TraceInfo:
        return TraceInfo(f"tr-{n:032x}", exp, 1_700_000_000_000 + n, 5, TraceState.OK,
                         tags={"n": str(n)})

    for src_uri, extra in ((f"sqlite:///{tmp_path}/src.db", ()),
                           (f"file://{tmp_path}/mlruns", ("--new-experiment-ids",))):
        src: Any = resolve_store(src_uri, str(tmp_path / "src-artifacts"))
        kept, gone = src.create_experiment("kept"), src.create_experiment("gone")
        base = 100 if extra else 0
        src.start_trace(trace(kept, base + 1))
        for n in (2, 3):
            src.start_trace(trace(gone, base + n))
        src.delete_experiment(gone)
        src.close()

        dst_uri = f"sqlite:///{tmp_path}/dst-{base}.db"
        done = _migrate(src_uri, dst_uri, *extra)
        assert done.returncode == 0, done.stderr
        assert "3 traces" in done.stdout and "verified 0 runs, 0 logged models, 3 traces" \
            in done.stdout
        dst: Any = resolve_store(dst_uri, None)
        try:
            there = dst.get_experiment_by_name("gone")
            assert there is not None and there.lifecycle_stage == LifecycleStage.DELETED
            for n in (2, 3):
                got = dst.get_trace_info(f"tr-{base + n:032x}")
                assert (got.experiment_id, got.tags["n"]) == (there.experiment_id,
                                                             str(base + n))
            assert dst.get_trace_info(f"tr-{base + 1:032x}").tags["n"] == str(base + 1)
        finally:
            dst.close()
