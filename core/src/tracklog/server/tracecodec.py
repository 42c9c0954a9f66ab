"""The wire encoding of traces and assessments (MLflow's ``TraceInfoV3`` and
``Assessment`` messages).

Unlike the rest of the API, trace messages carry protobuf well-known types: times are
RFC 3339 strings (``"2026-11-23T08:41:11.155Z"``) and durations seconds strings
(``"0.036s"``); maps are JSON objects. Stores speak epoch milliseconds.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime
from enum import Enum
from typing import Any

from tracklog.entities import (
    Assessment,
    AssessmentKind,
    AssessmentSourceType,
    TraceInfo,
    TraceState,
)
from tracklog.validation import invalid_value, missing

_TRACE_STATES = {0: TraceState.STATE_UNSPECIFIED, 1: TraceState.OK, 2: TraceState.ERROR,
                 3: TraceState.IN_PROGRESS}
_SOURCE_TYPES = {0: AssessmentSourceType.SOURCE_TYPE_UNSPECIFIED, 1: AssessmentSourceType.HUMAN,
                 2: AssessmentSourceType.LLM_JUDGE, 3: AssessmentSourceType.CODE}
_TIMESTAMP_RE = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?"
    r"(?:[Zz]|([+-])(\d{2}):(\d{2}))"
)
_DURATION_RE = re.compile(r"(-)?(\d{1,12})(?:\.(\d{1,9}))?s")
#: Trace ids become part of artifact paths: letters, digits, ``-`` and ``_`` only.
_TRACE_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_\-]{0,63}")


# --- well-known types -------------------------------------------------------------------


def timestamp_to_ms(value: Any, field: str) -> int:
    """Epoch milliseconds of an RFC 3339 timestamp string (or of a number of ms)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    m = _TIMESTAMP_RE.fullmatch(value) if isinstance(value, str) else None
    if m is None:
        raise invalid_value(field, value, "Expected an RFC 3339 timestamp such as "
                            "'2026-01-31T12:00:00.250Z'.")
    year, month, day, hour, minute, second = (int(g) for g in m.groups()[:6])
    try:
        moment = datetime(year, month, day, hour, minute, min(second, 59), tzinfo=UTC)
    except ValueError:
        raise invalid_value(field, value, "Not a valid date and time.") from None
    ms = int(moment.timestamp()) * 1000 + int((m.group(7) or "0").ljust(9, "0")[:3])
    if m.group(8):
        offset = (int(m.group(9)) * 60 + int(m.group(10))) * 60_000
        ms -= offset if m.group(8) == "+" else -offset
    return ms


