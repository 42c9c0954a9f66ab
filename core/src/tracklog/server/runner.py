"""Running the application on uvicorn, with TCP_NODELAY and one write per response.

uvicorn writes a response's headers and body with separate ``transport.write`` calls;
with Nagle's algorithm on, the second small segment waits for the client's delayed ACK
(~40 ms per request on keep-alive connections). :class:`TracklogHttpProtocol` sets
TCP_NODELAY on every accepted socket and coalesces the writes of one event-loop turn
into a single ``send``.
"""

from __future__ import annotations

import json
import logging
import os
import shlex
import socket
from dataclasses import asdict
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from tracklog.config import ServerConfig

CONFIG_ENV = "TRACKLOG_SERVER_CONFIG_JSON"
_FLUSH_AT = 256 * 1024


class _CoalescingTransport:
    """Buffers writes made during one loop iteration and sends them together."""

    def __init__(self, transport: Any, loop: Any) -> None:
        self._transport = transport
        self._loop = loop
        self._buffer: list[bytes] = []
        self._size = 0
        self._scheduled = False

    def write(self, data: bytes) -> None:
        if not data:
            return
        self._buffer.append(data)
        self._size += len(data)
        if self._size >= _FLUSH_AT:
            self.flush()
        elif not self._scheduled:
            self._scheduled = True
            self._loop.call_soon(self.flush)

    def flush(self) -> None:
        self._scheduled = False
        if self._buffer:
            data = self._buffer[0] if len(self._buffer) == 1 else b"".join(self._buffer)
            self._buffer.clear()
            self._size = 0
            if not self._transport.is_closing():
                self._transport.write(data)

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def abort(self) -> None:
        self._buffer.clear()
        self._transport.abort()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


def set_nodelay(transport: Any) -> bool:
    sock = transport.get_extra_info("socket")
    if sock is None:
        return False
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except (OSError, AttributeError):
        return False
    return True


class TracklogHttpProtocol(HttpToolsProtocol):
    def connection_made(self, transport: Any) -> None:  # type: ignore[override]
        set_nodelay(transport)
        super().connection_made(_CoalescingTransport(transport, self.loop))


def app_from_env() -> Any:
    """Application factory for worker processes (``--workers``, ``--dev``): the
    configuration travels in an environment variable."""
    from tracklog.server.app import create_app

    return create_app(ServerConfig(**json.loads(os.environ[CONFIG_ENV])))


def parse_uvicorn_opts(opts: str | None) -> dict[str, Any]:
    """``"--timeout-keep-alive 30 --no-access-log"`` → uvicorn.Config keyword arguments."""
    out: dict[str, Any] = {}
    words = shlex.split(opts or "")
    i = 0
    while i < len(words):
        word = words[i]
        if not word.startswith("--"):
            raise ValueError(f"--uvicorn-opts: expected an option, got {word!r}")
        name, _, inline = word[2:].partition("=")
        key = name.replace("-", "_")
        if inline:
            value: Any = inline
        elif i + 1 < len(words) and not words[i + 1].startswith("--"):
            value = words[i + 1]
            i += 1
        elif key.startswith("no_"):
            key, value = key[3:], False
        else:
            value = True
        if isinstance(value, str):
            for cast in (int, float):
                try:
                    value = cast(value)
                    break
                except ValueError:
                    continue
        out[key] = value
        i += 1
    return out


def serve(config: ServerConfig, uvicorn_opts: dict[str, Any] | None = None) -> None:
    """Run the server until interrupted. The artifact destination is checked first: an
    unusable one stops the start with a one-line ``TracklogError``."""
    import uvicorn

    from tracklog.server import startup

    startup.check_default_artifact_root(config)
    repo = startup.check_artifact_destination(config)
    if repo is not None:
        startup.sweep_stale_temp_files(repo)

    options: dict[str, Any] = {
        "host": config.host,
        "port": config.port,
        "http": TracklogHttpProtocol,
        "log_level": "debug" if config.dev else "info",
        "access_log": config.dev,
        "lifespan": "on",
        "timeout_keep_alive": 30,
        # The API is plain HTTP; "auto" would import a WebSocket library at every start.
        "ws": "none",
    }
    options.update(uvicorn_opts or {})
    if config.workers > 1 or config.dev:
        os.environ[CONFIG_ENV] = json.dumps(asdict(config))
        if config.dev:
            import tracklog

            options["reload"] = True
            options.setdefault("reload_dirs", [os.path.dirname(tracklog.__file__), os.getcwd()])
            logging.getLogger("tracklog").setLevel(logging.DEBUG)
        else:
            options["workers"] = config.workers
        uvicorn.run("tracklog.server.runner:app_from_env", factory=True, **options)
        return
    from tracklog.server.app import create_app

    uvicorn.run(create_app(config), **options)
