"""The override pages: create with local times, 409 on an overlapping pin, preview, approve from the fleet page."""

from __future__ import annotations

import html
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.test import Client, override_settings
from django.urls import reverse

from scaling import override_selectors as reads
from scaling import services
from scaling.audit import Actor, EventType
from scaling.models import AuditEvent, Game, MetricSample, Override, Service
from scaling.overrides import override_cancel, override_create
from scaling.schedule.rules import RuleSpec, rule_create
from tests.factories import make_service, make_user
from tests.overrides.helpers import NOW, bypassed_floor, earlier_pin, hour_floor, pin_form, shown_to

pytestmark = pytest.mark.django_db


def _login(client: Client, username: str, role: str) -> Client:
    client.force_login(make_user(username, role))
    return client


def test_an_operator_pins_a_service_for_two_hours_entered_in_eastern_time(client: Client) -> None:
    service = make_service()
    _login(client, "operator", "operator")
    response = client.post(reverse("dashboard:override-new"), pin_form())
    assert response.status_code == 302
    o = Override.objects.get(service=service)
    assert (o.starts_at, o.ends_at) == (datetime(2026, 1, 15, 18, tzinfo=UTC), datetime(2026, 1, 15, 20, tzinfo=UTC))
    page = client.get(reverse("dashboard:overrides")).content.decode()
    assert "Thu Jan 15 13:00 EST (18:00 UTC)" in page and "halftime surge test" in page
    assert AuditEvent.objects.filter(event_type=EventType.OVERRIDE_CREATED, actor_label="operator").exists()


def test_an_overlapping_pin_gets_409_naming_the_existing_one_unless_replace_is_ticked(client: Client) -> None:
    service = make_service()
    existing = earlier_pin(service)
    _login(client, "operator", "operator")
    response = client.post(reverse("dashboard:override-new"), pin_form())
    assert response.status_code == 409
    body = response.content.decode()
    assert f"#{existing.pk}" in body and "earlier pin" in body
    response = client.post(reverse("dashboard:override-new"), pin_form(replace="on"))
    assert response.status_code == 302
    existing.refresh_from_db()
    assert existing.status == Override.Status.CANCELLED


@pytest.mark.parametrize(
    ("extra", "field", "message"),
    [
        ({"replicas": "999"}, "replicas", "hard limit"),
        ({"ends_at_local": "2026-01-15T12:30"}, "ends_at_local", "after the start"),
        ({"starts_at_local": "2026-01-14T13:00", "ends_at_local": "2026-01-14T14:00"}, "starts_at_local", "past"),
        ({"reason": ""}, "reason", "required"),
        ({"ends_at_local": "9999-12-31T23:00"}, "ends_at_local", "out of range"),
        ({"ends_at_local": "", "duration_minutes": "9999999999"}, "duration_minutes", "less than or equal to"),
        (
            {"starts_at_local": "9999-12-31T10:00", "ends_at_local": "", "duration_minutes": "600"},
            "duration_minutes",
            "past the year 9999",
        ),
    ],
)
def test_it_explains_what_is_wrong(client: Client, extra: dict[str, str], field: str, message: str) -> None:
    make_service()
    _login(client, "operator", "operator")
    response = client.post(reverse("dashboard:override-new"), pin_form(**extra))
    assert response.status_code == 400
    errors = response.context["form"].errors
    assert field in errors and message in " ".join(errors[field])
    assert not Override.objects.exists()


def test_an_admin_may_not_end_an_override_more_than_a_year_away(client: Client) -> None:
    make_service()
    _login(client, "boss", "admin")
    response = client.post(reverse("dashboard:override-new"), pin_form(kind="floor", ends_at_local="2027-01-20T15:00"))
    assert response.status_code == 400
    assert "more than 366 days away" in " ".join(response.context["form"].errors["ends_at_local"])


def test_out_of_range_times_are_explained_by_the_preview_and_extend(client: Client) -> None:
    service = make_service()
    o = hour_floor(service)
    _login(client, "operator", "operator")
    preview = client.post(
        reverse("dashboard:override-preview"), pin_form(ends_at_local="", duration_minutes="9999999999")
    )
    assert preview.status_code == 200 and "less than or equal to" in preview.content.decode()
    extend = {"ends_at_local": "9999-12-31T23:00", "reason": "longer", "next": "/overrides/"}
    page = client.post(reverse("dashboard:override-extend", args=[o.pk]), extend, follow=True).content.decode()
    assert "not extended" in page and "out of range" in page


