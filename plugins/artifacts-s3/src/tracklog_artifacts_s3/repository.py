"""Artifacts in an S3 bucket (or an S3-compatible store) under ``s3://bucket/prefix``.

Keys are ``prefix/relative/path``; a "directory" is a common key prefix, so an object
store holds no empty directory. Uploads stream with a bounded number of parts in memory
(:mod:`tracklog_artifacts_s3.upload`); downloads stream the object body; listings follow
every page of ``ListObjectsV2``; deletes go in batches of 1,000 keys.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any, BinaryIO, TypeVar
from urllib.parse import urlparse

import boto3
from boto3.s3.transfer import S3Transfer
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from tracklog import errors
from tracklog.artifacts import (
    ArtifactRepository,
    CompletedPart,
    MultipartUploadRepository,
    PartCredential,
    PresignedDownloadRepository,
    ReadableStream,
    safe_relpath,
)
from tracklog.entities import FileInfo
from tracklog_artifacts_s3.failures import translate
from tracklog_artifacts_s3.settings import UPLOAD_EXTRA_ARGS, S3Settings, read_settings
from tracklog_artifacts_s3.upload import upload_stream

DELETE_BATCH = 1000
# Presigned part URLs must outlive the upload of a large part over a slow link.
PART_URL_TTL = 3600
OWNER_HEADER = "x-amz-expected-bucket-owner"

T = TypeVar("T")


def parse_s3_uri(uri: str) -> tuple[str, str]:
    """``(bucket, prefix)`` of ``s3://bucket/prefix``; the prefix has no outer slashes."""
    parsed = urlparse(uri)
    if parsed.scheme != "s3" or not parsed.netloc:
        raise errors.invalid(f"Not an S3 artifact URI (s3://bucket/prefix): {uri!r}")
    if parsed.query or parsed.fragment:
        raise errors.invalid(f"S3 artifact URIs take no query or fragment: {uri!r}")
    return parsed.netloc, parsed.path.strip("/")


def _expected_owner_handler(owner: str) -> Callable[..., None]:
    def add_owner(params: dict[str, Any], model: Any, **_: Any) -> None:
        if "ExpectedBucketOwner" in model.input_shape.members:
            params.setdefault("ExpectedBucketOwner", owner)

    return add_owner


def _make_client(settings: S3Settings) -> Any:
    config = Config(
        signature_version="s3v4",
        max_pool_connections=32,
        retries={"mode": "standard", "max_attempts": 3},
        connect_timeout=10,
        read_timeout=60,
    )
    kwargs: dict[str, Any] = {"config": config}
    if settings.endpoint_url:
        kwargs["endpoint_url"] = settings.endpoint_url
    if settings.region:
        kwargs["region_name"] = settings.region
    if settings.verify is not None:
        kwargs["verify"] = settings.verify
    client = boto3.session.Session().client("s3", **kwargs)
    if settings.expected_bucket_owner:
        client.meta.events.register(
            "before-parameter-build.s3", _expected_owner_handler(settings.expected_bucket_owner)
        )
    return client


# Clients are thread-safe and costly to make (~0.15 s, a connection pool each), and the
# server opens a repository per request for runs whose root is an s3:// URI: repositories
# with the same settings and the same credential environment share one client.
_CREDENTIAL_VARIABLES = (
    "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
    "AWS_SHARED_CREDENTIALS_FILE", "AWS_CONFIG_FILE",
)
_clients: dict[tuple[Any, ...], Any] = {}
_clients_lock = threading.Lock()


def shared_client(settings: S3Settings) -> Any:
    """The client for ``settings``, made once per settings and credential environment."""
    credentials = hashlib.sha256(
        "\0".join(os.environ.get(name, "") for name in _CREDENTIAL_VARIABLES).encode()
    ).hexdigest()
    key = (settings.endpoint_url, settings.region, settings.verify,
           settings.expected_bucket_owner, credentials)
    with _clients_lock:
        client = _clients.get(key)
        if client is None:
            if len(_clients) >= 16:
                _clients.pop(next(iter(_clients)))
            client = _clients[key] = _make_client(settings)
        return client


