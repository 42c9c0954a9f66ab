"""validate_metrics: a batch's metric objects checked as validate_metric checks each one."""

from __future__ import annotations

import math
from typing import Any

import pytest

from tracklog import validation as v
from tracklog.entities import Metric
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
