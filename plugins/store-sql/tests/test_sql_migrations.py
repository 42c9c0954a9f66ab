"""Schema migrations: an old database is refused with the command to run, upgraded by
``tracklog db upgrade`` without losing data, and head equals the schema module."""

from __future__ import annotations

import math
import time
import uuid

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from tracklog.entities import Metric, Param
from tracklog.errors import TracklogError
from tracklog.search import parse_run_filter
from tracklog_store_sql import db as dbmod
from tracklog_store_sql import revisions
from tracklog_store_sql.schema import metadata
from tracklog_store_sql.store import SqlTrackingStore


def _cli():
    import click

    from tracklog.cli import plugins
    from tracklog.plugins import load_plugins, pm

    # A fresh root group, populated the way `tracklog` populates its own.
    root = click.Group("tracklog")
    root.add_command(plugins)
    load_plugins()
    pm.hook.register_commands(cli=root)
    return root


def _fill_first_revision(url: str) -> str:
    """Data written with plain SQL against revision 0001 (tables reflected from the
    database itself, not taken from the current schema module), as an old server left it."""
    run_id = uuid.uuid4().hex
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        if conn.dialect.name in ("mysql", "mariadb"):
            conn.exec_driver_sql("SET SESSION sql_mode='NO_AUTO_VALUE_ON_ZERO'")
        old = sa.MetaData()
        old.reflect(conn)
        t = old.tables
        conn.execute(
            t["experiments"].insert(),
            [
                {
                    "experiment_id": 0,
                    "name": "Default",
                    "artifact_location": "/a/0",
                    "lifecycle_stage": "active",
                    "creation_time": 1,
                    "last_update_time": 1,
                },
                {
                    "experiment_id": 1,
                    "name": "old",
                    "artifact_location": "/a/1",
                    "lifecycle_stage": "active",
                    "creation_time": 1,
                    "last_update_time": 1,
                },
            ],
        )
        conn.execute(
            t["runs"].insert(),
            {
                "run_uuid": run_id,
                "name": "legacy",
                "user_id": "u",
                "status": "FINISHED",
                "start_time": 5,
                "lifecycle_stage": "active",
                "artifact_uri": "/a/1/r",
                "experiment_id": 1,
            },
        )
        conn.execute(t["params"].insert(), {"run_uuid": run_id, "key": "lr", "value": "0.1"})
        conn.execute(
            t["tags"].insert(), {"run_uuid": run_id, "key": "mlflow.runName", "value": "legacy"}
        )
        conn.execute(
            t["metrics"].insert(),
            [
                {
                    "run_uuid": run_id,
                    "key": "loss",
                    "timestamp": 10 + step,
                    "step": step,
                    "value": value,
                    "is_nan": False,
                }
                for step, value in ((0, 1.0), (1, 0.5))
            ]
            + [
                {
                    "run_uuid": run_id,
                    "key": "acc",
                    "timestamp": 10,
                    "step": 0,
                    "value": 0.0,
                    "is_nan": True,
                }
            ],
        )
        conn.execute(
            t["latest_metrics"].insert(),
            {
                "run_uuid": run_id,
                "key": "loss",
                "value": 0.5,
                "timestamp": 11,
                "step": 1,
                "is_nan": False,
            },
        )
        assert "logged_models" not in t
    engine.dispose()
    return run_id


def test_old_schema_refused_then_upgraded_with_data(fresh_url):
    database = dbmod.Database(fresh_url)
    assert revisions.upgrade(database, "0001_initial") == (None, "0001_initial")
    database.dispose()
    run_id = _fill_first_revision(fresh_url)

    with pytest.raises(TracklogError) as err:
        SqlTrackingStore(fresh_url, "/a")
    assert "out of date" in err.value.message
    assert f"tracklog db upgrade {dbmod.redact(fresh_url)}" in err.value.message

    result = CliRunner().invoke(_cli(), ["db", "upgrade", fresh_url])
    assert result.exit_code == 0, result.output
    head = revisions.head_revision()
    assert f"from 0001_initial to {head}" in result.output
    again = CliRunner().invoke(_cli(), ["db", "upgrade", fresh_url])
    assert f"already at revision {head}" in again.output

    store = SqlTrackingStore(fresh_url, "/a")
    try:
        run = store.get_run(run_id)
        assert run.info.run_name == "legacy"
        assert run.data.params == {"lr": "0.1"}
        assert run.data.metrics["loss"].value == 0.5
        assert [m.value for m in store.get_metric_history(run_id, "loss")] == [1.0, 0.5]
        assert math.isnan(store.get_metric_history(run_id, "acc")[0].value)
        assert store.get_experiment("1").name == "old"
        # The tables the second revision added work.
        store.log_batch(run_id, metrics=[Metric("loss", 0.25, 12, 2)])
        model = store.create_logged_model("1", "m", run_id)
        store.create_registered_model("reg")
        store.create_model_version("reg", f"models:/{model.model_id}", model_id=model.model_id)
        assert store.get_registered_model("reg").latest_versions[0].version == "1"
        assert store.get_run(run_id).data.metrics["loss"].value == 0.25
        # Series created after the migration get fresh ids next to the migrated ones.
        store.log_batch(run_id, metrics=[Metric("new", 3.0, 13, 0)])
        assert [m.value for m in store.get_metric_history(run_id, "new")] == [3.0]
        assert [m.value for m in store.get_metric_history(run_id, "loss")] == [1.0, 0.5, 0.25]
    finally:
        store.close()


