"""SSH connections: what the user's SSH configuration says, and a pool per server.

Everything OpenSSH's ``ssh`` would use for the host comes from the user's
``~/.ssh/config`` (``HostName``, ``User``, ``Port``, ``IdentityFile``, ``IdentitiesOnly``,
``UserKnownHostsFile``, ``StrictHostKeyChecking``, ``ProxyCommand``, ``ConnectTimeout``);
keys come from those identity files, the SSH agent and ``~/.ssh/id_*``; a password only
from the URI. Host keys are checked against ``~/.ssh/known_hosts`` and
``/etc/ssh/ssh_known_hosts`` (or the configured files): an unknown or changed key refuses
the connection unless checking is turned down explicitly.

One paramiko SFTP session serves one thread at a time, so the pool lends a whole
connection to one caller and takes it back afterwards; idle connections are kept for
the next request, and a connection that failed below the SFTP layer is never reused.
"""

from __future__ import annotations

import getpass
import logging
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import paramiko  # type: ignore[import-untyped]  # ships no hints; types-paramiko is not pinned

from tracklog import errors
from tracklog_artifacts_sftp.location import SFTPLocation

log = logging.getLogger(__name__)

#: ``yes`` (default), ``accept-new`` or ``no``; overrides ``StrictHostKeyChecking``.
HOST_KEY_CHECKING = "TRACKLOG_SFTP_STRICT_HOST_KEY_CHECKING"
#: Another SSH client configuration file than ``~/.ssh/config``; ``none`` reads none.
SSH_CONFIG = "TRACKLOG_SFTP_SSH_CONFIG"
#: Seconds to wait for the TCP connection, the banner and authentication (default 15).
CONNECT_TIMEOUT = "TRACKLOG_SFTP_CONNECT_TIMEOUT"

SYSTEM_KNOWN_HOSTS = "/etc/ssh/ssh_known_hosts"
#: Idle connections kept per server.
MAX_IDLE = 8
#: Handshakes in progress at once per server: stays under OpenSSH's default MaxStartups
#: (10), beyond which the server drops new connections at random.
MAX_HANDSHAKES = 4
KEEPALIVE = 30


@dataclass(frozen=True)
class Target:
    """Where and how to connect: the URI completed by the SSH configuration."""

    hostname: str
    port: int
    username: str
    password: str | None = field(repr=False)
    key_files: tuple[str, ...]
    identities_only: bool
    known_hosts: tuple[str, ...]
    host_key_checking: str
    proxy_command: str | None
    timeout: float


def _ssh_config() -> paramiko.SSHConfig | None:
    path = os.environ.get(SSH_CONFIG) or os.path.expanduser("~/.ssh/config")
    if path == "none" or not os.path.isfile(path):
        return None
    try:
        stat = os.stat(path)
        key = (path, stat.st_mtime_ns, stat.st_size)
        with _config_lock:
            cached = _config_cache.get(key)
            if cached is None:
                _config_cache.clear()
                cached = _config_cache[key] = paramiko.SSHConfig.from_path(path)
            return cached
    except (OSError, paramiko.ConfigParseError, ValueError) as exc:
        raise errors.invalid(f"Cannot read the SSH configuration {path}: {exc}") from None


_config_cache: dict[tuple[str, int, int], paramiko.SSHConfig] = {}
_config_lock = threading.Lock()


def _choice(name: str, value: str, allowed: tuple[str, ...]) -> str:
    value = value.strip().lower()
    if value not in allowed:
        raise errors.invalid(f"{name} must be one of {', '.join(allowed)}, not {value!r}")
    return value


def resolve_target(location: SFTPLocation) -> Target:
    """The connection settings for ``location``; malformed settings are refused here,
    naming the variable, before any connection is made."""
    config = _ssh_config()
    host: dict[str, Any] = dict(config.lookup(location.host)) if config else {}
    checking = host.get("stricthostkeychecking", "yes")
    if checking == "ask":  # nobody is there to answer
        checking = "yes"
    if checking in ("off", "false"):
        checking = "no"
    env_checking = os.environ.get(HOST_KEY_CHECKING)
    if env_checking:
        checking = env_checking
    checking = _choice(HOST_KEY_CHECKING if env_checking else "StrictHostKeyChecking",
                       checking, ("yes", "accept-new", "no"))
    timeout_text = os.environ.get(CONNECT_TIMEOUT) or host.get("connecttimeout") or "15"
    try:
        timeout = float(timeout_text)
        if timeout <= 0:
            raise ValueError
    except ValueError:
        raise errors.invalid(
            f"{CONNECT_TIMEOUT} (or ConnectTimeout) must be a positive number of seconds"
        ) from None
    known = host.get("userknownhostsfile", "~/.ssh/known_hosts ~/.ssh/known_hosts2").split()
    known.append(host.get("globalknownhostsfile", SYSTEM_KNOWN_HOSTS))
    port = location.port or int(host.get("port", 22))
    return Target(
        hostname=host.get("hostname", location.host),
        port=port,
        username=location.username or host.get("user") or getpass.getuser(),
        password=location.password,
        key_files=tuple(os.path.expanduser(p) for p in host.get("identityfile", ())
                        if os.path.isfile(os.path.expanduser(p))),
        identities_only=host.get("identitiesonly", "no") == "yes",
        known_hosts=tuple(os.path.expanduser(p) for p in known),
        host_key_checking=checking,
        proxy_command=host.get("proxycommand") if host.get("proxycommand") != "none" else None,
        timeout=timeout,
    )


