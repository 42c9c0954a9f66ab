"""Bounded-memory transfers: ranged reads of one object generation, and a helper that
fills a buffer from a stream that may return short reads."""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

from tracklog import errors
from tracklog.artifacts import ReadableStream


def read_full(stream: ReadableStream, size: int) -> bytes:
    """Up to ``size`` bytes; fewer only at the end of ``stream`` (a socket-backed stream
    may return less than asked long before its end)."""
    first = stream.read(size)
    if not first or len(first) == size:
        return first or b""
    pieces = [first]
    have = len(first)
    while have < size:
        piece = stream.read(size - have)
        if not piece:
            break
        pieces.append(piece)
        have += len(piece)
    return b"".join(pieces)


class BlobStream(io.RawIOBase):
    """A readable stream over one object, fetched ``chunk_size`` bytes per ranged GET.

    ``blob`` carries the generation it was loaded with, so every range comes from the
    same version: an object replaced mid-read fails the read instead of mixing versions.
    ``guard(action)`` wraps each request to translate service failures.
    """

    def __init__(
        self,
        blob: Any,
        chunk_size: int,
        request_kwargs: dict[str, Any],
        guard: Callable[[str], Any],
    ) -> None:
        self._blob = blob
        self._generation = blob.generation
        self._size: int = blob.size or 0
        self._chunk_size = chunk_size
        self._kwargs = request_kwargs
        self._guard = guard
        self._pos = 0  # offset of the start of self._chunk
        self._chunk = memoryview(b"")
        self._offset = 0  # position inside self._chunk

    def readable(self) -> bool:
        return True

    def _next_chunk(self) -> bool:
        start = self._pos + len(self._chunk)
        if start >= self._size:
            return False
        end = min(start + self._chunk_size, self._size) - 1
        try:
            with self._guard(f"reading '{self._blob.name}'"):
                data = self._blob.download_as_bytes(
                    start=start, end=end, raw_download=True, checksum=None, **self._kwargs
                )
        except errors.TracklogError as exc:
            # The service answers 404 for a generation that is gone.
            if exc.error_code != errors.ErrorCode.RESOURCE_DOES_NOT_EXIST:
                raise
            data = b""
        # Each answer names its generation (and the client adopts it): an emulator that
        # ignores the pinned generation is caught here too.
        if len(data) != end - start + 1 or self._blob.generation != self._generation:
            raise errors.TracklogError(
                f"'{self._blob.name}' was replaced or deleted while it was being read",
                errors.ErrorCode.RESOURCE_CONFLICT,
            )
        self._pos, self._chunk, self._offset = start, memoryview(data), 0
        return True

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            pieces: list[bytes] = []
            while part := self.read(self._chunk_size):
                pieces.append(part)
            return b"".join(pieces)
        if self._offset >= len(self._chunk) and not self._next_chunk():
            return b""
        piece = self._chunk[self._offset : self._offset + size]
        self._offset += len(piece)
        return bytes(piece)

    def readinto(self, buffer: Any) -> int:
        piece = self.read(len(memoryview(buffer)))
        memoryview(buffer).cast("B")[: len(piece)] = piece
        return len(piece)
