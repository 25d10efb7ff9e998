"""Headless Chromium: the audit page's filter form says what the results are filtered by, after Back too."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.db import transaction
from playwright.sync_api import expect

from scaling.audit import Actor, EventType, audit_record
from tests.browser.login import PASSWORD, log_in
from tests.factories import make_service, make_user

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_back_after_two_filters_restores_the_form_with_the_results(browser: Any, live_server: Any) -> None:
    service = make_service("win-probability", replicas=2)
    operator = make_user("operator", "operator", password=PASSWORD)
    with transaction.atomic():
        audit_record(actor=Actor.for_user(operator), event_type=EventType.OVERRIDE_CREATED, service=service)
        audit_record(actor=Actor.system("rules"), event_type=EventType.OVERRIDE_CREATED, service=service)
        audit_record(actor=Actor.for_user(operator), event_type=EventType.POLICY_CHANGED, service=service)
    page = browser.new_page()
    try:
        log_in(page, live_server.url, "operator")
        page.goto(f"{live_server.url}/audit/")
        rows = page.locator("tr[data-event-type]")
        form = page.locator("form.filters")

        form.locator("select[name=event_type]").select_option("override")
        form.locator("button[type=submit]").click()
        expect(page).to_have_url(re.compile(r"[?&]event_type=override(&|$)"))
        expect(rows).to_have_count(2)
        form.locator("input[name=actor]").fill("operator")
        form.locator("button[type=submit]").click()
        expect(page).to_have_url(re.compile(r"[?&]actor=operator(&|$)"))
        expect(rows).to_have_count(1)

        page.go_back()
        expect(page).to_have_url(re.compile(r"[?&]event_type=override(&|$)"))
        expect(rows).to_have_count(2)
        # The form says what the results are filtered by: the event kept, the actor gone with the step undone.
        expect(page.locator("form.filters select[name=event_type]")).to_have_value("override")
        expect(page.locator("form.filters input[name=actor]")).to_have_value("")

        page.go_back()
        expect(page.locator("tr[data-event-type='policy.changed']")).to_have_count(1)
        expect(page.locator("form.filters select[name=event_type]")).to_have_value("")
    finally:
        page.close()
