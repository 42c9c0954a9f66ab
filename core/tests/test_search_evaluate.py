"""The in-Python evaluator: truth tables over hand-built entities, and orderings.

Each filter string is parsed with tracklog's parser and evaluated over a small fixed set
of entities; the test states the exact set of ids that must match.
"""

from __future__ import annotations

import copy
import itertools
import math

import pytest

from tracklog.entities import (
    Dataset,
    DatasetInput,
    Experiment,
    InputTag,
    LoggedModel,
    Metric,
    ModelVersion,
    RegisteredModel,
    Run,
    RunData,
    RunInfo,
    RunInputs,
    RunStatus,
)
from tracklog.search import (
    parse_experiment_filter,
    parse_experiment_order_by,
    parse_logged_model_filter,
    parse_logged_model_order_by,
    parse_model_version_filter,
    parse_model_version_order_by,
    parse_registered_model_filter,
    parse_registered_model_order_by,
    parse_run_filter,
    parse_run_order_by,
)
from tracklog.search.evaluate import (
    compile_run_filter,
    experiment_matches,
    like_to_regex,
    logged_model_matches,
    model_version_matches,
    registered_model_matches,
    run_matches,
    sort_experiments,
    sort_logged_models,
    sort_model_versions,
    sort_registered_models,
    sort_runs,
)


def _run(run_id, *, name=None, status=RunStatus.FINISHED, start=None, end=None, user="u",
         metrics=None, params=None, tags=None, datasets=()):  # fmt: skip
    return Run(
        info=RunInfo(
            run_id=run_id,
            experiment_id="1",
            run_name=name or run_id,
            user_id=user,
            status=status,
            start_time=start,
            end_time=end,
            artifact_uri=f"file:///a/{run_id}",
        ),
        data=RunData(
            metrics={k: Metric(k, v, 0, 0) for k, v in (metrics or {}).items()},
            params=dict(params or {}),
            tags=dict(tags or {}),
        ),
        inputs=RunInputs(
            dataset_inputs=[
                DatasetInput(
                    Dataset(n, d, "local", "src"),
                    tuple(InputTag("mlflow.data.context", c) for c in ([ctx] if ctx else [])),
                )
                for n, d, ctx in datasets
            ]
        ),
    )


RUNS = [
    _run("r1", name="Alpha", start=100, end=200, user="alice",
         metrics={"acc": 0.9, "loss": 0.1}, params={"lr": "0.1", "opt": "adam"},
         tags={"team": "Vision", "mlflow.runName": "Alpha"},
         datasets=[("mnist", "d1", "train"), ("mnist-test", "d2", "eval")]),
    _run("r2", name="beta", start=300, status=RunStatus.RUNNING, user="bob",
         metrics={"acc": 0.5, "loss": float("nan")}, params={"lr": "0.01"},
         tags={"team": "vision"}, datasets=[("cifar", "d3", None)]),
    _run("r3", name="gamma_1", start=200, end=250, status=RunStatus.FAILED, user="alice",
         metrics={"acc": 0.7}, params={"lr": "0.1", "opt": "sgd"},
         tags={"team": "nlp%"}),
    _run("r4", name="gamma.x", start=None, user="carol", metrics={"acc": -1.0},
         params={"opt": "it's"}),
]  # fmt: skip

