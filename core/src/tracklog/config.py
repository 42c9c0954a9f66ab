"""Server configuration shared by the server, the CLI and plugin hooks."""

from __future__ import annotations

from dataclasses import dataclass, field

DEFAULT_BACKEND_STORE_URI = "sqlite:///tracklog.db"
DEFAULT_ARTIFACTS_DESTINATION = "./tracklog-artifacts"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 5000
#: Seconds a client may take to send a request's headers (counted from its first byte, or
#: from the connection's opening).
DEFAULT_HEADER_TIMEOUT = 30.0
#: Seconds a request body may go without sending a byte: idleness, not total duration, so a
#: large upload on a slow link is never cut off while data keeps coming.
DEFAULT_BODY_TIMEOUT = 60.0
#: Largest request line plus headers, in bytes (proxies cap them at 8–64 KiB).
DEFAULT_MAX_HEADER_SIZE = 64 * 1024
#: Artifact uploads writing through their repository at once; they run on a thread pool
#: of their own, so uploads paced by slow clients never take the JSON routes' threads.
DEFAULT_ARTIFACT_UPLOADS = 32


@dataclass
class ServerConfig:
    backend_store_uri: str = DEFAULT_BACKEND_STORE_URI
    default_artifact_root: str | None = None
    serve_artifacts: bool = True
    artifacts_destination: str = DEFAULT_ARTIFACTS_DESTINATION
    artifacts_only: bool = False
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    workers: int = 1
    allowed_hosts: list[str] = field(default_factory=list)
    cors_allowed_origins: list[str] = field(default_factory=list)
    static_prefix: str = ""
    dev: bool = False
    expose_prometheus: str | None = None
    verify_artifacts_write: bool = False
    presigned_downloads: bool = False
    header_timeout: float = DEFAULT_HEADER_TIMEOUT
    body_timeout: float = DEFAULT_BODY_TIMEOUT
    max_header_size: int = DEFAULT_MAX_HEADER_SIZE
    artifact_uploads: int = DEFAULT_ARTIFACT_UPLOADS
    #: One line per request on stderr (method, path, status, duration).
    access_log: bool = True
