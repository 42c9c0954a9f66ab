"""The model registry of the file store, in MLflow's ``<root>/models/`` layout (see
:mod:`tracklog_store_file.registry_files`), readable and writable by MLflow's own file store.

Every registry write holds one lock (``<root>/models/.lock``: a thread lock and ``flock``),
so version numbers and stage transitions are serialised across threads and processes; a
new version's folder is also claimed with an exclusive ``mkdir``, so a writer that does not
take the lock (MLflow's file store) never gets the same number. Reads take no lock:
meta.yaml files are replaced atomically.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
from collections.abc import Iterator, Sequence
from typing import Any

from tracklog import errors
from tracklog.entities import (
    ModelVersion,
    ModelVersionStage,
    PagedList,
    RegisteredModel,
    now_ms,
)
from tracklog.search.ast import Filter, OrderBy
from tracklog.search.evaluate import (
    compile_model_version_filter,
    compile_registered_model_filter,
    sort_model_versions,
    sort_registered_models,
)
from tracklog.search.tokens import paginate
from tracklog.stores import ModelRegistryStore
from tracklog.validation import check_no_nul
from tracklog_store_file import fsio
from tracklog_store_file.paths import META, TAGS, UNREADABLE, read_or_skip, unreadable
from tracklog_store_file.registry_files import (
    ALIASES,
    DELETED_STAGE,
    MAX_VERSION,
    REGISTRY,
    canonical_stage,
    check_model_name,
    is_prompt,
    model_meta,
    prompt_filter,
    to_model_version,
    to_registered_model,
    version_dir,
    version_meta,
    version_number,
    version_numbers,
)
from tracklog_store_file.rows import Rows

_ACTIVE_STAGES = (ModelVersionStage.STAGING.value, ModelVersionStage.PRODUCTION.value)


def _pairs(tags: Sequence[Any]) -> dict[str, str]:
    """``(key, value)`` tuples or objects with ``key``/``value``, as a dict."""
    return dict(t if isinstance(t, tuple) else (t.key, t.value) for t in tags)


class Registry(Rows, ModelRegistryStore):
    """The :class:`~tracklog.stores.ModelRegistryStore` methods over ``<root>/models``."""

    # -- reads -------------------------------------------------------------------------

    @property
    def _registry_root(self) -> str:
        return os.path.join(self.root, REGISTRY)

    @contextlib.contextmanager
    def _registry_write(self) -> Iterator[None]:
        os.makedirs(self._registry_root, exist_ok=True)
        with self._locks.hold(self._registry_root):
            yield

    def _registered_dir(self, name: str, field: str = "name") -> str:
        return os.path.join(self._registry_root, check_model_name(name, field))

    def _registered_or_raise(self, name: str) -> tuple[str, dict[str, Any]]:
        folder = self._registered_dir(name)
        try:
            return folder, self._load_meta(folder)
        except (FileNotFoundError, NotADirectoryError):
            raise errors.not_found(f"Registered Model with name={name} not found") from None
        except UNREADABLE as exc:
            raise unreadable("Registered model", name, os.path.join(folder, META), exc) from exc

    def _aliases(self, model_dir: str) -> dict[str, str]:
        found = fsio.read_key_files(os.path.join(model_dir, ALIASES), self._text)
        return {alias: version.strip() for alias, version in found.items()}

    def _read_version(
        self, model_dir: str, number: int, aliases: dict[str, str]
    ) -> ModelVersion | None:
        """The version in folder ``version-<number>``; None if it is deleted."""
        folder = version_dir(model_dir, number)
        meta = self._load_meta(folder)
        if meta.get("current_stage") == DELETED_STAGE:
            return None
        tags = fsio.read_key_files(os.path.join(folder, TAGS), self._text)
        return to_model_version(os.path.basename(model_dir), number, meta, tags, aliases)

    def _versions(self, model_dir: str) -> list[ModelVersion]:
        """The live versions of a model, ascending; unreadable ones are left out."""
        aliases = self._aliases(model_dir)
        found = []
        for number in version_numbers(model_dir):
            where = (version_dir(model_dir, number), META)
            mv = read_or_skip("model version", where, self._read_version, model_dir, number,
                              aliases)
            if mv is not None:
                found.append(mv)
        return found

    def _version_or_raise(self, name: str, version: Any) -> tuple[str, str, ModelVersion]:
        model_dir, _ = self._registered_or_raise(name)
        number = version_number(version)
        folder = version_dir(model_dir, number)
        try:
            mv = self._read_version(model_dir, number, self._aliases(model_dir))
        except (FileNotFoundError, NotADirectoryError):
            mv = None
        except UNREADABLE as exc:
            raise unreadable(
                "Model version", f"{name}/{number}", os.path.join(folder, META), exc
            ) from exc
        if mv is None:
            raise errors.not_found(f"Model Version (name={name}, version={version}) not found")
        return model_dir, folder, mv

    @staticmethod
    def _latest(versions: Sequence[ModelVersion]) -> list[ModelVersion]:
        """The newest version in each stage, by version number."""
        newest: dict[str, ModelVersion] = {}
        for mv in versions:
            if mv.current_stage not in newest or int(newest[mv.current_stage].version) < int(
                mv.version
            ):
                newest[mv.current_stage] = mv
        return sorted(newest.values(), key=lambda mv: int(mv.version))

    def _registered_model(self, model_dir: str, meta: dict[str, Any]) -> RegisteredModel:
        tags = fsio.read_key_files(os.path.join(model_dir, TAGS), self._text)
        return to_registered_model(
            os.path.basename(model_dir), meta, tags, self._aliases(model_dir)
        )

    def _registered_dirs(self) -> list[str]:
        try:
            entries = list(os.scandir(self._registry_root))
        except (FileNotFoundError, NotADirectoryError):
            return []
        return sorted(e.path for e in entries if not e.name.startswith(".") and e.is_dir())

    def _resolve_source(self, source: str) -> str:
        """Where a version's files are: a ``models:/m-…`` source is its logged model's
        artifact location, any other source is itself."""
        if not source.startswith("models:/m-"):
            return source
        model_id = source[len("models:/"):].split("/", 1)[0]
        try:
            _, folder = self._locate_model(model_id)
            location = self._load_meta(folder).get("artifact_location")
        except (errors.TracklogError, *UNREADABLE):
            return source
        return str(location) if location else source

    # -- writes ------------------------------------------------------------------------

    def _touch(self, folder: str, now: int, **changes: Any) -> None:
        meta = dict(self._load_meta(folder))
        meta.update(changes)
        meta["last_updated_timestamp"] = now
        self._write_meta(folder, meta)

    # -- registered models -------------------------------------------------------------

    def create_registered_model(
        self, name: str, tags: Sequence[tuple[str, str]] = (), description: str | None = None
    ) -> RegisteredModel:
        folder = self._registered_dir(name)
        pairs = _pairs(tags)
        check_no_nul("description", description)
        check_no_nul("tags.value", *pairs.values())
        for key in pairs:
            fsio.key_path(folder, key, "tag key")
        with self._registry_write():
            if os.path.isfile(os.path.join(folder, META)):
                raise errors.already_exists(f"Registered Model (name={name}) already exists.")
            # A folder without meta.yaml is a creation that never finished: taken over.
            os.makedirs(os.path.join(folder, TAGS), exist_ok=True)
            for key, value in pairs.items():
                self._write_key(folder, TAGS, key, value, "tag key")
            self._write_meta(folder, model_meta(name, now_ms(), description))
        return self.get_registered_model(name)

    def get_registered_model(self, name: str) -> RegisteredModel:
        folder, meta = self._registered_or_raise(name)
        model = self._registered_model(folder, meta)
        model.latest_versions = self._latest(self._versions(folder))
        return model

    def rename_registered_model(self, name: str, new_name: str) -> RegisteredModel:
        target = self._registered_dir(new_name, "new_name")
        with self._registry_write():
            folder, _ = self._registered_or_raise(name)
            if new_name != name:
                if os.path.isfile(os.path.join(target, META)):
                    raise errors.already_exists(
                        f"Registered Model (name={new_name}) already exists."
                    )
                try:
                    # One rename moves versions, tags and aliases together; the name
                    # fields written after it only follow the folder's name.
                    os.rename(folder, target)
                except OSError:
                    raise errors.already_exists(
                        f"Registered Model (name={new_name}) already exists."
                    ) from None
                now = now_ms()
                for number in version_numbers(target):
                    with contextlib.suppress(*UNREADABLE):
                        self._touch(version_dir(target, number), now, name=new_name)
                self._touch(target, now, name=new_name)
        return self.get_registered_model(new_name)

    def update_registered_model(self, name: str, description: str | None) -> RegisteredModel:
        check_no_nul("description", description)
        with self._registry_write():
            folder, _ = self._registered_or_raise(name)
            self._touch(folder, now_ms(), description=description or None)
        return self.get_registered_model(name)

    def delete_registered_model(self, name: str) -> None:
        with self._registry_write():
            folder, _ = self._registered_or_raise(name)
            # Out of sight in one step, then removed: no reader sees half a model.
            doomed = os.path.join(self._registry_root, f".deleted-{secrets.token_hex(8)}")
            os.rename(folder, doomed)
            shutil.rmtree(doomed, ignore_errors=True)

    def search_registered_models(
        self,
        filter: Filter = (),
        max_results: int = 100,
        order_by: Sequence[OrderBy] = (),
        page_token: str | None = None,
    ) -> PagedList[RegisteredModel]:
        filter, prompts = prompt_filter(filter)
        matches = compile_registered_model_filter(filter)
        found: list[tuple[RegisteredModel, str]] = []
        for folder in self._registered_dirs():
            meta = read_or_skip("registered model", (folder, META), self._load_meta, folder)
            if meta is None:
                continue
            model = self._registered_model(folder, meta)
            if (prompts or not is_prompt(model.tags)) and matches(model):
                found.append((model, folder))
        folders = {id(m): f for m, f in found}
        page = paginate(sort_registered_models([m for m, _ in found], order_by),
                        max_results, page_token)
        # Versions are read for the models of the page only.
        for model in page:
            model.latest_versions = self._latest(self._versions(folders[id(model)]))
        return page

    def get_latest_versions(self, name: str, stages: Sequence[str] = ()) -> list[ModelVersion]:
        wanted = {canonical_stage(s) for s in stages}
        folder, _ = self._registered_or_raise(name)
        latest = self._latest(self._versions(folder))
        return [mv for mv in latest if not wanted or mv.current_stage in wanted]

    def set_registered_model_tag(self, name: str, key: str, value: str) -> None:
        check_no_nul("value", value)
        fsio.key_path(self._registry_root, key, "tag key")
        with self._registry_write():
            folder, _ = self._registered_or_raise(name)
            self._write_key(folder, TAGS, key, value, "tag key")
            self._touch(folder, now_ms())

    def delete_registered_model_tag(self, name: str, key: str) -> None:
        with self._registry_write():
            folder, _ = self._registered_or_raise(name)
            self._delete_key(folder, TAGS, key, f"registered model {name}")
            self._touch(folder, now_ms())

    # -- model versions ----------------------------------------------------------------

    def create_model_version(
        self,
        name: str,
        source: str,
        run_id: str | None = None,
        tags: Sequence[tuple[str, str]] = (),
        run_link: str | None = None,
        description: str | None = None,
        model_id: str | None = None,
    ) -> ModelVersion:
        if not source:
            raise errors.invalid("Model version source cannot be empty.")
        pairs = _pairs(tags)
        for field, value in (("source", source), ("run_id", run_id), ("run_link", run_link),
                             ("description", description), ("model_id", model_id)):
            check_no_nul(field, value)
        check_no_nul("tags.value", *pairs.values())
        for key in pairs:
            fsio.key_path(self._registry_root, key, "tag key")
        location = self._resolve_source(source)
        with self._registry_write():
            model_dir, _ = self._registered_or_raise(name)
            numbers = version_numbers(model_dir)
            number = (numbers[-1] if numbers else 0) + 1
            while True:
                if number > MAX_VERSION:
                    raise errors.invalid(f"Registered model {name} has no version numbers left")
                folder = version_dir(model_dir, number)
                try:
                    os.mkdir(folder)
                    break
                except FileExistsError:
                    number += 1
            now = now_ms()
            os.mkdir(os.path.join(folder, TAGS))
            for key, value in pairs.items():
                self._write_key(folder, TAGS, key, value, "tag key")
            self._write_meta(folder, version_meta(
                name, number, now, source, location, run_id, run_link, description, model_id
            ))
            self._touch(model_dir, now)
        return self.get_model_version(name, str(number))

    def get_model_version(self, name: str, version: str) -> ModelVersion:
        return self._version_or_raise(name, version)[2]

    def update_model_version(
        self, name: str, version: str, description: str | None
    ) -> ModelVersion:
        check_no_nul("description", description)
        with self._registry_write():
            _, folder, _ = self._version_or_raise(name, version)
            self._touch(folder, now_ms(), description=description or None)
        return self.get_model_version(name, version)

    def transition_model_version_stage(
        self, name: str, version: str, stage: str, archive_existing_versions: bool
    ) -> ModelVersion:
        stage = canonical_stage(stage)
        with self._registry_write():
            model_dir, folder, mv = self._version_or_raise(name, version)
            now = now_ms()
            if archive_existing_versions and stage in _ACTIVE_STAGES:
                for other in self._versions(model_dir):
                    if other.version != mv.version and other.current_stage == stage:
                        self._touch(
                            version_dir(model_dir, int(other.version)), now,
                            current_stage=ModelVersionStage.ARCHIVED.value,
                        )
            self._touch(folder, now, current_stage=stage)
            self._touch(model_dir, now)
        return self.get_model_version(name, version)

    def delete_model_version(self, name: str, version: str) -> None:
        with self._registry_write():
            model_dir, folder, mv = self._version_or_raise(name, version)
            now = now_ms()
            # Kept on disk, as MLflow does, so the number is never handed out again.
            self._touch(folder, now, current_stage=DELETED_STAGE)
            for alias in mv.aliases:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(fsio.key_path(os.path.join(model_dir, ALIASES), alias, "alias"))
            self._touch(model_dir, now)

    def get_model_version_download_uri(self, name: str, version: str) -> str:
        _, folder, mv = self._version_or_raise(name, version)
        location = self._load_meta(folder).get("storage_location")
        if location and location != mv.source:
            return str(location)
        return self._resolve_source(mv.source)

    def search_model_versions(
        self,
        filter: Filter = (),
        max_results: int = 10000,
        order_by: Sequence[OrderBy] = (),
        page_token: str | None = None,
    ) -> PagedList[ModelVersion]:
        filter, prompts = prompt_filter(filter)
        matches = compile_model_version_filter(filter)
        found: list[ModelVersion] = []
        for model_dir in self._registered_dirs():
            if not os.path.isfile(os.path.join(model_dir, META)):
                continue
            versions = self._versions(model_dir)
            # As in MLflow, one version tagged as a prompt hides every version of the model.
            if not prompts and any(is_prompt(mv.tags) for mv in versions):
                continue
            found.extend(mv for mv in versions if matches(mv))
        return paginate(sort_model_versions(found, order_by), max_results, page_token)

    def set_model_version_tag(self, name: str, version: str, key: str, value: str) -> None:
        check_no_nul("value", value)
        fsio.key_path(self._registry_root, key, "tag key")
        with self._registry_write():
            model_dir, folder, _ = self._version_or_raise(name, version)
            self._write_key(folder, TAGS, key, value, "tag key")
            self._touch(model_dir, now_ms())

    def delete_model_version_tag(self, name: str, version: str, key: str) -> None:
        with self._registry_write():
            model_dir, folder, _ = self._version_or_raise(name, version)
            self._delete_key(
                folder, TAGS, key, f"model version (name={name}, version={version})"
            )
            self._touch(model_dir, now_ms())

    # -- aliases -----------------------------------------------------------------------

    def set_registered_model_alias(self, name: str, alias: str, version: str) -> None:
        self._check_alias(alias)
        with self._registry_write():
            model_dir, _, mv = self._version_or_raise(name, version)
            self._write_key(model_dir, ALIASES, alias, mv.version, "alias")
            self._touch(model_dir, now_ms())

    def delete_registered_model_alias(self, name: str, alias: str) -> None:
        self._check_alias(alias)
        with self._registry_write():
            model_dir, _ = self._registered_or_raise(name)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(fsio.key_path(os.path.join(model_dir, ALIASES), alias, "alias"))
                self._touch(model_dir, now_ms())

    def get_model_version_by_alias(self, name: str, alias: str) -> ModelVersion:
        self._check_alias(alias)
        model_dir, _ = self._registered_or_raise(name)
        version = self._aliases(model_dir).get(alias)
        if version is None:
            # MLflow's answer: a bad parameter (400), not a missing resource.
            raise errors.invalid(f"Registered model alias {alias} not found.")
        return self.get_model_version(name, version)

    @staticmethod
    def _check_alias(alias: Any) -> None:
        # One file per alias: the route allows only [A-Za-z0-9_-]; a caller of the store
        # API gets the same guard against paths.
        if not isinstance(alias, str) or not alias or "/" in alias:
            raise errors.invalid(f"Invalid alias {alias!r}")
        fsio.key_path("", alias, "alias")