RUN_TRUTH = [
    ("", {"r1", "r2", "r3", "r4"}),
    ("metrics.acc > 0.6", {"r1", "r3"}),
    ("metrics.acc >= 0.7", {"r1", "r3"}),
    ("metrics.acc < 0", {"r4"}),
    ("metrics.acc = 0.5", {"r2"}),
    ("metrics.acc != 0.5", {"r1", "r3", "r4"}),
    ("metrics.loss != 0.1", {"r2"}),  # r2's NaN satisfies only !=; r3, r4 lack it
    ("metrics.loss < 1", {"r1"}),
    ("metrics.loss >= -1e9", {"r1"}),
    ("metrics.missing != 1", set()),
    ("params.lr = '0.1'", {"r1", "r3"}),
    ("params.lr != '0.1'", {"r2"}),  # r4 lacks lr: != does not select it
    ("params.lr IS NULL", {"r4"}),
    ("params.lr IS NOT NULL", {"r1", "r2", "r3"}),
    ("params.opt LIKE '%a%'", {"r1"}),
    ('params.opt = "it\'s"', {"r4"}),
    ("tags.team = 'vision'", {"r2"}),
    ("tags.team LIKE 'vision'", {"r2"}),
    ("tags.team ILIKE 'VISION'", {"r1", "r2"}),
    ("tags.team LIKE 'V%'", {"r1"}),
    ("tags.team LIKE 'nlp%'", {"r3"}),
    ("tags.team LIKE 'nlp_'", {"r3"}),
    ("tags.team LIKE 'nl'", set()),
    ("tags.team IS NULL", {"r4"}),
    ("tags.mlflow.runName = 'Alpha'", {"r1"}),
    ("attributes.run_name = 'Alpha'", {"r1"}),
    ("`Run Name` ILIKE 'GAMMA%'", {"r3", "r4"}),
    ("run_name LIKE 'gamma_x'", {"r4"}),  # _ matches the dot
    ("run_name LIKE 'gamma.1'", set()),  # the dot is literal, not "any character"
    ("run_name LIKE 'gamma__'", {"r3", "r4"}),
    ("run_name LIKE '%a'", {"r1", "r2"}),
    ("status = 'RUNNING'", {"r2"}),
    ("status != 'RUNNING'", {"r1", "r3", "r4"}),
    ("status ILIKE 'f%'", {"r1", "r3", "r4"}),
    ("user_id = 'alice'", {"r1", "r3"}),
    ("run_id IN ('r1', 'r4', 'zz')", {"r1", "r4"}),
    ("run_id NOT IN ('r1', 'r4')", {"r2", "r3"}),
    ("artifact_uri LIKE '%/r2'", {"r2"}),
    ("start_time > 150", {"r2", "r3"}),
    ("created >= 100", {"r1", "r2", "r3"}),
    ("start_time != 100", {"r2", "r3"}),  # r4 has no start time
    ("end_time <= 200", {"r1"}),
    ("datasets.name = 'mnist'", {"r1"}),
    ("datasets.name LIKE 'mnist%'", {"r1"}),
    ("datasets.name != 'mnist'", {"r1", "r2"}),  # any input differs
    ("datasets.name IN ('cifar', 'x')", {"r2"}),
    ("datasets.name NOT IN ('cifar')", {"r1"}),
    ("datasets.digest = 'd2'", {"r1"}),
    ("datasets.context = 'eval'", {"r1"}),
    ("datasets.context IN ('train')", {"r1"}),
    ("datasets.context != 'zzz'", {"r1"}),  # r2's input has no context tag
    ("metrics.acc > 0 AND params.lr = '0.1' AND tags.team ILIKE 'v%'", {"r1"}),
    ("metrics.acc > 0 and params.opt IS NULL", {"r2"}),
]


@pytest.mark.parametrize(("flt", "expected"), RUN_TRUTH)
def test_run_truth_table(flt, expected):
    parsed = parse_run_filter(flt)
    assert {r.info.run_id for r in RUNS if run_matches(r, parsed)} == expected
    predicate = compile_run_filter(parsed)
    assert {r.info.run_id for r in RUNS if predicate(r)} == expected


def _ids(runs):
    return [r.info.run_id for r in runs]


@pytest.mark.parametrize(
    ("order_by", "expected"),
    [
        ([], ["r2", "r3", "r1", "r4"]),  # start_time DESC, missing last
        (["start_time ASC"], ["r1", "r3", "r2", "r4"]),
        (["metrics.acc"], ["r4", "r2", "r3", "r1"]),
        (["metrics.acc DESC"], ["r1", "r3", "r2", "r4"]),
        (["metrics.loss"], ["r1", "r2", "r3", "r4"]),  # NaN and missing last, by start
        (["metrics.loss DESC"], ["r1", "r2", "r3", "r4"]),
        (["params.lr"], ["r2", "r3", "r1", "r4"]),  # '0.01' < '0.1'; ties by start DESC
        (["params.lr DESC"], ["r3", "r1", "r2", "r4"]),
        (["params.opt DESC", "run_id DESC"], ["r3", "r4", "r1", "r2"]),
        (["tags.team ASC"], ["r1", "r3", "r2", "r4"]),
        (["user_id", "metrics.acc DESC"], ["r1", "r3", "r2", "r4"]),
        (["run_name"], ["r1", "r2", "r4", "r3"]),
        (["end_time DESC"], ["r3", "r1", "r2", "r4"]),
        (["status"], ["r3", "r1", "r4", "r2"]),
    ],
)
def test_run_ordering(order_by, expected):
    assert _ids(sort_runs(RUNS, parse_run_order_by(order_by))) == expected
    assert _ids(sort_runs(list(reversed(RUNS)), parse_run_order_by(order_by))) == expected


