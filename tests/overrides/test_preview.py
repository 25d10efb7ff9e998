"""The override form's htmx preview: nothing priced from a time that is not valid, the engine's bounds and
precedence applied to what it projects, and columns an operator can check the arithmetic of."""

from __future__ import annotations

import html
import math
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.auth.models import User
from django.test import Client, override_settings
from django.urls import reverse

from scaling import override_selectors as reads
from scaling import selectors
from scaling.audit import Actor, EventType
from scaling.models import AuditEvent, Decision, Game, GameDayRule, MetricSample, Override, Service
from scaling.overrides import OverrideError, override_create
from scaling.policy import EngineInput, PolicyParams, decide
from scaling.policy.rules import size_for
from tests.factories import make_service, make_user
from tests.policy.builders import SPEC, engine_input, override, recorded

pytestmark = pytest.mark.django_db

# Saturday 2026-10-31 08:00 in New York; the clocks fall back at 02:00 tomorrow.
NOW = datetime(2026, 10, 31, 12, 0, tzinfo=UTC)


@pytest.fixture
def operator(client: Client) -> Client:
    client.force_login(make_user("operator", "operator"))
    return client


def _form(**extra: object) -> dict[str, object]:
    data: dict[str, object] = {
        "services": ["win-probability"],
        "kind": "floor",
        "replicas": "6",
        "starts_at_local": "2026-10-31T10:00",
        "ends_at_local": "2026-10-31T12:00",
        "reason": "",
    }
    return data | extra


def _preview(client: Client, **extra: object) -> str:
    response = client.post(reverse("dashboard:override-preview"), _form(**extra), headers={"HX-Request": "true"})
    assert response.status_code == 200
    return response.content.decode()


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("starts_at_local", "2026-11-01T01:30", "happens twice"),  # the fall-back fold
        ("starts_at_local", "2026-03-08T02:30", "does not exist"),  # the spring-forward gap (in the past: no matter)
        ("ends_at_local", "2026-11-01T01:30", "happens twice"),
        ("ends_at_local", "2026-31-01T01:30", "enter a date and time"),
    ],
)
def test_it_prices_nothing_while_a_time_is_invalid(operator: Client, field: str, value: str, message: str) -> None:
    make_service("win-probability", price_per_replica_hour=2.0)
    body = _preview(operator, **{field: value})
    assert message in body
    assert "preview-table" not in body and "$" not in body and "may last at most" not in body


def test_it_prices_a_valid_window_without_a_reason(operator: Client) -> None:
    make_service("win-probability", price_per_replica_hour=2.0)
    body = _preview(operator)
    assert "preview-table" in body and "extra" in body


# The window _form asks for: 10:00 to 12:00 EDT.
START, END = datetime(2026, 10, 31, 14, 0, tzinfo=UTC), datetime(2026, 10, 31, 16, 0, tzinfo=UTC)


def _create(service: Service, kind: str, replicas: int | None, **extra: object) -> list[Override]:
    return override_create(
        services=[service],
        kind=kind,
        replicas=replicas,
        starts_at=START,
        ends_at=END,
        reason="r",
        actor=Actor.system("t"),
        **extra,  # type: ignore[arg-type]
    )


@pytest.mark.parametrize(
    ("kind", "replicas", "message"),
    [
        ("ceiling", 0, "a ceiling of 0 is below the service's minimum of 2 replicas"),
        ("floor", 21, "a floor of 21 is above the service's maximum of 20 replicas"),
    ],
)
def test_a_ceiling_below_the_minimum_or_a_floor_above_the_maximum_is_refused(
    operator: Client, kind: str, replicas: int, message: str
) -> None:
    service = make_service("win-probability", min_replicas=2, max_replicas=20)
    with pytest.raises(OverrideError, match=message) as caught:
        _create(service, kind, replicas)
    assert caught.value.field == "replicas" and "only a pin may leave the bounds [2, 20]" in str(caught.value)

    form = _form(kind=kind, replicas=str(replicas), reason="game night")
    body = html.unescape(operator.post(reverse("dashboard:override-new"), form).content.decode())
    assert message in body and 'data-field-error="replicas"' in body
    assert message in html.unescape(_preview(operator, kind=kind, replicas=str(replicas)))
    api = {"services": ["win-probability"], "kind": kind, "replicas": replicas, "reason": "r",
           "starts_at": START.isoformat(), "ends_at": END.isoformat()}  # fmt: skip
    response = operator.post("/api/overrides", api, content_type="application/json")
    assert response.status_code == 422 and response.json()["field"] == "replicas"
    assert message in response.json()["detail"]
    assert operator.post("/api/overrides/preview", api, content_type="application/json").status_code == 422
    assert not Override.objects.exists()
    _create(service, "pin", 1)  # a pin may leave the bounds


