"""`tracklog migrate` from a database written by MLflow's own SQL store into tracklog's
SQL store on every backend: ids, names, times, lifecycle stages, params, tags and every
metric point equal when read back; resumable after a kill; the source never written."""

from __future__ import annotations

import hashlib
import math
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from tracklog.importing import checksum
from tracklog.testing.databases import private_database
from tracklog_store_sql.store import SqlTrackingStore

from .conftest import PG_ADMIN

TRACKLOG = str(Path(sys.executable).with_name("tracklog"))
T0 = 1_700_000_000_000


_EMPTY: list[Path] = []


def _mlflow_store(path: Path):
    """MLflow's own SQL store on ``path``; a new database starts as a copy of one that
    MLflow created (its migrations take seconds)."""
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    if not path.exists():
        if not _EMPTY:
            template = Path(tempfile.mkdtemp(prefix="mlflow-empty-")) / "mlflow.db"
            SqlAlchemyStore(f"sqlite:///{template}", str(template.parent)).engine.dispose()
            _EMPTY.append(template)
        shutil.copyfile(_EMPTY[0], path)
    return SqlAlchemyStore(f"sqlite:///{path}", str(path.parent / "mlartifacts"))


def _fill(store, runs: int = 3, points: int = 1500) -> None:
    from mlflow.entities import ExperimentTag, Metric, Param, RunStatus, RunTag

    alpha = store.create_experiment("alpha", tags=[])
    store.set_experiment_tag(alpha, ExperimentTag("team", "vision"))
    gone = store.create_experiment("gone")
    parent = store.create_run(alpha, "ana", T0, [], "parent")
    for i in range(runs):
        run = store.create_run(alpha, "ben", T0 + i, [RunTag("mlflow.parentRunId",
                                                             parent.info.run_id)],
                               f"child-{i}")
        rid = run.info.run_id
        store.log_batch(rid, metrics=[], params=[Param("long", "x" * 6000),
                                                   Param("lr", str(0.1 * (i + 1)))],
                        tags=[RunTag("note", "é ünïcode")])
        values = [math.sin(s / 10) for s in range(points)]
        values[5], values[6], values[7] = math.nan, math.inf, -math.inf
        for start in range(0, points, 500):
            store.log_batch(rid, metrics=[
                Metric("loss", values[s], T0 + s, s) for s in range(start, min(points,
                                                                               start + 500))
            ], params=[], tags=[])
        store.log_batch(rid, metrics=[Metric("acc", 0.5, T0, 0)], params=[], tags=[])
        store.update_run_info(rid, RunStatus.FINISHED, T0 + 99,
                              f"child-{i}")
    store.delete_run(store.create_run(alpha, "ana", T0, [], "trashed").info.run_id)
    store.create_run(gone, "cy", T0, [], "in-gone")
    store.delete_experiment(gone)


