"""The artifact-repository contract.

A repository is rooted at an artifact URI (``s3://bucket/prefix``, ``/srv/artifacts``,
…) and stores files under it by relative path. A plugin subclasses
:class:`ArtifactRepository` and implements five small abstract methods that receive
**already validated** relative paths (``""`` is the root, otherwise ``a/b/c`` with no
``..``, no leading ``/``): path safety is enforced once, here, for every backend.

The public methods (``log_artifact``, ``list_artifacts``, ``open_artifact``, …) are what
the server and the SDK call. Reads and writes stream in chunks; no method needs a whole
file in memory.

Optional capabilities are separate ABCs: :class:`MultipartUploadRepository` (multipart
upload with presigned part URLs) and :class:`PresignedDownloadRepository`.
"""

from __future__ import annotations

import abc
import io
import os
import shutil
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import BinaryIO, Protocol
from urllib.parse import urlsplit

from tracklog import errors
from tracklog.artifacts.paths import join, safe_relpath
from tracklog.entities import FileInfo

CHUNK_SIZE = 1024 * 1024

#: Name prefix of the file :meth:`ArtifactRepository.verify` writes and deletes.
PROBE_PREFIX = ".tracklog-probe-"


def _redact(uri: str) -> str:
    """``uri`` with any password masked, for messages."""
    try:
        password = urlsplit(uri).password
    except ValueError:
        return uri
    return uri.replace(f":{password}@", ":***@", 1) if password else uri


def _reason(exc: BaseException) -> str:
    if isinstance(exc, errors.TracklogError):
        return exc.message
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return f"{type(exc).__name__}: {exc}"


class ReadableStream(Protocol):
    """What a repository writes from: a binary file, or anything else with ``read``
    (the server hands over a request body reader)."""

    def read(self, size: int = -1, /) -> bytes:
        """Up to ``size`` bytes (everything left when negative); ``b""`` at the end."""
        ...


