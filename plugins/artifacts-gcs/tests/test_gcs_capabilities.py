"""What the conformance kit does not (yet) check: paged listings, a second repository on
the same URI, multipart uploads through plain HTTP PUTs, presigned downloads, chunked
transfers."""

from __future__ import annotations

import io
import random
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from google.cloud import storage

from tracklog.artifacts import CompletedPart
from tracklog.entities import FileInfo
from tracklog.errors import ErrorCode, TracklogError
from tracklog.plugins import resolve_repository
from tracklog_artifacts_gcs.multipart import UPLOADS
from tracklog_artifacts_gcs.repository import GCSArtifactRepository
from tracklog_artifacts_gcs.settings import Settings


def write(repo, path: str, data: bytes) -> None:
    repo.write_artifact(path, io.BytesIO(data))


def read(repo, path: str) -> bytes:
    with repo.open_artifact(path) as f:
        return f.read()


def objects_under(repo: GCSArtifactRepository, below: str = "") -> list[str]:
    """Every object name under the repository root, straight from the service."""
    prefix = repo.prefix + "/" + below
    return sorted(b.name for b in storage.Client().list_blobs(repo.bucket_name, prefix=prefix))


@pytest.fixture
def repo(repo_uri, signing_key) -> GCSArtifactRepository:
    return GCSArtifactRepository(repo_uri, list_page_size=4)


# -- listing and deleting past one page ------------------------------------------------------


def test_listing_follows_every_page(repo):
    """23 files and 9 directories under one directory, four names per service page: the
    listing has every entry with its size."""
    files = {f"many/f{i:02d}.txt": b"x" * i for i in range(23)}
    files.update({f"many/d{i}/inner.txt": b"y" for i in range(9)})
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda item: write(repo, *item), files.items()))
    listed = repo.list_artifacts("many")
    expected = [FileInfo(f"many/d{i}", True) for i in range(9)]
    expected += [FileInfo(f"many/f{i:02d}.txt", False, i) for i in range(23)]
    assert listed == sorted(expected, key=lambda f: f.path)


def test_delete_past_one_page_spares_prefix_siblings(repo):
    """A directory of 30 objects (several pages) goes; 'many2' and 'many.txt' stay."""
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda i: write(repo, f"many/sub{i % 3}/f{i}", b"z"), range(30)))
    write(repo, "many2/keep.txt", b"k")
    write(repo, "many.txt", b"k")
    repo.delete_artifacts("many")
    assert repo.list_artifacts() == [FileInfo("many.txt", False, 1), FileInfo("many2", True)]
    assert objects_under(repo) == [f"{repo.prefix}/many.txt", f"{repo.prefix}/many2/keep.txt"]


def test_second_repository_on_the_same_uri_sees_writes(repo):
    """A repository opened through the plugin registry on the same URI reads what the
    first wrote, and the first sees the second's delete."""
    write(repo, "dir/shared.bin", b"shared")
    other = resolve_repository(repo.artifact_uri)
    assert isinstance(other, GCSArtifactRepository)
    assert read(other, "dir/shared.bin") == b"shared"
    assert other.list_artifacts("dir") == [FileInfo("dir/shared.bin", False, 6)]
    other.delete_artifacts("dir")
    assert repo.file_info("dir/shared.bin") is None


# -- chunked transfers ---------------------------------------------------------------------


class Trickle(io.RawIOBase):
    """A stream that returns at most 1,000 bytes per read, like a slow socket."""

    def __init__(self, data: bytes) -> None:
        self._data = memoryview(data)

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        size = 1000 if size is None or size < 0 else min(size, 1000)
        piece, self._data = self._data[:size], self._data[size:]
        return bytes(piece)


