"""Opaque page tokens: urlsafe base64 of compact JSON, e.g. ``{"offset": 100}``.

Tokens only need to be stable while the underlying data changes by appends (see "Page
tokens" in docs/protocol.md). A token that does not decode to a JSON object is rejected
with "Invalid page token".
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

from tracklog.entities import PagedList
from tracklog.errors import invalid

__all__ = [
    "all_pages",
    "decode_offset_token",
    "decode_page_token",
    "encode_offset_token",
    "encode_page_token",
    "paginate",
]

T = TypeVar("T")


def encode_page_token(data: dict[str, Any]) -> str:
    """Encode ``data`` (JSON-serialisable) as an opaque, URL-safe token."""
    raw = json.dumps(data, separators=(",", ":"), sort_keys=True).encode("utf-8")
    return base64.urlsafe_b64encode(raw).decode("ascii")


def decode_page_token(token: str | None) -> dict[str, Any]:
    """Decode a token made by :func:`encode_page_token`; ``None`` or ``""`` gives ``{}``."""
    if not token:
        return {}
    if not isinstance(token, str):
        raise invalid(f"Invalid page token {token!r}: expected a string")
    try:
        padded = token + "=" * (-len(token) % 4)
        # standard base64 tokens (MLflow's) decode too: map '+/' to the urlsafe alphabet
        raw = base64.urlsafe_b64decode(padded.replace("+", "-").replace("/", "_"))
        data = json.loads(raw.decode("utf-8"))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise invalid(f"Invalid page token {token!r}, could not decode it") from None
    if not isinstance(data, dict):
        raise invalid(f"Invalid page token {token!r}, decoded value={data!r}")
    return data


def encode_offset_token(offset: int) -> str:
    """The token of the page that starts ``offset`` items in."""
    return encode_page_token({"offset": offset})


def decode_offset_token(token: str | None) -> int:
    """The offset of a token from :func:`encode_offset_token`; 0 for no token. Tokens
    written with spaces (``{"offset": 100}``), without padding or in standard base64
    decode too."""
    data = decode_page_token(token)
    if not data:
        return 0
    offset = data.get("offset")
    # Offsets handed out stay far below 2**62; a larger one is forged.
    if isinstance(offset, bool) or not isinstance(offset, int) or not 0 <= offset < 2**62:
        raise invalid(f"Invalid page token {token!r}, offset={offset!r}")
    return offset


def paginate(items: Sequence[T], max_results: int, page_token: str | None) -> PagedList[T]:
    """Return the page of ``items`` starting at the token's offset.

    The next token is set only when more items remain after this page.
    """
    if isinstance(max_results, bool) or not isinstance(max_results, int) or max_results < 1:
        raise invalid(f"Invalid value {max_results!r} for max_results: must be at least 1")
    start = decode_offset_token(page_token)
    end = start + max_results
    token = encode_offset_token(end) if end < len(items) else None
    return PagedList(items[start:end], token)


def all_pages(fetch: Callable[[str | None], PagedList[T]]) -> Iterator[T]:
    """Every item of a paged search, page after page: ``fetch(token)`` returns one page
    (the first for None)."""
    token = None
    while True:
        page = fetch(token)
        yield from page
        token = page.token
        if not token:
            return
