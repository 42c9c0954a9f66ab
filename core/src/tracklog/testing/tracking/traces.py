"""TraceTests: the :class:`tracklog.stores.TraceStore` capability (``traces``).

Every test builds its traces through the public store API and reads them back the same
way. Filters and order-bys are strings parsed by :mod:`tracklog.search`, as the server
parses them.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from tracklog.entities import (
    Assessment,
    AssessmentKind,
    AssessmentSourceType,
    TraceInfo,
    TraceState,
)
from tracklog.errors import ErrorCode
from tracklog.stores import TRACE_ARTIFACT_LOCATION_TAG, TRACE_NAME_TAG, TRACE_SOURCE_RUN_METADATA

from ._base import KitBase, collect_pages, error_code, new_experiment, new_run, requires

if TYPE_CHECKING:
    from tracklog.search.ast import Filter, OrderBy

BASE_TIME = 1_700_000_000_000


def trace_id() -> str:
    return f"tr-{uuid.uuid4().hex}"


def make_trace(
    experiment_id: str,
    request_time: int = BASE_TIME,
    *,
    duration: int | None = 25,
    state: TraceState = TraceState.OK,
    name: str | None = "root",
    tags: dict[str, str] | None = None,
    metadata: dict[str, str] | None = None,
    trace_id_: str | None = None,
) -> TraceInfo:
    all_tags = dict(tags or {})
    if name is not None:
        all_tags[TRACE_NAME_TAG] = name
    return TraceInfo(
        trace_id=trace_id_ or trace_id(),
        experiment_id=experiment_id,
        request_time=request_time,
        execution_duration=duration,
        state=state,
        request_preview='{"q": "hi"}',
        response_preview='"hello"',
        trace_metadata={"mlflow.trace_schema.version": "3", **(metadata or {})},
        tags=all_tags,
    )


def trace_filter(text: str | None) -> Filter:
    from tracklog.search import parse_trace_filter

    return parse_trace_filter(text)


def trace_order(clauses: Sequence[str]) -> tuple[OrderBy, ...]:
    from tracklog.search import parse_trace_order_by

    return parse_trace_order_by(list(clauses))


def feedback(trace: str, name: str = "quality", value: Any = 0.5, **kw: Any) -> Assessment:
    return Assessment(
        assessment_id="",
        trace_id=trace,
        name=name,
        kind=AssessmentKind.FEEDBACK,
        value={"value": value},
        source_type=AssessmentSourceType.HUMAN,
        source_id="kit",
        **kw,
    )


#: The scenario of the search truth table: (label, start offset ms, duration, state, name,
#: tags, metadata). Labels stand for the generated ids in :data:`TRACE_FILTER_TRUTH_TABLE`.
TRACE_SCENARIO: list[tuple[str, int, int | None, TraceState, str | None, dict, dict]] = [
    ("a", 0, 10, TraceState.OK, "chat", {"env": "prod", "team": "Red"},
     {"user": "ann", "rank": "2"}),
    ("b", 100, 50, TraceState.ERROR, "chat", {"env": "dev"}, {"user": "bob", "rank": "1"}),
    ("c", 200, 200, TraceState.OK, "rag", {"env": "prod"}, {}),
    ("d", 300, None, TraceState.IN_PROGRESS, "rag", {}, {"user": "ann", "rank": "3"}),
    ("e", 400, 5, TraceState.OK, None, {"team": "red"}, {"user": "Ann"}),
]

#: filter → labels of the traces it selects.
TRACE_FILTER_TRUTH_TABLE: list[tuple[str, set[str]]] = [
    ("", {"a", "b", "c", "d", "e"}),
    ("status = 'OK'", {"a", "c", "e"}),
    ("attributes.status != 'OK'", {"b", "d"}),
    ("trace.state IN ('ERROR', 'IN_PROGRESS')", {"b", "d"}),
    ("timestamp_ms > {t100}", {"c", "d", "e"}),
    ("timestamp_ms <= {t100}", {"a", "b"}),
    ("execution_time_ms >= 50", {"b", "c"}),
    ("execution_time_ms < 50", {"a", "e"}),
    ("end_time_ms > {t200}", {"c", "e"}),
    ("name = 'chat'", {"a", "b"}),
    ("name != 'chat'", {"c", "d"}),
    ("trace.name IN ('rag', 'nope')", {"c", "d"}),
    ("tags.env = 'prod'", {"a", "c"}),
    ("tags.env != 'prod'", {"b"}),
    ("tags.team LIKE 'R%'", {"a"}),
    ("tags.team ILIKE 'r%'", {"a", "e"}),
    ("tags.env IS NULL", {"d", "e"}),
    ("tags.env IS NOT NULL", {"a", "b", "c"}),
    ("metadata.user = 'ann'", {"a", "d"}),
    ("request_metadata.user ILIKE 'ANN'", {"a", "d", "e"}),
    ("metadata.user IS NULL", {"c"}),
    ("tags.env = 'prod' AND status = 'OK' AND execution_time_ms > 100", {"c"}),
    ("trace_id = '{a}'", {"a"}),
    ("request_id IN ('{b}', '{e}')", {"b", "e"}),
    ("trace_id NOT IN ('{a}', '{b}')", {"c", "d", "e"}),
]


@requires("traces")
class TraceTests(KitBase):
    # -- start / get ----------------------------------------------------------------------

    def test_start_and_get_trace(self, store):
        """A trace info round-trips, with the artifact location tag the store adds."""
        exp = new_experiment(store)
        sent = make_trace(exp, tags={"k": "v"}, metadata={"m": "1"})
        stored = store.start_trace(sent)
        location = store.get_experiment(exp).artifact_location.rstrip("/")
        for got in (stored, store.get_trace_info(sent.trace_id)):
            assert got.trace_id == sent.trace_id
            assert got.experiment_id == exp
            assert got.request_time == BASE_TIME
            assert got.execution_duration == 25
            assert got.state == TraceState.OK
            assert got.request_preview == '{"q": "hi"}'
            assert got.response_preview == '"hello"'
            assert got.trace_metadata == {"mlflow.trace_schema.version": "3", "m": "1"}
            assert got.tags == {
                "k": "v",
                TRACE_NAME_TAG: "root",
                TRACE_ARTIFACT_LOCATION_TAG: f"{location}/traces/{sent.trace_id}/artifacts",
            }
            assert got.assessments == []

    def test_start_trace_again_updates_it(self, store):
        """Sending a trace id again updates it; from another experiment it is refused."""
        exp = new_experiment(store)
        first = make_trace(exp, duration=None, state=TraceState.IN_PROGRESS, tags={"a": "1"})
        store.start_trace(first)
        store.start_trace(make_trace(exp, duration=90, tags={"b": "2"},
                                     trace_id_=first.trace_id))
        got = store.get_trace_info(first.trace_id)
        assert got.state == TraceState.OK and got.execution_duration == 90
        assert got.tags["a"] == "1" and got.tags["b"] == "2"
        other = new_experiment(store)
        assert error_code(lambda: store.start_trace(
            make_trace(other, trace_id_=first.trace_id))) == ErrorCode.INVALID_PARAMETER_VALUE

    def test_unknown_traces_and_experiments(self, store):
        """Unknown traces and experiments are RESOURCE_DOES_NOT_EXIST."""
        missing = trace_id()
        for call in (
            lambda: store.get_trace_info(missing),
            lambda: store.set_trace_tag(missing, "k", "v"),
            lambda: store.delete_trace_tag(missing, "k"),
            lambda: store.get_assessment(missing, "a-1"),
            lambda: store.create_assessment(feedback(missing)),
            lambda: store.start_trace(make_trace("987654")),
        ):
            assert error_code(call) == ErrorCode.RESOURCE_DOES_NOT_EXIST
        assert store.batch_get_trace_infos([missing]) == []

    def test_deleted_experiment_refuses_writes_and_hides_traces(self, store):
        """A deleted experiment's traces refuse writes, leave searches, and come back on restore."""
        exp = new_experiment(store)
        kept = store.start_trace(make_trace(exp))
        store.delete_experiment(exp)
        assert error_code(lambda: store.start_trace(make_trace(exp))) == \
            ErrorCode.INVALID_PARAMETER_VALUE
        assert error_code(lambda: store.set_trace_tag(kept.trace_id, "k", "v")) == \
            ErrorCode.INVALID_PARAMETER_VALUE
        assert error_code(lambda: store.create_assessment(feedback(kept.trace_id))) == \
            ErrorCode.INVALID_PARAMETER_VALUE
        assert list(store.search_traces([exp])) == []
        assert store.get_trace_info(kept.trace_id).trace_id == kept.trace_id
        store.restore_experiment(exp)
        assert [t.trace_id for t in store.search_traces([exp])] == [kept.trace_id]

    def test_experiment_trace_ids_reach_deleted_experiments(self, store):
        """experiment_trace_ids lists every trace of an experiment, deleted or not (a
        migration copies them all), and none of other or unknown experiments."""
        exp, other = new_experiment(store), new_experiment(store)
        ids = {store.start_trace(make_trace(exp, BASE_TIME + i)).trace_id for i in range(3)}
        elsewhere = store.start_trace(make_trace(other)).trace_id
        assert set(store.experiment_trace_ids(exp)) == ids
        store.delete_experiment(exp)
        assert sorted(store.experiment_trace_ids(exp)) == sorted(ids)
        assert list(store.experiment_trace_ids(other)) == [elsewhere]
        assert list(store.experiment_trace_ids("987654321")) == []

    def test_batch_get_trace_infos(self, store):
        """Batch gets keep the order asked, skip unknown ids, honour the experiments."""
        exp, other = new_experiment(store), new_experiment(store)
        a = store.start_trace(make_trace(exp)).trace_id
        b = store.start_trace(make_trace(other)).trace_id
        got = store.batch_get_trace_infos([b, trace_id(), a])
        assert [t.trace_id for t in got] == [b, a]
        assert [t.trace_id for t in store.batch_get_trace_infos([a, b], [exp])] == [a]
        assert store.batch_get_trace_infos([a], []) == []

    # -- tags -----------------------------------------------------------------------------

    def test_trace_tags(self, store):
        """Trace tags are set, overwritten and deleted; a missing one is not found."""
        exp = new_experiment(store)
        tid = store.start_trace(make_trace(exp)).trace_id
        store.set_trace_tag(tid, "owner", "ann")
        store.set_trace_tag(tid, "owner", "bob")
        store.set_trace_tag(tid, "x" * 250, "y" * 8000)
        tags = store.get_trace_info(tid).tags
        assert tags["owner"] == "bob" and tags["x" * 250] == "y" * 8000
        store.delete_trace_tag(tid, "owner")
        assert "owner" not in store.get_trace_info(tid).tags
        assert error_code(lambda: store.delete_trace_tag(tid, "owner")) == \
            ErrorCode.RESOURCE_DOES_NOT_EXIST

    # -- search ---------------------------------------------------------------------------

    def _scenario(self, store: Any) -> tuple[str, dict[str, str]]:
        exp = new_experiment(store)
        ids: dict[str, str] = {}
        for label, offset, duration, state, name, tags, metadata in TRACE_SCENARIO:
            info = make_trace(exp, BASE_TIME + offset, duration=duration, state=state,
                              name=name, tags=tags, metadata=metadata)
            ids[label] = store.start_trace(info).trace_id
        # Noise in another experiment that no search of ``exp`` may return.
        store.start_trace(make_trace(new_experiment(store), tags={"env": "prod"}))
        return exp, ids

    def test_search_filter_truth_table(self, store):
        """Every filter of TRACE_FILTER_TRUTH_TABLE selects exactly its traces."""
        exp, ids = self._scenario(store)
        names = {v: k for k, v in ids.items()}
        values = {**ids, "t100": BASE_TIME + 100, "t200": BASE_TIME + 200}
        for text, expected in TRACE_FILTER_TRUTH_TABLE:
            got = store.search_traces([exp], trace_filter(text.format(**values)))
            assert {names[t.trace_id] for t in got} == expected, text

    def test_search_order(self, store):
        """Clauses in turn, missing keys last, then timestamp_ms DESC, trace_id ASC."""
        exp, ids = self._scenario(store)

        def order(*clauses: str) -> list[str]:
            names = {v: k for k, v in ids.items()}
            page = store.search_traces([exp], order_by=trace_order(clauses))
            return [names[t.trace_id] for t in page]

        assert order() == ["e", "d", "c", "b", "a"]
        assert order("timestamp_ms ASC") == ["a", "b", "c", "d", "e"]
        assert order("execution_time_ms DESC") == ["c", "b", "a", "e", "d"]
        assert order("execution_time_ms ASC") == ["e", "a", "b", "c", "d"]
        assert order("tags.env ASC") == ["b", "c", "a", "e", "d"]
        assert order("tags.env DESC") == ["c", "a", "b", "e", "d"]
        assert order("name DESC", "timestamp_ms ASC") == ["c", "d", "a", "b", "e"]
        assert order("metadata.rank") == ["b", "a", "d", "e", "c"]
        # Equal request times fall back on the trace id.
        tie = new_experiment(store)
        tied = sorted(store.start_trace(make_trace(tie)).trace_id for _ in range(3))
        assert [t.trace_id for t in store.search_traces([tie])] == tied

    def test_search_pages_cover_every_trace_once(self, store):
        """Pages cover every trace once, in order, with a token only when more follow."""
        exp = new_experiment(store)
        for i in range(23):
            store.start_trace(make_trace(exp, BASE_TIME + i // 2))
        everything = [t.trace_id for t in store.search_traces([exp], max_results=100)]
        pages = collect_pages(lambda token: store.search_traces([exp], max_results=5,
                                                                page_token=token))
        assert [len(p) for p in pages] == [5, 5, 5, 5, 3]
        assert [t.trace_id for p in pages for t in p] == everything
        exact = collect_pages(lambda token: store.search_traces([exp], max_results=23,
                                                                page_token=token))
        assert len(exact) == 1
        assert error_code(lambda: store.search_traces([exp], page_token="garbage")) == \
            ErrorCode.INVALID_PARAMETER_VALUE

    # -- deletion -------------------------------------------------------------------------

    def test_delete_traces(self, store):
        """Deletion by ids (own experiment only) and by age (oldest first, max_traces)."""
        exp, other = new_experiment(store), new_experiment(store)
        ids = [store.start_trace(make_trace(exp, BASE_TIME + i)).trace_id for i in range(6)]
        foreign = store.start_trace(make_trace(other, BASE_TIME)).trace_id
        store.create_assessment(feedback(ids[0]))
        assert store.delete_traces(exp, trace_ids=[ids[5], foreign, trace_id()]) == 1
        assert store.delete_traces(exp, max_timestamp_millis=BASE_TIME + 3, max_traces=2) == 2
        left = [t.trace_id for t in store.search_traces([exp], order_by=trace_order(
            ["timestamp_ms ASC"]))]
        assert left == ids[2:5]
        assert store.delete_traces(exp, max_timestamp_millis=BASE_TIME + 3) == 2
        assert [t.trace_id for t in store.search_traces([exp])] == [ids[4]]
        assert error_code(lambda: store.get_trace_info(ids[0])) == \
            ErrorCode.RESOURCE_DOES_NOT_EXIST
        assert store.get_trace_info(foreign).trace_id == foreign

    # -- runs -----------------------------------------------------------------------------

    def test_traces_found_by_run(self, store):
        """run_id matches the mlflow.sourceRun metadata or a linked run."""
        exp = new_experiment(store)
        run, other = new_run(store, exp).info.run_id, new_run(store, exp).info.run_id
        recorded = store.start_trace(make_trace(
            exp, metadata={TRACE_SOURCE_RUN_METADATA: run})).trace_id
        linked = store.start_trace(make_trace(exp)).trace_id
        loose = store.start_trace(make_trace(exp)).trace_id
        store.link_traces_to_run([linked, recorded], other)
        store.link_traces_to_run([linked], other)  # twice: a no-op

        def ids(text: str) -> set[str]:
            return {t.trace_id for t in store.search_traces([exp], trace_filter(text))}

        assert ids(f"run_id = '{run}'") == {recorded}
        assert ids(f"attribute.run_id = '{other}'") == {recorded, linked}
        assert ids(f"run_id != '{run}'") == {linked}
        assert ids(f"run_id IN ('{run}', '{other}')") == {recorded, linked}
        assert ids(f"metadata.`{TRACE_SOURCE_RUN_METADATA}` = '{run}'") == {recorded}
        assert loose not in ids(f"run_id != '{run}'")
        assert error_code(lambda: store.link_traces_to_run([loose], "f" * 32)) == \
            ErrorCode.RESOURCE_DOES_NOT_EXIST
        assert error_code(lambda: store.link_traces_to_run([trace_id()], run)) == \
            ErrorCode.RESOURCE_DOES_NOT_EXIST

    # -- assessments ----------------------------------------------------------------------

    def test_assessments(self, store):
        """Feedback and expectations: create, read, update (kind kept), delete."""
        exp = new_experiment(store)
        tid = store.start_trace(make_trace(exp)).trace_id
        made = store.create_assessment(feedback(tid, rationale="fine", metadata={"a": "1"},
                                                span_id="0123456789abcdef"))
        assert made.assessment_id.startswith("a-") and made.create_time > 0
        assert made.last_update_time == made.create_time
        expected = store.create_assessment(Assessment(
            assessment_id="", trace_id=tid, name="answer", kind=AssessmentKind.EXPECTATION,
            value={"value": {"text": "hello", "n": [1, 2]}},
        ))
        got = store.get_assessment(tid, made.assessment_id)
        assert (got.name, got.kind, got.value) == ("quality", AssessmentKind.FEEDBACK,
                                                   {"value": 0.5})
        assert got.rationale == "fine" and got.metadata == {"a": "1"}
        assert got.source_type == AssessmentSourceType.HUMAN and got.source_id == "kit"
        assert got.span_id == "0123456789abcdef" and got.valid is True
        assert store.get_assessment(tid, expected.assessment_id).value == {
            "value": {"text": "hello", "n": [1, 2]}}
        on_trace = store.get_trace_info(tid).assessments
        assert {a.assessment_id for a in on_trace} == {made.assessment_id, expected.assessment_id}

        updated = store.update_assessment(tid, made.assessment_id, name="q2",
                                          kind=AssessmentKind.FEEDBACK, value={"value": 1},
                                          metadata={"b": "2"})
        assert (updated.name, updated.value) == ("q2", {"value": 1})
        assert updated.metadata == {"a": "1", "b": "2"} and updated.rationale == "fine"
        assert updated.last_update_time >= made.create_time
        assert updated.create_time == made.create_time
        assert error_code(lambda: store.update_assessment(
            tid, made.assessment_id, kind=AssessmentKind.EXPECTATION, value={"value": 2}
        )) == ErrorCode.INVALID_PARAMETER_VALUE
        assert store.get_assessment(tid, made.assessment_id).value == {"value": 1}

        store.delete_assessment(tid, expected.assessment_id)
        assert error_code(lambda: store.get_assessment(tid, expected.assessment_id)) == \
            ErrorCode.RESOURCE_DOES_NOT_EXIST
        assert error_code(lambda: store.delete_assessment(tid, expected.assessment_id)) == \
            ErrorCode.RESOURCE_DOES_NOT_EXIST
        other = store.start_trace(make_trace(exp)).trace_id
        assert error_code(lambda: store.get_assessment(other, made.assessment_id)) == \
            ErrorCode.RESOURCE_DOES_NOT_EXIST
        assert [a.assessment_id for a in store.get_trace_info(tid).assessments] == [
            made.assessment_id]
