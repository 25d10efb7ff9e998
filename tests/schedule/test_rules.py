"""Game-day rules schedule floors around matching games, as overrides linked to the game and the rule."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.auth.models import User
from django.test import Client

from scaling import override_selectors as reads
from scaling.audit import Actor, EventType
from scaling.models import AuditEvent, Game, GameDayRule, MetricSample, Override
from scaling.overrides import OverrideError, override_cancel, override_extend
from scaling.schedule.rules import RuleError, RuleSpec, rule_create, rule_delete, rule_matches, rule_update, rules_apply
from tests.factories import make_service, make_user

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 1, 12, 12, tzinfo=UTC)  # a Monday


def _games() -> dict[str, Game]:
    rows = [
        ("g1", NOW + timedelta(days=1, hours=12), "ESPN", "", "BOS (Celtics)", "NYK (Knicks)"),
        ("g2", NOW + timedelta(days=2, hours=12), "", "", "DEN (Nuggets)", "UTA (Jazz)"),
        ("g3", NOW + timedelta(days=3, hours=12), "NBA TV", "", "LAL (Lakers)", "SAC (Kings)"),
        ("g4", NOW + timedelta(days=4, hours=12), "Prime Video", "Emirates NBA Cup", "OKC (Thunder)", "SAS (Spurs)"),
        ("g5", NOW + timedelta(days=30), "ABC", "", "GSW (Warriors)", "LAL (Lakers)"),
    ]
    return {
        gid: Game.objects.create(
            game_id=gid,
            tip_utc=tip,
            national_tv=tv,
            label=label,
            away_team=away,
            home_team=home,
            season_type="Regular Season",
        )
        for gid, tip, tv, label, away, home in rows
    }


def _admin() -> Actor:
    user = User.objects.filter(username="boss").first() or make_user("boss", "admin")
    return Actor.for_user(user)


def test_matching_by_network_team_label_and_weekday() -> None:
    g = _games()
    assert rule_matches({"national_tv": True}, g["g1"]) and not rule_matches({"national_tv": True}, g["g3"])
    assert rule_matches({"networks": ["prime"]}, g["g4"]) and not rule_matches({"networks": ["prime"]}, g["g1"])
    assert rule_matches({"teams": ["LAL"]}, g["g3"]) and not rule_matches({"teams": ["LAL"]}, g["g2"])
    assert rule_matches({"labels": ["cup"]}, g["g4"])
    # g1 tips at 00:00 UTC Wednesday = 19:00 Tuesday in New York
    assert rule_matches({"weekdays": [1]}, g["g1"]) and not rule_matches({"weekdays": [2]}, g["g1"])


def test_a_national_tv_rule_schedules_a_floor_per_game_and_service_within_the_horizon() -> None:
    g = _games()
    a, b = make_service("a", provisioning_delay_s=300), make_service("b")
    rule = rule_create(
        spec=RuleSpec(
            name="national TV",
            match={"national_tv": True},
            services=[a, b],
            reason="TV draws traffic",
            floor_replicas=8,
        ),
        actor=_admin(),
        now=NOW,
    )
    rows = Override.objects.filter(rule=rule).order_by("game__tip_utc", "service__name")
    assert [(o.game.game_id if o.game else "", o.service.name) for o in rows] == [
        ("g1", "a"),
        ("g1", "b"),
        ("g4", "a"),
        ("g4", "b"),
    ]
    first = rows[0]
    assert first.kind == "floor" and first.replicas == 8 and first.status == Override.Status.APPROVED
    assert first.starts_at == g["g1"].tip_utc - timedelta(minutes=5 + 15)  # provisioning delay + 15 min
    assert first.ends_at == g["g1"].tip_utc + timedelta(hours=3)
    assert AuditEvent.objects.filter(event_type=EventType.RULE_CREATED).count() == 1
    assert AuditEvent.objects.filter(event_type=EventType.OVERRIDE_CREATED).count() == 4
    assert rules_apply(actor=_admin(), now=NOW) == 0  # idempotent


def test_an_operator_can_cancel_one_generated_override_without_disabling_the_rule() -> None:
    _games()
    a = make_service("a")
    rule = rule_create(
        spec=RuleSpec(name="tv", match={"national_tv": True}, services=[a], reason="TV", floor_replicas=4),
        actor=_admin(),
        now=NOW,
    )
    one = Override.objects.filter(rule=rule).first()
    assert one is not None
    override_cancel(override=one, actor=Actor.for_user(make_user()), reason="blowout expected", now=NOW)
    assert rules_apply(actor=_admin(), now=NOW) == 0
    assert Override.objects.filter(rule=rule, status=Override.Status.APPROVED).count() == 1


def test_an_operator_may_not_extend_a_rules_floor_past_approval_without_a_second_person() -> None:
    """The rule approved its floor for the game's window only: far beyond it, the floor is any override."""
    g = _games()
    a = make_service("a")
    rule = rule_create(
        spec=RuleSpec(name="tv", match={"national_tv": True}, services=[a], reason="TV", floor_replicas=8),
        actor=_admin(),
        now=NOW,
    )
    floor = Override.objects.get(rule=rule, game=g["g1"])
    assert floor.status == Override.Status.APPROVED and (floor.projected_cost_delta or 0) < 100
    operator = Actor.for_user(make_user())
    far = floor.starts_at + timedelta(hours=70)
    with pytest.raises(OverrideError, match=r"above \$100.00\) would need a second person's approval") as refused:
        override_extend(override=floor, ends_at=far, actor=operator, reason="all weekend", now=NOW)
    assert refused.value.field == "ends_at"
    floor.refresh_from_db()
    assert floor.ends_at == g["g1"].tip_utc + timedelta(hours=3) and floor.approved_by is None
    # A little longer, still under the threshold, needs nobody else, as for any override.
    override_extend(override=floor, ends_at=floor.ends_at + timedelta(minutes=30), actor=operator, reason="OT", now=NOW)
    floor.refresh_from_db()
    assert floor.ends_at == g["g1"].tip_utc + timedelta(hours=3, minutes=30)


