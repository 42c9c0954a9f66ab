"""Behaviour beyond today's kit: paging, reopening, presigned downloads, multipart uploads.

SAS rules are checked for real: Azurite enforces SAS expiry, scope, permission and
tampering the way Azure does (403).
"""

from __future__ import annotations

import io
import random
import time

import httpx
import pytest

from tracklog.artifacts import (
    ArtifactRepository,
    CompletedPart,
    MultipartUploadRepository,
    PresignedDownloadRepository,
)
from tracklog.entities import FileInfo
from tracklog.errors import ErrorCode, TracklogError
from tracklog.plugins import resolve_repository
from tracklog_artifacts_azure.factory import open_repository
from tracklog_artifacts_azure.signing import AzureSigningArtifactRepository


def _write(repo, path: str, data: bytes) -> None:
    repo.write_artifact(path, io.BytesIO(data))


def _read(repo, path: str) -> bytes:
    with repo.open_artifact(path) as f:
        return f.read()


@pytest.fixture
def repo(azure_env, prefix):
    return open_repository(azure_env.uri(prefix))


# -- listing, reopening, siblings -------------------------------------------------------


def test_listing_follows_every_page(azure_env, prefix):
    """With three entries per service page, a directory of 14 entries lists whole."""
    repo = open_repository(azure_env.uri(prefix), results_per_page=3)
    for i in range(10):
        _write(repo, f"d/f{i:02d}.txt", b"x" * i)
    for i in range(4):
        _write(repo, f"d/sub{i}/inner.txt", b"y")
    expected = [FileInfo(f"d/f{i:02d}.txt", False, i) for i in range(10)]
    expected += [FileInfo(f"d/sub{i}", True, None) for i in range(4)]
    assert repo.list_artifacts("d") == sorted(expected, key=lambda f: f.path)


def test_recursive_delete_follows_every_page(azure_env, prefix):
    """Deleting a directory with more blobs than one page removes them all."""
    repo = open_repository(azure_env.uri(prefix), results_per_page=2)
    for i in range(7):
        _write(repo, f"d/{i}/f.txt", b"f")
    _write(repo, "keep.txt", b"k")
    repo.delete_artifacts("d")
    assert repo.list_artifacts() == [FileInfo("keep.txt", False, 1)]


def test_second_repository_sees_first_writes(azure_env, prefix):
    """A repository resolved again from the same URI reads what the first one wrote."""
    first = resolve_repository(azure_env.uri(prefix))
    _write(first, "dir/a.txt", b"alpha")
    second = resolve_repository(first.artifact_uri)
    assert second is not first
    assert _read(second, "dir/a.txt") == b"alpha"
    assert second.list_artifacts("dir") == [FileInfo("dir/a.txt", False, 5)]


def test_root_delete_spares_sibling_prefixes(azure_env, prefix):
    """Deleting the root of '<p>' leaves the repository at '<p>2' untouched."""
    repo = open_repository(azure_env.uri(prefix))
    sibling = open_repository(azure_env.uri(prefix + "2"))
    _write(repo, "a.txt", b"a")
    _write(sibling, "b.txt", b"b")
    repo.delete_artifacts()
    assert repo.list_artifacts() == []
    assert sibling.list_artifacts() == [FileInfo("b.txt", False, 1)]


def test_trailing_slash_and_abfss_name_the_same_container(azure_env, prefix):
    """'wasbs://…/p/' and 'abfss://…dfs…/p' reach the blobs of 'wasbs://…/p'."""
    _write(open_repository(azure_env.uri(prefix)), "x/y.txt", b"y")
    for uri in (azure_env.uri(prefix + "/"), azure_env.uri(prefix, scheme="abfss")):
        assert _read(resolve_repository(uri), "x/y.txt") == b"y", uri


def test_block_staged_write_is_exact(azure_env, prefix):
    """A stream longer than one block is staged block by block and committed whole."""
    repo = open_repository(azure_env.uri(prefix), block_size=64 * 1024)
    data = bytes(range(256)) * 1500  # 384,000 bytes: six blocks, the last one short
    _write(repo, "big.bin", data)
    assert _read(repo, "big.bin") == data
    assert repo.file_info("big.bin") == FileInfo("big.bin", False, len(data))
    _write(repo, "big.bin", b"short")
    assert _read(repo, "big.bin") == b"short"