def test_a_refused_extend_cancel_or_reject_names_the_field_at_fault(client: Client) -> None:
    # "Override #20 not extended: This field is required." had not said which field.
    service = make_service()
    o = hour_floor(service)
    _login(client, "boss", "admin")
    # (tests/overrides/test_row_actions.py: each is said beside its field too.)
    extend = {"ends_at_local": "2030-01-01T10:00", "reason": "", "next": "/overrides/"}
    page = client.post(reverse("dashboard:override-extend", args=[o.pk]), extend, follow=True).content.decode()
    assert f"Override #{o.pk} not extended: Reason for extending: This field is required." in page
    cancel = {"reason": "x" * 501, "next": "/overrides/"}
    page = client.post(reverse("dashboard:override-cancel", args=[o.pk]), cancel, follow=True).content.decode()
    assert (
        f"Override #{o.pk} not cancelled: Reason for cancelling: Ensure this value has at most 500 characters" in page
    )
    page = client.post(reverse("dashboard:override-reject", args=[o.pk]), {"reason": ""}, follow=True).content.decode()
    assert f"Override #{o.pk} not rejected: Reason for rejecting: This field is required." in page
    o.refresh_from_db()
    assert o.status == Override.Status.APPROVED


def test_a_viewer_cannot_create_overrides(client: Client) -> None:
    make_service()
    _login(client, "viewer", "viewer")
    assert client.post(reverse("dashboard:override-new"), pin_form()).status_code == 403


def test_the_preview_shows_forecast_replicas_and_projected_cost(client: Client) -> None:
    service = make_service(service_time_ms=100.0, concurrency=1, price_per_replica_hour=2.0)  # 10 rps per replica
    MetricSample.objects.create(service=service, ts=NOW - timedelta(minutes=2), rps=35.0, provisioned=5)
    _login(client, "operator", "operator")
    response = client.post(
        reverse("dashboard:override-preview"), pin_form(kind="floor", replicas="40"), headers={"HX-Request": "true"}
    )
    body = response.content.decode()
    assert response.status_code == 200 and "<html" not in body
    window = {"starts_at": NOW + timedelta(hours=1), "ends_at": NOW + timedelta(hours=3), "now": NOW}
    preview = reads.override_preview(service, kind="floor", replicas=40, **window)
    assert 1 <= preview.forecast < 40 and preview.effective == 40 and preview.hours == 2.0
    assert 0 < preview.cost_delta <= (40 - 1) * 2 * 2.0
    assert f"+${preview.cost_delta:,.2f} extra" in body
    saved = reads.override_preview(service, kind="ceiling", replicas=1, **window)
    assert saved.cost_delta < 0
    body = client.post(reverse("dashboard:override-preview"), pin_form(kind="ceiling", replicas="1")).content.decode()
    assert f"−${-saved.cost_delta:,.2f} saved" in body


