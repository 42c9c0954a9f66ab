"""uvicorn's httptools protocol with TCP_NODELAY, one write per response, limits on
request headers, and a request log line with each request's duration.

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

On plain TCP connections, GET requests are offered the ASGI extension
``http.response.zerocopysend``: a response may hand over an open regular file, whose bytes
then go from the file to the socket with ``os.sendfile`` (never through Python's memory;
see :meth:`TracklogHttpProtocol._zerocopy`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import select
import socket
import stat
import time
from dataclasses import dataclass
from functools import partial
from typing import Any, cast

import httptools
import orjson
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from tracklog import config as cfg
from tracklog.server import threads

_FLUSH_AT = 256 * 1024
#: The ASGI extension for sending an open file's bytes from the file to the socket.
ZEROCOPY = "http.response.zerocopysend"
#: Bytes handed to one ``os.sendfile`` call (each in a worker thread: reading a file that
#: is not cached must not hold the event loop).
_SENDFILE_STEP = 8 * 1024 * 1024
#: Whether this platform has ``os.sendfile`` (Windows has not).
_SENDFILE = hasattr(os, "sendfile")
#: Milliseconds a worker thread waits for a full socket to take more of a file before it
#: leaves the wait to the event loop.
_FULL_WAIT_MS = 10
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
        #: The socket's descriptor on a plain TCP connection, else -1.
        self.fd = -1
        sock = transport.get_extra_info("socket")
        if sock is not None and transport.get_extra_info("sslcontext") is None \
                and transport.get_extra_info("ssl_object") is None:
            with contextlib.suppress(OSError, AttributeError, ValueError):
                self.fd = sock.fileno()

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
            if self.fd >= 0 and not transport.get_write_buffer_size():
                try:
                    sent = os.write(self.fd, data)
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
    configuration by :func:`tracklog.server.runner.configure`, in the main process and in
    worker processes)."""

    timeout: float = cfg.DEFAULT_HEADER_TIMEOUT
    max_size: int = cfg.DEFAULT_MAX_HEADER_SIZE
    access_log: bool = False


LIMITS = HeaderLimits()


