"""The model registry on disk, in MLflow's file-store layout::

    <root>/models/<name>/meta.yaml                  registered model
    <root>/models/<name>/tags/<key>                 one file per tag
    <root>/models/<name>/aliases/<alias>            the version number the alias names
    <root>/models/<name>/version-<n>/meta.yaml      model version
    <root>/models/<name>/version-<n>/tags/<key>

A deleted version stays on disk in the stage ``Deleted_Internal`` (so its number is never
handed out again) and is absent from every read. The folder name is the model's name and
the folder ``version-<n>`` its number; the ``name`` field of meta.yaml follows them.
"""

from __future__ import annotations

import os
from typing import Any

from tracklog import errors
from tracklog.entities import (
    ModelVersion,
    ModelVersionStage,
    ModelVersionStatus,
    RegisteredModel,
    RegisteredModelAlias,
)
from tracklog.search.ast import Filter, Kind, Op
from tracklog.search.evaluate import IS_PROMPT_TAG
from tracklog_store_file.paths import int64_field

REGISTRY = "models"
ALIASES = "aliases"
VERSION_PREFIX = "version-"
DELETED_STAGE = "Deleted_Internal"
STAGES = {s.value.lower(): s.value for s in ModelVersionStage}
# Versions live in a signed 32-bit column in MLflow's SQL registry: the same bound here.
MAX_VERSION = 2**31 - 1
# One path component of most file systems.
MAX_NAME_BYTES = 255


def check_model_name(name: Any, field: str = "name") -> str:
    """A registered model name usable as one folder name, else INVALID_PARAMETER_VALUE."""
    if not isinstance(name, str) or not name:
        raise errors.invalid(f"Invalid {field}: registered model name cannot be empty.")
    if "/" in name or "\\" in name or "\x00" in name or name.startswith("."):
        raise errors.invalid(
            f"Invalid {field} {name[:100]!r}: the file store's registered model names cannot "
            "contain '/', '\\' or NUL, nor start with '.'"
        )
    if len(name.encode("utf-8")) > MAX_NAME_BYTES:
        raise errors.invalid(
            f"Invalid {field} {name[:50]!r}...: the file store's registered model names are "
            f"at most {MAX_NAME_BYTES} bytes of UTF-8"
        )
    return name


def version_number(version: Any) -> int:
    try:
        value = int(str(version), 10)
    except (TypeError, ValueError):
        raise errors.invalid(f"Parameter 'version' must be an integer, got '{version}'.") from None
    if not 0 < value <= MAX_VERSION:
        raise errors.invalid(f"Parameter 'version' must be a positive integer, got '{version}'.")
    return value


def canonical_stage(stage: str) -> str:
    try:
        return STAGES[str(stage).lower()]
    except KeyError:
        raise errors.invalid(
            f"Invalid Model Version stage: {stage}. Value must be one of "
            f"{', '.join(STAGES.values())}."
        ) from None


def version_numbers(model_dir: str) -> list[int]:
    """The numbers of the ``version-<n>`` folders of a model (deleted ones too), ascending."""
    try:
        entries = list(os.scandir(model_dir))
    except (FileNotFoundError, NotADirectoryError):
        return []
    out = []
    for entry in entries:
        suffix = entry.name[len(VERSION_PREFIX):]
        if entry.name.startswith(VERSION_PREFIX) and suffix.isdigit() and suffix.isascii():
            out.append(int(suffix))
    return sorted(out)


def version_dir(model_dir: str, number: int) -> str:
    return os.path.join(model_dir, f"{VERSION_PREFIX}{number}")


def model_meta(name: str, created: int, description: str | None) -> dict[str, Any]:
    return {
        "creation_timestamp": created,
        "deployment_job_id": None,
        "deployment_job_state": None,
        "description": description or None,
        "last_updated_timestamp": created,
        "name": name,
        "workspace": "default",
    }


def version_meta(
    name: str,
    number: int,
    created: int,
    source: str,
    storage_location: str,
    run_id: str | None,
    run_link: str | None,
    description: str | None,
    model_id: str | None,
) -> dict[str, Any]:
    return {
        "creation_timestamp": created,
        "current_stage": ModelVersionStage.NONE.value,
        "deployment_job_state": None,
        "description": description or None,
        "last_updated_timestamp": created,
        "model_id": model_id or None,
        "name": name,
        "run_id": run_id or None,
        "run_link": run_link or None,
        "source": source,
        "status": ModelVersionStatus.READY.value,
        "status_message": None,
        "storage_location": storage_location,
        "user_id": None,
        "version": number,
        "workspace": "default",
    }


def to_registered_model(name: str, meta: dict[str, Any], tags: dict[str, str],
                        aliases: dict[str, str]) -> RegisteredModel:
    return RegisteredModel(
        name=name,
        creation_timestamp=int64_field(meta, "creation_timestamp") or 0,
        last_updated_timestamp=int64_field(meta, "last_updated_timestamp") or 0,
        description=str(meta.get("description") or ""),
        user_id=meta.get("user_id"),
        tags=tags,
        aliases=[RegisteredModelAlias(a, v) for a, v in sorted(aliases.items())],
    )


def to_model_version(name: str, number: int, meta: dict[str, Any], tags: dict[str, str],
                     aliases: dict[str, str]) -> ModelVersion:
    """The version a meta.yaml describes; ValueError if it is not the folder's version."""
    stored = meta.get("version")
    if isinstance(stored, bool) or str(stored) != str(number):
        raise ValueError(f"version {stored!r} does not match its folder")
    stage = str(meta.get("current_stage") or ModelVersionStage.NONE.value)
    version = str(number)
    return ModelVersion(
        name=name,
        version=version,
        creation_timestamp=int64_field(meta, "creation_timestamp") or 0,
        last_updated_timestamp=int64_field(meta, "last_updated_timestamp") or 0,
        source=str(meta.get("source") or ""),
        current_stage=STAGES.get(stage.lower(), stage),
        description=str(meta.get("description") or ""),
        user_id=meta.get("user_id"),
        run_id=meta.get("run_id") or None,
        run_link=str(meta.get("run_link") or ""),
        status=ModelVersionStatus(meta.get("status") or ModelVersionStatus.READY.value),
        status_message=meta.get("status_message"),
        tags=tags,
        aliases=sorted(a for a, v in aliases.items() if v == version),
        model_id=meta.get("model_id") or None,
    )


def prompt_filter(filter: Filter) -> tuple[Filter, bool]:
    """``(filter, prompts wanted)``: registry searches hide prompts, as MLflow's do, unless
    the first comparison on the prompt tag is ``= 'true'`` or ``!= 'false'`` (value in any
    case). Otherwise comparisons on that tag are dropped, so they never hide plain models."""
    for cmp in filter:
        if cmp.ident.kind is Kind.TAG and cmp.ident.key == IS_PROMPT_TAG:
            value = cmp.value.lower() if isinstance(cmp.value, str) else None
            if (cmp.op is Op.EQ and value == "true") or (cmp.op is Op.NE and value == "false"):
                return filter, True
            break
    kept = tuple(
        c for c in filter if not (c.ident.kind is Kind.TAG and c.ident.key == IS_PROMPT_TAG)
    )
    return kept, False


def is_prompt(tags: dict[str, str]) -> bool:
    return tags.get(IS_PROMPT_TAG) == "true"