class UnknownHostKey(paramiko.SSHException):
    """The server's host key is in none of the known-hosts files."""

    def __init__(self, hostname: str, key: paramiko.PKey) -> None:
        super().__init__(hostname)
        self.hostname = hostname
        self.fingerprint = key.fingerprint


class _Policy(paramiko.MissingHostKeyPolicy):
    def __init__(self, checking: str) -> None:
        self.checking = checking

    def missing_host_key(self, client: paramiko.SSHClient, hostname: str,
                         key: paramiko.PKey) -> None:
        if self.checking == "yes":
            raise UnknownHostKey(hostname, key)
        # Accepted for this connection only: nothing is written to known_hosts.
        log.warning("SFTP: accepting the unverified host key %s of %s (%s=%s)",
                    key.fingerprint, hostname, HOST_KEY_CHECKING, self.checking)


def connect(target: Target) -> paramiko.SSHClient:
    """A connected, authenticated client. Raises paramiko's and socket's exceptions."""
    client = paramiko.SSHClient()
    if target.host_key_checking != "no":
        for path in target.known_hosts:
            if os.path.isfile(path):
                client.load_system_host_keys(path)
    client.set_missing_host_key_policy(_Policy(target.host_key_checking))
    sock = paramiko.ProxyCommand(target.proxy_command) if target.proxy_command else None
    try:
        client.connect(
            target.hostname,
            target.port,
            username=target.username,
            password=target.password,
            key_filename=list(target.key_files) or None,
            allow_agent=not target.identities_only,
            look_for_keys=not target.identities_only,
            timeout=target.timeout,
            banner_timeout=target.timeout,
            auth_timeout=target.timeout,
            channel_timeout=target.timeout,
            sock=sock,
        )
    except BaseException:
        client.close()
        raise
    transport = client.get_transport()
    if transport is not None:
        transport.set_keepalive(KEEPALIVE)
    return client


@dataclass
class Connection:
    client: paramiko.SSHClient
    sftp: paramiko.SFTPClient

    @property
    def active(self) -> bool:
        transport = self.client.get_transport()
        return transport is not None and transport.is_active()

    def close(self) -> None:
        try:
            self.sftp.close()
        finally:
            self.client.close()


class Pool:
    """Connections to one target, lent to one thread at a time."""

    def __init__(self, target: Target) -> None:
        self.target = target
        self._idle: list[Connection] = []
        self._lock = threading.Lock()
        self._handshakes = threading.BoundedSemaphore(MAX_HANDSHAKES)

    def acquire(self) -> Connection:
        while True:
            with self._lock:
                conn = self._idle.pop() if self._idle else None
            if conn is None:
                break
            if conn.active:
                return conn
            conn.close()
        with self._handshakes:
            client = connect(self.target)
            try:
                return Connection(client, client.open_sftp())
            except BaseException:
                client.close()
                raise

    def release(self, conn: Connection, reuse: bool) -> None:
        if reuse and conn.active:
            with self._lock:
                if len(self._idle) < MAX_IDLE:
                    self._idle.append(conn)
                    return
        conn.close()

    @contextmanager
    def borrow(self) -> Iterator[paramiko.SFTPClient]:
        """An SFTP session for the block. It goes back to the pool unless something
        below the SFTP layer failed (a plain SFTP status error leaves it usable)."""
        conn = self.acquire()
        reuse = False
        try:
            yield conn.sftp
            reuse = True
        except errors.TracklogError:
            reuse = True
            raise
        except OSError as exc:
            # paramiko raises a plain OSError for an SFTP status; subclasses are sockets.
            reuse = type(exc) is OSError
            raise
        finally:
            self.release(conn, reuse)

    def clear(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()


_pools: dict[Target, Pool] = {}
_pools_lock = threading.Lock()


def pool_for(target: Target) -> Pool:
    """The process's pool for ``target`` (repositories are made per request; the
    connections outlive them)."""
    with _pools_lock:
        pool = _pools.get(target)
        if pool is None:
            if len(_pools) >= 32:
                _pools.pop(next(iter(_pools))).clear()
            pool = _pools[target] = Pool(target)
        return pool


def _forget_after_fork() -> None:
    # A forked child must not talk over its parent's connections (nor wait on its locks).
    global _pools_lock
    _pools.clear()
    _pools_lock = threading.Lock()


os.register_at_fork(after_in_child=_forget_after_fork)
