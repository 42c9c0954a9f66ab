"""Artifact paths on every route that takes one: traversal in every encoding, absolute,
``file:``, UNC and drive paths, ``?``/``#``/``;`` smuggling, NUL, names and paths past the
file system's limits, the artifact root itself, and symlinks inside a run's directory.

Paths in a URL are sent byte for byte (``raw``), so ``..`` reaches the server as sent.
"""

from __future__ import annotations

import os
from urllib.parse import quote

import pytest
from badinput_routes import ROUTES
from badinput_support import API, PROXY, Case

# Each of these names a place outside the artifact root (or a path that could once some
# layer decodes it): every route must refuse it with INVALID_PARAMETER_VALUE.
ESCAPES_IN_URL = [
    "../escape.txt",
    "{art}/../../../../escape.txt",
    "%2e%2e/escape.txt",
    "%2E%2E%2Fescape.txt",
    "..%2fescape.txt",
    "{art}/%2e%2e/%2e%2e/%2e%2e/%2e%2e/escape.txt",
    "%252e%252e%252fescape.txt",
    "%25252e%25252e/escape.txt",
    "..%5cescape.txt",
    "%2fetc%2fpasswd",
    "/etc/passwd",
    "C:%5cWindows%5cwin.ini",
    "C:/Windows/win.ini",
    "%5c%5cserver%5cshare%5cescape.txt",
    "//server/share/escape.txt",
    "x%00y",
    "x%3f/../../../escape.txt",
    "x%23/../../../escape.txt",
    "x%3b/../../../escape.txt",
]
# The same as query-string values (the client encodes them once more).
ESCAPES_IN_QUERY = [
    "../escape.txt",
    "{art}/../../../../escape.txt",
    "%2e%2e/escape.txt",
    "..%2fescape.txt",
    "%252e%252e%252fescape.txt",
    "..\\escape.txt",
    "/etc/passwd",
    "C:\\Windows\\win.ini",
    "C:/Windows/win.ini",
    "\\\\server\\share\\escape.txt",
    "//server/share/escape.txt",
    "x\x00y",
    "x?/../../../escape.txt",
    "x#/../../../escape.txt",
    "x;/../../../escape.txt",
]
# Names that stay inside the root however they are read (a ``file:`` scheme or ``..;`` is
# a plain name there): reading them finds nothing (a listing of nothing is empty). Only
# tried on routes that read.
HARMLESS = ["file:///etc/passwd", "..;/..;/escape.txt", "%2e%2e;/escape.txt",
            "\uff0e\uff0e/escape.txt"]

PATH_ROUTES = [
    ("GET", PROXY + "/artifacts/{path}"),
    ("PUT", PROXY + "/artifacts/{path}"),
    ("DELETE", PROXY + "/artifacts/{path}"),
    ("POST", PROXY + "/mpu/create/{path}"),
    ("POST", PROXY + "/mpu/complete/{path}"),
    ("POST", PROXY + "/mpu/abort/{path}"),
    ("GET", PROXY + "/presigned/{path}"),
]
QUERY_ROUTES = [
    (PROXY + "/artifacts", {}),
    ("/get-artifact", {"run_id": "{run}"}),
    (API + "/artifacts/list", {"run_id": "{run}"}),
]
MPU_BODIES = {"create": {"num_parts": 1}, "complete": {"upload_id": "u", "parts": []},
              "abort": {"upload_id": "u"}}

INVALID = ("INVALID_PARAMETER_VALUE",)
INVALID_OR_ABSENT = (400, 404)
CODES_OR_ABSENT = ("INVALID_PARAMETER_VALUE", "RESOURCE_DOES_NOT_EXIST")


def _url_case(method: str, template: str, path: str, harmless: bool) -> Case:
    body = None
    for op, mpu in MPU_BODIES.items():
        if f"/mpu/{op}/" in template:
            body = mpu
    kw: dict = {"content": b"escaped"} if method == "PUT" else {}
    if body is not None:
        import orjson

        kw = {"content": orjson.dumps(body), "headers": {"content-type": "application/json"}}
    status = INVALID_OR_ABSENT if harmless else 400
    code = CODES_OR_ABSENT if harmless else INVALID
    target = template.format(path=quote(path, safe="/%:;{}"))
    return Case(f"{method} {template.format(path=path)}", method, target, raw=True,
                status=status, code=code, match="" if harmless else "path", **kw)


def path_cases() -> list[Case]:
    cases = []
    for method, template in PATH_ROUTES:
        for path in ESCAPES_IN_URL:
            cases.append(_url_case(method, template, path, False))
        if method == "GET":
            cases += [_url_case(method, template, p, True) for p in HARMLESS]
    for route, params in QUERY_ROUTES:
        for path in ESCAPES_IN_QUERY:
            cases.append(Case(f"GET {route}?path={path!r}", "GET", route,
                              params={**params, "path": path}, match="path"))
        listing = route != "/get-artifact"
        for path in HARMLESS:
            cases.append(Case(f"GET {route}?path={path!r}", "GET", route,
                              params={**params, "path": path},
                              status=(200, *INVALID_OR_ABSENT) if listing else INVALID_OR_ABSENT,
                              code=CODES_OR_ABSENT))
    return cases


