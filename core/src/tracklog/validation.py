"""Input validation shared by the server's routes and the SDK (MLflow's rules).

Each function checks one kind of input and returns it normalised (long param and tag
values truncated, numbers coerced from their wire form) or raises
:class:`tracklog.errors.TracklogError` with INVALID_PARAMETER_VALUE and a message that
names the offending field, e.g. ``metrics[3].timestamp``.

>>> validate_param("lr", "x" * 7000).value == "x" * 6000
True
"""

from __future__ import annotations

import functools
import json
import math
import posixpath
import re
from collections.abc import Sequence
from itertools import repeat
from typing import Any

from tracklog import errors
from tracklog.artifacts.locations import check_artifact_location
from tracklog.entities import (
    Dataset,
    DatasetInput,
    ExperimentTag,
    InputTag,
    Metric,
    MetricColumns,
    Param,
    RunTag,
    metric_from_fields,
)

MAX_PARAMS_TAGS_PER_BATCH = 100
MAX_METRICS_PER_BATCH = 1000
MAX_ENTITIES_PER_BATCH = 1000
MAX_PARAM_VAL_LENGTH = 6000
MAX_TAG_VAL_LENGTH = 8000
MAX_ENTITY_KEY_LENGTH = 250
MAX_EXPERIMENT_NAME_LENGTH = 500
MAX_EXPERIMENT_TAG_KEY_LENGTH = 250
MAX_EXPERIMENT_TAG_VAL_LENGTH = 20000
MAX_ARTIFACT_LOCATION_LENGTH = 2048
MAX_MODEL_REGISTRY_TAG_KEY_LENGTH = 250
MAX_MODEL_REGISTRY_TAG_VALUE_LENGTH = 100_000
MAX_DATASET_NAME_SIZE = 500
MAX_DATASET_DIGEST_SIZE = 36
MAX_DATASET_SOURCE_SIZE = 65535
MAX_DATASET_SCHEMA_SIZE = 1048575
MAX_DATASET_PROFILE_SIZE = 16777215
MAX_DATASETS_PER_BATCH = 1000
MAX_INPUT_TAG_KEY_SIZE = 255
MAX_INPUT_TAG_VALUE_SIZE = 500
MAX_REGISTERED_MODEL_ALIAS_LENGTH = 255
MAX_RESULTS_RUNS = 50000
MAX_RESULTS_EXPERIMENTS = 50000
#: The range of a protobuf int64, which every integer field of the protocol is, and of
#: the BIGINT columns that hold them.
INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
#: Most experiment ids one search may name (``mlflow.search_runs(search_all_experiments=
#: True)`` sends every active experiment's id).
MAX_EXPERIMENT_IDS_PER_SEARCH = 20000

_KEY_RE = re.compile(r"^[/\w.\- :]*$")
_RUN_ID_RE = re.compile(r"^[a-zA-Z0-9][\w\-]{0,255}$")
_ALIAS_RE = re.compile(r"^[\w\-]*$")
_VERSION_ALIAS_RE = re.compile(r"^[vV]\d+$")
_LOGGED_MODEL_BAD_CHARS = set('/:.%"\'')
_NON_FINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}

_BAD_CHARACTERS = (
    "Names may only contain alphanumerics, underscores (_), dashes (-), periods (.), "
    "spaces ( ), colon(:) and slashes (/)."
)


def invalid_value(field: str, value: Any, reason: str | None = None) -> errors.TracklogError:
    """The MLflow-worded INVALID_PARAMETER_VALUE error for ``field``."""
    try:
        shown = json.dumps(value, sort_keys=True, separators=(",", ":"))
    except (TypeError, ValueError, RecursionError):
        shown = f"<{type(value).__name__}>"
    if len(shown) > 200:
        shown = shown[:200] + "..."
    message = f"Invalid value {shown} for parameter '{field}' supplied"
    return errors.invalid(f"{message}: {reason}" if reason else f"{message}.")


