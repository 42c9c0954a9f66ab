"""The artifact proxy's streams: a request body read piece by piece in a worker thread,
and uploads/downloads through the application that come back byte for byte."""

from __future__ import annotations

import asyncio
import gc
import os
import time
import weakref

import anyio
import anyio.to_thread
import pytest

from tracklog.artifacts.base import CHUNK_SIZE
from tracklog.config import ServerConfig
from tracklog.errors import TracklogError
from tracklog.server.streams import READ_AHEAD_BODIES, STREAM_CHUNK, BodyReader

PIECES = [b"a" * 10, b"", b"b" * 70_000, b"c" * 3, b"d" * 1_500_000, b"e" * 65_536]
BODY = b"".join(PIECES)


def _consume(pieces: list[bytes], work, limit: int | None = None):
    async def main():
        async def chunks():
            for piece in pieces:
                yield piece

        reader = BodyReader(chunks(), limit)
        return await anyio.to_thread.run_sync(work, reader)

    return anyio.run(main)


def test_read_returns_at_most_size_and_everything_in_order():
    def work(reader: BodyReader) -> list[bytes]:
        out = []
        for size in (1, 5, 100_000, 7):
            out.append(reader.read(size))
        while chunk := reader.read(300_000):
            assert 0 < len(chunk) <= 300_000
            out.append(chunk)
        assert reader.read(10) == b""
        return out

    got = _consume(PIECES, work)
    assert [len(c) for c in got[:4]] == [1, 5, len(got[2]), 7]
    assert 0 < len(got[2]) <= 100_000
    assert b"".join(got) == BODY


def test_read_all_and_readinto_fill_the_buffer():
    assert _consume(PIECES, lambda r: r.read()) == BODY

    def work(reader: BodyReader) -> list[bytes]:
        buffer = bytearray(1024 * 1024)
        out = []
        while n := reader.readinto(buffer):
            out.append(bytes(buffer[:n]))
        return out

    got = _consume(PIECES, work)
    assert [len(c) for c in got] == [1024 * 1024, len(BODY) - 1024 * 1024]
    assert b"".join(got) == BODY


@pytest.mark.parametrize("pieces", [PIECES, [], [b"", b"tiny"]], ids=["large", "empty", "small"])
def test_prefetch_gathers_the_first_chunk_on_the_loop(pieces):
    """prefetch takes the first chunk (or the whole body if smaller) without a thread;
    the thread then reads the rest, and the body comes back whole and in order."""
    async def main():
        async def chunks():
            for piece in pieces:
                yield piece

        reader = BodyReader(chunks())
        await reader.prefetch()
        first = reader.bytes_read
        return first, await anyio.to_thread.run_sync(reader.read)

    first, body = anyio.run(main)
    whole = b"".join(pieces)
    assert body == whole
    if len(whole) < CHUNK_SIZE:
        assert first == len(whole)
    else:
        assert CHUNK_SIZE <= first < len(whole)


def test_body_limit():
    with pytest.raises(TracklogError, match="exceeds 1000 bytes"):
        _consume(PIECES, lambda r: r.read(), limit=1000)


def test_upload_in_pieces_and_download_round_trip(tmp_path):
    from fastapi.testclient import TestClient

    from tracklog.server import create_app

    config = ServerConfig(
        backend_store_uri=f"sqlite:///{tmp_path / 'streams.db'}",
        artifacts_destination=str(tmp_path / "artifacts"),
        allowed_hosts=["testserver"],
    )
    payload = os.urandom(3 * 1024 * 1024 + 12345)
    url = "/api/2.0/mlflow-artifacts/artifacts/0/run/artifacts/blob.bin"

    def pieces():
        for start in range(0, len(payload), 99_991):
            yield payload[start : start + 99_991]

    with TestClient(create_app(config)) as client:
        assert client.put(url, content=pieces()).status_code == 200
        r = client.get(url)
        assert r.status_code == 200
        assert r.headers["content-length"] == str(len(payload))
        assert r.content == payload
    assert (tmp_path / "artifacts" / "0" / "run" / "artifacts" / "blob.bin").read_bytes() == payload


def test_reader_may_stop_before_the_end():
    assert _consume(PIECES, lambda r: r.read(10)) == b"a" * 10


def _counted(count: int, yielded: list[int]):
    async def chunks():
        for i in range(count):
            yielded.append(i)
            yield bytes([i]) * STREAM_CHUNK

    return chunks()


def _wait_for(condition, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.01)
    return condition()


def test_next_chunk_is_gathered_while_the_thread_works_on_one():
    """While the thread holds a chunk, the event loop gathers the next one; stop() ends
    that, and the body still comes back whole."""
    yielded: list[int] = []

    async def main():
        reader = BodyReader(_counted(4, yielded))

        def work():
            first = reader.read(STREAM_CHUNK)
            ahead = _wait_for(lambda: len(yielded) == 2, 5)
            return first, ahead, first + reader.read()

        first, ahead, whole = await anyio.to_thread.run_sync(work)
        reader.stop()
        return first, ahead, whole, reader in BodyReader.reading_ahead

    first, ahead, whole, still_counted = anyio.run(main)
    assert first == b"\x00" * STREAM_CHUNK and ahead
    assert whole == b"".join(bytes([i]) * STREAM_CHUNK for i in range(4))
    assert not still_counted


def test_no_reading_ahead_beyond_a_few_bodies(monkeypatch):
    """With READ_AHEAD_BODIES bodies reading ahead, another holds one chunk at a time."""
    others = [BodyReader(_counted(0, [])) for _ in range(READ_AHEAD_BODIES)]
    monkeypatch.setattr(BodyReader, "reading_ahead", weakref.WeakSet(others))
    yielded: list[int] = []

    async def main():
        reader = BodyReader(_counted(4, yielded))

        def work():
            reader.read(STREAM_CHUNK)
            return _wait_for(lambda: len(yielded) > 1, 0.3)

        gathered_ahead = await anyio.to_thread.run_sync(work)
        reader.stop()
        return gathered_ahead

    assert anyio.run(main) is False
    assert yielded == [0] and set(BodyReader.reading_ahead) == set(others)


def test_a_failure_ahead_of_a_thread_that_failed_is_not_left_unseen():
    """The thread fails (a full disk, say) after the chunk gathered ahead failed too (the
    client left): stop() takes that failure, so asyncio never reports it as unseen."""
    reported: list[dict] = []

    async def main():
        asyncio.get_running_loop().set_exception_handler(lambda _loop, c: reported.append(c))

        async def chunks():
            yield b"x" * STREAM_CHUNK
            raise OSError("the client left")

        reader = BodyReader(chunks())

        def work(body: BodyReader):
            body.read(STREAM_CHUNK)
            assert _wait_for(lambda: body._ahead is not None and body._ahead.done(), 5)
            raise RuntimeError("disk full")

        with pytest.raises(RuntimeError):
            await anyio.to_thread.run_sync(work, reader)
        reader.stop()
        counted = reader in BodyReader.reading_ahead
        del reader
        gc.collect()
        await asyncio.sleep(0)
        return counted

    assert anyio.run(main) is False
    assert reported == []
