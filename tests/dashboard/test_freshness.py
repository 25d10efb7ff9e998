"""The fleet and service pages say how old their numbers are, and when the control loop has stopped deciding."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import time_machine
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from scaling.models import Decision, MetricSample, Override, Service
from tests.factories import make_service

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("stopped_clock")]


@pytest.fixture
def stopped_clock() -> Iterator[None]:
    """Ages are of the page's render time: the clock stands still while the test sets up and reads the page."""
    with time_machine.travel(datetime(2026, 1, 15, 23, 30, 7, tzinfo=UTC), tick=False):
        yield


def _decided(service: Service, at: datetime, *, desired: int = 3) -> Decision:
    """A tick at `at` with its sample, as the control loop leaves them; the service last changed before."""
    Service.objects.filter(pk=service.pk).update(updated_at=at - timedelta(hours=1))
    MetricSample.objects.create(
        service=service, ts=at, rps=4200.0, p95_ms=4000.0, p99_ms=12500.0, provisioned=3, ready=3
    )
    decision = Decision.objects.create(
        service=service, tick=at, provisioned=3, ready=3, desired=desired, reason_code="HOLD", summary="held at 3"
    )
    Decision.objects.filter(pk=decision.pk).update(created_at=at)
    decision.refresh_from_db()
    return decision


def _row(body: str, name: str) -> str:
    found = body[body.index(f'data-service="{name}"') :]
    return found[: found.index("</tr>")]


def _fleet(viewer: Client, query: str = "") -> str:
    return viewer.get(reverse("dashboard:fleet") + query).content.decode()


def test_a_fleet_deciding_every_tick_shows_its_ages_and_no_warning(viewer: Client, settings: Any) -> None:
    settings.TICK_SECONDS = 15
    now = timezone.now()
    _decided(make_service("win-probability"), now - timedelta(seconds=20))
    body = _fleet(viewer)
    row = _row(body, "win-probability")
    assert 'data-field="sample-age"' in row and "20 s ago</td>" in row
    assert '<span class="muted small" data-field="decision-age"' in row and "20 s ago</span>" in row
    assert "the control loop may be stopped" not in body and 'data-badge="stalled"' not in row


def test_the_fleet_warns_when_no_service_has_had_a_decision_for_over_3_ticks(viewer: Client, settings: Any) -> None:
    settings.TICK_SECONDS = 15
    now = timezone.now()
    for name in ("win-probability", "live-odds"):
        _decided(make_service(name), now - timedelta(minutes=3))
    body = _fleet(viewer)
    assert "No decision for 3 min: the control loop may be stopped (the Celery worker or beat" in body
    assert 'data-testid="fleet-latest-tick"' in body and ">3 min ago</span>" in body
    row = _row(body, "live-odds")
    assert 'data-badge="stalled"' in row and ">No decision for 3 min</span>" in row and "3 min ago" in row
    # Within its poll: the banner is in the part of the page that refreshes every tick.
    poll = viewer.get(reverse("dashboard:fleet"), headers={"HX-Request": "true"}).content.decode()
    assert "No decision for 3 min: the control loop may be stopped" in poll


def test_the_fleet_names_the_one_service_left_without_decisions(viewer: Client, settings: Any) -> None:
    settings.TICK_SECONDS = 15
    now = timezone.now()
    _decided(make_service("win-probability"), now - timedelta(seconds=10))
    _decided(make_service("live-odds"), now - timedelta(minutes=2))
    body = _fleet(viewer)
    assert "No decision for 2 min for Live Odds: the control loop may be stopped." in body
    assert 'data-badge="stalled"' not in _row(body, "win-probability")


def test_a_disabled_service_waits_for_no_tick_and_a_just_enabled_one_waits_for_its_first(
    viewer: Client, settings: Any
) -> None:
    settings.TICK_SECONDS = 15
    now = timezone.now()
    _decided(make_service("off", enabled=False), now - timedelta(days=2))
    # Enabled again a moment ago after a day off: its first tick is due, not a day late.
    back = make_service("back")
    _decided(back, now - timedelta(days=1))
    Service.objects.filter(pk=back.pk).update(updated_at=now - timedelta(seconds=5))
    assert "the control loop may be stopped" not in _fleet(viewer)


def test_an_override_made_since_the_last_decision_says_it_waits_for_the_next_tick(
    viewer: Client, settings: Any
) -> None:
    settings.TICK_SECONDS = 15
    now = timezone.now()
    service = make_service("win-probability")
    decision = _decided(service, now - timedelta(minutes=3))
    pin = Override.objects.create(
        service=service, kind="pin", replicas=8, reason="tv", starts_at=now - timedelta(seconds=30),
        ends_at=now + timedelta(hours=1),
    )  # fmt: skip
    assert ">Override (waiting for the next tick)</span>" in _row(_fleet(viewer), "win-probability")
    # An override approved after the tick began, though it starts before it, is not in that tick either.
    Override.objects.filter(pk=pin.pk).update(starts_at=decision.tick - timedelta(minutes=5), approved_at=now)
    assert ">Override (waiting for the next tick)</span>" in _row(_fleet(viewer), "win-probability")
    # The next tick applies it.
    _decided(service, now)
    row = _row(_fleet(viewer), "win-probability")
    assert ">Override</span>" in row and "waiting" not in row


