"""What an ``ftp://`` or ``ftps://`` URI names, how to log in, and a pool per server.

``ftp[s]://[user[:password]@]host[:port][/path]``: the path is taken as written (as
MLflow's FTP repository takes it), ``/`` without one. Without a password in the URI the
login comes from ``~/.netrc`` (or the file ``NETRC`` names), then anonymous. ``ftps://``
is explicit FTPS (``AUTH TLS`` on the usual port, then ``PROT P`` so data is encrypted
too), with the server's certificate and host name checked against the system's CAs or
the CA file ``TRACKLOG_FTPS_CA_FILE`` names.

An ``ftplib.FTP`` object is one control connection with a current directory and at most
one transfer: the pool lends a whole connection to one thread at a time and takes it
back, checking an idle one with ``NOOP`` before lending it again.
"""

from __future__ import annotations

import ftplib
import netrc
import os
import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import cast
from urllib.parse import unquote, urlsplit

from tracklog import errors

#: A PEM file of CA certificates to trust for ``ftps://`` instead of the system's.
CA_FILE = "TRACKLOG_FTPS_CA_FILE"
#: Seconds to wait for the server (default 30).
TIMEOUT = "TRACKLOG_FTP_TIMEOUT"

MAX_IDLE = 8
#: An idle connection older than this is checked with NOOP before it is lent.
CHECK_AFTER = 10.0


@dataclass(frozen=True)
class Target:
    tls: bool
    host: str
    port: int
    username: str
    password: str = field(repr=False)
    ca_file: str | None
    timeout: float
    root: str

    @property
    def display(self) -> str:
        """The URI without its password, for messages."""
        scheme = "ftps" if self.tls else "ftp"
        host = f"[{self.host}]" if ":" in self.host else self.host
        user = "" if self.username == "anonymous" else f"{self.username}@"
        return f"{scheme}://{user}{host}:{self.port}{self.root if self.root != '/' else ''}"


def _netrc_login(host: str) -> tuple[str, str] | None:
    path = os.environ.get("NETRC") or os.path.expanduser("~/.netrc")
    if not os.path.isfile(path):
        return None
    try:
        found = netrc.netrc(path).authenticators(host)
    except (netrc.NetrcParseError, OSError) as exc:
        raise errors.invalid(f"Cannot read {path}: {exc}") from None
    if not found:
        return None
    return found[0], found[2] or ""


def parse_target(uri: str) -> Target:
    """The connection settings of an FTP URI; malformed URIs and settings are refused
    here, before any connection is made."""
    try:
        parsed = urlsplit(uri)
        port = parsed.port
    except ValueError as exc:
        raise errors.invalid(f"Malformed FTP artifact URI: {exc}") from None
    if parsed.scheme not in ("ftp", "ftps") or not parsed.hostname:
        raise errors.invalid("Not an FTP artifact URI (ftp://user@host[:port]/path)")
    if parsed.query or parsed.fragment:
        raise errors.invalid("FTP artifact URIs take no query or fragment")
    root = parsed.path.rstrip("/") or "/"
    if any(part in (".", "..") for part in root.split("/")) or "//" in root:
        raise errors.invalid("FTP artifact URI paths must be normalised (no '.', '..', '//')")
    username = unquote(parsed.username) if parsed.username else None
    password = unquote(parsed.password) if parsed.password is not None else None
    if password is None:
        login = _netrc_login(parsed.hostname)
        if login and (username is None or username == login[0]):
            username, password = login
    if username is None:
        username, password = "anonymous", "anonymous@"
    tls = parsed.scheme == "ftps"
    ca_file = os.environ.get(CA_FILE) or None
    if ca_file and not os.path.isfile(ca_file):
        raise errors.invalid(f"{CA_FILE} names no file: {ca_file!r}")
    try:
        timeout = float(os.environ.get(TIMEOUT) or 30)
        if timeout <= 0:
            raise ValueError
    except ValueError:
        raise errors.invalid(f"{TIMEOUT} must be a positive number of seconds") from None
    return Target(tls, parsed.hostname, port or 21, username, password or "", ca_file,
                  timeout, root)


