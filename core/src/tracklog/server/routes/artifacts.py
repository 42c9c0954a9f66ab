"""Artifact routes: the proxy (``/mlflow-artifacts``) and the tracking-side listing.

The proxy serves paths relative to ``--artifacts-destination`` through the repository
resolved for it, streaming uploads and downloads in chunks. Paths are validated by
:func:`tracklog.artifacts.safe_relpath`; a delete must name something inside a run's
artifact directory (:func:`tracklog.artifacts.paths.check_deletable`).
"""

from __future__ import annotations

import mimetypes
import posixpath
from typing import Any
from urllib.parse import quote

import anyio.to_thread
from starlette.requests import Request

from tracklog import errors, validation
from tracklog.artifacts import (
    ArtifactRepository,
    CompletedPart,
    MultipartUploadRepository,
    PresignedDownloadRepository,
    safe_relpath,
)
from tracklog.artifacts.paths import check_deletable, join
from tracklog.perf import release_memory
from tracklog.server import codec
from tracklog.server.codec import JSONResponse, Req
from tracklog.server.routing import RouteTable, ServerState, by_artifact_path, by_run
from tracklog.server.streams import RELEASE_AFTER, BodyReader, StreamResponse

table = RouteTable()
proxy = RouteTable()

_PROXY = "/mlflow-artifacts"
#: Most parts one multipart upload may have (S3's limit; each part gets a presigned URL).
MAX_MULTIPART_PARTS = 10_000
_MPU_UNSUPPORTED = (
    "Multipart upload is not supported for the current artifact repository"
)


def _download(repo: ArtifactRepository, path: str) -> StreamResponse:
    info = repo.file_info(path)
    if info is None:
        raise errors.not_found(f"No such artifact: '{path}'")
    if info.is_dir:
        raise errors.invalid(f"Artifact path '{path}' is a directory")
    stream = repo.open_artifact(path)
    name = posixpath.basename(path)
    media_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
    if media_type.startswith("text/"):
        media_type += "; charset=utf-8"
    fallback = name.encode("ascii", "replace").decode("ascii").replace('"', "_")
    headers = {
        "content-type": media_type,
        "content-disposition":
            f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(name)}",
        "x-content-type-options": "nosniff",
    }
    return StreamResponse(stream, info.file_size, headers)


# --- proxy -----------------------------------------------------------------------------


@proxy.raw("GET", _PROXY + "/artifacts", "read", by_artifact_path, ("2.0",))
async def list_proxied(state: ServerState, request: Request, req: Req) -> Any:
    repo = state.artifacts
    path = safe_relpath(req.string("path"), "path")
    infos = await anyio.to_thread.run_sync(repo.list_artifacts, path)
    files = [codec.file_info(f, posixpath.basename(f.path)) for f in infos]
    return JSONResponse({"files": files} if files else {})


@proxy.raw("GET", _PROXY + "/artifacts/{artifact_path:path}", "read", by_artifact_path,
           ("2.0",))
async def download_proxied(state: ServerState, request: Request, req: Req) -> Any:
    repo = state.artifacts
    path = safe_relpath(request.path_params["artifact_path"], "artifact_path")
    return await anyio.to_thread.run_sync(_download, repo, path)


@proxy.raw("PUT", _PROXY + "/artifacts/{artifact_path:path}", "update", by_artifact_path,
           ("2.0",))
async def upload_proxied(state: ServerState, request: Request, req: Req) -> Any:
    repo = state.artifacts
    path = request.path_params["artifact_path"]
    if path.endswith("/") or not path:
        raise errors.invalid(f"Invalid path: {path!r} names a directory")
    safe_relpath(path, "artifact_path")
    body = BodyReader(request.stream())
    # No thread until a whole chunk (or the whole body) is here, and then one of the
    # upload pool: a slow or stalled upload never holds a thread a JSON route needs. A
    # body that goes idle raises in the reader, and the repository discards the write.
    await body.prefetch()

    def write() -> None:
        try:
            repo.write_artifact(path, body)
        finally:  # in the thread: trimming the heap must not hold the event loop
            if body.bytes_read >= RELEASE_AFTER:
                release_memory()

    try:
        await anyio.to_thread.run_sync(write, limiter=state.uploads)
    finally:
        body.stop()
    return JSONResponse({})


@proxy.raw("DELETE", _PROXY + "/artifacts/{artifact_path:path}", "delete", by_artifact_path,
           ("2.0",))
async def delete_proxied(state: ServerState, request: Request, req: Req) -> Any:
    repo = state.artifacts
    raw = request.path_params["artifact_path"]
    path = safe_relpath(raw, "artifact_path")
    check_deletable(path, repr(raw))
    await anyio.to_thread.run_sync(repo.delete_artifacts, path)
    return JSONResponse({})