def test_a_ceiling_under_an_approved_pin_is_warned_and_priced_as_the_pin_holds(operator: Client) -> None:
    service = make_service("win-probability", price_per_replica_hour=0.3)
    [pin] = _create(service, "pin", 30, admin=True, bypass_reason="finals")
    assert pin.status == Override.Status.APPROVED
    preview = reads.override_preview(service, kind="ceiling", replicas=1, starts_at=START, ends_at=END, now=NOW)
    assert preview.overruled_by == (pin,) and preview.cost_delta == 0
    assert preview.forecast == preview.effective == 30
    body = _preview(operator, kind="ceiling", replicas="1")
    assert f"the approved pin #{pin.pk} at 30 replicas overrules this ceiling" in body
    assert "Sat Oct 31 10:00 EDT (14:00 UTC)" in body
    assert "+$0.00 extra" in body


def test_a_pending_pin_is_warned_of_but_not_priced_until_approved(operator: Client) -> None:
    service = make_service("win-probability", price_per_replica_hour=0.3)
    with override_settings(OVERRIDE_APPROVAL_REPLICAS=10):
        [pin] = _create(service, "pin", 30)
    assert pin.status == Override.Status.PENDING_APPROVAL
    preview = reads.override_preview(service, kind="floor", replicas=5, starts_at=START, ends_at=END, now=NOW)
    assert preview.overruled_by == (pin,) and preview.effective == 5 and preview.cost_delta > 0
    body = _preview(operator, kind="floor", replicas="5")
    assert f"the pin #{pin.pk} at 30 replicas, pending approval, would overrule this floor" in body


def test_a_floor_under_an_approved_freeze_is_warned_and_changes_nothing(operator: Client) -> None:
    service = make_service("win-probability", price_per_replica_hour=1.0)
    [freeze] = override_create(
        services=[service], kind="freeze", replicas=None, starts_at=START, ends_at=END, reason="r",
        actor=Actor.system("t"),
    )  # fmt: skip
    preview = reads.override_preview(service, kind="floor", replicas=10, starts_at=START, ends_at=END, now=NOW)
    assert preview.overruled_by == (freeze,) and preview.cost_delta == 0
    assert f"the approved freeze #{freeze.pk} overrules this floor" in _preview(operator, replicas="10")
    # After the freeze ends, nothing overrules the floor.
    assert (
        reads.override_preview(
            service, kind="floor", replicas=10, starts_at=END, ends_at=END + timedelta(hours=1), now=NOW
        ).overruled_by
        == ()
    )


@pytest.mark.parametrize(
    ("kind", "replicas", "approved_kind", "approved_replicas"),
    [
        ("floor", 10, "freeze_scale_in", None),  # a floor over the 8 the freeze holds, not over the policy's 2
        ("freeze_scale_in", None, "floor", 5),  # 8 held where the floor holds 5, not where the policy's 2 stood
    ],
)
def test_a_floor_and_a_freeze_scale_in_are_priced_together_as_the_engine_combines_them(
    kind: str, replicas: int | None, approved_kind: str, approved_replicas: int | None
) -> None:
    # 8 replicas running and a forecast of the minimum, 2, all window long.
    service = make_service("win-probability", min_replicas=2, price_per_replica_hour=1.0)
    MetricSample.objects.create(service=service, ts=NOW - timedelta(minutes=2), rps=1.0, provisioned=8)
    assert reads.forecast_replicas(service, now=NOW, start=START, end=END) == 2
    [approved] = _create(service, approved_kind, approved_replicas)
    assert approved.status == Override.Status.APPROVED

    # What the engine holds at a tick where its policy asks for 2 of the 8 running, without and with the override.
    def engine_holds(*overrides: tuple[str, int | None]) -> int:
        specs = tuple(override(k, n, oid=i) for i, (k, n) in enumerate(overrides))
        inp = engine_input(0.0, 8, service=replace(SPEC, min_replicas=2), recent=recorded(2, 2, 2), overrides=specs)
        return decide(inp).desired

    without = engine_holds((approved_kind, approved_replicas))
    extra = engine_holds((approved_kind, approved_replicas), (kind, replicas)) - without
    preview = reads.override_preview(service, kind=kind, replicas=replicas, starts_at=START, ends_at=END, now=NOW)
    assert (preview.forecast, preview.effective, preview.average_extra_replicas) == (without, without + extra, extra)
    assert preview.cost_delta == extra * 2 * 1.0 and preview.overruled_by == ()


