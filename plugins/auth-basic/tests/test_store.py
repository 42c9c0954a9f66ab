"""The plugin's tables on SQLite and PostgreSQL, beside the SQL tracking store's in one
database (own Alembic version table, either created first), and beside a file store."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from tracklog.errors import TracklogError
from tracklog_auth_basic.permissions import EXPERIMENT, Permission
from tracklog_auth_basic.settings import database_beside
from tracklog_auth_basic.store import GROUP, USER, AuthStore, now_ms

from .conftest import PASSWORD


@pytest.fixture(params=["sqlite", "postgresql"])
def uri(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'shared.db'}"
        return
    base = request.getfixturevalue("postgres_uri")
    # One schema-free database per test: drop everything the last test left.
    engine = sa.create_engine(base)
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
    engine.dispose()
    yield base


def _tables(uri: str) -> set[str]:
    engine = sa.create_engine(uri)
    try:
        return set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()


@pytest.mark.parametrize("auth_first", [False, True])
def test_shares_the_tracking_database(uri: str, auth_first: bool) -> None:
    from tracklog.plugins import resolve_store

    if auth_first:
        AuthStore(uri).close()
    tracking = resolve_store(uri, "mlflow-artifacts:/")
    exp = tracking.create_experiment("together")
    tracking.close()
    auth = AuthStore(uri)
    assert auth.version() == "auth_0001_initial"
    auth.create_user("kim", PASSWORD)
    auth.close()
    again = AuthStore(uri)  # upgrading again is a no-op
    assert again.get_user("kim").username == "kim"
    again.close()
    tables = _tables(uri)
    assert {"tracklog_auth_users", "tracklog_auth_alembic_version", "alembic_version",
            "experiments"} <= tables
    engine = sa.create_engine(uri)
    with engine.connect() as conn:
        store_rev = conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()
    engine.dispose()
    assert store_rev and not store_rev.startswith("auth_")
    reopened = resolve_store(uri, "mlflow-artifacts:/")
    assert reopened.get_experiment(exp).name == "together"
    reopened.close()


def test_users_groups_permissions_tokens(uri: str) -> None:
    store = AuthStore(uri)
    try:
        lee = store.create_user("lee", PASSWORD)
        with pytest.raises(TracklogError) as err:
            store.create_user("lee", PASSWORD)
        assert err.value.error_code == "RESOURCE_ALREADY_EXISTS"
        row = store.user_row("lee")
        assert row.password_hash.startswith("$argon2id$") and PASSWORD not in row.password_hash
        assert store.authenticate("lee", PASSWORD) == lee
        assert store.authenticate("lee", PASSWORD + "x") is None
        assert store.authenticate("nobody", PASSWORD) is None

        gid = store.create_group("analysts")
        store.add_member("analysts", "lee")
        lee = store.get_user("lee")
        assert lee.group_ids == (gid,)
        store.set_permission(GROUP, gid, EXPERIMENT, "7", Permission.EDIT)
        store.set_permission(GROUP, gid, EXPERIMENT, "8", Permission.READ)
        store.set_permission(USER, lee.id, EXPERIMENT, "8", Permission.NO_PERMISSIONS)
        assert store.effective(lee, EXPERIMENT, ["7", "8", "9"]) == {
            "7": Permission.EDIT, "8": Permission.NO_PERMISSIONS}
        assert not store.set_permission(USER, lee.id, EXPERIMENT, "8", Permission.READ,
                                        replace=False)

        tid, secret = store.create_token(lee.id, "ci", None)
        with store.engine.connect() as conn:
            kept = conn.exec_driver_sql("SELECT token_hash FROM tracklog_auth_tokens").scalar()
        assert kept == hashlib.sha256(secret.encode()).hexdigest() and secret not in str(kept)
        assert store.user_for_token(secret) == lee
        assert store.user_for_token(secret + "x") is None
        _, expired = store.create_token(lee.id, "old", now_ms() - 1)
        assert store.user_for_token(expired) is None

        store.delete_user("lee")
        assert store.user_for_token(secret) is None
        assert store.list_permissions(USER, lee.id) == []
        assert store.list_groups() == [{"id": gid, "name": "analysts", "members": []}]
    finally:
        store.close()


def test_beside_a_file_store(tmp_path: Path) -> None:
    store_dir = tmp_path / "mlruns"
    assert database_beside(str(store_dir)) == f"sqlite:///{store_dir}-auth.db"
    assert database_beside(f"file://{store_dir}") == f"sqlite:///{store_dir}-auth.db"
    assert database_beside("postgresql://h/db") == "postgresql://h/db"
    store = AuthStore(database_beside(str(store_dir)))
    store.create_user("mo", PASSWORD)
    store.close()
    assert (tmp_path / "mlruns-auth.db").is_file() and not store_dir.exists()


def test_filtered_search_in_the_database(uri: str, tmp_path: Path) -> None:
    """The readable-set condition runs inside the store's SQL on both databases."""
    from .conftest import API, auth_env, build_app

    for a in build_app(tmp_path, auth_env(), store_uri=uri):
        nell = a.user("nell")
        ids = [a.ok("POST", f"{API}/experiments/create", json={"name": f"e{i}"})["experiment_id"]
               for i in range(5)]
        for hidden in ids[::2]:
            a.grant("nell", "experiment", hidden, "NO_PERMISSIONS")
        for name in ("m0", "m1"):
            a.ok("POST", f"{API}/registered-models/create", json={"name": name})
        a.grant("nell", "registered_model", "m1", "NO_PERMISSIONS")
        first = a.ok("POST", f"{API}/experiments/search", nell,
                     json={"max_results": 2, "order_by": ["name DESC"]})
        assert [e["name"] for e in first["experiments"]] == ["e3", "e1"]
        rest = a.ok("POST", f"{API}/experiments/search", nell, json={
            "max_results": 2, "order_by": ["name DESC"], "page_token": first["next_page_token"]})
        assert [e["name"] for e in rest["experiments"]] == ["Default"]
        models = a.ok("GET", f"{API}/registered-models/search", nell)
        assert [m["name"] for m in models["registered_models"]] == ["m0"]


def test_file_store_server(tmp_path: Path) -> None:
    """Beside a file store: users in a SQLite file next to it, searches narrowed by the
    store's in-Python filter evaluation."""
    from .conftest import API, auth_env, build_app

    for a in build_app(tmp_path, auth_env(), store_uri=str(tmp_path / "mlruns")):
        olive = a.user("olive")
        ids = [a.ok("POST", f"{API}/experiments/create", json={"name": f"f{i}"})["experiment_id"]
               for i in range(3)]
        a.grant("olive", "experiment", ids[1], "NO_PERMISSIONS")
        for name in ("fm0", "fm1"):
            a.ok("POST", f"{API}/registered-models/create", json={"name": name})
        a.grant("olive", "registered_model", "fm1", "NO_PERMISSIONS")
        names = [e["name"] for e in a.ok("POST", f"{API}/experiments/search", olive,
                                         json={"max_results": 10})["experiments"]]
        assert sorted(names) == ["Default", "f0", "f2"]
        models = a.ok("GET", f"{API}/registered-models/search", olive)
        assert [m["name"] for m in models["registered_models"]] == ["fm0"]
        runs = a.ok("POST", f"{API}/runs/search", olive, json={"experiment_ids": ids})
        assert runs == {}
    assert (tmp_path / "mlruns-auth.db").is_file()
