"""What goes over the wire: every request names the expected bucket owner, and the extra
upload arguments reach the upload requests. moto ignores ExpectedBucketOwner, so the
requests are watched through botocore's ``before-send`` event."""

from __future__ import annotations

import io
import os
import random

import boto3
import httpx
import pytest

from tracklog.artifacts import CompletedPart
from tracklog_artifacts_s3.repository import S3ArtifactRepository
from tracklog_artifacts_s3.upload import PART_SIZE

OWNER = "123456789012"


class Recorder:
    def __init__(self):
        self.requests = []

    def __call__(self, request, event_name, **_):
        request.operation = event_name.rsplit(".", 1)[-1]
        self.requests.append(request)


@pytest.fixture
def watch():
    """Open a repository and record every request its (shared) client sends during the
    test; the recorder is removed afterwards."""
    registered = []

    def open_watched(uri: str) -> tuple[S3ArtifactRepository, Recorder]:
        repo = S3ArtifactRepository(uri)
        recorder = Recorder()
        repo.client.meta.events.register("before-send.s3", recorder)
        registered.append((repo.client, recorder))
        return repo, recorder

    yield open_watched
    for client, recorder in registered:
        client.meta.events.unregister("before-send.s3", recorder)


def _exercise(repo: S3ArtifactRepository, tmp_path) -> None:
    """Every operation the repository has, including a managed multipart upload."""
    repo.write_artifact("small.txt", io.BytesIO(b"small"))
    big = tmp_path / "big.bin"
    big.write_bytes(random.Random(0).randbytes(PART_SIZE + 1000))
    repo.log_artifact(big, "dir")
    big_info, dir_info = repo.file_info("dir/big.bin"), repo.file_info("dir")
    assert big_info is not None and big_info.file_size == PART_SIZE + 1000
    assert dir_info is not None and dir_info.is_dir
    assert repo.file_info("missing") is None
    assert [f.path for f in repo.list_artifacts()] == ["dir", "small.txt"]
    assert b"".join(repo.iter_artifact("small.txt")) == b"small"
    upload_id, creds = repo.create_multipart_upload("mpu.bin", 1)
    response = httpx.put(creds[0].url, content=b"part", headers=creds[0].headers)
    assert response.status_code == 200
    repo.complete_multipart_upload(
        "mpu.bin", upload_id, [CompletedPart(1, response.headers["etag"])]
    )
    upload_id, _ = repo.create_multipart_upload("aborted.bin", 1)
    repo.abort_multipart_upload("aborted.bin", upload_id)
    url, headers, size = repo.presigned_download_url("mpu.bin")
    assert httpx.get(url, headers=headers).content == b"part"
    repo.delete_artifacts("dir")
    repo.delete_artifacts()


def test_expected_bucket_owner_on_every_request(bucket, monkeypatch, tmp_path, watch):
    monkeypatch.setenv("MLFLOW_S3_EXPECTED_BUCKET_OWNER", OWNER)
    repo, recorder = watch(f"s3://{bucket}/owned")
    _exercise(repo, tmp_path)
    operations = {r.operation for r in recorder.requests}
    assert {"PutObject", "CreateMultipartUpload", "UploadPart", "CompleteMultipartUpload",
            "HeadObject", "ListObjectsV2", "GetObject", "AbortMultipartUpload",
            "DeleteObjects"} <= operations
    missing = [r.operation for r in recorder.requests
               if r.headers.get("x-amz-expected-bucket-owner") != OWNER.encode()
               and r.headers.get("x-amz-expected-bucket-owner") != OWNER]
    assert missing == []


