"""The Host check on a real server: IPv6 loopback, malformed and repeated Host headers,
and DNS rebinding (a foreign name resolving to this machine)."""

from __future__ import annotations

import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tracklog.testing.server import TRACKLOG, start_server


def _ipv6_loopback() -> str | None:
    """None if ::1 can be bound here, else why not."""
    if not socket.has_ipv6:
        return "Python was built without IPv6"
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
    except OSError as exc:
        return f"no IPv6 loopback: {exc}"
    return None


@pytest.fixture(scope="module")
def v6_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The base URL of a server bound to ::1 only."""
    reason = _ipv6_loopback()
    if reason is not None:
        print(f"skipping: {reason}")
        pytest.skip(reason)
    tmp: Path = tmp_path_factory.mktemp("server-v6")
    with start_server("--backend-store-uri", f"sqlite:///{tmp / 't.db'}",
                      "--artifacts-destination", str(tmp / "artifacts"),
                      host="::1", cwd=tmp) as server:
        yield server.base


def _raw(port: int, family: int, address: str, head: bytes) -> tuple[int, bytes]:
    """Send ``head`` as is (httpx will not send a repeated Host) and read the answer."""
    with socket.socket(family) as s:
        s.settimeout(10)
        s.connect((address, port))
        s.sendall(head)
        data = b""
        while b"\r\n\r\n" not in data:
            piece = s.recv(65536)
            if not piece:
                break
            data += piece
    return int(data.split(b" ", 2)[1]), data


def test_ipv6_loopback_literal_is_accepted(v6_server):
    r = httpx.get(v6_server + "/api/2.0/mlflow/experiments/get",
                  params={"experiment_id": "0"})
    assert r.status_code == 200, r.text
    assert r.json()["experiment"]["experiment_id"] == "0"
    for host in ("[::1]", "[0:0::1]", "localhost"):
        assert httpx.get(v6_server + "/health",
                         headers={"host": host}).status_code == 200, host
    for host in ("[::2]", "evil.example", "[::1]evil", "::1"):
        assert httpx.get(v6_server + "/health",
                         headers={"host": host}).status_code in (400, 403), host


def test_ipv6_repeated_host_is_refused(v6_server):
    port = int(v6_server.rsplit(":", 1)[1])
    status, _ = _raw(port, socket.AF_INET6, "::1",
                     f"GET /health HTTP/1.1\r\nHost: [::1]:{port}\r\nHost: evil.example\r\n"
                     "Connection: close\r\n\r\n".encode())
    assert status == 400


@pytest.mark.parametrize("host", [
    "localhost:5101@evil", "localhost@evil", "evil@localhost", "localhost:5101/evil",
    "localhost:abc", "localhost:99999", "localhost:1:2", "127.0.0.1 evil", "[::1",
    "[fe80::1%25eth0]", "localhost\\evil", "",
])
def test_malformed_host_gets_400(api, host):
    r = api.get("/health", headers={"host": host})
    assert r.status_code == 400, (host, r.text)
    assert r.json()["error_code"] == "BAD_REQUEST"


def test_repeated_host_is_refused_whichever_comes_first(sqlite_server):
    port = int(sqlite_server.base.rsplit(":", 1)[1])
    for first, second in [(f"127.0.0.1:{port}", "evil.example"),
                          ("evil.example", f"127.0.0.1:{port}"),
                          (f"127.0.0.1:{port}", f"127.0.0.1:{port}")]:
        status, _ = _raw(port, socket.AF_INET, "127.0.0.1",
                         f"GET /health HTTP/1.1\r\nHost: {first}\r\nHost: {second}\r\n"
                         "Connection: close\r\n\r\n".encode())
        assert status == 400, (first, second)
    status, _ = _raw(port, socket.AF_INET, "127.0.0.1",
                     b"GET /health HTTP/1.1\r\nConnection: close\r\n\r\n")
    assert status == 400


@pytest.mark.parametrize("host", [
    "evil.example", "evil.example:80", "localhost.evil.example", "127.0.0.1.nip.io",
    "attacker.localhost.example", "0x7f000001", "2130706433", "[::ffff:127.0.0.1]",
])
def test_dns_rebinding_names_get_403(api, host):
    r = api.post("/api/2.0/mlflow/experiments/create", json={"name": "rebound"},
                 headers={"host": host})
    assert r.status_code == 403, (host, r.text)
    assert r.json()["error_code"] == "PERMISSION_DENIED"


def test_local_names_are_accepted(api, sqlite_server):
    port = sqlite_server.base.rsplit(":", 1)[1]
    for host in ("localhost", f"localhost:{port}", "LOCALHOST.", "127.0.0.1",
                 f"127.0.0.1:{port}", "[::1]", f"[::1]:{port}"):
        assert api.get("/health", headers={"host": host}).status_code == 200, host


def test_invalid_allowed_hosts_entry_stops_the_server(tmp_path):
    done = subprocess.run([TRACKLOG, "server", "--allowed-hosts", "good.example,bad host"],
                          stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          cwd=tmp_path, timeout=60)
    assert done.returncode == 2
    assert "--allowed-hosts" in done.stderr and "bad host" in done.stderr
