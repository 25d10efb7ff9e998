"""Headless Chromium: an operator schedules a floor for a national-TV game from the calendar and sees its
projected cost; a second person approves it on the fleet page, through a confirm step that shows what it
approves; its window is shaded on the service's chart. A refused extend is said beside the field at fault."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from scaling import services
from scaling.audit import Actor, EventType
from scaling.models import AuditEvent, Game, Override
from scaling.overrides import override_create
from tests.browser.login import log_in
from tests.factories import make_service, make_user
from tests.markup import broken_references

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_an_operator_schedules_a_floor_for_a_national_tv_game_and_an_approver_approves_it(
    browser: Any, live_server: Any, settings: Any
) -> None:
    settings.OVERRIDE_APPROVAL_REPLICAS = 10  # a floor of 12 needs a second person
    # Light traffic, so that tonight's ratio keeps the engine's own plan at a few replicas whatever the hour the test
    # runs at (at full demand and midday it reached the max of 50, and a floor of 12 priced at +$0.00).
    service = make_service("win-probability", replicas=2, price_per_replica_hour=1.2, demand_scale=0.05)
    services.service_evaluate(service_id=service.pk, tick_at=services.align_tick(timezone.now()))
    tip = (timezone.now() + timedelta(hours=3)).replace(second=0, microsecond=0)
    Game.objects.create(
        game_id="0022500777", tip_utc=tip, away_team="BOS (Celtics)", home_team="NYK (Knicks)", national_tv="ESPN"
    )
    Game.objects.create(game_id="0022500778", tip_utc=tip, away_team="DEN (Nuggets)", home_team="UTA (Jazz)")
    make_user("operator", "operator")
    make_user("approver", "approver")

    operator = browser.new_context()
    page = operator.new_page()
    try:
        log_in(page, live_server.url, "operator")
        page.click("nav >> text=Calendar")
        row = page.locator("tr[data-game='0022500777']")
        expect(row).to_have_class("marquee")
        expect(row.locator("[data-testid=national-tv]")).to_have_text("ESPN")
        row.locator("[data-testid='add-override-0022500777']").click()

        expect(page.locator("[data-testid=override-game]")).to_contain_text("BOS (Celtics) @ NYK (Knicks)")
        page.wait_for_load_state("networkidle")  # the preview htmx asks for as the page loads
        expect(page.locator("[data-field-error]")).to_have_count(0)  # nothing typed yet: nothing wrong yet
        expect(page.locator("[data-testid=preview]")).not_to_contain_text("needs a replica count")
        page.check("input[name=services][value=win-probability]")
        page.fill("input[name=replicas]", "12")
        page.locator("input[name=replicas]").dispatch_event("change")
        cost = page.locator("[data-testid=preview-cost]")
        expect(cost).to_contain_text("+$", timeout=10_000)
        expect(page.locator("[data-testid=preview]")).to_contain_text("needs a second person")
        total = page.locator("[data-testid=preview-total]").inner_text()
        assert total.startswith("+$") and float(total[2:].replace(",", "")) > 0
        page.click("[data-testid=submit-override]")
        expect(page.locator(".messages")).to_contain_text("waits for a second person's approval")
    finally:
        operator.close()

    override = Override.objects.get(service=service, game__game_id="0022500777")
    assert override.status == Override.Status.PENDING_APPROVAL and override.kind == "floor"
    assert override.starts_at == tip - timedelta(seconds=service.provisioning_delay_s, minutes=15)

    approver = browser.new_context()
    page = approver.new_page()
    try:
        log_in(page, live_server.url, "approver")
        approvals = page.locator("[data-testid=approvals]")
        expect(approvals).to_contain_text("BOS (Celtics) @ NYK (Knicks)")
        page.wait_for_load_state("load")  # htmx is ready (else the click opens the step as a page of its own)
        approvals.locator(f"[data-testid='approve-{override.pk}']").click()
        # Nothing is approved by that click: a confirm step shows, in place, what would be.
        confirm = approvals.locator(f"[data-testid='approve-confirm-{override.pk}']")
        expect(confirm).to_contain_text("Win Probability: Floor (at least N), N = 12 replicas")
        expect(confirm).to_contain_text("Requested by operator")
        expect(confirm).to_contain_text("BOS (Celtics) @ NYK (Knicks)")
        expect(confirm).to_contain_text(f"projected cost +${override.projected_cost_delta:,.2f}")
        assert Override.objects.get(pk=override.pk).status == Override.Status.PENDING_APPROVAL
        confirm.get_by_label("Note (optional)").fill("ESPN slot confirmed")
        confirm.get_by_role("button", name="Confirm approval").click()
        expect(page.locator(".messages")).to_contain_text("Approved 1 override")

        page.goto(f"{live_server.url}/services/win-probability/")
        expect(page.locator("#chart-replicas[data-rendered=true]")).to_be_visible(timeout=15_000)
        shape = page.evaluate(
            "(name) => (document.getElementById('chart-replicas').layout.shapes || []).find(s => s.name === name)",
            f"override-{override.pk}",
        )
        assert shape is not None and shape["label"]["text"] == "floor 12"
        assert shape["fillcolor"] == "rgba(31, 119, 180, 0.15)"  # approved
    finally:
        approver.close()
    override.refresh_from_db()
    assert override.status == Override.Status.APPROVED and override.approved_by is not None
    approval = AuditEvent.objects.get(event_type=EventType.OVERRIDE_APPROVED, object_id=str(override.pk))
    assert approval.reason == "ESPN slot confirmed"


def test_a_refused_extend_says_why_beside_the_new_end_and_keeps_what_was_typed(browser: Any, live_server: Any) -> None:
    service = make_service("win-probability", replicas=2, price_per_replica_hour=1.2)
    now = timezone.now()
    [override] = override_create(
        services=[service],
        kind="floor",
        replicas=3,
        starts_at=now,
        ends_at=now + timedelta(hours=1),
        reason="warm-up",
        actor=Actor.system("t"),
    )
    make_user("operator", "operator")

    context = browser.new_context()
    page = context.new_page()
    try:
        log_in(page, live_server.url, "operator")
        page.click("nav >> text=Overrides")
        page.wait_for_load_state("load")  # htmx is ready
        actions = page.locator(f"tr[data-override='{override.pk}'] .override-actions")
        actions.locator("summary", has_text="Extend").click()
        new_end = actions.get_by_label("New end")
        new_end.fill(_local(now - timedelta(hours=1)))  # before the current end: the browser lets it through
        actions.get_by_label("Reason for extending").fill("overtime")
        actions.get_by_role("button", name="Extend").click()

        # The row's actions come back in place, the form still open, the error beside the end it is about.
        actions = page.locator(f"tr[data-override='{override.pk}'] .override-actions")
        expect(actions.locator(f"[data-testid=refused-{override.pk}]")).to_contain_text("not extended")
        new_end = actions.get_by_label("New end")
        expect(new_end).to_have_attribute("aria-invalid", "true")
        expect(new_end).to_have_accessible_description(re.compile("the new end must be after the current end"))
        expect(actions.get_by_label("Reason for extending")).to_have_value("overtime")
        expect(page.locator(".messages")).to_have_count(0)  # said where it is to be fixed, not in the banner
        assert broken_references(page.content()) == []

        new_end.fill(_local(now + timedelta(hours=2)))
        actions.get_by_role("button", name="Extend").click()
        expect(page.locator(".messages")).to_contain_text(f"Override #{override.pk} extended.")
    finally:
        context.close()
    override.refresh_from_db()
    assert override.ends_at > now + timedelta(hours=1)


def test_the_preview_appears_before_the_reason_is_filled_but_submit_still_needs_one(
    browser: Any, live_server: Any
) -> None:
    service = make_service("win-probability", replicas=2, price_per_replica_hour=1.2)
    services.service_evaluate(service_id=service.pk, tick_at=services.align_tick(timezone.now()))
    make_user("operator", "operator")
    end = (timezone.now() + timedelta(hours=2)).astimezone(timezone.get_default_timezone())

    context = browser.new_context()
    page = context.new_page()
    try:
        _start_a_floor(page, live_server.url, end)
        replicas = page.locator("input[name=replicas]")
        replicas.fill("-3")
        replicas.dispatch_event("change")
        # The error the preview swaps in under the count is what the count's description reads.
        expect(replicas).to_have_accessible_description(re.compile("greater than or equal to 0"), timeout=10_000)
        expect(replicas).to_have_attribute("aria-invalid", "true")  # as its error block says, not the page load
        assert broken_references(page.content()) == []
        replicas.fill("6")
        page.locator("input[name=ends_at_local]").dispatch_event("change")
        expect(page.locator("[data-testid=preview-cost]")).to_contain_text("+$", timeout=10_000)
        expect(replicas).to_have_accessible_description("not used by freeze kinds")  # its help alone again
        expect(replicas).not_to_have_attribute("aria-invalid", "true")

        page.click("[data-testid=submit-override]")  # the browser still refuses a submit without a reason
        assert page.locator("textarea[name=reason]").evaluate("el => el.validity.valueMissing")
        assert not Override.objects.exists()
    finally:
        context.close()


def test_a_refused_submit_says_each_problem_once_and_the_preview_keeps_it(browser: Any, live_server: Any) -> None:
    make_service("win-probability", replicas=2, price_per_replica_hour=1.2)
    make_user("operator", "operator")
    end = timezone.now() + timedelta(hours=2)

    context = browser.new_context()
    page = context.new_page()
    try:
        _start_a_floor(page, live_server.url, end)
        page.fill("textarea[name=reason]", "warm-up")
        page.wait_for_load_state("networkidle")
        expect(page.locator("[data-field-error]")).to_have_count(0)  # a missing count waits for the submit
        page.click("[data-testid=submit-override]")
        page.wait_for_load_state("networkidle")  # the page, then the preview it asks for on load
        errors = page.locator("[data-field-error]")
        expect(errors).to_have_count(1)
        expect(errors).to_have_text("a floor needs a replica count")
        page.fill("input[name=replicas]", "6")
        page.locator("input[name=replicas]").dispatch_event("change")
        expect(page.locator("[data-testid=preview-cost]")).to_contain_text("+$", timeout=10_000)
        expect(page.locator("[data-field-error]")).to_have_count(0)
    finally:
        context.close()


def _start_a_floor(page: Any, base_url: str, end: Any) -> None:
    """Sign in as the operator and start a floor on win-probability ending at `end`; its count and reason are
    the test's to give."""
    log_in(page, base_url, "operator")
    page.goto(f"{base_url}/overrides/new/")
    page.check("input[name=services][value=win-probability]")
    page.select_option("select[name=kind]", "floor")
    page.fill("input[name=ends_at_local]", _local(end))


def _local(when: Any) -> str:
    from dashboard.forms import local_input

    return local_input(when)
