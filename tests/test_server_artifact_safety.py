"""Artifact routes under hostile input: deletes that would remove an artifact root, paths
over the storage limits, symlinks in a run's directory. Every refusal is a 4xx JSON error
that names the path, and nothing is lost or left behind."""

from __future__ import annotations

import http.client
import json
import os
import time
import uuid
from urllib.parse import urlsplit

import httpx
import pytest

API = "/api/2.0/mlflow"
PROXY = "/api/2.0/mlflow-artifacts/artifacts"


def raw(base: str, method: str, path: str, body: bytes | None = None) -> tuple[int, dict]:
    """One request with ``path`` sent verbatim (httpx would remove ``.`` segments)."""
    url = urlsplit(base)
    assert url.hostname is not None
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
    try:
        conn.request(method, path, body=body)
        response = conn.getresponse()
        data = response.read()
    finally:
        conn.close()
    return response.status, json.loads(data) if data else {}


def walk(api: httpx.Client, path: str = "") -> set[str]:
    """Every file below ``path`` through the proxy's one-level listing."""
    out: set[str] = set()
    listing = api.get(PROXY, params={"path": path} if path else None)
    assert listing.status_code == 200, listing.text
    for entry in listing.json().get("files", []):
        full = f"{path}/{entry['path']}" if path else entry["path"]
        out |= walk(api, full) if entry["is_dir"] else {full}
    return out


def make_run(api: httpx.Client) -> tuple[str, str]:
    """A new run; returns its id and its artifact root relative to the proxy."""
    name = f"safety-{uuid.uuid4().hex}"
    exp = api.post(f"{API}/experiments/create", json={"name": name}).json()["experiment_id"]
    body = api.post(f"{API}/runs/create",
                    json={"experiment_id": exp, "start_time": int(time.time() * 1000)}).json()
    info = body["run"]["info"]
    return info["run_id"], info["artifact_uri"].split(":", 1)[1].strip("/")


# -- deleting roots ---------------------------------------------------------------------


@pytest.mark.parametrize("suffix", ["/", "/.", "/./", "/%2e", "/%2E/", "/.//", "//", "/%2e/."])
def test_deleting_the_proxy_root_is_refused(api, sqlite_server, suffix):
    """Every spelling of the destination's root is refused, and nothing is deleted."""
    run_id, root = make_run(api)
    api.put(f"{PROXY}/{root}/keep.txt", content=b"keep")
    before = walk(api)
    status, body = raw(sqlite_server.url, "DELETE", PROXY + suffix)
    assert status == 400, body
    assert body["error_code"] == "INVALID_PARAMETER_VALUE"
    assert "Invalid artifact path" in body["message"]
    assert walk(api) == before
    assert f"{root}/keep.txt" in before


def test_deleting_run_and_experiment_roots_is_refused(api, sqlite_server):
    """A run's artifact directory, the run and the experiment above it are refused; files
    and directories inside the run's artifacts are deleted as before."""
    run_id, root = make_run(api)
    for path in ("a.txt", "dir/b.txt", "dir/sub/c.txt"):
        assert api.put(f"{PROXY}/{root}/{path}", content=b"x").status_code == 200
    experiment, run, _ = root.split("/")
    for target in (root, f"{experiment}/{run}", experiment, f"{root}/", f"{root}/dir/.."):
        status, body = raw(sqlite_server.url, "DELETE", f"{PROXY}/{target}")
        assert status == 400, (target, body)
        assert body["error_code"] == "INVALID_PARAMETER_VALUE"
        assert repr(target) in body["message"]
    assert walk(api, root) == {f"{root}/a.txt", f"{root}/dir/b.txt", f"{root}/dir/sub/c.txt"}
    assert api.delete(f"{PROXY}/{root}/dir/sub").json() == {}
    assert api.delete(f"{PROXY}/{root}/a.txt").json() == {}
    assert walk(api, root) == {f"{root}/dir/b.txt"}


def test_mlflow_client_deletes_inside_a_run_but_not_the_run_root(client, experiment_id, tmp_path):
    """The real client's repository: deleting a sub-directory works, deleting everything
    (no path) is refused with the server's message."""
    import requests
    from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

    run = client.create_run(experiment_id)
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "f.txt").write_text("f")
    (tmp_path / "g.txt").write_text("g")
    client.log_artifacts(run.info.run_id, str(tmp_path))
    repo = get_artifact_repository(run.info.artifact_uri)
    repo.delete_artifacts("d")
    assert [f.path for f in client.list_artifacts(run.info.run_id)] == ["g.txt"]
    with pytest.raises(requests.HTTPError, match="400 Client Error.*deleting .* is refused"):
        repo.delete_artifacts()
    assert [f.path for f in client.list_artifacts(run.info.run_id)] == ["g.txt"]


# -- paths over the storage limits -------------------------------------------------------


@pytest.mark.parametrize("name, path", [
    ("long-name", "a" * 300),
    ("long-path", "/".join(["p" * 200] * 6)),
    ("huge-path", "/".join(["p" * 200] * 21)),
    ("deep", "d/" * 2100 + "x"),
])
def test_oversized_upload_paths_are_refused_without_leftovers(api, name, path):
    """A name over 255 bytes, a 4,000+ character path and 2,100 levels are 400 naming
    the path field; no directory is created for them."""
    run_id, root = make_run(api)
    before = api.get(PROXY, params={"path": root}).json()
    r = api.put(f"{PROXY}/{root}/{path}", content=b"x")
    assert r.status_code == 400, r.text
    body = r.json()
    assert body["error_code"] == "INVALID_PARAMETER_VALUE"
    assert "'artifact_path'" in body["message"] and "limit" in body["message"]
    assert api.get(PROXY, params={"path": root}).json() == before == {}
    listing = api.get(f"{API}/artifacts/list", params={"run_id": run_id, "path": path})
    assert listing.status_code == 400 and "'path'" in listing.json()["message"]


# -- symlinks in a run's artifact directory ----------------------------------------------


def test_dangling_and_escaping_symlinks_are_not_listed(api, sqlite_server, tmp_path):
    """Both listings answer 200 without a dangling symlink or symlinks leading out of the
    destination (whose target size would leak); regular files are listed as before."""
    run_id, root = make_run(api)
    assert api.put(f"{PROXY}/{root}/real.txt", content=b"real").status_code == 200
    secret = tmp_path / "secret.bin"
    secret.write_bytes(b"s" * 4321)
    directory = sqlite_server.artifacts.joinpath(*root.split("/"))
    os.symlink(directory / "gone", directory / "dangling")
    os.symlink(secret, directory / "escape.bin")
    os.symlink(tmp_path, directory / "escape_dir")
    tracking = api.get(f"{API}/artifacts/list", params={"run_id": run_id})
    assert tracking.status_code == 200, tracking.text
    assert tracking.json()["files"] == [{"path": "real.txt", "is_dir": False, "file_size": 4}]
    proxied = api.get(PROXY, params={"path": root})
    assert proxied.status_code == 200, proxied.text
    assert proxied.json()["files"] == [{"path": "real.txt", "is_dir": False, "file_size": 4}]
    escaped = api.get("/get-artifact", params={"run_id": run_id, "path": "escape.bin"})
    assert escaped.status_code == 400
    assert str(tmp_path) not in escaped.text