def test_a_forecast_multiple_floor_uses_the_recent_forecast() -> None:
    _games()
    a = make_service("a", service_time_ms=100.0, concurrency=1, min_replicas=1)  # 10 rps per replica
    MetricSample.objects.create(service=a, ts=NOW - timedelta(minutes=5), rps=35.0, provisioned=5)
    rule = rule_create(
        spec=RuleSpec(
            name="x2", match={"networks": ["ESPN"]}, services=[a], reason="double", floor_forecast_multiple=2.0
        ),
        actor=_admin(),
        now=NOW,
    )
    o = Override.objects.get(rule=rule)
    forecast = reads.forecast_replicas(a, now=NOW, start=o.starts_at, end=o.ends_at)
    assert forecast > 1 and o.replicas == min(2 * forecast, a.max_replicas)  # held within the bounds


def test_a_rule_floor_holds_within_the_service_bounds_as_the_engine_does() -> None:
    # A floor above the maximum had been scheduled and priced at a count the engine never runs.
    _games()
    a = make_service("a", service_time_ms=100.0, concurrency=1, min_replicas=1, max_replicas=4)
    MetricSample.objects.create(service=a, ts=NOW - timedelta(minutes=5), rps=35.0, provisioned=5)
    rule = rule_create(
        spec=RuleSpec(
            name="x3", match={"networks": ["ESPN"]}, services=[a], reason="triple", floor_forecast_multiple=3.0
        ),
        actor=_admin(),
        now=NOW,
    )
    assert Override.objects.get(rule=rule).replicas == 4
    with pytest.raises(RuleError, match=r"a: floor must be between 1 and the service's maximum 4") as refused:
        rule_create(
            spec=RuleSpec(name="abs", match={"networks": ["ESPN"]}, services=[a], reason="r", floor_replicas=5),
            actor=_admin(),
            now=NOW,
        )
    assert refused.value.field == "floor_replicas"


def test_changing_a_rule_replaces_its_future_overrides_and_deleting_cancels_them() -> None:
    _games()
    a = make_service("a")
    actor = _admin()
    rule = rule_create(
        spec=RuleSpec(name="tv", match={"national_tv": True}, services=[a], reason="TV", floor_replicas=4),
        actor=actor,
        now=NOW,
    )
    changed = rule_update(
        rule=rule,
        spec=RuleSpec(name="tv", match={"national_tv": True}, services=[a], reason="TV", floor_replicas=6),
        actor=actor,
        now=NOW,
    )
    assert changed
    live = Override.objects.filter(rule=rule, status=Override.Status.APPROVED)
    assert [o.replicas for o in live] == [6, 6]
    assert not rule_update(
        rule=rule,
        spec=RuleSpec(name="tv", match={"national_tv": True}, services=[a], reason="TV", floor_replicas=6),
        actor=actor,
        now=NOW,
    )
    rule_delete(rule=rule, actor=actor, reason="season over", now=NOW)
    assert not Override.objects.filter(status=Override.Status.APPROVED).exists()
    assert AuditEvent.objects.filter(event_type=EventType.RULE_DELETED).count() == 1


