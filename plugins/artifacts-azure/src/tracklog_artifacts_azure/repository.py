"""Artifacts in an Azure Blob Storage container, under an optional prefix.

Blob names are ``<prefix>/<relative path>``; directories are name prefixes, listed one
level at a time through the service's ``/`` delimiter. An empty directory cannot exist.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, BinaryIO, cast

from tracklog.artifacts import ArtifactRepository, ReadableStream
from tracklog.entities import FileInfo
from tracklog_artifacts_azure import streams
from tracklog_artifacts_azure.client import Credentials, shared_client
from tracklog_artifacts_azure.location import parse_location
from tracklog_artifacts_azure.service_errors import service_error

if TYPE_CHECKING:
    from azure.storage.blob import BlobProperties

# The Blob Batch API takes at most 256 sub-requests per call.
_DELETE_BATCH = 256


class AzureBlobArtifactRepository(ArtifactRepository):
    """Files under ``wasbs://container@account.blob.core.windows.net/prefix`` (or the
    ``abfss://`` spelling of the same container).

    :param results_per_page: listing page size asked of the service (its default and
        maximum is 5,000); every page is followed.
    :param block_size: upload block size; ``range_size``: download range size.
    :param client_options: passed to ``BlobServiceClient`` (e.g. ``retry_total``).
    """

    def __init__(
        self,
        artifact_uri: str,
        *,
        results_per_page: int | None = None,
        block_size: int = streams.BLOCK_SIZE,
        range_size: int = streams.RANGE_SIZE,
        client_options: dict[str, Any] | None = None,
        credentials: tuple[Any, Credentials] | None = None,
    ) -> None:
        super().__init__(artifact_uri)
        self.location = parse_location(artifact_uri)
        service, self.credentials = credentials or shared_client(
            self.location, artifact_uri, **(client_options or {})
        )
        self.service = service
        self.container = service.get_container_client(self.location.container)
        self.results_per_page = results_per_page
        self.block_size = block_size
        self.range_size = range_size
        # Folder blobs of a hierarchical-namespace account (ADLS Gen2) carry this metadata.
        self._folder_markers = self.location.scheme == "abfss"
        self._container_checked = False

    # -- helpers ----------------------------------------------------------------------

    def _uri(self, path: str) -> str:
        base = self.artifact_uri.rstrip("/")
        return f"{base}/{path}" if path else base

    def _error(self, action: str, path: str) -> Callable[[Exception], Exception]:
        return lambda exc: service_error(exc, action, self._uri(path))

    def _call(self, action: str, path: str, func: Callable[..., Any], *args, **kwargs) -> Any:
        try:
            return func(*args, **kwargs)
        except Exception as exc:
            if not _is_azure_error(exc):
                raise
            raise service_error(exc, action, self._uri(path)) from None

    def _dir_prefix(self, path: str) -> str:
        key = self.location.key(path)
        return f"{key}/" if key else ""

    def _is_folder(self, props: Any) -> bool:
        return self._folder_markers and (props.metadata or {}).get("hdi_isfolder") == "true"

    def _blob_names(self, path: str) -> Iterator[str]:
        """Every blob name below directory ``path``, following every page."""
        yield from self.container.list_blob_names(
            name_starts_with=self._dir_prefix(path), results_per_page=self.results_per_page
        )

    def _delete_hierarchical(self, path: str) -> None:
        """Files first, then folder blobs deepest first: a hierarchical namespace refuses
        to delete a folder that is not empty, and refuses batches."""
        folders = []
        for props in self.container.list_blobs(
            name_starts_with=self._dir_prefix(path),
            include=["metadata"],
            results_per_page=self.results_per_page,
        ):
            if self._is_folder(props):
                folders.append(props.name)
            else:
                _quietly(self.container.delete_blob, props.name)
        for name in sorted(folders, key=lambda n: n.count("/"), reverse=True):
            _quietly(self.container.delete_blob, name)

    # -- the contract -----------------------------------------------------------------

    def _stat(self, path: str) -> FileInfo | None:
        from azure.core.exceptions import ResourceNotFoundError

        if path == "":
            if not self._container_checked:
                # A one-entry listing: it needs only the permission the repository needs
                # anyway (a container-scoped SAS may not read container properties).
                probe = self.container.list_blob_names(
                    name_starts_with=self._dir_prefix(""), results_per_page=1
                ).by_page()
                self._call("access", "", lambda: next(probe, None))
                self._container_checked = True
            return FileInfo("", True)
        blob = self.container.get_blob_client(self.location.key(path))
        try:
            props = blob.get_blob_properties()
        except ResourceNotFoundError as exc:
            if _code(exc) == "ContainerNotFound":
                raise service_error(exc, "stat", self._uri(path)) from None
            props = None
        except Exception as exc:
            if not _is_azure_error(exc):
                raise
            raise service_error(exc, "stat", self._uri(path)) from None
        if props is not None:
            if self._is_folder(props):
                return FileInfo(path, True)
            return FileInfo(path, False, props.size)
        below = self.container.list_blob_names(
            name_starts_with=self._dir_prefix(path), results_per_page=1
        ).by_page()
        first_page = self._call("stat", path, lambda: list(next(below, [])))
        return FileInfo(path, True) if first_page else None

    def _list(self, path: str) -> list[FileInfo]:
        prefix = self._dir_prefix(path)
        cut = len(self._dir_prefix(""))
        include = ["metadata"] if self._folder_markers else None

        def walk() -> list[FileInfo]:
            dirs: dict[str, FileInfo] = {}
            files: dict[str, FileInfo] = {}
            for item in self.container.walk_blobs(
                name_starts_with=prefix,
                delimiter="/",
                include=include,
                results_per_page=self.results_per_page,
            ):
                name = item.name[cut:]
                if name.endswith("/"):
                    dirs[name[:-1]] = FileInfo(name[:-1], True)
                elif self._is_folder(item):
                    dirs[name] = FileInfo(name, True)
                else:
                    # Only names ending in the delimiter come as a BlobPrefix.
                    files[name] = FileInfo(name, False, cast("BlobProperties", item).size)
            # A folder blob beside its own prefix (hierarchical namespace) is one directory.
            return list(dirs.values()) + [f for p, f in files.items() if p not in dirs]

        return self._call("list", path, walk)

    def _open(self, path: str) -> BinaryIO:
        blob = self.container.get_blob_client(self.location.key(path))
        props = self._call("read", path, blob.get_blob_properties)
        reader = streams.BlobReader(
            blob, props.size, props.etag, self._error("read", path), self.range_size
        )
        return cast(BinaryIO, reader)  # an io.RawIOBase: a readable binary file

    def _write(self, path: str, stream: ReadableStream) -> None:
        blob = self.container.get_blob_client(self.location.key(path))
        self._call("write", path, streams.upload, blob, stream, self.block_size)

    def _delete(self, path: str) -> None:
        from azure.core.exceptions import ResourceNotFoundError

        def delete_all() -> None:
            if self._folder_markers:
                self._delete_hierarchical(path)
            else:
                batch: list[str] = []
                for name in self._blob_names(path):
                    batch.append(name)
                    if len(batch) == _DELETE_BATCH:
                        self._delete_batch(batch)
                        batch = []
                if batch:
                    self._delete_batch(batch)
            if path:
                try:
                    self.container.delete_blob(self.location.key(path), delete_snapshots="include")
                except ResourceNotFoundError as exc:
                    if _code(exc) == "ContainerNotFound":
                        raise

        self._call("delete", path, delete_all)

    def _delete_batch(self, names: list[str]) -> None:
        from azure.core.exceptions import HttpResponseError

        responses = self.container.delete_blobs(
            *names, delete_snapshots="include", raise_on_any_failure=False
        )
        for response in responses:
            if response.status_code not in (202, 404):
                raise HttpResponseError(response=response)


def _code(exc: Exception) -> str:
    code = getattr(exc, "error_code", None) or ""
    return getattr(code, "value", code)


def _quietly(delete: Callable[..., Any], name: str) -> None:
    from azure.core.exceptions import ResourceNotFoundError

    try:
        delete(name, delete_snapshots="include")
    except ResourceNotFoundError as exc:
        if _code(exc) == "ContainerNotFound":
            raise


def _is_azure_error(exc: Exception) -> bool:
    from azure.core.exceptions import AzureError

    return isinstance(exc, AzureError)
