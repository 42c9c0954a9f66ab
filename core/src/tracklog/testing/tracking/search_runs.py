"""search_runs truth tables: one fixed scenario, every filter and ordering checked against it.

The scenario (experiment "search-scenario"; start/end times in ms; ``-`` = absent)::

    run      start status     end   user  loss*     acc  lr     optimizer     team      tier
    alpha    1000  FINISHED   1500  ann   2.0->0.5  0.9  0.01   Adam          vision    t3
    beta     2000  FINISHED   2600  bob   0.25      0.8  0.1    adam          nlp       t1
    gamma    3000  FAILED     3100  ann   1.0       0.9  0.01   SGD           Vision    t2
    delta    4000  RUNNING    -     Ann   0.3->NaN  -    0.001  sgd_momentum  vision-x  -
    epsilon  5000  KILLED     -     carl  0.75      -    1e-3   -             -         t1
    zeta     6000  FINISHED   -     carl  -1.5      -    -      -             nlp       -
    eta      7000  RUNNING    -     carl  -         -    -      -             -         -
    theta    8000  SCHEDULED  -     carl  -         -    -      -             -         -

    * "a->b": an earlier point a, then the latest point b.
    datasets name/digest (context): alpha train-ds/d1 (training) and eval-ds/d2 (evaluation);
    beta train-ds/d3 (training); gamma eval-ds/d2 (evaluation).
    extras: epsilon metric big=+inf; theta metric `f1 score`=0.3 and tag priority=high;
    zeta param `batch size`='32'; eta param note=''; alpha param version='1.0' and beta
    param version='1x0' (a LIKE pattern's "." is no wildcard).
    omega (start 9000, deleted) matches almost every filter and must never show up;
    nor must "stranger", a copy of alpha in a second experiment.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from tracklog.entities import (
    Dataset,
    DatasetInput,
    InputTag,
    LoggedModelInput,
    LoggedModelOutput,
    Metric,
    Param,
    RunStatus,
    RunTag,
    ViewType,
)
from tracklog.stores import TrackingStore

from ._base import KitBase, new_experiment, run_filter, run_order

RUN_NAMES = ("alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta")
ALL = frozenset(RUN_NAMES)


def _ds(name: str, digest: str, context: str) -> DatasetInput:
    return DatasetInput(
        Dataset(name=name, digest=digest, source_type="local", source=f"/data/{name}"),
        tags=(InputTag("mlflow.data.context", context),),
    )


_SCENARIO: dict[str, dict] = {
    "alpha": dict(start=1000, status=RunStatus.FINISHED, end=1500, user="ann",
                  metrics=[("loss", 2.0, 0), ("loss", 0.5, 1), ("acc", 0.9, 0)],
                  params={"lr": "0.01", "optimizer": "Adam", "version": "1.0"},
                  tags={"team": "vision", "tier": "t3"},
                  datasets=[_ds("train-ds", "d1", "training"), _ds("eval-ds", "d2", "evaluation")]),
    "beta": dict(start=2000, status=RunStatus.FINISHED, end=2600, user="bob",
                 metrics=[("loss", 0.25, 0), ("acc", 0.8, 0)],
                 params={"lr": "0.1", "optimizer": "adam", "version": "1x0"},
                 tags={"team": "nlp", "tier": "t1"},
                 datasets=[_ds("train-ds", "d3", "training")]),
    "gamma": dict(start=3000, status=RunStatus.FAILED, end=3100, user="ann",
                  metrics=[("loss", 1.0, 0), ("acc", 0.9, 0)],
                  params={"lr": "0.01", "optimizer": "SGD"},
                  tags={"team": "Vision", "tier": "t2"},
                  datasets=[_ds("eval-ds", "d2", "evaluation")]),
    "delta": dict(start=4000, status=RunStatus.RUNNING, end=None, user="Ann",
                  metrics=[("loss", 0.3, 0), ("loss", math.nan, 1)],
                  params={"lr": "0.001", "optimizer": "sgd_momentum"},
                  tags={"team": "vision-x"}, datasets=[]),
    "epsilon": dict(start=5000, status=RunStatus.KILLED, end=None, user="carl",
                    metrics=[("loss", 0.75, 0), ("big", math.inf, 0)],
                    params={"lr": "1e-3"}, tags={"tier": "t1"}, datasets=[]),
    "zeta": dict(start=6000, status=RunStatus.FINISHED, end=None, user="carl",
                 metrics=[("loss", -1.5, 0)], params={"batch size": "32"},
                 tags={"team": "nlp"}, datasets=[]),
    "eta": dict(start=7000, status=RunStatus.RUNNING, end=None, user="carl",
                metrics=[], params={"note": ""}, tags={}, datasets=[]),
    "theta": dict(start=8000, status=RunStatus.SCHEDULED, end=None, user="carl",
                  metrics=[("f1 score", 0.3, 0)], params={}, tags={"priority": "high"},
                  datasets=[]),
    "omega": dict(start=9000, status=RunStatus.FINISHED, end=9500, user="ann",
                  metrics=[("loss", 0.1, 0), ("acc", 0.9, 0), ("big", 1e308, 0)],
                  params={"lr": "0.01", "optimizer": "Adam", "note": ""},
                  tags={"team": "vision", "tier": "t0", "priority": "high"},
                  datasets=[_ds("train-ds", "d1", "training")]),
}


def _make_run(store: TrackingStore, experiment_id: str, name: str, spec: dict) -> str:
    run = store.create_run(experiment_id, spec["user"], spec["start"], run_name=name)
    run_id = run.info.run_id
    store.log_batch(
        run_id,
        metrics=[Metric(k, v, spec["start"] + i, step)
                 for i, (k, v, step) in enumerate(spec["metrics"])],
        params=[Param(k, v) for k, v in spec["params"].items()],
        tags=[RunTag(k, v) for k, v in spec["tags"].items()],
    )
    if spec["datasets"]:
        store.log_inputs(run_id, datasets=spec["datasets"])
    store.update_run_info(run_id, run_status=spec["status"], end_time=spec["end"])
    return run_id


def build_run_scenario(store: TrackingStore) -> tuple[str, dict[str, str]]:
    """Create the scenario drawn in this module's docstring.

    Returns the experiment id and ``{run name: run id}`` (``omega`` and ``stranger``, the
    run in another experiment, included).
    """
    exp_id = store.create_experiment("search-scenario")
    ids = {name: _make_run(store, exp_id, name, spec) for name, spec in _SCENARIO.items()}
    store.delete_run(ids["omega"])
    ids["stranger"] = _make_run(store, new_experiment(store, "elsewhere"), "stranger",
                                _SCENARIO["alpha"])
    return exp_id, ids


#: (filter string, expected run names). ``{name}`` stands for that run's id.
FILTER_TRUTH_TABLE: dict[str, list[tuple[str, frozenset[str]]]] = {
    "metrics": [
        ("metrics.loss < 0.6", frozenset({"alpha", "beta", "zeta"})),
        ("metrics.loss <= 0.5", frozenset({"alpha", "beta", "zeta"})),
        ("metrics.loss > 0.5", frozenset({"gamma", "epsilon"})),
        ("metrics.loss >= 0.75", frozenset({"gamma", "epsilon"})),
        ("metrics.loss = 0.25", frozenset({"beta"})),
        ("metrics.loss = 1", frozenset({"gamma"})),
        ("metrics.loss != 0.25", frozenset({"alpha", "gamma", "delta", "epsilon", "zeta"})),
        ("metrics.loss != 0", frozenset({"alpha", "beta", "gamma", "delta", "epsilon",
                                          "zeta"})),
        ("metrics.loss > 1.5", frozenset()),
        ("metrics.loss < 0", frozenset({"zeta"})),
        ("metric.loss = -1.5", frozenset({"zeta"})),
        ("metrics.acc = 0.9", frozenset({"alpha", "gamma"})),
        ("metrics.acc >= 0.8", frozenset({"alpha", "beta", "gamma"})),
        ("metrics.big > 1e300", frozenset({"epsilon"})),
        ("metrics.`f1 score` > 0.2", frozenset({"theta"})),
        ("metrics.missing > 0", frozenset()),
        ("metrics.missing != 0", frozenset()),
        ("metrics.loss = 0", frozenset()),
        ("metrics.loss >= -10", frozenset({"alpha", "beta", "gamma", "epsilon", "zeta"})),
        ("metrics.loss <= 10", frozenset({"alpha", "beta", "gamma", "epsilon", "zeta"})),
        ("metrics.loss = 0.5 AND metrics.acc = 0.9", frozenset({"alpha"})),
        ("metrics.loss < 10 AND metrics.loss > -10", frozenset(
            {"alpha", "beta", "gamma", "epsilon", "zeta"})),
    ],
    "params": [
        ("params.lr = '0.01'", frozenset({"alpha", "gamma"})),
        ("param.lr = '0.1'", frozenset({"beta"})),
        ("params.lr != '0.01'", frozenset({"beta", "delta", "epsilon"})),
        ("params.optimizer = 'adam'", frozenset({"beta"})),
        ("params.optimizer LIKE 'a%'", frozenset({"beta"})),
        ("params.optimizer LIKE 'A%'", frozenset({"alpha"})),
        ("params.optimizer ILIKE 'a%'", frozenset({"alpha", "beta"})),
        ("params.optimizer LIKE '%gd%'", frozenset({"delta"})),
        ("params.optimizer ILIKE '%gd%'", frozenset({"gamma", "delta"})),
        ("params.optimizer LIKE 'Ada_'", frozenset({"alpha"})),
        ("params.optimizer LIKE 'Ad_'", frozenset()),
        ("params.version LIKE '1.0'", frozenset({"alpha"})),
        ("params.version LIKE '1_0'", frozenset({"alpha", "beta"})),
        ("params.version LIKE '%.%'", frozenset({"alpha"})),
        ("params.lr IS NULL", frozenset({"zeta", "eta", "theta"})),
        ("params.lr IS NOT NULL", frozenset({"alpha", "beta", "gamma", "delta", "epsilon"})),
        ("params.note = ''", frozenset({"eta"})),
        ("params.note IS NOT NULL", frozenset({"eta"})),
        ("params.`batch size` = '32'", frozenset({"zeta"})),
        ("params.missing != 'x'", frozenset()),
    ],
    "tags": [
        ("tags.team = 'vision'", frozenset({"alpha"})),
        ("tags.team != 'vision'", frozenset({"beta", "gamma", "delta", "zeta"})),
        ("tags.team LIKE 'vision%'", frozenset({"alpha", "delta"})),
        ("tags.team ILIKE 'vision%'", frozenset({"alpha", "gamma", "delta"})),
        ("tags.team ILIKE 'VISION'", frozenset({"alpha", "gamma"})),
        ("tags.team IS NULL", frozenset({"epsilon", "eta", "theta"})),
        ("tags.team IS NOT NULL", frozenset({"alpha", "beta", "gamma", "delta", "zeta"})),
        ("tags.priority = 'high'", frozenset({"theta"})),
        ("tags.`mlflow.runName` = 'beta'", frozenset({"beta"})),
        ("tags.mlflow.runName = 'gamma'", frozenset({"gamma"})),
        ("tag.tier = 't1'", frozenset({"beta", "epsilon"})),
    ],
    "attributes": [
        ("attributes.run_name = 'gamma'", frozenset({"gamma"})),
        ("run_name LIKE '%eta'", frozenset({"beta", "zeta", "eta", "theta"})),
        ("attributes.run_name LIKE '%ETA'", frozenset()),
        ("attributes.run_name ILIKE '%ETA'", frozenset({"beta", "zeta", "eta", "theta"})),
        ("attributes.`Run name` = 'alpha'", frozenset({"alpha"})),
        ("attributes.status = 'FINISHED'", frozenset({"alpha", "beta", "zeta"})),
        ("attributes.status != 'RUNNING'", ALL - {"delta", "eta"}),
        ("status = 'FAILED'", frozenset({"gamma"})),
        ("attributes.user_id = 'ann'", frozenset({"alpha", "gamma"})),
        ("attributes.user_id ILIKE 'ann'", frozenset({"alpha", "gamma", "delta"})),
        ("attributes.start_time >= 5000", frozenset({"epsilon", "zeta", "eta", "theta"})),
        ("attributes.start_time < 3000", frozenset({"alpha", "beta"})),
        ("attributes.start_time = 4000", frozenset({"delta"})),
        ("attributes.created != 4000", ALL - {"delta"}),
        ("attributes.end_time > 2000", frozenset({"beta", "gamma"})),
        ("attributes.end_time <= 1500", frozenset({"alpha"})),
        ("attributes.run_id = '{alpha}'", frozenset({"alpha"})),
        ("attributes.run_id != '{alpha}'", ALL - {"alpha"}),
        ("attributes.run_id IN ('{alpha}', '{beta}')", frozenset({"alpha", "beta"})),
        ("attributes.run_id NOT IN ('{alpha}', '{beta}')", ALL - {"alpha", "beta"}),
        ("attributes.run_id IN ('{omega}', '{stranger}')", frozenset()),
        ("attributes.artifact_uri LIKE '%{gamma}%'", frozenset({"gamma"})),
    ],
    "datasets": [
        ("datasets.name = 'train-ds'", frozenset({"alpha", "beta"})),
        ("datasets.name = 'eval-ds'", frozenset({"alpha", "gamma"})),
        ("datasets.name != 'train-ds'", frozenset({"alpha", "gamma"})),
        ("datasets.name LIKE '%-ds'", frozenset({"alpha", "beta", "gamma"})),
        ("datasets.name LIKE 'TRAIN%'", frozenset()),
        ("datasets.name ILIKE 'TRAIN%'", frozenset({"alpha", "beta"})),
        ("datasets.digest = 'd2'", frozenset({"alpha", "gamma"})),
        ("datasets.digest IN ('d1', 'd3')", frozenset({"alpha", "beta"})),
        ("datasets.digest NOT IN ('d1', 'd3')", frozenset({"alpha", "gamma"})),
        ("datasets.context = 'evaluation'", frozenset({"alpha", "gamma"})),
        ("datasets.context IN ('training')", frozenset({"alpha", "beta"})),
        ("datasets.name = 'train-ds' AND datasets.digest = 'd3'", frozenset({"beta"})),
    ],
    "combined": [
        ("", ALL),
        ("metrics.loss < 1 AND params.optimizer ILIKE 'adam' AND tags.team = 'nlp'",
         frozenset({"beta"})),
        ("params.lr = '0.01' AND attributes.status = 'FAILED'", frozenset({"gamma"})),
        ("metrics.acc > 0.85 AND params.lr = '0.01'", frozenset({"alpha", "gamma"})),
        ("tags.team IS NULL AND params.lr IS NULL", frozenset({"eta", "theta"})),
        ("attributes.start_time > 1000 AND datasets.context = 'training'", frozenset({"beta"})),
        # Several comparisons on one table: each key's value must satisfy all of its own.
        ("params.lr = '0.01' AND params.optimizer = 'SGD'", frozenset({"gamma"})),
        ("params.lr = '0.01' AND params.lr != '0.1' AND params.lr LIKE '0.0%'",
         frozenset({"alpha", "gamma"})),
        ("params.lr IS NULL AND params.note IS NOT NULL", frozenset({"eta"})),
        ("params.lr IS NOT NULL AND params.optimizer IS NULL", frozenset({"epsilon"})),
        ("tags.team LIKE 'vision%' AND tags.team != 'vision' AND tags.tier IS NULL",
         frozenset({"delta"})),
        ("tags.tier = 't1' AND tags.tier = 't2'", frozenset()),
        ("metrics.loss > 0.2 AND metrics.acc < 0.85", frozenset({"beta"})),
        ("metrics.loss > 0 AND metrics.big > 0", frozenset({"epsilon"})),
        ("datasets.name = 'train-ds' AND datasets.context = 'evaluation'", frozenset({"alpha"})),
    ],
}

#: (order_by clauses, expected run names in order). In both directions a metric's numbers
#: come first, then NaN (delta's loss), then the runs without the metric, each group tied
#: and so in the default order (as MLflow). A frozenset stands for runs whose relative
#: order the contract leaves open.
ORDER_TRUTH_TABLE: list[tuple[tuple[str, ...], tuple[str | frozenset[str], ...]]] = [
    ((), ("theta", "eta", "zeta", "epsilon", "delta", "gamma", "beta", "alpha")),
    (("start_time DESC",),
     ("theta", "eta", "zeta", "epsilon", "delta", "gamma", "beta", "alpha")),
    (("attributes.start_time ASC",),
     ("alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta")),
    (("attributes.run_name",),
     ("alpha", "beta", "delta", "epsilon", "eta", "gamma", "theta", "zeta")),
    (("run_name DESC",),
     ("zeta", "theta", "gamma", "eta", "epsilon", "delta", "beta", "alpha")),
    (("metrics.acc DESC",),
     ("gamma", "alpha", "beta", "theta", "eta", "zeta", "epsilon", "delta")),
    (("metrics.acc ASC",),
     ("beta", "gamma", "alpha", "theta", "eta", "zeta", "epsilon", "delta")),
    (("metrics.loss ASC",),
     ("zeta", "beta", "alpha", "epsilon", "gamma", "delta", "theta", "eta")),
    (("metrics.loss DESC",),
     ("gamma", "epsilon", "alpha", "beta", "zeta", "delta", "theta", "eta")),
    (("metrics.loss DESC", "start_time ASC"),
     ("gamma", "epsilon", "alpha", "beta", "zeta", "delta", "eta", "theta")),
    (("metrics.`f1 score` DESC",),
     ("theta", "eta", "zeta", "epsilon", "delta", "gamma", "beta", "alpha")),
    (("params.lr ASC",),
     ("delta", "gamma", "alpha", "beta", "epsilon", "theta", "eta", "zeta")),
    (("params.lr DESC",),
     ("epsilon", "beta", "gamma", "alpha", "delta", "theta", "eta", "zeta")),
    (("params.lr ASC", "attributes.run_name DESC"),
     ("delta", "gamma", "alpha", "beta", "epsilon", "zeta", "theta", "eta")),
    (("tags.tier ASC",),
     ("epsilon", "beta", "gamma", "alpha", "theta", "eta", "zeta", "delta")),
    (("tags.tier DESC",),
     ("alpha", "gamma", "epsilon", "beta", "theta", "eta", "zeta", "delta")),
    (("attributes.end_time ASC",),
     ("alpha", "beta", "gamma", "theta", "eta", "zeta", "epsilon", "delta")),
    (("attributes.end_time DESC",),
     ("gamma", "beta", "alpha", "theta", "eta", "zeta", "epsilon", "delta")),
    (("attributes.status ASC", "attributes.start_time ASC"),
     ("gamma", "alpha", "beta", "zeta", "epsilon", "delta", "eta", "theta")),
    (("metrics.acc DESC", "metrics.loss ASC"),
     ("alpha", "gamma", "beta", "zeta", "epsilon", "delta", "theta", "eta")),
    (("metrics.acc ASC", "metrics.loss DESC"),
     ("beta", "gamma", "alpha", "epsilon", "zeta", "delta", "theta", "eta")),
]


def order_matches(got: Sequence[str], expected: Sequence[str | frozenset[str]]) -> bool:
    """``got`` follows ``expected``, where a frozenset matches its members in any order."""
    pos = 0
    for item in expected:
        if isinstance(item, frozenset):
            if set(got[pos:pos + len(item)]) != item:
                return False
            pos += len(item)
        else:
            if pos >= len(got) or got[pos] != item:
                return False
            pos += 1
    return pos == len(got)


class SearchRunsTests(KitBase):
    """``search_runs`` against the fixed scenario: filters and orderings as truth tables."""

    def _check_filters(self, store: TrackingStore, topic: str) -> None:
        exp_id, ids = build_run_scenario(store)
        names = {v: k for k, v in ids.items()}
        failures = []
        for text, expected in FILTER_TRUTH_TABLE[topic]:
            filter_string = text.format(**ids)
            runs = store.search_runs([exp_id], filter=run_filter(filter_string), max_results=100)
            got = [names.get(r.info.run_id, r.info.run_id) for r in runs]
            if sorted(got) != sorted(expected):
                failures.append(f"{text!r}: expected {sorted(expected)}, got {sorted(got)}")
        assert not failures, "filter truth table mismatches:\n" + "\n".join(failures)

    def test_filter_metrics(self, store: TrackingStore) -> None:
        """Metric comparisons use the latest value; missing keys never match, NaN matches
        only != (as MLflow)."""
        self._check_filters(store, "metrics")

    def test_filter_params(self, store: TrackingStore) -> None:
        """Param =, !=, LIKE (case-sensitive), ILIKE, IS [NOT] NULL; missing never matches."""
        self._check_filters(store, "params")

    def test_filter_tags(self, store: TrackingStore) -> None:
        """Tag comparisons follow the param rules; dotted keys such as mlflow.runName work."""
        self._check_filters(store, "tags")

    def test_filter_attributes(self, store: TrackingStore) -> None:
        """run_name, status, user_id, times, run_id IN / NOT IN, artifact_uri."""
        self._check_filters(store, "attributes")

    def test_filter_datasets(self, store: TrackingStore) -> None:
        """Dataset name, digest and context match when any of the run's inputs matches."""
        self._check_filters(store, "datasets")

    def test_filter_combined(self, store: TrackingStore) -> None:
        """The empty filter matches all; AND-ed comparisons of different kinds all must hold."""
        self._check_filters(store, "combined")

    def test_order_by_truth_table(self, store: TrackingStore) -> None:
        """Each order_by list yields the exact expected order; missing keys sort last, and
        a NaN metric after every number and before the runs without it."""
        exp_id, ids = build_run_scenario(store)
        names = {v: k for k, v in ids.items()}
        failures = []
        for clauses, expected in ORDER_TRUTH_TABLE:
            runs = store.search_runs([exp_id], order_by=run_order(clauses), max_results=100)
            got = [names.get(r.info.run_id, r.info.run_id) for r in runs]
            if not order_matches(got, expected):
                failures.append(f"{list(clauses)}: expected {list(expected)}, got {got}")
        assert not failures, "order truth table mismatches:\n" + "\n".join(failures)

    def test_order_by_run_id_and_tie_break(self, store: TrackingStore) -> None:
        """Runs equal in every key and start time come in run_id order."""
        exp_id = new_experiment(store)
        run_ids = [store.create_run(exp_id, "u", 42).info.run_id for _ in range(6)]
        for run_id in run_ids:
            store.log_metric(run_id, Metric("m", 1.0, 1))
        by_default = [r.info.run_id for r in store.search_runs([exp_id])]
        assert by_default == sorted(run_ids)
        by_metric = store.search_runs([exp_id], order_by=run_order(["metrics.m DESC"]))
        assert [r.info.run_id for r in by_metric] == sorted(run_ids)
        by_id = store.search_runs([exp_id], order_by=run_order(["attributes.run_id DESC"]))
        assert [r.info.run_id for r in by_id] == sorted(run_ids, reverse=True)

    def test_search_returns_full_runs(self, store: TrackingStore) -> None:
        """Each run found carries the same info, data and inputs as get_run."""
        exp_id, ids = build_run_scenario(store)
        for run in store.search_runs([exp_id], max_results=100):
            stored = store.get_run(run.info.run_id)
            assert run.info == stored.info
            assert run.data.params == stored.data.params
            assert run.data.tags == stored.data.tags
            assert {k: (m.value, m.timestamp, m.step) for k, m in run.data.metrics.items()
                    if not math.isnan(m.value)} == {
                k: (m.value, m.timestamp, m.step) for k, m in stored.data.metrics.items()
                if not math.isnan(m.value)}
            assert sorted(run.data.metrics) == sorted(stored.data.metrics)
            assert len(run.inputs.dataset_inputs) == len(stored.inputs.dataset_inputs)
        flt = run_filter(f"attributes.run_id = '{ids['alpha']}'")
        (run,) = store.search_runs([exp_id], filter=flt)
        assert run.data.metrics["loss"].value == 0.5
        assert run.data.params == {"lr": "0.01", "optimizer": "Adam", "version": "1.0"}
        assert {(d.dataset.name, d.dataset.digest) for d in run.inputs.dataset_inputs} == {
            ("train-ds", "d1"), ("eval-ds", "d2")}

    def test_search_page_equals_get_run(self, store: TrackingStore) -> None:
        """A page of runs is what get_run returns for each: a double to its last bit (and
        sign, where the store keeps -0.0), text that looks like JSON, inputs and outputs
        on some runs only."""
        exp_id = new_experiment(store)
        odd = [0.1 + 0.2, 1 / 3, 1.0, -0.0, 5e-324, 1e16, 2.0**53 + 2, -math.inf, math.inf,
               1.7976931348623157e308, math.nan]
        texts = ['{"a": 1}', "[1, 2]", "\\", 'q"uote', "line\nbreak", "é ☃ 😀", "", "null"]
        run_ids = []
        for i in range(6):
            run_id = store.create_run(exp_id, "u", 1000 + i).info.run_id
            run_ids.append(run_id)
            if i == 5:
                continue  # a run with nothing logged
            store.log_batch(
                run_id,
                metrics=[Metric(f"m{j}", v, 2**62 + j, -j) for j, v in enumerate(odd[i:])],
                params=[Param(f"p{j}", t) for j, t in enumerate(texts[i:])],
                tags=[RunTag(f"t{j}", t) for j, t in enumerate(texts[: i + 1])])
        store.log_inputs(run_ids[1], datasets=[_ds("train-ds", "d1", "training")])
        model = store.create_logged_model(exp_id, name="m", source_run_id=run_ids[3]).model_id
        store.log_outputs(run_ids[3], [LoggedModelOutput(model, 2)])
        store.log_inputs(run_ids[4], models=[LoggedModelInput(model)])

        def comparable(run):
            metrics = {k: (repr(m.value), type(m.value), m.timestamp, m.step)
                       for k, m in run.data.metrics.items()}
            return (run.info, metrics, run.data.params, run.data.tags, run.inputs, run.outputs)

        page = store.search_runs([exp_id], max_results=100, order_by=run_order(
            ["attributes.start_time ASC"]))
        assert [r.info.run_id for r in page] == run_ids
        for run in page:
            assert comparable(run) == comparable(store.get_run(run.info.run_id))
        assert page[1].inputs.dataset_inputs and page[3].outputs.model_outputs
        assert page[4].inputs.model_inputs and not page[5].data.params

    def test_search_scopes_experiments(self, store: TrackingStore) -> None:
        """Only runs of the listed experiments come back; unknown ids simply match nothing."""
        a, b, c = (new_experiment(store) for _ in range(3))
        ra = store.create_run(a, "u", 1).info.run_id
        rb = store.create_run(b, "u", 2).info.run_id
        store.create_run(c, "u", 3)
        assert {r.info.run_id for r in store.search_runs([a, b])} == {ra, rb}
        assert [r.info.run_id for r in store.search_runs([a, "987654321"])] == [ra]
        assert list(store.search_runs(["987654321"])) == []
        assert list(store.search_runs([])) == []
        assert list(store.search_runs(["0"])) == []

    def test_search_view_type_with_filter(self, store: TrackingStore) -> None:
        """The view type and the filter combine: deleted runs match under DELETED_ONLY / ALL."""
        exp_id, ids = build_run_scenario(store)
        names = {v: k for k, v in ids.items()}

        def found(view: ViewType) -> set[str]:
            runs = store.search_runs([exp_id], filter=run_filter("params.lr = '0.01'"),
                                     run_view_type=view)
            return {names[r.info.run_id] for r in runs}

        assert found(ViewType.ACTIVE_ONLY) == {"alpha", "gamma"}
        assert found(ViewType.DELETED_ONLY) == {"omega"}
        assert found(ViewType.ALL) == {"alpha", "gamma", "omega"}

    def test_filter_at_the_complexity_cap(self, store: TrackingStore) -> None:
        """A filter of the parser's maximum number of comparisons is answered, and every
        one of them counts: the last comparison alone narrows the result."""
        from tracklog.search import MAX_FILTER_CLAUSES

        exp_id, ids = build_run_scenario(store)
        names = {v: k for k, v in ids.items()}
        # Each of these holds for alpha and gamma (and only the metric one fails others).
        cycle = ("params.lr = '0.01'", "tags.team ILIKE 'vision'", "metrics.acc > 0.85",
                 "params.optimizer LIKE '%'", "tags.tier IS NOT NULL",
                 "attributes.start_time < 5000", "datasets.name = 'eval-ds'",
                 "params.lr != 'x{i}'", "metrics.loss > -{i}", "tags.team != 't{i}'")
        clauses = [cycle[i % len(cycle)].format(i=i) for i in range(MAX_FILTER_CLAUSES - 1)]
        clauses.append("attributes.status = 'FAILED'")
        flt = run_filter(" AND ".join(clauses))
        assert len(flt) == MAX_FILTER_CLAUSES
        found = {names[r.info.run_id] for r in store.search_runs([exp_id], filter=flt)}
        assert found == {"gamma"}

    def test_order_by_at_the_complexity_cap(self, store: TrackingStore) -> None:
        """An order_by of the parser's maximum number of keys is honoured to the last key."""
        from tracklog.search import MAX_ORDER_BY_KEYS

        exp_id, ids = build_run_scenario(store)
        names = {v: k for k, v in ids.items()}
        # Keys no run has tie every run; the last key alone decides the order.
        clauses = [f"params.absent{i} DESC" for i in range(MAX_ORDER_BY_KEYS - 1)]
        clauses.append("attributes.run_name ASC")
        runs = store.search_runs([exp_id], order_by=run_order(clauses), max_results=100)
        assert [names[r.info.run_id] for r in runs] == sorted(RUN_NAMES)
