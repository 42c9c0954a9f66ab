"""Running the application on uvicorn: the configuration of every process, the
listening socket bound before the application starts (a port in use stops the start
with one line), and worker processes. The HTTP protocol itself (TCP_NODELAY, one write
per response, header limits, the request log) is in :mod:`tracklog.server.protocol`.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import shlex
import socket
import sys
from dataclasses import asdict, replace
from typing import Any

import uvicorn

from tracklog.config import ServerConfig
from tracklog.errors import TracklogError
from tracklog.perf import settle_heap
from tracklog.server.protocol import LIMITS, REQUEST_LOG, TracklogHttpProtocol

CONFIG_ENV = "TRACKLOG_SERVER_CONFIG_JSON"


def tune_malloc() -> None:
    """At most two glibc malloc arenas in this process. glibc gives each thread that
    allocates an arena of its own (up to eight per core), and the megabyte chunks of
    artifact transfers and long responses freed in one thread's arena stay resident
    there: at 8 connections that took a server from 178 to 196 MiB, with two arenas it
    stays at 137. The threads' Python work holds the GIL anyway, so they seldom contend
    for an arena. Nothing to do outside glibc."""
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c") if sys.platform.startswith("linux") else None
    try:
        mallopt = ctypes.CDLL(name).mallopt if name else None
    except (OSError, AttributeError):
        mallopt = None
    if mallopt is not None:
        m_arena_max = -8
        mallopt(m_arena_max, 2)


def configure(config: ServerConfig) -> None:
    tune_malloc()
    LIMITS.timeout = config.header_timeout
    LIMITS.max_size = config.max_header_size
    LIMITS.access_log = config.access_log
    if config.access_log:
        REQUEST_LOG.open(sys.stderr)


def app_from_env() -> Any:
    """Application factory for worker processes (``--workers``, ``--dev``): the
    configuration travels in an environment variable."""
    from tracklog.server.app import create_app

    config = ServerConfig(**json.loads(os.environ[CONFIG_ENV]))
    configure(config)
    app = create_app(config)
    settle_heap()
    return app


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


#: uvicorn's exit status for a start that failed.
STARTUP_FAILURE = 3


def listen(host: str, port: int) -> list[socket.socket]:
    """Bound sockets for every address of ``host`` (as asyncio would bind them), or a
    one-line ``TracklogError``: a port in use is found here, before the application
    starts, rather than by uvicorn after it claimed a successful start."""
    try:
        infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM,
                                   flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise TracklogError(f"cannot listen on {host!r}: {exc.strerror}") from None
    sockets: list[socket.socket] = []
    try:
        for family, kind, proto, _, address in dict.fromkeys(
                (i[0], i[1], i[2], "", i[4]) for i in infos):
            sock = socket.socket(family, kind, proto)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind(address)
            sock.set_inheritable(True)
    except OSError as exc:
        for sock in sockets:
            sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise TracklogError(f"port {port} on {host} is already in use") from None
        raise TracklogError(f"cannot listen on port {port} of {host}: {exc.strerror}") from None
    return sockets


class _Server(uvicorn.Server):
    """uvicorn's server, printing the banner once the application has started."""

    banner: Any = None

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        settle_heap()
        if self.started and self.banner is not None:
            self.banner()


def serve(config: ServerConfig, uvicorn_opts: dict[str, Any] | None = None) -> None:
    """Run the server until interrupted. The artifact destination and the port are
    checked first: an unusable one stops the start with a one-line ``TracklogError``."""
    from tracklog.server import startup

    startup.check_default_artifact_root(config)
    repo = startup.check_artifact_destination(config)
    startup.check_plugins(config)

    extra = dict(uvicorn_opts or {})
    # --uvicorn-opts "--no-access-log" keeps meaning what it means to uvicorn users.
    config = replace(config, access_log=config.access_log and bool(extra.pop("access_log",
                                                                               True)))
    options: dict[str, Any] = {
        "host": config.host,
        "port": config.port,
        "http": TracklogHttpProtocol,
        "log_level": "debug" if config.dev else "info",
        # Requests are logged by TracklogHttpProtocol, with their duration.
        "access_log": False,
        "lifespan": "on",
        "timeout_keep_alive": 30,
        # The API is plain HTTP; "auto" would import a WebSocket library at every start.
        "ws": "none",
        # The header size limit, should --uvicorn-opts choose the h11 protocol instead.
        "h11_max_incomplete_event_size": config.max_header_size,
    }
    options.update(extra)
    if options["http"] is not TracklogHttpProtocol:  # another protocol: uvicorn's own lines
        options["access_log"] = config.access_log
    sockets = None
    port = options["port"]
    if options.get("fd") is None and options.get("uds") is None:
        sockets = listen(options["host"], options["port"])
        port = sockets[0].getsockname()[1]
    if repo is not None:
        startup.sweep_stale_temp_files(repo)
    configure(config)

    def banner() -> None:
        print(startup.banner(config, options["host"], port), file=sys.stderr, flush=True)

    if config.workers > 1 or config.dev:
        # uvicorn's supervisors bind the port themselves: this process only checked it.
        for sock in sockets or ():
            sock.close()
        options["port"] = port
        config = replace(config, port=port)
        os.environ[CONFIG_ENV] = json.dumps(asdict(config))
        if config.dev:
            import tracklog

            options["reload"] = True
            options.setdefault("reload_dirs", [os.path.dirname(tracklog.__file__), os.getcwd()])
            logging.getLogger("tracklog").setLevel(logging.DEBUG)
        else:
            options["workers"] = config.workers
        banner()
        uvicorn.run("tracklog.server.runner:app_from_env", factory=True, **options)
        return
    from tracklog.server.app import create_app

    server = None
    try:
        server = _Server(uvicorn.Config(create_app(config), **options))
        server.banner = banner
        server.run(sockets=sockets)
    except KeyboardInterrupt:
        pass
    finally:
        for sock in sockets or ():
            sock.close()
    if server is None or not server.started:
        sys.exit(STARTUP_FAILURE)