def test_run_id_breaks_ties():
    runs = [_run(i, start=5) for i in ["c", "a", "b"]]
    assert _ids(sort_runs(runs)) == ["a", "b", "c"]
    assert _ids(sort_runs(runs, parse_run_order_by(["metrics.none DESC"]))) == ["a", "b", "c"]


def test_like_to_regex():
    assert like_to_regex("a%b_c", True).match("aXYZbQc")
    assert not like_to_regex("a%b_c", True).match("AXYZbQc")
    assert like_to_regex("a%b_c", False).match("AXYZBQC")
    assert not like_to_regex("a.c", True).match("abc")
    assert like_to_regex("a.c", True).match("a.c")
    assert like_to_regex("(x)[y]*+?\\", True).match("(x)[y]*+?\\")
    assert not like_to_regex("ab", True).match("abc")
    assert like_to_regex("%", True).match("multi\nline")
    assert like_to_regex("", True).match("")


def _like_reference(pattern: str, text: str) -> bool:
    """LIKE by its definition (dynamic programming over both strings)."""
    reach = {0}
    for ch in pattern:
        if ch == "%":
            reach = set(range(min(reach), len(text) + 1)) if reach else set()
        else:
            reach = {i + 1 for i in reach if i < len(text) and ch in ("_", text[i])}
    return len(text) in reach


def test_like_agrees_with_its_definition_exhaustively():
    """Every pattern over {a, b, %, _} up to 5 characters against every text over {a, b}
    up to 5 characters."""
    texts = ["".join(t) for n in range(6) for t in itertools.product("ab", repeat=n)]
    for n in range(6):
        for chars in itertools.product("ab%_", repeat=n):
            pattern = "".join(chars)
            rx = like_to_regex(pattern, True)
            for text in texts:
                assert (rx.match(text) is not None) == _like_reference(pattern, text), (
                    pattern, text)


@pytest.mark.parametrize(
    "pattern",
    [
        "%%%b",
        "%" * 5000 + "b",
        "%a%a%a%a%a%a%a%a%a%a%a%a%b",
        "%" + "a" * 3000 + "b",
        "%" + "_a" * 2000 + "%b",
        "a%" + "a%" * 2000 + "b",
    ],
)
def test_like_never_backtracks_into_every_combination(pattern):
    """Patterns whose plain regex translation ('.*' per '%') ran for minutes against a
    6,000-character value (the server's worker held the GIL, so /health and SIGTERM
    waited too) are answered at once."""
    value = "a" * 6000
    assert like_to_regex(pattern, True).match(value) is None
    assert like_to_regex(pattern, False).match(value.upper()) is None
    run = _run("r", params={"p": value})
    assert not run_matches(run, parse_run_filter(f"params.p LIKE '{pattern}'"))
    assert run_matches(run, parse_run_filter(f"params.p LIKE '{pattern[:-1]}a'"))


def test_ten_thousand_runs_filter_and_sort():
    runs = [
        _run(f"run{i:05d}", start=i, metrics={"acc": (i % 97) / 97}, params={"p": str(i % 7)})
        for i in range(10_000)
    ]
    flt = parse_run_filter("metrics.acc > 0.5 AND params.p LIKE '3' AND start_time >= 0")
    predicate = compile_run_filter(flt)
    matched = [r for r in runs if predicate(r)]
    expected = [r for i, r in enumerate(runs) if (i % 97) / 97 > 0.5 and i % 7 == 3]
    assert matched == expected
    ordered = sort_runs(matched, parse_run_order_by(["metrics.acc DESC"]))
    accs = [r.data.metrics["acc"].value for r in ordered]
    assert accs == sorted(accs, reverse=True)


# --- experiments ----------------------------------------------------------------------

