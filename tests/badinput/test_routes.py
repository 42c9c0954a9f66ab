"""Every route, every field: wrong types, missing required values, int64 overflow, bodies
that are not JSON objects, ``NaN`` and deep nesting.

``ROUTES`` (in ``badinput_routes``) holds, for each route of the app's route tables, a
request that would succeed and the type of each of its fields; the cases are derived from
it (one field broken at a time, the rest valid, so the refusal must be about that field
and nothing may be written). ``test_every_route_is_covered`` fails when a route is added
without an entry.
"""

from __future__ import annotations

import copy
import re
from typing import Any

import pytest
from badinput_routes import ROUTES, Route, app_routes
from badinput_support import UNSET, Case

# A wrong value of each type, with the problem its refusal must name besides the field.
WRONG: dict[str, list[Any]] = {
    # Not a number: param and tag values accept numbers as their decimal text.
    "str": [{"bad": 1}],
    "int": ["abc", 2**63, 1e20, 1.5],
    "list": ["not-a-list"],
    "enum": ["NO_SUCH_VALUE"],
    "bool": ["maybe"],
    "double": ["abc"],
}
# Query strings carry strings only: a number where a string belongs is not expressible.
WRONG_QUERY = {"int": ["abc", str(2**63)], "enum": ["NO_SUCH_VALUE"], "bool": ["maybe"]}

_PART = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def _address(name: str) -> list[str | int]:
    return [int(i) if i else k for k, i in _PART.findall(name)]


def _replace(body: dict[str, Any], name: str, value: Any) -> dict[str, Any]:
    body = copy.deepcopy(body)
    *head, last = _address(name)
    target: Any = body
    for part in head:
        target = target[part]
    if value is UNSET:
        del target[last]
    else:
        target[last] = value
    return body


def _request(route: Route, data: dict[str, Any], id_: str, match: str, **kw: Any) -> Case:
    if route.method == "GET":
        return Case(id_, "GET", route.path, params=data, match=match, **kw)
    return Case(id_, route.method, route.path, json=data, match=match, **kw)


def _field_match(name: str) -> str:
    last = _address(name)[-1]
    return re.escape(last if isinstance(last, str) else name)


def field_cases() -> list[Case]:
    cases = []
    for (method, template), route in ROUTES.items():
        if route is None:
            continue
        where = f"{method} {template}"
        wrong = WRONG_QUERY if route.method == "GET" else WRONG
        for name, kind in route.fields.items():
            for value in wrong.get(kind, []):
                cases.append(_request(route, _replace(route.body, name, value),
                                      f"{where} {name}={value!r}", _field_match(name)))
        for name in route.required:
            cases.append(_request(route, _replace(route.body, name, UNSET),
                                  f"{where} without {name}", _field_match(name)))
    return cases


def body_cases() -> list[Case]:
    """Bodies that are not one JSON object of sane depth, on every route with a body."""
    cases = []
    deep_value = "[" * 1000 + "]" * 1000
    for (method, template), route in ROUTES.items():
        if route is None or route.method == "GET":
            continue
        where = f"{method} {template}"
        cases += [
            Case(f"{where} array body", route.method, route.path, content=b"[1]",
                 headers={"content-type": "application/json"}, match="object"),
            Case(f"{where} NaN body", route.method, route.path, content=b"NaN",
                 headers={"content-type": "application/json"}, match="NaN|JSON"),
            Case(f"{where} body nested 100000 deep", route.method, route.path,
                 content=b"[" * 100_000 + b"]" * 100_000,
                 headers={"content-type": "application/json"}, match="nest|depth|deep"),
        ]
        first = next(iter(route.fields), None)
        if first is not None and "[" not in first:
            body = route.body | {first: "__DEEP__"}
            raw = orjson_dumps_with(body, deep_value)
            cases.append(Case(f"{where} {first} nested 1000 deep", route.method, route.path,
                              content=raw, headers={"content-type": "application/json"},
                              match="nest|depth|deep"))
    return cases


def orjson_dumps_with(body: dict[str, Any], raw_value: str) -> bytes:
    import orjson

    return orjson.dumps(body).replace(b'"__DEEP__"', raw_value.encode())


def _ids(cases: list[Case]) -> list[str]:
    return [c.id for c in cases]


FIELD_CASES = field_cases()
BODY_CASES = body_cases()


@pytest.mark.parametrize("case", FIELD_CASES, ids=_ids(FIELD_CASES))
def test_wrong_field_is_refused(probe, case: Case) -> None:
    probe.expect_refused(case)


@pytest.mark.parametrize("case", BODY_CASES, ids=_ids(BODY_CASES))
def test_bad_body_is_refused(probe, case: Case) -> None:
    probe.expect_refused(case)


def test_every_route_is_covered() -> None:
    """A new route needs an entry here (a valid request and its fields) or, for routes
    without JSON fields, ``None`` and cases in the modules for its kind of input."""
    missing = sorted(app_routes() - set(ROUTES))
    assert not missing, f"routes without bad-input coverage: {missing}"
    stale = sorted(set(ROUTES) - app_routes())
    assert not stale, f"entries for routes that no longer exist: {stale}"
