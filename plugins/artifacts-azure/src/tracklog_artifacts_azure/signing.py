"""SAS-based capabilities: presigned downloads and multipart uploads through block staging.

A SAS is signed with the account key (connection string or ``AZURE_STORAGE_ACCESS_KEY``)
or, under ``DefaultAzureCredential``, with a user delegation key. Every SAS is scoped to
one blob, one permission and a short lifetime.

Multipart uploads map onto Azure's block staging: each part URL is a ``Put Block``
(``comp=block&blockid=…``) on the target blob with a write-only SAS; completing commits
the block list in part order. Azure has no upload object to abort: uncommitted blocks are
invisible to readers and listings, are discarded by the next commit of that blob, and are
garbage-collected by the service after seven days. Aborting an upload of a new file
commits an empty block list only while the blob is still missing and deletes that empty
blob at once, which discards the staged parts, so completing afterwards fails; aborting
an overwrite leaves the existing file untouched and its staged parts to the service.
"""

from __future__ import annotations

import base64
import re
import threading
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

from tracklog import errors
from tracklog.artifacts import (
    CompletedPart,
    MultipartUploadRepository,
    PartCredential,
    PresignedDownloadRepository,
    safe_relpath,
)
from tracklog_artifacts_azure.options import DOWNLOAD_TTL, UPLOAD_TTL
from tracklog_artifacts_azure.repository import AzureBlobArtifactRepository

MAX_PARTS = 50_000  # Azure's limit of committed blocks per blob
_UPLOAD_ID = re.compile(r"[0-9a-f]{32}")
# Starting the SAS a little in the past absorbs clock skew between this host and Azure.
_SKEW = timedelta(minutes=5)


def block_id(upload_id: str, part_number: int) -> str:
    """The block id of part ``part_number`` (one length for every part of an upload)."""
    return f"{upload_id}-{part_number:05d}"


class AzureSigningArtifactRepository(
    AzureBlobArtifactRepository, MultipartUploadRepository, PresignedDownloadRepository
):
    """:class:`AzureBlobArtifactRepository` whose credential can sign a SAS.

    :param download_ttl: seconds a presigned download URL stays valid.
    :param upload_ttl: seconds a multipart part URL stays valid.
    """

    def __init__(
        self,
        artifact_uri: str,
        *,
        download_ttl: int | None = None,
        upload_ttl: int | None = None,
        **options: Any,
    ) -> None:
        super().__init__(artifact_uri, **options)
        self.presigned_url_lifetime = download_ttl or DOWNLOAD_TTL.read()
        self.upload_ttl = upload_ttl or UPLOAD_TTL.read()
        self._delegation_lock = threading.Lock()
        self._delegation_key: Any = None
        self._delegation_expiry = datetime.min.replace(tzinfo=UTC)

    def _signing_key(self, expiry: datetime) -> dict[str, Any]:
        if self.credentials.account_key is not None:
            return {"account_key": self.credentials.account_key}
        with self._delegation_lock:
            if self._delegation_expiry < expiry:
                now = datetime.now(UTC)
                key_expiry = max(expiry, now + timedelta(hours=1))
                self._delegation_key = self._call(
                    "sign a URL for", "", self.service.get_user_delegation_key,
                    now - _SKEW, key_expiry,
                )
                self._delegation_expiry = key_expiry
            return {"user_delegation_key": self._delegation_key}

    def _sas_url(self, path: str, ttl: int, **permission: bool) -> str:
        from azure.storage.blob import BlobSasPermissions, generate_blob_sas

        now = datetime.now(UTC)
        expiry = now + timedelta(seconds=ttl)
        blob = self.container.get_blob_client(self.location.key(path))
        token = generate_blob_sas(
            account_name=self.service.account_name or self.location.account,
            container_name=self.location.container,
            blob_name=blob.blob_name,
            permission=BlobSasPermissions(**permission),
            start=now - _SKEW,
            expiry=expiry,
            **self._signing_key(expiry),
        )
        return f"{blob.url.split('?', 1)[0]}?{token}"

    # -- presigned downloads ------------------------------------------------------------

    def presigned_download_url(self, path: str) -> tuple[str, dict[str, str], int]:
        rel, info = self._existing_file(path)
        return self._sas_url(rel, self.presigned_url_lifetime, read=True), {}, info.file_size or 0

    # -- multipart uploads --------------------------------------------------------------

    def _target(self, path: str) -> str:
        rel = safe_relpath(path)
        if rel == "" or path.endswith("/"):
            raise errors.invalid(f"Invalid artifact path: {path!r} names a directory")
        return rel

    def create_multipart_upload(
        self, path: str, num_parts: int
    ) -> tuple[str, list[PartCredential]]:
        rel = self._target(path)
        if not 1 <= num_parts <= MAX_PARTS:
            raise errors.invalid(f"num_parts must be between 1 and {MAX_PARTS}, got {num_parts}")
        upload_id = uuid.uuid4().hex
        base = self._sas_url(rel, self.upload_ttl, write=True)
        url, _, token = base.partition("?")
        credentials = []
        for number in range(1, num_parts + 1):
            encoded = base64.b64encode(block_id(upload_id, number).encode()).decode()
            part_url = f"{url}?comp=block&blockid={quote(encoded, safe='')}&{token}"
            credentials.append(PartCredential(number, part_url, {}))
        return upload_id, credentials

    def complete_multipart_upload(
        self, path: str, upload_id: str, parts: Sequence[CompletedPart]
    ) -> None:
        from azure.storage.blob import BlobBlock

        rel = self._target(path)
        if not _UPLOAD_ID.fullmatch(upload_id or ""):
            raise errors.invalid(f"Invalid upload_id {upload_id!r}")
        numbers = sorted(p.part_number for p in parts)
        if not numbers:
            raise errors.invalid("parts must name at least one uploaded part")
        if len(set(numbers)) != len(numbers) or not 1 <= numbers[0] <= numbers[-1] <= MAX_PARTS:
            raise errors.invalid(f"parts must have distinct part numbers 1..{MAX_PARTS}")
        blob = self.container.get_blob_client(self.location.key(rel))
        blocks = [BlobBlock(block_id=block_id(upload_id, n)) for n in numbers]
        self._call("complete the multipart upload of", rel, blob.commit_block_list, blocks)

    def abort_multipart_upload(self, path: str, upload_id: str) -> None:
        # Nothing to delete: uncommitted blocks are never readable or listed, and the
        # service discards them (see the module docstring).
        from azure.core import MatchConditions
        from azure.core.exceptions import ResourceExistsError, ResourceModifiedError

        rel = self._target(path)
        if not _UPLOAD_ID.fullmatch(upload_id or ""):
            raise errors.invalid(f"Invalid upload_id {upload_id!r}")
        blob = self.container.get_blob_client(self.location.key(rel))

        def discard() -> dict[str, Any] | None:
            try:
                # Only while no file exists: an empty commit discards every staged block.
                return blob.commit_block_list([], match_condition=MatchConditions.IfMissing)
            except (ResourceExistsError, ResourceModifiedError):
                return None  # an existing file: left as it is, with its staged parts

        action = "abort the multipart upload of"
        done = self._call(action, rel, discard)
        if done is not None:
            self._call(action, rel, blob.delete_blob, etag=done["etag"],
                       match_condition=MatchConditions.IfNotModified)
