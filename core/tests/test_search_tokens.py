"""Page tokens: round trips, MLflow's own token format, garbage rejected with 400."""

from __future__ import annotations

import base64
import json

import pytest

from tracklog.entities import PagedList
from tracklog.errors import ErrorCode, TracklogError
from tracklog.search.tokens import (
    decode_offset_token,
    decode_page_token,
    encode_offset_token,
    encode_page_token,
    paginate,
)


def test_round_trip_is_urlsafe_and_compact():
    data = {"offset": 1000, "filter": "name = 'x' ?/+", "ids": ["1", "2"]}
    token = encode_page_token(data)
    assert set(token) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_=")
    assert decode_page_token(token) == data
    compact = json.dumps(data, separators=(",", ":"), sort_keys=True).encode()
    assert base64.urlsafe_b64decode(token) == compact


def test_empty_token_is_first_page():
    assert decode_page_token(None) == {}
    assert decode_page_token("") == {}


def test_mlflow_style_token_decodes():
    token = base64.b64encode(json.dumps({"offset": 7}).encode()).decode()
    assert decode_page_token(token) == {"offset": 7}
    assert decode_page_token(token.rstrip("=")) == {"offset": 7}


@pytest.mark.parametrize("token", ["garbage!!", "abc", "bm90IGpzb24", "W10=", "MQ==", "%%%%"])
def test_garbage_is_invalid_page_token(token):
    with pytest.raises(TracklogError) as info:
        decode_page_token(token)
    assert info.value.error_code is ErrorCode.INVALID_PARAMETER_VALUE
    assert info.value.message.startswith("Invalid page token")


def test_paginate_walks_all_items_once():
    items = list(range(23))
    seen: list[int] = []
    token: str | None = None
    pages = 0
    while True:
        page = paginate(items, 10, token)
        assert isinstance(page, PagedList)
        seen += page
        pages += 1
        token = page.token
        if token is None:
            break
    assert seen == items
    assert pages == 3


def test_no_token_when_the_page_ends_exactly():
    assert paginate(list(range(10)), 10, None).token is None
    assert paginate(list(range(10)), 5, None).token is not None
    last = paginate(list(range(10)), 5, paginate(list(range(10)), 5, None).token)
    assert list(last) == [5, 6, 7, 8, 9]
    assert last.token is None
    assert list(paginate([], 5, None)) == []


@pytest.mark.parametrize("offset", [-1, "3", 1.5, None, True])
def test_bad_offsets_rejected(offset):
    with pytest.raises(TracklogError, match="Invalid page token"):
        paginate([1, 2, 3], 1, encode_page_token({"offset": offset}))


def test_offset_tokens_round_trip_and_read_the_older_spaced_form():
    """Offset tokens as the SQL store wrote them before (``{"offset": 40}`` with a space,
    padded urlsafe base64) still read as their offset."""
    assert decode_offset_token(encode_offset_token(40)) == 40
    older = base64.urlsafe_b64encode(json.dumps({"offset": 40}).encode()).decode()
    assert older != encode_offset_token(40)
    assert decode_offset_token(older) == 40
    assert decode_offset_token(None) == decode_offset_token("") == 0


@pytest.mark.parametrize("offset", [-1, 2**62, 2**63, "3", None, True])
def test_forged_offset_tokens_refused(offset):
    with pytest.raises(TracklogError, match="Invalid page token") as info:
        decode_offset_token(encode_page_token({"offset": offset}))
    assert info.value.error_code == ErrorCode.INVALID_PARAMETER_VALUE


@pytest.mark.parametrize("max_results", [0, -1, True])
def test_bad_max_results_rejected(max_results):
    with pytest.raises(TracklogError, match="max_results"):
        paginate([1], max_results, None)