def ms_to_timestamp(ms: int) -> str:
    moment = datetime.fromtimestamp(ms // 1000, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + f".{ms % 1000:03d}Z"


def duration_to_ms(value: Any, field: str) -> int:
    """Milliseconds of a protobuf-JSON duration (``"1.5s"``), rounded down."""
    m = _DURATION_RE.fullmatch(value) if isinstance(value, str) else None
    if m is None:
        raise invalid_value(field, value, "Expected a duration in seconds such as '0.036s'.")
    if m.group(1):
        raise invalid_value(field, value, "A duration cannot be negative.")
    return int(m.group(2)) * 1000 + int((m.group(3) or "0").ljust(9, "0")[:3])


def ms_to_duration(ms: int) -> str:
    seconds, rest = divmod(ms, 1000)
    return f"{seconds}.{rest:03d}s" if rest else f"{seconds}s"


def _enum(value: Any, numbers: dict[int, Any], enum: type[Enum], field: str, default: Any) -> Any:
    if value is None or value == "":
        return default
    if isinstance(value, int) and not isinstance(value, bool) and value in numbers:
        return numbers[value]
    if isinstance(value, str) and value in enum.__members__:
        return enum[value]
    raise invalid_value(field, value, f"Expected one of: {', '.join(enum.__members__)}.")


def _string_map(value: Any, field: str) -> dict[str, str]:
    if value is None:
        return {}
    if isinstance(value, list):  # [{key, value}] as the v2 messages spell maps
        out = {}
        for i, item in enumerate(value):
            if not isinstance(item, dict):
                raise invalid_value(f"{field}[{i}]", item, "Expected an object.")
            out[item.get("key")] = item.get("value")
        value = out
    if not isinstance(value, dict):
        raise invalid_value(field, value, "Expected an object of strings.")
    for key, item in value.items():
        if not isinstance(key, str) or not key:
            raise invalid_value(field, key, "Keys must be non-empty strings.")
        if not isinstance(item, str):
            raise invalid_value(f"{field}.{key}", item, "Expected a string.")
    return dict(value)


def _optional_str(data: dict[str, Any], name: str, field: str) -> str | None:
    value = data.get(name)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise invalid_value(f"{field}.{name}", value, "Expected a string.")
    return value


def check_trace_id(value: Any, field: str = "trace_id") -> str:
    if value is None or value == "":
        raise missing(field)
    if not isinstance(value, str) or _TRACE_ID_RE.fullmatch(value) is None:
        raise invalid_value(field, value, "A trace id is 1 to 64 letters, digits, '-' or '_', "
                            "starting with a letter or digit.")
    return value


# --- trace infos ---------------------------------------------------------------------


def trace_info_from_json(data: Any, field: str = "trace.trace_info") -> TraceInfo:
    """A :class:`TraceInfo` from a ``TraceInfoV3`` object, every field checked."""
    if not isinstance(data, dict):
        raise missing(field) if data is None else invalid_value(field, data, "Expected an object.")
    location = data.get("trace_location") or {}
    if not isinstance(location, dict):
        raise invalid_value(f"{field}.trace_location", location, "Expected an object.")
    if location.get("type") not in (None, "MLFLOW_EXPERIMENT", 1):
        raise invalid_value(f"{field}.trace_location.type", location.get("type"),
                            "Only MLFLOW_EXPERIMENT locations are served here.")
    experiment = location.get("mlflow_experiment") or {}
    experiment_id = experiment.get("experiment_id") if isinstance(experiment, dict) else None
    if not experiment_id:
        raise missing(f"{field}.trace_location.mlflow_experiment.experiment_id")
    if not isinstance(experiment_id, str):
        raise invalid_value(f"{field}.trace_location.mlflow_experiment.experiment_id",
                            experiment_id, "Expected a string.")
    request_time = data.get("request_time")
    if request_time is None:
        raise missing(f"{field}.request_time")
    duration = data.get("execution_duration")
    return TraceInfo(
        trace_id=check_trace_id(data.get("trace_id"), f"{field}.trace_id"),
        experiment_id=experiment_id,
        request_time=timestamp_to_ms(request_time, f"{field}.request_time"),
        execution_duration=None if duration is None
        else duration_to_ms(duration, f"{field}.execution_duration"),
        state=_enum(data.get("state"), _TRACE_STATES, TraceState, f"{field}.state",
                    TraceState.STATE_UNSPECIFIED),
        request_preview=_optional_str(data, "request_preview", field),
        response_preview=_optional_str(data, "response_preview", field),
        client_request_id=_optional_str(data, "client_request_id", field),
        trace_metadata=_string_map(data.get("trace_metadata"), f"{field}.trace_metadata"),
        tags=_string_map(data.get("tags"), f"{field}.tags"),
    )


def trace_info(t: TraceInfo) -> dict[str, Any]:
    out: dict[str, Any] = {
        "trace_id": t.trace_id,
        "trace_location": {"type": "MLFLOW_EXPERIMENT",
                           "mlflow_experiment": {"experiment_id": t.experiment_id}},
        "request_time": ms_to_timestamp(t.request_time),
        "state": t.state.value,
    }
    if t.client_request_id:
        out["client_request_id"] = t.client_request_id
    if t.execution_duration is not None:
        out["execution_duration"] = ms_to_duration(t.execution_duration)
    if t.request_preview is not None:
        out["request_preview"] = t.request_preview
    if t.response_preview is not None:
        out["response_preview"] = t.response_preview
    if t.trace_metadata:
        out["trace_metadata"] = dict(t.trace_metadata)
    if t.tags:
        out["tags"] = dict(t.tags)
    if t.assessments:
        out["assessments"] = [assessment(a) for a in t.assessments]
    return out


# --- assessments -----------------------------------------------------------------------


def _value_object(data: dict[str, Any], kind: AssessmentKind, field: str) -> dict[str, Any]:
    value = data.get(kind.value)
    if not isinstance(value, dict):
        raise invalid_value(f"{field}.{kind.value}", value, "Expected an object.")
    for name, item in value.items():
        if isinstance(item, float) and not math.isfinite(item):
            raise invalid_value(f"{field}.{kind.value}.{name}", item, "Not a finite number.")
    return value


def assessment_kind(data: dict[str, Any], field: str) -> AssessmentKind:
    has = [k for k in AssessmentKind if data.get(k.value) is not None]
    if len(has) != 1:
        raise invalid_value(field, None if not has else [k.value for k in has],
                            "Exactly one of 'feedback' or 'expectation' must be given.")
    return has[0]


def assessment_from_json(data: Any, trace_id: str, field: str = "assessment") -> Assessment:
    """A new :class:`Assessment` from a ``CreateAssessment`` request's ``assessment``."""
    if not isinstance(data, dict):
        raise missing(field) if data is None else invalid_value(field, data, "Expected an object.")
    body_trace = data.get("trace_id")
    if body_trace not in (None, "", trace_id):
        raise invalid_value(f"{field}.trace_id", body_trace,
                            f"It differs from the trace id '{trace_id}' in the path.")
    name = data.get("assessment_name")
    if not isinstance(name, str) or not name.strip():
        raise missing(f"{field}.assessment_name") if not name else \
            invalid_value(f"{field}.assessment_name", name, "Expected a non-empty string.")
    if len(name) > 250:
        raise invalid_value(f"{field}.assessment_name", name[:20] + "…",
                            "It is longer than 250 characters.")
    kind = assessment_kind(data, field)
    source = data.get("source") or {}
    if not isinstance(source, dict):
        raise invalid_value(f"{field}.source", source, "Expected an object.")
    source_id = source.get("source_id") or ""
    if not isinstance(source_id, str):
        raise invalid_value(f"{field}.source.source_id", source_id, "Expected a string.")
    valid = data.get("valid", True)
    if not isinstance(valid, bool):
        raise invalid_value(f"{field}.valid", valid, "Expected a boolean.")
    return Assessment(
        assessment_id="",
        trace_id=trace_id,
        name=name,
        kind=kind,
        value=_value_object(data, kind, field),
        source_type=_enum(source.get("source_type"), _SOURCE_TYPES, AssessmentSourceType,
                          f"{field}.source.source_type",
                          AssessmentSourceType.SOURCE_TYPE_UNSPECIFIED),
        source_id=source_id,
        span_id=_optional_str(data, "span_id", field),
        rationale=_optional_str(data, "rationale", field),
        metadata=_string_map(data.get("metadata"), f"{field}.metadata"),
        overrides=_optional_str(data, "overrides", field),
        valid=valid,
    )


def assessment_update_from_json(data: Any, mask: Any) -> dict[str, Any]:
    """The keyword arguments of ``update_assessment`` from an ``UpdateAssessment``
    request: the ``assessment`` object and its ``update_mask`` (a comma-separated list
    of field paths, the protobuf-JSON form of a FieldMask)."""
    if not isinstance(data, dict):
        raise missing("assessment") if data is None else \
            invalid_value("assessment", data, "Expected an object.")
    if isinstance(mask, dict):
        mask = mask.get("paths")
    if isinstance(mask, str):
        paths = [p.strip() for p in mask.split(",") if p.strip()]
    elif isinstance(mask, list) and all(isinstance(p, str) for p in mask):
        paths = mask
    else:
        raise missing("update_mask") if mask is None else \
            invalid_value("update_mask", mask, "Expected a comma-separated list of fields.")
    changes: dict[str, Any] = {}
    for path in paths:
        snake = re.sub(r"([A-Z])", lambda m: "_" + m.group(1).lower(), path)
        if snake == "assessment_name":
            name = data.get("assessment_name")
            if not isinstance(name, str) or not name.strip() or len(name) > 250:
                raise invalid_value("assessment.assessment_name", name,
                                    "Expected a non-empty string of at most 250 characters.")
            changes["name"] = name
        elif snake in ("feedback", "expectation"):
            kind = AssessmentKind(snake)
            changes["value"] = (kind, _value_object(data, kind, "assessment"))
        elif snake == "rationale":
            rationale = data.get("rationale")
            if rationale is not None and not isinstance(rationale, str):
                raise invalid_value("assessment.rationale", rationale, "Expected a string.")
            changes["rationale"] = rationale or ""
        elif snake == "metadata":
            changes["metadata"] = _string_map(data.get("metadata"), "assessment.metadata")
        else:
            raise invalid_value("update_mask", path, "Only assessment_name, feedback, "
                                "expectation, rationale and metadata can be updated.")
    if not changes:
        raise missing("update_mask")
    return changes


def assessment(a: Assessment) -> dict[str, Any]:
    out: dict[str, Any] = {
        "assessment_id": a.assessment_id,
        "assessment_name": a.name,
        "trace_id": a.trace_id,
        "source": {"source_type": a.source_type.value, "source_id": a.source_id},
        "create_time": ms_to_timestamp(a.create_time),
        "last_update_time": ms_to_timestamp(a.last_update_time),
        a.kind.value: a.value,
        "valid": a.valid,
    }
    if a.span_id:
        out["span_id"] = a.span_id
    if a.rationale:
        out["rationale"] = a.rationale
    if a.metadata:
        out["metadata"] = dict(a.metadata)
    if a.overrides:
        out["overrides"] = a.overrides
    return out
