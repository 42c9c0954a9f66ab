"""MLflow's own file-based model registry, run in a subprocess for the interop tests.

    python registry_side.py write <root>        # a known registry, written by MLflow
    python registry_side.py read <root>         # print, as JSON, what MLflow reads there
    python registry_side.py add-version <root> <name> <source>   # print the new number

The environment must carry MLFLOW_ALLOW_FILE_STORE=true.
"""

from __future__ import annotations

import json
import sys

from mlflow.entities.model_registry import ModelVersionTag, RegisteredModelTag
from mlflow.store.model_registry.file_store import FileStore

RUN_ID = "a" * 32


def write(store: FileStore) -> None:
    """The scenario both directions of the interop tests draw (see write_with_tracklog)."""
    store.create_registered_model(
        "churn model",
        tags=[RegisteredModelTag("team", "ml"), RegisteredModelTag("nested/key", "x")],
        description="predicts churn",
    )
    store.create_model_version(
        "churn model", "s3://bucket/churn/1", run_id=RUN_ID,
        tags=[ModelVersionTag("quality", "good")], run_link="http://runs/1",
        description="first",
    )
    store.create_model_version("churn model", "s3://bucket/churn/2")
    store.create_model_version("churn model", "s3://bucket/churn/3")
    store.create_model_version("churn model", "s3://bucket/churn/4")
    store.transition_model_version_stage("churn model", "1", "Production", False)
    store.transition_model_version_stage("churn model", "2", "Staging", False)
    store.set_registered_model_alias("churn model", "champion", "1")
    store.set_registered_model_alias("churn model", "challenger", "2")
    store.set_registered_model_alias("churn model", "doomed", "3")
    store.delete_model_version("churn model", "3")
    store.update_model_version("churn model", "4", "fourth")
    store.set_model_version_tag("churn model", "2", ModelVersionTag("note", "second"))
    store.create_registered_model("empty")
    store.create_registered_model("prompt-like", tags=[
        RegisteredModelTag("mlflow.prompt.is_prompt", "true")])


def read(store: FileStore) -> dict:
    """Every registered model MLflow lists, with its live versions, as plain JSON."""
    out = {}
    for rm in store.search_registered_models(max_results=1000):
        versions = {}
        for v in range(1, 50):
            try:
                mv = store.get_model_version(rm.name, str(v))
            except Exception:
                continue
            versions[str(mv.version)] = {
                "stage": mv.current_stage,
                "source": mv.source,
                "run_id": mv.run_id,
                "run_link": mv.run_link or "",
                "description": mv.description or "",
                "status": mv.status,
                "tags": dict(mv.tags),
                "aliases": sorted(mv.aliases),
                "download_uri": store.get_model_version_download_uri(rm.name, str(v)),
            }
        out[rm.name] = {
            "description": rm.description or "",
            "tags": dict(rm.tags),
            "aliases": {a: str(v) for a, v in rm.aliases.items()},
            "latest": {mv.current_stage: str(mv.version) for mv in rm.latest_versions},
            "versions": versions,
        }
    return out


if __name__ == "__main__":
    command, root = sys.argv[1], sys.argv[2]
    registry = FileStore(root)
    if command == "write":
        write(registry)
    elif command == "read":
        print(json.dumps(read(registry), sort_keys=True))
    elif command == "add-version":
        print(registry.create_model_version(sys.argv[3], sys.argv[4]).version)
