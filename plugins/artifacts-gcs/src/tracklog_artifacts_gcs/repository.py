"""The ``gs://bucket/prefix`` artifact repository."""

from __future__ import annotations

import contextlib
import functools
import io
import os
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any, BinaryIO, cast

from google.api_core import exceptions as api
from google.cloud import storage
from google.cloud.storage.retry import DEFAULT_RETRY

from tracklog import errors
from tracklog.artifacts.base import (
    CHUNK_SIZE,
    ArtifactRepository,
    PresignedDownloadRepository,
    ReadableStream,
)
from tracklog.artifacts.paths import join, safe_relpath
from tracklog.entities import FileInfo
from tracklog_artifacts_gcs.multipart import UPLOADS, MultipartUploads
from tracklog_artifacts_gcs.service_errors import translated
from tracklog_artifacts_gcs.settings import PARALLEL_REQUESTS, Settings, content_type, parse_uri
from tracklog_artifacts_gcs.signing import signing_kwargs
from tracklog_artifacts_gcs.streams import BlobStream, read_full


@functools.lru_cache(maxsize=8)
def _shared_client(emulator: str | None, key_file: str | None) -> storage.Client:
    """One client per configuration and process. A client holds its credentials' access
    token and a connection pool, and the server opens a repository per request for runs
    whose artifacts are not proxied: a client each time would fetch a token each time."""
    return storage.Client()


