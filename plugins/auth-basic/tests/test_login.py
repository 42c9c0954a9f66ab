"""The browser sign-in page: CSRF-checked form, HttpOnly session cookie that only
authenticates safe requests, sign-out revoking the session."""

from __future__ import annotations

import re
from pathlib import Path

from .conftest import ADMIN, ADMIN_PASSWORD, API, auth_env, build_app


def test_sign_in_and_out(tmp_path: Path) -> None:
    for a in build_app(tmp_path, auth_env()):
        http = a.client
        assert http.get("/").status_code == 401
        page = http.get("/login", params={"next": "/experiments/0"})
        assert page.status_code == 200 and "<form" in page.text
        csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
        form = {"csrf": csrf, "next": "/experiments/0", "username": ADMIN,
                "password": ADMIN_PASSWORD}
        forged = http.post("/login", data={**form, "csrf": "forged"}, follow_redirects=False)
        assert forged.status_code == 400 and "tracklog_session" not in forged.headers.get(
            "set-cookie", "")
        # Every form shown comes with a new CSRF cookie.
        form["csrf"] = http.cookies.get("tracklog_csrf")
        wrong = http.post("/login", data={**form, "password": "wrong password!!"},
                          follow_redirects=False)
        assert wrong.status_code == 401 and ADMIN_PASSWORD not in wrong.text
        http.get("/login")  # a fresh form: the CSRF cookie is renewed with it
        csrf = http.cookies.get("tracklog_csrf")
        evil = http.post("/login", data={**form, "csrf": csrf, "next": "//evil.example/x"},
                         follow_redirects=False)
        assert evil.status_code == 303 and evil.headers["location"] == "/"
        cookie = evil.headers["set-cookie"].lower()
        assert "tracklog_session=" in cookie and "httponly" in cookie and "samesite=lax" in cookie
        # The cookie signs in the UI and API reads; a write needs the session's write
        # token too, which the site's pages read from their own cookie.
        assert http.get("/").status_code == 200
        assert http.get(f"{API}/users/current").json()["user"]["username"] == ADMIN
        token = http.cookies.get("tracklog_csrf_token")
        assert token and "httponly" not in [
            part.strip() for c in evil.headers.get_list("set-cookie")
            if c.startswith("tracklog_csrf_token=") for part in c.lower().split(";")]
        write = http.post(f"{API}/experiments/create", json={"name": "via-cookie"})
        assert write.status_code == 401
        forged_write = http.post(f"{API}/experiments/create", json={"name": "via-cookie"},
                                 headers={"X-CSRF-Token": token[:-2] + "00"})
        assert forged_write.status_code == 401
        made = http.post(f"{API}/experiments/create", json={"name": "via-cookie"},
                         headers={"X-CSRF-Token": token})
        assert made.status_code == 200, made.text
        out = http.post("/logout", follow_redirects=False)
        assert out.status_code == 303
        session = out.headers.get("set-cookie", "")
        assert "tracklog_session" in session
        assert http.get("/").status_code == 401
        # The revoked session's token writes nothing either.
        http.cookies.set("tracklog_session", "revoked")
        after = http.post(f"{API}/experiments/create", json={"name": "after-logout"},
                          headers={"X-CSRF-Token": token})
        assert after.status_code == 401
