"""validate_metrics: a batch's metric objects checked as validate_metric checks each one."""

from __future__ import annotations

import math
from typing import Any

import pytest

from tracklog import validation as v
from tracklog.entities import Metric, MetricColumns
from tracklog.errors import TracklogError


def _one(raw: dict, path: str) -> Metric:
    return v.validate_metric(
        raw.get("key"),
        raw.get("value"),
        raw.get("timestamp"),
        raw.get("step"),
        path=path,
        model_id=raw.get("model_id"),
        dataset_name=raw.get("dataset_name"),
        dataset_digest=raw.get("dataset_digest"),
    )


def test_same_points_as_validate_metric():
    raw: list[dict[str, Any]] = [
        {"key": "loss", "value": 0.5, "timestamp": 10, "step": 3},
        {"key": "loss", "value": 2, "timestamp": 0},
        {"key": "a/b c.d-e:f", "value": -1.25, "timestamp": 7, "step": -4},
        {"key": "n", "value": "NaN", "timestamp": "5", "step": "2"},
        {"key": "i", "value": "-Infinity", "timestamp": 1, "step": None},
        {"key": "x", "value": 1e308, "timestamp": 2**62, "step": 2**62},
        {
            "key": "m",
            "value": 1.0,
            "timestamp": 1,
            "step": 0,
            "model_id": "mod-1",
            "dataset_name": "train",
            "dataset_digest": "abc",
        },
        {"key": "m", "value": 1.0, "timestamp": 1, "model_id": ""},
        {"key": "m", "value": 1.0, "timestamp": 1, "model_id": "mod-2"},
        {"key": "m", "value": 1.0, "timestamp": 1, "step": None, "dataset_digest": "d"},
        {"key": "f", "value": 3.0, "timestamp": 4.0, "step": 5.0},
    ]
    got = v.validate_metrics(raw)
    want = [_one(r, f"metrics[{i}]") for i, r in enumerate(raw)]
    assert [type(m) for m in got] == [Metric] * len(raw)
    for g, w in zip(got, want, strict=True):
        if math.isnan(w.value):
            assert math.isnan(g.value)
            g, w = g._replace(value=0), w._replace(value=0)
        assert g == w
    assert got[0] == Metric("loss", 0.5, 10, 3)
    assert hash(got[0]) == hash(Metric("loss", 0.5, 10, 3))
    assert type(got[1].value) is float and got[1].step == 0


@pytest.mark.parametrize(
    ("bad", "field"),
    [
        ({"key": "../x", "value": 1, "timestamp": 1}, "metrics[2].key"),
        ({"key": "a$", "value": 1, "timestamp": 1}, "metrics[2].key"),
        ({"key": "", "value": 1, "timestamp": 1}, "metrics[2].key"),
        ({"key": 5, "value": 1, "timestamp": 1}, "metrics[2].key"),
        ({"key": "k" * 251, "value": 1, "timestamp": 1}, "metrics[2].key"),
        ({"key": "a", "value": True, "timestamp": 1}, "metrics[2].value"),
        ({"key": "a", "value": None, "timestamp": 1}, "metrics[2].value"),
        ({"key": "a", "value": "abc", "timestamp": 1}, "metrics[2].value"),
        ({"key": "a", "value": 1, "timestamp": -1}, "metrics[2].timestamp"),
        ({"key": "a", "value": 1, "timestamp": None}, "metrics[2].timestamp"),
        ({"key": "a", "value": 1, "timestamp": True}, "metrics[2].timestamp"),
        ({"key": "a", "value": 1, "timestamp": 1, "step": 1.5}, "metrics[2].step"),
        ({"key": "a", "value": 1, "timestamp": 1, "step": False}, "metrics[2].step"),
    ],
)
def test_refusals_name_the_point_as_validate_metric(bad, field):
    good = {"key": "a", "value": 1.0, "timestamp": 1, "step": 0}
    with pytest.raises(TracklogError) as batch:
        v.validate_metrics([good, good, bad, good])
    with pytest.raises(TracklogError) as single:
        _one(bad, "metrics[2]")
    assert field in batch.value.message
    assert batch.value.message == single.value.message
    assert batch.value.error_code == single.value.error_code


def test_plain_batch_comes_as_columns_with_the_same_points():
    raw: list[dict[str, Any]] = [
        {"key": "loss", "value": 0.5, "timestamp": 10, "step": 3},
        {"key": "loss", "value": 2, "timestamp": 0},
        {"key": "acc", "value": -1.25, "timestamp": 2**63 - 1, "step": -(2**63)},
        {"key": "acc", "value": 1.0, "timestamp": 7, "step": None, "model_id": ""},
    ]
    got = v.validate_metrics(raw)
    assert isinstance(got, MetricColumns)
    want = [_one(r, f"metrics[{i}]") for i, r in enumerate(raw)]
    assert list(got) == want and len(got) == 4 and got == want
    assert [got[i] for i in range(4)] == want and got[-1] == want[-1] and got[1:3] == want[1:3]
    assert got.values == [0.5, 2.0, -1.25, 1.0] and type(got.values[1]) is float
    assert got.steps == [3, 0, -(2**63), 0]
    assert [type(m) for m in got] == [Metric] * 4


@pytest.mark.parametrize(
    "odd",
    [
        {"key": "m", "value": 1.0, "timestamp": 1, "model_id": "mod-1"},
        {"key": "m", "value": 1.0, "timestamp": 1, "step": 0, "dataset_name": "train"},
        {"key": "m", "value": "NaN", "timestamp": 1},
        {"key": "m", "value": 1.0, "timestamp": "5"},
    ],
)
def test_a_point_needing_the_long_path_keeps_every_point(odd):
    raw = [{"key": "a", "value": 1.0, "timestamp": 1, "step": 0}, odd]
    got = v.validate_metrics(raw)
    assert not isinstance(got, MetricColumns)
    want = [_one(r, f"metrics[{i}]") for i, r in enumerate(raw)]
    assert [m._replace(value=0) for m in got] == [m._replace(value=0) for m in want]