class GCSArtifactRepository(MultipartUploads, PresignedDownloadRepository, ArtifactRepository):
    """Objects under ``prefix`` in one bucket; a directory is a common name prefix.

    Uploads are resumable uploads in ``upload_chunk_size`` pieces (a file smaller than one
    piece goes in one request); reads are ranged GETs of ``download_chunk_size``.
    ``list_page_size`` sets how many names one listing request returns (the service's
    default, 1,000, when None).
    """

    def __init__(
        self,
        artifact_uri: str,
        *,
        settings: Settings | None = None,
        list_page_size: int | None = None,
    ) -> None:
        super().__init__(artifact_uri)
        self.bucket_name, self.prefix = parse_uri(artifact_uri)
        self.settings = settings or Settings.from_env()
        self.presigned_url_lifetime = self.settings.presigned_url_ttl
        self.list_page_size = list_page_size
        timeout = self.settings.timeout
        retry = DEFAULT_RETRY if timeout is None else DEFAULT_RETRY.with_timeout(timeout)
        self._kw: dict[str, Any] = {"timeout": timeout, "retry": retry}
        with self._guard("connecting"):
            self._client = _shared_client(
                os.environ.get("STORAGE_EMULATOR_HOST"),
                os.environ.get("GOOGLE_APPLICATION_CREDENTIALS"),
            )
        self._bucket = self._client.bucket(self.bucket_name)

    # -- naming and service calls --------------------------------------------------------

    def _guard(self, action: str) -> contextlib.AbstractContextManager[None]:
        return translated(self.artifact_uri, action)

    @contextlib.contextmanager
    def _bucket_guard(self, action: str) -> Iterator[None]:
        """As :meth:`_guard`, where "not found" can only mean the bucket is missing."""
        try:
            with self._guard(action):
                yield
        except errors.TracklogError as exc:
            if exc.error_code != errors.ErrorCode.RESOURCE_DOES_NOT_EXIST:
                raise
            raise errors.not_found(
                f"{self.artifact_uri}: {action} failed: bucket '{self.bucket_name}' "
                "does not exist"
            ) from None

    def _key(self, path: str) -> str:
        return join(self.prefix, path)

    def _dir_prefix(self, path: str) -> str:
        key = self._key(path)
        return key + "/" if key else ""

    def _listing(self, prefix: str, delimiter: str | None = None, **extra: Any) -> Any:
        return self._client.list_blobs(
            self._bucket, prefix=prefix, delimiter=delimiter,
            page_size=self.list_page_size, **extra, **self._kw,
        )

    def _pages(self, prefix: str) -> Iterator[list[Any]]:
        """Every object under ``prefix``, one listing page at a time."""
        for page in self._listing(prefix).pages:
            yield list(page)

    def _delete_objects(self, names: Iterable[str]) -> None:
        def delete(name: str) -> None:
            with contextlib.suppress(api.NotFound):
                self._bucket.delete_blob(name, **self._kw)

        with ThreadPoolExecutor(PARALLEL_REQUESTS) as pool:
            list(pool.map(delete, names))

    def _delete_under(self, prefix: str) -> None:
        for page in self._pages(prefix):
            self._delete_objects(blob.name for blob in page)

    # -- the contract ----------------------------------------------------------------------

    def _stat(self, path: str) -> FileInfo | None:
        if path == "":
            with self._bucket_guard("checking the artifact root"):
                next(iter(self._listing(self._dir_prefix(""), max_results=1)), None)
            return FileInfo("", True)
        with self._guard(f"reading '{path}'"):
            blob = self._bucket.get_blob(self._key(path), **self._kw)
        if blob is not None:
            return FileInfo(path, False, blob.size)
        with self._bucket_guard(f"reading '{path}'"):
            below = self._listing(self._dir_prefix(path), max_results=1)
            if next(iter(below), None) is not None:
                return FileInfo(path, True)
        return None

    def _list(self, path: str) -> list[FileInfo]:
        prefix = self._dir_prefix(path)
        out: list[FileInfo] = []
        with self._bucket_guard(f"listing '{path}'"):
            listing = self._listing(prefix, "/")
            for page in listing.pages:
                for blob in page:
                    name = blob.name[len(prefix):]
                    if name:  # "dir/" itself: a folder placeholder some tools create
                        out.append(FileInfo(join(path, name), False, blob.size))
            for sub in listing.prefixes:
                name = sub[len(prefix):-1]
                # Names no artifact path can reach, and multipart parts, stay out of sight.
                if name not in ("", ".", "..", UPLOADS):
                    out.append(FileInfo(join(path, name), True))
        return out

    def _open(self, path: str) -> BinaryIO:
        with self._guard(f"opening '{path}'"):
            blob = self._bucket.get_blob(self._key(path), **self._kw)
        if blob is None:
            raise errors.not_found(f"No such artifact: '{path}'")
        stream = BlobStream(blob, self.settings.download_chunk_size, self._kw, self._guard)
        return cast(BinaryIO, stream)  # an io.RawIOBase: a readable binary file

    def _write(self, path: str, stream: ReadableStream) -> None:
        blob = self._bucket.blob(self._key(path), chunk_size=self.settings.upload_chunk_size)
        kind = content_type(path)
        with self._bucket_guard(f"writing '{path}'"):
            first = read_full(stream, self.settings.upload_chunk_size)
            if len(first) < self.settings.upload_chunk_size:
                blob.upload_from_file(
                    io.BytesIO(first), size=len(first), content_type=kind, **self._kw
                )
                return
            # A resumable upload: the object appears whole, and only when finalised.
            writer = blob.open("wb", ignore_flush=True, content_type=kind, **self._kw)
            try:
                writer.write(first)
                del first
                while piece := stream.read(CHUNK_SIZE):
                    writer.write(piece)
            except BaseException:
                with contextlib.suppress(Exception):
                    writer.terminate()
                raise
            writer.close()

    def _delete(self, path: str) -> None:
        with self._bucket_guard(f"deleting '{path}'"):
            if path:
                self._delete_objects([self._key(path)])
            self._delete_under(self._dir_prefix(path))

    # -- presigned downloads ---------------------------------------------------------------

    def presigned_download_url(self, path: str) -> tuple[str, dict[str, str], int]:
        """A V4 signed GET URL of the current generation of file ``path``."""
        rel = self._file_path(path)
        with self._guard(f"signing a download URL for '{rel}'"):
            blob = self._bucket.get_blob(self._key(rel), **self._kw)
            if blob is None:
                raise errors.not_found(f"No such artifact: '{rel}'")
            url = blob.generate_signed_url(
                version="v4",
                method="GET",
                expiration=timedelta(seconds=self.presigned_url_lifetime),
                api_access_endpoint=self._client.api_endpoint,
                generation=blob.generation,
                **signing_kwargs(self.artifact_uri, self._client._credentials),
            )
        return url, {}, blob.size

    def _file_path(self, path: str) -> str:
        rel = safe_relpath(path)
        if rel == "":
            raise errors.invalid("Invalid artifact path: '' is the root directory")
        return rel