# Deleting the artifact root, however it is spelled, and an experiment's or a run's root.
ROOT_DELETES = [
    Case(f"DELETE {PROXY}/artifacts/{p}", "DELETE", f"{PROXY}/artifacts/{p}", raw=True,
         status=(400, 403), code=("INVALID_PARAMETER_VALUE", "PERMISSION_DENIED"),
         match="root|director|path")
    for p in ("", ".", "%2e", "./", "%2e/", "{exp}", "{exp}/", "{art}", "{art}/")
]

# Past the file system's limits: a 300-character name, a 4,096+ character path, and
# 2,100 nested directories. Refused before anything is created (deleting or listing such
# a path may also answer as for any absent path: 200 with nothing).
LONG = ["a" * 300, "{art}/" + "a" * 300 + ".txt", "{art}/" + "abcdefgh/" * 520 + "x",
        "{art}/" + "d/" * 2100 + "x"]
LONG_CASES = [
    Case(f"{method} {len(p)}-character path", method, f"{PROXY}/artifacts/{p}", raw=True,
         content=b"x" if method == "PUT" else None,
         status=(400, 414) if method == "PUT" else (200, 400, 404, 414),
         code=("INVALID_PARAMETER_VALUE", "RESOURCE_DOES_NOT_EXIST"), json_body=True)
    for p in LONG for method in ("PUT", "GET", "DELETE")
] + [
    Case(f"GET artifacts/list {len(p)}-character path", "GET", f"{API}/artifacts/list",
         params={"run_id": "{run}", "path": p.replace("{art}/", "")}, status=(200, 400, 404),
         code=("INVALID_PARAMETER_VALUE", "RESOURCE_DOES_NOT_EXIST"))
    for p in LONG
]

PATH_CASES = path_cases()


@pytest.mark.parametrize("case", PATH_CASES, ids=[c.id for c in PATH_CASES])
def test_escaping_path_is_refused(probe, case: Case) -> None:
    probe.expect_refused(case)
    assert not list(probe.box.rglob("escape*")), "a file landed outside its place"


@pytest.mark.parametrize("case", LONG_CASES, ids=[c.id for c in LONG_CASES])
def test_overlong_path_is_refused(probe, case: Case) -> None:
    probe.expect_refused(case)


def test_symlinks_are_neither_followed_nor_listed(probe) -> None:
    """A dangling link and a link out of the root inside a run's directory: the listings
    answer 200 without them (nor their targets' sizes), reading them is refused."""
    where = probe.disk / "artifacts" / probe.seed.art / "links"
    where.mkdir(parents=True)
    secret = probe.disk / "secret.bin"
    secret.write_bytes(b"s" * 12345)
    os.symlink(probe.disk / "nowhere", where / "dangling")
    os.symlink(secret, where / "outside")
    (where / "plain.txt").write_bytes(b"ok")
    try:
        listings = [
            probe.client.get(f"{PROXY}/artifacts", params={"path": f"{probe.seed.art}/links"}),
            probe.client.get(f"{API}/artifacts/list",
                             params={"run_id": probe.seed.run, "path": "links"}),
        ]
        for response in listings:
            assert response.status_code == 200, response.text
            files = response.json().get("files", [])
            assert [f["path"].rsplit("/", 1)[-1] for f in files] == ["plain.txt"], files
            assert all(f.get("file_size") != 12345 for f in files)
        for name in ("dangling", "outside"):
            r = probe.client.get(f"{PROXY}/artifacts/{probe.seed.art}/links/{name}")
            assert 400 <= r.status_code < 500, (name, r.status_code, r.text[:300])
            assert r.content != secret.read_bytes()
        probe.assert_healthy()
    finally:
        for p in (where / "dangling", where / "outside", where / "plain.txt"):
            p.unlink()
        where.rmdir()
        secret.unlink()


@pytest.mark.parametrize("case", ROOT_DELETES, ids=[c.id for c in ROOT_DELETES])
def test_deleting_a_root_is_refused(probe, case: Case) -> None:
    """Last in this module: today such a request wipes every artifact."""
    probe.expect_refused(case)


def test_every_artifact_route_gets_paths() -> None:
    """Each route taking an artifact path (in the URL or as ``path``) is in the tables."""
    tried = {(m, t.replace(PROXY, "/mlflow-artifacts").replace("{path}",
                                                               "{artifact_path:path}"))
             for m, t in PATH_ROUTES}
    tried |= {("GET", r.replace(PROXY, "/mlflow-artifacts").replace(API, "/mlflow"))
              for r, _ in QUERY_ROUTES}
    taking = {(m, t) for m, t in ROUTES
              if "artifact_path" in t or t in ("/get-artifact", "/mlflow/artifacts/list",
                                               "/mlflow-artifacts/artifacts")}
    assert taking <= tried, sorted(taking - tried)