def missing(field: str) -> errors.TracklogError:
    return errors.invalid(f"Missing value for required parameter '{field}'.")


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def _too_long(field: str, limit: int) -> errors.TracklogError:
    return errors.invalid(f"'{field}' exceeds the maximum length of {limit} characters")


def nul_refused(field: str) -> errors.TracklogError:
    """The error for text holding U+0000. No backend stores it alike (PostgreSQL refuses
    it, others keep it, C-string APIs cut at it), so tracklog refuses it everywhere."""
    return errors.invalid(
        f"Invalid value for parameter '{field}': text may not contain the NUL character "
        "(U+0000)."
    )


def check_no_nul(field: str, *values: str | None) -> None:
    """Refuse a NUL character in any of ``values`` (``None`` is skipped), naming ``field``;
    stores call it before writing text they were handed."""
    for value in values:
        if value and "\x00" in value:
            raise nul_refused(field)


def check_length(field: str, value: str | None, limit: int) -> str | None:
    if value is not None and len(value) > limit:
        raise _too_long(field, limit)
    return value


def path_not_unique(name: str) -> bool:
    norm = posixpath.normpath(name)
    return norm != name or norm == "." or norm.startswith("..") or norm.startswith("/")


@functools.lru_cache(maxsize=8192)
def _good_key(key: str) -> bool:
    return (
        0 < len(key) <= MAX_ENTITY_KEY_LENGTH
        and _KEY_RE.match(key) is not None
        and not path_not_unique(key)
    )


def validate_key(key: Any, field: str = "key", what: str = "A key") -> str:
    """Metric, param and tag keys: allowed characters, path-unique, at most 250 chars."""
    if type(key) is str and _good_key(key):
        return key
    if key is None or key == "":
        raise missing(field)
    if not isinstance(key, str):
        raise invalid_value(field, key, f"{what} must be a string.")
    if not _KEY_RE.match(key):
        raise invalid_value(field, key, _BAD_CHARACTERS)
    if path_not_unique(key):
        raise invalid_value(
            field,
            key,
            "Names may be treated as files in certain cases, and must not resolve to other "
            f"names when treated as such. This name would resolve to {posixpath.normpath(key)!r}",
        )
    raise _too_long(field, MAX_ENTITY_KEY_LENGTH)


def _string_value(value: Any, field: str) -> str:
    if value is None:
        return ""
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise invalid_value(field, value, "Value must be a string.")
    return value if isinstance(value, str) else str(value)


def validate_param(key: Any, value: Any, path: str = "") -> Param:
    """A param with its value truncated to 6000 characters."""
    key = validate_key(key, _join(path, "key"), "A param key")
    value = _string_value(value, _join(path, "value"))
    return Param(key, value[:MAX_PARAM_VAL_LENGTH])


def validate_tag(key: Any, value: Any, path: str = "") -> RunTag:
    """A run tag with its value truncated to 8000 characters."""
    key = validate_key(key, _join(path, "key"), "A tag key")
    value = _string_value(value, _join(path, "value"))
    return RunTag(key, value[:MAX_TAG_VAL_LENGTH])


def to_double(value: Any, field: str) -> float:
    """A JSON double: a number, a numeric string, or "NaN" / "Infinity" / "-Infinity"."""
    if isinstance(value, bool) or value is None:
        raise invalid_value(
            field, value, "Please specify value as a valid double (64-bit floating point)"
        )
    try:
        if isinstance(value, (int, float)):
            return float(value)
        if isinstance(value, str):
            if value in _NON_FINITE:
                return _NON_FINITE[value]
            return float(value)
    except (ValueError, OverflowError):
        pass
    raise invalid_value(
        field, value, "Please specify value as a valid double (64-bit floating point)"
    )


def _out_of_range(field: str, value: Any) -> errors.TracklogError:
    return invalid_value(
        field, value, f"It must be a 64-bit integer (from {INT64_MIN} to {INT64_MAX})."
    )


