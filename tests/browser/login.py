"""Signing in through the login page, as each browser test starts."""

from __future__ import annotations

from typing import Any

from playwright.sync_api import expect

PASSWORD = "pw-for-tests-1"  # every browser test's users' (make_user(..., password=PASSWORD))


def fill_login(page: Any, username: str, password: str = PASSWORD) -> None:
    """Sign in on the login page `page` is on."""
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")


def log_in(page: Any, base_url: str, username: str, password: str = PASSWORD) -> None:
    """Open the login page, sign in, and wait for the fleet page it leads to."""
    page.goto(f"{base_url}/login/")
    fill_login(page, username, password)
    expect(page.locator("h1")).to_have_text("Fleet")
