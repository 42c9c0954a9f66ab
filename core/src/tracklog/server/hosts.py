"""The ``Host`` header: strict parsing and the allowed-hosts list.

A Host value is ``host[:port]`` where host is a DNS name, an IPv4 address or a bracketed
IPv6 literal; anything else (``localhost:5101@evil``, a bare IPv6 address, an empty port
after garbage) is malformed. Allowed entries are exact names — IPv6 literals compared in
canonical form, so ``::1``, ``[::1]`` and ``[0::1]`` are one entry — or patterns in which
``*`` (and nothing else) matches any run of characters.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Iterable
from dataclasses import dataclass

_LOCAL_NAMES = ("localhost", "127.0.0.1", "[::1]")
_NAME = re.compile(r"[a-z0-9_-]+(?:\.[a-z0-9_-]+)*")
_PORT = re.compile(r"[0-9]{0,5}")
_MAX_NAME = 253


@dataclass(frozen=True)
class HostValue:
    name: str  # lower-case DNS name, dotted IPv4, or "[canonical IPv6]"
    port: int | None

    @property
    def address(self) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
        try:
            return ipaddress.ip_address(self.name.strip("[]"))
        except ValueError:
            return None


def _ipv6(text: str) -> str | None:
    if "%" in text:  # zone ids name an interface of the client, never this server
        return None
    try:
        return f"[{ipaddress.IPv6Address(text).compressed}]"
    except ValueError:
        return None


def parse_host(value: str) -> HostValue | None:
    """``value`` as a :class:`HostValue`, or None if it is not a valid ``host[:port]``."""
    value = value.strip().lower()
    if value.startswith("["):
        end = value.find("]")
        name = _ipv6(value[1:end]) if end > 0 else None
        rest = value[end + 1:]
        if name is None or (rest and not rest.startswith(":")):
            return None
        port_text = rest[1:] if rest else ""
    else:
        name, _, port_text = value.partition(":")
        if ":" in port_text:
            return None
        name = name[:-1] if name.endswith(".") else name
        if len(name) > _MAX_NAME or not _NAME.fullmatch(name):
            return None
    if not _PORT.fullmatch(port_text):
        return None
    port = int(port_text) if port_text else None
    if port is not None and port > 65535:
        return None
    return HostValue(name, port)


def _entry(text: str) -> HostValue | re.Pattern[str]:
    text = text.strip().lower()
    if "*" in text:
        return re.compile(".*".join(re.escape(part) for part in text.split("*")))
    bare = _ipv6(text)
    entry = HostValue(bare, None) if bare else parse_host(text)
    if entry is None:
        raise ValueError(f"{text!r} is neither host[:port] nor a pattern with '*'")
    return entry


class AllowedHosts:
    """Decides whether a parsed Host is one this server answers for (an invalid entry
    raises ValueError)."""

    def __init__(self, entries: Iterable[str], allow_private: bool = False) -> None:
        parsed = [_entry(e) for e in entries if e.strip()]
        self.allow_all = any(isinstance(e, re.Pattern) and e.pattern == ".*" for e in parsed)
        self.exact = [e for e in parsed if isinstance(e, HostValue)]
        self.patterns = [e for e in parsed if isinstance(e, re.Pattern)]
        self.allow_private = allow_private

    def __contains__(self, host: HostValue) -> bool:
        if self.allow_all:
            return True
        for entry in self.exact:
            if entry.name == host.name and entry.port in (None, host.port):
                return True
        full = host.name if host.port is None else f"{host.name}:{host.port}"
        if any(p.fullmatch(host.name) or p.fullmatch(full) for p in self.patterns):
            return True
        address = host.address
        return self.allow_private and address is not None and address.is_private


def default_allowed_hosts(bind_host: str) -> list[str]:
    hosts = list(_LOCAL_NAMES)
    if bind_host:
        hosts.append(bind_host.lower())
    if bind_host in ("0.0.0.0", "::", ""):
        # Bound to every interface: the machine's own names and private addresses.
        names = {socket.gethostname().lower(), socket.getfqdn().lower()}
        hosts.extend(sorted(n for n in names if parse_host(n) is not None))
    return hosts
