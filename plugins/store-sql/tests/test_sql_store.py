"""SQL-store behaviour on every backend (SQLite, PostgreSQL, MariaDB), read back through
the public store API. The conformance kit covers the whole contract; these tests pin the
things that depend on SQL: typing, collations, NULL ordering, paging, sizes."""

from __future__ import annotations

import math

import pytest

from tracklog.entities import (
    Dataset,
    DatasetInput,
    ExperimentTag,
    InputTag,
    LoggedModelInput,
    LoggedModelOutput,
    LoggedModelStatus,
    Metric,
    Param,
    RunTag,
    ViewType,
)
from tracklog.errors import ErrorCode, TracklogError
from tracklog.search import (
    parse_experiment_filter,
    parse_logged_model_filter,
    parse_model_version_filter,
    parse_registered_model_filter,
    parse_run_filter,
    parse_run_order_by,
)

MAX = 1.7976931348623157e308


def _run(store, eid, name=None, start=None, **batch):
    run = store.create_run(eid, "u", start, run_name=name)
    if batch:
        store.log_batch(run.info.run_id, **batch)
    return run.info.run_id


def _names(page):
    return [r.info.run_name for r in page]


def test_default_experiment_and_ids(store):
    default = store.get_experiment("0")
    assert (default.name, default.artifact_location) == ("Default", "mlflow-artifacts:/0")
    eid = store.create_experiment("first", tags=[ExperimentTag("k", "v")])
    assert int(eid) > 0
    exp = store.get_experiment(eid)
    assert exp.artifact_location == f"mlflow-artifacts:/{eid}"
    assert exp.tags == {"k": "v"}
    with pytest.raises(TracklogError) as err:
        store.get_experiment("abc")
    assert err.value.error_code is ErrorCode.INVALID_PARAMETER_VALUE
    assert "Invalid experiment ID 'abc'" in err.value.message
    with pytest.raises(TracklogError) as err:
        store.get_experiment("99999999999")
    assert err.value.error_code is ErrorCode.RESOURCE_DOES_NOT_EXIST


def test_experiment_names_are_case_sensitive_and_unique(store):
    store.create_experiment("Name")
    other = store.create_experiment("name")  # differs only in case: a different experiment
    assert store.get_experiment_by_name("name").experiment_id == other
    store.delete_experiment(other)
    with pytest.raises(TracklogError) as err:
        store.create_experiment("name")
    assert err.value.error_code is ErrorCode.RESOURCE_ALREADY_EXISTS


def test_delete_restore_experiment_cascades_to_runs(store):
    eid = store.create_experiment("cascade")
    early = _run(store, eid)
    store.delete_run(early)
    keep = _run(store, eid)
    store.delete_experiment(eid)
    assert store.get_run(keep).info.lifecycle_stage.value == "deleted"
    with pytest.raises(TracklogError) as err:
        store.log_batch(keep, metrics=[Metric("m", 1.0, 1)])
    assert err.value.error_code is ErrorCode.INVALID_PARAMETER_VALUE
    store.restore_experiment(eid)
    assert store.get_run(keep).info.lifecycle_stage.value == "active"
    # As MLflow: a run deleted on its own before the experiment comes back too.
    assert store.get_run(early).info.lifecycle_stage.value == "active"


def test_artifact_root_join(tmp_path):
    from tracklog_store_sql.store import SqlTrackingStore

    for root, expected in (
        ("mlflow-artifacts:/", "mlflow-artifacts:/0"),
        ("s3://bucket/path/", "s3://bucket/path/0"),
        ("/srv/artifacts", "/srv/artifacts/0"),
    ):
        s = SqlTrackingStore(f"sqlite:///{tmp_path}/{abs(hash(root))}.db", root)
        assert s.get_experiment("0").artifact_location == expected
        s.close()
    s = SqlTrackingStore(f"sqlite:///{tmp_path}/none.db", None)
    assert s.get_experiment("0").artifact_location.endswith("/tracklog-artifacts/0")
    assert s.get_experiment("0").artifact_location.startswith("/")
    s.close()


def test_run_name_and_tag_stay_in_sync(store):
    run = store.create_run("0", "u", 5)
    name = run.info.run_name
    adjective, animal, number = name.rsplit("-", 2)[0], name.split("-")[-2], name.split("-")[-1]
    assert adjective and animal and number.isdigit() and 0 <= int(number) <= 1000
    assert len(run.info.run_id) == 32 and int(run.info.run_id, 16) >= 0
    assert run.data.tags["mlflow.runName"] == name
    rid = run.info.run_id
    store.log_batch(rid, tags=[RunTag("mlflow.runName", "renamed")])
    assert store.get_run(rid).info.run_name == "renamed"
    store.update_run_info(rid, run_name="again")
    assert store.get_run(rid).data.tags["mlflow.runName"] == "again"
    with pytest.raises(TracklogError) as err:
        store.create_run("0", "u", 1, tags=[RunTag("mlflow.runName", "a")], run_name="b")
    assert err.value.error_code is ErrorCode.INVALID_PARAMETER_VALUE


