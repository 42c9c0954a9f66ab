"""Artifact locations from users (an experiment's ``artifact_location``): what is accepted.

The server opens a run's artifact location through whichever artifact plugin handles its
scheme, so a location is input that may make the server connect somewhere. Refused with
INVALID_PARAMETER_VALUE naming the field:

- NUL and control characters, also percent-encoded (``%00``, ``%0a``), at any depth of
  encoding; malformed URIs (bad IPv6 brackets, a non-numeric port); ``runs:`` URIs.
- Windows forms the server cannot mean: backslashes (UNC ``\\\\host\\share``), drive
  letters (``C:/x``), network-path references (``//host/share``), and ``file:`` URIs
  naming a remote host.
- ``..`` segments, plain or encoded.
- Hosts that are never artifact stores but are classic request-forgery targets, in any
  spelling of the address (decimal, hex, octal, IPv4-mapped or NAT64 IPv6): link-local
  addresses (169.254.0.0/16, fe80::/10, where cloud metadata services answer), the
  metadata services' own names and addresses (``metadata.google.internal``,
  100.100.100.200, fd00:ec2::254), unspecified and multicast addresses. The bucket of
  ``s3://`` and ``gs://`` is a name, not a host, and is not checked.
- For ``mlflow-artifacts:`` locations, a directory named ``artifacts`` below the top
  level: the proxy deletes only inside such directories (run artifact roots), so an
  experiment nested in one could be deleted whole.

Accepted: every other scheme, including ones no installed plugin handles (with
``--no-serve-artifacts`` the client writes there itself; the server answers a clear error
if asked to list them), and loopback and private-network hosts (an internal S3 endpoint
or SFTP server is a normal set-up). Host names are checked as written, not resolved.
"""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import unquote, urlsplit

from tracklog import errors
from tracklog.artifacts.paths import ARTIFACTS_DIR

#: Names of cloud metadata services (GCP, AWS).
METADATA_HOSTS = frozenset({
    "metadata.google.internal", "metadata.goog", "metadata", "instance-data",
    "instance-data.ec2.internal",
})
#: Metadata addresses outside the link-local ranges (Alibaba, Oracle, AWS over IPv6).
METADATA_ADDRESSES = frozenset(ipaddress.ip_address(a) for a in (
    "100.100.100.200", "192.0.0.192", "fd00:ec2::254",
))
#: Schemes whose authority is a bucket name, never a host the server connects to.
BUCKET_SCHEMES = frozenset({"s3", "s3a", "s3n", "gs"})
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_DRIVE = re.compile(r"^[A-Za-z]:")
_IPV4_PART = re.compile(r"^(0x[0-9a-f]*|[0-9]+)$")


def _refuse(field: str, location: str, reason: str) -> errors.TracklogError:
    shown = location if len(location) <= 200 else location[:200] + "…"
    return errors.invalid(f"Invalid value {shown!r} for parameter '{field}': {reason}")


def _legacy_ipv4(host: str) -> ipaddress.IPv4Address | None:
    """The address ``inet_aton`` would read from ``host`` (``2852039166``,
    ``0xa9fea9fe``, ``0251.0376.0251.0376``, ``169.254.43518``), or None."""
    parts = host.split(".")
    if not 1 <= len(parts) <= 4 or not all(_IPV4_PART.match(p) for p in parts):
        return None
    numbers = []
    for part in parts:
        try:
            if part.startswith("0x"):
                numbers.append(int(part[2:] or "0", 16))
            elif len(part) > 1 and part.startswith("0"):
                numbers.append(int(part, 8))
            else:
                numbers.append(int(part))
        except ValueError:
            return None
    *head, last = numbers
    if any(n > 255 for n in head) or last >= 256 ** (4 - len(head)):
        return None
    value = 0
    for n in head:
        value = value * 256 + n
    return ipaddress.IPv4Address(value * 256 ** (4 - len(head)) + last)