def test_a_floor_under_an_approved_freeze_and_a_pending_pin_is_warned_of_both() -> None:
    service = make_service("win-probability", price_per_replica_hour=1.0)
    [freeze] = override_create(
        services=[service], kind="freeze", replicas=None, starts_at=START, ends_at=END, reason="r",
        actor=Actor.system("t"),
    )  # fmt: skip
    with override_settings(OVERRIDE_APPROVAL_REPLICAS=10):
        [pin] = _create(service, "pin", 30)
    assert pin.status == Override.Status.PENDING_APPROVAL
    preview = reads.override_preview(service, kind="floor", replicas=10, starts_at=START, ends_at=END, now=NOW)
    assert set(preview.overruled_by) == {freeze, pin} and preview.cost_delta == 0


def test_a_pin_covering_part_of_the_window_is_counted_for_that_part_only() -> None:
    service = make_service("win-probability", price_per_replica_hour=1.0)
    override_create(
        services=[service], kind="pin", replicas=30, starts_at=START, ends_at=START + timedelta(hours=1),
        reason="r", actor=Actor.system("t"), admin=True, bypass_reason="finals",
    )  # fmt: skip
    preview = reads.override_preview(service, kind="floor", replicas=10, starts_at=START, ends_at=END, now=NOW)
    assert len(preview.overruled_by) == 1
    assert 0 < preview.cost_delta < 2 * 10


def test_a_pin_is_priced_as_replacing_the_pins_it_overlaps() -> None:
    # The engine would follow the later pin, but a new pin replaces those it overlaps (or is refused).
    service = make_service("win-probability", price_per_replica_hour=1.0)
    override_create(
        services=[service], kind="pin", replicas=15, starts_at=START + timedelta(hours=1), ends_at=END,
        reason="r", actor=Actor.system("t"),
    )  # fmt: skip
    preview = reads.override_preview(service, kind="pin", replicas=10, starts_at=START, ends_at=END, now=NOW)
    assert preview.overruled_by == () and preview.effective == 10
    assert preview.average_extra_replicas == 10 - reads.forecast_replicas(service, now=NOW, start=START, end=END)


def test_the_preview_labels_peaks_and_shows_the_average_extra_and_per_hour(operator: Client) -> None:
    service = make_service("win-probability", price_per_replica_hour=2.0)
    body = _preview(operator, kind="floor", replicas="15")
    preview = reads.override_preview(service, kind="floor", replicas=15, starts_at=START, ends_at=END, now=NOW)
    assert "Without override (peak replicas)" in body and "With override (peak replicas)" in body
    assert preview.average_extra_replicas == pytest.approx(preview.cost_delta / 2 / 2.0)
    assert f"{preview.average_extra_replicas:.1f}" in body
    assert f"+${preview.cost_delta / 2:,.2f}/h" in body