class S3ArtifactRepository(
    ArtifactRepository, MultipartUploadRepository, PresignedDownloadRepository
):
    """Files under ``s3://bucket/prefix``; settings come from the environment (see
    :mod:`tracklog_artifacts_s3.settings`) and are checked here, at creation."""

    def __init__(self, artifact_uri: str, settings: S3Settings | None = None) -> None:
        super().__init__(artifact_uri)
        self.bucket, self.prefix = parse_s3_uri(artifact_uri)
        self.settings = settings if settings is not None else read_settings()
        unknown = sorted(set(self.settings.upload_extra_args) - set(S3Transfer.ALLOWED_UPLOAD_ARGS))
        if unknown:
            raise errors.invalid(
                f"{UPLOAD_EXTRA_ARGS} has arguments S3 uploads do not take: {', '.join(unknown)}"
            )
        self.presigned_url_lifetime = self.settings.presigned_ttl
        self.client = shared_client(self.settings)

    # -- keys ---------------------------------------------------------------------------

    def _key(self, path: str) -> str:
        if not path:
            return self.prefix
        return f"{self.prefix}/{path}" if self.prefix else path

    def _dir_prefix(self, path: str) -> str:
        key = self._key(path)
        return key + "/" if key else ""

    def _rel(self, key: str) -> str:
        return key[len(self.prefix) + 1 :] if self.prefix else key

    def _call(self, action: str, path: str, func: Callable[..., T], **kwargs: Any) -> T:
        try:
            return func(Bucket=self.bucket, **kwargs)
        except (ClientError, BotoCoreError) as exc:
            raise translate(exc, self._uri_of(path), action) from None

    def _uri_of(self, path: str) -> str:
        return f"s3://{self.bucket}/{self._key(path)}".rstrip("/")

    def _pages(self, action: str, path: str, **kwargs: Any) -> Iterator[dict[str, Any]]:
        paginator = self.client.get_paginator("list_objects_v2")
        try:
            yield from paginator.paginate(Bucket=self.bucket, **kwargs)
        except (ClientError, BotoCoreError) as exc:
            raise translate(exc, self._uri_of(path), action) from None

    # -- the contract -------------------------------------------------------------------

    def _stat(self, path: str) -> FileInfo | None:
        if path:
            try:
                head = self.client.head_object(Bucket=self.bucket, Key=self._key(path))
                return FileInfo(path, False, head["ContentLength"])
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") not in ("404", "NoSuchKey"):
                    raise translate(exc, self._uri_of(path), "stat") from None
            except BotoCoreError as exc:
                raise translate(exc, self._uri_of(path), "stat") from None
        # One key below the directory proves it exists; for the root this also proves the
        # bucket is there and readable, which is what the server's start-up check asks.
        page = self._call(
            "list", path, self.client.list_objects_v2, Prefix=self._dir_prefix(path), MaxKeys=1
        )
        if path == "" or page.get("KeyCount", 0) > 0:
            return FileInfo(path, True)
        return None

    def list_artifacts(self, path: str | None = None) -> list[FileInfo]:
        # A file path or a missing directory has no keys under "path/" and lists empty
        # without the extra stat round trip the base class makes.
        return sorted(self._list(safe_relpath(path)), key=lambda f: f.path)

    def _list(self, path: str) -> list[FileInfo]:
        prefix = self._dir_prefix(path)
        out: list[FileInfo] = []
        for page in self._pages("list", path, Prefix=prefix, Delimiter="/"):
            for obj in page.get("Contents", ()):
                name = obj["Key"][len(prefix) :]
                if name:  # "dir/" itself: a folder marker some tools create
                    out.append(FileInfo(self._rel(obj["Key"]), False, obj["Size"]))
            for common in page.get("CommonPrefixes", ()):
                name = common["Prefix"][len(prefix) :].rstrip("/")
                if name and "/" not in name:
                    out.append(FileInfo(self._rel(common["Prefix"]).rstrip("/"), True))
        return out

    def _open(self, path: str) -> BinaryIO:
        response = self._call("read", path, self.client.get_object, Key=self._key(path))
        return response["Body"]

    def _write(self, path: str, stream: ReadableStream) -> None:
        try:
            upload_stream(
                self.client, self.bucket, self._key(path), stream, self.settings.upload_extra_args
            )
        except (ClientError, BotoCoreError) as exc:
            raise translate(exc, self._uri_of(path), "upload") from None

    def _delete(self, path: str) -> None:
        keys: list[str] = []
        if path:
            keys.append(self._key(path))  # the file itself, never its prefix siblings
        for page in self._pages("delete", path, Prefix=self._dir_prefix(path)):
            keys.extend(obj["Key"] for obj in page.get("Contents", ()))
        for start in range(0, len(keys), DELETE_BATCH):
            batch = keys[start : start + DELETE_BATCH]
            response = self._call(
                "delete",
                path,
                self.client.delete_objects,
                Delete={"Objects": [{"Key": k} for k in batch], "Quiet": True},
            )
            failed = response.get("Errors") or []
            if failed:
                first = failed[0]
                raise translate(
                    ClientError({"Error": first}, "DeleteObjects"),
                    f"s3://{self.bucket}/{first.get('Key', '')}",
                    f"delete ({len(failed)} keys failed)",
                )

    # -- multipart upload through presigned part URLs -----------------------------------

    def _owner_headers(self) -> dict[str, str]:
        owner = self.settings.expected_bucket_owner
        # The owner is a signed header of every presigned URL: the client must send it.
        return {OWNER_HEADER: owner} if owner else {}

    def _presign(self, operation: str, params: dict[str, Any], ttl: int, path: str) -> str:
        try:
            return self.client.generate_presigned_url(
                operation, Params={"Bucket": self.bucket, **params}, ExpiresIn=ttl
            )
        except (ClientError, BotoCoreError) as exc:
            raise translate(exc, self._uri_of(path), "presign") from None

    def create_multipart_upload(
        self, path: str, num_parts: int
    ) -> tuple[str, list[PartCredential]]:
        path = safe_relpath(path)
        if not path:
            raise errors.invalid("Invalid artifact path: '' is the root directory")
        key = self._key(path)
        response = self._call(
            "start multipart upload of",
            path,
            self.client.create_multipart_upload,
            Key=key,
            **self.settings.upload_extra_args,
        )
        upload_id = response["UploadId"]
        headers = self._owner_headers()
        credentials = [
            PartCredential(
                number,
                self._presign(
                    "upload_part",
                    {"Key": key, "UploadId": upload_id, "PartNumber": number},
                    PART_URL_TTL,
                    path,
                ),
                dict(headers),
            )
            for number in range(1, num_parts + 1)
        ]
        return upload_id, credentials

    def complete_multipart_upload(
        self, path: str, upload_id: str, parts: Sequence[CompletedPart]
    ) -> None:
        path = safe_relpath(path)
        ordered = sorted(parts, key=lambda p: p.part_number)
        self._call(
            "complete multipart upload of",
            path,
            self.client.complete_multipart_upload,
            Key=self._key(path),
            UploadId=upload_id,
            MultipartUpload={
                "Parts": [{"PartNumber": p.part_number, "ETag": p.etag} for p in ordered]
            },
        )

    def abort_multipart_upload(self, path: str, upload_id: str) -> None:
        path = safe_relpath(path)
        self._call(
            "abort multipart upload of",
            path,
            self.client.abort_multipart_upload,
            Key=self._key(path),
            UploadId=upload_id,
        )

    # -- presigned downloads ------------------------------------------------------------

    def presigned_download_url(self, path: str) -> tuple[str, dict[str, str], int]:
        path, info = self._existing_file(path)
        url = self._presign(
            "get_object", {"Key": self._key(path)}, self.presigned_url_lifetime, path
        )
        return url, self._owner_headers(), info.file_size or 0