def test_ranged_read_ahead_is_exact(azure_env, prefix):
    """A blob of many ranges reads back exactly, whatever sizes the reader asks for."""
    repo = open_repository(azure_env.uri(prefix), range_size=10_000)
    data = random.Random(4).randbytes(123_457)
    _write(repo, "r.bin", data)
    assert b"".join(repo.iter_artifact("r.bin", chunk_size=3_333)) == data
    with repo.open_artifact("r.bin") as f:
        assert f.read(5) == data[:5]
        assert f.read() == data[5:]
    with repo.open_artifact("r.bin") as f:  # closed early: no error, no hang
        assert f.read(1) == data[:1]


def test_blob_overwritten_mid_read_fails_cleanly(azure_env, prefix):
    """A reader pinned to one version never mixes it with the next: the read fails with
    RESOURCE_CONFLICT naming the artifact."""
    repo = open_repository(azure_env.uri(prefix), range_size=10_000)
    _write(repo, "r.bin", b"a" * 100_000)
    with repo.open_artifact("r.bin") as f:
        assert f.read(10_000) == b"a" * 10_000
        _write(repo, "r.bin", b"b" * 100_000)
        with pytest.raises(TracklogError) as excinfo:
            while f.read(10_000):
                pass
    assert excinfo.value.error_code == ErrorCode.RESOURCE_CONFLICT
    assert f"{prefix}/r.bin" in excinfo.value.message
    assert "changed while it was read" in excinfo.value.message


# -- presigned downloads ------------------------------------------------------------------


def test_presigned_download_returns_exact_bytes(repo):
    assert isinstance(repo, PresignedDownloadRepository)
    data = bytes(range(256)) * 40
    _write(repo, "dir/data.bin", data)
    url, headers, size = repo.presigned_download_url("dir/data.bin")
    assert size == len(data)
    response = httpx.get(url, headers=headers)
    assert response.status_code == 200
    assert response.content == data
    ranged = httpx.get(url, headers={**headers, "Range": "bytes=10-19"})
    assert ranged.status_code == 206
    assert ranged.content == data[10:20]


def test_presigned_download_of_missing_or_directory(repo):
    _write(repo, "dir/a.txt", b"a")
    with pytest.raises(TracklogError) as missing:
        repo.presigned_download_url("dir/none.txt")
    assert missing.value.error_code == ErrorCode.RESOURCE_DOES_NOT_EXIST
    for directory in ("dir", ""):
        with pytest.raises(TracklogError) as excinfo:
            repo.presigned_download_url(directory)
        assert excinfo.value.error_code == ErrorCode.INVALID_PARAMETER_VALUE


def test_presigned_download_expires(azure_env, prefix):
    """A URL with a 4 s lifetime works at once and is refused (403) once it expired."""
    repo = open_repository(azure_env.uri(prefix), download_ttl=4)
    assert isinstance(repo, AzureSigningArtifactRepository)  # the key can sign
    _write(repo, "a.txt", b"alpha")
    url, headers, _ = repo.presigned_download_url("a.txt")
    assert httpx.get(url, headers=headers).content == b"alpha"
    time.sleep(5.5)
    assert httpx.get(url, headers=headers).status_code == 403


def test_presigned_download_is_scoped_and_read_only(repo):
    """The SAS of one blob opens no other blob, allows no write, and refuses tampering."""
    _write(repo, "a.txt", b"alpha")
    _write(repo, "b.txt", b"bravo")
    url, _, _ = repo.presigned_download_url("a.txt")
    other = url.replace("/a.txt?", "/b.txt?")
    assert httpx.get(other).status_code == 403
    put = httpx.put(url, content=b"evil", headers={"x-ms-blob-type": "BlockBlob"})
    assert put.status_code == 403
    tampered = url.replace("sp=r", "sp=rw")
    assert tampered != url
    assert httpx.get(tampered).status_code == 403
    assert _read(repo, "a.txt") == b"alpha"