def test_log_batch_params_atomic_and_immutable(store):
    rid = _run(store, "0", params=[Param("lr", "0.1")])
    store.log_batch(rid, params=[Param("lr", "0.1")])  # same value: a no-op
    with pytest.raises(TracklogError) as err:
        store.log_batch(
            rid,
            metrics=[Metric("loss", 1.0, 1)],
            params=[Param("new", "x"), Param("lr", "0.2")],
            tags=[RunTag("t", "v")],
        )
    assert err.value.error_code is ErrorCode.INVALID_PARAMETER_VALUE
    run = store.get_run(rid)
    assert run.data.params == {"lr": "0.1"}
    assert run.data.metrics == {}
    assert "t" not in run.data.tags


def test_case_sensitive_keys(store):
    rid = _run(
        store,
        "0",
        params=[Param("LR", "1"), Param("lr", "2")],
        tags=[RunTag("K", "a"), RunTag("k", "b")],
    )
    run = store.get_run(rid)
    assert run.data.params == {"LR": "1", "lr": "2"}
    assert {k: v for k, v in run.data.tags.items() if k in "Kk"} == {"K": "a", "k": "b"}


def test_long_values_fit_mlflow_sizes(store):
    rid = _run(store, "0")
    store.log_batch(
        rid,
        params=[Param("p", "x" * 6000), Param("q", "é" * 7000)],
        tags=[RunTag("t", "y" * 8000), RunTag("u", "z" * 9000)],
    )
    data = store.get_run(rid).data
    assert data.params["p"] == "x" * 6000
    assert data.params["q"] == "é" * 6000  # the store clips what a caller did not
    assert data.tags["t"] == "y" * 8000
    assert len(data.tags["u"]) == 8000


def test_metrics_latest_duplicates_nan_inf(store):
    rid = _run(store, "0")
    store.log_batch(
        rid,
        metrics=[
            Metric("a", 1.0, 100, 3),
            Metric("a", 5.0, 50, 3),  # same step, older timestamp: not latest
            Metric("a", 1.0, 100, 3),  # exact duplicate: stored once
            Metric("a", 0.5, 10, 2),
        ],
    )
    store.log_batch(rid, metrics=[Metric("a", 1.0, 100, 3)])  # duplicate across batches
    latest = store.get_run(rid).data.metrics["a"]
    assert (latest.value, latest.timestamp, latest.step) == (1.0, 100, 3)
    hist = store.get_metric_history(rid, "a")
    assert [(m.timestamp, m.step, m.value) for m in hist] == [
        (10, 2, 0.5),
        (50, 3, 5.0),
        (100, 3, 1.0),
    ]
    store.log_batch(rid, metrics=[Metric("a", 2.0, 1, 4)])  # later step wins, old timestamp
    assert store.get_run(rid).data.metrics["a"].value == 2.0

    store.log_batch(
        rid,
        metrics=[
            Metric("n", float("nan"), 1, 0),
            Metric("i", float("inf"), 1, 0),
            Metric("j", float("-inf"), 1, 0),
        ],
    )
    data = store.get_run(rid).data.metrics
    assert math.isnan(data["n"].value)
    assert data["i"].value == MAX and data["j"].value == -MAX
    assert math.isnan(store.get_metric_history(rid, "n")[0].value)


