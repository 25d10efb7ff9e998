"""Override windows entered in US/Eastern across the DST changes of 2025-11-02 and 2026-03-08."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django import forms
from django.test import Client
from django.urls import reverse

from dashboard.forms import local_to_utc
from scaling import services
from scaling.audit import Actor
from scaling.models import Decision, Override
from scaling.overrides import override_create
from tests.factories import make_service, make_user

NY = ZoneInfo("America/New_York")


def test_a_time_in_the_spring_forward_gap_is_rejected() -> None:
    with pytest.raises(forms.ValidationError, match="2026-03-08 02:30 does not exist"):
        local_to_utc(datetime(2026, 3, 8, 2, 30), NY)
    assert local_to_utc(datetime(2026, 3, 8, 1, 59), NY) == datetime(2026, 3, 8, 6, 59, tzinfo=UTC)
    assert local_to_utc(datetime(2026, 3, 8, 3, 0), NY) == datetime(2026, 3, 8, 7, 0, tzinfo=UTC)


def test_a_time_in_the_repeated_fall_back_hour_must_say_which() -> None:
    with pytest.raises(forms.ValidationError, match=r"happens twice.*EDT, UTC−4.*EST, UTC−5"):
        local_to_utc(datetime(2025, 11, 2, 1, 30), NY)
    assert local_to_utc(datetime(2025, 11, 2, 1, 30), NY, "first") == datetime(2025, 11, 2, 5, 30, tzinfo=UTC)
    assert local_to_utc(datetime(2025, 11, 2, 1, 30), NY, "second") == datetime(2025, 11, 2, 6, 30, tzinfo=UTC)
    # outside the repeated hour the choice changes nothing
    assert local_to_utc(datetime(2025, 11, 2, 3, 0), NY, "first") == datetime(2025, 11, 2, 8, 0, tzinfo=UTC)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("now", "form", "expected"),
    [
        # 01:00 EST → 04:00 EDT on 2026-03-08 is two real hours
        (
            datetime(2026, 3, 7, 12, tzinfo=UTC),
            {"starts_at_local": "2026-03-08T01:00", "ends_at_local": "2026-03-08T04:00"},
            (datetime(2026, 3, 8, 6, tzinfo=UTC), datetime(2026, 3, 8, 8, tzinfo=UTC)),
        ),
        # 00:30 EDT → 03:00 EST on 2025-11-02 is three and a half real hours
        (
            datetime(2025, 11, 1, 12, tzinfo=UTC),
            {"starts_at_local": "2025-11-02T00:30", "ends_at_local": "2025-11-02T03:00"},
            (datetime(2025, 11, 2, 4, 30, tzinfo=UTC), datetime(2025, 11, 2, 8, tzinfo=UTC)),
        ),
        # 01:30 the first time → 01:30 the second time: one real hour
        (
            datetime(2025, 11, 1, 12, tzinfo=UTC),
            {
                "starts_at_local": "2025-11-02T01:30",
                "starts_at_occurrence": "first",
                "ends_at_local": "2025-11-02T01:30",
                "ends_at_occurrence": "second",
            },
            (datetime(2025, 11, 2, 5, 30, tzinfo=UTC), datetime(2025, 11, 2, 6, 30, tzinfo=UTC)),
        ),
    ],
)
def test_windows_across_dst_are_stored_in_utc(
    client: Client, now: datetime, form: dict[str, str], expected: tuple[datetime, datetime]
) -> None:
    service = make_service()
    client.force_login(make_user())
    with time_machine.travel(now, tick=False):
        response = client.post(
            reverse("dashboard:override-new"),
            {"services": [service.name], "kind": "floor", "replicas": "4", "reason": "DST game"} | form,
        )
    assert response.status_code == 302, response.content.decode()[:2000]
    o = Override.objects.get()
    assert (o.starts_at, o.ends_at) == expected


@pytest.mark.django_db
def test_the_form_refuses_an_ambiguous_end_without_a_choice(client: Client) -> None:
    service = make_service()
    client.force_login(make_user())
    with time_machine.travel(datetime(2025, 11, 1, 12, tzinfo=UTC), tick=False):
        response = client.post(
            reverse("dashboard:override-new"),
            {
                "services": [service.name],
                "kind": "floor",
                "replicas": "4",
                "reason": "r",
                "starts_at_local": "2025-11-02T00:00",
                "ends_at_local": "2025-11-02T01:15",
            },
        )
    assert response.status_code == 400
    assert "happens twice" in " ".join(response.context["form"].errors["ends_at_local"])
    assert not Override.objects.exists()


@pytest.mark.django_db
def test_the_engine_applies_a_pin_across_spring_forward_for_its_real_hour_only() -> None:
    service = make_service(replicas=2)
    start = local_to_utc(datetime(2026, 3, 8, 1, 30), NY)  # 06:30Z
    end = local_to_utc(datetime(2026, 3, 8, 3, 30), NY)  # 07:30Z: one hour later, not two
    override_create(
        services=[service],
        kind="pin",
        replicas=7,
        starts_at=start,
        ends_at=end,
        reason="late game",
        actor=Actor.system("t"),
        now=start - timedelta(hours=1),
    )

    def desired(at: datetime) -> int:
        with time_machine.travel(at, tick=False):
            result = services.service_evaluate(service_id=service.pk, tick_at=at)
        assert result.decision_id is not None
        return Decision.objects.get(pk=result.decision_id).desired

    assert desired(start) == 7
    # Every tick of the stabilization window before the end, so the window remembers the policy's own count.
    assert [desired(end - timedelta(seconds=s)) for s in (45, 30, 15)] == [7, 7, 7]
    assert desired(end) != 7


@pytest.mark.django_db
def test_extending_into_the_repeated_hour_asks_which_time_beside_the_end_then_takes_the_choice(client: Client) -> None:
    # The row offers "If the clocks fall back" only once the end typed needs it, as the mode form does.
    now = datetime(2025, 11, 2, 4, tzinfo=UTC)  # 00:00 EDT, the night the clocks fall back
    service = make_service()
    client.force_login(make_user())
    with time_machine.travel(now, tick=False):
        [o] = override_create(
            services=[service],
            kind="floor",
            replicas=3,
            starts_at=now,
            ends_at=now + timedelta(minutes=30),
            reason="late game",
            actor=Actor.system("t"),
        )
        assert "ends_at_occurrence" not in client.get(reverse("dashboard:overrides")).content.decode()
        url = reverse("dashboard:override-extend", args=[o.pk])
        typed = {"ends_at_local": "2025-11-02T01:30", "reason": "overtime"}
        body = client.post(url, typed, headers={"HX-Request": "true"}).content.decode()
        assert "happens twice in America/New_York" in body and 'aria-invalid="true"' in body
        assert 'name="ends_at_occurrence"' in body and "If the clocks fall back" in body
        client.post(url, typed | {"ends_at_occurrence": "second"}, headers={"HX-Request": "true"})
    o.refresh_from_db()
    assert o.ends_at == datetime(2025, 11, 2, 6, 30, tzinfo=UTC)
