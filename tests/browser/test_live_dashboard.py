"""Headless Chromium: log in, watch the fleet page and its charts update after a tick, see the service's
charts, and see a live page say so when it stops refreshing."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.sessions.models import Session
from django.utils import timezone
from playwright.sync_api import expect

from scaling import services
from tests.browser.login import PASSWORD, fill_login, log_in
from tests.factories import make_service, make_user

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_the_fleet_page_updates_after_a_tick_and_the_charts_render(
    browser: Any, live_server: Any, settings: Any
) -> None:
    settings.TICK_SECONDS = 1  # the pages poll once per tick
    service = make_service("win-probability", replicas=2, demand_scale=40.0)
    make_user("operator", "operator", password=PASSWORD)
    page = browser.new_page()
    try:
        log_in(page, live_server.url, "operator")
        expect(page.locator("h1")).to_have_text("Fleet")
        row = page.locator("tr[data-service=win-probability]")
        expect(row.locator("[data-field=desired]")).to_have_text("–")
        # No samples yet: the fleet's charts say so rather than draw empty axes.
        fleet_cost = page.locator("#fleet-chart-cost[data-rendered=true]")
        expect(fleet_cost.locator(".annotation-text")).to_have_text(
            "No service reported metrics in the last 6 h.", timeout=15_000
        )
        page.evaluate("window.__marker = 'same page'")

        services.service_evaluate(service_id=service.pk, tick_at=services.align_tick(timezone.now()))

        expect(row.locator("[data-field=desired]")).not_to_have_text("–", timeout=10_000)
        assert int(row.locator("[data-field=desired]").inner_text()) > 2
        # The fleet's charts follow: the service's replicas, stacked, beside the fleet's ready line.
        replicas = page.locator("#fleet-chart-replicas[data-rendered=true]")
        # (plotly.js lists stacked areas as they stand, top first: the legend reverses the trace order)
        expect(replicas.locator(".legendtext")).to_have_text(["ready, fleet total", "Win Probability"], timeout=10_000)
        expect(replicas.locator(".main-svg").first).to_be_visible()
        expect(fleet_cost.locator(".gtitle")).to_contain_text("over the last 6 h")
        expect(fleet_cost.locator(".xtitle")).to_have_text(f"time ({settings.OPERATOR_TIME_ZONE})")
        expect(page.locator("#fleet-chart-latency .annotation-text")).to_have_text("at the limit")
        assert page.evaluate("window.__marker") == "same page"  # no reload happened

        row.locator("a").click()
        expect(page.locator("h1")).to_contain_text("Win Probability")
        expect(page.locator("#chart-replicas[data-rendered=true] .main-svg").first).to_be_visible(timeout=15_000)
        expect(page.locator("#chart-latency[data-rendered=true]")).to_be_visible()
        # Each chart names its unit on its y axis (the cost is a rate, $ per hour, not a total).
        expect(page.locator("#chart-cost[data-rendered=true] .ytitle")).to_have_text("$ per hour")
        expect(page.locator("#chart-replicas .ytitle")).not_to_have_text("")
        # The time axis is in the operator's zone, as the page's other times are, and says so.
        expect(page.locator("#chart-cost .xtitle")).to_have_text(f"time ({settings.OPERATOR_TIME_ZONE})")
        # Nothing on the page offers to send a service's metrics elsewhere (plotly.js 4's "Share chart").
        assert page.locator("#chart-cost .modebar-btn").count() > 0
        assert page.locator(".modebar-btn[data-title*='Share'], .modebar-btn[data-attr*='Cloud']").count() == 0
        expect(page.locator("#decisions")).to_contain_text("SCALED_OUT")
    finally:
        page.close()


def test_a_poll_after_the_session_ended_sends_the_page_to_log_in_and_back(
    browser: Any, live_server: Any, settings: Any
) -> None:
    settings.TICK_SECONDS = 1
    make_service("win-probability")
    make_user("operator", "operator", password=PASSWORD)
    page = browser.new_page()
    try:
        log_in(page, live_server.url, "operator")
        page.goto(f"{live_server.url}/services/win-probability/?range=1h")
        expect(page.locator("#decisions table")).to_be_visible()
        Session.objects.all().delete()  # what SESSION_COOKIE_AGE does, without waiting 8 h
        # The timeline's poll takes the whole page to the login form, rather than the form into the timeline.
        page.wait_for_url("**/login/?next=%2Fservices%2Fwin-probability%2F%3Frange%3D1h", timeout=10_000)
        expect(page.locator("#decisions")).to_have_count(0)
        fill_login(page, "operator")
        expect(page.locator("h1")).to_contain_text("Win Probability")
        assert page.url.endswith("/services/win-probability/?range=1h")
    finally:
        page.close()


def test_the_charts_say_when_they_stop_refreshing_and_why(browser: Any, live_server: Any, settings: Any) -> None:
    settings.TICK_SECONDS = 1
    make_service("win-probability")
    make_user("operator", "operator", password=PASSWORD)
    page = browser.new_page()
    answer: dict[str, Any] = {}

    def charts(route: Any) -> None:
        if answer:
            route.fulfill(**answer)
        else:
            route.continue_()

    try:
        log_in(page, live_server.url, "operator")
        page.route("**/charts.json*", charts)
        page.goto(f"{live_server.url}/services/win-probability/?range=1h")
        banner = page.locator("[data-testid=live-status]")
        expect(page.locator("#chart-replicas[data-rendered=true]")).to_be_visible(timeout=15_000)
        expect(banner).to_be_hidden()

        answer.update(status=500, content_type="text/html", body="<h1>Server Error</h1>")
        expect(banner).to_contain_text("Data stale: the charts could not refresh since", timeout=10_000)
        expect(banner).to_contain_text("(HTTP 500)")
        # The htmx poll of the timeline reports the same way.
        page.route("**/services/win-probability/?timeline=*", lambda route: route.fulfill(status=502, body=""))
        expect(banner).to_contain_text("the decision timeline could not refresh since", timeout=10_000)
        expect(banner).to_contain_text("(HTTP 502)")
        page.unroute("**/services/win-probability/?timeline=*")
        expect(banner).not_to_contain_text("the decision timeline", timeout=10_000)

        answer.update(status=200, content_type="text/html", body="<form>login</form>")
        expect(banner).to_contain_text("not JSON but text/html", timeout=10_000)

        answer.update(status=401, content_type="application/json", body='{"error": "not logged in"}')
        expect(banner).to_contain_text("Session expired: this page is no longer updating.", timeout=10_000)
        login = banner.locator("a", has_text="Log in again")
        assert login.get_attribute("href") == "/login/?next=%2Fservices%2Fwin-probability%2F%3Frange%3D1h"

        answer.clear()
        expect(banner).to_be_hidden(timeout=10_000)
    finally:
        page.close()


def test_a_poll_a_hung_server_never_answers_ends_and_says_so(browser: Any, live_server: Any, settings: Any) -> None:
    settings.TICK_SECONDS = 1
    make_service("win-probability")
    make_user("operator", "operator", password=PASSWORD)
    page = browser.new_page()
    held: list[Any] = []  # requests a hung server took and never answered
    try:
        log_in(page, live_server.url, "operator")
        banner = page.locator("[data-testid=live-status]")
        expect(page.locator("#fleet-chart-cost[data-rendered=true]")).to_be_visible(timeout=15_000)
        expect(banner).to_be_hidden()

        def hang(route: Any) -> None:
            held.append(route)

        page.route(f"{live_server.url}/", hang)  # the fleet table's poll
        page.route("**/fleet/charts.json*", hang)
        expect(banner).to_contain_text("the fleet table could not refresh since", timeout=25_000)
        expect(banner).to_contain_text("the charts could not refresh since", timeout=25_000)
        expect(banner).to_contain_text("(no answer within 10 s)")

        page.unroute(f"{live_server.url}/")
        page.unroute("**/fleet/charts.json*")
        expect(banner).to_be_hidden(timeout=25_000)
    finally:
        page.close()
