"""The artifact proxy's streams: a request body read piece by piece in a worker thread,
and uploads/downloads through the application that come back byte for byte."""

from __future__ import annotations

import os

import anyio
import anyio.to_thread
import pytest

from tracklog.artifacts.base import CHUNK_SIZE
from tracklog.config import ServerConfig
from tracklog.errors import TracklogError
from tracklog.server.streams import BodyReader

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
