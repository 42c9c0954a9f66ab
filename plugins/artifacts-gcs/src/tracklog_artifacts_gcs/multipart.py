"""Multipart uploads: parts as temporary objects, joined by ``compose`` on completion.

GCS's XML multipart API is not served by the emulators, so parts are plain objects under
``<prefix>/.tracklog-uploads/<upload id>/``. Each part's URL is a resumable-upload
session the server opens for exactly that object name: the client uploads the part with
one plain PUT, and no URL signing (hence no signing credentials) is needed. Completing
composes the parts, 32 sources per ``compose`` call level by level, into the target, then
deletes them; aborting deletes them. Each part records the path it belongs to, so a
complete for another path is refused.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

from tracklog import errors
from tracklog.artifacts.base import CompletedPart, MultipartUploadRepository, PartCredential
from tracklog_artifacts_gcs.settings import PARALLEL_REQUESTS, content_type

#: The hidden folder of parts in flight, directly under the repository root.
UPLOADS = ".tracklog-uploads"
#: How many sources one compose request takes.
COMPOSE_LIMIT = 32
MAX_PARTS = 10_000
_TARGET = "tracklog-target"
_UPLOAD_ID = re.compile(r"[0-9a-f]{32}")


class MultipartUploads(MultipartUploadRepository):
    """The multipart half of :class:`~tracklog_artifacts_gcs.repository.GCSArtifactRepository`."""

    # What the repository this class is mixed into provides.
    _bucket: Any
    _kw: dict[str, Any]

    if TYPE_CHECKING:

        def _key(self, path: str) -> str: ...
        def _dir_prefix(self, path: str) -> str: ...
        def _file_path(self, path: str) -> str: ...
        def _bucket_guard(self, action: str) -> AbstractContextManager[None]: ...
        def _pages(self, prefix: str) -> Iterator[list[Any]]: ...
        def _delete_under(self, prefix: str) -> None: ...

    def _upload_prefix(self, upload_id: str) -> str:
        if not isinstance(upload_id, str) or not _UPLOAD_ID.fullmatch(upload_id):
            raise errors.invalid(f"Invalid upload_id: {upload_id!r}")
        return self._dir_prefix(f"{UPLOADS}/{upload_id}")

    def create_multipart_upload(
        self, path: str, num_parts: int
    ) -> tuple[str, list[PartCredential]]:
        rel = self._file_path(path)
        if not 1 <= num_parts <= MAX_PARTS:
            raise errors.invalid(f"num_parts must be between 1 and {MAX_PARTS}, got {num_parts}")
        upload_id = uuid.uuid4().hex
        prefix = self._upload_prefix(upload_id)

        def session(number: int) -> PartCredential:
            part = self._bucket.blob(f"{prefix}{number:05d}")
            part.metadata = {_TARGET: rel}
            url = part.create_resumable_upload_session(
                content_type="application/octet-stream", checksum=None, **self._kw
            )
            return PartCredential(number, url, {})

        with self._bucket_guard(f"starting a multipart upload of '{rel}'"):
            with ThreadPoolExecutor(min(num_parts, PARALLEL_REQUESTS)) as pool:
                credentials = list(pool.map(session, range(1, num_parts + 1)))
        return upload_id, credentials

    def complete_multipart_upload(
        self, path: str, upload_id: str, parts: Sequence[CompletedPart]
    ) -> None:
        rel = self._file_path(path)
        prefix = self._upload_prefix(upload_id)
        numbers = sorted(part.part_number for part in parts)
        if not numbers:
            raise errors.invalid("parts must name at least one uploaded part")
        if len(set(numbers)) != len(numbers):
            raise errors.invalid("parts names a part_number more than once")
        action = f"completing the multipart upload of '{rel}'"
        with self._bucket_guard(action):
            uploaded = {blob.name: blob for page in self._pages(prefix) for blob in page}
        sources = []
        for number in numbers:
            blob = uploaded.get(f"{prefix}{number:05d}")
            if blob is None:
                raise errors.invalid(f"Part {number} of upload {upload_id} was not uploaded")
            if (blob.metadata or {}).get(_TARGET) != rel:
                raise errors.invalid(f"Upload {upload_id} is not an upload of '{rel}'")
            sources.append(blob)
        with self._bucket_guard(action):
            self._compose(sources, prefix, self._key(rel))
            self._delete_under(prefix)

    def _compose(self, sources: list[Any], prefix: str, key: str) -> None:
        level = 0
        while len(sources) > COMPOSE_LIMIT:
            groups = [sources[i : i + COMPOSE_LIMIT] for i in range(0, len(sources), COMPOSE_LIMIT)]

            def merge(index: int, group: list[Any], level: int = level) -> Any:
                joined = self._bucket.blob(f"{prefix}compose-{level}-{index:05d}")
                joined.compose(group, **self._kw)
                return joined

            with ThreadPoolExecutor(PARALLEL_REQUESTS) as pool:
                sources = list(pool.map(merge, range(len(groups)), groups))
            level += 1
        target = self._bucket.blob(key)
        target.content_type = content_type(key)
        target.compose(sources, **self._kw)

    def abort_multipart_upload(self, path: str, upload_id: str) -> None:
        rel = self._file_path(path)
        prefix = self._upload_prefix(upload_id)
        with self._bucket_guard(f"aborting the multipart upload of '{rel}'"):
            self._delete_under(prefix)