def test_chunked_upload_and_download(repo_uri, signing_key):
    """256 KiB upload and download chunks: a 1 MiB + 1 byte file arriving in 1,000-byte
    reads goes up as a resumable upload and comes back by ranges, byte for byte."""
    settings = Settings(upload_chunk_size=256 * 1024, download_chunk_size=256 * 1024)
    repo = GCSArtifactRepository(repo_uri, settings=settings)
    data = random.Random(3).randbytes(1024 * 1024 + 1)
    repo.write_artifact("big/file.bin", Trickle(data))
    assert repo.file_info("big/file.bin") == FileInfo("big/file.bin", False, len(data))
    chunks = list(repo.iter_artifact("big/file.bin", chunk_size=100_000))
    assert b"".join(chunks) == data
    assert max(map(len, chunks)) <= 100_000


def test_content_type_follows_the_name(repo):
    write(repo, "report.json", b"{}")
    write(repo, "blob", b"?")
    bucket = storage.Client().bucket(repo.bucket_name)
    assert bucket.get_blob(f"{repo.prefix}/report.json").content_type == "application/json"
    assert bucket.get_blob(f"{repo.prefix}/blob").content_type == "application/octet-stream"


# -- multipart uploads ---------------------------------------------------------------------


def upload_parts(credentials, parts: list[bytes]) -> list[CompletedPart]:
    """What a client does: one plain HTTP PUT per part, to the URL and headers given."""
    done = []
    with httpx.Client(timeout=30) as http:
        for credential, data in zip(credentials, parts, strict=True):
            answer = http.put(credential.url, content=data, headers=credential.headers)
            assert answer.status_code in (200, 201), answer.text
            done.append(CompletedPart(credential.part_number, answer.headers.get("ETag", "")))
    return done


def test_multipart_upload_gives_the_exact_bytes(repo):
    parts = [random.Random(i).randbytes(300_000 + i) for i in range(3)]
    upload_id, credentials = repo.create_multipart_upload("models/weights.bin", len(parts))
    assert [c.part_number for c in credentials] == [1, 2, 3]
    done = upload_parts(credentials, parts)
    # Parts in flight are objects, not artifacts.
    assert len(objects_under(repo, UPLOADS + "/")) == 3
    assert repo.list_artifacts() == []
    repo.complete_multipart_upload("models/weights.bin", upload_id, done[::-1])
    assert read(repo, "models/weights.bin") == b"".join(parts)
    assert repo.list_artifacts() == [FileInfo("models", True)]
    assert objects_under(repo) == [f"{repo.prefix}/models/weights.bin"]


def test_multipart_upload_of_many_parts_composes_in_levels(repo):
    """70 parts need three compose calls of 32 and one more: order is kept."""
    parts = [b"%03d;" % i for i in range(1, 71)]
    upload_id, credentials = repo.create_multipart_upload("many.txt", len(parts))
    done = upload_parts(credentials, parts)
    repo.complete_multipart_upload("many.txt", upload_id, done)
    assert read(repo, "many.txt") == b"".join(parts)
    assert objects_under(repo) == [f"{repo.prefix}/many.txt"]


def test_multipart_abort_leaves_nothing(repo):
    upload_id, credentials = repo.create_multipart_upload("gone.bin", 2)
    upload_parts(credentials, [b"a" * 10, b"b" * 10])
    repo.abort_multipart_upload("gone.bin", upload_id)
    assert repo.list_artifacts() == []
    assert objects_under(repo) == []
    with pytest.raises(TracklogError) as err:
        repo.complete_multipart_upload("gone.bin", upload_id, [CompletedPart(1, "")])
    assert err.value.error_code == ErrorCode.INVALID_PARAMETER_VALUE