EXPERIMENTS = [
    Experiment("0", "Default", "a0", tags={}, creation_time=10, last_update_time=10),
    Experiment("2", "exp-b", "a2", tags={"team": "x"}, creation_time=30, last_update_time=40),
    Experiment("10", "exp-A", "a10", tags={"team": "y"}, creation_time=30, last_update_time=35),
    Experiment("3", "other", "a3", tags={"k": "v"}, creation_time=None, last_update_time=None),
]


@pytest.mark.parametrize(
    ("flt", "expected"),
    [
        ("name LIKE 'exp%'", {"2", "10"}),
        ("name ILIKE 'EXP-a'", {"10"}),
        ("name != 'Default'", {"2", "10", "3"}),
        ("experiment_id IN ('0', '3')", {"0", "3"}),
        ("experiment_id NOT IN ('0')", {"2", "10", "3"}),
        ("creation_time >= 30", {"2", "10"}),
        ("last_update_time < 36", {"0", "10"}),
        ("tags.team IS NULL", {"0", "3"}),
        ("tags.team IS NOT NULL AND tags.team != 'x'", {"10"}),
        ("tags.k = 'v'", {"3"}),
    ],
)
def test_experiment_truth_table(flt, expected):
    parsed = parse_experiment_filter(flt)
    assert {e.experiment_id for e in EXPERIMENTS if experiment_matches(e, parsed)} == expected


@pytest.mark.parametrize(
    ("order_by", "expected"),
    [
        ([], ["2", "10", "0", "3"]),  # creation_time DESC, then id ASC numerically
        (["name"], ["0", "10", "2", "3"]),
        (["experiment_id DESC"], ["10", "3", "2", "0"]),
        (["last_update_time DESC"], ["2", "10", "0", "3"]),
        (["creation_time"], ["0", "10", "2", "3"]),  # a given order ties by id DESC
        (["creation_time DESC", "experiment_id"], ["2", "10", "0", "3"]),
    ],
)
def test_experiment_ordering(order_by, expected):
    ordered = sort_experiments(EXPERIMENTS, parse_experiment_order_by(order_by))
    assert [e.experiment_id for e in ordered] == expected


# --- logged models --------------------------------------------------------------------


def _model(model_id, created, metrics=(), **kw):
    return LoggedModel(
        model_id=model_id,
        experiment_id="1",
        name=kw.pop("name", model_id),
        artifact_location="loc",
        creation_timestamp=created,
        last_updated_timestamp=created + 1,
        metrics=[
            Metric(k, v, ts, 0, model_id=model_id, dataset_name=dn, dataset_digest=dd)
            for k, v, ts, dn, dd in metrics
        ],
        **kw,
    )


