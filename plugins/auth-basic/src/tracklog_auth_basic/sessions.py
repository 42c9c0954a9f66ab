"""Browser sessions: which requests a session cookie may authenticate.

The session is an expiring token of the user's in an HttpOnly cookie. The cookie alone
authenticates only safe requests (GET, HEAD), so a page of another site can make a
browser send it with nothing that changes data. A write with the cookie must also carry
``X-CSRF-Token``: an HMAC of the session secret, handed to the site's own pages in the
readable ``tracklog_csrf_token`` cookie, which another site can neither read nor compute.
"""

from __future__ import annotations

import hmac
from typing import Any

SESSION_COOKIE = "tracklog_session"
#: Readable by the site's own scripts, which send it back as the CSRF_HEADER of a write.
WRITE_TOKEN_COOKIE = "tracklog_csrf_token"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = ("GET", "HEAD")


def write_token(session_secret: str) -> str:
    """What a write with the session cookie must send as ``X-CSRF-Token``."""
    return hmac.new(session_secret.encode(), b"tracklog csrf", "sha256").hexdigest()


def session_secret(request: Any) -> str | None:
    """The session token the request's cookie carries, if the request may use it: a safe
    request, or a write that carries the session's write token."""
    secret = request.cookies.get(SESSION_COOKIE)
    if not secret:
        return None
    if request.method not in SAFE_METHODS:
        sent = request.headers.get(CSRF_HEADER, "")
        if not hmac.compare_digest(sent.encode(), write_token(secret).encode()):
            return None
    return str(secret)