def test_presigned_urls_carry_the_owner_as_a_signed_header(bucket, monkeypatch):
    monkeypatch.setenv("MLFLOW_S3_EXPECTED_BUCKET_OWNER", OWNER)
    repo = S3ArtifactRepository(f"s3://{bucket}/owned")
    repo.write_artifact("f.txt", io.BytesIO(b"f"))
    _, creds = repo.create_multipart_upload("m.bin", 2)
    url, headers, _ = repo.presigned_download_url("f.txt")
    for signed_url, signed_headers in [(c.url, c.headers) for c in creds] + [(url, headers)]:
        assert signed_headers == {"x-amz-expected-bucket-owner": OWNER}
        assert "x-amz-expected-bucket-owner" in signed_url  # in X-Amz-SignedHeaders
        assert "X-Amz-Algorithm=AWS4-HMAC-SHA256" in signed_url


def test_no_owner_header_unless_configured(bucket, watch):
    repo, recorder = watch(f"s3://{bucket}/plain")
    repo.write_artifact("f.txt", io.BytesIO(b"f"))
    repo.list_artifacts()
    assert recorder.requests
    assert all("x-amz-expected-bucket-owner" not in r.headers for r in recorder.requests)


@pytest.mark.parametrize("size", [10, PART_SIZE + 10], ids=["single", "multipart"])
def test_extra_upload_args_reach_the_upload(bucket, monkeypatch, size, watch):
    monkeypatch.setenv(
        "MLFLOW_S3_UPLOAD_EXTRA_ARGS",
        '{"ContentType": "application/x-tracklog", "Metadata": {"team": "vision"},'
        ' "CacheControl": "no-store"}',
    )
    repo, recorder = watch(f"s3://{bucket}/extra")
    repo.write_artifact("f.bin", io.BytesIO(b"x" * size))
    first = recorder.requests[0]
    assert first.operation in ("PutObject", "CreateMultipartUpload")
    assert first.headers["Content-Type"] in (b"application/x-tracklog", "application/x-tracklog")
    head = boto3.client("s3", endpoint_url=os.environ["MLFLOW_S3_ENDPOINT_URL"]).head_object(
        Bucket=bucket, Key="extra/f.bin"
    )
    assert head["ContentType"] == "application/x-tracklog"
    assert head["Metadata"] == {"team": "vision"}
    assert head["CacheControl"] == "no-store"


def test_extra_upload_args_reach_presigned_multipart(bucket, monkeypatch):
    monkeypatch.setenv("MLFLOW_S3_UPLOAD_EXTRA_ARGS", '{"Metadata": {"team": "vision"}}')
    repo = S3ArtifactRepository(f"s3://{bucket}/extra")
    upload_id, creds = repo.create_multipart_upload("m.bin", 1)
    response = httpx.put(creds[0].url, content=b"part", headers=creds[0].headers)
    repo.complete_multipart_upload("m.bin", upload_id, [CompletedPart(1, response.headers["etag"])])
    head = repo.client.head_object(Bucket=bucket, Key="extra/m.bin")
    assert head["Metadata"] == {"team": "vision"}


def test_delete_batches_and_spares_prefix_siblings(bucket, watch):
    """Deleting a directory of more than one batch of keys removes all of them and leaves
    'dir2' and 'dir.txt' alone."""
    from concurrent.futures import ThreadPoolExecutor

    from tracklog.plugins import resolve_repository

    # The keys are written through a repository nobody records: setup, not what is tested.
    plain = resolve_repository(f"s3://{bucket}/p")
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda i: plain.write_artifact(f"dir/{i}", io.BytesIO(b"")), range(1001)))
    repo, recorder = watch(f"s3://{bucket}/p")
    repo.write_artifact("dir", io.BytesIO(b"a file named like the directory"))
    repo.write_artifact("dir2/x", io.BytesIO(b"x"))
    repo.write_artifact("dir.txt", io.BytesIO(b"y"))
    recorder.requests.clear()
    repo.delete_artifacts("dir")
    deletes = [r for r in recorder.requests if r.operation == "DeleteObjects"]
    assert len(deletes) == 2
    assert [(f.path, f.is_dir) for f in repo.list_artifacts()] == [
        ("dir.txt", False), ("dir2", True)
    ]