class ArtifactRepository(abc.ABC):
    """Files under one root URI.

    Every public method takes paths relative to the root (``None`` or ``""`` is the root
    itself) and refuses an unsafe one (``..``, absolute, backslashes, drive letters,
    ``#``, control characters, their percent-encoded forms, names over 255 bytes, paths
    over 1,024 bytes or 128 levels) with INVALID_PARAMETER_VALUE (400) before the backend
    sees it. A failure of the storage service is raised as a
    :class:`~tracklog.errors.TracklogError` naming the URI, never as the service's own
    exception.
    """

    def __init__(self, artifact_uri: str) -> None:
        self.artifact_uri = artifact_uri

    # -- what a backend implements (paths are safe and relative) ------------------------

    @abc.abstractmethod
    def _stat(self, path: str) -> FileInfo | None:
        """What ``path`` is: a file (with size), a directory, or None if nothing is there.
        ``FileInfo.path`` is ``path`` itself. The root is always a directory; an object
        store reports a prefix with objects under it as a directory."""

    @abc.abstractmethod
    def _list(self, path: str) -> list[FileInfo]:
        """Entries directly under directory ``path`` with ``FileInfo.path`` relative to
        the repository root; files carry their size. A missing directory lists empty."""

    @abc.abstractmethod
    def _open(self, path: str) -> BinaryIO:
        """A readable binary stream of file ``path``; missing is RESOURCE_DOES_NOT_EXIST."""

    @abc.abstractmethod
    def _write(self, path: str, stream: ReadableStream) -> None:
        """Store everything read from ``stream`` as file ``path`` (creating parents,
        overwriting). Readers never observe a half-written file where the backend allows."""

    @abc.abstractmethod
    def _delete(self, path: str) -> None:
        """Delete file ``path`` or directory ``path`` with everything below it; missing
        is not an error."""

    def _mkdir(self, path: str) -> None:  # noqa: B027 - optional, a no-op by default
        """Create directory ``path`` (with parents). Only repositories that can hold an
        empty directory (file systems, SFTP, FTP) implement it; the default does nothing."""

    # -- the public interface -----------------------------------------------------------

    def file_info(self, path: str | None = None) -> FileInfo | None:
        """What ``path`` is.

        :returns: a :class:`~tracklog.entities.FileInfo` (``is_dir``, and ``file_size``
            for a file) or None when nothing is there.
        :raises TracklogError: INVALID_PARAMETER_VALUE (400) for an unsafe path.
        """
        return self._stat(safe_relpath(path))

    def list_artifacts(self, path: str | None = None) -> list[FileInfo]:
        """List one level under directory ``path``.

        :returns: the entries sorted by path, each with its path relative to the
            repository root; files carry their size. A file path or a missing directory
            lists empty (as MLflow's proxy answers).
        :raises TracklogError: INVALID_PARAMETER_VALUE (400) for an unsafe path.
        """
        rel = safe_relpath(path)
        info = self._stat(rel)
        if info is None or not info.is_dir:
            return []
        return sorted(self._list(rel), key=lambda f: f.path)

    def open_artifact(self, path: str) -> BinaryIO:
        """Open file ``path`` for reading; the caller closes the stream.

        :returns: a readable binary stream (read it in chunks).
        :raises TracklogError: RESOURCE_DOES_NOT_EXIST (404) when nothing is there;
            INVALID_PARAMETER_VALUE (400) for the root, a directory or an unsafe path.
        """
        rel, _ = self._existing_file(path)
        return self._open(rel)

    def _existing_file(self, path: str) -> tuple[str, FileInfo]:
        """The safe relative path of file ``path`` and its info, checked as
        :meth:`open_artifact` checks it (for capabilities that hand a file out otherwise,
        such as presigned downloads)."""
        rel = safe_relpath(path)
        if rel == "":
            raise errors.invalid("Invalid artifact path: '' is the root directory")
        info = self._stat(rel)
        if info is None:
            raise errors.not_found(f"No such artifact: '{rel}'")
        if info.is_dir:
            raise errors.invalid(f"Artifact path '{rel}' is a directory")
        return rel, info

    def iter_artifact(self, path: str, chunk_size: int = CHUNK_SIZE) -> Iterator[bytes]:
        """Yield file ``path`` in chunks of at most ``chunk_size`` bytes.

        :raises TracklogError: as :meth:`open_artifact`, on the first ``next()``.
        """
        with self.open_artifact(path) as stream:
            while chunk := stream.read(chunk_size):
                yield chunk

    def write_artifact(self, path: str, stream: ReadableStream) -> None:
        """Store everything read from ``stream`` as file ``path``, creating parent
        directories and overwriting an existing file. Where the backend allows, readers
        never see a half-written file, and a failed write leaves nothing behind.

        :raises TracklogError: INVALID_PARAMETER_VALUE (400) for the root, a path ending
            in ``/`` or an unsafe path; the backend's error when the service fails.
        """
        if path is None or path.endswith("/"):
            raise errors.invalid(f"Invalid artifact path: {path!r} names a directory")
        rel = safe_relpath(path)
        if rel == "":
            raise errors.invalid("Invalid artifact path: '' is the root directory")
        self._write(rel, stream)

    def log_artifact(self, local_file: str | os.PathLike, artifact_path: str | None = None) -> None:
        """Upload one local file into directory ``artifact_path`` (None: the root) under
        its own base name.

        :raises TracklogError: as :meth:`write_artifact`. An unreadable local file
            raises the ``OSError`` of ``open``.
        """
        name = os.path.basename(os.fspath(local_file))
        with open(local_file, "rb") as f:
            self.write_artifact(join(safe_relpath(artifact_path), name), f)

    def log_artifacts(self, local_dir: str | os.PathLike, artifact_path: str | None = None) -> None:
        """Upload a local directory tree into ``artifact_path`` (None: the root), one
        file at a time. Empty directories are kept where the backend can hold them (see
        :meth:`_mkdir`).

        :raises TracklogError: as :meth:`write_artifact`.
        """
        base = safe_relpath(artifact_path)
        local_dir = os.fspath(local_dir)
        for root, _dirs, files in os.walk(local_dir):
            rel_root = os.path.relpath(root, local_dir).replace(os.sep, "/")
            if not files and not _dirs:
                self._mkdir(safe_relpath(join(base, "" if rel_root == "." else rel_root)))
            for name in files:
                with open(os.path.join(root, name), "rb") as f:
                    self.write_artifact(join(base, "" if rel_root == "." else rel_root, name), f)

    def download_artifacts(self, path: str | None, dst_path: str | os.PathLike) -> str:
        """Copy a file or directory tree to local ``dst_path`` (a directory that exists),
        keeping its relative path below ``dst_path``.

        :returns: the local path of what was downloaded.
        :raises TracklogError: RESOURCE_DOES_NOT_EXIST (404) when nothing is at ``path``;
            INVALID_PARAMETER_VALUE (400) for an unsafe path.
        """
        rel = safe_relpath(path)
        info = self._stat(rel)
        if info is None:
            raise errors.not_found(f"No such artifact: '{rel}'")
        dst_root = os.fspath(dst_path)
        target = os.path.join(dst_root, *rel.split("/")) if rel else dst_root
        if not info.is_dir:
            os.makedirs(os.path.dirname(target) or ".", exist_ok=True)
            with self._open(rel) as src, open(target, "wb") as out:
                shutil.copyfileobj(src, out, CHUNK_SIZE)
            return target
        os.makedirs(target, exist_ok=True)
        for child in self._list(rel):
            self.download_artifacts(child.path, dst_root)
        return target

    def delete_artifacts(self, path: str | None = None) -> None:
        """Delete a file or a directory tree; the root means everything. Nothing at
        ``path`` is not an error. (The server's delete route refuses more: see
        ``docs/server.md``.)

        :raises TracklogError: INVALID_PARAMETER_VALUE (400) for an unsafe path.
        """
        self._delete(safe_relpath(path))

    # -- operations ---------------------------------------------------------------------

    def verify(self, probe_write: bool = False) -> None:
        """Check that the repository is usable; the server calls it at start.

        The default stats the root (reaching the service: a missing bucket or refused
        credentials fail here) and, with ``probe_write``, writes and deletes a small probe
        file. Overrides add cheap checks of their own and call this one.

        :raises TracklogError: INVALID_STATE with one line naming the URI (credentials
            masked) and the reason; the server prints it and exits.
        """
        try:
            info = self._stat("")
        except Exception as exc:
            raise self._unusable(_reason(exc)) from exc
        if info is not None and not info.is_dir:
            raise self._unusable("its root is not a directory")
        if not probe_write:
            return
        probe = f"{PROBE_PREFIX}{uuid.uuid4().hex}"
        try:
            self._write(probe, io.BytesIO(b"tracklog write probe\n"))
            self._delete(probe)
        except Exception as exc:
            raise self._unusable(f"the write probe failed: {_reason(exc)}") from exc

    def remove_stale_temp_files(self, older_than: float) -> int:
        """Remove temporary files that interrupted uploads left behind and that nobody
        has modified for ``older_than`` seconds. The server calls it at start in a
        background thread. The default does nothing: object stores never expose a
        half-written upload.

        :returns: how many files were removed.
        """
        return 0

    def _unusable(self, reason: str) -> errors.TracklogError:
        return errors.TracklogError(
            f"Artifact destination {_redact(self.artifact_uri)!r} is not usable: {reason}",
            errors.ErrorCode.INVALID_STATE,
        )


