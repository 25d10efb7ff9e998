"""Headless Chromium: log in, watch the fleet page update after a tick, see the charts."""

from __future__ import annotations

from typing import Any

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from scaling import services
from tests.factories import make_service, make_user

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _login(page: Any, base_url: str, username: str, password: str) -> None:
    page.goto(f"{base_url}/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")


def test_the_fleet_page_updates_after_a_tick_and_the_charts_render(
    browser: Any, live_server: Any, settings: Any
) -> None:
    settings.TICK_SECONDS = 1  # the pages poll once per tick
    service = make_service("win-probability", replicas=2, demand_scale=40.0)
    make_user("operator", "operator", password="pw-for-tests-1")
    page = browser.new_page()
    try:
        _login(page, live_server.url, "operator", "pw-for-tests-1")
        expect(page.locator("h1")).to_have_text("Fleet")
        row = page.locator("tr[data-service=win-probability]")
        expect(row.locator("[data-field=desired]")).to_have_text("–")
        page.evaluate("window.__marker = 'same page'")

        services.service_evaluate(service_id=service.pk, tick_at=services.align_tick(timezone.now()))

        expect(row.locator("[data-field=desired]")).not_to_have_text("–", timeout=10_000)
        assert int(row.locator("[data-field=desired]").inner_text()) > 2
        assert page.evaluate("window.__marker") == "same page"  # no reload happened

        row.locator("a").click()
        expect(page.locator("h1")).to_contain_text("Win Probability")
        expect(page.locator("#chart-replicas[data-rendered=true] .main-svg").first).to_be_visible(timeout=15_000)
        expect(page.locator("#chart-latency[data-rendered=true]")).to_be_visible()
        expect(page.locator("#decisions")).to_contain_text("SCALED_OUT")
    finally:
        page.close()
