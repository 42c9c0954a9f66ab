"""A search page as the runs' JSON in the protocol's wire form (SQLite, PostgreSQL).

The database writes each run's info, params and tags as JSON text in the page statement
itself, and the server sends it as it is, instead of decoding a JSON page into entities,
encoding those as dicts and the dicts as JSON again (of a 1,000-run page's 18-20 ms in
the server, about 7). PostgreSQL writes the latest metrics too, each value as its exact
text (NaN and the infinities as the codec's strings, -0.0 with its sign). SQLite's JSON
keeps 15 significant digits of a double, so there the latest metrics come as rows and
orjson encodes them. A run with dataset inputs or logged-model outputs is built as an
entity and encoded by the server's codec, as every run was before.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any

import orjson
from sqlalchemy.engine import Connection

from tracklog_store_sql.rows import RunSet, _select_latest
from tracklog_store_sql.sqlutil import pg_text_array

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

_PG_INFO = _INFO.replace("cast(r.experiment_id AS TEXT)", "r.experiment_id::text")
_PG_VALUE = """(CASE WHEN lm.is_nan THEN '"NaN"'
  WHEN lm.value = 'Infinity'::float8 THEN '"Infinity"'
  WHEN lm.value = '-Infinity'::float8 THEN '"-Infinity"'
  WHEN lm.value::text = '-0' THEN '-0.0'
  ELSE lm.value::text END)::json"""

#: PostgreSQL's page: as SQLite's, with the latest metrics as a fourth JSON array (NULL
#: when none, as params and tags); the ids bound as one text array.
_PG_PAGE = f"""
SELECT r.run_uuid,
  (CASE WHEN r.start_time IS NOT NULL AND r.end_time IS NOT NULL
          THEN json_build_object({_PG_INFO}, {_START}, {_END})
        WHEN r.start_time IS NOT NULL THEN json_build_object({_PG_INFO}, {_START})
        WHEN r.end_time IS NOT NULL THEN json_build_object({_PG_INFO}, {_END})
        ELSE json_build_object({_PG_INFO}) END)::text,
  (SELECT json_agg(json_build_object('key', lm.key, 'value', {_PG_VALUE},
                                     'timestamp', lm.timestamp, 'step', lm.step))
     FROM latest_metrics lm WHERE lm.run_uuid = r.run_uuid)::text,
  (SELECT json_agg(json_build_object('key', p.key, 'value', p.value))
     FROM params p WHERE p.run_uuid = r.run_uuid)::text,
  (SELECT json_agg(json_build_object('key', t.key, 'value', t.value))
     FROM tags t WHERE t.run_uuid = r.run_uuid)::text,
  EXISTS (SELECT 1 FROM inputs i
          WHERE i.destination_type = 'RUN' AND i.destination_id = r.run_uuid)
  OR EXISTS (SELECT 1 FROM run_outputs o WHERE o.run_uuid = r.run_uuid)
FROM unnest(CAST(%(run_ids)s AS text[])) WITH ORDINALITY AS j(run_id, position)
JOIN runs r ON r.run_uuid = j.run_id
ORDER BY j.position
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
    if conn.dialect.name == "postgresql":
        rows = conn.exec_driver_sql(_PG_PAGE, {"run_ids": pg_text_array(run_ids)})
        return _assembled(conn, rows.cursor.fetchall())
    page = conn.exec_driver_sql(_PAGE, (json.dumps(list(run_ids)),)).cursor.fetchall()
    metrics: dict[str, list[dict[str, Any]]] = {}
    for run_uuid, key, ts, step, value, is_nan in RunSet(run_ids, "sqlite").rows(
            conn, _select_latest):
        point = {"key": key, "value": _value(value, is_nan), "timestamp": ts, "step": step}
        listed = metrics.get(run_uuid)
        if listed is None:
            metrics[run_uuid] = [point]
        else:
            listed.append(point)
    dumps = orjson.dumps
    return _assembled(conn, [
        (run_uuid, info, dumps(metrics[run_uuid]).decode() if run_uuid in metrics else None,
         None if params == "[]" else params, None if tags == "[]" else tags, has_io)
        for run_uuid, info, params, tags, has_io in page])


def _assembled(conn: Connection, rows: Sequence[tuple]) -> list[bytes]:
    """The runs of ``rows`` (run id, info, then metrics, params and tags as JSON arrays
    or None, and whether it has inputs or outputs) as JSON objects, in their order."""
    out: list[bytes] = []
    entities: dict[int, str] = {}  # position -> run id, for runs with inputs or outputs
    for run_uuid, info, metrics, params, tags, has_io in rows:
        if has_io:
            entities[len(out)] = run_uuid
            out.append(b"")
            continue
        data = []
        if metrics is not None:
            data.append('"metrics":' + metrics)
        if params is not None:
            data.append('"params":' + params)
        if tags is not None:
            data.append('"tags":' + tags)
        out.append(('{"info":' + info + ',"data":{' + ",".join(data)).encode() + _NO_IO)
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

