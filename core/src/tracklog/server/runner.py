"""Running the application on uvicorn, with TCP_NODELAY, one write per response and
limits on request headers.

uvicorn writes a response's headers and body with separate ``transport.write`` calls;
with Nagle's algorithm on, the second small segment waits for the client's delayed ACK
(~40 ms per request on keep-alive connections). :class:`TracklogHttpProtocol` sets
TCP_NODELAY on every accepted socket and coalesces the writes of one event-loop turn
into a single ``send``.

uvicorn's httptools protocol has neither a deadline for a request's headers nor a limit
on their size (httptools buffers a header of any length). :class:`TracklogHttpProtocol`
adds both: headers not complete ``--header-timeout`` seconds after the request's first
byte (or after the connection opened, for a connection that sends nothing) get 408, and
a request line plus headers over ``--max-header-size`` bytes gets 431; either closes the
connection.

Every answered request is logged as one line with its duration (``--quiet``: none), and
the listening socket is bound before the application starts, so a port in use stops the
start with one line.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import logging
import os
import shlex
import socket
import sys
import time
from dataclasses import asdict, dataclass, replace
from functools import partial
from typing import Any, cast

import httptools
import orjson
import uvicorn
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from tracklog import config as cfg
from tracklog.config import ServerConfig
from tracklog.errors import TracklogError
from tracklog.perf import settle_heap

CONFIG_ENV = "TRACKLOG_SERVER_CONFIG_JSON"
_FLUSH_AT = 256 * 1024
#: Seconds a refused connection stays half-open, discarding input, before it is closed.
_LINGER = 2.0


class _CoalescingTransport:
    """Buffers writes made during one loop iteration and sends them together.

    On a plain TCP connection with nothing queued, the data goes straight to the socket
    with ``os.write``, which lets go of the GIL during the system call: uvloop's
    ``transport.write`` holds it, and a loopback send (which runs the receiving side's
    TCP work too) was a quarter of the event loop's GIL time per small request, time
    the worker threads could not run. What the socket does not take goes to the
    transport, which queues it and applies flow control as before."""

    def __init__(self, transport: Any, loop: Any) -> None:
        self._transport = transport
        self._loop = loop
        self._buffer: list[bytes] = []
        self._size = 0
        self._scheduled = False
        self._fd = -1
        sock = transport.get_extra_info("socket")
        if sock is not None and transport.get_extra_info("sslcontext") is None \
                and transport.get_extra_info("ssl_object") is None:
            with contextlib.suppress(OSError, AttributeError, ValueError):
                self._fd = sock.fileno()

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
            transport = self._transport
            if transport.is_closing():
                return
            if self._fd >= 0 and not transport.get_write_buffer_size():
                try:
                    sent = os.write(self._fd, data)
                except OSError:  # full, or failed: the transport handles it as it would
                    sent = 0
                if sent == len(data):
                    return
                data = data[sent:]
            transport.write(data)

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


@dataclass
class HeaderLimits:
    """The header limits of every connection of this process (set from the server
    configuration by :func:`serve` and, in worker processes, by :func:`app_from_env`)."""

    timeout: float = cfg.DEFAULT_HEADER_TIMEOUT
    max_size: int = cfg.DEFAULT_MAX_HEADER_SIZE
    access_log: bool = False


LIMITS = HeaderLimits()


class _RequestLog:
    """Writes the line of each answered request to stderr, in uvicorn's format plus the
    duration: directly, since a line through the logging module costs several times
    more than the write itself."""

    def __init__(self) -> None:
        self.stream: Any = None
        self.prefix = "INFO:     "

    def open(self, stream: Any) -> None:
        self.stream = stream
        tty = getattr(stream, "isatty", lambda: False)()
        self.prefix = ("\x1b[32mINFO\x1b[0m" if tty else "INFO") + ":     "

    def write(self, args: tuple[Any, ...], elapsed_ms: float) -> None:
        if len(args) == 5:
            client, method, path, version, status = args
            line = f'{client} - "{method} {path} HTTP/{version}" {status} {elapsed_ms:.1f} ms\n'
        else:  # a uvicorn that reports other fields
            line = f"{' '.join(map(str, args))} {elapsed_ms:.1f} ms\n"
        try:
            self.stream.write(self.prefix + line)
            self.stream.flush()
        except (OSError, ValueError):  # stderr closed or gone: the response still counts
            pass


REQUEST_LOG = _RequestLog()


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


class _ResponseLine:
    """Takes the place of uvicorn's access logger on one connection: uvicorn hands it the
    client, request line and status as each response starts (responses on a connection
    are sequential), and the line is logged when the response completes, with its
    duration."""

    __slots__ = ("args",)

    def __init__(self) -> None:
        self.args: tuple[Any, ...] = ()

    def info(self, _message: str, *args: Any) -> None:
        self.args = args


class _Refused(Exception):
    """Raised from a parser callback to stop parsing a request that is being refused."""


class TracklogHttpProtocol(HttpToolsProtocol):
    def connection_made(self, transport: Any) -> None:
        set_nodelay(transport)
        self._coalescing = _CoalescingTransport(transport, self.loop)
        # It forwards everything but write/flush/close/abort to the real transport.
        super().connection_made(cast(asyncio.Transport, self._coalescing))
        self._in_headers = False  # between a request's first byte and its last header
        self._header_bytes = 0
        self._header_timer: Any = None
        self._header_deadline: float | None = None
        self._refusal: tuple[int, str, str] | None = None
        self._discarding = False
        self._started = 0.0
        if LIMITS.access_log:
            self._response_line = _ResponseLine()
            # uvicorn only calls the access logger's info(): the stand-in is enough.
            self.access_logger = cast(logging.Logger, self._response_line)
            self.access_log = True
        self._arm_header_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_header_timer()
        super().connection_lost(exc)

    # -- header deadline and size --------------------------------------------------------

    # A request's headers usually arrive in the read that starts it: rather than a timer
    # made and cancelled per request, one timer stays armed and, when it fires, looks at
    # the deadline of the headers awaited then (if any), waiting on for a later one.

    def _arm_header_timer(self) -> None:
        if LIMITS.timeout and self._header_deadline is None:
            self._header_deadline = self.loop.time() + LIMITS.timeout
            if self._header_timer is None:
                self._header_timer = self.loop.call_at(self._header_deadline,
                                                       self._header_timer_fired)

    def _headers_arrived(self) -> None:
        self._header_deadline = None

    def _cancel_header_timer(self) -> None:
        self._header_deadline = None
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _header_timer_fired(self) -> None:
        self._header_timer = None
        deadline = self._header_deadline
        if deadline is None:
            return
        if self.loop.time() < deadline:
            self._header_timer = self.loop.call_at(deadline, self._header_timer_fired)
            return
        self._header_timeout()

    def _header_timeout(self) -> None:
        self._header_deadline = None
        if self.transport.is_closing():
            return
        if self.cycle is not None and not self.cycle.response_complete:
            # A pipelined request behind one still being answered: wait for that one.
            self._arm_header_timer()
        elif self._in_headers:
            self._refuse(408, "DEADLINE_EXCEEDED",
                         f"Request headers not received within {LIMITS.timeout:g} s")
        else:
            self.transport.close()  # opened and never used

    def _refuse(self, status: int, code: str, message: str) -> None:
        self._cancel_header_timer()
        self._in_headers = False
        body = orjson.dumps({"error_code": code, "message": message})
        self.logger.warning("Refused a request: %s", message)
        self.transport.write(b"".join([
            STATUS_LINE[status],
            b"content-type: application/json\r\n",
            b"content-length: %d\r\n" % len(body),
            b"connection: close\r\n\r\n",
            body,
        ]))
        # Closing with unread input makes the kernel answer with a reset, which can destroy
        # the answer before the client reads it: half-close instead, discard what the
        # client still sends, and close when it does (or after a moment).
        self._discarding = True
        self._coalescing.flush()
        if self.transport.can_write_eof():
            self.transport.write_eof()
        self.loop.call_later(_LINGER, self.transport.close)

    def _too_large(self) -> tuple[int, str, str]:
        return (431, "BAD_REQUEST",
                f"Request headers exceed {LIMITS.max_size} bytes (see --max-header-size)")

    def data_received(self, data: bytes) -> None:
        if self._discarding:
            return
        self._unset_keepalive_if_required()
        was_in_headers = self._in_headers
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
            return
        except httptools.HttpParserError:
            if self._refusal is not None:
                self._refuse(*self._refusal)
                return
            msg = "Invalid HTTP request received."
            self.logger.warning(msg)
            self.send_400_response(msg)
            return
        # Count only reads that were header bytes from end to end; on_headers_complete
        # measures exactly, this only stops a header that never ends.
        if was_in_headers and self._in_headers:
            self._header_bytes += len(data)
            if self._header_bytes > LIMITS.max_size:
                self._refuse(*self._too_large())

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_headers = True
        self._header_bytes = 0
        self._arm_header_timer()
        if self.access_log:
            self._started = time.perf_counter()

    def on_headers_complete(self) -> None:
        self._in_headers = False
        self._headers_arrived()
        size = len(self.url) + sum(len(k) + len(v) + 4 for k, v in self.headers)
        if size > LIMITS.max_size:
            self._refusal = self._too_large()
            raise _Refused
        previous = self.cycle
        super().on_headers_complete()
        if self.access_log and self.cycle is not previous:
            self.cycle.on_response = partial(self._response_complete, self._started)

    # -- one line per request ------------------------------------------------------------

    def _response_complete(self, started: float) -> None:
        REQUEST_LOG.write(self._response_line.args, (time.perf_counter() - started) * 1000)
        self.on_response_complete()


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