def test_the_audit_event_charges_the_projected_cost_per_hour_of_the_window() -> None:
    # A game in the window: the forecast rises and falls, so its peak is not its average.
    service = make_service(
        "win-probability", service_time_ms=25.0, concurrency=1, max_replicas=500, price_per_replica_hour=2.0
    )
    MetricSample.objects.create(service=service, ts=NOW - timedelta(minutes=2), rps=35.0, provisioned=5)
    start, end = NOW + timedelta(hours=6), NOW + timedelta(hours=9)
    Game.objects.create(
        game_id="tv", tip_utc=start + timedelta(minutes=30), away_team="BOS", home_team="NYK", national_tv="ESPN"
    )
    peak = reads.forecast_replicas(service, now=NOW, start=start, end=end)
    [floor] = override_create(
        services=[service], kind="floor", replicas=peak + 2, starts_at=start, ends_at=end, reason="r",
        actor=Actor.system("t"),
    )  # fmt: skip
    event = AuditEvent.objects.get(event_type=EventType.OVERRIDE_CREATED, object_id=str(floor.pk))
    assert floor.projected_cost_delta is not None and event.cost_impact_per_hour is not None
    assert event.cost_impact_per_hour == pytest.approx(floor.projected_cost_delta / 3.0, abs=0.01)
    assert event.cost_impact_per_hour > 2 * 2.0  # more than the 2 replicas above the peak


def _learned_service_with_a_decision(ratio: float, headroom: float, provisioned: int) -> Service:
    """A service whose serving model is not 0.7 utilization (25 rps a replica at 100 %), with at least three
    hours of learned history at 400 rps (nine recorded: the model learns from the samples before its refit
    period, which started up to six hours before NOW), `provisioned` replicas provisioned and the engine's
    latest forecast reading tonight at `ratio` times the learned profile with `headroom` above it."""
    service = make_service("win-probability", service_time_ms=80.0, concurrency=2, max_replicas=200)
    MetricSample.objects.bulk_create(
        MetricSample(service=service, ts=NOW - timedelta(seconds=15 * i), rps=400.0, provisioned=provisioned)
        for i in range(1, 2161)
    )
    inputs = {"ratio": ratio, "headroom": headroom, "learned": True, "forecast_rps": 400.0 * ratio}
    Decision.objects.create(
        service=service, tick=NOW - timedelta(seconds=15), provisioned=provisioned, ready=provisioned,
        desired=provisioned, reason_code="hold", summary="hold",
        explanation={"rules": [{"rule": "forecast", "replicas": provisioned, "inputs": inputs, "note": ""}]},
    )  # fmt: skip
    return service


def test_the_baseline_is_what_the_engine_would_run_tonight() -> None:
    service = _learned_service_with_a_decision(ratio=1.5, headroom=0.2, provisioned=50)
    forecaster = selectors.traffic_forecaster(service, NOW)
    assert forecaster is not None and forecaster.learned
    params = PolicyParams()
    sizing = EngineInput(now=NOW, service=selectors.service_spec(service), params=params, provisioned=50, ready=50)

    def engine_count(t: datetime, ratio: float, headroom: float) -> int:
        """The learned forecast times `ratio`, with `headroom`, sized by the serving model."""
        return size_for(
            forecaster.predict_epoch(t.timestamp(), forecaster.prepare([])) * ratio * (1 + headroom), sizing
        )

    # Within what the latest decision forecast for (after the delay, when the 50 running may go; before the
    # tick and look-ahead past it end): tonight's ratio and headroom.
    delay = service.provisioning_delay_s
    reach = [NOW + timedelta(seconds=delay + 10), NOW + timedelta(seconds=delay + 15 + params.forecast_lookahead_s)]
    expected = [engine_count(t, 1.5, 0.2) for t in reach]
    assert reads.forecast_replicas_series(service, now=NOW, points=reach) == expected
    # Not the 0.7-utilization estimate the preview had used, nor the learned forecast without tonight's ratio.
    rate = forecaster.predict_epoch(reach[0].timestamp(), forecaster.prepare([]))
    assert expected[0] not in {math.ceil(rate * 1.5 / (0.7 * 25)), size_for(rate * 1.2, sizing)}
    assert expected[0] < 50
    # Beyond, with no game under way: the profile as learned, with the forecast rule's least headroom. The
    # engine reads the ratio afresh at each tick; one hot evening says nothing of the hours after it.
    later = [NOW + timedelta(hours=1), NOW + timedelta(days=3)]
    assert reads.forecast_replicas_series(service, now=NOW, points=later) == [
        engine_count(t, 1.0, params.forecast_headroom) for t in later
    ]


