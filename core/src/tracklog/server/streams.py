"""Streaming bridges between ASGI and the synchronous artifact repositories.

Uploads: :class:`BodyReader` is a blocking file object over the request body that a
repository reads in a worker thread, pulling one chunk at a time from the event loop. Its
first chunk is gathered on the event loop (:meth:`BodyReader.prefetch`) before any thread
is taken, so a body that trickles in or stalls holds no thread at all until a whole chunk
has come. Downloads: :class:`StreamResponse` reads the repository stream in a worker
thread and sends each chunk as it comes (each read is bounded by the repository, never by
the client, whose pace only slows the asynchronous sends); a local file goes from the file
to the socket instead where the server offers it (``http.response.zerocopysend``). Neither
ever holds a whole file in memory.
"""

from __future__ import annotations

import asyncio
import io
import os
import stat
import weakref
from collections import deque
from collections.abc import AsyncIterator, Mapping
from typing import Any, BinaryIO

import anyio
import anyio.from_thread
import anyio.to_thread

from tracklog import errors
from tracklog.perf import release_memory
from tracklog.server import threads
from tracklog.server.protocol import ZEROCOPY

#: Bytes a transfer holds per hop between the event loop and a worker thread. Each
#: connection holds up to about two of them (one in Python, one in the transport's
#: buffer): at 64 connections moving 10 MB files, 1 MiB chunks took a server to 206 MiB.
STREAM_CHUNK = 256 * 1024
#: A download's read while few are in flight in this process: fewer hops between thread
#: and loop (one client downloading 10 MB files: 1 MiB reads moved 149-160 files a
#: second, 256 KiB reads 112-121).
LARGE_CHUNK = 1024 * 1024
#: Downloads in flight in this process up to which each reads LARGE_CHUNK at a time.
LARGE_CHUNK_STREAMS = 4
#: Uploads in this process that may each gather their next chunk while a worker thread
#: writes the one before (one client uploading 200 MB files: 330 -> 265 ms each); beyond
#: them, each holds one chunk at a time, so that memory stays bounded.
READ_AHEAD_BODIES = 4
#: Transfers of at least this many bytes give the memory they freed back when done
#: (see release_memory).
RELEASE_AFTER = 4 * 1024 * 1024


class BodyReader(io.RawIOBase):
    """A readable binary stream over an ASGI request body, for use in a worker thread.

    The pieces the server delivers are kept as they come: ``read`` hands a whole piece
    over without copying when it fits, ``readinto`` copies once into the caller's buffer.
    """

    #: Bodies with a chunk gathered ahead now (changed on the event loop's thread).
    reading_ahead: weakref.WeakSet[BodyReader] = weakref.WeakSet()

    def __init__(self, chunks: AsyncIterator[bytes], limit: int | None = None) -> None:
        self._chunks = chunks
        self._parts: deque[bytes | memoryview] = deque()
        self._done = False
        self._limit = limit
        self._ahead: asyncio.Future[list[bytes]] | None = None
        self.bytes_read = 0

    def readable(self) -> bool:
        return True

    async def _gather(self) -> list[bytes]:
        # Gather up to a chunk's worth per thread hop: ASGI servers deliver ~64 KiB pieces.
        parts: list[bytes] = []
        size = 0
        while size < STREAM_CHUNK:
            try:
                part = await self._chunks.__anext__()
            except StopAsyncIteration:
                break
            if part:
                parts.append(part)
                size += len(part)
        return parts

    def _accept(self, parts: list[bytes]) -> None:
        if not parts:
            self._done = True
            return
        self.bytes_read += sum(map(len, parts))
        if self._limit is not None and self.bytes_read > self._limit:
            raise errors.invalid(f"Request body exceeds {self._limit} bytes")
        self._parts.extend(parts)

    async def prefetch(self) -> None:
        """Gather the first chunk (or the whole body, if shorter) on the event loop."""
        if not self._parts and not self._done:
            self._accept(await self._gather())

    def _fill(self) -> bool:
        """Have a piece buffered; False at the end of the body."""
        while not self._parts:
            if self._done:
                return False
            self._accept(anyio.from_thread.run(self._next))
        return bool(self._parts)

    async def _next(self) -> list[bytes]:
        # The chunk gathered ahead, if any. While few bodies are read ahead in this
        # process, the one after it is gathered while the thread writes this one.
        ahead = self._ahead
        if ahead is None:
            parts = await self._gather()
        else:
            self._ahead = None
            BodyReader.reading_ahead.discard(self)
            parts = await ahead
        if parts and len(BodyReader.reading_ahead) < READ_AHEAD_BODIES:
            BodyReader.reading_ahead.add(self)
            self._ahead = asyncio.ensure_future(self._gather())
        return parts

    def stop(self) -> None:
        """On the event loop, once the thread is done with the body: no more reading
        ahead (a reader dropped without it stops counting once collected)."""
        ahead, self._ahead = self._ahead, None
        BodyReader.reading_ahead.discard(self)
        if ahead is not None:
            if ahead.done():
                if not ahead.cancelled():
                    ahead.exception()  # seen: a timeout or a disconnect, after a failure
            else:
                ahead.cancel()

    def _take(self, size: int) -> list[bytes | memoryview]:
        """Up to ``size`` bytes of the buffered pieces, without copying."""
        out: list[bytes | memoryview] = []
        parts = self._parts
        while parts and size > 0:
            part = parts[0]
            if len(part) <= size:
                out.append(parts.popleft())
                size -= len(part)
            else:
                view = memoryview(part)
                out.append(view[:size])
                parts[0] = view[size:]
                size = 0
        return out

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            pieces: list[bytes | memoryview] = []
            while self._fill():
                pieces.extend(self._parts)
                self._parts.clear()
            return b"".join(pieces)
        if not self._fill():
            return b""
        pieces = self._take(size)
        if len(pieces) == 1 and type(pieces[0]) is bytes:
            return pieces[0]
        return b"".join(pieces)

    def readinto(self, b: Any) -> int:
        """Fill ``b`` (fewer bytes only at the end of the body)."""
        view = memoryview(b).cast("B")
        n = 0
        while n < len(view) and self._fill():
            for piece in self._take(len(view) - n):
                view[n : n + len(piece)] = piece
                n += len(piece)
        return n