MODELS = [
    _model("m1", 10, [("acc", 0.9, 1, "train", "t1"), ("acc", 0.6, 2, "eval", "e1")],
           params={"p": "a"}, tags={"t": "x"}, model_type="clf"),
    _model("m2", 20, [("acc", 0.7, 1, "eval", "e1")], params={"p": "b"}),
    _model("m3", 20, [("acc", float("nan"), 1, None, None)], tags={"t": "y"}),
    _model("m4", 5, [], name="special"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("flt", "datasets", "expected"),
    [
        ("", None, {"m1", "m2", "m3", "m4"}),
        ("metrics.acc > 0.8", None, {"m1"}),
        ("metrics.acc > 0.65", [{"dataset_name": "eval"}], {"m2"}),
        ("metrics.acc > 0.5", [{"dataset_name": "eval", "dataset_digest": "e1"}], {"m1", "m2"}),
        ("metrics.acc > 0.5", [{"dataset_name": "eval", "dataset_digest": "zz"}], set()),
        ("", [{"dataset_name": "train"}], {"m1"}),
        ("params.p = 'b'", [{"dataset_name": "eval"}], {"m2"}),
        ("metrics.acc != 0.7", None, {"m1"}),  # m1 has 0.9; NaN satisfies nothing
        ("params.p != 'a'", None, {"m2"}),
        ("tags.t LIKE '%'", None, {"m1", "m3"}),
        ("name = 'special'", None, {"m4"}),
        ("model_type IN ('clf')", None, {"m1"}),
        ("creation_time >= 20", None, {"m2", "m3"}),
        ("last_updated_timestamp < 11", None, {"m4"}),
        ("status = 'LOGGED_MODEL_PENDING'", None, {"m1", "m2", "m3", "m4"}),
    ],
)
def test_logged_model_truth_table(flt, datasets, expected):
    parsed = parse_logged_model_filter(flt)
    assert {m.model_id for m in MODELS if logged_model_matches(m, parsed, datasets)} == expected


@pytest.mark.parametrize(
    ("order_by", "expected"),
    [
        ([], ["m2", "m3", "m1", "m4"]),
        ([{"field_name": "metrics.acc"}], ["m1", "m2", "m3", "m4"]),  # m1 latest is 0.6
        ([{"field_name": "metrics.acc", "ascending": False}], ["m2", "m1", "m3", "m4"]),
        ([{"field_name": "metrics.acc", "ascending": False, "dataset_name": "train"}],
         ["m1", "m2", "m3", "m4"]),
        ([{"field_name": "creation_time", "ascending": True}], ["m4", "m1", "m2", "m3"]),
        ([{"field_name": "name", "ascending": False}], ["m4", "m3", "m2", "m1"]),
    ],
)  # fmt: skip
def test_logged_model_ordering(order_by, expected):
    ordered = sort_logged_models(MODELS, parse_logged_model_order_by(order_by))
    assert [m.model_id for m in ordered] == expected


# --- registry -------------------------------------------------------------------------

REGISTERED = [
    RegisteredModel("b-model", 20, 50, tags={"stage": "prod"}),
    RegisteredModel("a-model", 30, 40, tags={"mlflow.prompt.is_prompt": "true"}),
    RegisteredModel("C-model", 10, 60),
]


@pytest.mark.parametrize(
    ("flt", "expected"),
    [
        ("name = 'a-model'", {"a-model"}),
        ("name ILIKE '%MODEL'", {"a-model", "b-model", "C-model"}),
        ("name LIKE 'c%'", set()),
        ("name IN ('b-model', 'C-model')", {"b-model", "C-model"}),
        ("tags.stage = 'prod'", {"b-model"}),
        ("tags.stage != 'prod'", set()),
        # a model without the prompt tag is not a prompt (MLflow's registry relies on it)
        ("tags.`mlflow.prompt.is_prompt` != 'true'", {"b-model", "C-model"}),
        ("tags.`mlflow.prompt.is_prompt` = 'false'", {"b-model", "C-model"}),
        ("tags.`mlflow.prompt.is_prompt` = 'true'", {"a-model"}),
    ],
)
def test_registered_model_truth_table(flt, expected):
    parsed = parse_registered_model_filter(flt)
    assert {m.name for m in REGISTERED if registered_model_matches(m, parsed)} == expected


def test_registered_model_ordering():
    def names(order_by):
        ordered = sort_registered_models(REGISTERED, parse_registered_model_order_by(order_by))
        return [m.name for m in ordered]

    assert names([]) == ["C-model", "a-model", "b-model"]
    assert names(["timestamp DESC"]) == ["a-model", "b-model", "C-model"]
    assert names(["last_updated_timestamp"]) == ["a-model", "b-model", "C-model"]
    assert names(["name DESC"]) == ["b-model", "a-model", "C-model"]


VERSIONS = [
    ModelVersion("m", "1", 10, 100, "runs:/r1/model", run_id="r1", tags={"k": "v"}),
    ModelVersion("m", "2", 20, 300, "runs:/r2/model", run_id="r2"),
    ModelVersion("m", "10", 30, 200, "models:/x", run_id="r1"),
    ModelVersion("n", "1", 40, 300, "runs:/r3/model", run_id=None),
]


@pytest.mark.parametrize(
    ("flt", "expected"),
    [
        ("name = 'm'", {"m/1", "m/2", "m/10"}),
        ("version_number > 1", {"m/2", "m/10"}),
        ("version_number = '10'", {"m/10"}),
        ("run_id = 'r1'", {"m/1", "m/10"}),
        ("run_id != 'r1'", {"m/2"}),  # n/1 has no run
        ("run_id IN ('r2', 'zz')", {"m/2"}),
        ("source_path LIKE 'runs:/%'", {"m/1", "m/2", "n/1"}),
        ("tags.k = 'v'", {"m/1"}),
        ("name = 'm' AND version_number <= 2", {"m/1", "m/2"}),
    ],
)
def test_model_version_truth_table(flt, expected):
    parsed = parse_model_version_filter(flt)
    got = {f"{mv.name}/{mv.version}" for mv in VERSIONS if model_version_matches(mv, parsed)}
    assert got == expected


def test_model_version_ordering():
    def keys(order_by):
        ordered = sort_model_versions(VERSIONS, parse_model_version_order_by(order_by))
        return [f"{mv.name}/{mv.version}" for mv in ordered]

    # default: last_updated DESC, name ASC, version DESC (numeric)
    assert keys([]) == ["m/2", "n/1", "m/10", "m/1"]
    assert keys(["version_number"]) == ["m/1", "n/1", "m/2", "m/10"]
    assert keys(["name DESC"]) == ["n/1", "m/10", "m/2", "m/1"]
    assert keys(["creation_timestamp DESC"]) == ["n/1", "m/10", "m/2", "m/1"]


def test_nan_matches_only_not_equal_but_inf_does():
    """As MLflow: NaN fails every comparison except !=, which it satisfies."""
    runs = [_run("a", metrics={"m": math.inf}), _run("b", metrics={"m": math.nan})]
    for flt in ["metrics.m > 1e300", "metrics.m >= -1e300"]:
        parsed = parse_run_filter(flt)
        assert [r.info.run_id for r in runs if run_matches(r, parsed)] == ["a"]
    parsed = parse_run_filter("metrics.m != 0")
    assert [r.info.run_id for r in runs if run_matches(r, parsed)] == ["a", "b"]


def test_nan_sorts_after_numbers_and_before_missing():
    """As MLflow, in both directions: the numbers, then NaN, then runs without the key."""
    runs = [_run("none", start=4), _run("nan", start=3, metrics={"m": math.nan}),
            _run("low", start=2, metrics={"m": -1.0}), _run("high", start=1, metrics={"m": 9.0})]
    for direction, numbers in (("ASC", ["low", "high"]), ("DESC", ["high", "low"])):
        ordered = sort_runs(runs, parse_run_order_by([f"metrics.m {direction}"]))
        assert [r.info.run_id for r in ordered] == [*numbers, "nan", "none"]


def test_package_docstring_example_runs():
    import tracklog.search as search

    code = search.__doc__.split("Example (the tests run it)::", 1)[1]
    namespace = {name: getattr(search, name) for name in search.__all__}
    namespace.update(runs=RUNS, page_token=None)
    exec(compile("\n".join(line[4:] for line in code.splitlines()), "<doc>", "exec"), namespace)
    assert [r.info.run_id for r in namespace["page"]] == ["r1", "r3"]
    assert namespace["page"].token is None


# --- differential: MLflow's own in-Python evaluator over the same runs ------------------


def _to_mlflow(run: Run):
    from mlflow import entities as m

    info = run.info
    assert info.start_time is not None
    return m.Run(
        m.RunInfo(
            run_id=info.run_id,
            experiment_id=info.experiment_id,
            user_id=info.user_id,
            status=info.status.value,
            start_time=info.start_time,
            end_time=info.end_time,
            lifecycle_stage="active",
            artifact_uri=info.artifact_uri,
            run_name=info.run_name,
        ),
        m.RunData(
            metrics=[
                m.Metric(k, x.value, x.timestamp, x.step) for k, x in run.data.metrics.items()
            ],
            params=[m.Param(k, v) for k, v in run.data.params.items()],
            tags=[m.RunTag(k, v) for k, v in run.data.tags.items()],
        ),
        m.RunInputs(
            dataset_inputs=[
                m.DatasetInput(
                    m.Dataset(d.dataset.name, d.dataset.digest, "local", "src"),
                    [m.InputTag(t.key, t.value) for t in d.tags],
                )
                for d in run.inputs.dataset_inputs
            ]
        ),
    )


# MLflow's Python evaluator differs from its SQL store (and tracklog) on these:
# NaN compares unequal to everything (!= selects it), and a missing start_time crashes
# its sort. The differential set avoids both.
_DIFF_RUNS = [copy.deepcopy(r) for r in RUNS if r.info.start_time is not None] + [
    _run("r5", name="delta", start=50, metrics={"loss": 0.3}, params={"lr": "1"},
         tags={"team": "Vision"}, datasets=[("mnist", "d9", "eval")]),
]  # fmt: skip
del _DIFF_RUNS[1].data.metrics["loss"]  # r2's NaN


def test_differential_runs_leave_the_truth_table_runs_alone():
    assert math.isnan(RUNS[1].data.metrics["loss"].value)
    assert "loss" not in _DIFF_RUNS[1].data.metrics


@pytest.mark.parametrize("flt", [f for f, _ in RUN_TRUTH])
def test_run_filter_matches_mlflow_evaluator(flt):
    from mlflow.utils.search_utils import SearchUtils

    expected = {r.info.run_id for r in SearchUtils.filter([_to_mlflow(r) for r in _DIFF_RUNS], flt)}
    parsed = parse_run_filter(flt)
    assert {r.info.run_id for r in _DIFF_RUNS if run_matches(r, parsed)} == expected


@pytest.mark.parametrize(
    "order_by",
    [
        [],
        ["metrics.acc"],
        ["metrics.acc DESC"],
        ["metrics.loss"],
        ["metrics.loss DESC"],
        ["params.lr", "metrics.acc DESC"],
        ["params.opt DESC"],
        ["tags.team"],
        ["start_time"],
        ["end_time DESC"],
        ["user_id DESC", "run_name"],
        ["status"],
        ["run_id DESC"],
    ],
)
def test_run_ordering_matches_mlflow_evaluator(order_by):
    from mlflow.utils.search_utils import SearchUtils

    expected = [
        r.info.run_id for r in SearchUtils.sort([_to_mlflow(r) for r in _DIFF_RUNS], order_by)
    ]
    assert _ids(sort_runs(_DIFF_RUNS, parse_run_order_by(order_by))) == expected


_DIFF_EXPERIMENTS = [
    Experiment("1", "exp-b", "a", tags={"team": "x"}, creation_time=30, last_update_time=40),
    Experiment("2", "exp-A", "a", tags={"team": "y"}, creation_time=30, last_update_time=35),
    Experiment("3", "other", "a", tags={"k": "v"}, creation_time=None, last_update_time=None),
    Experiment("4", "Default", "a", tags={}, creation_time=10, last_update_time=10),
]


def _mlflow_experiment(e: Experiment):
    from mlflow.entities import Experiment as MlflowExperiment
    from mlflow.entities import ExperimentTag

    return MlflowExperiment(
        e.experiment_id,
        e.name,
        e.artifact_location,
        "active",
        tags=[ExperimentTag(k, v) for k, v in e.tags.items()],
        creation_time=e.creation_time,
        last_update_time=e.last_update_time,
    )


@pytest.mark.parametrize(
    "flt",
    [
        "name LIKE 'exp%'",
        "name ILIKE 'EXP-a'",
        "name != 'Default'",
        "experiment_id IN ('1', '3')",
        "experiment_id NOT IN ('1')",
        # numeric comparisons are left out: MLflow's Python evaluator crashes on the
        # experiment without a creation time (its SQL store does not); the truth table
        # above covers them
        "tags.team IS NULL",
        "tags.team IS NOT NULL AND tags.team != 'x'",
        "tags.team != 'x'",
        "tags.k LIKE 'v'",
    ],
)
def test_experiment_filter_matches_mlflow_evaluator(flt):
    from mlflow.utils.search_utils import SearchExperimentsUtils

    mlflow_exps = [_mlflow_experiment(e) for e in _DIFF_EXPERIMENTS]
    expected = {e.experiment_id for e in SearchExperimentsUtils.filter(mlflow_exps, flt)}
    parsed = parse_experiment_filter(flt)
    assert {e.experiment_id for e in _DIFF_EXPERIMENTS if experiment_matches(e, parsed)} == expected


@pytest.mark.parametrize(
    "order_by",
    [["name"], ["creation_time"], ["creation_time DESC"], ["last_update_time"], ["experiment_id"]],
)
def test_experiment_ordering_matches_mlflow_evaluator(order_by):
    from mlflow.utils.search_utils import SearchExperimentsUtils

    mlflow_exps = [_mlflow_experiment(e) for e in _DIFF_EXPERIMENTS]
    expected = [e.experiment_id for e in SearchExperimentsUtils.sort(mlflow_exps, order_by)]
    ordered = sort_experiments(_DIFF_EXPERIMENTS, parse_experiment_order_by(order_by))
    assert [e.experiment_id for e in ordered] == expected


def _mlflow_registered_model(m: RegisteredModel):
    from mlflow.entities.model_registry import RegisteredModel as M
    from mlflow.entities.model_registry import RegisteredModelTag

    tags = [RegisteredModelTag(k, v) for k, v in m.tags.items()]
    return M(m.name, m.creation_timestamp, m.last_updated_timestamp, tags=tags)


def _mlflow_model_version(mv: ModelVersion):
    from mlflow.entities.model_registry import ModelVersion as M
    from mlflow.entities.model_registry import ModelVersionTag

    tags = [ModelVersionTag(k, v) for k, v in mv.tags.items()]
    return M(mv.name, mv.version, mv.creation_timestamp, mv.last_updated_timestamp,
             source=mv.source, run_id=mv.run_id, tags=tags)  # fmt: skip


@pytest.mark.parametrize(
    "flt",
    [
        "name = 'a-model'",
        "name ILIKE '%MODEL'",
        "name LIKE 'c%'",
        "name IN ('b-model', 'C-model')",
        "tags.stage = 'prod'",
        "tags.stage != 'prod'",
        "tags.`mlflow.prompt.is_prompt` != 'true'",
        "tags.`mlflow.prompt.is_prompt` = 'false'",
        "tags.`mlflow.prompt.is_prompt` = 'true'",
    ],
)
def test_registered_model_filter_matches_mlflow_evaluator(flt):
    from mlflow.utils.search_utils import SearchModelUtils

    models = [_mlflow_registered_model(m) for m in REGISTERED]
    expected = {m.name for m in SearchModelUtils.filter(models, flt)}
    parsed = parse_registered_model_filter(flt)
    assert {m.name for m in REGISTERED if registered_model_matches(m, parsed)} == expected


@pytest.mark.parametrize(
    "order_by",
    [[], ["name DESC"], ["creation_timestamp"], ["last_updated_timestamp DESC", "name"]],
)
def test_registered_model_ordering_matches_mlflow_evaluator(order_by):
    from mlflow.utils.search_utils import SearchModelUtils

    models = [_mlflow_registered_model(m) for m in REGISTERED]
    expected = [m.name for m in SearchModelUtils.sort(models, order_by)]
    ordered = sort_registered_models(REGISTERED, parse_registered_model_order_by(order_by))
    assert [m.name for m in ordered] == expected


@pytest.mark.parametrize(
    "flt",
    [
        "name = 'm'",
        # version_number is left out: MLflow's Python evaluator compares the str version
        # with an int (a crash or no match); its SQL store compares integers, as the
        # truth table above does
        "run_id = 'r1'",
        "run_id != 'r1'",
        "run_id IN ('r2', 'zz')",
        "source_path LIKE 'runs:/%'",
        "tags.k = 'v'",
        "name = 'm' AND tags.k != 'v'",
    ],
)
def test_model_version_filter_matches_mlflow_evaluator(flt):
    from mlflow.utils.search_utils import SearchModelVersionUtils

    versions = [_mlflow_model_version(mv) for mv in VERSIONS]
    expected = {f"{mv.name}/{mv.version}" for mv in SearchModelVersionUtils.filter(versions, flt)}
    parsed = parse_model_version_filter(flt)
    got = {f"{mv.name}/{mv.version}" for mv in VERSIONS if model_version_matches(mv, parsed)}
    assert got == expected


def test_hand_built_filters_outside_the_grammar_are_rejected_clearly():
    from tracklog.errors import TracklogError
    from tracklog.search import Comparison, Identifier, Kind, Op

    bad = (Comparison(Identifier(Kind.DATASET, "name"), Op.IS_NULL, None),)
    with pytest.raises(TracklogError, match="IS NULL"):
        compile_run_filter(bad)
    with pytest.raises(TracklogError, match="dataset.name"):
        experiment_matches(
            EXPERIMENTS[0], (Comparison(Identifier(Kind.DATASET, "name"), Op.EQ, "x"),)
        )
    # a list value (not hashable) still evaluates
    # Outside the AST's types on purpose: a hand-built filter holding a list.
    listed = (Comparison(Identifier(Kind.ATTRIBUTE, "run_id"), Op.IN, ["r1", "r2"]),)  # type: ignore[arg-type]
    assert [r.info.run_id for r in RUNS if run_matches(r, listed)] == ["r1", "r2"]
