"""The decoder's nesting check on bytes agrees with the nesting of the parsed value, also
when strings hold brackets, quotes and escapes."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest

from tracklog.server.codec import nests_deeper

# Strings built to confuse a scan of the raw bytes.
TRICKY = ["", "[", "]", "{", "}", "]]]]", '"', '\\', '\\"', '\\\\"]', '"]}', "a[b]c",
          "\u0000", "\n", "\\u005d", "é]"]


def depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max((depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((depth(v) for v in value), default=0)
    return 0


def build(rng: random.Random, levels: int) -> Any:
    if levels == 0 or rng.random() < 0.15:
        return rng.choice([rng.choice(TRICKY), rng.randint(-5, 5), None, True, 1.5])
    width = rng.randint(0, 3)
    if rng.random() < 0.5:
        return [build(rng, levels - 1) for _ in range(width)]
    return {rng.choice(TRICKY) + str(i): build(rng, levels - 1) for i in range(width)}


@pytest.mark.parametrize("seed", range(40))
def test_agrees_with_the_parsed_depth(seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(50):
        value = build(rng, rng.randint(1, 9))
        for text in (json.dumps(value), json.dumps(value, indent=1, ensure_ascii=False)):
            body = text.encode()
            for limit in (1, 2, 3, 5, 8):
                assert nests_deeper(body, limit) == (depth(value) > limit), (text, limit)


def test_deep_chains_and_long_flat_bodies() -> None:
    for n in (63, 64, 65, 1000):
        for opener, closer in (("[", "]"), ('{"k":', "}")):
            body = (opener * n + "1" + closer * n).encode()
            assert nests_deeper(body, 64) == (n > 64)
    flat = json.dumps({"metrics": [{"key": "]" * 3, "value": 1}] * 5000}).encode()
    assert not nests_deeper(flat, 3)
    assert nests_deeper(flat, 2)
