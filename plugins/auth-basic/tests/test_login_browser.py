"""In Chromium: sign in on the login page, then change data through the web UI (its
writes carry the session's write token) and sign out."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tracklog.testing import service_unavailable

from .conftest import ADMIN, ADMIN_PASSWORD, API, ROOT, auth_env, run_server

CHROMIUM = "/usr/bin/chromium"

pytest.importorskip("tracklog_ui", reason="the web UI plugin is not installed")


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    if not os.path.exists(CHROMIUM):
        service_unavailable("chromium", f"{CHROMIUM} is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM,
                                    args=["--headless", "--no-sandbox", "--disable-gpu"])
        yield browser
        browser.close()


def test_sign_in_then_create_an_experiment_in_the_ui(browser, tmp_path: Path) -> None:
    server = run_server(tmp_path, f"sqlite:///{tmp_path / 't.db'}", auth_env(), prefix="/tl")
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page.set_default_timeout(10_000)
    try:
        base = server.url  # under the prefix
        page.goto(base + "/")
        assert "/tl/login" in page.url  # a browser without a session is sent to sign in
        page.fill("input[name=username]", ADMIN)
        page.fill("input[name=password]", "not the password!!")
        page.click("button[type=submit]")
        page.wait_for_selector("text=Wrong user name or password.")
        page.screenshot(path=str(tmp_path / "sign-in.png"))
        page.fill("input[name=username]", ADMIN)
        page.fill("input[name=password]", ADMIN_PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_selector("#new-name")
        page.fill("#new-name", "made-after-sign-in")
        page.click("#create-experiment button")
        page.wait_for_url(re.compile(r"/experiments/\d+$"))
        made = httpx.get(base + API + "/experiments/get-by-name", headers=ROOT,
                         params={"experiment_name": "made-after-sign-in"})
        assert made.status_code == 200, made.text
        page.screenshot(path=str(tmp_path / "signed-in.png"))
    except Exception:
        page.screenshot(path=str(tmp_path / "failure.png"), full_page=True)
        print(f"screenshot: {tmp_path / 'failure.png'}")
        raise
    finally:
        context.close()
        server.stop()
