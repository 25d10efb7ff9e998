"""Headless Chromium: on a service page, click a decision in the timeline and read why it happened."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from dashboard.forms import local_input
from scaling import services
from scaling.models import Decision
from tests.browser.login import PASSWORD, log_in
from tests.factories import make_service, make_user

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_clicking_a_decision_opens_its_explanation_in_the_side_panel(browser: Any, live_server: Any) -> None:
    service = make_service("win-probability", replicas=2, demand_scale=40.0)
    result = services.service_evaluate(service_id=service.pk, tick_at=services.align_tick(timezone.now()))
    assert result.decision_id is not None
    decision = Decision.objects.get(pk=result.decision_id)
    make_user("viewer", "viewer", password=PASSWORD)
    page = browser.new_page()
    try:
        log_in(page, live_server.url, "viewer")
        page.goto(f"{live_server.url}/services/{service.name}/")
        page.evaluate("window.__marker = 'same page'")
        panel = page.locator("#decision-panel")
        expect(panel).to_contain_text("Click a decision")

        page.locator(f"tr[data-decision-id='{decision.pk}'] a.decision-link").click()

        explanation = panel.locator(f"#decision-{decision.pk}")
        expect(explanation).to_be_visible(timeout=10_000)
        expect(explanation.locator(".decision-summary")).to_have_text(decision.summary)
        expect(explanation).to_contain_text(decision.reason_code)
        for rule in decision.explanation["rules"]:
            expect(explanation.locator(f"tr[data-rule='{rule['rule']}']")).to_be_visible()
        expect(explanation).to_contain_text("Metric window")
        expect(explanation).to_contain_text("Actuation")
        assert page.evaluate("window.__marker") == "same page"  # loaded into the panel, not a new page
        expect(page.locator(f"tr[data-decision-id='{decision.pk}']")).to_have_class("changed selected")
    finally:
        page.close()


def test_an_operator_puts_a_service_in_dry_run_from_its_page(browser: Any, live_server: Any) -> None:
    service = make_service("win-probability", replicas=2)
    make_user("operator", "operator", password=PASSWORD)
    page = browser.new_page()
    try:
        log_in(page, live_server.url, "operator")
        page.goto(f"{live_server.url}/services/{service.name}/")
        form = page.locator("form.mode-form")
        form.locator("select[name=mode]").select_option("dry_run")
        form.locator("input[name=reason]").fill("watching the new model before it acts")
        form.locator("button[type=submit]").click()

        # Refused for want of an end: the error is beside Until and names it, the rest kept as typed.
        until = form.locator("input[name=until_local]")
        expect(until).to_have_attribute("aria-invalid", "true", timeout=10_000)
        error = page.locator(f"#{until.get_attribute('aria-describedby')}")
        expect(error).to_have_text("A pause or dry run needs an end: when should the service be active again?")
        expect(form.locator(".form-field[data-field=until_local]")).to_contain_text("needs an end")
        expect(form.locator("input[name=reason]")).to_have_value("watching the new model before it acts")
        expect(form.locator("[role=alert]")).to_have_count(0)

        until.fill(local_input(timezone.now() + timedelta(hours=2)))
        form.locator("button[type=submit]").click()

        expect(page.locator("h1 .badge")).to_have_text("Dry run", timeout=10_000)  # the page reloaded
        expect(page.locator(".messages")).to_contain_text("is now dry run until")
        expect(page.locator("h1 .mode-until")).to_contain_text("until")
        service.refresh_from_db()
        assert service.mode == "dry_run" and service.mode_until is not None
    finally:
        page.close()


def test_clicking_a_decision_marker_on_the_replicas_chart_opens_its_explanation(browser: Any, live_server: Any) -> None:
    service = make_service("win-probability", replicas=2, demand_scale=40.0)
    result = services.service_evaluate(service_id=service.pk, tick_at=services.align_tick(timezone.now()))
    assert result.decision_id is not None
    make_user("viewer", "viewer", password=PASSWORD)
    page = browser.new_page()
    try:
        log_in(page, live_server.url, "viewer")
        page.goto(f"{live_server.url}/services/{service.name}/")
        chart = page.locator("#chart-replicas[data-decision-clicks=true]")
        expect(chart).to_have_count(1, timeout=15_000)
        # Plotly reports a click on a marker as plotly_click with the point's customdata (the decision id).
        page.evaluate(
            "id => document.getElementById('chart-replicas').emit('plotly_click', {points: [{customdata: id}]})",
            result.decision_id,
        )
        expect(page.locator(f"#decision-panel #decision-{result.decision_id}")).to_be_visible(timeout=10_000)
    finally:
        page.close()
