"""``metrics/get-history-bulk-interval``: the sampled history charts read."""

from __future__ import annotations

import uuid

from tracklog.sampling import sample_min_max


def _run_with_history(api, points: list[tuple[int, float]]) -> str:
    exp = api.post("/api/2.0/mlflow/experiments/create",
                   json={"name": f"interval-{uuid.uuid4().hex[:8]}"}).json()["experiment_id"]
    run_id = api.post("/api/2.0/mlflow/runs/create",
                      json={"experiment_id": exp}).json()["run"]["info"]["run_id"]
    for i in range(0, len(points), 1000):
        metrics = [{"key": "loss", "value": v, "timestamp": 1000 + s, "step": s}
                   for s, v in points[i:i + 1000]]
        assert api.post("/api/2.0/mlflow/runs/log-batch",
                        json={"run_id": run_id, "metrics": metrics}).status_code == 200
    return run_id


def test_sampled_history_keeps_ends_and_extremes(api):
    values = [(s, float(s % 97)) for s in range(5000)]
    values[2345] = (2345, 1e6)  # a spike sampling must not lose
    run_id = _run_with_history(api, values)
    other = _run_with_history(api, [(0, 1.0), (1, 2.0)])
    r = api.get("/ajax-api/2.0/mlflow/metrics/get-history-bulk-interval",
                params={"run_ids": [run_id, other], "metric_key": "loss", "max_results": 100})
    assert r.status_code == 200, r.text
    metrics = r.json()["metrics"]
    mine = [m for m in metrics if m["run_id"] == run_id]
    assert len(mine) <= 100
    assert mine[0]["step"] == 0 and mine[-1]["step"] == 4999
    assert any(m["value"] == 1e6 for m in mine)
    assert [m["step"] for m in mine] == sorted(m["step"] for m in mine)
    theirs = [(m["step"], m["value"]) for m in metrics if m["run_id"] == other]
    assert theirs == [(0, 1.0), (1, 2.0)]
    assert set(metrics[0]) == {"key", "value", "timestamp", "step", "run_id"}


def test_step_window(api):
    run_id = _run_with_history(api, [(s, float(s)) for s in range(50)])
    r = api.get("/api/2.0/mlflow/metrics/get-history-bulk-interval",
                params={"run_ids": run_id, "metric_key": "loss", "start_step": 10,
                        "end_step": 19})
    assert [m["step"] for m in r.json()["metrics"]] == list(range(10, 20))


def test_bad_requests_name_the_field(api):
    url = "/api/2.0/mlflow/metrics/get-history-bulk-interval"
    cases = [
        ({"metric_key": "loss"}, "run_ids"),
        ({"run_ids": "a", "metric_key": "loss", "max_results": 0}, "max_results"),
        ({"run_ids": "a", "metric_key": "loss", "max_results": 2501}, "max_results"),
        ({"run_ids": "a", "metric_key": "loss", "start_step": 1}, "end_step"),
        ({"run_ids": "a", "metric_key": "loss", "start_step": 5, "end_step": 1}, "end_step"),
        ({"run_ids": [f"r{i}" for i in range(101)], "metric_key": "loss"}, "run_ids"),
        ({"run_ids": "a"}, "metric_key"),
    ]
    for params, field in cases:
        r = api.get(url, params=params)
        assert r.status_code == 400, (params, r.text)
        assert r.json()["error_code"] == "INVALID_PARAMETER_VALUE"
        assert field in r.json()["message"], (params, r.json())


def test_unknown_run_or_key_is_empty(api):
    r = api.get("/api/2.0/mlflow/metrics/get-history-bulk-interval",
                params={"run_ids": "0" * 32, "metric_key": "nope"})
    assert r.status_code == 200 and r.json() == {}


def test_sampling_function():
    pts = list(range(1000))
    out = sample_min_max(pts, 10, value=lambda p: p)
    assert out[0] == 0 and out[-1] == 999 and len(out) <= 10
    assert sample_min_max(pts[:5], 10, value=lambda p: p) == pts[:5]
    assert sample_min_max(pts, 2, value=lambda p: p) == [0, 999]
    zigzag = [(-1) ** i * i for i in range(1001)]
    out = sample_min_max(zigzag, 50, value=lambda p: p)
    assert min(zigzag) in out and max(zigzag) in out


def test_steps_out_of_time_order_come_back_by_step(api):
    # Logged with timestamps falling as steps rise: the store's order is the reverse.
    exp = api.post("/api/2.0/mlflow/experiments/create",
                   json={"name": f"interval-{uuid.uuid4().hex[:8]}"}).json()["experiment_id"]
    run_id = api.post("/api/2.0/mlflow/runs/create",
                      json={"experiment_id": exp}).json()["run"]["info"]["run_id"]
    metrics = [{"key": "loss", "value": float(s), "timestamp": 10_000 - s, "step": s}
               for s in range(10)]
    api.post("/api/2.0/mlflow/runs/log-batch", json={"run_id": run_id, "metrics": metrics})
    r = api.get("/api/2.0/mlflow/metrics/get-history-bulk-interval",
                params={"run_ids": run_id, "metric_key": "loss"})
    assert [m["step"] for m in r.json()["metrics"]] == list(range(10))