class StreamResponse:
    """An ASGI response streaming a binary file object in chunks read in a worker thread:
    LARGE_CHUNK at a time while no more than LARGE_CHUNK_STREAMS are in flight, so that
    memory stays bounded however many clients download at once, STREAM_CHUNK beyond."""

    #: Responses streaming now (counted on the event loop's thread).
    in_flight = 0

    def __init__(
        self,
        stream: BinaryIO,
        size: int | None,
        headers: Mapping[str, str],
        status_code: int = 200,
    ) -> None:
        self.stream = stream
        self.size = size
        self.headers = dict(headers)
        self.status_code = status_code

    def _regular_file(self) -> int | None:
        """The size of the stream's open file when it is a regular file read from its
        start (its size as opened: the file may have been replaced since it was listed),
        else None."""
        try:
            fd = self.stream.fileno()
            info = os.fstat(fd)
            if stat.S_ISREG(info.st_mode) and self.stream.tell() == 0:
                return info.st_size
        except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
            pass
        return None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        zerocopy = (ZEROCOPY in scope.get("extensions", {}) and scope.get("method") == "GET"
                    and self.status_code == 200)
        file_size = self._regular_file() if zerocopy else None
        if file_size is not None:
            self.size = file_size
        raw_headers = [(k.lower().encode("latin-1"), v.encode("latin-1"))
                       for k, v in self.headers.items()]
        if self.size is not None:
            raw_headers.append((b"content-length", str(self.size).encode()))
        try:
            await send({"type": "http.response.start", "status": self.status_code,
                        "headers": raw_headers})
            if scope.get("method") == "HEAD":
                await send({"type": "http.response.body", "body": b""})
                return
            if file_size is not None:
                await send({"type": ZEROCOPY, "file": self.stream, "offset": 0,
                            "count": file_size, "more_body": False})
                return
            StreamResponse.in_flight += 1
            try:
                while True:
                    size = (LARGE_CHUNK if StreamResponse.in_flight <= LARGE_CHUNK_STREAMS
                            else STREAM_CHUNK)
                    chunk = await threads.run_sync(self.stream.read, size)
                    if not chunk:
                        break
                    await send({"type": "http.response.body", "body": chunk,
                                "more_body": True})
            finally:
                StreamResponse.in_flight -= 1
            await send({"type": "http.response.body", "body": b""})
        finally:
            await anyio.to_thread.run_sync(self._close)

    def _close(self) -> None:
        self.stream.close()
        # In the thread: trimming the heap must not hold the event loop.
        if (self.size or 0) >= RELEASE_AFTER:
            release_memory()