def _stored(v):
    """(value as stored, is_nan): NaN as a flag over 0.0, ±inf clamped, as MLflow."""
    if v != v:
        return 0.0, True
    return max(-MAX, min(MAX, float(v))), False


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_metric_writes_match_a_reference_model(store, seed):
    """Random batches (ties, exact duplicates, NaN, ±inf, int values, in and out of history
    order) against a model of the rules: history is the distinct points in
    (timestamp, step, value) order; latest is the greatest (step, timestamp, value), the
    first of equals kept. Runs get a few batches each, so a batch's own newest point is
    often what decides the latest value."""
    import random

    rng = random.Random(seed)
    finite = [0.0, 1.0, -1.0, 2.5, 3]
    for i in range(45):
        if i % 3 == 0:
            rid = _run(store, "0")
            history: dict[str, set] = {}
            latest: dict[str, tuple] = {}
        # A third of the batches are finite and in history order (the store's column-wise
        # path), a third finite in any order, a third anything.
        values = finite if i % 3 < 2 else [*finite, float("nan"), math.inf, -math.inf]
        # Few steps and timestamps: ties and exact duplicates are frequent.
        batch = [
            Metric(rng.choice("abc"), rng.choice(values), rng.randint(0, 3), rng.randint(0, 3))
            for _ in range(rng.randint(1, 30))
        ]
        if i % 3 == 0:
            batch.sort(key=lambda m: (m.step, m.timestamp))
        store.log_batch(rid, metrics=batch)
        for m in batch:
            v, nan = _stored(m.value)
            history.setdefault(m.key, set()).add((m.timestamp, m.step, v, nan))
            cur = latest.get(m.key)
            if cur is None or (m.step, m.timestamp, v) > cur[:3]:
                latest[m.key] = (m.step, m.timestamp, v, nan)
        run = store.get_run(rid)
        for key, points in history.items():
            got = [
                (m.timestamp, m.step, 0.0 if math.isnan(m.value) else m.value, math.isnan(m.value))
                for m in store.get_metric_history(rid, key)
            ]
            # Points equal but for the NaN flag may come in either order.
            assert got == sorted(got, key=lambda p: p[:3]), key
            assert sorted(got) == sorted(points), key
            m = run.data.metrics[key]
            value = 0.0 if math.isnan(m.value) else m.value
            assert (m.step, m.timestamp, value, math.isnan(m.value)) == latest[key], (i, key)


def test_failed_batch_leaves_no_series_behind(store):
    """A batch that creates a key and then fails is rolled back whole; the key can be
    logged afterwards (no stale series id survives the rollback)."""
    rid = _run(store, "0", params=[Param("p", "1")])
    with pytest.raises(TracklogError):
        store.log_batch(rid, metrics=[Metric("fresh", 1.0, 1, 0, model_id="m-missing")])
    assert store.get_metric_history(rid, "fresh") == []
    with pytest.raises(TracklogError):
        store.log_batch(rid, metrics=[Metric("fresh2", 1.0, 1, 0)], params=[Param("p", "2")])
    store.log_batch(rid, metrics=[Metric("fresh", 2.0, 2, 1), Metric("fresh2", 3.0, 2, 1)])
    assert [m.value for m in store.get_metric_history(rid, "fresh")] == [2.0]
    assert store.get_run(rid).data.metrics["fresh2"].value == 3.0


def test_metric_history_paging(store):
    rid = _run(store, "0")
    store.log_batch(rid, metrics=[Metric("m", float(i), 1000 + i, i) for i in range(25)])
    seen, token = [], None
    while True:
        page = store.get_metric_history(rid, "m", max_results=10, page_token=token)
        seen += [m.step for m in page]
        token = page.token
        if not token:
            break
    assert seen == list(range(25))
    assert store.get_metric_history(rid, "missing") == []
    assert store.get_metric_history("0" * 32, "m") == []
    with pytest.raises(TracklogError) as err:
        store.get_metric_history(rid, "m", max_results=5, page_token="garbage!")
    assert err.value.error_code is ErrorCode.INVALID_PARAMETER_VALUE


def test_search_filters_pushdown_semantics(store):
    eid = store.create_experiment("search")
    _run(
        store,
        eid,
        "alpha",
        1,
        metrics=[Metric("loss", 0.5, 1)],
        params=[Param("model", "CNN")],
        tags=[RunTag("team", "Vision")],
    )
    _run(store, eid, "Beta", 2, metrics=[Metric("loss", 1.5, 1)], params=[Param("model", "cnn")])
    _run(store, eid, "gamma", 3, metrics=[Metric("loss", float("nan"), 1)])
    _run(store, eid, "delta_x", 4)

    def names(flt, **kw):
        return sorted(_names(store.search_runs([eid], parse_run_filter(flt), **kw)))

    assert names("metrics.loss < 1") == ["alpha"]
    assert names("metrics.loss >= 0") == ["Beta", "alpha"]  # NaN never matches
    assert names("params.model = 'CNN'") == ["alpha"]  # case-sensitive =
    assert names("params.model != 'CNN'") == ["Beta"]  # lacking the key never matches
    assert names("params.model LIKE 'c%'") == ["Beta"]  # case-sensitive LIKE
    assert names("params.model ILIKE 'c%'") == ["Beta", "alpha"]
    assert names("params.model IS NULL") == ["delta_x", "gamma"]
    assert names("tags.team LIKE '%isi%'") == ["alpha"]
    assert names("attributes.run_name LIKE 'delta_%'") == ["delta_x"]
    assert names("attributes.run_name LIKE 'delta%x'") == ["delta_x"]
    assert names("run_name LIKE 'a*'") == []  # GLOB metacharacters stay literal
    assert names("attributes.start_time > 2") == ["delta_x", "gamma"]
    assert names("metrics.loss < 1 AND params.model ILIKE 'CNN'") == ["alpha"]
    assert names("attributes.status = 'RUNNING'") == ["Beta", "alpha", "delta_x", "gamma"]


