"""Headless Chromium: an operator replays an hour of recorded traffic, typing its range in the operator's zone;
the run goes through a real what-if worker to a result, and a colleague who may only view opens it from the
page's list of recent runs."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.urls import reverse
from django.utils import timezone
from playwright.sync_api import expect

from scaling.models import MetricSample, WhatIfRun
from tests.browser.login import log_in
from tests.factories import make_service, make_user
from tests.markup import broken_references
from tests.workers import real_worker

pytestmark = [
    pytest.mark.browser,
    pytest.mark.celery,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("whatif_slots_free"),
]


@pytest.fixture
def worker() -> Iterator[None]:
    with real_worker("whatif"):
        yield


def test_an_operator_replays_a_range_typed_in_the_zone_and_a_colleague_opens_it_from_the_list(
    browser: Any, live_server: Any, worker: None, settings: Any
) -> None:
    settings.OPERATOR_TIME_ZONE = "America/Chicago"
    zone = ZoneInfo("America/Chicago")
    service = make_service("win-probability")
    end = (timezone.now() - timedelta(hours=1)).replace(second=0, microsecond=0)
    start = end - timedelta(hours=1)
    MetricSample.objects.bulk_create(
        MetricSample(service=service, ts=start - timedelta(minutes=10) + timedelta(seconds=15 * i), rps=450.0)
        for i in range(320)
    )
    make_user("operator", "operator")
    make_user("colleague", "viewer")
    url = f"{live_server.url}{reverse('dashboard:whatif', args=[service.name])}"

    operator = browser.new_context()
    page = operator.new_page()
    try:
        log_in(page, live_server.url, "operator")
        page.goto(url)
        expect(page.locator("label[for=id_start_local]")).to_have_text("Start (America/Chicago)")
        page.fill("input[name=start_local]", start.astimezone(zone).strftime("%Y-%m-%dT%H:%M"))
        page.fill("input[name=end_local]", end.astimezone(zone).strftime("%Y-%m-%dT%H:%M"))
        page.select_option("select[name=policy]", "hpa")
        page.click("button[type=submit]:has-text('Run what-if')")
        expect(page.locator("[data-whatif-result]")).to_be_visible(timeout=60_000)  # polled until the worker is done
        run = WhatIfRun.objects.get()
        assert page.url.endswith(f"?job={run.job_id}")
        assert (run.range_start, run.range_end, run.status) == (start, end, "done")
        expect(page.locator("[data-whatif-mine]")).to_contain_text("you")
        assert broken_references(page.content()) == []
    finally:
        operator.close()

    colleague = browser.new_context()
    page = colleague.new_page()
    try:
        log_in(page, live_server.url, "colleague")
        page.goto(url)
        row = page.locator("[data-whatif-recent] tbody tr")
        expect(row).to_have_count(1)
        expect(row).to_contain_text("operator")
        expect(row).to_contain_text("done")
        row.locator("a").click()
        expect(page.locator("[data-whatif-result]")).to_contain_text("What happened")
        expect(page.locator("input[name=start_local]")).to_have_value(start.astimezone(zone).strftime("%Y-%m-%dT%H:%M"))
    finally:
        colleague.close()