def _pump(sock: int, src: int, offset: int, count: int) -> tuple[int, bool]:
    """In a worker thread: ``os.sendfile`` ``count`` bytes of ``src`` from ``offset`` to
    the non-blocking socket ``sock``. While the socket is full it waits for it here, up
    to _FULL_WAIT_MS at a time: a reader that keeps up costs no hop back to the event
    loop, one that does not gives the thread back. Returns (bytes sent, whether it
    stopped on a full socket); fewer bytes and not full at the end of the file."""
    poller = select.poll()
    poller.register(sock, select.POLLOUT)
    done = 0
    while done < count:
        try:
            sent = os.sendfile(sock, src, offset + done, count - done)
        except BlockingIOError:
            if not poller.poll(_FULL_WAIT_MS):
                return done, True
            continue
        if not sent:
            break
        done += sent
    return done, False


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
        self._writable_waiter: asyncio.Future[None] | None = None
        if LIMITS.access_log:
            self._response_line = _ResponseLine()
            # uvicorn only calls the access logger's info(): the stand-in is enough.
            self.access_logger = cast(logging.Logger, self._response_line)
            self.access_log = True
        else:  # uvicorn would log whenever its access logger has a handler up the tree
            self.access_log = False
        self._arm_header_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_header_timer()
        if self._writable_waiter is not None and not self._writable_waiter.done():
            self._writable_waiter.set_result(None)
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
        zerocopy = (_SENDFILE and self._coalescing.fd >= 0
                    and self.parser.get_method() == b"GET")
        if zerocopy:
            self.scope["extensions"] = {**self.scope.get("extensions", {}), ZEROCOPY: {}}
        super().on_headers_complete()
        cycle = self.cycle
        if cycle is not previous:
            if self.access_log:
                cycle.on_response = partial(self._response_complete, self._started)
            if zerocopy:
                # The cycle's task has not started yet: it will call this send.
                cycle.send = partial(self._send, cycle, cycle.send)  # type: ignore[method-assign]

    # -- zero-copy file responses ----------------------------------------------------------

    async def _send(self, cycle: Any, send: Any, message: Any) -> None:
        if message["type"] == ZEROCOPY:
            await self._zerocopy(cycle, message)
        else:
            await send(message)

    async def _zerocopy(self, cycle: Any, message: Any) -> None:
        """Send ``count`` bytes of ``message["file"]`` from ``offset`` (by default its
        position and the rest of it) as part of the response body, with ``os.sendfile``:
        the kernel moves them from the page cache to the socket, in worker threads
        (see _pump); a socket that stays full is waited for on the event loop, holding
        no thread."""
        if not cycle.response_started or cycle.response_complete or cycle.chunked_encoding \
                or cycle.scope["method"] == "HEAD":
            raise RuntimeError(f"'{ZEROCOPY}' is for the body of a response of known length")
        if cycle.disconnected:
            return
        file = message["file"]
        src = file.fileno()
        info = os.fstat(src)
        if not stat.S_ISREG(info.st_mode):
            raise RuntimeError(f"'{ZEROCOPY}' sends regular files only")
        offset = message.get("offset")
        if offset is None:
            offset = file.tell()
        count = message.get("count")
        if count is None:
            count = max(0, info.st_size - offset)
        if count > cycle.expected_content_length:
            raise RuntimeError("Response content longer than Content-Length")
        self._coalescing.flush()
        if self.transport.get_write_buffer_size():  # bytes queued ahead: keep their order
            await self._copy_file(cycle, src, offset, count)
        else:
            await self._sendfile(cycle, src, offset, count)
        if not message.get("more_body", False):
            await cycle.send({"type": "http.response.body", "body": b""})

    async def _sendfile(self, cycle: Any, src: int, offset: int, count: int) -> None:
        # A duplicate of the socket's descriptor, ours until closed: the transport closes
        # its own when the client leaves, and a number reused by the next connection
        # must never receive these bytes.
        sock = os.dup(self._coalescing.fd)
        try:
            while count > 0 and not cycle.disconnected:
                try:
                    sent, full = await threads.run_sync(_pump, sock, src, offset,
                                                        min(count, _SENDFILE_STEP))
                except OSError:  # the client has gone (reset, broken pipe)
                    cycle.disconnected = True
                    self.transport.close()
                    return
                offset += sent
                count -= sent
                cycle.expected_content_length -= sent
                if full:
                    await self._writable(sock)
                elif not sent:
                    raise RuntimeError("Response content shorter than Content-Length")
        finally:
            os.close(sock)

    async def _copy_file(self, cycle: Any, src: int, offset: int, count: int) -> None:
        """The same bytes through the transport, a chunk at a time."""
        while count > 0:
            chunk = await threads.run_sync(os.pread, src, min(count, _FLUSH_AT), offset)
            if not chunk:
                raise RuntimeError("Response content shorter than Content-Length")
            await cycle.send({"type": "http.response.body", "body": chunk, "more_body": True})
            offset += len(chunk)
            count -= len(chunk)

    async def _writable(self, sock: int) -> None:
        """Wait until the socket takes data again, or the connection is lost."""
        ready: asyncio.Future[None] = self.loop.create_future()
        self._writable_waiter = ready

        def writable() -> None:
            if not ready.done():
                ready.set_result(None)

        self.loop.add_writer(sock, writable)
        try:
            await ready
        finally:
            self.loop.remove_writer(sock)
            self._writable_waiter = None

    # -- one line per request ------------------------------------------------------------

    def _response_complete(self, started: float) -> None:
        REQUEST_LOG.write(self._response_line.args, (time.perf_counter() - started) * 1000)
        self.on_response_complete()
