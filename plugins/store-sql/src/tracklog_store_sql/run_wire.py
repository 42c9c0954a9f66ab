"""A search page on SQLite as the runs' JSON in the protocol's wire form.

SQLite writes each run's info, params and tags as JSON text in the page statement
itself; only the latest metrics come as rows, since SQLite's JSON keeps 15 significant
digits of a double and a metric's value must come back exact. The route then sends the
text as it is, instead of decoding a JSON page into entities, encoding those as dicts
and the dicts as JSON again (of a 1,000-run page's 17 ms in the server, about 7).
A run with dataset inputs or logged-model outputs is built as an entity and encoded by
the server's codec, as every run was before.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any

import orjson
from sqlalchemy.engine import Connection

from tracklog_store_sql.rows import RunSet, _select_latest

_INFO = ("'run_id', r.run_uuid, 'run_uuid', r.run_uuid, 'run_name', coalesce(r.name, ''), "
         "'experiment_id', cast(r.experiment_id AS TEXT), 'user_id', coalesce(r.user_id, ''), "
         "'status', r.status, 'artifact_uri', r.artifact_uri, "
         "'lifecycle_stage', r.lifecycle_stage")
_START, _END = "'start_time', r.start_time", "'end_time', r.end_time"

#: One row per run of the page, in the order of the ids (a JSON array bound as one
#: parameter): the run's info as a JSON object, its params and tags as JSON arrays
#: ("[]" when none), and whether it has inputs or outputs. The fields and their forms
#: are those of ``tracklog.server.codec.run_info``, start and end times left out when
#: unset (one ``json_object`` for each case: cheaper than joining text or patching).
_PAGE = f"""
SELECT r.run_uuid,
  CASE WHEN r.start_time IS NOT NULL AND r.end_time IS NOT NULL
         THEN json_object({_INFO}, {_START}, {_END})
       WHEN r.start_time IS NOT NULL THEN json_object({_INFO}, {_START})
       WHEN r.end_time IS NOT NULL THEN json_object({_INFO}, {_END})
       ELSE json_object({_INFO}) END,
  (SELECT json_group_array(json_object('key', p.key, 'value', p.value))
     FROM params p WHERE p.run_uuid = r.run_uuid),
  (SELECT json_group_array(json_object('key', t.key, 'value', t.value))
     FROM tags t WHERE t.run_uuid = r.run_uuid),
  EXISTS (SELECT 1 FROM inputs i
          WHERE i.destination_type = 'RUN' AND i.destination_id = r.run_uuid)
  OR EXISTS (SELECT 1 FROM run_outputs o WHERE o.run_uuid = r.run_uuid)
FROM json_each(?) AS j JOIN runs r ON r.run_uuid = j.value
ORDER BY j.key
"""

_NO_IO = b'},"inputs":{},"outputs":{}}'


def _value(value: float, is_nan: Any) -> float | str:
    # As the codec writes a double: NaN and the infinities as strings.
    if is_nan:
        return "NaN"
    if math.isfinite(value):
        return value
    return "Infinity" if value > 0 else "-Infinity"


def encoded_page(conn: Connection, run_ids: Sequence[str]) -> list[bytes]:
    """Each run of ``run_ids`` that exists, in that order, as its JSON object."""
    if not run_ids:
        return []
    rows = conn.exec_driver_sql(_PAGE, (json.dumps(list(run_ids)),)).cursor.fetchall()
    metrics: dict[str, list[dict[str, Any]]] = {}
    for run_uuid, key, ts, step, value, is_nan in RunSet(run_ids, "sqlite").rows(
            conn, _select_latest):
        point = {"key": key, "value": _value(value, is_nan), "timestamp": ts, "step": step}
        listed = metrics.get(run_uuid)
        if listed is None:
            metrics[run_uuid] = [point]
        else:
            listed.append(point)
    out: list[bytes] = []
    entities: dict[int, str] = {}  # position -> run id, for runs with inputs or outputs
    dumps = orjson.dumps
    for run_uuid, info, params, tags, has_io in rows:
        if has_io:
            entities[len(out)] = run_uuid
            out.append(b"")
            continue
        data = []
        listed = metrics.get(run_uuid)
        if listed:
            data.append(b'"metrics":' + dumps(listed))
        if params != "[]":
            data.append(b'"params":' + params.encode())
        if tags != "[]":
            data.append(b'"tags":' + tags.encode())
        out.append(b'{"info":' + info.encode() + b',"data":{' + b",".join(data) + _NO_IO)
    if entities:
        _encode_entities(conn, entities, out)
    return [run for run in out if run]


def _encode_entities(conn: Connection, at: dict[int, str], out: list[bytes]) -> None:
    """The runs ``at`` each position of ``out`` (inputs and outputs included), through
    the entities and the server's codec."""
    from tracklog.server import codec
    from tracklog_store_sql.run_pages import load_page

    runs = {run.info.run_id: run for run in load_page(conn, list(at.values()))}
    for position, run_id in at.items():
        run = runs.get(run_id)  # deleted between the two statements: left out
        out[position] = orjson.dumps(codec.run(run)) if run is not None else b""

