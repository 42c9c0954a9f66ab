"""Searches too big or too slow get clear answers, and never starve the other requests."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import Server, start_server
from tracklog.search import MAX_FILTER_CLAUSES, MAX_FILTER_LENGTH, MAX_ORDER_BY_KEYS
from tracklog.validation import MAX_EXPERIMENT_IDS_PER_SEARCH

SEARCH = "/api/2.0/mlflow/runs/search"


def _search(server: Server, **body) -> httpx.Response:
    return httpx.post(server.url + SEARCH, json=body, timeout=60)


def _experiment(server: Server, name: str) -> str:
    r = httpx.post(server.url + "/api/2.0/mlflow/experiments/create", json={"name": name})
    assert r.status_code == 200, r.text
    return r.json()["experiment_id"]


def test_oversized_searches_are_400s_naming_the_limit(server: Server):
    exp = _experiment(server, f"limits-{time.monotonic_ns()}")
    cases: list[tuple[dict[str, Any], str]] = [
        ({"experiment_ids": [str(i) for i in range(100_000)]},
         f"cannot specify more than {MAX_EXPERIMENT_IDS_PER_SEARCH} experiment_ids. "
         "Received 100000 experiment_ids."),
        ({"experiment_ids": [exp],
          "filter": " AND ".join(f"params.p{i} = 'x'" for i in range(2_000))},
         f"at most {MAX_FILTER_CLAUSES}"),
        ({"experiment_ids": [exp], "filter": "params.p = '" + "x" * MAX_FILTER_LENGTH + "'"},
         f"limit of {MAX_FILTER_LENGTH:,} characters"),
        ({"experiment_ids": [exp], "order_by": ["params.p"] * (MAX_ORDER_BY_KEYS + 1)},
         f"limit of {MAX_ORDER_BY_KEYS} ordering keys"),
    ]
    for body, message in cases:
        r = _search(server, **body)
        assert r.status_code == 400, r.text[:300]
        assert r.json()["error_code"] == "INVALID_PARAMETER_VALUE"
        assert message in r.json()["message"]
    # Integer literals past 64 bits compare as floats instead of overflowing a column.
    for text in ("metrics.m > " + "9" * 99_000, "attributes.start_time < 99999999999999999999",
                 "attributes.end_time > -9223372036854775809"):
        r = _search(server, experiment_ids=[exp], filter=text)
        assert r.status_code == 200, r.text[:300]
    r = httpx.post(server.url + "/api/2.0/mlflow/logged-models/search",
                   json={"experiment_ids": [str(i) for i in range(100_000)]}, timeout=60)
    assert r.status_code == 400, r.text[:300]
    assert r.json()["message"].startswith(
        f"SearchLoggedModels request cannot specify more than {MAX_EXPERIMENT_IDS_PER_SEARCH}")
    at_cap = [str(10**6 + i) for i in range(MAX_EXPERIMENT_IDS_PER_SEARCH - 1)] + [exp]
    r = _search(server, experiment_ids=at_cap)
    assert r.status_code == 200 and r.json() == {}


# --- PostgreSQL: a search held up by a lock --------------------------------------------


@contextmanager
def _runs_locked(uri: str) -> Iterator:
    """A session holding a lock that makes every read of ``runs`` wait."""
    import psycopg

    with psycopg.connect(uri) as conn:
        conn.execute("LOCK TABLE runs IN ACCESS EXCLUSIVE MODE")
        try:
            yield conn
        finally:
            conn.rollback()


def _searches_running(conn) -> int:
    conn.execute("SELECT pg_stat_clear_snapshot()")  # the views are a per-transaction snapshot
    return conn.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
        "AND state = 'active' AND query LIKE '%%FROM runs%%' AND pid <> pg_backend_pid()"
    ).fetchone()[0]


def _wait_for(condition, what: str, limit: float = 20.0) -> None:
    deadline = time.monotonic() + limit
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"still not {what} after {limit:.0f} s")
        time.sleep(0.05)


@pytest.fixture
def pg_one_connection(postgres_uri: str, tmp_path: Path) -> Iterator[tuple[Server, str]]:
    """A PostgreSQL-backed server with a single pooled connection, a 1 s pool wait and a
    4 s statement timeout."""
    env = {
        "TRACKLOG_SQLALCHEMYSTORE_POOL_SIZE": "1",
        "TRACKLOG_SQLALCHEMYSTORE_MAX_OVERFLOW": "0",
        "TRACKLOG_SQLALCHEMYSTORE_POOL_TIMEOUT": "1",
        "TRACKLOG_SQLALCHEMYSTORE_STATEMENT_TIMEOUT": "4",
    }
    srv = start_server(tmp_path, postgres_uri, env=env)
    try:
        yield srv, postgres_uri
    finally:
        srv.stop()


def test_busy_pool_is_a_503_and_a_slow_search_a_400(pg_one_connection):
    """While a search holds the only connection, another request waits briefly and is
    told to retry (503 + Retry-After), not failed with a 500; the search itself is stopped
    by the statement timeout with a 400 that says why."""
    server, uri = pg_one_connection
    exp = _experiment(server, "busy")
    answers: list[httpx.Response] = []
    with _runs_locked(uri) as locker:
        search = threading.Thread(target=lambda: answers.append(
            _search(server, experiment_ids=[exp])))
        search.start()
        _wait_for(lambda: _searches_running(locker) == 1, "searching")
        r = httpx.get(server.url + "/api/2.0/mlflow/experiments/get",
                      params={"experiment_id": exp}, timeout=30)
        assert r.status_code == 503, r.text
        assert r.headers["Retry-After"] == "2"
        assert r.json()["error_code"] == "TEMPORARILY_UNAVAILABLE"
        search.join(60)
    (slow,) = answers
    assert slow.status_code == 400, slow.text
    assert slow.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    assert "statement timeout of 4 s" in slow.json()["message"]
    assert "SELECT" not in slow.json()["message"]
    r = httpx.get(server.url + "/api/2.0/mlflow/experiments/get", params={"experiment_id": exp})
    assert r.status_code == 200


def test_client_disconnect_cancels_the_search(postgres_uri: str, tmp_path: Path):
    """A client that gives up on a search takes its query with it: the statement is
    cancelled at once (not left running until the statement timeout), and the pool's only
    connection serves the next request."""
    env = {"TRACKLOG_SQLALCHEMYSTORE_POOL_SIZE": "1",
           "TRACKLOG_SQLALCHEMYSTORE_MAX_OVERFLOW": "0"}
    server = start_server(tmp_path, postgres_uri, env=env)
    try:
        exp = _experiment(server, "gone")
        with _runs_locked(postgres_uri) as locker:
            with pytest.raises(httpx.ReadTimeout):
                httpx.post(server.url + SEARCH, json={"experiment_ids": [exp]}, timeout=1.0)
            _wait_for(lambda: _searches_running(locker) == 0, "cancelled", limit=15)
            r = httpx.get(server.url + "/api/2.0/mlflow/experiments/get",
                          params={"experiment_id": exp}, timeout=30)
            assert r.status_code == 200, r.text
        assert "Traceback" not in server.log.read_text()
    finally:
        server.stop()