def test_a_window_days_ahead_and_a_rules_floor_do_not_follow_tonights_ratio() -> None:
    # A reviewer's finding: a hot evening (ratio 3) had tripled the price of an override three days ahead, and
    # the floor a game-day rule schedules for next week.
    from scaling.schedule.rules import rule_floor

    def at_ratio(ratio: float) -> tuple[list[int], int]:
        Decision.objects.all().delete()
        MetricSample.objects.all().delete()
        Service.objects.all().delete()
        service = _learned_service_with_a_decision(ratio=ratio, headroom=0.2, provisioned=50)
        later = [NOW + timedelta(days=3, hours=h) for h in (0, 1, 2)]
        game = Game(game_id="next-week", tip_utc=NOW + timedelta(days=6), away_team="LAL", home_team="BOS")
        rule = GameDayRule(name="r", match={}, floor_forecast_multiple=1.2, tail_minutes=180)
        return reads.forecast_replicas_series(service, now=NOW, points=later), rule_floor(rule, service, game, NOW)

    assert at_ratio(3.0) == at_ratio(1.0)


def test_tonights_ratio_holds_through_the_games_under_way() -> None:
    # Tonight's ratio is mostly the interest of the games on now: it stands until they end, not only for the
    # few minutes the latest decision forecast for.
    service = _learned_service_with_a_decision(ratio=1.5, headroom=0.2, provisioned=50)
    Game.objects.create(game_id="on-now", tip_utc=NOW - timedelta(minutes=30), away_team="LAL", home_team="BOS")
    in_game, after = NOW + timedelta(hours=2), NOW + timedelta(hours=5)
    hot = reads.forecast_rps_series(service, now=NOW, points=[in_game, after])
    neutral = reads.forecast_rps_series(service, now=NOW, points=[in_game, after], tonight=False)
    assert hot is not None and neutral is not None
    (hot_rates, hot_headrooms), (rates, headrooms) = hot, neutral
    assert hot_rates[0] == pytest.approx(1.5 * rates[0]) and hot_headrooms[0] == 0.2
    assert hot_rates[1] == pytest.approx(rates[1]) and rates[1] > 0
    assert hot_headrooms[1] == headrooms[1] == PolicyParams().forecast_headroom


def test_the_baseline_keeps_what_runs_now_until_replicas_asked_for_now_could_arrive() -> None:
    service = _learned_service_with_a_decision(ratio=1.5, headroom=0.2, provisioned=50)
    delay = timedelta(seconds=service.provisioning_delay_s)
    points = [NOW + delay / 2, NOW + delay + timedelta(minutes=10)]
    soon, later = reads.forecast_replicas_series(service, now=NOW, points=points)
    assert soon == 50 and later < 50
    # Pinning to 50 for that window adds nothing while the 50 stay, and prices only what follows.
    preview = reads.override_preview(service, kind="pin", replicas=50, starts_at=NOW, ends_at=NOW + delay * 2, now=NOW)
    assert preview.forecast == 50 and 0 < preview.average_extra_replicas < 50 - later


@override_settings(OVERRIDE_APPROVAL_COST=4.0)
def test_the_preview_says_a_slice_next_to_the_operators_own_would_wait_and_why(operator: Client) -> None:
    service = make_service(price_per_replica_hour=1.0)
    user = User.objects.get(username="operator")
    [first] = override_create(
        services=[service],
        kind="floor",
        replicas=6,
        starts_at=datetime(2026, 10, 31, 13, tzinfo=UTC),
        ends_at=datetime(2026, 10, 31, 13, 30, tzinfo=UTC),
        reason="first slice",
        actor=Actor.for_user(user),
    )
    assert first.status == Override.Status.APPROVED and 0 < (first.projected_cost_delta or 0) <= 4
    body = html.unescape(_preview(operator, starts_at_local="2026-10-31T09:30", ends_at_local="2026-10-31T10:00"))
    assert "needs a second person" in body and f"#{first.pk} (+${first.projected_cost_delta:,.2f})" in body
    assert "together with the requester's adjacent overrides on win-probability" in body
