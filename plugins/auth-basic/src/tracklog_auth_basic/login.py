"""A sign-in page for browsers: the session is an expiring token of the user's in an
HttpOnly cookie. A cookie authenticates only safe requests (GET, HEAD), so a page of
another site can make a browser send it with nothing that changes data; writes need
Basic credentials or a bearer token. The sign-in and sign-out forms carry a CSRF token
that must match a cookie of this site (double submit)."""

from __future__ import annotations

import hmac
import html
import secrets
from typing import Any
from urllib.parse import parse_qs, quote

import anyio.to_thread

from tracklog import errors
from tracklog.server import rule
from tracklog_auth_basic.runtime import Caller, runtime_of
from tracklog_auth_basic.store import now_ms

SESSION_COOKIE = "tracklog_session"
CSRF_COOKIE = "tracklog_csrf"
SESSION_HOURS = 12
SAFE_METHODS = ("GET", "HEAD")

_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>Sign in - tracklog</title>
<style>body{{font-family:system-ui,sans-serif;max-width:22rem;margin:4rem auto}}
label{{display:block;margin:.6rem 0}}input{{width:100%;padding:.3rem}}
.error{{color:#b00020}}</style></head>
<body><h1>tracklog</h1>{message}
<form method="post" action="{action}">
<input type="hidden" name="csrf" value="{csrf}"><input type="hidden" name="next" value="{next}">
<label>User name <input name="username" autocomplete="username" required autofocus></label>
<label>Password <input name="password" type="password" autocomplete="current-password"
required></label><button type="submit">Sign in</button></form></body></html>
"""


def _login_resource(req: Any) -> dict[str, Any]:
    return {"auth_login": "1"}


def _safe_next(value: str, prefix: str) -> str:
    # Only a path on this server: never "//host" or a scheme.
    if value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return value
    return (prefix or "") + "/"


def _cookie_path(prefix: str) -> str:
    return (prefix or "") + "/"


def _page(action: str, next_path: str, message: str = "", status: int = 200) -> Any:
    from starlette.responses import HTMLResponse

    csrf = secrets.token_urlsafe(24)
    body = _PAGE.format(action=html.escape(action), csrf=csrf, next=html.escape(next_path),
                        message=f'<p class="error">{html.escape(message)}</p>' if message
                        else "")
    response = HTMLResponse(body, status_code=status,
                            headers={"Cache-Control": "no-store",
                                     "Content-Security-Policy": "default-src 'none'; "
                                     "style-src 'unsafe-inline'; form-action 'self'"})
    response.set_cookie(CSRF_COOKIE, csrf, httponly=True, samesite="strict",
                        path=action)
    return response


async def _form(request: Any) -> dict[str, str]:
    body = await request.body()
    if len(body) > 8192:
        raise errors.invalid("The sign-in form is too large")
    fields = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
    return {k: v[0] for k, v in fields.items() if v}


def _csrf_ok(request: Any, form: dict[str, str]) -> bool:
    cookie, sent = request.cookies.get(CSRF_COOKIE, ""), form.get("csrf", "")
    return bool(cookie) and hmac.compare_digest(cookie.encode(), sent.encode())


def install(app: Any, config: Any, prefix: str) -> None:
    from starlette.responses import RedirectResponse

    login_path, logout_path = prefix + "/login", prefix + "/logout"

    @rule("read", _login_resource)
    async def login_form(request: Any) -> Any:
        return _page(login_path, _safe_next(request.query_params.get("next", ""), prefix))

    @rule("read", _login_resource)
    async def login(request: Any) -> Any:
        rt = runtime_of(request.app, config)
        form = await _form(request)
        next_path = _safe_next(form.get("next", ""), prefix)
        if not _csrf_ok(request, form):
            return _page(login_path, next_path, "The form expired; please try again.", 400)
        username, password = form.get("username", ""), form.get("password", "")
        client = request.client.host if request.client else "unknown"
        keys = ("user:" + username, "addr:" + client)
        try:
            rt.limiter.check(*keys)
        except errors.TracklogError as exc:
            return _page(login_path, next_path, exc.message, 429)
        user = await anyio.to_thread.run_sync(rt.store.authenticate, username, password)
        if user is None:
            rt.limiter.failed(*keys)
            return _page(login_path, next_path, "Wrong user name or password.", 401)
        rt.limiter.succeeded(keys[0])
        expires = now_ms() + SESSION_HOURS * 3_600_000
        _, secret = await anyio.to_thread.run_sync(rt.store.create_token, user.id,
                                                   "browser session", expires)
        response = RedirectResponse(next_path, status_code=303)
        response.set_cookie(SESSION_COOKIE, secret, max_age=SESSION_HOURS * 3600,
                            httponly=True, samesite="lax", path=_cookie_path(prefix))
        response.delete_cookie(CSRF_COOKIE, path=login_path)
        return response

    @rule("read", _login_resource)
    async def logout(request: Any) -> Any:
        # The session cookie is SameSite=Lax: another site's form posting here arrives
        # without it, so it cannot sign anyone out.
        rt = runtime_of(request.app, config)
        session = request.cookies.get(SESSION_COOKIE)
        if session:
            await anyio.to_thread.run_sync(rt.store.revoke_session, session)
        response = RedirectResponse(login_path, status_code=303)
        response.delete_cookie(SESSION_COOKIE, path=_cookie_path(prefix))
        return response

    app.add_route(login_path, login_form, methods=["GET"])
    app.add_route(login_path, login, methods=["POST"])
    app.add_route(logout_path, logout, methods=["POST"])


def session_caller(request: Any, runtime: Any) -> Caller | None:
    """The user a session cookie names, for safe requests only."""
    secret = request.cookies.get(SESSION_COOKIE)
    if not secret or request.method not in SAFE_METHODS:
        return None
    user = runtime.store.user_for_token(secret)
    return None if user is None else Caller(user, runtime)


def login_url(prefix: str, path: str) -> str:
    return f"{prefix}/login?next={quote(path, safe='/')}"
