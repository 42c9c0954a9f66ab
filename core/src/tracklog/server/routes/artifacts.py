"""Artifact routes: the proxy (``/mlflow-artifacts``) and the tracking-side listing.

The proxy serves paths relative to ``--artifacts-destination`` through the repository
resolved for it, streaming uploads and downloads in chunks. Paths are validated by
:func:`tracklog.artifacts.safe_relpath`.
"""

from __future__ import annotations

import mimetypes
import posixpath
import re
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
from tracklog.artifacts.paths import join
from tracklog.server import codec
from tracklog.server.codec import JSONResponse, Req
from tracklog.server.routing import RouteTable, ServerState, by_artifact_path, by_run
from tracklog.server.streams import BodyReader, StreamResponse

table = RouteTable()
proxy = RouteTable()

_PROXY = "/mlflow-artifacts"
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
    path = safe_relpath(req.str("path"))
    infos = await anyio.to_thread.run_sync(repo.list_artifacts, path)
    files = [codec.file_info(f, posixpath.basename(f.path)) for f in infos]
    return JSONResponse({"files": files} if files else {})


@proxy.raw("GET", _PROXY + "/artifacts/{artifact_path:path}", "read", by_artifact_path,
           ("2.0",))
async def download_proxied(state: ServerState, request: Request, req: Req) -> Any:
    repo = state.artifacts
    path = safe_relpath(request.path_params["artifact_path"])
    return await anyio.to_thread.run_sync(_download, repo, path)


@proxy.raw("PUT", _PROXY + "/artifacts/{artifact_path:path}", "update", by_artifact_path,
           ("2.0",))
async def upload_proxied(state: ServerState, request: Request, req: Req) -> Any:
    repo = state.artifacts
    path = request.path_params["artifact_path"]
    if path.endswith("/") or not path:
        raise errors.invalid(f"Invalid path: {path!r} names a directory")
    safe_relpath(path)
    body = BodyReader(request.stream())
    await anyio.to_thread.run_sync(repo.write_artifact, path, body)
    return JSONResponse({})


@proxy.raw("DELETE", _PROXY + "/artifacts/{artifact_path:path}", "delete", by_artifact_path,
           ("2.0",))
async def delete_proxied(state: ServerState, request: Request, req: Req) -> Any:
    repo = state.artifacts
    path = safe_relpath(request.path_params["artifact_path"])
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
    """The file a multipart request names: MLflow's client puts the destination directory
    in the URL and its local file path in the body; the file keeps that file's name."""
    local = req.str("path", required=True)
    name = re.split(r"[\\/]", local)[-1]
    if not name:
        raise validation.invalid_value("path", local, "It must name a file.")
    return safe_relpath(join(safe_relpath(req.path_params["artifact_path"]), name))


@proxy.rpc("POST", _PROXY + "/mpu/create/{artifact_path:path}", "update", by_artifact_path)
def create_multipart(state: ServerState, req: Req) -> dict[str, Any]:
    repo = _multipart(state)
    path = _multipart_target(req)
    num_parts = req.int("num_parts", required=True)
    if num_parts < 1:
        raise validation.invalid_value("num_parts", num_parts, "It must be at least 1.")
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
        etag = raw.get("etag")
        if not isinstance(etag, str) or not etag:
            raise validation.missing(f"parts[{i}].etag")
        parts.append(CompletedPart(number, etag, raw.get("url")))
    repo.complete_multipart_upload(path, req.str("upload_id", required=True), parts)
    return {}


@proxy.rpc("POST", _PROXY + "/mpu/abort/{artifact_path:path}", "update", by_artifact_path)
def abort_multipart(state: ServerState, req: Req) -> dict[str, Any]:
    repo = _multipart(state)
    path = _multipart_target(req)
    repo.abort_multipart_upload(path, req.str("upload_id", required=True))
    return {}


@proxy.rpc("GET", _PROXY + "/presigned/{artifact_path:path}", "read", by_artifact_path)
def presigned_download(state: ServerState, req: Req) -> dict[str, Any]:
    repo = state.artifacts
    if not isinstance(repo, PresignedDownloadRepository):
        raise errors.not_implemented(
            "Presigned downloads are not supported for the current artifact repository"
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
    rel = safe_relpath(req.str("path"))
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
        rel = safe_relpath(req.str("path", required=True))
        return _download(repo, join(base, rel))

    return await anyio.to_thread.run_sync(resolve)