def _address(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return _legacy_ipv4(host)


def _embedded(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> list:
    """``ip`` and any IPv4 address it carries (mapped, 6to4, NAT64)."""
    out: list = [ip]
    if isinstance(ip, ipaddress.IPv6Address):
        ip = ipaddress.IPv6Address(ip.packed)  # drop a zone id
        out.append(ip)
        for inner in (ip.ipv4_mapped, ip.sixtofour):
            if inner is not None:
                out.append(inner)
        if ip in _NAT64:
            out.append(ipaddress.IPv4Address(ip.packed[-4:]))
    return out


def forbidden_host(host: str) -> str | None:
    """Why the server must never connect to ``host`` for artifacts, or None."""
    name = unquote(host).strip("[]").rstrip(".").lower()
    if name in METADATA_HOSTS:
        return f"'{name}' is a cloud metadata service"
    ip = _address(name)
    if ip is None:
        return None
    for candidate in _embedded(ip):
        if candidate.is_link_local or candidate in METADATA_ADDRESSES:
            return f"{candidate} is a link-local or cloud metadata address"
        if candidate.is_unspecified or candidate.is_multicast or (
                isinstance(candidate, ipaddress.IPv4Address)
                and candidate == ipaddress.IPv4Address("255.255.255.255")):
            return f"{candidate} is not a host address"
    return None


def _decoded(location: str, field: str) -> str:
    decoded = location
    for _ in range(4):  # percent-encoding may be nested (%2500)
        again = unquote(decoded)
        if again == decoded:
            return decoded
        decoded = again
    raise _refuse(field, location, "it is percent-encoded too many times.")


def check_artifact_location(location: str, field: str = "artifact_location", *,
                            hosts: bool = True, proxy_layout: bool = True) -> str:
    """Return ``location`` if the server accepts it (rules in the module docstring).

    ``hosts=False`` skips the host rule (for operator configuration, which may name
    any host); ``proxy_layout=False`` skips the ``mlflow-artifacts:`` nesting rule (for
    locations already stored, which are still readable).
    """
    decoded = _decoded(location, field)
    for candidate in (location, decoded):
        if any(ord(c) < 32 or ord(c) == 127 for c in candidate):
            raise _refuse(field, location, "control characters (NUL included) are not "
                                           "allowed in an artifact location.")
        if "\\" in candidate or _DRIVE.match(candidate):
            raise _refuse(field, location, "Windows paths (UNC shares, drive letters) are "
                                           "not supported; use a URI or a POSIX path.")
    try:
        parts = urlsplit(location)
        hostname = parts.hostname
        parts.port  # noqa: B018 - a non-numeric port raises here
    except ValueError as exc:
        raise _refuse(field, location, f"malformed URI ({exc}).") from None
    scheme = parts.scheme
    if scheme == "runs":
        raise _refuse(field, location, "an artifact location cannot be a runs:/ URI.")
    if not scheme and parts.netloc:
        raise _refuse(field, location, "a network path (//host/…) is not supported; use a "
                                       "URI with a scheme or a local path.")
    if scheme == "file" and parts.netloc not in ("", "localhost"):
        raise _refuse(field, location, "file: URIs with a remote host are not supported; "
                                       "mount the share and use its local path.")
    for candidate in (parts.path, unquote(parts.path), decoded):
        if ".." in candidate.split("/"):
            raise _refuse(field, location, "'..' segments are not allowed.")
    if hosts and hostname and scheme not in BUCKET_SCHEMES:
        reason = forbidden_host(hostname)
        if reason is not None:
            raise _refuse(field, location, f"{reason}; the server never connects there.")
    if proxy_layout and scheme == "mlflow-artifacts":
        components = [c for c in parts.path.split("/") if c and c != "."]
        if ARTIFACTS_DIR in components[1:]:
            raise _refuse(field, location, "an mlflow-artifacts: location cannot lie inside "
                                           "a run's artifact directory ('artifacts' below "
                                           "the top level).")
    return location
