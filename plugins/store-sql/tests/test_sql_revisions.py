"""Opening a store reads schema revisions without alembic: the revisions it derives from
the migration file names and the version it reads with plain SQL agree with alembic's."""

from __future__ import annotations

import sqlalchemy as sa

from tracklog_store_sql import db as dbmod
from tracklog_store_sql import revisions
from tracklog_store_sql.store import SqlTrackingStore


def _script():
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(revisions._alembic_config())


def test_head_and_known_revisions_equal_alembics():
    script = _script()
    assert revisions.head_revision() == script.get_current_head()
    assert revisions.known_revisions() == {rev.revision for rev in script.walk_revisions()}


def test_current_revision_equals_alembics(tmp_path):
    from alembic.runtime.migration import MigrationContext

    url = f"sqlite:///{tmp_path}/rev.db"
    database = dbmod.Database(url)
    try:
        with database.read() as conn:
            assert revisions.current_revision(conn) is None
        SqlTrackingStore(url, "/a").close()
        with database.read() as conn:
            current = revisions.current_revision(conn)
            assert current == MigrationContext.configure(conn).get_current_revision()
            assert current == revisions.head_revision()
    finally:
        database.dispose()


def test_empty_version_table_is_created_at_head(tmp_path):
    url = f"sqlite:///{tmp_path}/empty-version.db"
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL)")
    engine.dispose()
    store = SqlTrackingStore(url, "/a")
    try:
        with store.db.read() as conn:
            assert revisions.current_revision(conn) == revisions.head_revision()
        assert store.get_experiment("0").name == "Default"
    finally:
        store.close()
