"""Every page gives an instant in the operator's zone with UTC beside it, as the README says operators read
times; the audit filters take times in that zone, and the CSV says its times are UTC."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest
import time_machine
from django.conf import settings
from django.db import transaction
from django.test import Client
from django.urls import reverse

from scaling import services
from scaling.audit import Actor, EventType, audit_record
from scaling.models import Decision, MetricSample
from scaling.tokens import token_create
from tests.factories import T0, make_service, make_user, make_whatif_run

pytestmark = pytest.mark.django_db

# T0 is 2026-01-15 23:30 UTC: 18:30 in New York.
T0_SHOWN = "2026-01-15 18:30:00 EST (23:30:00 UTC)"
ZONE_HEADER = f'title="in {settings.OPERATOR_TIME_ZONE}, UTC beside"'


def test_the_decision_page_gives_its_tick_samples_and_actuation_in_the_operators_zone(admin: Client) -> None:
    service = make_service()
    decision = Decision.objects.create(
        service=service,
        tick=T0,
        provisioned=18,
        ready=18,
        desired=18,
        reason_code="HOLD",
        summary="held",
        explanation={"current": 18, "desired": 18, "reason": "HOLD"},
        actuation=Decision.Actuation.OK,
        actuated_at=T0 + timedelta(seconds=2),
    )
    MetricSample.objects.create(service=service, ts=T0 - timedelta(seconds=15), rps=10.0)
    body = admin.get(reverse("dashboard:decision", args=[decision.pk])).content.decode()
    assert f'<h2 class="decision-title">{T0_SHOWN} · 18 → 18' in body
    assert "Time (UTC)" not in body and f"<th {ZONE_HEADER}>Time</th>" in body
    assert "18:29:45 EST (23:29:45 UTC)" in body
    assert "at 2026-01-15 18:30:02 EST (23:30:02 UTC)" in body


def test_the_policy_revisions_are_listed_in_the_operators_zone(admin: Client) -> None:
    service = make_service()
    with time_machine.travel(T0, tick=False):
        services.service_update_policy(service=service, params={"tolerance": 0.2}, actor=Actor.system("t"), reason="r")
    body = admin.get(reverse("dashboard:policy", args=[service.name])).content.decode()
    assert "When (UTC)" not in body and f"<th {ZONE_HEADER}>When</th>" in body
    assert T0_SHOWN in body


def test_the_api_tokens_page_names_the_zone_of_its_times(client: Client) -> None:
    user = make_user("viewer", "viewer")
    client.force_login(user)
    token_create(user=user, name="grafana", days=30, actor=Actor.for_user(user), now=T0)
    body = client.get(reverse("access:tokens")).content.decode()
    assert f"<td>{T0_SHOWN}</td><td>2026-02-14 18:30:00 EST (23:30:00 UTC)</td>" in body
    assert "<td>never</td>" in body


def _event_at_t0() -> None:
    with transaction.atomic():
        audit_record(actor=Actor.system("t"), event_type=EventType.DECISION_SCALED, reason="at t0", at=T0)


def test_the_audit_list_shows_times_in_the_operators_zone_and_its_filters_take_them(admin: Client) -> None:
    _event_at_t0()
    page = admin.get(reverse("dashboard:audit"))
    body = page.content.decode()
    assert "When (UTC)" not in body and "From (UTC)" not in body and "Times are UTC" not in body
    assert f"<th {ZONE_HEADER}>When</th>" in body and T0_SHOWN in body
    assert f'id="id_since_helptext">in {settings.OPERATOR_TIME_ZONE}</small>' in body

    def ids(since: str, until: str) -> int:
        response = admin.get(reverse("dashboard:audit"), {"since": since, "until": until})
        assert response.status_code == 200
        return len(response.context["rows"])

    assert ids("2026-01-15T18:00", "2026-01-15T19:00") == 1  # 18:30 in New York
    assert ids("2026-01-15T23:00", "2026-01-16T00:00") == 0  # 23:30 is UTC's clock, not the operator's


def test_an_audit_filter_in_the_hour_the_clocks_fall_back_takes_the_whole_of_it(admin: Client) -> None:
    # 2026-11-01 01:30 happens twice in New York: From reads the first, Until the second.
    response = admin.get(reverse("dashboard:audit"), {"since": "2026-11-01T01:30", "until": "2026-11-01T01:30"})
    assert response.status_code == 200 and not response.context["form"].errors
    form = response.context["form"].cleaned_data
    assert form["until"] - form["since"] == timedelta(hours=1)
    gap = admin.get(reverse("dashboard:audit"), {"since": "2026-03-08T02:30"})
    assert gap.status_code == 400 and "does not exist" in gap.content.decode()


def test_the_audit_csv_says_its_times_are_utc(admin: Client) -> None:
    _event_at_t0()
    rows = list(csv.reader(io.StringIO(admin.get(reverse("dashboard:audit-csv")).getvalue().decode())))
    assert rows[0][:2] == ["id", "created_at (UTC)"]
    assert rows[-1][1] == "2026-01-15T23:30:00+00:00"


def test_the_whatif_page_lists_its_runs_in_the_operators_zone(admin: Client) -> None:
    service = make_service()
    run = make_whatif_run(service, created_at=T0, status="done")
    body = admin.get(reverse("dashboard:whatif", args=[service.name])).content.decode()
    assert f"<th {ZONE_HEADER}>Range</th>" in body and f"<th {ZONE_HEADER}>Queued</th>" in body
    # To the second, as a run's result heading writes its range.
    assert "2026-01-15 17:30:00 EST (22:30:00 UTC) → 2026-01-15 18:30:00 EST (23:30:00 UTC)</a>" in body
    assert "<td>Thu Jan 15 18:30 EST (23:30 UTC)</td>" in body
    # A run's own page says when it was queued the same way.
    page = admin.get(f"{reverse('dashboard:whatif', args=[service.name])}?job={run.job_id}").content.decode()
    assert "queued Thu Jan 15 18:30 EST (23:30 UTC)" in page
