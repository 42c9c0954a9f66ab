"""The trace search grammar: parsing (aliases, refusals) and the Python evaluator, which must
agree with the kit's truth table that SQL stores pass."""

from __future__ import annotations

import pytest

from tracklog.errors import ErrorCode, TracklogError
from tracklog.search import (
    compile_trace_filter,
    parse_trace_filter,
    parse_trace_order_by,
    sort_traces,
)
from tracklog.search.ast import Comparison, Identifier, Kind, Op
from tracklog.testing.tracking.traces import (
    BASE_TIME,
    TRACE_FILTER_TRUTH_TABLE,
    TRACE_SCENARIO,
    make_trace,
)


def test_aliases_resolve_to_canonical_identifiers() -> None:
    parsed = parse_trace_filter(
        "request_id = 'tr-1' AND trace.state = 'OK' AND timestamp > 5 AND "
        "attributes.execution_time <= 3 AND end_time < 9 AND name LIKE 'a%' AND "
        "request_metadata.`mlflow.sourceRun` = 'r' AND tags.k IS NULL AND run_id IN ('x')"
    )
    assert parsed == (
        Comparison(Identifier(Kind.ATTRIBUTE, "trace_id"), Op.EQ, "tr-1"),
        Comparison(Identifier(Kind.ATTRIBUTE, "status"), Op.EQ, "OK"),
        Comparison(Identifier(Kind.ATTRIBUTE, "timestamp_ms"), Op.GT, 5),
        Comparison(Identifier(Kind.ATTRIBUTE, "execution_time_ms"), Op.LE, 3),
        Comparison(Identifier(Kind.ATTRIBUTE, "end_time_ms"), Op.LT, 9),
        Comparison(Identifier(Kind.TAG, "mlflow.traceName"), Op.LIKE, "a%"),
        Comparison(Identifier(Kind.METADATA, "mlflow.sourceRun"), Op.EQ, "r"),
        Comparison(Identifier(Kind.TAG, "k"), Op.IS_NULL, None),
        Comparison(Identifier(Kind.ATTRIBUTE, "run_id"), Op.IN, ("x",)),
    )
    order = parse_trace_order_by(["timestamp_ms DESC", "name", "metadata.m ASC"])
    assert [(o.ident.kind, o.ident.key, o.ascending) for o in order] == [
        (Kind.ATTRIBUTE, "timestamp_ms", False),
        (Kind.TAG, "mlflow.traceName", True),
        (Kind.METADATA, "m", True),
    ]


@pytest.mark.parametrize("text, named", [
    ("span.name = 'x'", "span"),
    ("feedback.q = 'good'", "feedback"),
    ("tags.a = 'x' OR tags.b = 'y'", "OR"),
    ("timestamp_ms = 'x'", "timestamp_ms"),
    ("status > 'OK'", "status"),
    ("status RLIKE 'O.*'", "RLIKE"),
    ("attribute.user = 'x'", "user"),
    ("metadata.k > 3", "metadata"),
])
def test_unsupported_filters_are_refused(text: str, named: str) -> None:
    with pytest.raises(TracklogError) as excinfo:
        parse_trace_filter(text)
    assert excinfo.value.error_code == ErrorCode.INVALID_PARAMETER_VALUE
    assert named in excinfo.value.message


def test_order_by_refusals() -> None:
    for clause in ("client_request_id", "span.name", "timestamp_ms sideways"):
        with pytest.raises(TracklogError):
            parse_trace_order_by([clause])


def _scenario():
    traces = {}
    for label, offset, duration, state, name, tags, metadata in TRACE_SCENARIO:
        traces[label] = make_trace("1", BASE_TIME + offset, duration=duration, state=state,
                                   name=name, tags=tags, metadata=metadata,
                                   trace_id_=f"tr-{label}")
    return traces


def test_python_evaluator_agrees_with_the_kit_truth_table() -> None:
    traces = _scenario()
    values = {k: f"tr-{k}" for k in traces} | {"t100": BASE_TIME + 100,
                                                 "t200": BASE_TIME + 200}
    for text, expected in TRACE_FILTER_TRUTH_TABLE:
        matches = compile_trace_filter(parse_trace_filter(text.format(**values)))
        assert {k for k, t in traces.items() if matches(t)} == expected, text


def test_run_id_matches_source_run_or_links() -> None:
    traces = _scenario()
    traces["a"].trace_metadata["mlflow.sourceRun"] = "r1"
    links = {"tr-b": ["r1", "r2"], "tr-c": ["r2"]}

    def select(text: str) -> set[str]:
        matches = compile_trace_filter(parse_trace_filter(text),
                                       lambda t: links.get(t.trace_id, ()))
        return {k for k, t in traces.items() if matches(t)}

    assert select("run_id = 'r1'") == {"a", "b"}
    assert select("run_id != 'r1'") == {"c"}
    assert select("run_id NOT IN ('r2')") == {"a"}
    assert select("run_id LIKE 'r%'") == {"a", "b", "c"}


def test_sort_traces_defaults_and_missing_last() -> None:
    traces = list(_scenario().values())

    def order(*clauses: str) -> list[str]:
        return [t.trace_id[3:] for t in sort_traces(traces, parse_trace_order_by(clauses))]

    assert order() == ["e", "d", "c", "b", "a"]
    assert order("execution_time_ms DESC") == ["c", "b", "a", "e", "d"]
    assert order("tags.env ASC") == ["b", "c", "a", "e", "d"]
    assert order("name DESC", "timestamp_ms ASC") == ["c", "d", "a", "b", "e"]
    assert order("metadata.rank") == ["b", "a", "d", "e", "c"]
