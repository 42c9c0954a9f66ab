"""Ties in an experiment ordering break as in MLflow's SQL store: by descending id after
``order_by`` clauses, by ascending id under the default order. The ties are made in the
database (the API cannot give two experiments the same creation time)."""

from __future__ import annotations

from tracklog.entities import ViewType
from tracklog.search import parse_experiment_order_by, sort_experiments
from tracklog_store_sql.schema import experiments


def _tied(store) -> list[str]:
    ids = [store.create_experiment(f"tie-{i}") for i in range(4)]
    with store.db.write() as conn:
        conn.execute(experiments.update().values(creation_time=1000, last_update_time=1000))
    return ids


def test_order_by_ties_break_by_descending_id(store):
    _tied(store)
    order = parse_experiment_order_by(["creation_time"])
    everything = list(store.search_experiments(ViewType.ALL))
    got = [e.experiment_id for e in store.search_experiments(ViewType.ALL, order_by=order)]
    assert got == [e.experiment_id for e in sort_experiments(everything, order)]
    assert got == sorted(got, key=int, reverse=True)


def test_default_order_ties_break_by_ascending_id(store):
    _tied(store)
    got = [e.experiment_id for e in store.search_experiments(ViewType.ALL)]
    assert got == sorted(got, key=int)
