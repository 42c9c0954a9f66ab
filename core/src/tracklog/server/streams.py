"""Streaming bridges between ASGI and the synchronous artifact repositories.

Uploads: :class:`BodyReader` is a blocking file object over the request body that a
repository reads in a worker thread, pulling one chunk at a time from the event loop.
Downloads: :class:`StreamResponse` reads the repository stream in a worker thread and
sends each chunk as it comes. Neither ever holds a whole file in memory.
"""

from __future__ import annotations

import io
from collections.abc import AsyncIterator, Mapping
from typing import Any, BinaryIO

import anyio
import anyio.from_thread
import anyio.to_thread

from tracklog import errors
from tracklog.artifacts.base import CHUNK_SIZE


class BodyReader(io.RawIOBase):
    """A readable binary stream over an ASGI request body, for use in a worker thread."""

    def __init__(self, chunks: AsyncIterator[bytes], limit: int | None = None) -> None:
        self._chunks = chunks
        self._buffer = b""
        self._done = False
        self._limit = limit
        self.bytes_read = 0

    def readable(self) -> bool:
        return True

    async def _next(self) -> bytes | None:
        # Gather up to a chunk's worth per thread hop: ASGI servers deliver ~64 KiB pieces.
        parts: list[bytes] = []
        size = 0
        while size < CHUNK_SIZE:
            try:
                part = await self._chunks.__anext__()
            except StopAsyncIteration:
                break
            parts.append(part)
            size += len(part)
        if not parts:
            return None
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def _fill(self) -> None:
        while not self._buffer and not self._done:
            chunk = anyio.from_thread.run(self._next)
            if chunk is None:
                self._done = True
            else:
                self.bytes_read += len(chunk)
                if self._limit is not None and self.bytes_read > self._limit:
                    raise errors.invalid(f"Request body exceeds {self._limit} bytes")
                self._buffer = chunk

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            parts = []
            while True:
                self._fill()
                if not self._buffer:
                    return b"".join(parts)
                parts.append(self._buffer)
                self._buffer = b""
        self._fill()
        out, self._buffer = self._buffer[:size], self._buffer[size:]
        return out

    def readinto(self, b: Any) -> int:
        data = self.read(len(b))
        b[: len(data)] = data
        return len(data)


class StreamResponse:
    """An ASGI response streaming a binary file object in chunks read in a worker thread."""

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

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
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
            while True:
                chunk = await anyio.to_thread.run_sync(self.stream.read, CHUNK_SIZE)
                if not chunk:
                    break
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b""})
        finally:
            await anyio.to_thread.run_sync(self.stream.close)
