"""The MLflow wire encoding: requests in (query strings, JSON bodies), entities out.

Requests: snake_case field names (lowerCamel accepted too), int64 as numbers or decimal
strings, enums by name or number, doubles as numbers or ``"NaN"``/``"Infinity"``, GET
lists as repeated keys and booleans as ``True``/``False`` in any case.
Responses: snake_case, int64 as JSON numbers, enums by name, non-finite doubles as the
protobuf-JSON strings, fields never set omitted. Encoded with orjson.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from enum import Enum
from itertools import repeat
from typing import Any, Literal, overload

import orjson
from starlette.datastructures import QueryParams
from starlette.responses import Response

from tracklog import errors
from tracklog.entities import (
    DatasetInput,
    Experiment,
    FileInfo,
    LoggedModel,
    LoggedModelStatus,
    Metric,
    ModelVersion,
    RegisteredModel,
    Run,
    RunInfo,
    RunStatus,
    ViewType,
)
from tracklog.validation import invalid_value, missing, nul_refused, to_int

# Proto enum numbers, for clients that send enums as integers.
_ENUM_NUMBERS: dict[type[Enum], dict[int, Enum]] = {
    RunStatus: {1: RunStatus.RUNNING, 2: RunStatus.SCHEDULED, 3: RunStatus.FINISHED,
                4: RunStatus.FAILED, 5: RunStatus.KILLED},
    ViewType: {1: ViewType.ACTIVE_ONLY, 2: ViewType.DELETED_ONLY, 3: ViewType.ALL},
    LoggedModelStatus: {0: LoggedModelStatus.LOGGED_MODEL_STATUS_UNSPECIFIED,
                        1: LoggedModelStatus.LOGGED_MODEL_PENDING,
                        2: LoggedModelStatus.LOGGED_MODEL_READY,
                        3: LoggedModelStatus.LOGGED_MODEL_UPLOAD_FAILED},
}


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p.capitalize() for p in rest)


class Req:
    """One decoded request: typed accessors over a JSON body or a query string.

    Every accessor raises INVALID_PARAMETER_VALUE naming the field on a badly typed value.
    """

    __slots__ = ("data", "query", "path_params", "identity")

    def __init__(
        self,
        data: Mapping[str, Any] | None = None,
        query: QueryParams | None = None,
        path_params: Mapping[str, str] | None = None,
    ) -> None:
        self.data = data if data is not None else {}
        self.query = query
        self.path_params = path_params or {}
        self.identity: Any = None

    def _raw(self, name: str) -> Any:
        if self.query is not None:
            if name in self.query:
                return self.query[name]
            camel = _camel(name)
            return self.query.get(camel) if camel != name else None
        value = self.data.get(name)
        if value is None and "_" in name:
            value = self.data.get(_camel(name))
        return value

    def has(self, name: str) -> bool:
        """Whether the request gives ``name`` at all (an empty list counts)."""
        return self._raw(name) is not None

    @overload
    def string(self, name: str, required: Literal[True], default: str | None = None) -> str: ...
    @overload
    def string(self, name: str, required: bool = False, *, default: str) -> str: ...
    @overload
    def string(
        self, name: str, required: bool = False, default: str | None = None
    ) -> str | None: ...

    def string(self, name: str, required: bool = False, default: str | None = None) -> str | None:
        """``name`` as a string: MISSING_PARAMETER_VALUE when ``required`` and absent or
        empty, else ``default`` when absent."""
        value = self._raw(name)
        if value is None:
            if required:
                raise missing(name)
            return default
        if not isinstance(value, str):
            raise invalid_value(name, value, f"Hint: Value was of type '{type(value).__name__}'")
        if required and value == "":
            raise missing(name)
        return value

    @overload
    def integer(self, name: str, required: Literal[True], default: int | None = None) -> int: ...
    @overload
    def integer(self, name: str, required: bool = False, *, default: int) -> int: ...
    @overload
    def integer(
        self, name: str, required: bool = False, default: int | None = None
    ) -> int | None: ...

    def integer(self, name: str, required: bool = False, default: int | None = None) -> int | None:
        """``name`` as an int64: MISSING_PARAMETER_VALUE when ``required`` and absent or
        empty, else ``default`` when absent."""
        value = self._raw(name)
        if value is None or value == "":
            if required:
                raise missing(name)
            return default
        return to_int(value, name)

    def boolean(self, name: str, default: bool = False) -> bool:
        value = self._raw(name)
        if value is None or value == "":
            return default
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        raise invalid_value(name, value, "Expected a boolean (true or false).")

    def enum(self, name: str, enum: type[Enum], default: Enum | None = None) -> Any:
        value = self._raw(name)
        if value is None or value == "":
            return default
        numbers = _ENUM_NUMBERS.get(enum, {})
        if isinstance(value, str):
            if value.isdigit() and int(value) in numbers:
                return numbers[int(value)]
            try:
                return enum[value] if value in enum.__members__ else enum(value)
            except ValueError:
                pass
        elif isinstance(value, int) and not isinstance(value, bool) and value in numbers:
            return numbers[value]
        allowed = ", ".join(enum.__members__)
        raise invalid_value(name, value, f"Expected one of: {allowed}.")

    def values(self, name: str) -> list[Any]:
        if self.query is not None:
            values = self.query.getlist(name)
            return values if values else self.query.getlist(_camel(name))
        value = self._raw(name)
        if value is None:
            return []
        if not isinstance(value, list):
            raise invalid_value(name, value, "Expected a list.")
        return value

    def strings(self, name: str) -> list[str]:
        values = self.values(name)
        for i, v in enumerate(values):
            if not isinstance(v, str):
                raise invalid_value(f"{name}[{i}]", v, "Expected a string.")
        return values

    def objects(self, name: str) -> list[dict[str, Any]]:
        values = self.values(name)
        if all(map(isinstance, values, repeat(dict))):  # one C-level pass
            return values
        for i, v in enumerate(values):
            if not isinstance(v, dict):
                raise invalid_value(f"{name}[{i}]", v, "Expected an object.")
        return values

    def object(self, name: str) -> dict[str, Any] | None:
        """An object field; anything else is INVALID_PARAMETER_VALUE naming it."""
        value = self._raw(name)
        if value is None:
            return None
        if not isinstance(value, dict):
            raise invalid_value(name, value, "Expected an object.")
        return value

    def run_id(self) -> str:
        """``run_id``, or the legacy ``run_uuid`` (the client sends both)."""
        value = self.string("run_id") or self.string("run_uuid")
        if not value:
            raise missing("run_id")
        return value


#: Deepest JSON nesting a request may have. MLflow's bodies nest five levels at most; a
#: cap keeps every later recursive walk of a value (error messages, encoders) safe.
MAX_JSON_DEPTH = 64

_JSON_TYPES = ("application/json",)
# Braces become brackets (for depth only the nesting counts); all but brackets and
# quotes is dropped.
_AS_BRACKETS = bytes.maketrans(b"{}", b"[]")
_NOT_STRUCTURE = bytes(b for b in range(256) if b not in b'[]{}"')
_NON_FINITE_LITERAL = re.compile(rb"(?<![\w\"])-?(?:NaN|Infinity)(?![\w\"])")


def nests_deeper(body: bytes, limit: int) -> bool:
    """Whether the valid JSON ``body`` nests more than ``limit`` levels, exactly, in a few
    C-level passes over bytes: the brackets outside strings are kept, and each removal of
    the adjacent pairs ``[]`` takes away one level."""
    if b"\\" in body:
        # Escaped backslashes, then escaped quotes: what is left of an escape is a
        # backslash and letters, which the translation drops.
        body = body.replace(b"\\\\", b"").replace(b'\\"', b"")
    # Adjacent quotes are an empty string or the gap between two strings: no structure.
    marks = body.translate(_AS_BRACKETS, _NOT_STRUCTURE).replace(b'""', b"")
    if b'"' in marks:
        # Some strings hold brackets: keep what lies between strings only.
        marks = b"".join(marks.split(b'"')[::2])
    if len(marks) <= 2 * limit:
        return False
    for _ in range(limit):
        marks = marks.replace(b"[]", b"")
        if not marks:
            return False
    return True


def find_nul(data: Any, path: str = "") -> str | None:
    """The field path of the first string (or object key) in ``data`` holding U+0000."""
    if isinstance(data, str):
        return path or "body" if "\x00" in data else None
    if isinstance(data, dict):
        for key, value in data.items():
            name = f"{path}.{key}" if path else str(key)
            if "\x00" in key:
                return name
            found = find_nul(value, name)
            if found:
                return found
    elif isinstance(data, list):
        for i, value in enumerate(data):
            found = find_nul(value, f"{path}[{i}]")
            if found:
                return found
    return None


def check_content_type(content_type: str | None) -> None:
    """A JSON body must be sent as ``application/json`` (a missing type is let through,
    as a bare ``curl --data-binary`` or a hand-written client may omit it)."""
    if content_type is None:
        return
    media = content_type.split(";", 1)[0].strip().lower()
    if media not in _JSON_TYPES and not media.endswith("+json"):
        raise errors.invalid(
            f"Bad Request. Content-Type must be application/json, got '{media[:100]}'."
        )


def request_from_json(
    body: bytes,
    path_params: Mapping[str, str] | None = None,
    content_type: str | None = None,
) -> Req:
    """Decode a JSON request body. A body that is not JSON, holds ``NaN``/``Infinity``
    literals, is not an object, nests deeper than :data:`MAX_JSON_DEPTH` or holds a NUL
    character anywhere is refused with a 400 saying which."""
    if not body:
        return Req({}, None, path_params)
    check_content_type(content_type)
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        if _NON_FINITE_LITERAL.search(body):
            raise errors.invalid(
                "The request body is not valid JSON: NaN and Infinity are not JSON numbers; "
                'send non-finite values as the strings "NaN", "Infinity" or "-Infinity".'
            ) from None
        if "depth" in str(exc) or "recursion" in str(exc):
            raise errors.invalid(
                f"The request body nests deeper than {MAX_JSON_DEPTH} levels."
            ) from None
        raise errors.invalid(f"The request body is not valid JSON: {exc}") from None
    if isinstance(data, str) and data.lstrip().startswith("{"):
        # Older MLflow clients post their JSON encoded twice; MLflow's server decodes again.
        return request_from_json(data.encode(), path_params)
    if not isinstance(data, dict):
        raise errors.invalid(
            f"The request body must be a JSON object, got a JSON {_json_type(data)}."
        )
    if nests_deeper(body, MAX_JSON_DEPTH):
        raise errors.invalid(f"The request body nests deeper than {MAX_JSON_DEPTH} levels.")
    # A NUL can only arrive escaped ("\u0000"); the parsed value tells a real one from
    # an escaped backslash followed by "u0000". Most bodies hold no backslash at all, and
    # looking for one byte is a memchr.
    if b"\\" in body and b"\\u0000" in body:
        field = find_nul(data)
        if field is not None:
            raise nul_refused(field)
    return Req(data, None, path_params)


def check_query(query: QueryParams, path_params: Mapping[str, str] | None = None) -> None:
    """Refuse a NUL character in a query string or a path parameter, naming the field."""
    for key, value in query.multi_items():
        if "\x00" in key or "\x00" in value:
            raise nul_refused(key)
    for key, value in (path_params or {}).items():
        if isinstance(value, str) and "\x00" in value:
            raise nul_refused(key)


def _json_type(data: Any) -> str:
    if isinstance(data, list):
        return "array"
    if isinstance(data, str):
        return "string"
    if data is None:
        return "null"
    if isinstance(data, bool):
        return "boolean"
    return "number"


# --- responses ---------------------------------------------------------------------------


class JSONResponse(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


class JSONParts(Response):
    """A JSON body already encoded in parts, sent part by part under one Content-Length:
    a body of many megabytes is never joined into one more copy of itself."""

    media_type = "application/json"

    def __init__(self, parts: list[bytes]) -> None:
        self.parts = parts
        super().__init__(None, headers={"content-length": str(sum(map(len, parts)))})

    def decoded(self) -> Any:
        """The body as Python values (for a caller of a handler other than the app)."""
        return orjson.loads(b"".join(self.parts))

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": self.status_code,
                    "headers": self.raw_headers})
        parts, last = self.parts, len(self.parts) - 1
        for i in range(last + 1):
            part, parts[i] = parts[i], b""  # sent parts are freed as the rest go out
            await send({"type": "http.response.body", "body": part, "more_body": i < last})


def error_response(err: errors.TracklogError) -> JSONResponse:
    headers = dict(err.headers or {})
    if err.retry_after is not None:
        headers["Retry-After"] = str(err.retry_after)
    return JSONResponse(err.to_dict(), status_code=err.http_status, headers=headers or None)


# --- entities ------------------------------------------------------------------------


def _val(v: Any) -> Any:
    return v.value if isinstance(v, Enum) else v


def double(value: float) -> float | str:
    if math.isfinite(value):
        return value
    if value != value:
        return "NaN"
    return "Infinity" if value > 0 else "-Infinity"


def key_values(items: Mapping[str, str] | Iterable[Any]) -> list[dict[str, str]]:
    if isinstance(items, Mapping):
        return [{"key": k, "value": v} for k, v in items.items()]
    entities: Iterable[Any] = items  # tag or param entities: anything with key and value
    return [{"key": t.key, "value": t.value} for t in entities]


def experiment(e: Experiment) -> dict[str, Any]:
    out: dict[str, Any] = {
        "experiment_id": e.experiment_id,
        "name": e.name,
        "artifact_location": e.artifact_location,
        "lifecycle_stage": _val(e.lifecycle_stage),
    }
    if e.creation_time is not None:
        out["creation_time"] = e.creation_time
    if e.last_update_time is not None:
        out["last_update_time"] = e.last_update_time
    if e.tags:
        out["tags"] = key_values(e.tags)
    return out


def metric(m: Metric, full: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {
        "key": m.key,
        "value": double(m.value),
        "timestamp": m.timestamp,
        "step": m.step,
    }
    if full:
        for name in ("dataset_name", "dataset_digest", "model_id", "run_id"):
            value = getattr(m, name)
            if value is not None:
                out[name] = value
    return out


def run_info(i: RunInfo) -> dict[str, Any]:
    out: dict[str, Any] = {
        "run_id": i.run_id,
        "run_uuid": i.run_id,
        "run_name": i.run_name,
        "experiment_id": i.experiment_id,
        "user_id": i.user_id or "",
        "status": _val(i.status),
        "artifact_uri": i.artifact_uri,
        "lifecycle_stage": _val(i.lifecycle_stage),
    }
    if i.start_time is not None:
        out["start_time"] = i.start_time
    if i.end_time is not None:
        out["end_time"] = i.end_time
    return out


def dataset_input(d: DatasetInput) -> dict[str, Any]:
    ds = d.dataset
    dataset: dict[str, Any] = {
        "name": ds.name,
        "digest": ds.digest,
        "source_type": ds.source_type,
        "source": ds.source,
    }
    if ds.schema is not None:
        dataset["schema"] = ds.schema
    if ds.profile is not None:
        dataset["profile"] = ds.profile
    out: dict[str, Any] = {"dataset": dataset}
    if d.tags:
        out["tags"] = key_values(d.tags)
    return out


def run(r: Run) -> dict[str, Any]:
    data: dict[str, Any] = {}
    if r.data.metrics:
        data["metrics"] = [metric(m) for m in r.data.metrics.values()]
    if r.data.params:
        data["params"] = key_values(r.data.params)
    if r.data.tags:
        data["tags"] = key_values(r.data.tags)
    inputs: dict[str, Any] = {}
    if r.inputs.dataset_inputs:
        inputs["dataset_inputs"] = [dataset_input(d) for d in r.inputs.dataset_inputs]
    if r.inputs.model_inputs:
        inputs["model_inputs"] = [{"model_id": m.model_id} for m in r.inputs.model_inputs]
    outputs: dict[str, Any] = {}
    if r.outputs.model_outputs:
        outputs["model_outputs"] = [
            {"model_id": m.model_id, "step": m.step} for m in r.outputs.model_outputs
        ]
    return {"info": run_info(r.info), "data": data, "inputs": inputs, "outputs": outputs}


def logged_model(m: LoggedModel) -> dict[str, Any]:
    info: dict[str, Any] = {
        "model_id": m.model_id,
        "experiment_id": m.experiment_id,
        "name": m.name,
        "creation_timestamp_ms": m.creation_timestamp,
        "last_updated_timestamp_ms": m.last_updated_timestamp,
        "artifact_uri": m.artifact_location,
        "status": _val(m.status),
        "model_type": m.model_type or "",
    }
    if m.source_run_id:
        info["source_run_id"] = m.source_run_id
    if m.status_message:
        info["status_message"] = m.status_message
    if m.tags:
        info["tags"] = key_values(m.tags)
    data: dict[str, Any] = {}
    if m.params:
        data["params"] = key_values(m.params)
    if m.metrics:
        data["metrics"] = [metric(x, full=True) for x in m.metrics]
    return {"info": info, "data": data}


def model_version(v: ModelVersion) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": v.name,
        "version": str(v.version),
        "creation_timestamp": v.creation_timestamp,
        "last_updated_timestamp": v.last_updated_timestamp,
        "current_stage": _val(v.current_stage),
        "description": v.description or "",
        "source": v.source,
        "run_id": v.run_id or "",
        "status": _val(v.status),
        "run_link": v.run_link or "",
    }
    if v.user_id:
        out["user_id"] = v.user_id
    if v.status_message:
        out["status_message"] = v.status_message
    if v.tags:
        out["tags"] = key_values(v.tags)
    if v.aliases:
        out["aliases"] = list(v.aliases)
    if v.model_id:
        out["model_id"] = v.model_id
    return out


def registered_model(m: RegisteredModel) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": m.name,
        "creation_timestamp": m.creation_timestamp,
        "last_updated_timestamp": m.last_updated_timestamp,
    }
    if m.description:
        out["description"] = m.description
    if m.user_id:
        out["user_id"] = m.user_id
    if m.latest_versions:
        out["latest_versions"] = [model_version(v) for v in m.latest_versions]
    if m.tags:
        out["tags"] = key_values(m.tags)
    if m.aliases:
        out["aliases"] = [{"alias": a.alias, "version": str(a.version)} for a in m.aliases]
    return out


def file_info(f: FileInfo, path: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"path": f.path if path is None else path, "is_dir": f.is_dir}
    if not f.is_dir and f.file_size is not None:
        out["file_size"] = f.file_size
    return out


def paged(key: str, items: list[Any], token: str | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if items:
        out[key] = items
    if token:
        out["next_page_token"] = token
    return out


def paged_encoded(key: str, items: list[bytes], token: str | None) -> dict[str, Any] | JSONParts:
    """:func:`paged` for items each already encoded as JSON (in one part: one send)."""
    if not items and not token:
        return {}
    body = [b'{"', key.encode(), b'":[', b",".join(items), b"]"] if items else [b"{"]
    if token:
        body += (b"," if items else b"", b'"next_page_token":', orjson.dumps(token))
    body.append(b"}")
    return JSONParts([b"".join(body)])


# --- responses read back (a client of another MLflow-protocol server) -------------------


def _opt_int(value: Any) -> int | None:
    return None if value in (None, "") else int(value)


def _kv(items: Any) -> dict[str, str]:
    return {t["key"]: t.get("value", "") for t in items or ()}


def metric_from_json(m: dict[str, Any], key: str | None = None) -> Metric:
    """A metric from a response; non-finite values arrive as ``"NaN"``/``"Infinity"``."""
    value = m.get("value")
    return Metric(key or m["key"], float(value) if value is not None else 0.0,
                  _opt_int(m.get("timestamp")) or 0, _opt_int(m.get("step")) or 0,
                  m.get("model_id"), m.get("dataset_name"), m.get("dataset_digest"),
                  m.get("run_id"))


def experiment_from_json(e: dict[str, Any]) -> Experiment:
    from tracklog.entities import LifecycleStage

    return Experiment(e["experiment_id"], e["name"], e.get("artifact_location", ""),
                      LifecycleStage(e.get("lifecycle_stage", "active")), _kv(e.get("tags")),
                      _opt_int(e.get("creation_time")), _opt_int(e.get("last_update_time")))


def run_from_json(r: dict[str, Any]) -> Run:
    from tracklog.entities import (
        Dataset,
        InputTag,
        LifecycleStage,
        LoggedModelInput,
        LoggedModelOutput,
        RunData,
        RunInputs,
        RunOutputs,
    )

    info, data = r["info"], r.get("data") or {}
    inputs, outputs = r.get("inputs") or {}, r.get("outputs") or {}
    return Run(
        RunInfo(info["run_id"], info["experiment_id"], info.get("run_name", ""),
                info.get("user_id", ""), RunStatus(info.get("status", "RUNNING")),
                _opt_int(info.get("start_time")), _opt_int(info.get("end_time")),
                info.get("artifact_uri", ""),
                LifecycleStage(info.get("lifecycle_stage", "active"))),
        RunData({m["key"]: metric_from_json(m) for m in data.get("metrics", ())},
                _kv(data.get("params")), _kv(data.get("tags"))),
        RunInputs(
            [DatasetInput(Dataset(d["dataset"]["name"], d["dataset"]["digest"],
                                  d["dataset"].get("source_type", ""),
                                  d["dataset"].get("source", ""), d["dataset"].get("schema"),
                                  d["dataset"].get("profile")),
                          tuple(InputTag(t["key"], t.get("value", ""))
                                for t in d.get("tags", ())))
             for d in inputs.get("dataset_inputs", ())],
            [LoggedModelInput(m["model_id"]) for m in inputs.get("model_inputs", ())]),
        RunOutputs([LoggedModelOutput(m["model_id"], _opt_int(m.get("step")) or 0)
                    for m in outputs.get("model_outputs", ())]),
    )


def logged_model_from_json(m: dict[str, Any]) -> LoggedModel:
    info, data = m["info"], m.get("data") or {}
    return LoggedModel(
        model_id=info["model_id"], experiment_id=info["experiment_id"], name=info["name"],
        artifact_location=info.get("artifact_uri", ""),
        creation_timestamp=_opt_int(info.get("creation_timestamp_ms")) or 0,
        last_updated_timestamp=_opt_int(info.get("last_updated_timestamp_ms")) or 0,
        status=LoggedModelStatus(info.get("status", "LOGGED_MODEL_PENDING")),
        model_type=info.get("model_type") or None, source_run_id=info.get("source_run_id"),
        status_message=info.get("status_message"), tags=_kv(info.get("tags")),
        params=_kv(data.get("params")),
        metrics=[metric_from_json(x) for x in data.get("metrics", ())])


def model_version_from_json(v: dict[str, Any]) -> ModelVersion:
    from tracklog.entities import ModelVersionStatus

    return ModelVersion(
        name=v["name"], version=str(v["version"]),
        creation_timestamp=_opt_int(v.get("creation_timestamp")) or 0,
        last_updated_timestamp=_opt_int(v.get("last_updated_timestamp")) or 0,
        source=v.get("source", ""), current_stage=v.get("current_stage", "None"),
        description=v.get("description", ""), user_id=v.get("user_id") or None,
        run_id=v.get("run_id") or None, run_link=v.get("run_link", ""),
        status=ModelVersionStatus(v.get("status", "READY")),
        status_message=v.get("status_message"), tags=_kv(v.get("tags")),
        aliases=list(v.get("aliases", ())), model_id=v.get("model_id") or None)


def registered_model_from_json(m: dict[str, Any]) -> RegisteredModel:
    from tracklog.entities import RegisteredModelAlias

    return RegisteredModel(
        name=m["name"], creation_timestamp=_opt_int(m.get("creation_timestamp")) or 0,
        last_updated_timestamp=_opt_int(m.get("last_updated_timestamp")) or 0,
        description=m.get("description", ""), user_id=m.get("user_id") or None,
        tags=_kv(m.get("tags")),
        aliases=[RegisteredModelAlias(a["alias"], str(a["version"]))
                 for a in m.get("aliases", ())])
