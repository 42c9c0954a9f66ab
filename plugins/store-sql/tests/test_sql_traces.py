"""SQL specifics of the trace store beyond the kit: concurrent sends of one trace, and
searches whose cost in statements does not grow with the page."""

from __future__ import annotations

import threading

import sqlalchemy as sa

from tracklog.entities import TraceInfo, TraceState
from tracklog.search import parse_trace_filter, parse_trace_order_by


def test_one_trace_sent_by_many_threads_at_once(store):
    """Client retries can race: every send succeeds and one trace results."""
    exp = store.create_experiment("racing")
    failures: list[BaseException] = []
    barrier = threading.Barrier(8)

    def send(i: int) -> None:
        try:
            barrier.wait()
            store.start_trace(TraceInfo("tr-race", exp, 1000, 5, TraceState.OK,
                                        tags={f"t{i}": "x"}, trace_metadata={"m": str(i)}))
        except BaseException as exc:  # noqa: BLE001 - asserted below
            failures.append(exc)

    threads = [threading.Thread(target=send, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []
    (found,) = store.search_traces([exp])
    assert {f"t{i}" for i in range(8)} <= set(found.tags)
    assert found.trace_metadata["m"] in {str(i) for i in range(8)}


def test_search_costs_the_same_statements_for_any_page_size(store):
    """A page of traces is read with a fixed number of statements (no query per trace)."""
    exp = store.create_experiment("statements")
    for i in range(40):
        store.start_trace(TraceInfo(f"tr-{i:03d}", exp, 1000 + i, i, TraceState.OK,
                                    tags={"k": str(i % 3)}, trace_metadata={"m": "v"}))
    counts = []
    for size in (5, 40):
        seen: list[str] = []

        def count(conn, cursor, statement, *rest, seen: list[str] = seen) -> None:
            seen.append(statement)

        sa.event.listen(store.db.engine, "before_cursor_execute", count)
        try:
            page = store.search_traces([exp], parse_trace_filter("tags.k != '1'"), size,
                                       parse_trace_order_by(["metadata.m", "tags.k DESC"]))
        finally:
            sa.event.remove(store.db.engine, "before_cursor_execute", count)
        counts.append(len(seen))
        assert len(page) == min(size, 27)
        assert all(t.tags["k"] != "1" for t in page)
    assert counts[0] == counts[1]
