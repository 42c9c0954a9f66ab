"""Server configuration shared by the server, the CLI and plugin hooks."""

from __future__ import annotations

from dataclasses import dataclass, field

DEFAULT_BACKEND_STORE_URI = "sqlite:///tracklog.db"
DEFAULT_ARTIFACTS_DESTINATION = "./tracklog-artifacts"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 5000


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
