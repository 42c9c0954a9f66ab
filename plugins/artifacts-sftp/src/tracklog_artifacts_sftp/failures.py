"""SSH, SFTP and socket failures turned into one-line TracklogErrors.

The message names the URI without its password and says what went wrong; it never
carries a traceback or a secret. SFTP status codes are read as numbers (paramiko maps
"no such file" and "permission denied" to errno values); OpenSSH answers everything else
with a generic "Failure", which callers resolve by looking at the state first.
"""

from __future__ import annotations

import errno
import socket

import paramiko  # type: ignore[import-untyped]  # ships no hints; types-paramiko is not pinned

from tracklog.errors import ErrorCode, TracklogError
from tracklog_artifacts_sftp.connection import HOST_KEY_CHECKING, Target, UnknownHostKey


def _one_line(text: object) -> str:
    return " ".join(str(text).split())


def _cause(exc: BaseException, target: Target) -> tuple[str, ErrorCode]:
    where = f"{target.hostname}:{target.port}"
    if isinstance(exc, paramiko.BadHostKeyException):
        return (
            f"the host key of {where} ({exc.key.fingerprint}) does not match the one in "
            f"known_hosts ({exc.expected_key.fingerprint}): refusing to connect",
            ErrorCode.UNAUTHENTICATED,
        )
    if isinstance(exc, UnknownHostKey):
        return (
            f"the host key of {where} ({exc.fingerprint}) is not in known_hosts (add it, "
            f"e.g. ssh-keyscan -p {target.port} {target.hostname} >> ~/.ssh/known_hosts, "
            f"or set {HOST_KEY_CHECKING}=accept-new)",
            ErrorCode.UNAUTHENTICATED,
        )
    if isinstance(exc, paramiko.AuthenticationException):
        tried = "the password from the URI" if target.password is not None else (
            "keys from the SSH configuration" + ("" if target.identities_only
                                                 else ", the agent and ~/.ssh/id_*"))
        return (f"authentication as {target.username!r} failed (tried {tried})",
                ErrorCode.UNAUTHENTICATED)
    if isinstance(exc, paramiko.ssh_exception.NoValidConnectionsError):
        return f"connection to {where} refused", ErrorCode.TEMPORARILY_UNAVAILABLE
    if isinstance(exc, socket.gaierror):
        return f"host {target.hostname!r} not found", ErrorCode.TEMPORARILY_UNAVAILABLE
    if isinstance(exc, TimeoutError):
        return f"{where} did not answer in time", ErrorCode.TEMPORARILY_UNAVAILABLE
    if isinstance(exc, (ConnectionError, EOFError)):
        return f"the connection to {where} was lost", ErrorCode.TEMPORARILY_UNAVAILABLE
    if isinstance(exc, paramiko.SSHException):
        return f"SSH error: {_one_line(exc)}", ErrorCode.TEMPORARILY_UNAVAILABLE
    if isinstance(exc, OSError):
        if exc.errno == errno.ENOENT:
            return "no such file or directory", ErrorCode.RESOURCE_DOES_NOT_EXIST
        if exc.errno == errno.EACCES:
            return "permission denied", ErrorCode.PERMISSION_DENIED
        if type(exc) is OSError:  # an SFTP status other than the two above
            return f"the server answered {_one_line(exc) or 'Failure'!r}", ErrorCode.IO_ERROR
        return f"{type(exc).__name__} talking to {where}", ErrorCode.TEMPORARILY_UNAVAILABLE
    return type(exc).__name__, ErrorCode.INTERNAL_ERROR


def translate(exc: BaseException, uri: str, action: str, target: Target) -> TracklogError:
    """A TracklogError for ``exc`` raised while ``action`` on ``uri`` (shown as given: the
    caller passes it without a password)."""
    cause, code = _cause(exc, target)
    return TracklogError(f"SFTP {action} {uri} failed: {cause}", code)