def check_int64(value: int, field: str) -> int:
    """``value`` itself if it fits a signed 64-bit integer, else INVALID_PARAMETER_VALUE
    naming ``field``. Stores call it before writing an integer they were handed."""
    if INT64_MIN <= value <= INT64_MAX:
        return value
    raise _out_of_range(field, value)


def check_int64_column(values: Sequence[int], field: str) -> None:
    """Refuse a column of integers (a batch's timestamps, say) if one falls outside int64;
    ``field`` is a template such as ``"metrics[{}].timestamp"`` and the error names the
    first offender. Two C-level scans when all fit."""
    if values and (min(values) < INT64_MIN or max(values) > INT64_MAX):
        for i, value in enumerate(values):
            if not INT64_MIN <= value <= INT64_MAX:
                raise _out_of_range(field.format(i), value)


def to_int(value: Any, field: str) -> int:
    """A JSON int64: an integer number or a decimal string (how query strings carry it).
    Values outside the int64 range (``2**63``, ``1e20``) are refused, as protobuf does."""
    if isinstance(value, bool):
        raise invalid_value(field, value, "Value must be an integer.")
    number: int | None = None
    if isinstance(value, int):
        number = value
    elif isinstance(value, float) and value.is_integer():
        number = int(value)
    elif isinstance(value, str):
        text = value.strip()
        # int() of a long digit string is quadratic; nothing past 20 digits is an int64.
        if len(text) <= 21:
            try:
                number = int(text)
            except ValueError:
                pass
        elif text.lstrip("+-").isdigit():
            raise _out_of_range(field, value)
    if number is None:
        raise errors.invalid(f"Parameter '{field}' must be an integer, got '{value}'.")
    if INT64_MIN <= number <= INT64_MAX:
        return number
    raise _out_of_range(field, value)


def validate_metric(
    key: Any,
    value: Any,
    timestamp: Any,
    step: Any = 0,
    path: str = "",
    model_id: str | None = None,
    dataset_name: str | None = None,
    dataset_digest: str | None = None,
    run_id: str | None = None,
) -> Metric:
    """A metric point; the value may be NaN or ±inf, the timestamp must be ≥ 0."""
    # Fast paths for the usual wire types: a log-batch carries up to 1000 of these.
    if not (type(key) is str and _good_key(key)):
        key = validate_key(key, _join(path, "key"), "A metric name")
    if type(value) is float or type(value) is int:
        number = float(value)
    elif value is None:
        raise missing(_join(path, "value"))
    else:
        number = to_double(value, _join(path, "value"))
    if type(timestamp) is int and 0 <= timestamp <= INT64_MAX:
        ts = timestamp
    else:
        if timestamp is None:
            raise missing(_join(path, "timestamp"))
        ts = to_int(timestamp, _join(path, "timestamp"))
        if ts < 0:
            raise invalid_value(
                _join(path, "timestamp"),
                timestamp,
                f"metric '{key}'. Timestamp must be a nonnegative long (64-bit integer)",
            )
    if step is None:
        st = 0
    elif type(step) is int and INT64_MIN <= step <= INT64_MAX:
        st = step
    else:
        st = to_int(step, _join(path, "step"))
    return Metric(
        key,
        number,
        ts,
        st,
        model_id=model_id or None,
        dataset_name=dataset_name or None,
        dataset_digest=dataset_digest or None,
        run_id=run_id or None,
    )


#: Keys known to be valid, for the per-point loop of :func:`validate_metrics`: a set
#: lookup costs half an ``lru_cache`` call, which pays for the int64 range checks.
_GOOD_KEYS: set[str] = set()


def _remember_good(key: str) -> bool:
    if len(_GOOD_KEYS) < 8192:
        _GOOD_KEYS.add(key)
    return True