def test_a_disabled_service_shows_one_badge_and_is_not_in_the_fleets_totals(viewer: Client, settings: Any) -> None:
    settings.TICK_SECONDS = 15
    now = timezone.now()
    _decided(make_service("win-probability", price_per_replica_hour=2.0), now)
    _decided(make_service("retired", enabled=False, price_per_replica_hour=5.0), now - timedelta(hours=2))
    body = _fleet(viewer)
    row = _row(body, "retired")
    assert 'data-badge="disabled">Disabled</span>' in row and "Active" not in row
    assert 'class="disabled muted"' in row and "not in the totals" in row
    # 3 replicas at $2 (the enabled service); not 6 replicas, $21.
    assert "· 3 replicas · $6.00/hour" in body and "(not counting 1 disabled service)" in body


def test_the_fleet_writes_latency_with_thousands_separators(viewer: Client, settings: Any) -> None:
    _decided(make_service("win-probability", slo_latency_ms=1500.0), timezone.now())
    row = _row(_fleet(viewer), "win-probability")
    assert '<span data-field="p95" class="bad">4,000</span>' in row
    assert '<span data-field="p99" class="bad">12,500</span> / 1,500 ms' in row


def test_a_range_the_pages_do_not_offer_is_named_as_replaced_by_6h(viewer: Client) -> None:
    service = make_service("win-probability")
    for url in (reverse("dashboard:fleet"), reverse("dashboard:service", args=[service.name])):
        body = viewer.get(url + "?range=30d").content.decode()
        assert "There is no range “30d” here: showing the last 6h. The ranges are 1h, 6h, 24h, 7d." in body
        assert 'class="active" title="the last 6h' in body
        assert "There is no range" not in viewer.get(url + "?range=24h").content.decode()


def test_the_service_page_says_how_old_its_numbers_are_and_when_the_loop_stopped(viewer: Client, settings: Any) -> None:
    settings.TICK_SECONDS = 15
    service = make_service("win-probability")
    _decided(service, timezone.now() - timedelta(minutes=4))
    url = reverse("dashboard:service", args=[service.name])
    body = viewer.get(url).content.decode()
    assert "Latest sample <span" in body and ">4 min ago</span> · latest decision <span" in body
    assert "No decision for 4 min: the control loop may be stopped" in body
    # In the timeline's poll too, which refreshes every tick.
    poll = viewer.get(url + "?timeline=all", headers={"HX-Request": "true"}).content.decode()
    assert "No decision for 4 min: the control loop may be stopped" in poll


def test_a_sample_older_than_the_staleness_limit_is_no_data_and_its_counts_say_as_of_when(
    viewer: Client, settings: Any
) -> None:
    # Metrics unavailable every tick since: decisions keep coming, the newest sample stays 3 minutes old.
    settings.TICK_SECONDS = 15
    now = timezone.now()
    service = make_service("win-probability", slo_latency_ms=300.0)
    Service.objects.filter(pk=service.pk).update(updated_at=now - timedelta(hours=1))
    MetricSample.objects.create(
        service=service, ts=now - timedelta(minutes=3), rps=700.0, p95_ms=40.0, p99_ms=60.0, provisioned=10, ready=10
    )
    Decision.objects.create(
        service=service,
        tick=now - timedelta(seconds=5),
        provisioned=10,
        ready=10,
        desired=3,
        reason_code="METRICS_UNAVAILABLE",
        summary="held",
    )

    row = _row(_fleet(viewer), "win-probability")
    page = viewer.get(reverse("dashboard:service", args=[service.name])).content.decode()

    assert "Within SLO" not in row and 'class="badge ok"' not in row
    assert 'data-badge="slo-stale"' in row and "No data" in row
    provisioned = row[row.index('data-field="provisioned"') :].split("</td>", 1)[0]
    ready = row[row.index('data-field="ready"') :].split("</td>", 1)[0]
    assert "10" in provisioned and "as of 3 min ago" in provisioned
    assert "10" in ready and "as of 3 min ago" in ready
    freshness = page[page.index('data-testid="service-freshness"') :].split("</p>", 1)[0]
    assert 'data-badge="sample-stale"' in freshness


def test_a_fresh_sample_shows_its_counts_as_current(viewer: Client, settings: Any) -> None:
    settings.TICK_SECONDS = 15
    now = timezone.now()
    _decided(make_service("win-probability"), now - timedelta(seconds=20))

    row = _row(_fleet(viewer), "win-probability")

    assert "as of" not in row and 'data-badge="slo-stale"' not in row
