"""A sign-in page for browsers. Signing in starts a session (see
:mod:`tracklog_auth_basic.sessions` for what its cookie authenticates); the sign-in form
carries a CSRF token that must match a cookie of this site (double submit)."""

from __future__ import annotations

import hmac
import html
import secrets
from typing import Any
from urllib.parse import parse_qs, quote

import anyio.to_thread

from tracklog import errors
from tracklog.server import rule
from tracklog_auth_basic.runtime import runtime_of
from tracklog_auth_basic.sessions import (
    SAFE_METHODS,
    SESSION_COOKIE,
    WRITE_TOKEN_COOKIE,
    write_token,
)
from tracklog_auth_basic.store import now_ms

CSRF_COOKIE = "tracklog_csrf"
SESSION_HOURS = 12

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
        response.set_cookie(WRITE_TOKEN_COOKIE, write_token(secret),
                            max_age=SESSION_HOURS * 3600, httponly=False, samesite="strict",
                            path=_cookie_path(prefix))
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
        response.delete_cookie(WRITE_TOKEN_COOKIE, path=_cookie_path(prefix))
        return response

    app.add_route(login_path, login_form, methods=["GET"])
    app.add_route(login_path, login, methods=["POST"])
    app.add_route(logout_path, logout, methods=["POST"])


def login_url(prefix: str, path: str) -> str:
    return f"{prefix}/login?next={quote(path, safe='/')}"


_API_ROOTS = ("/api/", "/ajax-api/", "/get-artifact", "/mlflow-artifacts/", "/v1/", "/health",
              "/metrics", "/version")


def _page_navigation(scope: dict[str, Any], prefix: str) -> bool:
    """A browser opening a page (not the client, not a page's own fetch of the API)."""
    if scope["type"] != "http" or scope["method"] not in SAFE_METHODS:
        return False
    path = scope["path"]
    if prefix and path.startswith(prefix):
        path = path[len(prefix):]
    if path.startswith(_API_ROOTS):
        return False
    headers = dict(scope["headers"])
    return (headers.get(b"sec-fetch-mode") == b"navigate"
            or b"text/html" in headers.get(b"accept", b""))


def redirect_to_sign_in(prefix: str) -> Any:
    """An ASGI wrapper: a browser opening a page without a session is sent to the sign-in
    page (with the page to come back to) instead of the Basic challenge, which would make
    the browser ask for credentials in its own dialog."""

    def wrap(app: Any) -> Any:
        async def asgi(scope: dict[str, Any], receive: Any, send: Any) -> None:
            if not _page_navigation(scope, prefix):
                await app(scope, receive, send)
                return
            redirected = False

            async def answer(message: dict[str, Any]) -> None:
                nonlocal redirected
                if message["type"] == "http.response.start" and message["status"] == 401:
                    redirected = True
                    target = scope["path"] + (
                        "?" + scope["query_string"].decode("latin-1")
                        if scope.get("query_string") else "")
                    location = login_url(prefix, target).encode("latin-1")
                    await send({"type": "http.response.start", "status": 303,
                                "headers": [(b"location", location),
                                            (b"content-length", b"0"),
                                            (b"cache-control", b"no-store")]})
                    await send({"type": "http.response.body", "body": b""})
                elif not redirected:
                    await send(message)

            await app(scope, receive, answer)

        return asgi

    return wrap