def validate_metrics(
    raw: Sequence[dict[str, Any]], field: str = "metrics"
) -> Sequence[Metric]:
    """The objects of a request's metric list, each checked as :func:`validate_metric`
    does (errors name ``metrics[i].<field>``). Points in the usual wire form (string key,
    number value, int64 timestamp ≥ 0 and step, no model or dataset) take a short path
    with the same checks; any other goes through :func:`validate_metric`. A batch of
    such points only is checked column by column and returned as :class:`MetricColumns`."""
    columns = _plain_columns(raw)
    if columns is not None:
        return columns
    out: list[Metric] = []
    append = out.append
    good_key = _good_key
    new = metric_from_fields
    top, bottom = INT64_MAX, INT64_MIN
    known = _GOOD_KEYS
    for i, m in enumerate(raw):
        get = m.get
        key, value, ts, step = get("key"), get("value"), get("timestamp"), get("step")
        if (
            type(key) is str
            and (type(value) is float or type(value) is int)
            and type(ts) is int
            and 0 <= ts <= top
            and (step is None or type(step) is int and bottom <= step <= top)
            # With no other field than those four there is no model or dataset to check.
            and (len(m) <= (3 if step is None else 4)
                 or not (get("model_id") or get("dataset_name") or get("dataset_digest")))
            and (key in known or good_key(key) and _remember_good(key))
        ):
            append(new((key, float(value), ts, 0 if step is None else step,
                        None, None, None, None)))
        else:
            append(
                validate_metric(
                    key, value, ts, step, path=f"{field}[{i}]", model_id=get("model_id"),
                    dataset_name=get("dataset_name"), dataset_digest=get("dataset_digest"),
                )
            )
    return out


_STR, _INT, _NUMBER = {str}, {int}, {int, float}
_NONE = type(None)
_STEP = {int, _NONE}


def _plain_columns(raw: Sequence[dict[str, Any]]) -> MetricColumns | None:
    """``raw`` as columns if every point passes the short path of
    :func:`validate_metrics` (the same checks, each made once per column by built-ins);
    None if any point needs the long path, which then names the first bad one."""
    if not raw:
        return None
    get = dict.get
    keys: list[Any]
    values: list[Any]
    tss: list[Any]
    steps: list[Any]
    keys = list(map(get, raw, repeat("key")))
    values = list(map(get, raw, repeat("value")))
    tss = list(map(get, raw, repeat("timestamp")))
    steps = list(map(get, raw, repeat("step")))
    value_types = set(map(type, values))
    step_types = set(map(type, steps))
    if not (
        set(map(type, keys)) == _STR
        and value_types <= _NUMBER
        and set(map(type, tss)) == _INT
        and step_types <= _STEP
        and 0 <= min(tss)
        and max(tss) <= INT64_MAX
    ):
        return None
    if _NONE in step_types:  # no step: 0
        steps = [0 if s is None else s for s in steps]
    if not INT64_MIN <= min(steps) or max(steps) > INT64_MAX:
        return None
    # A field beyond the four sent: no point may link a model or a dataset.
    if max(map(len, raw)) > (3 if _NONE in step_types else 4) and any(
        any(map(get, raw, repeat(name))) for name in ("model_id", "dataset_name",
                                                        "dataset_digest")
    ):
        return None
    known = _GOOD_KEYS
    for key in set(keys):
        if key not in known and not (_good_key(key) and _remember_good(key)):
            return None
    if value_types != {float}:
        values = list(map(float, values))
    return MetricColumns(keys, values, tss, steps)


def validate_batch_limits(n_metrics: int, n_params: int, n_tags: int) -> None:
    for name, limit, count in (
        ("metrics", MAX_METRICS_PER_BATCH, n_metrics),
        ("params", MAX_PARAMS_TAGS_PER_BATCH, n_params),
        ("tags", MAX_PARAMS_TAGS_PER_BATCH, n_tags),
        ("metrics, params, and tags", MAX_ENTITIES_PER_BATCH, n_metrics + n_params + n_tags),
    ):
        if count > limit:
            raise errors.invalid(
                f"A batch logging request can contain at most {limit} {name}. Got {count} "
                f"{name}. Please split up {name} across multiple requests and try again."
            )


