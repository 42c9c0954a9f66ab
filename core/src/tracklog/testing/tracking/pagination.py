"""search_runs paging: every run exactly once, in order, across many pages."""

from __future__ import annotations

import pytest

from tracklog.entities import Metric
from tracklog.errors import ErrorCode, TracklogError
from tracklog.stores import TrackingStore

from ._base import KitBase, collect_pages, new_experiment, run_filter, run_order


class PaginationTests(KitBase):
    """Page tokens of ``search_runs``: complete, ordered, and only when more rows exist."""

    def test_search_runs_pages_cover_every_run_once(self, store: TrackingStore) -> None:
        """250 runs in pages of 7 come back exactly once each, in the default order."""
        exp_id = new_experiment(store)
        # Three runs share each start time, so run_id tie-breaks cross page boundaries.
        runs = [store.create_run(exp_id, "u", 1_000 + i // 3) for i in range(250)]
        expected = [r.info.run_id for r in sorted(
            runs, key=lambda r: (-(r.info.start_time or 0), r.info.run_id))]
        pages = collect_pages(lambda token: store.search_runs(
            [exp_id], max_results=7, page_token=token))
        assert [len(p) for p in pages] == [7] * 35 + [5]
        assert [r.info.run_id for page in pages for r in page] == expected
        whole = store.search_runs([exp_id], max_results=1000)
        assert [r.info.run_id for r in whole] == expected and whole.token is None

    def test_paging_with_filter_and_order(self, store: TrackingStore) -> None:
        """Paging follows the filter and the order_by of the request."""
        exp_id = new_experiment(store)
        rows = []
        for i in range(40):
            start, value = 5_000 + i, float(i % 9)
            run_id = store.create_run(exp_id, "u", start).info.run_id
            store.log_metric(run_id, Metric("m", value, 1))
            rows.append((value, -start, run_id))
        expected = [run_id for value, _, run_id in sorted(rows) if value >= 3]
        flt, order = run_filter("metrics.m >= 3"), run_order(["metrics.m ASC"])
        pages = collect_pages(lambda token: store.search_runs(
            [exp_id], filter=flt, order_by=order, max_results=4, page_token=token))
        assert [r.info.run_id for page in pages for r in page] == expected
        assert all(len(p) == 4 for p in pages[:-1]) and 1 <= len(pages[-1]) <= 4

    def test_paging_survives_appended_runs(self, store: TrackingStore) -> None:
        """Runs added after the first page, sorting after it, neither repeat nor hide rows."""
        exp_id = new_experiment(store)
        originals = [store.create_run(exp_id, "u", 10_000 + i).info.run_id for i in range(10)]
        first = store.search_runs([exp_id], max_results=4)
        late = store.create_run(exp_id, "u", 1).info.run_id
        seen = [r.info.run_id for r in first]
        token = first.token
        while token is not None:
            page = store.search_runs([exp_id], max_results=4, page_token=token)
            seen += [r.info.run_id for r in page]
            token = page.token
        assert seen == list(reversed(originals)) + [late]

    def test_token_only_when_more_results(self, store: TrackingStore) -> None:
        """A page that ends exactly at the last run carries no token."""
        exp_id = new_experiment(store)
        for i in range(14):
            store.create_run(exp_id, "u", i)
        first = store.search_runs([exp_id], max_results=7)
        assert len(first) == 7 and first.token is not None
        second = store.search_runs([exp_id], max_results=7, page_token=first.token)
        assert len(second) == 7 and second.token is None
        assert not {r.info.run_id for r in first} & {r.info.run_id for r in second}
        single = store.search_runs([exp_id], max_results=14)
        assert len(single) == 14 and single.token is None
        empty = store.search_runs([new_experiment(store)], max_results=5)
        assert list(empty) == [] and empty.token is None

    def test_garbage_token_rejected(self, store: TrackingStore) -> None:
        """A page token the store did not produce is INVALID_PARAMETER_VALUE."""
        exp_id = new_experiment(store)
        store.create_run(exp_id, "u", 1)
        for token in ("garbage", "eyJvZmZzZXQiOiAiYWJjIn0=", "%%%"):
            with pytest.raises(TracklogError) as excinfo:
                store.search_runs([exp_id], max_results=5, page_token=token)
            assert excinfo.value.error_code == ErrorCode.INVALID_PARAMETER_VALUE, token