def test_a_rule_needs_a_criterion_and_one_kind_of_floor() -> None:
    a = make_service("a")
    with pytest.raises(RuleError, match="at least one criterion"):
        rule_create(spec=RuleSpec(name="all", match={}, services=[a], reason="r", floor_replicas=3), actor=_admin())
    with pytest.raises(RuleError, match="either an absolute floor"):
        rule_create(
            spec=RuleSpec(
                name="both",
                match={"national_tv": True},
                services=[a],
                reason="r",
                floor_replicas=3,
                floor_forecast_multiple=2.0,
            ),
            actor=_admin(),
        )


def test_a_game_that_loses_its_national_broadcast_loses_its_rule_floor_on_reimport() -> None:
    from scaling.schedule.parse import GameRecord
    from scaling.schedule.services import games_upsert

    g = _games()
    a = make_service("a")
    rule = rule_create(
        spec=RuleSpec(name="tv", match={"national_tv": True}, services=[a], reason="TV", floor_replicas=4),
        actor=_admin(),
        now=NOW,
    )
    g1 = g["g1"]
    record = GameRecord(
        game_id="g1",
        tip_utc=g1.tip_utc,
        away_team=g1.away_team,
        home_team=g1.home_team,
        season_type=g1.season_type,
        national_tv="",
    )
    summary = games_upsert(records=[record], actor=Actor.system("t"), source="feed", now=NOW)
    assert summary.overrides_cancelled == 1
    o = Override.objects.get(rule=rule, game=g1)
    assert o.status == Override.Status.CANCELLED and "no longer matches" in o.cancel_reason


def test_an_import_that_changes_a_games_teams_rewrites_the_matchup_in_its_rule_floors_reason_only() -> None:
    from scaling.overrides import override_create
    from scaling.schedule.parse import GameRecord
    from scaling.schedule.services import games_upsert

    g1 = _games()["g1"]
    a = make_service("a")
    rule = rule_create(
        spec=RuleSpec(name="tv", match={"national_tv": True}, services=[a], reason="TV", floor_replicas=4),
        actor=_admin(),
        now=NOW,
    )
    [typed] = override_create(
        services=[make_service("b")],
        kind="floor",
        replicas=3,
        starts_at=g1.tip_utc - timedelta(hours=1),
        ends_at=g1.tip_utc + timedelta(hours=2),
        reason="rivalry night (BOS (Celtics) @ NYK (Knicks))",
        actor=Actor.for_user(make_user()),
        game=g1,
        now=NOW,
    )
    record = GameRecord(
        game_id="g1",
        tip_utc=g1.tip_utc,
        away_team="MIA (Heat)",
        home_team=g1.home_team,
        season_type=g1.season_type,
        national_tv="ESPN",
    )
    games_upsert(records=[record], actor=Actor.system("t"), source="feed", now=NOW)
    floor = Override.objects.get(rule=rule, game=g1)
    assert floor.status == Override.Status.APPROVED and floor.reason == "tv: TV (MIA (Heat) @ NYK (Knicks))"
    event = AuditEvent.objects.get(event_type=EventType.OVERRIDE_RETITLED)
    assert event.before == {"reason": "tv: TV (BOS (Celtics) @ NYK (Knicks))"}
    assert event.after == {"reason": floor.reason}
    typed.refresh_from_db()
    assert typed.reason == "rivalry night (BOS (Celtics) @ NYK (Knicks))"  # typed by a person: kept as typed


@pytest.mark.parametrize(
    ("match", "field"),
    [
        ({"networks": "ESPN"}, "match.networks"),  # read letter by letter, it matched almost any national game
        ({"networks": 5}, "match.networks"),
        ({"teams": ["LAL", 7]}, "match.teams"),
        ({"labels": {"cup": True}}, "match.labels"),
        ({"season_types": "Playoffs"}, "match.season_types"),
        ({"national_tv": "false"}, "match.national_tv"),  # a non-empty string was true
        ({"national_tv": 1}, "match.national_tv"),
        ({"weekdays": ["3"]}, "match.weekdays"),
        ({"weekdays": [True]}, "match.weekdays"),
        ({"weekdays": 3}, "match.weekdays"),
        ({"weekdays": [7]}, "match.weekdays"),
        ({"network": ["ESPN"]}, "match"),
    ],
)
def test_a_match_value_of_the_wrong_type_is_refused_naming_its_key(match: dict[str, object], field: str) -> None:
    spec = RuleSpec(name="r", match=match, services=[make_service("a")], reason="r", floor_replicas=3)
    with pytest.raises(RuleError) as refused:
        rule_create(spec=spec, actor=_admin())
    assert refused.value.field == field and field.removeprefix("match.") in str(refused.value)
    assert not GameDayRule.objects.exists()