def test_search_order_nulls_last_and_default(store):
    eid = store.create_experiment("order")
    _run(store, eid, "none", 1)
    _run(store, eid, "high", 2, metrics=[Metric("m", 9.0, 1)], params=[Param("p", "b")])
    _run(store, eid, "nan", 3, metrics=[Metric("m", float("nan"), 1)])
    _run(store, eid, "low", 4, metrics=[Metric("m", -1.0, 1)], params=[Param("p", "a")])

    def order(*clauses):
        return _names(store.search_runs([eid], (), order_by=parse_run_order_by(list(clauses))))

    assert order() == ["low", "nan", "high", "none"]  # start_time DESC by default
    # As MLflow, either way: the numbers, then NaN, then the run without the metric.
    assert order("metrics.m ASC") == ["low", "high", "nan", "none"]
    assert order("metrics.m DESC") == ["high", "low", "nan", "none"]
    assert order("params.p DESC")[:2] == ["high", "low"]
    assert order("params.p ASC")[:2] == ["low", "high"]
    assert order("attributes.start_time ASC") == ["none", "high", "nan", "low"]


def test_search_pages_and_view_types(store):
    eid = store.create_experiment("pages")
    ids = [_run(store, eid, f"r{i}", i) for i in range(7)]
    store.delete_run(ids[0])
    got, token = [], None
    while True:
        page = store.search_runs([eid], (), max_results=3, page_token=token)
        got += _names(page)
        token = page.token
        if token is None:
            break
    assert got == [f"r{i}" for i in range(6, 0, -1)]
    assert _names(store.search_runs([eid], (), ViewType.DELETED_ONLY)) == ["r0"]
    assert len(store.search_runs([eid, "123456"], (), ViewType.ALL)) == 7


def test_search_datasets(store):
    eid = store.create_experiment("data")
    rid = _run(store, eid, "with-data")
    _run(store, eid, "without")
    ds = DatasetInput(
        Dataset("train", "d1", "local", "/x"), (InputTag("mlflow.data.context", "training"),)
    )
    store.log_inputs(rid, [ds])
    store.log_inputs(rid, [ds])  # de-duplicated
    run = store.get_run(rid)
    assert len(run.inputs.dataset_inputs) == 1
    assert run.inputs.dataset_inputs[0].tags == (InputTag("mlflow.data.context", "training"),)

    def names(flt):
        return _names(store.search_runs([eid], parse_run_filter(flt)))

    assert names("datasets.name = 'train'") == ["with-data"]
    assert names("datasets.context = 'training'") == ["with-data"]
    assert names("datasets.digest IN ('d1', 'd2')") == ["with-data"]
    assert names("datasets.name = 'other'") == []


def test_search_experiments(store):
    a = store.create_experiment("exp-a", tags=[ExperimentTag("kind", "x")])
    b = store.create_experiment("exp-B")
    store.delete_experiment(b)

    def ids(flt, view=ViewType.ACTIVE_ONLY):
        found = store.search_experiments(view, 100, parse_experiment_filter(flt))
        return [e.experiment_id for e in found]

    assert ids("name LIKE 'exp-%'") == [a]
    assert ids("name LIKE 'exp-%'", ViewType.ALL) == [b, a]  # creation_time DESC, id
    assert ids("tags.kind = 'x'") == [a]
    assert ids(f"attribute.experiment_id = '{a}'") == [a]
    assert set(ids("name ILIKE 'EXP-%'", ViewType.ALL)) == {a, b}