def validate_unique_param_keys(params: Sequence[Param]) -> None:
    seen: set[str] = set()
    dupes: list[str] = []
    for p in params:
        if p.key in seen and p.key not in dupes:
            dupes.append(p.key)
        seen.add(p.key)
    if dupes:
        raise errors.invalid(
            f"Duplicate parameter keys have been submitted: {dupes}. Please ensure the "
            "request contains only one param value per param key."
        )


def validate_run_id(run_id: Any, field: str = "run_id") -> str:
    if run_id is None or run_id == "":
        raise missing(field)
    if not isinstance(run_id, str) or not _RUN_ID_RE.match(run_id):
        raise invalid_value(field, run_id)
    return run_id


def validate_experiment_name(name: Any, field: str = "name") -> str:
    if name is None or name == "":
        raise missing(field)
    if not isinstance(name, str):
        raise invalid_value(field, name, "Experiment name must be a string.")
    if not name.strip():
        raise invalid_value(field, name, "Experiment name must not be blank.")
    check_length(field, name, MAX_EXPERIMENT_NAME_LENGTH)
    return name


def validate_artifact_location(location: Any, field: str = "artifact_location") -> str | None:
    if location is None or location == "":
        return None
    if not isinstance(location, str):
        raise invalid_value(field, location, "Must be a string.")
    check_length(field, location, MAX_ARTIFACT_LOCATION_LENGTH)
    if "#" in location or "?" in location or "\x00" in location:
        raise invalid_value(
            field, location, "Artifact location must be a plain URI (no query or fragment)."
        )
    return check_artifact_location(location, field)


def validate_experiment_tag(key: Any, value: Any, path: str = "") -> ExperimentTag:
    key = validate_key(key, _join(path, "key"), "A tag key")
    value = _string_value(value, _join(path, "value"))
    check_length(_join(path, "key"), key, MAX_EXPERIMENT_TAG_KEY_LENGTH)
    check_length(_join(path, "value"), value, MAX_EXPERIMENT_TAG_VAL_LENGTH)
    return ExperimentTag(key, value)


def validate_registry_tag(key: Any, value: Any, path: str = "") -> tuple[str, str]:
    """Registered-model and model-version tags: key ≤ 250, value ≤ 100000."""
    key = validate_key(key, _join(path, "key"), "A tag key")
    value = _string_value(value, _join(path, "value"))
    check_length(_join(path, "key"), key, MAX_MODEL_REGISTRY_TAG_KEY_LENGTH)
    check_length(_join(path, "value"), value, MAX_MODEL_REGISTRY_TAG_VALUE_LENGTH)
    return key, value


def validate_registered_model_name(name: Any, field: str = "name") -> str:
    if name is None or name == "":
        raise missing(field)
    if not isinstance(name, str):
        raise invalid_value(field, name, "Registered model name must be a string.")
    if "/" in name or ":" in name:
        raise invalid_value(field, name, "Registered model names cannot contain '/' or ':'.")
    if path_not_unique(name):
        raise invalid_value(field, name, "Registered model names must be path-unique.")
    return name


def validate_logged_model_name(name: Any, field: str = "name") -> str | None:
    if name is None:
        return None
    if not isinstance(name, str) or name == "":
        raise invalid_value(field, name, "Logged model name must be a non-empty string.")
    bad = sorted(_LOGGED_MODEL_BAD_CHARS & set(name))
    if bad:
        raise invalid_value(
            field, name, f"Logged model names cannot contain these characters: {bad}."
        )
    return name


