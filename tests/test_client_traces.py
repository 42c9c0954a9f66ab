"""MLflow tracing (the real mlflow-skinny 3.17.2 client) against `tracklog server`.

Every test runs once per backend of the ``server`` fixture (SQLite, PostgreSQL). Traces
are exported in the client's background thread; each test flushes it before reading.
"""

from __future__ import annotations

import threading
import time
import uuid

import httpx
import mlflow
import pytest
from mlflow.entities import AssessmentSource, Feedback
from mlflow.exceptions import MlflowException


def _flush() -> None:
    mlflow.flush_trace_async_logging(terminate=False)


def _last_trace_id() -> str:
    _flush()
    trace_id = mlflow.get_last_active_trace_id()
    assert trace_id and trace_id.startswith("tr-")
    return trace_id


@mlflow.trace(span_type="TOOL")
def _lookup(word: str) -> str:
    return word.upper()


@mlflow.trace(name="answer")
def _answer(question: str, tag: str | None = None) -> dict:
    if tag is not None:
        mlflow.update_current_trace(tags={"case": tag})
    with mlflow.start_span("retrieve") as span:
        span.set_inputs({"q": question})
        words = [_lookup(w) for w in question.split()]
        span.set_outputs({"n": len(words)})
    return {"words": words}


@mlflow.trace
def _fails(x: int) -> int:
    raise ValueError(f"bad input {x}")


def _search(experiment_id: str, **kwargs) -> list:
    _flush()
    return mlflow.search_traces(locations=[experiment_id], return_type="list", **kwargs)


def test_nested_spans_read_back(client, experiment_id):
    assert _answer("what is up") == {"words": ["WHAT", "IS", "UP"]}
    trace_id = _last_trace_id()
    trace = mlflow.get_trace(trace_id)
    assert trace.info.trace_id == trace_id
    assert trace.info.state == "OK"
    assert trace.info.experiment_id == experiment_id
    assert trace.info.execution_duration is not None and trace.info.execution_duration >= 0
    assert trace.info.tags["mlflow.traceName"] == "answer"
    assert trace.info.tags["mlflow.artifactLocation"] == (
        f"mlflow-artifacts:/{experiment_id}/traces/{trace_id}/artifacts"
    )
    assert "what is up" in trace.info.request_preview
    spans = {s.name: s for s in trace.data.spans}
    lookups = sorted((s for s in trace.data.spans if s.name == "_lookup"),
                     key=lambda s: s.start_time_ns)
    assert sorted(spans) == ["_lookup", "answer", "retrieve"] and len(lookups) == 3
    root = spans["answer"]
    assert root.parent_id is None
    assert root.inputs == {"question": "what is up", "tag": None}
    assert root.outputs == {"words": ["WHAT", "IS", "UP"]}
    assert spans["retrieve"].parent_id == root.span_id
    assert spans["retrieve"].inputs == {"q": "what is up"}
    assert spans["retrieve"].outputs == {"n": 3}
    assert all(s.parent_id == spans["retrieve"].span_id for s in lookups)
    assert [(s.inputs, s.outputs) for s in lookups] == [
        ({"word": "what"}, "WHAT"), ({"word": "is"}, "IS"), ({"word": "up"}, "UP")]
    assert lookups[0].span_type == "TOOL"
    # The info alone, through MlflowClient, carries the same fields.
    info = client.get_trace(trace_id).info
    assert info.request_time == trace.info.request_time


def test_exception_sets_error_state(client, experiment_id):
    with pytest.raises(ValueError, match="bad input 7"):
        _fails(7)
    trace = mlflow.get_trace(_last_trace_id())
    assert trace.info.state == "ERROR"
    (span,) = trace.data.spans
    assert span.status.status_code == "ERROR"
    assert any(e.name == "exception" for e in span.events)
    errors = _search(experiment_id, filter_string="status = 'ERROR'")
    assert [t.info.trace_id for t in errors] == [trace.info.trace_id]


