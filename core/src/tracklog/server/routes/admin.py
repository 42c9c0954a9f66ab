"""tracklog's own administration routes, outside the MLflow protocol.

``POST /api/2.0/tracklog/gc`` runs :func:`tracklog.gc.collect` on the server's store and
artifact destination: MLflow's REST API has no way to remove deleted records for good,
so ``tracklog gc --tracking-uri`` asks here. The rule is ``manage``.
"""

from __future__ import annotations

from typing import Any

from tracklog import validation
from tracklog.errors import TracklogError
from tracklog.server.codec import Req
from tracklog.server.routing import RouteTable, ServerState

table = RouteTable()


@table.rpc("POST", "/tracklog/gc", "manage")
def gc(state: ServerState, req: Req) -> dict[str, Any]:
    from tracklog.gc import artifact_deleter, collect, parse_older_than
    from tracklog.plugins import resolve_repository

    older = req.string("older_than") or ""
    try:
        older_ms = parse_older_than(older) if older else 0
    except TracklogError:
        raise validation.invalid_value("older_than", older,
                                       "Expected a duration like 30d, 12h or 1d2h3m4s.") from None
    lists = {}
    for name in ("run_ids", "experiment_ids", "logged_model_ids"):
        values = req.strings(name)
        if any(not v or len(v) > 100 for v in values):
            raise validation.invalid_value(name, values, "Expected a list of ids.")
        lists[name] = values
    destination = state.config.artifacts_destination if state.artifact_root is not None \
        else None
    report = collect(state.store, artifact_deleter(destination, resolve_repository),
                     older_ms, lists["run_ids"], lists["experiment_ids"],
                     lists["logged_model_ids"], req.boolean("dry_run"))
    return {"runs": report.runs, "logged_models": report.logged_models,
            "experiments": report.experiments, "failed": report.failed}