def test_metric_series_downgrade_keeps_history(fresh_url):
    store = SqlTrackingStore(fresh_url, "/a")
    run_id = store.create_run("0", "u", 0).info.run_id
    store.log_batch(run_id, metrics=[Metric("m", float(i), i, i) for i in range(5)])
    store.close()
    database = dbmod.Database(fresh_url)
    try:
        from alembic import command

        with database.write() as conn:
            command.downgrade(revisions._alembic_config(conn), "0002_models_registry")
            assert revisions.current_revision(conn) == "0002_models_registry"
        with database.read() as conn:
            rows = conn.exec_driver_sql("SELECT step, value FROM metrics ORDER BY step").all()
        assert [tuple(r) for r in rows] == [(i, float(i)) for i in range(5)]
        assert revisions.upgrade(database, "head")[1] == revisions.head_revision()
    finally:
        database.dispose()
    store = SqlTrackingStore(fresh_url, "/a")
    try:
        assert [m.step for m in store.get_metric_history(run_id, "m")] == list(range(5))
    finally:
        store.close()


def test_head_matches_schema_module(fresh_url):
    """What the migrations build is exactly what the code expects (no drift)."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    store = SqlTrackingStore(fresh_url, "/a")  # an empty database is created at head
    try:
        with store.db.read() as conn:
            assert revisions.current_revision(conn) == revisions.head_revision()
            ctx = MigrationContext.configure(conn, opts={"compare_type": True})
            diff = compare_metadata(ctx, metadata)
        assert diff == []
        assert store.get_experiment("0").name == "Default"
    finally:
        store.close()


def test_upgrade_command_hides_password():
    result = CliRunner().invoke(
        _cli(), ["db", "upgrade", "postgresql://user:s3cret@127.0.0.1:1/nodb"]
    )
    assert result.exit_code != 0
    assert "s3cret" not in result.output
    assert "***" in result.output


def test_schema_from_a_newer_release_is_refused(tmp_path):
    url = f"sqlite:///{tmp_path}/newer.db"
    SqlTrackingStore(url, "/a").close()
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql("UPDATE alembic_version SET version_num = '0099_future'")
    engine.dispose()
    with pytest.raises(TracklogError) as err:
        SqlTrackingStore(url, "/a")
    assert "0099_future" in err.value.message
    assert "upgrade tracklog-store-sql" in err.value.message


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"], indirect=True)
def test_database_created_by_mlflow_is_named_as_such(fresh_url):
    """A database `mlflow server` created (here by the installed mlflow package's own
    store, which runs MLflow's migrations) is refused as MLflow's, naming its revision."""
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    mlflow_url = fresh_url.replace("postgresql://", "postgresql+psycopg://", 1)
    SqlAlchemyStore(mlflow_url, "/a").engine.dispose()
    engine = sa.create_engine(fresh_url)
    with engine.connect() as conn:
        revision = conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()
    engine.dispose()
    with pytest.raises(TracklogError) as err:
        SqlTrackingStore(fresh_url, "/a")
    assert (
        f"was created by MLflow (schema {revision}); tracklog cannot serve it directly."
        in err.value.message
    ), err.value.message
    # The way in: the exact command, which the migration tests show works.
    assert f"tracklog migrate {fresh_url} sqlite:///tracklog.db" in err.value.message
    assert "newer" not in err.value.message


def test_foreign_alembic_revision_is_not_taken_for_a_newer_tracklog(tmp_path):
    url = f"sqlite:///{tmp_path}/other.db"
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE alembic_version (version_num VARCHAR(32))")
        conn.exec_driver_sql("INSERT INTO alembic_version VALUES ('ae1027a6acf')")
    engine.dispose()
    with pytest.raises(TracklogError) as err:
        SqlTrackingStore(url, "/a")
    assert "'ae1027a6acf', which is not a tracklog revision" in err.value.message
    assert "newer" not in err.value.message


def test_a_schema_being_created_by_another_process_is_waited_for(fresh_url):
    """Servers started together on an empty database: the one that finds the schema being
    created waits for it and then uses it, instead of creating it a second time."""
    import threading

    from alembic import command

    first = dbmod.Database(fresh_url)
    second_error: list[BaseException] = []
    # A slow commit widens the window in which a lock released before the commit lets the
    # waiting process read the revision from before the last migration step.
    sa.event.listen(first.engine, "commit", lambda conn: time.sleep(1))

    def second() -> None:
        try:
            db = dbmod.Database(fresh_url)
            revisions.ensure_schema(db)
            db.dispose()
        except BaseException as exc:
            second_error.append(exc)

    try:
        with first.write() as conn, revisions.schema_lock(conn):
            command.upgrade(revisions._alembic_config(conn), "head")
            waiting = threading.Thread(target=second)
            waiting.start()
            waiting.join(1.5)
            if first.dialect not in ("mysql", "mariadb"):
                # Transactional DDL: the schema is not there yet, so it waits for the lock.
                # (MySQL's DDL commits at once: it may find the schema complete.)
                assert waiting.is_alive()
        waiting.join(60)
        assert not second_error, second_error
        with first.read() as conn:
            assert revisions.current_revision(conn) == revisions.head_revision()
    finally:
        first.dispose()


def _collations(url: str) -> dict[str, str]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.exec_driver_sql(
                "SELECT table_name, table_collation FROM information_schema.tables "
                "WHERE table_schema = DATABASE() AND table_name <> 'alembic_version'"
            ).all()
    finally:
        engine.dispose()
    return dict(rows)


@pytest.mark.parametrize("backend", ["mysql"])
def test_a_mariadb_url_creates_case_sensitive_tables(fresh_url):
    """A database first opened as ``mariadb://`` gets the binary collation too: keys that
    differ only in case are different keys."""
    store = SqlTrackingStore(fresh_url.replace("mysql+pymysql://", "mariadb://", 1), "/a")
    try:
        run_id = store.create_run("0", "u", 0).info.run_id
        store.log_batch(run_id, metrics=[Metric("loss", 1.0, 1, 0), Metric("Loss", 2.0, 1, 0)],
                        params=[Param("lr", "a"), Param("LR", "b")])
        data = store.get_run(run_id).data
        assert data.params == {"lr": "a", "LR": "b"}
        assert {k: m.value for k, m in data.metrics.items()} == {"loss": 1.0, "Loss": 2.0}
        assert len(store.search_runs(["0"], parse_run_filter("params.lr = 'A'"))) == 0
    finally:
        store.close()
    assert set(_collations(fresh_url).values()) == {"utf8mb4_bin"}


@pytest.mark.parametrize("backend", ["mysql"])
def test_upgrade_gives_case_insensitive_tables_the_binary_collation(fresh_url):
    """A database an earlier release created through ``mariadb://`` (the server's default,
    case-insensitive collation) is converted by ``tracklog db upgrade``, data kept."""
    # The schema as that release built it: the tables without their MariaDB options.
    old = sa.MetaData()
    for table in metadata.sorted_tables:
        copy = table.to_metadata(old)
        for option in ("mariadb_charset", "mariadb_collate", "mariadb_engine"):
            del copy.dialect_kwargs[option]
    engine = sa.create_engine(fresh_url.replace("mysql+pymysql://", "mariadb+pymysql://", 1))
    with engine.begin() as conn:
        old.create_all(conn)
        conn.exec_driver_sql("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL)")
        conn.exec_driver_sql("INSERT INTO alembic_version VALUES ('0004_traces')")
        conn.exec_driver_sql(
            "INSERT INTO experiments (experiment_id, name, artifact_location, lifecycle_stage,"
            " creation_time, last_update_time) VALUES (1, 'e', '/a/1', 'active', 1, 1)")
        conn.exec_driver_sql(
            "INSERT INTO runs (run_uuid, name, status, lifecycle_stage, experiment_id) "
            "VALUES ('r1', 'r', 'RUNNING', 'active', 1)")
        conn.exec_driver_sql("INSERT INTO params VALUES ('r1', 'lr', 'a')")
    engine.dispose()
    run_id = "r1"
    assert _collations(fresh_url)["params"] == "utf8mb4_general_ci"

    result = CliRunner().invoke(_cli(), ["db", "upgrade", fresh_url])
    assert result.exit_code == 0, result.output
    assert set(_collations(fresh_url).values()) == {"utf8mb4_bin"}
    store = SqlTrackingStore(fresh_url, "/a")
    try:
        store.log_batch(run_id, params=[Param("LR", "b")],
                        metrics=[Metric("loss", 1.0, 1, 0), Metric("Loss", 2.0, 1, 0)])
        data = store.get_run(run_id).data
        assert data.params == {"lr": "a", "LR": "b"}
        assert set(data.metrics) == {"loss", "Loss"}
        with store.db.read() as conn:  # every foreign key is back
            inspector = sa.inspect(conn)
            found = {fk["name"] for t in metadata.tables for fk in inspector.get_foreign_keys(t)}
        assert found == {fk.name for t in metadata.tables.values()
                         for fk in t.foreign_key_constraints}
    finally:
        store.close()
