"""Who may ask: DNS rebinding through ``Host`` and cross-site requests (CSRF) through
``Origin``, form and ``text/plain`` bodies, on every route.

Every request carries a body that would succeed, so a request let through would write.
"""

from __future__ import annotations

import dataclasses
import http.client
from typing import Any

import orjson
import pytest
from badinput_routes import ROUTES, app_routes, concrete
from badinput_support import Case

UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}
DENIED = ("PERMISSION_DENIED",)


def _valid(method: str, template: str) -> tuple[str, dict]:
    """The route's URL and a body (or query) that would succeed."""
    route = ROUTES.get((method, template))
    if route is None:
        return concrete(method, template), {}
    return route.path, route.body


def _case(id_: str, method: str, template: str, headers: dict[str, str],
          content_type: str = "application/json") -> Case:
    path, body = _valid(method, template)
    if method == "GET":
        return Case(id_, method, path, params=body, headers=headers, status=403, code=DENIED)
    if method == "PUT":
        content = b"written"
    elif content_type == "application/x-www-form-urlencoded":
        content = "&".join(f"{k}={v}" for k, v in body.items() if isinstance(v, str)).encode()
    else:
        content = orjson.dumps(body)
    return Case(id_, method, path, content=content,
                headers={"content-type": content_type, **headers}, status=403, code=DENIED)


BAD_HOSTS = ["evil.example", "localhost.evil.example", "localhost:5101@evil.example",
             "127.0.0.1.nip.io", "evil.example:80"]
ROUTES_SORTED = sorted(app_routes())

# The guards are middleware in front of every store: the sweep over every route runs on
# one backend; on the others a few routes check that the guards are in place.
SWEEP_BACKEND = "sqlite"
SAMPLE = {("POST", "/mlflow/runs/log-batch"),
          ("PUT", "/mlflow-artifacts/artifacts/{artifact_path:path}"),
          ("GET", "/mlflow/runs/get"), ("DELETE", "/mlflow/registered-models/delete")}

MALFORMED_HOSTS = {"localhost:5101@evil.example"}  # not host[:port] at all: a 400
_MALFORMED_ANSWER: dict[str, Any] = {"status": 400, "code": "BAD_REQUEST"}

HOST_CASES = [
    _case(f"{m} {t} Host: evil.example", m, t, {"host": "evil.example"})
    for m, t in ROUTES_SORTED
] + [
    dataclasses.replace(
        _case(f"POST /mlflow/runs/log-batch Host: {host}", "POST", "/mlflow/runs/log-batch",
              {"host": host}),
        **(_MALFORMED_ANSWER if host in MALFORMED_HOSTS else {}),
    )
    for host in BAD_HOSTS[1:]
]

CROSS_SITE = [
    ("Origin: evil", {"origin": "http://evil.example"}, "application/json"),
    ("Origin: null", {"origin": "null"}, "application/json"),
    ("Sec-Fetch-Site: cross-site", {"sec-fetch-site": "cross-site"}, "application/json"),
    ("Origin: evil, text/plain", {"origin": "http://evil.example"}, "text/plain"),
    ("Origin: evil, form", {"origin": "http://evil.example"},
     "application/x-www-form-urlencoded"),
    ("Origin: evil, multipart", {"origin": "http://evil.example"},
     "multipart/form-data; boundary=x"),
    ("Origin: localhost on another port", {"origin": "http://localhost:1"}, "text/plain"),
]
ORIGIN_CASES = [
    _case(f"{m} {t} {label}", m, t, headers, ctype)
    for m, t in ROUTES_SORTED if m in UNSAFE
    for label, headers, ctype in CROSS_SITE
]


def _swept(probe, case: Case) -> None:
    if probe.backend != SWEEP_BACKEND and not any(
            case.id.startswith(f"{m} {t} ") for m, t in SAMPLE):
        pytest.skip(f"middleware: every route is tried on {SWEEP_BACKEND}")


@pytest.mark.parametrize("case", HOST_CASES, ids=[c.id for c in HOST_CASES])
def test_foreign_host_is_refused(probe, case: Case) -> None:
    _swept(probe, case)
    probe.expect_refused(case)


@pytest.mark.parametrize("case", ORIGIN_CASES, ids=[c.id for c in ORIGIN_CASES])
def test_cross_site_write_is_refused(probe, case: Case) -> None:
    _swept(probe, case)
    probe.expect_refused(case)


def test_second_host_header_is_refused(probe) -> None:
    """Two Host headers, the first local: a proxy may route on the second one."""
    url = probe.client.base_url
    conn = http.client.HTTPConnection(url.host, url.port, timeout=30)
    try:
        body = orjson.dumps({"name": "rebound"})
        conn.putrequest("POST", "/api/2.0/mlflow/experiments/create", skip_host=True)
        conn.putheader("Host", f"127.0.0.1:{url.port}")
        conn.putheader("Host", "evil.example")
        conn.putheader("Content-Type", "application/json")
        conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        response = conn.getresponse()
        status, text = response.status, response.read()
    finally:
        conn.close()
    probe.assert_unchanged()
    assert 400 <= status < 500, (status, text[:300])
    probe.assert_healthy()
