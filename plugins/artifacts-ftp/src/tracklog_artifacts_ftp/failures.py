"""FTP, TLS and socket failures turned into one-line TracklogErrors naming the URI
without its password. Replies are told apart by their numeric code, never their text
(the text is quoted for the reader)."""

from __future__ import annotations

import ftplib
import socket
import ssl

from tracklog.errors import ErrorCode, TracklogError
from tracklog_artifacts_ftp.connection import CA_FILE, Target


def reply_code(exc: BaseException) -> str:
    return str(exc)[:3]


def _one_line(text: object) -> str:
    return " ".join(str(text).split())[:200]


def _cause(exc: BaseException, target: Target) -> tuple[str, ErrorCode]:
    where = f"{target.host}:{target.port}"
    if isinstance(exc, ftplib.error_perm):
        code = reply_code(exc)
        if code == "530":
            return (f"login as {target.username!r} refused ({_one_line(exc)})",
                    ErrorCode.UNAUTHENTICATED)
        if code == "550":
            return f"refused by the server ({_one_line(exc)})", ErrorCode.PERMISSION_DENIED
        if code == "553":
            # Names are checked before they reach the server; vsftpd and others answer 553
            # to any file they cannot create, permissions first among the reasons.
            return (f"the server could not create it ({_one_line(exc)})",
                    ErrorCode.PERMISSION_DENIED)
        if code == "552":
            return f"storage exhausted ({_one_line(exc)})", ErrorCode.RESOURCE_EXHAUSTED
        return f"the server answered {_one_line(exc)!r}", ErrorCode.IO_ERROR
    if isinstance(exc, ftplib.error_temp):
        return (f"the server is unavailable ({_one_line(exc)})",
                ErrorCode.TEMPORARILY_UNAVAILABLE)
    if isinstance(exc, ssl.SSLCertVerificationError):
        return (f"the TLS certificate of {where} is not trusted ({exc.verify_message}; "
                f"trust its CA with {CA_FILE})", ErrorCode.TEMPORARILY_UNAVAILABLE)
    if isinstance(exc, ssl.SSLError):
        return f"TLS failed with {where} ({exc.reason})", ErrorCode.TEMPORARILY_UNAVAILABLE
    if isinstance(exc, ConnectionRefusedError):
        return f"connection to {where} refused", ErrorCode.TEMPORARILY_UNAVAILABLE
    if isinstance(exc, socket.gaierror):
        return f"host {target.host!r} not found", ErrorCode.TEMPORARILY_UNAVAILABLE
    if isinstance(exc, TimeoutError):
        return f"{where} did not answer in time", ErrorCode.TEMPORARILY_UNAVAILABLE
    if isinstance(exc, (ConnectionError, EOFError)):
        return f"the connection to {where} was lost", ErrorCode.TEMPORARILY_UNAVAILABLE
    if isinstance(exc, ftplib.Error):
        return f"unexpected answer {_one_line(exc)!r}", ErrorCode.IO_ERROR
    if isinstance(exc, OSError):
        return f"{type(exc).__name__} talking to {where}", ErrorCode.TEMPORARILY_UNAVAILABLE
    return type(exc).__name__, ErrorCode.INTERNAL_ERROR


def translate(exc: BaseException, uri: str, action: str, target: Target) -> TracklogError:
    scheme = "FTPS" if target.tls else "FTP"
    cause, code = _cause(exc, target)
    return TracklogError(f"{scheme} {action} {uri} failed: {cause}", code)