# -- multipart uploads through presigned part URLs -------------------------------------------


def _multipart(repo, path: str, parts: list[bytes]) -> tuple[str, list[CompletedPart]]:
    upload_id, credentials = repo.create_multipart_upload(path, len(parts))
    assert [c.part_number for c in credentials] == list(range(1, len(parts) + 1))
    done = []
    for credential, data in zip(credentials, parts, strict=True):
        response = httpx.put(credential.url, content=data, headers=credential.headers)
        assert response.status_code == 201, response.text
        done.append(CompletedPart(credential.part_number, response.headers.get("ETag", "")))
    return upload_id, done


def test_multipart_upload_gives_exact_bytes(repo):
    assert isinstance(repo, MultipartUploadRepository) and isinstance(repo, ArtifactRepository)
    parts = [b"a" * 1000, b"b" * 1000, b"tail"]
    upload_id, done = _multipart(repo, "mp/file.bin", parts)
    assert repo.file_info("mp/file.bin") is None  # nothing visible before completion
    repo.complete_multipart_upload("mp/file.bin", upload_id, list(reversed(done)))
    assert _read(repo, "mp/file.bin") == b"".join(parts)


def test_multipart_abort_leaves_nothing_listable(repo):
    upload_id, _ = _multipart(repo, "mp/file.bin", [b"a" * 100, b"b"])
    repo.abort_multipart_upload("mp/file.bin", upload_id)
    assert repo.list_artifacts() == []
    assert repo.file_info("mp/file.bin") is None


def test_multipart_abort_of_an_overwrite_keeps_the_existing_file(repo):
    """Aborting an upload that would replace a file leaves that file as it was."""
    _write(repo, "mp/file.bin", b"kept")
    upload_id, _ = _multipart(repo, "mp/file.bin", [b"a" * 100, b"b"])
    repo.abort_multipart_upload("mp/file.bin", upload_id)
    assert _read(repo, "mp/file.bin") == b"kept"


def test_multipart_complete_with_a_missing_part_is_refused(repo):
    upload_id, credentials = repo.create_multipart_upload("mp/file.bin", 2)
    httpx.put(credentials[0].url, content=b"first").raise_for_status()
    parts = [CompletedPart(1, ""), CompletedPart(2, "")]
    with pytest.raises(TracklogError) as excinfo:
        repo.complete_multipart_upload("mp/file.bin", upload_id, parts)
    assert excinfo.value.error_code == ErrorCode.INVALID_PARAMETER_VALUE
    assert "mp/file.bin" in excinfo.value.message
    assert repo.file_info("mp/file.bin") is None


def test_multipart_part_urls_write_only_their_blob(repo):
    """A part URL cannot read, and cannot stage blocks into another blob."""
    _write(repo, "other.txt", b"other")
    _, credentials = repo.create_multipart_upload("mp/file.bin", 1)
    url = credentials[0].url
    assert httpx.get(url.replace("comp=block&", "")).status_code == 403
    elsewhere = url.replace("/mp/file.bin?", "/other.txt?")
    assert httpx.put(elsewhere, content=b"x").status_code == 403


def test_multipart_part_urls_expire(azure_env, prefix):
    repo = open_repository(azure_env.uri(prefix), upload_ttl=4)
    assert isinstance(repo, AzureSigningArtifactRepository)  # the key can sign
    _, credentials = repo.create_multipart_upload("mp/file.bin", 1)
    time.sleep(5.5)
    assert httpx.put(credentials[0].url, content=b"late").status_code == 403


@pytest.mark.parametrize(
    ("upload_id", "num_parts"), [("not-an-id", 1), ("0" * 32, 0), ("0" * 32, 50_001)]
)
def test_multipart_bad_input_is_invalid(repo, upload_id, num_parts):
    with pytest.raises(TracklogError) as excinfo:
        if num_parts == 1:
            repo.complete_multipart_upload("f.bin", upload_id, [CompletedPart(1, "")])
        else:
            repo.create_multipart_upload("f.bin", num_parts)
    assert excinfo.value.error_code == ErrorCode.INVALID_PARAMETER_VALUE
