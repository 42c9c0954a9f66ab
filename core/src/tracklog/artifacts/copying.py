"""Copying artifact trees from one location to another (``tracklog migrate --artifacts``).

A source location is read through the artifact repository for its URI, or, for a
tracking server's ``mlflow-artifacts:`` locations, through that server's artifact proxy.
Files are streamed, never held whole; a file already at the destination with the same
size is skipped, so an interrupted copy resumes where it stopped.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO, Protocol
from urllib.parse import quote, urlsplit

from tracklog import errors
from tracklog.artifacts.base import ArtifactRepository

PROXY_SCHEME = "mlflow-artifacts"


def proxied_path(uri: str) -> str | None:
    """The path below the proxy's root of an ``mlflow-artifacts:`` URI, else None."""
    parts = urlsplit(uri)
    if parts.scheme != PROXY_SCHEME:
        return None
    return parts.path.lstrip("/")


def resolve_location(uri: str, artifacts_destination: str | None) -> str:
    """Where ``uri`` really is: an ``mlflow-artifacts:`` URI lies below the server's
    ``--artifacts-destination``; any other URI is itself."""
    path = proxied_path(uri)
    if path is None:
        return uri
    if not artifacts_destination:
        raise errors.invalid(
            f"{uri} is served by an artifact proxy: name the directory behind it "
            f"(--artifacts-destination)")
    return artifacts_destination.rstrip("/") + "/" + path


class Tree(Protocol):
    """A readable artifact tree."""

    def files(self) -> Iterator[tuple[str, int | None]]:
        """(relative path, size) of every file, depth first."""
        ...

    def open(self, path: str) -> BinaryIO: ...


class RepositoryTree:
    def __init__(self, repo: ArtifactRepository) -> None:
        self.repo = repo

    def files(self) -> Iterator[tuple[str, int | None]]:
        stack: list[str | None] = [None]
        while stack:
            for f in self.repo.list_artifacts(stack.pop()):
                if f.is_dir:
                    stack.append(f.path)
                else:
                    yield f.path, f.file_size

    def open(self, path: str) -> BinaryIO:
        return self.repo.open_artifact(path)


class ProxyTree:
    """A tree behind an MLflow-protocol server's artifact proxy
    (``/api/2.0/mlflow-artifacts/artifacts``)."""

    def __init__(self, http: Any, root: str) -> None:
        self.http, self.root = http, root.strip("/")

    def _list(self, rel: str) -> list[dict[str, Any]]:
        path = f"{self.root}/{rel}" if rel else self.root
        r = self.http.get("/2.0/mlflow-artifacts/artifacts", params={"path": path})
        if r.status_code == 404:
            return []
        if r.status_code != 200:
            raise errors.invalid(f"The artifact proxy answered {r.status_code} listing {path}")
        return r.json().get("files", [])

    def files(self) -> Iterator[tuple[str, int | None]]:
        stack = [""]
        while stack:
            rel = stack.pop()
            for f in self._list(rel):
                # The proxy names entries by their path below the listed directory.
                name = f["path"].rstrip("/").rsplit("/", 1)[-1]
                child = f"{rel}/{name}" if rel else name
                if f.get("is_dir"):
                    stack.append(child)
                else:
                    size = f.get("file_size")
                    yield child, None if size is None else int(size)

    def open(self, path: str) -> BinaryIO:
        url = "/2.0/mlflow-artifacts/artifacts/" + quote(f"{self.root}/{path}")
        response = self.http.send(self.http.build_request("GET", url), stream=True)
        if response.status_code != 200:
            response.close()
            raise errors.invalid(f"The artifact proxy answered {response.status_code} "
                                 f"reading {self.root}/{path}")
        return _StreamReader(response)  # type: ignore[return-value]


class _StreamReader:
    """A streamed HTTP response read like a file."""

    def __init__(self, response: Any) -> None:
        self.response = response
        self.chunks = response.iter_bytes()
        self.buffer = b""

    def read(self, size: int = -1, /) -> bytes:
        while size < 0 or len(self.buffer) < size:
            try:
                self.buffer += next(self.chunks)
            except StopIteration:
                break
        if size < 0:
            out, self.buffer = self.buffer, b""
        else:
            out, self.buffer = self.buffer[:size], self.buffer[size:]
        return out

    def close(self) -> None:
        self.response.close()

    def __enter__(self) -> _StreamReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass
class CopyReport:
    files: int = 0
    bytes: int = 0
    skipped: int = 0
    failed: list[str] | None = None


class ArtifactCopier:
    """Copies the artifacts of records a migration writes: ``copy(kind, source_uri,
    dest_uri)``. ``source_tree(uri)`` opens a source location (None: nothing there to
    read); destinations are resolved against ``artifacts_destination`` (the
    destination server's proxied root) and opened with ``resolve_repository``."""

    def __init__(self, source_tree: Callable[[str], Tree | None],
                 artifacts_destination: str | None,
                 resolve_repository: Callable[[str], ArtifactRepository],
                 source_artifacts_destination: str | None = None) -> None:
        self.source_tree = source_tree
        self.destination = artifacts_destination
        self.source_destination = source_artifacts_destination
        self.resolve = resolve_repository
        self.report = CopyReport(failed=[])

    def _dest(self, uri: str) -> ArtifactRepository:
        return self.resolve(resolve_location(uri, self.destination))

    def copy(self, kind: str, source_uri: str, dest_uri: str) -> None:
        if not source_uri or not dest_uri:
            return
        if proxied_path(source_uri) is None or self.source_destination:
            src_where = resolve_location(source_uri, self.source_destination)
            if src_where == resolve_location(dest_uri, self.destination):
                return  # the same place: nothing to copy
        tree = self.source_tree(source_uri)
        if tree is None:
            return
        dest = self._dest(dest_uri)
        for path, size in tree.files():
            there = dest.file_info(path)
            if there is not None and not there.is_dir and size is not None \
                    and there.file_size == size:
                self.report.skipped += 1
                continue
            with tree.open(path) as stream:
                dest.write_artifact(path, _Counting(stream, self.report))
            self.report.files += 1

    def put(self, dest_uri: str, path: str, data: bytes) -> None:
        """Write one file (a trace's spans kept by the source in its database) unless a
        file of that size is there already."""
        import io

        dest = self._dest(dest_uri)
        there = dest.file_info(path)
        if there is not None and there.file_size == len(data):
            self.report.skipped += 1
            return
        dest.write_artifact(path, io.BytesIO(data))
        self.report.files += 1
        self.report.bytes += len(data)


class _Counting:
    def __init__(self, stream: Any, report: CopyReport) -> None:
        self.stream, self.report = stream, report

    def read(self, size: int = -1, /) -> bytes:
        data: bytes = self.stream.read(size)
        self.report.bytes += len(data)
        return data


def repository_tree(uri: str, artifacts_destination: str | None,
                    resolve_repository: Callable[[str], ArtifactRepository]) -> Tree | None:
    """A source location read through its artifact repository."""
    return RepositoryTree(resolve_repository(resolve_location(uri, artifacts_destination)))
