"""Streaming upload of one object: a single PUT for a small stream, otherwise a multipart
upload with a few parts in flight at once.

Each part is read into one of a small set of reused buffers and sent from a read-only
view of it, so an upload of any size holds at most ``PARTS_IN_FLIGHT`` parts in memory
and allocates them once (boto3's managed transfer allocates every part anew, and freed
part-sized blocks stay in the process's heap).
"""

from __future__ import annotations

import io
import queue
from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import Any

from tracklog.artifacts import ReadableStream

PART_SIZE = 8 * 1024 * 1024
PARTS_IN_FLIGHT = 4

# Upload arguments that belong on every part, and on the completion, of a multipart upload.
_PART_ARGS = {
    "ChecksumAlgorithm", "RequestPayer", "SSECustomerAlgorithm", "SSECustomerKey",
    "SSECustomerKeyMD5",
}
_COMPLETE_ARGS = {
    "RequestPayer", "SSECustomerAlgorithm", "SSECustomerKey", "SSECustomerKeyMD5",
    "ChecksumType", "MpuObjectSize", "ChecksumCRC32", "ChecksumCRC32C", "ChecksumCRC64NVME",
    "ChecksumSHA1", "ChecksumSHA256",
}


class _View(io.RawIOBase):
    """A seekable read-only stream over a buffer's first ``size`` bytes; botocore seeks
    it back to retry a request or after computing a checksum."""

    def __init__(self, buffer: bytearray, size: int) -> None:
        self._view = memoryview(buffer)[:size]
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: len(self._view)}[whence]
        self._pos = max(0, min(base + offset, len(self._view)))
        return self._pos

    def readinto(self, b: Any) -> int:
        n = min(len(b), len(self._view) - self._pos)
        b[:n] = self._view[self._pos : self._pos + n]
        self._pos += n
        return n

    def __len__(self) -> int:
        return len(self._view)


def _fill(stream: ReadableStream, buffer: bytearray) -> int:
    """Read until ``buffer`` is full or the stream ends; returns the bytes read."""
    view = memoryview(buffer)
    filled = 0
    readinto = getattr(stream, "readinto", None)
    while filled < len(buffer):
        if readinto is not None:
            n = readinto(view[filled:])
        else:
            chunk = stream.read(len(buffer) - filled)
            n = len(chunk) if chunk else 0
            view[filled : filled + n] = chunk or b""
        if not n:
            break
        filled += n
    return filled


def _members(client: Any, operation: str) -> set[str]:
    return set(client.meta.service_model.operation_model(operation).input_shape.members)


def _only(args: Mapping[str, Any], allowed: set[str] | frozenset[str]) -> dict[str, Any]:
    return {k: v for k, v in args.items() if k in allowed}


def upload_stream(
    client: Any, bucket: str, key: str, stream: ReadableStream, extra_args: Mapping[str, Any]
) -> None:
    """Store everything read from ``stream`` as ``key``; botocore errors propagate, and a
    failed multipart upload is aborted first."""
    first = bytearray(PART_SIZE)
    size = _fill(stream, first)
    if size < PART_SIZE:
        client.put_object(
            Bucket=bucket, Key=key, Body=_View(first, size),
            **_only(extra_args, _members(client, "PutObject")),
        )
        return
    upload_id = client.create_multipart_upload(
        Bucket=bucket, Key=key, **_only(extra_args, _members(client, "CreateMultipartUpload"))
    )["UploadId"]
    try:
        parts = _upload_parts(client, bucket, key, upload_id, stream, first, size, extra_args)
        client.complete_multipart_upload(
            Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts},
            **_only(extra_args, _COMPLETE_ARGS & _members(client, "CompleteMultipartUpload")),
        )
    except BaseException:
        try:
            client.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
        except Exception:
            pass  # the upload's own failure is the one to report
        raise


def _upload_parts(
    client: Any, bucket: str, key: str, upload_id: str, stream: ReadableStream,
    first: bytearray, first_size: int, extra_args: Mapping[str, Any],
) -> list[dict[str, Any]]:
    part_args = _only(extra_args, _PART_ARGS)
    free: queue.Queue[bytearray] = queue.Queue()
    allocated = 1
    parts: list[dict[str, Any]] = []

    def send(number: int, buffer: bytearray, size: int) -> None:
        try:
            response = client.upload_part(
                Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=number,
                Body=_View(buffer, size), **part_args,
            )
            parts.append({"PartNumber": number, "ETag": response["ETag"]})
        finally:
            free.put(buffer)

    pending: set[Future[None]] = set()
    with ThreadPoolExecutor(PARTS_IN_FLIGHT, thread_name_prefix="s3-upload") as pool:
        buffer, size, number = first, first_size, 1
        while size:
            pending.add(pool.submit(send, number, buffer, size))
            done, pending = wait(pending, timeout=0)
            for future in done:
                future.result()  # a failed part stops the upload at once
            if free.empty() and allocated < PARTS_IN_FLIGHT:
                free.put(bytearray(PART_SIZE))
                allocated += 1
            buffer = free.get()
            number += 1
            size = _fill(stream, buffer)
        for future in pending:
            future.result()
    return sorted(parts, key=lambda p: p["PartNumber"])
