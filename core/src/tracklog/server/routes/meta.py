"""Server surface outside the RPCs: health, version, server-info."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import PlainTextResponse

from tracklog import __version__
from tracklog.artifacts import MultipartUploadRepository, PresignedDownloadRepository
from tracklog.server.codec import Req
from tracklog.server.routing import RouteTable, ServerState

table = RouteTable()


@table.raw("GET", "/health", "read", public=True)
async def health(state: ServerState, request: Request, req: Req) -> Any:
    return PlainTextResponse("OK")


@table.raw("GET", "/version", "read")
async def version(state: ServerState, request: Request, req: Req) -> Any:
    # tracklog's own version (< 3.4), so MLflow clients do not stream OTLP spans here.
    return PlainTextResponse(__version__)


@table.rpc("GET", "/mlflow/server-info", "read", versions=("3.0",))
def server_info(state: ServerState, req: Req) -> dict[str, Any]:
    repo = state.artifact_root
    store = state.store_or_none
    return {
        "store_type": store.store_type if store is not None else None,
        "workspaces_enabled": False,
        "trace_archival_enabled": False,
        "multipart_uploads_enabled": isinstance(repo, MultipartUploadRepository),
        # Off unless asked for: a client told so fetches every file from the store
        # itself, which fails where clients cannot reach it.
        "multipart_downloads_enabled": state.config.presigned_downloads
        and isinstance(repo, PresignedDownloadRepository),
        "presigned_upload_run_id_supported": False,
        "presigned_upload_model_id_supported": False,
        "features_enabled": {"gateway": False},
    }
