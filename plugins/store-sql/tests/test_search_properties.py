"""Property: a run or experiment search pushed down to SQL answers exactly what the
grammar's Python evaluator answers over the same data, on SQLite, PostgreSQL, MariaDB and
the file store.

The data is random but the same on every backend (a fixed seed); hypothesis draws filter
strings and order-bys over it, which go through the parser like a request's. Both sides
get the same ``Filter`` and ``OrderBy`` objects; the Python side evaluates them
(``compile_run_filter`` and ``sort_runs``, or the experiment counterparts) over every
entity read back from the store, the store side pages through its search with a random
page size.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tracklog.entities import (
    Dataset,
    DatasetInput,
    ExperimentTag,
    InputTag,
    Metric,
    Param,
    RunStatus,
    RunTag,
    ViewType,
)
from tracklog.plugins import resolve_store
from tracklog.search import (
    compile_experiment_filter,
    compile_run_filter,
    parse_experiment_filter,
    parse_experiment_order_by,
    parse_run_filter,
    parse_run_order_by,
    sort_experiments,
    sort_runs,
)

from .conftest import make_store

# Strings: case, LIKE's wildcards and the backends' escape character as literals, digits
# that sort differently as text and as numbers, an empty value, a non-ASCII letter, a
# trailing space.
WORDS = ["a", "b", "ab", "ba", "a_b", "a%b", "aab", "9", "10", "", "é", "A", "B", "a ",
         "a\\b", "a\\_b"]
LIKE_PATTERNS = ["%", "a%", "%b", "%a%", "a_", "_", "a\\_b", "%\\%%", "é%", "", "a\\\\b",
                 "%\\", "A%", "a"]
# MariaDB's utf8mb4_bin is a PAD SPACE collation: there 'a' = 'a ' holds and the two sort
# as equals, where MLflow's semantics (and every other backend) tell them apart. That is
# the collation the schema chose, so MariaDB gets its data without trailing spaces.
PAD_SPACE_BACKENDS = {"mysql"}
# Metric values: no NaN (how NaN sorts and compares is being settled separately), no
# infinities (clamped differently by the backends on the way in).
NUMBERS = [-1.5, 0, 0.5, 1, 2, 3, 1e10, float("inf"), float("-inf")]
STATUSES = [s.value for s in (RunStatus.RUNNING, RunStatus.FINISHED, RunStatus.FAILED)]
N_RUNS = 30


def _dataset(rng: random.Random, pad_space: bool) -> list[dict]:
    words = [w.rstrip() for w in WORDS] if pad_space else WORDS
    runs = []
    for i in range(N_RUNS):
        metrics = {}
        for key in ("m1", "m2"):
            if rng.random() < 0.75:
                # Several points: the latest (max step, then timestamp) is the one compared.
                metrics[key] = [(rng.choice(NUMBERS), rng.randint(0, 3), rng.randint(0, 3))
                                for _ in range(rng.randint(1, 3))]
        runs.append({
            "name": rng.choice(WORDS[:8]) + str(i % 3),
            "user": rng.choice(["u1", "u2", "u10"]),
            "start": rng.choice([100, 200, 300, 400]),
            "end": rng.choice([None, 500, 600]),
            "status": rng.choice(STATUSES),
            "metrics": metrics,
            "params": {k: rng.choice(words) for k in ("p1", "p2") if rng.random() < 0.7},
            "tags": {k: rng.choice(words) for k in ("t1",) if rng.random() < 0.7},
            "dataset": rng.choice([None, ("d1", "x1", "train"), ("d2", "x2", "eval"),
                                   ("d1", "x2", "eval")]),
        })
    return runs


N_EXPERIMENTS = 20


def _experiments(store, rng: random.Random, pad_space: bool) -> None:
    words = [w.rstrip() for w in WORDS] if pad_space else WORDS
    for i in range(N_EXPERIMENTS):
        tags = [ExperimentTag(k, rng.choice(words)) for k in ("t1", "t2") if rng.random() < 0.7]
        exp = store.create_experiment(f"{rng.choice(words[:8])}{i}", tags=tags)
        if rng.random() < 0.2:
            store.delete_experiment(exp)


def _load(store, runs: list[dict]) -> list[str]:
    exp = store.create_experiment("props-runs")
    for spec in runs:
        run = store.create_run(exp, spec["user"], spec["start"], run_name=spec["name"])
        rid = run.info.run_id
        metrics = [Metric(k, v, ts, step) for k, points in spec["metrics"].items()
                   for v, ts, step in points]
        store.log_batch(rid, metrics=metrics,
                        params=[Param(k, v) for k, v in spec["params"].items()],
                        tags=[RunTag(k, v) for k, v in spec["tags"].items()])
        status = RunStatus(spec["status"])
        store.update_run_info(rid, run_status=status, end_time=spec["end"])
        if spec["dataset"]:
            name, digest, context = spec["dataset"]
            store.log_inputs(rid, datasets=[DatasetInput(
                Dataset(name, digest, "local", "{}"),
                (InputTag("mlflow.data.context", context),))])
    return [exp]


@pytest.fixture(scope="module", params=["sqlite", "postgresql", "mysql", "file"])
def loaded(request: pytest.FixtureRequest, tmp_path_factory) -> Iterator[tuple]:
    tmp = tmp_path_factory.mktemp(f"props-{request.param}")
    if request.param == "file":
        store = resolve_store(f"file://{tmp / 'mlruns'}", "mlflow-artifacts:/")
    else:
        store = make_store(request, request.param, tmp)
    rng = random.Random(20261203)
    pad_space = request.param in PAD_SPACE_BACKENDS
    experiments = _load(store, _dataset(rng, pad_space))
    _experiments(store, rng, pad_space)
    everything = store.search_runs(experiments, run_view_type=ViewType.ALL, max_results=1000)
    yield store, experiments, list(everything)
    if request.param in ("sqlite", "file"):
        store.close()


def _quote(s: str) -> str:
    return f"'{s}'"


string_key = st.sampled_from(["params.p1", "params.p2", "params.nope", "tags.t1",
                              "tags.nope"])
string_clause = st.one_of(
    st.builds(lambda k, op, v: f"{k} {op} {_quote(v)}", string_key,
              st.sampled_from(["=", "!="]), st.sampled_from(WORDS)),
    st.builds(lambda k, op, v: f"{k} {op} {_quote(v)}", string_key,
              st.sampled_from(["LIKE", "ILIKE"]), st.sampled_from(LIKE_PATTERNS + WORDS)),
    st.builds(lambda k, op: f"{k} {op}", string_key, st.sampled_from(["IS NULL",
                                                                       "IS NOT NULL"])),
)
metric_clause = st.builds(
    lambda k, op, v: f"metrics.{k} {op} {v}", st.sampled_from(["m1", "m2", "nope"]),
    st.sampled_from(["=", "!=", "<", "<=", ">", ">="]),
    st.sampled_from([n for n in NUMBERS if abs(n) != float("inf")] + [0.25, -2, 1e11]),
)
attribute_clause = st.one_of(
    st.builds(lambda k, op, v: f"attributes.{k} {op} {v}",
              st.sampled_from(["start_time", "end_time"]),
              st.sampled_from(["=", "!=", "<", "<=", ">", ">="]),
              st.sampled_from([100, 250, 300, 500, 600])),
    st.builds(lambda k, op, v: f"attributes.{k} {op} {_quote(v)}",
              st.sampled_from(["run_name", "user_id"]),
              st.sampled_from(["=", "!=", "LIKE", "ILIKE"]),
              st.sampled_from(["a0", "ab1", "u1", "u10", "%1", "a%", "_b%", "u_"])),
    # Run ids differ per backend: the clause names runs by position, filled in the test.
    st.builds(lambda op, ns: f"attributes.run_id {op} ({', '.join(f'#{n}#' for n in ns)})",
              st.sampled_from(["IN", "NOT IN"]),
              st.lists(st.integers(0, N_RUNS - 1), min_size=1, max_size=3, unique=True)),
    st.builds(lambda op, v: f"attributes.status {op} {_quote(v)}",
              st.sampled_from(["=", "!="]), st.sampled_from(STATUSES)),
)
dataset_clause = st.one_of(
    st.builds(lambda k, op, v: f"datasets.{k} {op} {_quote(v)}",
              st.sampled_from(["name", "digest", "context"]),
              st.sampled_from(["=", "!=", "LIKE"]),
              st.sampled_from(["d1", "x2", "train", "eval", "d%", "%2"])),
    st.builds(lambda k, vs: f"datasets.{k} IN ({', '.join(map(_quote, vs))})",
              st.sampled_from(["name", "context"]),
              st.lists(st.sampled_from(["d1", "d2", "train", "eval"]), min_size=1,
                       max_size=2, unique=True)),
)
filters = st.lists(st.one_of(string_clause, metric_clause, attribute_clause, dataset_clause),
                   max_size=3).map(" AND ".join)
order_bys = st.lists(
    st.builds(lambda k, d: f"{k}{d}",
              st.sampled_from(["metrics.m1", "metrics.m2", "params.p1", "tags.t1",
                               "attributes.start_time", "attributes.end_time",
                               "attributes.run_name", "attributes.status", "metrics.nope"]),
              st.sampled_from(["", " ASC", " DESC"])),
    max_size=2, unique_by=lambda s: s.split()[0])


@settings(max_examples=150, derandomize=True, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(filter_string=filters, order_by=order_bys, page_size=st.integers(1, 40))
def test_store_search_agrees_with_the_evaluator(loaded, filter_string: str,
                                                order_by: list[str], page_size: int) -> None:
    store, experiments, everything = loaded
    ids = sorted(r.info.run_id for r in everything)
    filter_string = re.sub(r"#(\d+)#", lambda m: _quote(ids[int(m[1])]), filter_string)
    flt = parse_run_filter(filter_string)
    order = parse_run_order_by(order_by)
    matches = compile_run_filter(flt)
    expected = [r.info.run_id for r in sort_runs([r for r in everything if matches(r)], order)]
    got: list[str] = []
    token = None
    while True:
        page = store.search_runs(experiments, filter=flt, run_view_type=ViewType.ALL,
                                 max_results=page_size, order_by=order, page_token=token)
        got += [r.info.run_id for r in page]
        token = page.token
        if not token:
            break
    assert got == expected, (filter_string, order_by)


experiment_clause = st.one_of(
    st.builds(lambda op, v: f"attributes.name {op} {_quote(v)}",
              st.sampled_from(["=", "!=", "LIKE", "ILIKE"]),
              st.sampled_from(["a1", "ab3", "Default", "props-runs", "%1", "a%", "_b%", "A%"])),
    st.builds(lambda k, op, v: f"tags.{k} {op} {_quote(v)}",
              st.sampled_from(["t1", "t2", "nope"]),
              st.sampled_from(["=", "!=", "LIKE", "ILIKE"]),
              st.sampled_from(LIKE_PATTERNS + WORDS)),
    st.builds(lambda k, op: f"tags.{k} {op}", st.sampled_from(["t1", "t2", "nope"]),
              st.sampled_from(["IS NULL", "IS NOT NULL"])),
    st.builds(lambda op, v: f"attributes.creation_time {op} {v}",
              st.sampled_from(["=", "!=", "<", ">", ">="]), st.sampled_from([0, 2**62])),
    st.builds(lambda op, ns: f"attributes.experiment_id {op} ({', '.join(f'#{n}#' for n in ns)})",
              st.sampled_from(["IN", "NOT IN"]),
              st.lists(st.integers(0, N_EXPERIMENTS), min_size=1, max_size=3, unique=True)),
)
experiment_order = st.lists(
    st.builds(lambda k, d: f"{k}{d}",
              st.sampled_from(["name", "experiment_id", "creation_time", "last_update_time"]),
              st.sampled_from(["", " ASC", " DESC"])),
    max_size=2, unique_by=lambda s: s.split()[0])


@settings(max_examples=60, derandomize=True, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(filter_string=st.lists(experiment_clause, max_size=3).map(" AND ".join),
       order_by=experiment_order, page_size=st.integers(1, 30),
       view=st.sampled_from(list(ViewType)))
def test_experiment_search_agrees_with_the_evaluator(loaded, filter_string: str,
                                                     order_by: list[str], page_size: int,
                                                     view: ViewType) -> None:
    store = loaded[0]
    everything = list(store.search_experiments(ViewType.ALL, max_results=1000))
    ids = sorted(e.experiment_id for e in everything)
    filter_string = re.sub(r"#(\d+)#", lambda m: _quote(ids[int(m[1])]), filter_string)
    flt = parse_experiment_filter(filter_string)
    order = parse_experiment_order_by(order_by)
    matches = compile_experiment_filter(flt)
    in_view = [e for e in everything if view is ViewType.ALL
               or (e.lifecycle_stage == "deleted") == (view is ViewType.DELETED_ONLY)]
    expected = [e.experiment_id
                for e in sort_experiments([e for e in in_view if matches(e)], order)]
    got: list[str] = []
    token = None
    while True:
        page = store.search_experiments(view, max_results=page_size, filter=flt,
                                        order_by=order, page_token=token)
        got += [e.experiment_id for e in page]
        token = page.token
        if not token:
            break
    assert got == expected, (filter_string, order_by, view)

