"""tracklog.validation: MLflow's input rules, shared by the server and the SDK."""

from __future__ import annotations

import math

import pytest

from tracklog import validation as v
from tracklog.errors import ErrorCode, TracklogError
from tracklog.validation import MAX_PARAM_VAL_LENGTH, MAX_TAG_VAL_LENGTH


def refused(fn, *args, match: str = "", **kwargs) -> str:
    with pytest.raises(TracklogError) as info:
        fn(*args, **kwargs)
    assert info.value.error_code is ErrorCode.INVALID_PARAMETER_VALUE
    assert match in info.value.message, info.value.message
    return info.value.message


def test_param_and_tag_values_are_truncated_not_refused():
    assert v.validate_param("p", "x" * 7000).value == "x" * MAX_PARAM_VAL_LENGTH
    assert v.validate_param("p", "x" * 6000).value == "x" * 6000
    assert v.validate_tag("t", "y" * 9000).value == "y" * MAX_TAG_VAL_LENGTH
    assert v.validate_param("p", None).value == ""
    assert v.validate_param("p", 3).value == "3"


@pytest.mark.parametrize("key", ["a b", "a/b", "a:b", "a.b-c_d", "ünïcode"])
def test_allowed_keys(key):
    assert v.validate_key(key) == key


@pytest.mark.parametrize(
    ("key", "reason"),
    [("a$b", "Names may only contain"), ("../x", "resolve to"), ("a//b", "resolve to"),
     ("a/./b", "resolve to"), ("a/", "resolve to"), ("/a", "resolve to"), (".", "resolve to"),
     ("k" * 251, "exceeds the maximum length of 250"), ("", "Missing value")],
)
def test_refused_keys_name_the_field(key, reason):
    message = refused(v.validate_param, key, "v", path="params[2]", match=reason)
    assert "params[2].key" in message


def test_metric_wire_forms():
    m = v.validate_metric("m", "NaN", "5", "-3")
    assert math.isnan(m.value) and m.timestamp == 5 and m.step == -3
    assert v.validate_metric("m", "Infinity", 1).value == math.inf
    assert v.validate_metric("m", "-Infinity", 1).value == -math.inf
    assert v.validate_metric("m", 2, 1, None).step == 0
    assert v.validate_metric("m", "1e-3", 1).value == 0.001


@pytest.mark.parametrize(
    ("value", "timestamp", "step", "field"),
    [(True, 1, 0, "metrics[3].value"), ("abc", 1, 0, "metrics[3].value"),
     (None, 1, 0, "metrics[3].value"), (1, None, 0, "metrics[3].timestamp"),
     (1, -1, 0, "metrics[3].timestamp"), (1, "soon", 0, "metrics[3].timestamp"),
     (1, 1, "x", "metrics[3].step"), (1, 1, 1.5, "metrics[3].step")],
)
def test_bad_metrics_name_the_field(value, timestamp, step, field):
    assert field in refused(v.validate_metric, "m", value, timestamp, step, path="metrics[3]")


def test_batch_limits_and_duplicate_params():
    v.validate_batch_limits(1000, 0, 0)
    v.validate_batch_limits(800, 100, 100)
    refused(v.validate_batch_limits, 1001, 0, 0, match="at most 1000 metrics")
    refused(v.validate_batch_limits, 0, 101, 0, match="at most 100 params")
    refused(v.validate_batch_limits, 0, 0, 101, match="at most 100 tags")
    refused(v.validate_batch_limits, 900, 100, 1, match="at most 1000 metrics, params, and tags")
    params = [v.validate_param("a", "1"), v.validate_param("b", "1"), v.validate_param("a", "2")]
    refused(v.validate_unique_param_keys, params, match="['a']")


def test_names_and_aliases():
    assert v.validate_experiment_name("e") == "e"
    refused(v.validate_experiment_name, "x" * 501, match="500")
    refused(v.validate_experiment_name, "", match="Missing value")
    refused(v.validate_experiment_name, 5, match="name")
    assert v.validate_registered_model_name("my model") == "my model"
    for bad in ("a/b", "a:b", "../a"):
        refused(v.validate_registered_model_name, bad, match="name")
    assert v.validate_logged_model_name(None) is None
    for bad in ("a.b", "a%b", 'a"b', "a'b", "a/b", "a:b"):
        refused(v.validate_logged_model_name, bad, match="name")
    assert v.validate_alias("champion-1") == "champion-1"
    for bad in ("latest", "v3", "V12", "a b", "x" * 256):
        refused(v.validate_alias, bad, match="alias")
    assert v.validate_model_version("3") == "3"
    refused(v.validate_model_version, "three", match="must be an integer")
    refused(v.validate_artifact_location, "s3://b/p?x=1", match="artifact_location")
    refused(v.validate_artifact_location, "x" * 2049, match="2048")


def test_dataset_limits():
    ok = v.validate_dataset_input("d", "abc", "http", "src", tags=[("mlflow.data.context", "t")])
    assert ok.dataset.name == "d" and ok.tags[0].value == "t"
    refused(v.validate_dataset_input, "d", "x" * 37, "http", "src", path="datasets[1]",
            match="datasets[1].dataset.digest")
    refused(v.validate_dataset_input, "d" * 501, "x", "http", "src", match="dataset.name")
    refused(v.validate_dataset_input, "d", "x", "http", None, match="dataset.source")
    refused(v.validate_dataset_input, "d", "x", "http", "s", tags=[("k", "v" * 501)],
            match="tags[0].value")


@pytest.mark.parametrize("value", [2**63, -(2**63) - 1, 1e20, str(2**63), "9" * 5000])
def test_integers_outside_int64_name_the_field(value):
    refused(v.to_int, value, "start_time", match="'start_time'")
    refused(v.validate_model_version, value, match="'version'")
    refused(v.validate_metric, "m", 1.0, value, 0, path="metrics[2]", match="metrics[2].timestamp")
    refused(v.validate_metric, "m", 1.0, 1, value, path="metrics[2]", match="metrics[2].step")
    refused(v.validate_metrics, [{"key": "m", "value": 1, "timestamp": 1},
                                 {"key": "m", "value": 1, "timestamp": value}],
            match="metrics[1].timestamp")


def test_int64_extremes_pass():
    assert v.to_int(str(2**63 - 1), "f") == 2**63 - 1
    assert v.to_int(-(2**63), "f") == -(2**63)
    m = v.validate_metrics([{"key": "m", "value": 1, "timestamp": 2**63 - 1, "step": -(2**63)}])
    assert (m[0].timestamp, m[0].step) == (2**63 - 1, -(2**63))