def test_the_preview_refuses_a_window_longer_than_the_kind_allows_before_pricing_it(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_service()

    def unpriced(*args: object, **kwargs: object) -> None:
        raise AssertionError("a window too long to create was priced")

    monkeypatch.setattr(reads, "override_preview", unpriced)
    _login(client, "operator", "operator")
    mistyped = pin_form(kind="floor", replicas="5", ends_at_local="2027-01-15T15:00")
    body = client.post(reverse("dashboard:override-preview"), mistyped).content.decode()
    assert "a floor may last at most 72 h" in body and "preview-table" not in body
    _login(client, "boss", "admin")
    body = client.post(
        reverse("dashboard:override-preview"), pin_form(ends_at_local="2027-01-16T15:00")
    ).content.decode()
    assert "more than 366 days away" in body and "preview-table" not in body


def test_a_long_admin_window_is_priced_at_a_bounded_number_of_points() -> None:
    service = make_service(price_per_replica_hour=1.0)  # no samples: the forecast holds min_replicas (1)
    start, end = NOW, NOW + timedelta(days=300)
    assert len(reads._window_points(start, end)) == reads.MAX_WINDOW_POINTS
    assert len(reads._window_points(start, start + timedelta(hours=2))) == 24
    preview = reads.override_preview(service, kind="floor", replicas=10, starts_at=start, ends_at=end, now=NOW)
    assert preview.cost_delta == 9 * 300 * 24


def test_the_forecast_for_a_window_rises_with_a_national_tv_game_in_it() -> None:
    service = make_service(service_time_ms=100.0, concurrency=1, max_replicas=500)
    MetricSample.objects.create(service=service, ts=NOW - timedelta(minutes=2), rps=35.0, provisioned=5)
    start, end = NOW + timedelta(hours=6), NOW + timedelta(hours=9)
    quiet = reads.forecast_replicas(service, now=NOW, start=start, end=end)
    Game.objects.create(
        game_id="tv", tip_utc=start + timedelta(minutes=30), away_team="BOS", home_team="NYK", national_tv="ESPN"
    )
    busy = reads.forecast_replicas(service, now=NOW, start=start, end=end)
    assert busy > quiet


@override_settings(OVERRIDE_APPROVAL_REPLICAS=5)
def test_pending_approvals_are_listed_on_the_fleet_page_and_a_second_person_approves(client: Client) -> None:
    service = make_service()
    operator = make_user("operator", "operator")
    [o] = override_create(
        services=[service],
        kind="floor",
        replicas=12,
        starts_at=NOW,
        ends_at=NOW + timedelta(hours=1),
        reason="big game",
        actor=Actor.for_user(operator),
    )
    assert o.status == Override.Status.PENDING_APPROVAL
    client.force_login(operator)
    page = client.get(reverse("dashboard:fleet")).content.decode()
    assert "Pending approvals" in page and "big game" in page and f"approve-{o.pk}" not in page  # not their own
    _login(client, "approver", "approver")
    page = client.get(reverse("dashboard:fleet")).content.decode()
    assert f"approve-{o.pk}" in page
    confirm = {"next": "/", "confirmed": "1", "seen": shown_to(client, o)}
    response = client.post(reverse("dashboard:override-approve", args=[o.pk]), confirm)
    assert response.status_code == 302
    o.refresh_from_db()
    assert o.status == Override.Status.APPROVED and o.approved_by is not None and o.approved_by.username == "approver"


def test_cancel_and_extend_from_the_list(client: Client) -> None:
    service = make_service()
    o = hour_floor(service)
    _login(client, "operator", "operator")
    client.post(
        reverse("dashboard:override-extend", args=[o.pk]),
        {"ends_at_local": "2026-01-15T14:30", "reason": "overtime"},
    )
    o.refresh_from_db()
    assert o.ends_at == datetime(2026, 1, 15, 19, 30, tzinfo=UTC)
    client.post(reverse("dashboard:override-cancel", args=[o.pk]), {"reason": "done"})
    o.refresh_from_db()
    assert o.status == Override.Status.CANCELLED


@override_settings(OVERRIDE_APPROVAL_REPLICAS=10)
def test_an_admin_extends_an_approved_override_past_approval_only_with_a_bypass_reason(client: Client) -> None:
    o = bypassed_floor(make_service(hard_max_replicas=100))
    _login(client, "boss", "admin")
    assert 'name="bypass_reason"' in client.get(reverse("dashboard:overrides")).content.decode()
    extend = {"ends_at_local": "2026-01-15T14:30", "reason": "overtime", "next": "/overrides/"}
    page = client.post(reverse("dashboard:override-extend", args=[o.pk]), extend, follow=True).content.decode()
    assert "not extended" in page and "would need a second person" in page
    client.post(reverse("dashboard:override-extend", args=[o.pk]), extend | {"bypass_reason": "overtime, SLO"})
    o.refresh_from_db()
    assert o.ends_at == datetime(2026, 1, 15, 19, 30, tzinfo=UTC) and o.bypass_reason == "overtime, SLO"


def test_the_calendar_highlights_national_tv_games_with_their_overrides_and_cost(client: Client) -> None:
    service = make_service()
    tv = Game.objects.create(
        game_id="g1",
        tip_utc=NOW + timedelta(hours=7),
        away_team="BOS (Celtics)",
        home_team="NYK (Knicks)",
        national_tv="ESPN",
    )
    Game.objects.create(
        game_id="g2", tip_utc=NOW + timedelta(hours=8), away_team="DEN (Nuggets)", home_team="UTA (Jazz)"
    )
    override_create(
        services=[service],
        kind="floor",
        replicas=8,
        starts_at=tv.tip_utc - timedelta(minutes=20),
        ends_at=tv.tip_utc + timedelta(hours=3),
        reason="ESPN",
        actor=Actor.system("t"),
        game=tv,
    )
    _login(client, "operator", "operator")
    body = client.get(reverse("dashboard:calendar")).content.decode()
    assert 'data-game="g1" class="marquee' in body and 'data-game="g2" class="' in body
    assert "add-override-g1" in body and "Floor (at least N) 8" in body
    new = client.get(reverse("dashboard:override-new") + f"?game={tv.pk}").content.decode()
    assert 'value="2026-01-15T18:42"' in new  # tip 19:00 ET minus provisioning delay (3 min) and 15 min


def test_add_override_for_a_game_about_to_tip_starts_now_not_in_the_past(client: Client, frozen: Any) -> None:
    # 12:00:20 in New York, the game tips at 12:10: tip-off less the lead time (3 min + 15 min) is 11:52, gone.
    make_service()
    game = Game.objects.create(
        game_id="g1", tip_utc=NOW + timedelta(minutes=10), away_team="MIN (Timberwolves)", home_team="HOU (Rockets)"
    )
    frozen.shift(timedelta(seconds=20))
    _login(client, "operator", "operator")
    query = {"game": str(game.pk), "service": "win-probability"}
    form = client.get(reverse("dashboard:override-new"), query).context["form"]
    assert form.initial["starts_at_local"] == "2026-01-15T12:01"  # now, rounded up to the minute
    data = {name: form[name].value() for name in ("kind", "starts_at_local", "ends_at_local", "reason")}
    response = client.post(
        reverse("dashboard:override-new"), data | {"services": ["win-probability"], "game": game.pk, "replicas": "3"}
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    assert Override.objects.get().starts_at == datetime(2026, 1, 15, 17, 1, tzinfo=UTC)


def test_add_override_from_the_calendar_prefills_a_reason_that_does_not_repeat_the_game(client: Client) -> None:
    # The game is linked and shown beside the reason: a reason of the matchup read "MIN @ HOU (MIN @ HOU)".
    game = Game.objects.create(
        game_id="g1",
        tip_utc=NOW + timedelta(hours=7),
        away_team="MIN (Timberwolves)",
        home_team="HOU (Rockets)",
        national_tv="ESPN",
    )
    _login(client, "operator", "operator")
    form = client.get(reverse("dashboard:override-new"), {"game": game.pk}).context["form"]
    assert form.initial["reason"] == "game-night traffic on ESPN"
    plain = Game.objects.create(game_id="g2", tip_utc=NOW + timedelta(hours=8), away_team="DEN", home_team="UTA")
    form = client.get(reverse("dashboard:override-new"), {"game": plain.pk}).context["form"]
    assert form.initial["reason"] == "game-night traffic"


def test_the_calendars_projected_cost_leaves_out_cancelled_overrides() -> None:
    game = Game.objects.create(game_id="g1", tip_utc=NOW + timedelta(hours=3), away_team="BOS", home_team="NYK")
    actor = Actor.system("t")
    kept, dropped = (
        override_create(
            services=[make_service(name, price_per_replica_hour=2.0)],
            kind="floor",
            replicas=10,
            starts_at=NOW + timedelta(hours=2),
            ends_at=NOW + timedelta(hours=6),
            reason="game",
            actor=actor,
            game=game,
        )[0]
        for name in ("a", "b")
    )
    override_cancel(override=dropped, actor=actor, reason="not needed")
    [row] = reads.calendar_games(start=NOW, end=NOW + timedelta(days=1))
    assert {o.pk for o in row.overrides} == {kept.pk, dropped.pk}
    assert kept.projected_cost_delta and row.projected_cost == kept.projected_cost_delta


def test_the_replicas_chart_shades_override_windows(client: Client) -> None:
    service = make_service()
    override_create(
        services=[service],
        kind="pin",
        replicas=5,
        starts_at=NOW + timedelta(hours=1),
        ends_at=NOW + timedelta(hours=2),
        reason="r",
        actor=Actor.system("t"),
    )
    _login(client, "viewer", "viewer")
    figures = client.get(reverse("dashboard:service-charts", args=[service.name])).json()["figures"]
    [shape] = [s for s in figures["replicas"]["layout"]["shapes"] if s["type"] == "rect"]
    # In the operator's zone (an hour after noon in New York): plotly.js draws times as written.
    assert shape["x0"].startswith("2026-01-15T13:00") and shape["label"]["text"] == "pin 5"


def test_the_replicas_chart_looks_ahead_as_far_as_its_range_looks_back(client: Client) -> None:
    service = make_service()
    for kind, start, hours, replicas in (("pin", 30, 3, 5), ("floor", 120, 1, 7)):
        override_create(
            services=[service],
            kind=kind,
            replicas=replicas,
            starts_at=NOW + timedelta(minutes=start),
            ends_at=NOW + timedelta(minutes=start, hours=hours),
            reason="r",
            actor=Actor.system("t"),
        )
    _login(client, "viewer", "viewer")
    url = reverse("dashboard:service-charts", args=[service.name])
    hour = client.get(url + "?range=1h").json()["figures"]["replicas"]["layout"]["shapes"]
    # An hour back, an hour ahead (in New York's wall clock, as plotly.js draws it): the pin is drawn to that
    # hour's end, the floor starts after it.
    assert [(s["label"]["text"], s["x0"][:16], s["x1"][:16]) for s in hour] == [
        ("pin 5", "2026-01-15T12:30", "2026-01-15T13:00")
    ]
    six = client.get(url + "?range=6h").json()["figures"]["replicas"]["layout"]["shapes"]
    assert [(s["label"]["text"], s["x1"][:16]) for s in six] == [
        ("pin 5", "2026-01-15T15:30"),
        ("floor 7", "2026-01-15T15:00"),
    ]


def test_an_operator_can_pin_for_the_next_two_hours_by_duration(client: Client) -> None:
    service = make_service()
    _login(client, "operator", "operator")
    response = client.post(
        reverse("dashboard:override-new"),
        pin_form(starts_at_local="", ends_at_local="", duration_minutes="120", reason="pin during the release"),
    )
    assert response.status_code == 302
    o = Override.objects.get(service=service)
    assert (o.starts_at, o.ends_at) == (NOW, NOW + timedelta(hours=2))
    missing = client.post(reverse("dashboard:override-new"), pin_form(ends_at_local=""))
    assert missing.status_code == 400 and "give an end, or a duration" in missing.content.decode()


def test_a_cancelled_override_leaves_active_and_upcoming_for_the_history(client: Client) -> None:
    service = make_service()
    kept, cancelled = hour_floor(service), hour_floor(make_service("scores"))
    override_cancel(override=cancelled, actor=Actor.system("t"), reason="game postponed")
    _login(client, "viewer", "viewer")
    listed = client.get(reverse("dashboard:overrides")).context["overrides"]
    assert [o.pk for o in listed] == [kept.pk]
    history = client.get(reverse("dashboard:overrides"), {"past": "1"}).context["overrides"]
    assert {o.pk for o in history} == {kept.pk, cancelled.pk}
    assert [o.pk for o in reads.overrides_list(now=NOW, status="cancelled")] == [cancelled.pk]


def test_a_long_history_shows_its_latest_overrides_and_says_how_many_it_leaves_out(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A season's overrides outgrew the page, which showed the oldest 500 without a word: weeks-old floors, none recent.
    from dashboard import api_overrides
    from dashboard import overrides as pages

    service = make_service()
    made = [
        Override.objects.create(
            service=service,
            kind="floor",
            replicas=3,
            reason="r",
            starts_at=NOW - timedelta(days=d),
            ends_at=NOW - timedelta(days=d) + timedelta(hours=1),
        )
        for d in (9, 5, 3, 1)
    ]
    monkeypatch.setattr(pages, "LIST_LIMIT", 2)
    monkeypatch.setattr(api_overrides, "API_LIST_LIMIT", 3)
    page = _login(client, "viewer", "viewer").get(reverse("dashboard:overrides"), {"past": "1"})
    assert [o.pk for o in page.context["overrides"]] == [made[2].pk, made[3].pk]
    assert "Showing the 2 latest-starting of 4" in page.content.decode()
    listed = client.get("/api/overrides", {"include_past": "true"}).json()
    assert [o["id"] for o in listed] == [o.pk for o in made[1:]]
    assert "latest-starting" not in client.get(reverse("dashboard:overrides")).content.decode()


@pytest.mark.parametrize("page", ["dashboard:override-new", "dashboard:rule-new"])
def test_a_group_of_boxes_is_a_fieldset_named_by_its_legend(client: Client, page: str) -> None:
    # A label for="" names nothing: a screen reader heard "Services" nowhere, and a click on it did nothing.
    make_service()
    body = _login(client, "boss", "admin").get(reverse(page)).content.decode()
    assert '<label for="">' not in body
    assert "<legend>Services</legend>" in body


def test_only_an_admin_is_offered_the_emergency_bypass(client: Client) -> None:
    make_service()
    new = reverse("dashboard:override-new")
    for response in [_login(client, "operator", "operator").get(new), client.post(new, pin_form(reason=""))]:
        assert "bypass" not in response.content.decode().lower()
    page = _login(client, "boss", "admin").get(new).content.decode()
    assert 'name="bypass_reason"' in page and "Emergency bypass reason" in page


def _row(page: str, o: Override) -> str:
    """The overrides page's row for `o`."""
    row = page[page.index(f'<tr data-override="{o.pk}"') :]
    return row[: row.index("</tr>")]


def _tv_rules(service: Service) -> tuple[Override, Override]:
    """Two game-day rules that schedule the same floor of 3 around one national-TV game: one seeded (set going
    by the system), one an admin made. The overrides they made, in the order they were made."""
    Game.objects.create(
        game_id="tv", tip_utc=NOW + timedelta(hours=6), away_team="BOS", home_team="NYK", national_tv="ESPN"
    )
    spec = RuleSpec(name="national-tv", match={"national_tv": True}, services=[service], reason="tv", floor_replicas=3)
    rule_create(spec=spec, actor=Actor.system("demo"), now=NOW)
    espn = replace(spec, name="espn", match={"networks": ["ESPN"]})
    rule_create(spec=espn, actor=Actor.for_user(make_user("boss", "admin")), now=NOW)
    first, second = Override.objects.order_by("pk")
    return first, second


def test_an_override_a_rule_made_says_so_whoever_set_the_rule_going(client: Client) -> None:
    seeded, by_admin = _tv_rules(make_service(price_per_replica_hour=1.0))
    page = _login(client, "viewer", "viewer").get(reverse("dashboard:overrides")).content.decode()
    assert "rule national-tv, applied by system" in _row(page, seeded)
    assert "rule espn, applied by boss" in _row(page, by_admin)


def test_a_floor_under_an_identical_earlier_one_says_it_adds_nothing_over_it(client: Client) -> None:
    first, second = _tv_rules(make_service(price_per_replica_hour=1.0))
    assert first.projected_cost_delta and first.projected_cost_delta > 0 and second.projected_cost_delta == 0
    page = _login(client, "viewer", "viewer").get(reverse("dashboard:overrides")).content.decode()
    assert f"adds nothing over #{first.pk}" in _row(page, second)
    assert "adds nothing" not in _row(page, first)


def test_a_rules_nightly_floors_under_a_season_floor_ask_the_engine_once_per_kind_and_count(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A reviewer's case: 109 nightly floors priced at nothing under one approved 30-day floor took the
    # overrides page 1.5-2.4 s, every row asking the engine at some 300 counts again.
    service = make_service("win-probability", max_replicas=200, hard_max_replicas=300)
    season = Override.objects.create(
        service=service, kind="floor", replicas=100, starts_at=NOW, ends_at=NOW + timedelta(days=30),
        reason="season floor", projected_cost_delta=1000.0,
    )  # fmt: skip
    Override.objects.bulk_create(
        Override(
            service=service,
            kind="floor",
            replicas=40 + i % 5,
            starts_at=NOW + timedelta(hours=6 * i),
            ends_at=NOW + timedelta(hours=6 * i + 3),
            reason="nightly",
            projected_cost_delta=0.0,
        )
        for i in range(1, 110)
    )
    asked: list[tuple[str, int | None]] = []
    changes_nothing = reads._changes_nothing

    def counting(spec: object, o: object, earlier: object) -> bool:
        asked.append((o.kind, o.replicas))  # type: ignore[attr-defined]
        return changes_nothing(spec, o, earlier)  # type: ignore[arg-type]

    monkeypatch.setattr(reads, "_changes_nothing", counting)
    found = reads.adds_nothing_over(list(reads.overrides_list(now=NOW)))
    assert sorted(asked) == [("floor", n) for n in range(40, 45)]
    assert len(found) == 109 and set(found.values()) == {season}


def test_the_rules_list_counts_the_floors_still_scheduled(client: Client) -> None:
    service = make_service(price_per_replica_hour=1.0)
    for hours in (-30, 6, 30):  # one game already played
        Game.objects.create(
            game_id=f"tv{hours}", tip_utc=NOW + timedelta(hours=hours), away_team="BOS", home_team="NYK",
            national_tv="ESPN",
        )  # fmt: skip
    spec = RuleSpec(name="national-tv", match={"national_tv": True}, services=[service], reason="tv", floor_replicas=3)
    rule = rule_create(spec=spec, actor=Actor.system("demo"), now=NOW - timedelta(days=2))
    assert rule.overrides.count() == 3
    override_cancel(override=rule.overrides.order_by("-starts_at")[0], actor=Actor.system("t"), reason="r")
    page = _login(client, "viewer", "viewer").get(reverse("dashboard:rules")).content.decode()
    row = page[page.index(f'<tr data-rule="{rule.pk}"') :]
    assert 'data-field="scheduled" title="pending or approved, not yet over">1<' in row[: row.index("</tr>")]
    [listed] = client.get("/api/rules").json()
    assert listed["scheduled_overrides"] == 1


def test_the_overrides_list_marks_the_overrides_a_pause_keeps_from_being_applied(client: Client) -> None:
    service, other = make_service(), make_service("injury-risk")
    during, after = hour_floor(service), hour_floor(other)
    services.service_set_mode(
        service=service, mode="paused", actor=Actor.system("t"), reason="r", until=NOW + timedelta(minutes=30)
    )
    later = Override.objects.create(
        service=service, kind="floor", replicas=3, reason="r", starts_at=NOW + timedelta(hours=1),
        ends_at=NOW + timedelta(hours=2),
    )  # fmt: skip
    page = _login(client, "viewer", "viewer").get(reverse("dashboard:overrides")).content.decode()
    assert "not applied: paused" in _row(page, during)
    assert "not applied" not in _row(page, after) and "not applied" not in _row(page, later)


@override_settings(OVERRIDE_APPROVAL_REPLICAS=20)
def test_the_rule_form_says_a_rules_floors_need_no_second_approval_and_warns_above_the_threshold(
    client: Client,
) -> None:
    make_service(max_replicas=100, hard_max_replicas=100)
    admin = _login(client, "boss", "admin")
    assert "need no second approval" in admin.get(reverse("dashboard:rule-new")).content.decode()
    response = admin.post(
        reverse("dashboard:rule-new"),
        {"name": "tv", "services": ["win-probability"], "national_tv": "on", "floor_replicas": "25",
         "tail_minutes": "180", "reason": "tv"},
        follow=True,
    )  # fmt: skip
    assert "are approved by the rule" in response.content.decode()


def test_twelve_hour_long_floors_in_a_row_wait_for_approval_once_together_above_the_threshold(client: Client) -> None:
    """A reviewer's case: twelve adjacent floors of 20 for an hour each were each let through, where the one
    twelve-hour floor they make needs a second person."""
    service = make_service()
    _login(client, "operator", "operator")
    said = []
    for hour in range(12):
        start = datetime(2026, 1, 15, 13) + timedelta(hours=hour)  # New York wall-clock times
        form = pin_form(
            kind="floor",
            replicas="20",
            starts_at_local=f"{start:%Y-%m-%dT%H:%M}",
            ends_at_local=f"{start + timedelta(hours=1):%Y-%m-%dT%H:%M}",
            reason=f"slice {hour + 1}",
        )
        response = client.post(reverse("dashboard:override-new"), form, follow=True)
        said.append(" ".join(str(m) for m in response.context["messages"]))
    slices = list(Override.objects.filter(service=service).order_by("starts_at"))
    assert len(slices) == 12 and all(0 < (o.projected_cost_delta or 0) <= 100 for o in slices)
    let_through = [o for o in slices if o.status == Override.Status.APPROVED]
    assert let_through == slices[: len(let_through)] and sum(o.projected_cost_delta or 0 for o in let_through) <= 100
    assert all(o.status == Override.Status.PENDING_APPROVAL for o in slices[len(let_through) :])
    waiting = slices[len(let_through)]
    message = said[len(let_through)]
    assert message.startswith("Override for win-probability created; it waits for a second person's approval: $")
    assert "together with the requester's adjacent overrides on win-probability that no second person approved" in (
        message
    )
    assert message.endswith("above $100.00.") and all(f"#{o.pk} (+$" in message for o in let_through)
    # The approver is shown why, beside what they approve.
    _login(client, "approver", "approver")
    step = html.unescape(client.get(reverse("dashboard:override-approve", args=[waiting.pk])).content.decode())
    assert f'it waits for approval: <span data-testid="approve-why">{waiting.approval_needed_because}<' in step