def test_multipart_refuses_bad_completions(repo):
    upload_id, credentials = repo.create_multipart_upload("a.bin", 2)
    upload_parts(credentials[:1], [b"only the first"])
    cases = [
        ("a.bin", upload_id, [CompletedPart(1, ""), CompletedPart(2, "")], "Part 2"),
        ("b.bin", upload_id, [CompletedPart(1, "")], "not an upload of 'b.bin'"),
        ("a.bin", "../../escape", [CompletedPart(1, "")], "upload_id"),
        ("a.bin", upload_id, [], "at least one"),
        ("a.bin", upload_id, [CompletedPart(1, ""), CompletedPart(1, "")], "more than once"),
    ]
    for path, ident, parts, message in cases:
        with pytest.raises(TracklogError) as err:
            repo.complete_multipart_upload(path, ident, parts)
        assert err.value.error_code == ErrorCode.INVALID_PARAMETER_VALUE
        assert message in err.value.message
    assert repo.file_info("a.bin") is None and repo.file_info("b.bin") is None
    with pytest.raises(TracklogError) as err:
        repo.create_multipart_upload("x.bin", 0)
    assert "num_parts" in err.value.message


# -- presigned downloads -------------------------------------------------------------------


def test_presigned_download_returns_the_bytes(repo):
    data = random.Random(5).randbytes(70_000)
    write(repo, "dir/data.bin", data)
    url, headers, size = repo.presigned_download_url("dir/data.bin")
    assert size == len(data)
    assert "X-Goog-Signature=" in url
    assert httpx.get(url, headers=headers).content == data
    ranged = httpx.get(url, headers={**headers, "Range": "bytes=100-199"})
    assert ranged.status_code == 206 and ranged.content == data[100:200]


def test_presigned_download_of_missing_file_is_not_found(repo):
    with pytest.raises(TracklogError) as err:
        repo.presigned_download_url("ghost.bin")
    assert err.value.error_code == ErrorCode.RESOURCE_DOES_NOT_EXIST
    assert "ghost.bin" in err.value.message


def test_credentials_that_cannot_sign_say_so(repo, monkeypatch):
    """Anonymous credentials with no key file cannot sign: one clear line, no traceback."""
    write(repo, "f.txt", b"f")
    monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS")
    with pytest.raises(TracklogError) as err:
        repo.presigned_download_url("f.txt")
    assert err.value.error_code == ErrorCode.PERMISSION_DENIED
    assert err.value.message.startswith(f"{repo.artifact_uri}: cannot sign URLs")
    assert "GOOGLE_APPLICATION_CREDENTIALS" in err.value.message
    assert "\n" not in err.value.message


class Failing(io.RawIOBase):
    """A stream that breaks after ``good`` bytes, like a client that disconnects."""

    def __init__(self, good: int) -> None:
        self._left = good

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        if self._left <= 0:
            raise ConnectionResetError("client went away")
        size = self._left if size is None or size < 0 else min(size, self._left)
        self._left -= size
        return b"n" * size


def test_failed_upload_leaves_the_old_file(repo_uri, signing_key):
    """An upload that breaks after two resumable chunks never replaces the file."""
    settings = Settings(upload_chunk_size=256 * 1024, download_chunk_size=256 * 1024)
    repo = GCSArtifactRepository(repo_uri, settings=settings)
    write(repo, "model.bin", b"old")
    with pytest.raises(ConnectionResetError):
        repo.write_artifact("model.bin", Failing(600 * 1024))
    assert read(repo, "model.bin") == b"old"
    assert objects_under(repo) == [f"{repo.prefix}/model.bin"]


def test_reader_never_mixes_versions(repo_uri, signing_key):
    """A file replaced while it is being read fails the read instead of splicing the
    new version's bytes after the old one's."""
    settings = Settings(upload_chunk_size=256 * 1024, download_chunk_size=256 * 1024)
    repo = GCSArtifactRepository(repo_uri, settings=settings)
    write(repo, "f.bin", b"a" * (600 * 1024))
    stream = repo.open_artifact("f.bin")
    assert stream.read(1000) == b"a" * 1000
    write(repo, "f.bin", b"b" * (600 * 1024))
    with pytest.raises(TracklogError) as err:
        while stream.read(256 * 1024):
            pass
    assert err.value.error_code == ErrorCode.RESOURCE_CONFLICT
    assert "f.bin" in err.value.message and "replaced" in err.value.message
