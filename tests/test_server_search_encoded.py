"""runs/search answered from a store's encoded page (the SQL store on SQLite) is the
answer the entities give: the same body once decoded, page after page, and ``{}`` for
an empty one."""

from __future__ import annotations

from typing import Any

API = "/api/2.0/mlflow"


def _sorted(body: dict[str, Any]) -> dict[str, Any]:
    runs = [{**run, "data": {k: sorted(v, key=lambda i: i["key"])
                             for k, v in run["data"].items()}} for run in body.get("runs", [])]
    return {**body, "runs": runs}


def test_encoded_answers_are_the_entity_ones(in_process, monkeypatch) -> None:
    http, store = in_process
    exp_id = http.post(f"{API}/experiments/create", json={"name": "e"}).json()["experiment_id"]
    for i in range(7):
        run_id = http.post(f"{API}/runs/create", json={
            "experiment_id": exp_id, "start_time": i, "run_name": f"r{i}",
            "tags": [{"key": "t", "value": f'"{i}"\n'}]}).json()["run"]["info"]["run_id"]
        http.post(f"{API}/runs/log-batch", json={
            "run_id": run_id, "params": [{"key": "p", "value": "é"}],
            "metrics": [{"key": "m", "value": i / 3, "timestamp": 1, "step": 0},
                        {"key": "n", "value": "NaN", "timestamp": 1, "step": 0}]})
        if i % 2:
            http.post(f"{API}/runs/update", json={"run_id": run_id, "status": "FINISHED",
                                                  "end_time": 100 + i})

    def pages(body: dict[str, Any]) -> list[dict[str, Any]]:
        out, token = [], None
        while True:
            r = http.post(f"{API}/runs/search", json={**body, "page_token": token})
            assert r.status_code == 200 and r.headers["content-type"] == "application/json"
            out.append(_sorted(r.json()))
            token = r.json().get("next_page_token")
            if not token:
                return out

    bodies: list[dict[str, Any]] = [{"experiment_ids": [exp_id], "max_results": 3},
              {"experiment_ids": [exp_id], "filter": "metrics.m > 0.5",
               "order_by": ["metrics.m DESC"]},
              {"experiment_ids": [exp_id], "filter": "params.p = 'none'"}]
    assert store.search_runs_encoded([exp_id]) is not None  # the route's first choice
    encoded = [pages(body) for body in bodies]
    assert [len(p) for p in encoded] == [3, 1, 1]
    assert sum(len(p.get("runs", [])) for p in encoded[0]) == 7
    assert encoded[2] == [{"runs": []}]  # the body was {}
    assert http.post(f"{API}/runs/search", json=bodies[2]).content == b"{}"

    monkeypatch.setattr(store, "search_runs_encoded", lambda *_a, **_k: None)
    assert [pages(body) for body in bodies] == encoded
