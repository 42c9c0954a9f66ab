"""Host header parsing and the allowed-hosts list."""

from __future__ import annotations

import pytest

from tracklog.server.hosts import AllowedHosts, HostValue, default_allowed_hosts, parse_host


@pytest.mark.parametrize("value, expected", [
    ("localhost", HostValue("localhost", None)),
    ("LocalHost:5000", HostValue("localhost", 5000)),
    ("localhost.:80", HostValue("localhost", 80)),
    ("127.0.0.1:1", HostValue("127.0.0.1", 1)),
    ("[::1]", HostValue("[::1]", None)),
    ("[0:0:0:0:0:0:0:1]:5000", HostValue("[::1]", 5000)),
    ("[FD00::2]:8080", HostValue("[fd00::2]", 8080)),
    ("my_service-1.internal", HostValue("my_service-1.internal", None)),
])
def test_valid_hosts(value, expected):
    assert parse_host(value) == expected


@pytest.mark.parametrize("value", [
    "", ":5000", "localhost:5101@evil", "user@localhost", "localhost/x", "localhost:-1",
    "localhost:65536", "localhost:123456", "::1", "[::1", "[::1]x", "[::1]:x", "[zz::1]",
    "[fe80::1%eth0]", "[127.0.0.1]", "a..b", ".a", "a b", "localhost\\x", "a" * 254,
    "localhost:5000:5000", "local\x00host",
])
def test_malformed_hosts(value):
    assert parse_host(value) is None


def _host(value: str) -> HostValue:
    parsed = parse_host(value)
    assert parsed is not None, value
    return parsed


def test_ipv6_entries_are_exact_not_patterns():
    allowed = AllowedHosts(default_allowed_hosts("::1"))
    assert _host("[::1]:5000") in allowed
    assert _host("[0::1]") in allowed
    # fnmatch read "[::1]" as a character class matching ":" or "1".
    assert _host("1") not in allowed
    assert _host("[::2]") not in allowed


def test_patterns_and_ports():
    allowed = AllowedHosts(["*.corp.example", "exact.example:8443", "[fd00::2]"])
    assert _host("api.corp.example:8080") in allowed
    assert _host("corp.example.evil") not in allowed
    assert _host("exact.example:8443") in allowed
    assert _host("exact.example:8444") not in allowed
    assert _host("exact.example") not in allowed
    assert _host("[fd00::2]:5000") in allowed
    assert _host("anything.example") in AllowedHosts(["*"])


def test_private_addresses_only_when_bound_to_every_interface():
    assert _host("10.1.2.3") in AllowedHosts([], allow_private=True)
    assert _host("[fd00::2]") in AllowedHosts([], allow_private=True)
    assert _host("8.8.8.8") not in AllowedHosts([], allow_private=True)
    assert _host("10.1.2.3") not in AllowedHosts(default_allowed_hosts("127.0.0.1"))


@pytest.mark.parametrize("entry", ["bad host", "evil@x", "[::1", "x:port"])
def test_invalid_entries_are_refused(entry):
    with pytest.raises(ValueError, match="neither host"):
        AllowedHosts(["localhost", entry])
