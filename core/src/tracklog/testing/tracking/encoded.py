"""Search pages in the wire form (:class:`tracklog.stores.EncodedRunSearch`)."""

from __future__ import annotations

from typing import Any

import orjson

from tracklog.entities import (
    Dataset,
    DatasetInput,
    InputTag,
    LoggedModelOutput,
    Metric,
    Param,
    RunStatus,
    RunTag,
    ViewType,
)
from tracklog.search import parse_run_filter, parse_run_order_by
from tracklog.stores import EncodedRunSearch, TrackingStore

from ._base import KitBase, error_code, new_experiment, requires

#: Text a store must escape: quotes, backslashes, control characters, non-ASCII.
AWKWARD = 'quote " backslash \\ tab \t newline \n bell \x07 é 漢字 \U0001f600 </script>'


def _sorted(run: dict[str, Any]) -> dict[str, Any]:
    """``run`` with its data's lists in key order (their order is the store's)."""
    data = {k: sorted(v, key=lambda item: item["key"]) for k, v in run["data"].items()}
    return {**run, "data": data}


@requires("encoded_search")
class EncodedSearchTests(KitBase):
    """Each run of an encoded page decodes to what the server's codec makes of the run
    ``search_runs`` gives for the same arguments: same runs, order, tokens and errors."""

    def _same(self, store: TrackingStore, experiment_ids: list[str], **args: Any) -> int:
        """Both pages of every call, page after page; the number of runs seen."""
        from tracklog.server import codec

        assert isinstance(store, EncodedRunSearch)
        token, seen = None, 0
        while True:
            encoded = store.search_runs_encoded(experiment_ids, **args, page_token=token)
            page = store.search_runs(experiment_ids, **args, page_token=token)
            if encoded is None:
                return -1  # not offered here (another database, say)
            assert all(isinstance(run, bytes) for run in encoded)
            assert [_sorted(orjson.loads(run)) for run in encoded] == \
                [_sorted(codec.run(run)) for run in page]
            assert encoded.token == page.token
            seen += len(page)
            token = page.token
            if token is None:
                return seen

    def test_encoded_runs_are_the_codec_ones(self, store: TrackingStore) -> None:
        """Every field a run shows: text that needs escaping, unset and set end times,
        every status, NaN and infinite metrics, no params or tags at all, dataset
        inputs and logged-model outputs; with a filter, an order and pages of 3."""
        exp_id = new_experiment(store)
        plain = store.create_run(exp_id, "", None, run_name="plain").info.run_id
        store.delete_tag(plain, "mlflow.runName")
        awkward = store.create_run(exp_id, AWKWARD, 1_000, tags=[RunTag("odd", AWKWARD)],
                                   run_name="odd " + AWKWARD[:20]).info.run_id
        store.log_batch(awkward, metrics=[
            Metric("loss", 0.1, 5, 1), Metric("nan", float("nan"), 5, 1),
            Metric("up", float("inf"), 5, 1), Metric("down", float("-inf"), 5, 1),
            Metric("big", 1.7976931348623157e308, 5, 1), Metric("tiny", 5e-324, 5, 1),
            Metric("whole", 3.0, 5, -2),
        ], params=[Param("odd", AWKWARD), Param("empty", "")])
        for i, status in enumerate(RunStatus):
            run_id = store.create_run(exp_id, "u", 2_000 + i).info.run_id
            store.log_batch(run_id, metrics=[Metric("loss", i / 7, 6, 0)],
                            params=[Param("i", str(i))], tags=[RunTag("t", "")])
            store.update_run_info(run_id, status, 3_000 + i, None)
        with_io = store.create_run(exp_id, "u", 4_000).info.run_id
        store.log_inputs(with_io, datasets=[DatasetInput(
            Dataset("d", "h", "local", "/d", schema="{}", profile=None),
            (InputTag("mlflow.data.context", "training"),))])
        model = store.create_logged_model(exp_id, name="m", source_run_id=with_io).model_id
        store.log_outputs(with_io, [LoggedModelOutput(model, 3)])
        deleted = store.create_run(exp_id, "u", 5_000).info.run_id
        store.delete_run(deleted)

        total = len(RunStatus) + 3
        assert self._same(store, [exp_id]) in (-1, total)
        assert self._same(store, [exp_id], max_results=3) in (-1, total)
        assert self._same(store, [exp_id], run_view_type=ViewType.ALL) in (-1, total + 1)
        assert self._same(store, [exp_id], run_view_type=ViewType.DELETED_ONLY) in (-1, 1)
        assert self._same(store, [exp_id], filter=parse_run_filter("metrics.loss < 0.5"),
                          order_by=parse_run_order_by(["metrics.loss DESC"]),
                          max_results=2) in (-1, 5)
        assert self._same(store, [exp_id], filter=parse_run_filter("params.i = 'nope'")) \
            in (-1, 0)
        assert self._same(store, [exp_id, "0"]) in (-1, total)

    def test_encoded_errors_are_search_runs_errors(self, store: TrackingStore) -> None:
        """A garbage page token, and no experiment at all, as ``search_runs`` answers."""
        assert isinstance(store, EncodedRunSearch)
        exp_id = new_experiment(store)
        expected = error_code(lambda: store.search_runs([exp_id], page_token="garbage"))
        assert expected is not None
        got = error_code(lambda: store.search_runs_encoded([exp_id], page_token="garbage"))
        if store.search_runs_encoded([exp_id]) is not None:
            assert got == expected
        assert store.search_runs_encoded([]) in (None, [])