def test_search_filters_order_and_pages(client, experiment_id):
    ids = []
    for i in range(7):
        _answer(f"question {i}", tag="even" if i % 2 == 0 else "odd")
        ids.append(_last_trace_id())
        time.sleep(0.002)  # distinct request times, so the order is known
    with pytest.raises(ValueError):
        _fails(1)
    failed = _last_trace_id()

    newest_first = [t.info.trace_id for t in _search(experiment_id)]
    assert newest_first == [failed, *reversed(ids)]
    oldest_first = _search(experiment_id, order_by=["timestamp_ms ASC"])
    assert [t.info.trace_id for t in oldest_first] == [*ids, failed]

    even = _search(experiment_id, filter_string="tags.case = 'even' AND status = 'OK'",
                   order_by=["timestamp_ms ASC"])
    assert [t.info.trace_id for t in even] == ids[0::2]
    assert all(len(t.data.spans) == 4 for t in even)  # root, retrieve, 2 lookups
    by_name = _search(experiment_id, filter_string="trace.name = 'answer'")
    assert len(by_name) == 7
    cut = oldest_first[3].info.request_time
    later = _search(experiment_id, filter_string=f"timestamp_ms > {cut} AND status != 'ERROR'")
    assert {t.info.trace_id for t in later} == set(ids[4:])
    slow = _search(experiment_id, filter_string="execution_time_ms >= 0 AND tags.case LIKE 'o%'")
    assert {t.info.trace_id for t in slow} == set(ids[1::2])
    assert _search(experiment_id, filter_string="metadata.`mlflow.trace_schema.version` = '3'")
    assert _search(experiment_id, filter_string="tags.case IS NULL") and not _search(
        experiment_id, filter_string="tags.case = 'none'")

    # Pages of three through the client's paging, each trace exactly once, in order.
    seen, token = [], None
    while True:
        page = client.search_traces(locations=[experiment_id], max_results=3,
                                    page_token=token, include_spans=False)
        assert len(page) <= 3
        seen += [t.info.trace_id for t in page]
        token = page.token
        if not token:
            break
    assert seen == newest_first

    frame = mlflow.search_traces(locations=[experiment_id], filter_string="tags.case = 'odd'",
                                 order_by=["timestamp_ms ASC"])
    assert list(frame["trace_id"]) == ids[1::2]
    assert set(frame["state"]) == {"OK"}

    with pytest.raises(MlflowException) as info:
        mlflow.search_traces(locations=[experiment_id], filter_string="span.name = 'x' OR 1")
    assert info.value.error_code == "INVALID_PARAMETER_VALUE"


def test_trace_tags(client, experiment_id, server):
    _answer("tag me")
    trace_id = _last_trace_id()
    client.set_trace_tag(trace_id, "owner", "alice")
    client.set_trace_tag(trace_id, "owner", "bob")
    client.set_trace_tag(trace_id, "long", "x" * 9000)
    tags = client.get_trace(trace_id).info.tags
    assert tags["owner"] == "bob" and tags["long"] == "x" * 8000
    assert [t.info.trace_id for t in _search(experiment_id, filter_string="tags.owner = 'bob'")
            ] == [trace_id]
    client.delete_trace_tag(trace_id, "owner")
    assert "owner" not in client.get_trace(trace_id).info.tags
    with pytest.raises(MlflowException) as info:
        client.delete_trace_tag(trace_id, "owner")
    assert info.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    # The client itself skips server-owned tags; the server refuses them too.
    moved = httpx.patch(f"{server.url}/api/2.0/mlflow/traces/{trace_id}/tags",
                        json={"key": "mlflow.artifactLocation", "value": "s3://elsewhere"})
    assert moved.status_code == 400 and moved.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    assert client.get_trace(trace_id).info.tags["mlflow.artifactLocation"].startswith(
        "mlflow-artifacts:/")


def test_delete_by_id_and_by_age(client, experiment_id):
    old = []
    for i in range(3):
        _answer(f"old {i}")
        old.append(_last_trace_id())
    time.sleep(0.01)
    cut = int(time.time() * 1000)
    time.sleep(0.01)
    new = []
    for i in range(3):
        _answer(f"new {i}")
        new.append(_last_trace_id())

    assert client.delete_traces(experiment_id, trace_ids=[new[0], "tr-" + "0" * 32]) == 1
    assert client.delete_traces(experiment_id, max_timestamp_millis=cut, max_traces=2) == 2
    left = [t.info.trace_id for t in _search(experiment_id, order_by=["timestamp_ms ASC"])]
    assert left == [old[2], new[1], new[2]]
    assert client.delete_traces(experiment_id, max_timestamp_millis=cut) == 1
    with pytest.raises(MlflowException) as info:
        client.get_trace(old[2])
    assert info.value.error_code == "RESOURCE_DOES_NOT_EXIST"