def test_a_match_keeps_its_values_and_drops_blanks_and_nulls() -> None:
    match = {"national_tv": False, "networks": [" ESPN ", ""], "teams": None, "weekdays": [5, 0, 5]}
    spec = RuleSpec(name="r", match=match, services=[make_service("a")], reason="r", floor_replicas=3)
    assert rule_create(spec=spec, actor=_admin()).match == {"networks": ["ESPN"], "weekdays": [0, 5]}


@pytest.mark.parametrize("multiple", [0.05, 20.5])
def test_a_forecast_multiple_outside_what_the_form_offers_is_refused(multiple: float) -> None:
    spec = RuleSpec(
        name="r",
        match={"national_tv": True},
        services=[make_service("a")],
        reason="r",
        floor_forecast_multiple=multiple,
    )
    with pytest.raises(RuleError, match=r"0\.1 to 20") as refused:
        rule_create(spec=spec, actor=_admin())
    assert refused.value.field == "floor_forecast_multiple"


@pytest.mark.parametrize("teams", [["LAKERS", "ZZZ"], ["lal", "ZZZ"]])
def test_an_unknown_team_code_is_refused_naming_it_and_the_valid_codes(teams: list[str]) -> None:
    spec = RuleSpec(name="r", match={"teams": teams}, services=[make_service("a")], reason="r", floor_replicas=3)
    with pytest.raises(RuleError) as refused:
        rule_create(spec=spec, actor=_admin())
    message = str(refused.value)
    assert refused.value.field == "match.teams"
    assert "ZZZ" in message and "valid codes: ATL, BKN, BOS" in message and "WAS" in message
    assert ("LAKERS" in message) == ("LAKERS" in teams) and "LAL," in message
    assert not GameDayRule.objects.exists()


def test_a_team_the_calendar_knows_beyond_the_league_is_allowed_and_codes_are_upper_cased() -> None:
    Game.objects.create(
        game_id="pre1", tip_utc=NOW + timedelta(days=1), away_team="MEL (United)", home_team="NOP (Pelicans)"
    )
    spec = RuleSpec(
        name="r", match={"teams": ["mel", "lal"]}, services=[make_service("a")], reason="r", floor_replicas=3
    )
    assert rule_create(spec=spec, actor=_admin(), now=NOW).match == {"teams": ["MEL", "LAL"]}


def test_a_network_no_game_is_on_is_allowed_and_named_as_matching_none() -> None:
    from scaling.schedule.rules import networks_matching_no_game

    _games()
    assert networks_matching_no_game({"networks": ["HBO Max Ultra", "prime", "espn"]}) == ["HBO Max Ultra"]
    spec = RuleSpec(
        name="r", match={"networks": ["HBO Max Ultra"]}, services=[make_service("a")], reason="r", floor_replicas=3
    )
    assert rule_create(spec=spec, actor=_admin(), now=NOW).match == {"networks": ["HBO Max Ultra"]}


def test_through_the_api_an_unknown_team_is_a_422_and_an_unmatched_network_a_warning(client: Client) -> None:
    _games()
    make_service("win-probability")
    client.force_login(make_user("boss", "admin"))
    rule = {"name": "r", "services": ["win-probability"], "reason": "r", "floor_replicas": 3}
    refused = client.post("/api/rules", rule | {"match": {"teams": ["LAKERS"]}}, content_type="application/json")
    assert refused.status_code == 422 and refused.json()["field"] == "match.teams"
    assert "LAKERS" in refused.json()["detail"] and "LAL" in refused.json()["detail"]
    created = client.post(
        "/api/rules", rule | {"match": {"networks": ["HBO Max Ultra"]}}, content_type="application/json"
    )
    assert created.status_code == 201 and created.json()["scheduled_overrides"] == 0
    assert created.json()["warnings"] == [
        "Network 'HBO Max Ultra' matches no game on the calendar: the rule schedules nothing for it until the "
        "schedule lists a game on it."
    ]