@pytest.fixture(scope="module")
def mlflow_db(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("mlflow") / "mlflow.db"
    store = _mlflow_store(path)
    _fill(store)
    store.engine.dispose()
    return path


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _migrate(src: str, dst: str, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([TRACKLOG, "migrate", src, dst, *extra], capture_output=True,
                          text=True, timeout=300)


def _assert_same(mlflow_path: Path, dst: str) -> None:
    from mlflow.entities import ViewType

    ml = _mlflow_store(mlflow_path)
    ours = SqlTrackingStore(dst, "mlflow-artifacts:/")
    try:
        exps = {e.experiment_id: e for e in ml.search_experiments(ViewType.ALL)}
        assert len(exps) == 3
        for eid, e in exps.items():
            got_exp = ours.get_experiment(eid)
            assert (got_exp.name, str(got_exp.lifecycle_stage)) == (e.name, e.lifecycle_stage)
            if e.name != "Default":
                assert got_exp.tags == e.tags
                assert got_exp.artifact_location == e.artifact_location
        runs = ml.search_runs(list(exps), "", ViewType.ALL, max_results=1000)
        assert len(runs) == 6
        for r in runs:
            got = ours.get_run(r.info.run_id)
            assert got.info.run_name == r.info.run_name
            assert got.info.experiment_id == r.info.experiment_id
            assert str(got.info.status) == r.info.status
            assert (got.info.start_time, got.info.end_time) == (r.info.start_time,
                                                               r.info.end_time)
            assert str(got.info.lifecycle_stage) == r.info.lifecycle_stage
            assert got.info.artifact_uri == r.info.artifact_uri
            assert got.data.params == r.data.params
            assert got.data.tags == r.data.tags
            keys = sorted(r.data.metrics)
            assert sorted(got.data.metrics) == keys
            theirs = {k: ml.get_metric_history(r.info.run_id, k) for k in keys}
            mine = {k: list(ours.get_metric_history(r.info.run_id, k)) for k in keys}
            assert {k: len(v) for k, v in mine.items()} == {k: len(v) for k, v in theirs.items()}
            assert checksum(got.data.params, mine) == checksum(r.data.params, theirs)
        # New experiments get ids above the imported ones.
        assert int(ours.create_experiment(f"after-{time.time_ns()}")) > max(map(int, exps))
    finally:
        ours.close()
        ml.engine.dispose()


def test_mlflow_database_migrates_whole_and_untouched(mlflow_db, fresh_url):
    before = _digest(mlflow_db)
    done = _migrate(f"sqlite:///{mlflow_db}", fresh_url)
    assert done.returncode == 0, done.stderr
    assert "MLflow database" in done.stderr
    assert "copied 2 experiments, 6 runs" in done.stdout  # Default exists: skipped
    assert "verified 6 runs" in done.stdout
    _assert_same(mlflow_db, fresh_url)
    assert _digest(mlflow_db) == before

    again = _migrate(f"sqlite:///{mlflow_db}", fresh_url)
    assert again.returncode == 0, again.stderr
    assert "0 runs" in again.stdout and "skipped" in again.stdout
    _assert_same(mlflow_db, fresh_url)


def test_planner_statistics_are_refreshed_after_migrating_into_postgresql(mlflow_db):
    """This PostgreSQL runs without autovacuum: unless the migration analyzes the tables
    it filled, the planner goes on taking them for empty (reltuples -1: never analyzed)."""
    with private_database(PG_ADMIN, "postgresql") as url:
        done = _migrate(f"sqlite:///{mlflow_db}", url)
        assert done.returncode == 0, done.stderr
        engine = sa.create_engine(url)
        try:
            with engine.connect() as conn:
                counted: dict[str, int] = {
                    t: conn.exec_driver_sql(f"SELECT count(*) FROM {t}").scalar_one()
                    for t in ("runs", "params", "metric_points", "latest_metrics")}
                estimated: dict[str, float] = dict(conn.exec_driver_sql(
                    "SELECT relname, reltuples FROM pg_class WHERE relname = ANY(%(t)s)",
                    {"t": list(counted)}).all())
        finally:
            engine.dispose()
    assert counted["metric_points"] > 4000
    assert estimated == {t: float(n) for t, n in counted.items()}


def _big_source(path: Path, runs: int, points: int) -> None:
    """Runs created by MLflow's store; their long histories written straight into its
    ``metrics`` table (MLflow's own log_batch would take minutes)."""
    store = _mlflow_store(path)
    exp = store.create_experiment("big")
    ids = [store.create_run(exp, "u", T0, [], f"r{i}").info.run_id for i in range(runs)]
    store.engine.dispose()
    with sqlite3.connect(path) as c:
        for rid in ids:
            c.executemany(
                "INSERT INTO metrics (key, value, timestamp, run_uuid, step, is_nan) "
                "VALUES ('loss', ?, ?, ?, ?, 0)",
                [(s / points, T0 + s, rid, s) for s in range(points)])
            c.execute("INSERT INTO latest_metrics (key, value, timestamp, step, is_nan, "
                      "run_uuid) VALUES ('loss', ?, ?, ?, 0, ?)",
                      ((points - 1) / points, T0 + points - 1, points - 1, rid))


def test_killed_migration_resumes_without_duplicates(tmp_path):
    path = tmp_path / "big.db"
    _big_source(path, runs=12, points=20_000)
    dst_file = tmp_path / "dst.db"
    dst = f"sqlite:///{dst_file}"
    proc = subprocess.Popen([TRACKLOG, "migrate", f"sqlite:///{path}", dst],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        copied = 0
        while time.monotonic() < deadline and proc.poll() is None:
            if dst_file.exists():
                try:
                    with sqlite3.connect(f"file:{dst_file}?mode=ro", uri=True) as c:
                        copied = c.execute("SELECT count(*) FROM runs").fetchone()[0]
                except sqlite3.Error:
                    copied = 0
            if copied >= 3:
                break
            time.sleep(0.05)
        assert proc.poll() is None, "migration finished before it could be interrupted"
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(30)
    assert copied < 12

    done = _migrate(f"sqlite:///{path}", dst)
    assert done.returncode == 0, done.stderr
    assert "skipped" in done.stdout
    with sqlite3.connect(dst_file) as c:
        assert c.execute("SELECT count(*) FROM runs").fetchone()[0] == 12
        assert c.execute("SELECT count(*) FROM tags WHERE key = "
                         "'tracklog.migration.incomplete'").fetchone()[0] == 0
        points = c.execute("SELECT count(*) FROM metric_points").fetchone()[0]
    with sqlite3.connect(path) as c:
        assert points == c.execute("SELECT count(*) FROM metrics").fetchone()[0]


def test_dry_run_writes_nothing_and_bad_sources_say_why(mlflow_db, tmp_path):
    dst = tmp_path / "never.db"
    dry = _migrate(f"sqlite:///{mlflow_db}", f"sqlite:///{dst}", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "would copy 3 experiments, 6 runs" in dry.stdout
    assert "4,503 metric points" in dry.stdout
    missing = _migrate(f"sqlite:///{tmp_path}/typo.db", f"sqlite:///{dst}")
    assert missing.returncode != 0 and "No SQLite database" in missing.stderr
    assert not (tmp_path / "typo.db").exists()


def test_an_older_mlflow_schema_without_newer_tables_and_columns(mlflow_db, tmp_path):
    """A database of an older MLflow revision: no logged models, traces, assessments,
    spans or aliases, and no trace_info analytics columns nor inputs.step. What is there
    is copied; what is not is simply nothing to copy."""
    old = tmp_path / "old.db"
    shutil.copyfile(mlflow_db, old)
    with sqlite3.connect(old) as c:
        c.execute("PRAGMA foreign_keys = OFF")
        tables = {r[0] for r in c.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        for t in ("logged_model_metrics", "logged_model_params", "logged_model_tags",
                  "logged_models", "assessments", "spans", "span_metrics", "trace_tags",
                  "trace_request_metadata", "registered_model_aliases"):
            if t in tables:
                c.execute(f"DROP TABLE {t}")
        for column in ("trace_name", "session_id", "input_tokens"):
            try:
                c.execute(f"ALTER TABLE trace_info DROP COLUMN {column}")
            except sqlite3.OperationalError:
                pass  # an index holds it, or the revision never had it
    done = _migrate(f"sqlite:///{old}", f"sqlite:///{tmp_path}/out.db")
    assert done.returncode == 0, done.stderr
    assert "copied 2 experiments, 6 runs" in done.stdout
    assert "0 logged models, 0 traces" in done.stdout
    _assert_same(old, f"sqlite:///{tmp_path}/out.db")


def test_an_mlflow_database_on_postgresql_is_read_as_columns_and_verified(tmp_path):
    """MLflow's schema on PostgreSQL (its histories read as binary arrays): NaN and
    infinities kept, the checksums of the copy equal to the source's."""
    from mlflow.entities import ViewType
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    with private_database(PG_ADMIN, "postgresql") as url:
        ml = SqlAlchemyStore(url.replace("postgresql://", "postgresql+psycopg2://"),
                             str(tmp_path / "mlartifacts"))
        try:
            _fill(ml)
            dst = f"sqlite:///{tmp_path}/copy.db"
            done = _migrate(url, dst)
            assert done.returncode == 0, done.stderr
            assert "copied 2 experiments, 6 runs" in done.stdout
            assert "verified 6 runs" in done.stdout
            ours = SqlTrackingStore(dst, "mlflow-artifacts:/")
            try:
                runs = ml.search_runs([e.experiment_id for e in
                                       ml.search_experiments(ViewType.ALL)], "",
                                      ViewType.ALL)
                assert len(runs) == 6
                for r in runs:
                    keys = sorted(r.data.metrics)
                    theirs = {k: ml.get_metric_history(r.info.run_id, k) for k in keys}
                    mine = {k: list(ours.get_metric_history(r.info.run_id, k)) for k in keys}
                    assert {k: len(v) for k, v in mine.items()} == {
                        k: len(v) for k, v in theirs.items()}
                    assert checksum(r.data.params, mine) == checksum(r.data.params, theirs)
                    if "loss" in keys:
                        values = [m.value for m in mine["loss"]][5:8]
                        assert math.isnan(values[0]) and values[1:] == [
                            1.7976931348623157e308, -1.7976931348623157e308]
            finally:
                ours.close()
        finally:
            ml.engine.dispose()


class _Corrupting(SqlTrackingStore):
    """A destination that damages what it stored after each batch (a deliberate fault:
    a store cannot be made to lose data on cue): the first run of the batch gets one
    point's value changed, the last loses every point."""

    def import_runs(self, runs):
        super().import_runs(runs)
        first, last = runs[0].run.info.run_id, runs[-1].run.info.run_id
        series = "SELECT series_id FROM metric_series WHERE run_uuid = :r"
        with self.db.write() as conn:
            conn.execute(sa.text(f"UPDATE metric_points SET value = value + 1 WHERE step = 3 "
                                 f"AND series_id IN ({series})"), {"r": first})
            conn.execute(sa.text(f"DELETE FROM metric_points WHERE series_id IN ({series})"),
                         {"r": last})


def test_verification_reads_back_what_the_destination_stored(tmp_path, fresh_url):
    """Batches are read back while later ones are written: a copy changed or lost after
    it was written is named, run by run, and the rest verify."""
    from tracklog.entities import Metric, Param
    from tracklog.importing import StoreSource, migrate

    src = SqlTrackingStore(f"sqlite:///{tmp_path}/src.db", "mlflow-artifacts:/")
    exp = src.create_experiment("batches")
    ids = []
    for r in range(250):  # several batches of runs gathered per check
        rid = src.create_run(exp, "u", T0 + r, [], f"r{r}").info.run_id
        src.log_batch(rid, metrics=[Metric("loss", s / 7, T0 + s, s) for s in range(300)],
                      params=[Param("p", str(r))])
        ids.append(rid)
    dst = _Corrupting(fresh_url, "mlflow-artifacts:/")
    try:
        report = migrate(StoreSource(src, "source"), dst)
    finally:
        dst.close()
        src.close()
    assert report.runs == 250 and report.points == 250 * 300
    damaged = {line.split(":")[0].removeprefix("run ") for line in report.mismatches}
    assert ids[0] in damaged and ids[-1] in damaged
    assert 4 <= len(damaged) < 250
    assert all(line.endswith("params or metric histories differ")
               for line in report.mismatches)