def test_logged_models_and_outputs(store):
    eid = store.create_experiment("models")
    rid = _run(store, eid)
    m = store.create_logged_model(eid, "clf", rid, model_type="sklearn")
    assert m.model_id.startswith("m-") and len(m.model_id) == 34
    assert m.artifact_location == f"mlflow-artifacts:/{eid}/models/{m.model_id}/artifacts"
    store.log_batch(
        rid,
        metrics=[
            Metric("acc", 0.9, 10, 0, model_id=m.model_id, dataset_name="ds", dataset_digest="x")
        ],
    )
    store.log_outputs(rid, [LoggedModelOutput(m.model_id, 2)])
    store.log_inputs(rid, models=[LoggedModelInput(m.model_id)])
    final = store.finalize_logged_model(m.model_id, LoggedModelStatus.LOGGED_MODEL_READY)
    assert final.status is LoggedModelStatus.LOGGED_MODEL_READY
    got = store.get_logged_model(m.model_id)
    assert [(x.key, x.value, x.run_id, x.dataset_name) for x in got.metrics] == [
        ("acc", 0.9, rid, "ds")
    ]
    run = store.get_run(rid)
    assert run.outputs.model_outputs == [LoggedModelOutput(m.model_id, 2)]
    assert run.inputs.model_inputs == [LoggedModelInput(m.model_id)]
    found = store.search_logged_models([eid], parse_logged_model_filter("metrics.acc > 0.5"))
    assert [x.model_id for x in found] == [m.model_id]
    assert store.search_logged_models([eid], parse_logged_model_filter("metrics.acc > 0.95")) == []
    assert (
        store.search_logged_models(
            [eid],
            parse_logged_model_filter("metrics.acc > 0.5"),
            datasets=[{"dataset_name": "other"}],
        )
        == []
    )
    store.delete_logged_model(m.model_id)
    with pytest.raises(TracklogError) as err:
        store.get_logged_model(m.model_id)
    assert err.value.error_code is ErrorCode.RESOURCE_DOES_NOT_EXIST
    assert store.get_logged_model(m.model_id, allow_deleted=True).model_id == m.model_id


def test_registry_rename_cascades_and_search(store):
    store.create_registered_model("Model", [("owner", "me")])
    store.create_model_version("Model", "runs:/r/m", tags=[("t", "1")])
    store.create_model_version("Model", "runs:/r/m2")
    store.set_registered_model_alias("Model", "champion", "2")
    store.transition_model_version_stage("Model", "1", "staging", False)
    store.rename_registered_model("Model", "Renamed")
    v = store.get_model_version_by_alias("Renamed", "champion")
    assert (v.name, v.version) == ("Renamed", "2")
    assert store.get_model_version("Renamed", "1").tags == {"t": "1"}
    rm = store.get_registered_model("Renamed")
    assert {(x.version, x.current_stage) for x in rm.latest_versions} == {
        ("1", "Staging"),
        ("2", "None"),
    }
    assert [
        x.name
        for x in store.search_registered_models(parse_registered_model_filter("name LIKE 'Ren%'"))
    ] == ["Renamed"]
    assert [
        x.name
        for x in store.search_registered_models(parse_registered_model_filter("name LIKE 'ren%'"))
    ] == []
    assert [
        x.version
        for x in store.search_model_versions(parse_model_version_filter("name = 'Renamed'"))
    ] == ["2", "1"]
    store.delete_registered_model("Renamed")
    with pytest.raises(TracklogError) as err:
        store.get_model_version("Renamed", "1")
    assert err.value.error_code is ErrorCode.RESOURCE_DOES_NOT_EXIST


def test_names_longer_than_columns_are_refused_cleanly(store):
    rid = _run(store, "0", "short")
    for call in (
        lambda: store.create_run("0", "u", 0, run_name="n" * 251),
        lambda: store.update_run_info(rid, run_name="n" * 251),
        lambda: store.log_batch(
            rid, metrics=[Metric("m", 1.0, 1)], tags=[RunTag("mlflow.runName", "n" * 251)]
        ),
        lambda: store.create_registered_model("r" * 257),
        lambda: store.log_batch(rid, params=[Param("k" * 251, "v")]),
    ):
        with pytest.raises(TracklogError) as err:
            call()
        assert err.value.error_code is ErrorCode.INVALID_PARAMETER_VALUE
    run = store.get_run(rid)
    assert run.info.run_name == "short" and run.data.metrics == {} and run.data.params == {}
    assert len(store.search_runs(["0"])) == 1


def test_search_runs_experiment_ids_malformed_vs_unknown(store):
    eid = store.create_experiment("ids")
    _run(store, eid, name="only")
    for bad in (["abc"], [eid, "1x"], ["-1"]):
        with pytest.raises(TracklogError) as excinfo:
            store.search_runs(bad)
        assert excinfo.value.error_code == ErrorCode.INVALID_PARAMETER_VALUE
        assert "Invalid experiment ID" in excinfo.value.message
    assert _names(store.search_runs([eid, "987654", "99999999999"])) == ["only"]