def test_traces_found_by_run(client, experiment_id):
    with mlflow.start_run() as run:
        _answer("inside a run")
        inside = _last_trace_id()
    _answer("outside")
    outside = _last_trace_id()
    assert client.get_trace(inside).info.trace_metadata["mlflow.sourceRun"] == run.info.run_id
    found = _search(experiment_id, run_id=run.info.run_id)
    assert [t.info.trace_id for t in found] == [inside]

    other = client.create_run(experiment_id)
    client.link_traces_to_run([outside, inside], other.info.run_id)
    linked = _search(experiment_id, run_id=other.info.run_id)
    assert {t.info.trace_id for t in linked} == {inside, outside}
    with pytest.raises(MlflowException) as info:
        client.link_traces_to_run(["tr-" + "f" * 32], other.info.run_id)
    assert info.value.error_code == "RESOURCE_DOES_NOT_EXIST"


def test_feedback_and_expectations(client, experiment_id):
    _answer("judge me")
    trace_id = _last_trace_id()
    feedback = mlflow.log_feedback(
        trace_id=trace_id, name="relevance", value=0.75, rationale="mostly on topic",
        source=AssessmentSource(source_type="LLM_JUDGE", source_id="judge-1"),
        metadata={"round": "1"},
    )
    expectation = mlflow.log_expectation(trace_id=trace_id, name="expected",
                                         value={"words": ["JUDGE", "ME"]})
    feedback_id, expectation_id = feedback.assessment_id, expectation.assessment_id
    assert feedback_id is not None and feedback_id.startswith("a-")
    assert expectation_id is not None

    got = mlflow.get_assessment(trace_id, feedback_id)
    assert isinstance(got, Feedback)
    assert got.value == 0.75 and got.rationale == "mostly on topic"
    assert got.source.source_type == "LLM_JUDGE" and got.source.source_id == "judge-1"
    assert got.metadata == {"round": "1"}
    by_name = {a.name: a for a in mlflow.get_trace(trace_id).info.assessments}
    assert by_name["expected"].value == {"words": ["JUDGE", "ME"]}
    assert by_name["relevance"].value == 0.75

    updated = mlflow.update_assessment(
        trace_id=trace_id, assessment_id=feedback_id,
        assessment=Feedback(name="relevance", value=1.0, rationale="on topic"),
    )
    assert isinstance(updated, Feedback)
    assert updated.value == 1.0 and updated.rationale == "on topic"
    reread = mlflow.get_assessment(trace_id, feedback_id)
    assert isinstance(reread, Feedback) and reread.value == 1.0

    mlflow.delete_assessment(trace_id=trace_id, assessment_id=expectation_id)
    assert [a.name for a in client.get_trace(trace_id).info.assessments] == ["relevance"]
    with pytest.raises(MlflowException) as info:
        mlflow.get_assessment(trace_id, expectation_id)
    assert info.value.error_code == "RESOURCE_DOES_NOT_EXIST"


def test_unknown_trace_is_not_found(client, experiment_id):
    unknown = "tr-" + uuid.uuid4().hex
    with pytest.raises(MlflowException) as info:
        client.get_trace(unknown)
    assert info.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    # The fluent API logs a warning and answers None, as against MLflow's own server.
    assert mlflow.get_trace(unknown) is None


def test_deleted_experiment_hides_and_refuses_traces(client, experiment_id, server):
    _answer("before deletion")
    trace_id = _last_trace_id()
    client.delete_experiment(experiment_id)
    assert _search(experiment_id) == []
    with pytest.raises(MlflowException) as info:
        client.set_trace_tag(trace_id, "k", "v")
    assert info.value.error_code == "INVALID_PARAMETER_VALUE"
    client.restore_experiment(experiment_id)
    assert [t.info.trace_id for t in _search(experiment_id)] == [trace_id]