@dataclass(frozen=True)
class PartCredential:
    """Where the client PUTs part ``part_number`` (1-based): ``url`` with ``headers``."""

    part_number: int
    url: str
    headers: dict[str, str]


@dataclass(frozen=True)
class CompletedPart:
    """A part the client uploaded: its number, the ETag the service answered (may be
    ``""``: some services send none) and the URL it used."""

    part_number: int
    etag: str
    url: str | None = None


class MultipartUploadRepository(abc.ABC):
    """Optional capability: the client uploads parts straight to presigned URLs.

    The server advertises multipart uploads in ``server-info`` only for a repository with
    this capability, and answers NOT_IMPLEMENTED (501) otherwise. Paths are as in
    :class:`ArtifactRepository` and checked the same way.
    """

    @abc.abstractmethod
    def create_multipart_upload(
        self, path: str, num_parts: int
    ) -> tuple[str, list[PartCredential]]:
        """Start an upload of file ``path`` in ``num_parts`` parts (the server allows 1
        to 10,000).

        :returns: the upload id and one :class:`PartCredential` per part, in order.
        :raises TracklogError: INVALID_PARAMETER_VALUE (400) for the root or an unsafe
            path; the backend's error when the service refuses.
        """

    @abc.abstractmethod
    def complete_multipart_upload(
        self, path: str, upload_id: str, parts: Sequence[CompletedPart]
    ) -> None:
        """Assemble the uploaded ``parts`` (in any order) into file ``path``; only then
        does the file appear.

        :raises TracklogError: INVALID_PARAMETER_VALUE (400) for an unsafe path; the
            backend's error for an unknown upload id or a missing part.
        """

    @abc.abstractmethod
    def abort_multipart_upload(self, path: str, upload_id: str) -> None:
        """Give an upload up and free the parts stored so far; no file appears.

        :raises TracklogError: INVALID_PARAMETER_VALUE (400) for an unsafe path; the
            backend's error when the service refuses.
        """


class PresignedDownloadRepository(abc.ABC):
    """Optional capability: a time-limited URL the client downloads from directly."""

    #: Seconds a URL from :meth:`presigned_download_url` stays valid. A repository reads
    #: it when it signs, so a caller (the conformance kit among them) may shorten it.
    presigned_url_lifetime: int = 300

    @abc.abstractmethod
    def presigned_download_url(self, path: str) -> tuple[str, dict[str, str], int]:
        """A URL the client GETs file ``path`` from, valid for
        :attr:`presigned_url_lifetime` seconds.

        :returns: ``(url, headers, file_size)``: the headers the client must send.
        :raises TracklogError: as :meth:`ArtifactRepository.open_artifact` for a missing
            file, a directory or an unsafe path.
        """
