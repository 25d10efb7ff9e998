"""Headless Chromium: a viewer can neither see nor submit the override form; an operator's override shows up
in the audit review with its reason; no page trips the Content-Security-Policy."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.conf import settings
from django.utils import timezone
from playwright.sync_api import expect

from scaling.audit import EventType
from scaling.models import AuditEvent, Override
from tests.browser.login import PASSWORD, log_in
from tests.factories import make_service, make_user

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _csp_violations(page: Any) -> list[str]:
    seen: list[str] = []
    page.on("console", lambda msg: seen.append(msg.text) if "Content Security Policy" in msg.text else None)
    return seen


def test_a_viewer_can_neither_see_nor_submit_the_override_form(browser: Any, live_server: Any) -> None:
    make_service("win-probability", replicas=2)
    make_user("viewer", "viewer", password=PASSWORD)
    context = browser.new_context()
    page = context.new_page()
    violations = _csp_violations(page)
    try:
        log_in(page, live_server.url, "viewer")
        page.click("nav >> text=Overrides")
        expect(page.locator("h1")).to_contain_text("Overrides")
        expect(page.locator("[data-testid=new-override]")).to_have_count(0)
        expect(page.locator("#override-form")).to_have_count(0)

        response = page.goto(f"{live_server.url}/overrides/new/")
        assert response is not None and response.status == 403
        expect(page.locator("#override-form")).to_have_count(0)

        # Submitting by hand, with a valid session and CSRF token, is refused too.
        page.goto(f"{live_server.url}/overrides/")
        token = page.locator("input[name=csrfmiddlewaretoken]").first.get_attribute("value")
        local = (timezone.now() + timedelta(hours=2)).astimezone(ZoneInfo(settings.OPERATOR_TIME_ZONE))
        posted = context.request.post(
            f"{live_server.url}/overrides/new/",
            form={
                "csrfmiddlewaretoken": token or "",
                "services": "win-probability",
                "kind": "floor",
                "replicas": "8",
                "ends_at_local": local.strftime("%Y-%m-%dT%H:%M"),
                "reason": "viewer sneaks one in",
            },
            headers={"Referer": f"{live_server.url}/overrides/"},
        )
        assert posted.status == 403
    finally:
        context.close()
    assert not Override.objects.exists()
    assert AuditEvent.objects.filter(event_type=EventType.AUTH_DENIED, actor_label="viewer").count() == 2
    assert not violations, violations


def test_an_operators_override_appears_in_the_audit_review_with_its_reason(browser: Any, live_server: Any) -> None:
    make_service("win-probability", replicas=2)
    make_user("operator", "operator", password=PASSWORD)
    make_user("viewer", "viewer", password=PASSWORD)
    reason = "Lakers-Celtics on ESPN: hold 8 through the fourth quarter"
    operator = browser.new_context()
    page = operator.new_page()
    violations = _csp_violations(page)
    try:
        log_in(page, live_server.url, "operator")
        page.click("nav >> text=Overrides")
        page.click("[data-testid=new-override]")
        page.check("input[name=services][value=win-probability]")
        page.select_option("select[name=kind]", "floor")
        page.fill("input[name=replicas]", "8")
        local = (timezone.now() + timedelta(hours=2)).astimezone(ZoneInfo(settings.OPERATOR_TIME_ZONE))
        page.fill("input[name=ends_at_local]", local.strftime("%Y-%m-%dT%H:%M"))
        page.fill("textarea[name=reason]", reason)
        page.click("[data-testid=submit-override]")
        expect(page.locator(".messages")).to_be_visible()
    finally:
        operator.close()
    override = Override.objects.get(reason=reason)

    reviewer = browser.new_context()
    page = reviewer.new_page()
    violations += _csp_violations(page)
    try:
        log_in(page, live_server.url, "viewer")
        page.click("nav >> text=Audit")
        page.fill("input[name=q]", "Lakers-Celtics")
        page.select_option("select[name=event_type]", "override")
        page.click("form.filters button[type=submit]")
        row = page.locator("tr[data-event-type='override.created']")
        expect(row).to_have_count(1, timeout=10_000)
        expect(row).to_contain_text(reason)
        expect(row).to_contain_text("operator")
        expect(row).to_contain_text("win-probability")
        link = row.locator(f"a[href$='#override-{override.pk}']")
        expect(link).to_have_count(1)
        # The filtered view is addressable: htmx pushes its URL, once the swap has settled (after the rows show).
        expect(page).to_have_url(re.compile(r"[?&]q=Lakers-Celtics(&|$)"))
        with page.expect_download() as download:
            page.click("[data-testid=audit-csv]")
        text = Path(download.value.path()).read_text(encoding="utf-8")
        assert reason in text and text.count("\n") == 2
    finally:
        reviewer.close()
    assert not violations, violations
