"""seed_demo: idempotent, honest about its shifted calendar, and warm from the start."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.db import transaction
from django.db.models import F, Max, Q, QuerySet
from django.test import override_settings
from pytest_django import DjangoDbBlocker

from dashboard.charts import service_figures
from scaling import selectors
from scaling.audit import Actor
from scaling.backends.simulated import games_around, traffic_params
from scaling.demo import DEMO_SERVICES, NATIONAL_TV_RULE, DemoSeed, seed_demo, shift_weeks_for
from scaling.models import (
    AuditEvent,
    Game,
    GameDayRule,
    MetricRollup,
    MetricSample,
    Override,
    Service,
    SimulatedFleet,
)
from scaling.override_selectors import LIVE_STATUSES
from scaling.schedule.parse import parse_csv
from scaling.schedule.services import LEAGUE_TIME_ZONE as EASTERN
from scaling.schedule.services import games_upsert, schedule_import
from scaling.selectors import traffic_forecaster
from scaling.sim.live import demand_at

SCHEDULE = Path(settings.DEMO_SCHEDULE_PATH)
NOW = datetime(2026, 11, 27, 1, 30, tzinfo=UTC)  # Thanksgiving night: no games on the same date last season


@pytest.fixture(scope="module")
def records() -> list:
    return parse_csv(SCHEDULE.read_text(), source=SCHEDULE.name)


def test_it_shifts_by_whole_weeks_to_a_game_night(records: list) -> None:
    weeks = shift_weeks_for(records, NOW)
    assert weeks in {51, 53}  # 52 weeks lands on Thanksgiving 2025, which had no games
    shifted = [r.tip_utc.timestamp() + weeks * 7 * 86400 for r in records]
    assert any(abs(t - NOW.timestamp()) < 4 * 3600 for t in shifted)


@pytest.mark.django_db
class TestTheSeededDemo:
    """One seed of the demo week for all of these (it takes seconds), each test rolled back to it after."""

    @pytest.fixture(scope="class")
    @classmethod
    def seeded(cls, django_db_setup: None, django_db_blocker: DjangoDbBlocker) -> Iterator[DemoSeed]:
        with django_db_blocker.unblock(), transaction.atomic():
            yield seed_demo(schedule_path=SCHEDULE, now=NOW)
            transaction.set_rollback(True)

    def test_seeding_twice_changes_nothing_the_second_time(self, seeded: DemoSeed) -> None:
        first = seeded.games
        counts = (
            Service.objects.count(),
            Game.objects.count(),
            Override.objects.count(),
            AuditEvent.objects.count(),
            MetricSample.objects.count(),
        )
        second = seed_demo(schedule_path=SCHEDULE, now=NOW).games
        assert first is not None and second is not None
        assert first.created == 1278 and second.created == second.updated == 0
        assert counts == (
            len(DEMO_SERVICES),
            1278,
            Override.objects.count(),
            AuditEvent.objects.count(),
            MetricSample.objects.count(),
        )
        assert set(Game.objects.values_list("shifted_weeks", flat=True)) == {
            shift_weeks_for(parse_csv(SCHEDULE.read_text()), NOW)
        }

    def test_the_seed_audits_everything_it_does_at_its_own_instant(self, seeded: DemoSeed) -> None:
        events = list(AuditEvent.objects.order_by("pk").values_list("event_type", "created_at"))
        assert {"schedule.imported", "rule.created", "override.created"} <= {kind for kind, _ in events}
        # The demo accounts, then the import, audited first; at the seed's instant like the rest, so the log's times
        # never run backwards.
        kinds = [kind for kind, _ in events]
        accounts = sum(kind.startswith("user.") for kind in kinds)
        assert "user.created" in kinds and all(kind.startswith("user.") for kind in kinds[:accounts])
        assert kinds[accounts] == "schedule.imported" and {at for _, at in events} == {NOW}

    def test_the_demo_starts_warm_with_a_national_tv_rule(self, seeded: DemoSeed) -> None:
        for fleet in SimulatedFleet.objects.select_related("service"):
            assert fleet.service.min_replicas <= len(fleet.ready_at) <= fleet.service.max_replicas
        rule = GameDayRule.objects.get(name=NATIONAL_TV_RULE)
        assert Override.objects.filter(rule=rule, game__national_tv__gt="").exists()

    def test_each_demo_service_brings_a_week_of_its_rates_and_starts_learned(self, seeded: DemoSeed) -> None:
        for fleet in SimulatedFleet.objects.select_related("service"):
            samples = MetricSample.objects.filter(service=fleet.service).order_by("ts")
            first, last = samples.first(), samples.last()
            assert first is not None and last is not None
            assert samples.count() == 7 * 24 * 60
            # Rolled up at once, every 5 minutes of the week, so the 7 d charts read rollups from the first page.
            assert MetricRollup.objects.filter(service=fleet.service).count() == 7 * 24 * 12
            assert first.ts == NOW - timedelta(days=7) and last.ts == NOW - timedelta(minutes=1)
            # The live simulator's own rates, so the history runs on into tonight's traffic.
            expected = demand_at(last.ts, games_around(NOW), params=traffic_params(fleet), seed=fleet.seed)
            assert last.rps == pytest.approx(expected, abs=1e-3)
            assert samples.filter(rps__gt=0).count() == samples.count()
            forecaster = traffic_forecaster(fleet.service, NOW)
            assert forecaster is not None and forecaster.learned and forecaster.history_games > 0

    def test_every_chart_draws_the_seeded_hours_the_rate_chart_draws(self, seeded: DemoSeed) -> None:
        for service in Service.objects.all():
            since = NOW - timedelta(hours=24)
            series = selectors.service_timeseries(service, since=since, until=NOW)
            figures = service_figures(service, series, since=since, now=NOW)
            drawn = {
                (chart, trace["name"]): trace["y"]
                for chart, figure in figures.items()
                for trace in figure["data"]
                if trace["name"] not in {"desired", "decisions"}  # the engine's own, from its first tick
            }
            assert set(drawn) == {
                ("replicas", "provisioned"),
                ("replicas", "ready"),
                ("latency", "p50"),
                ("latency", "p95"),
                ("latency", "p99"),
                ("rate", "requests/s"),
                ("cost", "$/hour"),
            }
            for name, values in drawn.items():
                # Every 5-minute bucket of the day (the one `since` falls in too, when it is not on one).
                assert len(values) == len(series["ts"]) >= 288 and None not in values, (service.name, name)
            # A fleet sized for its rate: within bounds, ready never above provisioned, and the guard satisfied.
            samples = MetricSample.objects.filter(service=service)
            assert not samples.filter(ready__gt=F("provisioned")).exists()
            assert not samples.filter(Q(provisioned__lt=service.min_replicas) | Q(provisioned__gt=service.max_replicas))
            assert not samples.filter(Q(p95_ms__gt=service.slo_latency_ms) | Q(p99_ms__gt=service.slo_latency_ms))
            assert samples.aggregate(Max("provisioned"))["provisioned__max"] > service.min_replicas  # it scales

    def test_an_import_replaces_the_demo_calendar_to_come_and_a_reseed_leaves_it_alone(self, seeded: DemoSeed) -> None:
        planned = _live_rule_overrides().count()
        assert planned > 0
        played = dict(Game.objects.filter(tip_utc__lte=NOW).values_list("game_id", "tip_utc"))
        under_way = _live_rule_overrides().filter(game__tip_utc__lte=NOW).count()
        service = Service.objects.get(name="win-probability")
        learned = traffic_forecaster(service, NOW)
        # What the README suggests: the real schedule imported over the demo's shifted copy of it.
        summary = schedule_import(text=SCHEDULE.read_text(), source=SCHEDULE.name, actor=Actor.system("test"), now=NOW)
        assert (summary.demo_games_removed, summary.created, summary.updated) == (1278 - len(played), 1278, 0)
        assert summary.overrides_cancelled == planned - under_way
        assert _live_rule_overrides().count() == under_way
        # The played games stay, as the record of what the week of history ran under (the import took their ids),
        # and the demand model learns from them the game nights it learned before the import.
        demo = Game.objects.filter(source__startswith="demo:")
        assert dict(demo.values_list("game_id", "tip_utc")) == {f"demo:{k}": tip for k, tip in played.items()}
        assert Game.objects.exclude(pk__in=demo).count() == 1278
        relearned = traffic_forecaster(service, NOW)
        assert learned is not None and relearned is not None and relearned is not learned
        assert relearned.history_games == learned.history_games > 0
        calendar = set(Game.objects.values_list("game_id", "tip_utc"))
        overrides = set(Override.objects.values_list("pk", "status", "starts_at"))
        again = seed_demo(schedule_path=SCHEDULE, now=NOW)
        assert again.games is None and again.imported_games == 1278
        assert set(Game.objects.values_list("game_id", "tip_utc")) == calendar
        assert set(Override.objects.values_list("pk", "status", "starts_at")) == overrides


def _live_rule_overrides() -> QuerySet[Override]:
    return Override.objects.filter(rule__name=NATIONAL_TV_RULE, status__in=LIVE_STATUSES, ends_at__gt=NOW)


@pytest.mark.django_db
def test_seeding_after_an_import_leaves_the_operators_calendar_alone() -> None:
    schedule_import(text=SCHEDULE.read_text(), source=SCHEDULE.name, actor=Actor.system("test"), now=NOW)
    seeded = seed_demo(schedule_path=SCHEDULE, now=NOW)
    assert seeded.games is None and seeded.imported_games == 1278
    assert set(Game.objects.values_list("source", "shifted_weeks")) == {(SCHEDULE.name, 0)}
    assert Service.objects.count() == len(DEMO_SERVICES)  # the rest of the demo is still seeded


@pytest.mark.django_db
def test_a_shifted_game_keeps_its_eastern_tip_off_time_across_a_daylight_saving_change(records: list) -> None:
    # 52 weeks on, the 55 games of 8-13 March 2026 (daylight time) fall before 2027's change (standard time).
    games_upsert(records=records, actor=Actor.system("test"), source="demo:schedule.csv", shift_weeks=52, now=NOW)
    shifted = dict(Game.objects.values_list("game_id", "tip_utc"))
    crossing = 0
    for record in records:
        before, after = record.tip_utc.astimezone(EASTERN), shifted[record.game_id].astimezone(EASTERN)
        assert after.replace(tzinfo=None) - before.replace(tzinfo=None) == timedelta(weeks=52), record.game_id
        crossing += after.utcoffset() != before.utcoffset()
    assert crossing == 55


@pytest.mark.django_db
@pytest.mark.parametrize("content", [None, b"\xff\xfegame_id", b"game_id,tip_utc\n"])
def test_a_demo_schedule_that_cannot_be_used_is_named_and_seeds_nothing(tmp_path: Path, content: bytes | None) -> None:
    path = tmp_path / "demo.csv"
    if content is not None:
        path.write_bytes(content)
    with override_settings(DEMO_SCHEDULE_PATH=path), pytest.raises(CommandError, match=rf"nothing seeded: {path}"):
        call_command("seed_demo")
    assert not Service.objects.exists() and not Game.objects.exists()