def test_protocol_edges(server, experiment_id):
    base = server.url
    # The OTLP endpoint refuses in the words that make the client stop streaming there.
    otlp = httpx.post(f"{base}/v1/traces", content=b"\x00",
                      headers={"Content-Type": "application/x-protobuf"})
    assert otlp.status_code == 501
    assert "REST OTLP span logging is not supported" in otlp.json()["message"]
    bad = httpx.post(f"{base}/api/3.0/mlflow/traces", json={"trace": {"trace_info": {
        "trace_id": "../../etc", "request_time": "2026-01-01T00:00:00Z",
        "trace_location": {"mlflow_experiment": {"experiment_id": experiment_id}}}}})
    assert bad.status_code == 400 and "trace_id" in bad.json()["message"]
    bad_time = httpx.post(f"{base}/api/3.0/mlflow/traces", json={"trace": {"trace_info": {
        "trace_id": "tr-1", "request_time": "yesterday",
        "trace_location": {"mlflow_experiment": {"experiment_id": experiment_id}}}}})
    assert bad_time.status_code == 400 and "request_time" in bad_time.json()["message"]
    started = httpx.post(f"{base}/api/3.0/mlflow/traces", json={"trace": {"trace_info": {
        "trace_id": "tr-" + "a" * 32, "request_time": "2026-01-01T00:00:01.250Z",
        "execution_duration": "0.036s", "state": "OK",
        "trace_location": {"type": "MLFLOW_EXPERIMENT",
                           "mlflow_experiment": {"experiment_id": experiment_id}}}}})
    assert started.status_code == 200
    info = started.json()["trace"]["trace_info"]
    assert info["request_time"] == "2026-01-01T00:00:01.250Z"
    assert info["execution_duration"] == "0.036s"
    search = httpx.post(f"{base}/api/3.0/mlflow/traces/search", json={
        "locations": [{"type": "MLFLOW_EXPERIMENT",
                       "mlflow_experiment": {"experiment_id": experiment_id}}],
        "filter": "trace.timestamp_ms = 1767225601250"})
    assert [t["trace_id"] for t in search.json()["traces"]] == ["tr-" + "a" * 32]
    # Static segments win over the trace id parameter.
    missing = httpx.get(f"{base}/api/3.0/mlflow/traces/get", params={"trace_id": "tr-nope"})
    assert missing.status_code == 404
    assert missing.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"
    batch = httpx.get(f"{base}/api/3.0/mlflow/traces/batchGet",
                      params={"trace_ids": ["tr-" + "a" * 32, "tr-nope"]})
    assert [t["trace_info"]["trace_id"] for t in batch.json()["traces"]] == ["tr-" + "a" * 32]
    too_many = httpx.post(f"{base}/api/3.0/mlflow/traces/search", json={
        "locations": [{"mlflow_experiment": {"experiment_id": experiment_id}}],
        "max_results": 501})
    assert too_many.status_code == 400 and "max_results" in too_many.json()["message"]


def test_thousand_traces_from_four_threads(client, experiment_id, server):
    """1,000 traces of 20 spans each, traced from 4 threads at once: none lost."""
    if not server.backend.startswith("sqlite"):
        # The load is the client's and the server's; the SQL store's concurrent writers
        # are held on every database by its own tests. One backend keeps the suite short.
        pytest.skip("the trace load test runs on SQLite only")

    @mlflow.trace(name="load")
    def load(worker: int, i: int) -> int:
        total = 0
        for j in range(19):
            with mlflow.start_span(f"step-{j}") as span:
                span.set_inputs({"j": j})
                total += j
        return total

    failures: list[BaseException] = []

    def work(worker: int) -> None:
        try:
            for i in range(250):
                load(worker, i)
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            failures.append(exc)

    threads = [threading.Thread(target=work, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not failures
    _flush()
    seen: list[str] = []
    token = None
    while True:
        page = client.search_traces(locations=[experiment_id], max_results=500,
                                    page_token=token, include_spans=False,
                                    filter_string="name = 'load'")
        seen += [t.info.trace_id for t in page]
        token = page.token
        if not token:
            break
    assert len(seen) == len(set(seen)) == 1000
    sample = mlflow.get_trace(seen[500])
    assert len(sample.data.spans) == 20
    assert {s.name for s in sample.data.spans} == {"load", *(f"step-{j}" for j in range(19))}
