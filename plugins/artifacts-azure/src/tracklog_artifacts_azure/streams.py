"""Bounded-memory transfers: block-staged uploads and ranged downloads."""

from __future__ import annotations

import io
import uuid
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING

from tracklog.artifacts import ReadableStream

if TYPE_CHECKING:
    from azure.storage.blob import BlobClient

# Downloads fetch ranges of RANGE_SIZE, READ_AHEAD of them at once.
RANGE_SIZE = 4 * 1024 * 1024
READ_AHEAD = 3

# A file this size or smaller goes in one request; larger ones are staged in blocks of
# this size, at most ``UPLOAD_CONCURRENCY`` in flight: upload memory stays below
# BLOCK_SIZE * (UPLOAD_CONCURRENCY + 1) whatever the file size. 50,000 blocks of 8 MiB
# make Azure's largest block blob about 390 GiB through this path.
BLOCK_SIZE = 8 * 1024 * 1024
UPLOAD_CONCURRENCY = 4


def _fill(stream: ReadableStream, size: int) -> bytes:
    """Read up to ``size`` bytes, looping over short reads; less only at end of stream."""
    parts = []
    missing = size
    while missing:
        chunk = stream.read(missing)
        if not chunk:
            break
        parts.append(chunk)
        missing -= len(chunk)
    return b"".join(parts)


def upload(blob: BlobClient, stream: ReadableStream, block_size: int = BLOCK_SIZE) -> None:
    """Store ``stream`` as ``blob``. Large streams are staged as uncommitted blocks and
    committed in one call, so a reader sees the old blob or the new one, never half."""
    from azure.storage.blob import BlobBlock

    first = _fill(stream, block_size)
    if len(first) < block_size:
        blob.upload_blob(first, overwrite=True)
        return
    # Block ids must have one length within a blob; a fresh prefix per write keeps two
    # concurrent writers of one path from mixing their blocks.
    write_id = uuid.uuid4().hex
    block_ids: list[str] = []
    pending: deque[Future] = deque()
    with ThreadPoolExecutor(UPLOAD_CONCURRENCY, thread_name_prefix="azure-block") as pool:
        data = first
        try:
            while data:
                block_id = f"{write_id}-{len(block_ids):06d}"
                block_ids.append(block_id)
                pending.append(pool.submit(blob.stage_block, block_id, data, len(data)))
                del data
                while len(pending) >= UPLOAD_CONCURRENCY:
                    pending.popleft().result()
                data = _fill(stream, block_size)
            while pending:
                pending.popleft().result()
        finally:
            for future in pending:
                future.cancel()
    blob.commit_block_list([BlobBlock(block_id=b) for b in block_ids])


class BlobReader(io.RawIOBase):
    """A readable stream over one version of a blob: ranges of ``range_size`` bytes are
    fetched ``read_ahead`` at a time in the background, each pinned to the blob's ETag
    (a blob overwritten mid-read fails the read instead of mixing two versions). Memory
    stays below ``range_size * (read_ahead + 1)`` whatever the blob's size."""

    def __init__(
        self,
        blob: BlobClient,
        size: int,
        etag: str,
        on_error: Callable[[Exception], Exception],
        range_size: int = RANGE_SIZE,
        read_ahead: int = READ_AHEAD,
    ) -> None:
        self._blob = blob
        self._etag = etag
        self._on_error = on_error
        self._todo = deque((o, min(range_size, size - o)) for o in range(0, size, range_size))
        self._pending: deque[Future] = deque()
        self._pool = (
            ThreadPoolExecutor(read_ahead, thread_name_prefix="azure-range")
            if len(self._todo) > 1
            else None
        )
        self._read_ahead = read_ahead
        self._buffer = memoryview(b"")

    def _fetch(self, offset: int, length: int) -> bytes:
        from azure.core import MatchConditions

        downloader = self._blob.download_blob(
            offset=offset,
            length=length,
            etag=self._etag,
            match_condition=MatchConditions.IfNotModified,
            max_concurrency=1,
        )
        return downloader.readall()

    def _next_range(self) -> bytes | None:
        if self._pool is None:
            return self._fetch(*self._todo.popleft()) if self._todo else None
        while self._todo and len(self._pending) < self._read_ahead:
            self._pending.append(self._pool.submit(self._fetch, *self._todo.popleft()))
        return self._pending.popleft().result() if self._pending else None

    def readable(self) -> bool:
        return True

    def readinto(self, target) -> int:  # noqa: ANN001 - any writable buffer
        while not self._buffer:
            try:
                chunk = self._next_range()
            except Exception as exc:
                self.close()
                raise self._on_error(exc) from None
            if chunk is None:
                return 0
            self._buffer = memoryview(chunk)
        n = min(len(target), len(self._buffer))
        target[:n] = self._buffer[:n]
        self._buffer = self._buffer[n:]
        return n

    def close(self) -> None:
        self._todo.clear()
        for future in self._pending:
            future.cancel()
        self._pending.clear()
        if self._pool is not None:
            self._pool.shutdown(wait=False)
        self._buffer = memoryview(b"")
        super().close()