def validate_alias(alias: Any, field: str = "alias") -> str:
    if alias is None or alias == "":
        raise missing(field)
    if not isinstance(alias, str):
        raise invalid_value(field, alias, "Alias must be a string.")
    if not _ALIAS_RE.match(alias):
        raise invalid_value(
            field, alias, "Names may only contain alphanumerics, underscores (_), and dashes (-)."
        )
    if _VERSION_ALIAS_RE.match(alias):
        raise invalid_value(
            field, alias, "Alias names cannot be of the form 'v<number>' (reserved for versions)."
        )
    if alias.lower() == "latest":
        raise invalid_value(field, alias, "'latest' is a reserved alias name.")
    check_length(field, alias, MAX_REGISTERED_MODEL_ALIAS_LENGTH)
    return alias


def validate_model_version(version: Any, field: str = "version") -> str:
    if version is None or version == "":
        raise missing(field)
    number = to_int(str(version), field)
    if number < 1:
        raise invalid_value(field, version, "Model versions start at 1.")
    return str(number)


def validate_dataset_input(
    name: Any,
    digest: Any,
    source_type: Any,
    source: Any,
    schema: Any = None,
    profile: Any = None,
    tags: Sequence[tuple[Any, Any]] = (),
    path: str = "",
) -> DatasetInput:
    """A dataset input: required fields present, sizes within MLflow's column limits."""
    fields = {"name": name, "digest": digest, "source_type": source_type, "source": source}
    for fname, fvalue in fields.items():
        full = _join(path, f"dataset.{fname}")
        if fvalue is None or fvalue == "":
            raise missing(full)
        if not isinstance(fvalue, str):
            raise invalid_value(full, fvalue, "Must be a string.")
    for fname, fvalue in (("schema", schema), ("profile", profile)):
        if fvalue is not None and not isinstance(fvalue, str):
            raise invalid_value(_join(path, f"dataset.{fname}"), fvalue, "Must be a string.")
    for fname, fvalue, limit in (
        ("name", name, MAX_DATASET_NAME_SIZE),
        ("digest", digest, MAX_DATASET_DIGEST_SIZE),
        ("source", source, MAX_DATASET_SOURCE_SIZE),
        ("schema", schema, MAX_DATASET_SCHEMA_SIZE),
        ("profile", profile, MAX_DATASET_PROFILE_SIZE),
    ):
        check_length(_join(path, f"dataset.{fname}"), fvalue, limit)
    input_tags = []
    for i, (key, value) in enumerate(tags):
        tpath = _join(path, f"tags[{i}]")
        if key is None or key == "":
            raise missing(_join(tpath, "key"))
        if value is None:
            raise missing(_join(tpath, "value"))
        if not isinstance(key, str) or not isinstance(value, str):
            raise invalid_value(tpath, {"key": key, "value": value}, "Must be strings.")
        check_length(_join(tpath, "key"), key, MAX_INPUT_TAG_KEY_SIZE)
        check_length(_join(tpath, "value"), value, MAX_INPUT_TAG_VALUE_SIZE)
        input_tags.append(InputTag(key, value))
    return DatasetInput(
        Dataset(name, digest, source_type, source, schema or None, profile or None),
        tuple(input_tags),
    )


def validate_experiment_ids(ids: Sequence[str], request: str) -> Sequence[str]:
    """Cap the experiment ids of a search, in the words MLflow uses for its own caps."""
    if len(ids) > MAX_EXPERIMENT_IDS_PER_SEARCH:
        raise errors.invalid(
            f"{request} request cannot specify more than {MAX_EXPERIMENT_IDS_PER_SEARCH} "
            f"experiment_ids. Received {len(ids)} experiment_ids."
        )
    return ids


def validate_max_results(
    value: int | None, field: str = "max_results", *, default: int, limit: int, minimum: int = 1
) -> int:
    if value is None:
        return default
    if value < minimum or value > limit:
        raise invalid_value(
            field, value, f"It must be at least {minimum} and at most {limit}."
        )
    return value