class _FTPS(ftplib.FTP_TLS):
    """FTP_TLS whose data connections resume the control connection's TLS session, as
    vsftpd (``require_ssl_reuse``) and other servers demand."""

    _prot_p: bool  # set by FTP_TLS.prot_p()/prot_c(); typeshed leaves the private flag out

    def ntransfercmd(self, cmd, rest=None):  # noqa: ANN001, ANN201 - ftplib's signature
        conn, size = ftplib.FTP.ntransfercmd(self, cmd, rest)
        if self._prot_p:
            # PROT P follows AUTH TLS: the control connection is an SSLSocket by now.
            control = cast(ssl.SSLSocket, self.sock)
            conn = self.context.wrap_socket(conn, server_hostname=self.host,
                                            session=control.session)
        return conn, size


def connect(target: Target) -> ftplib.FTP:
    """A logged-in connection in passive binary mode. Raises ftplib's, ssl's and
    socket's exceptions."""
    if target.tls:
        context = ssl.create_default_context(cafile=target.ca_file)
        ftp: ftplib.FTP = _FTPS(context=context, timeout=target.timeout)
    else:
        ftp = ftplib.FTP(timeout=target.timeout)
    try:
        ftp.connect(target.host, target.port)
        if isinstance(ftp, ftplib.FTP_TLS):
            ftp.auth()
        ftp.login(target.username, target.password)
        if isinstance(ftp, ftplib.FTP_TLS):
            ftp.prot_p()
        ftp.set_pasv(True)
        ftp.voidcmd("TYPE I")
    except BaseException:
        ftp.close()
        raise
    return ftp


@dataclass
class Connection:
    ftp: ftplib.FTP
    features: frozenset[str]
    used: float = 0.0

    def close(self) -> None:
        try:
            self.ftp.close()
        except OSError:
            pass


def _features(ftp: ftplib.FTP) -> frozenset[str]:
    """The FEAT answer's first words (MLST, SIZE, UTF8, …); empty if FEAT is unknown."""
    try:
        lines = ftp.sendcmd("FEAT").splitlines()
    except ftplib.error_perm:
        return frozenset()
    return frozenset(line.split()[0].upper() for line in lines[1:-1] if line.strip())


class Pool:
    """Connections to one server and login, lent to one thread at a time."""

    def __init__(self, target: Target) -> None:
        self.target = target
        self._idle: list[Connection] = []
        self._lock = threading.Lock()

    def acquire(self) -> Connection:
        while True:
            with self._lock:
                conn = self._idle.pop() if self._idle else None
            if conn is None:
                break
            if time.monotonic() - conn.used < CHECK_AFTER:
                return conn
            try:
                conn.ftp.voidcmd("NOOP")  # servers drop idle control connections
                return conn
            except (ftplib.Error, OSError, EOFError):
                conn.close()
        ftp = connect(self.target)
        try:
            features = _features(ftp)
            if "UTF8" in features:
                try:
                    ftp.sendcmd("OPTS UTF8 ON")
                except ftplib.Error:
                    pass
            return Connection(ftp, features)
        except BaseException:
            ftp.close()
            raise

    def release(self, conn: Connection, reuse: bool) -> None:
        if reuse:
            conn.used = time.monotonic()
            with self._lock:
                if len(self._idle) < MAX_IDLE:
                    self._idle.append(conn)
                    return
        conn.close()

    @contextmanager
    def borrow(self) -> Iterator[Connection]:
        """A connection for the block; it goes back to the pool after success or a
        server's refusal (a 5xx answer leaves the control connection in step), and is
        closed after anything else."""
        conn = self.acquire()
        reuse = False
        try:
            yield conn
            reuse = True
        except (errors.TracklogError, ftplib.error_perm):
            reuse = True
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
    """The process's pool for the server and login of ``target``, whatever its root
    (repositories are made per request; the connections outlive them)."""
    key = replace(target, root="/")
    with _pools_lock:
        pool = _pools.get(key)
        if pool is None:
            if len(_pools) >= 32:
                _pools.pop(next(iter(_pools))).clear()
            pool = _pools[key] = Pool(key)
        return pool


def _forget_after_fork() -> None:
    global _pools_lock
    _pools.clear()
    _pools_lock = threading.Lock()


os.register_at_fork(after_in_child=_forget_after_fork)