def _multipart(state: ServerState) -> MultipartUploadRepository:
    repo = state.artifacts
    if not isinstance(repo, MultipartUploadRepository):
        raise errors.not_implemented(
            f"{_MPU_UNSUPPORTED}: {type(repo).__name__} does not support it."
        )
    return repo


def _multipart_target(req: Req) -> str:
    """The file a multipart call is about. As in MLflow, the URL names the artifact
    directory and the body's ``path`` is the client's local file: its base name (after
    either kind of separator) is the file's name in that directory."""
    directory = safe_relpath(req.path_params["artifact_path"])
    local = req.string("path", required=True)
    name = local.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1]
    if name in ("", ".", ".."):
        raise validation.invalid_value("path", local, "It must name a file.")
    return safe_relpath(join(directory, name))


@proxy.rpc("POST", _PROXY + "/mpu/create/{artifact_path:path}", "update", by_artifact_path)
def create_multipart(state: ServerState, req: Req) -> dict[str, Any]:
    repo = _multipart(state)
    path = _multipart_target(req)
    num_parts = req.integer("num_parts", required=True)
    if not 1 <= num_parts <= MAX_MULTIPART_PARTS:
        raise validation.invalid_value(
            "num_parts", num_parts, f"It must be between 1 and {MAX_MULTIPART_PARTS}."
        )
    upload_id, credentials = repo.create_multipart_upload(path, num_parts)
    return {
        "upload_id": upload_id,
        "credentials": [
            {"url": c.url, "part_number": c.part_number, "headers": c.headers}
            for c in credentials
        ],
    }


@proxy.rpc("POST", _PROXY + "/mpu/complete/{artifact_path:path}", "update", by_artifact_path)
def complete_multipart(state: ServerState, req: Req) -> dict[str, Any]:
    repo = _multipart(state)
    path = _multipart_target(req)
    parts = []
    for i, raw in enumerate(req.objects("parts")):
        number = validation.to_int(raw.get("part_number"), f"parts[{i}].part_number")
        # Optional, as in MLflow: a part PUT whose answer has no ETag header (GCS
        # resumable sessions, emulators) reaches the client's complete call with "".
        etag = raw.get("etag") or ""
        if not isinstance(etag, str):
            raise validation.invalid_value(f"parts[{i}].etag", etag, "It must be a string.")
        parts.append(CompletedPart(number, etag, raw.get("url")))
    repo.complete_multipart_upload(path, req.string("upload_id", required=True), parts)
    return {}


@proxy.rpc("POST", _PROXY + "/mpu/abort/{artifact_path:path}", "update", by_artifact_path)
def abort_multipart(state: ServerState, req: Req) -> dict[str, Any]:
    repo = _multipart(state)
    path = _multipart_target(req)
    repo.abort_multipart_upload(path, req.string("upload_id", required=True))
    return {}


@proxy.rpc("GET", _PROXY + "/presigned/{artifact_path:path}", "read", by_artifact_path)
def presigned_download(state: ServerState, req: Req) -> dict[str, Any]:
    repo = state.artifacts
    if not isinstance(repo, PresignedDownloadRepository):
        raise errors.not_implemented(
            "Presigned downloads are not supported for the current artifact repository"
        )
    if not state.config.presigned_downloads:
        raise errors.not_implemented(
            "Presigned downloads are turned off on this server (--presigned-downloads)"
        )
    url, headers, size = repo.presigned_download_url(
        safe_relpath(req.path_params["artifact_path"])
    )
    return {"url": url, "headers": headers, "file_size": size}


# --- tracking side ---------------------------------------------------------------------


@table.rpc("GET", "/mlflow/artifacts/list", "read", by_run)
def list_run_artifacts(state: ServerState, req: Req) -> dict[str, Any]:
    run = state.store.get_run(req.run_id())
    root = run.info.artifact_uri
    repo, base = state.repository_for(root)
    rel = safe_relpath(req.string("path"))
    infos = repo.list_artifacts(join(base, rel))
    cut = len(base) + 1 if base else 0
    out: dict[str, Any] = {"root_uri": root}
    if infos:
        out["files"] = [codec.file_info(f, f.path[cut:]) for f in infos]
    return out


@table.raw("GET", "/get-artifact", "read", by_run)
async def get_run_artifact(state: ServerState, request: Request, req: Req) -> Any:
    def resolve() -> StreamResponse:
        run = state.store.get_run(req.run_id())
        repo, base = state.repository_for(run.info.artifact_uri)
        rel = safe_relpath(req.string("path", required=True))
        return _download(repo, join(base, rel))

    return await anyio.to_thread.run_sync(resolve)
