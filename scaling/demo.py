"""The demo fleet: simulated services, demo users and last season's schedule
replayed shifted by whole weeks so game nights fall around today.

The shifted calendar stands in until an operator imports a schedule, which
replaces its games still to come (scaling.schedule.services.games_upsert; the
played ones stay, as what the seeded history ran under); from then on a re-seed
leaves the calendar alone."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
from django.contrib.auth.models import Group, User
from django.db import transaction
from numpy.lib.stride_tricks import sliding_window_view

from scaling import selectors
from scaling.audit import Actor, account_changes_by
from scaling.backends.simulated import games_around, serving_model, traffic_params
from scaling.models import Game, GameDayRule, MetricSample, Service, SimulatedFleet
from scaling.rollups import rollups_refresh
from scaling.schedule.parse import GameRecord, ScheduleError, parse_csv
from scaling.schedule.rules import RuleSpec, rule_create
from scaling.schedule.services import DEMO_SOURCE_PREFIX, ImportSummary, games_upsert
from scaling.sim.live import demand_at
from scaling.sim.serving import ServingModel, oracle_array, oracle_replicas, response_stats

DEMO_USERS = {
    "admin": ("tipoff-admin", "admin"),
    "operator": ("tipoff-operator", "operator"),
    "approver": ("tipoff-approver", "approver"),
    "viewer": ("tipoff-viewer", "viewer"),
}

ROLES = ("viewer", "operator", "approver", "admin")

# name, display name, demand scale, price/replica-hour, SLO ms, service time ms, concurrency, min, max
DEMO_SERVICES = (
    # (demand scale multiplies the benchmark generator's default traffic: scaling/sim/gentrace.py)
    ("win-probability", "Win probability", 0.3, 1.20, 300.0, 40.0, 4, 2, 80),
    ("player-props", "Player props", 0.12, 2.40, 500.0, 60.0, 4, 2, 60),
    ("live-odds", "Live odds", 0.25, 0.90, 200.0, 25.0, 4, 2, 60),
    ("game-summaries", "Game summaries", 0.05, 3.10, 2000.0, 200.0, 8, 1, 30),
)


# The demo's fleets, at the start and through the seeded history, run what the serving model needs for 10 % more.
WARM_HEADROOM = 1.1


def shift_weeks_for(records: list[GameRecord], now: datetime) -> int:
    """Whole weeks to add so that `now` falls on a game night of the schedule.

    Prefers the same time of year (a multiple of 52 weeks), moved by a week or
    two when that day has no games (Thanksgiving, the All-Star break); when no
    year fits, the nearest shift inside the season.
    """
    tips = sorted(r.tip_utc for r in records if r.season_type != "Preseason") or sorted(r.tip_utc for r in records)
    start, end = tips[0] + timedelta(days=7), tips[-1] - timedelta(days=7)

    def games_around(k: int) -> int:
        lo, hi = now - timedelta(weeks=k, hours=3), now - timedelta(weeks=k) + timedelta(hours=8)
        return sum(1 for t in tips if lo <= t <= hi)

    for years in range(0, 10):
        base = 52 * years
        if not start <= now - timedelta(weeks=base) <= end:
            continue
        for k in (base, base + 1, base - 1, base + 2, base - 2):
            if games_around(k):
                return k
        return base
    if now < start:
        return -math.ceil((start - now) / timedelta(weeks=1))
    return math.ceil((now - end) / timedelta(weeks=1))


def current_shift_weeks() -> int | None:
    """The shift the demo calendar already uses, so a re-seed never moves it."""
    game = Game.objects.filter(source__startswith=DEMO_SOURCE_PREFIX).first()
    return None if game is None else game.shifted_weeks


def ensure_users() -> None:
    groups = {name: Group.objects.get_or_create(name=name)[0] for name in ROLES}
    for username, (password, role) in DEMO_USERS.items():
        user, created = User.objects.get_or_create(username=username)
        if created:
            user.set_password(password)
            user.is_staff = role == "admin"
            user.is_superuser = role == "admin"
            user.save()
        user.groups.add(groups[role])


def ensure_services(now: datetime) -> list[Service]:
    services: list[Service] = []
    seeded = 0
    for name, display, scale, price, slo_ms, svc_ms, conc, lo, hi in DEMO_SERVICES:
        service, created = Service.objects.get_or_create(
            name=name,
            defaults={
                "display_name": display,
                "price_per_replica_hour": price,
                "slo_latency_ms": slo_ms,
                "service_time_ms": svc_ms,
                "concurrency": conc,
                "min_replicas": lo,
                "max_replicas": hi,
                "hard_max_replicas": hi * 2,
                "provisioning_delay_s": 180,
            },
        )
        if created:
            # Start warm: as many ready replicas as the current demand needs, so the
            # demo opens in a steady state rather than in an outage.
            fleet = SimulatedFleet(service=service, demand_scale=scale, seed=len(services) + 1)
            demand = demand_at(now, games_around(now), params=traffic_params(fleet), seed=fleet.seed)
            replicas = min(max(oracle_replicas(demand * WARM_HEADROOM, serving_model(service), lo), lo), hi)
            fleet.ready_at = [(now - timedelta(minutes=10)).isoformat()] * replicas
            fleet.save()
            seeded += seed_history(service, fleet, now)
        services.append(service)
    if seeded:  # the week's charts read rollups from the first page on (the beat task computes only new ones)
        rollups_refresh(now=now, since=now - HISTORY)
    return services


HISTORY = timedelta(days=7)
HISTORY_STEP = timedelta(minutes=1)


def seed_history(service: Service, fleet: SimulatedFleet, now: datetime) -> int:
    """A week of the service's simulated history before `now`, one sample a minute.

    A service comes to Tipoff with its metric store's past (CloudWatch keeps weeks of it): the engine
    learns its game-night profiles from that, so the demo opens with learned profiles and calibrated
    headroom instead of the cold-start shape. The rates are the live simulator's own (`demand_at`),
    so the history runs on into what the fleet serves from now on; beside each rate, the replicas,
    latency and load of a fleet sized for it (`HistoryFleet`), so every chart of those hours has what
    the rate chart has. Returns the samples written."""
    # Each demo day's traffic is drawn from the games of that day (`scaling.sim.live`): the same span as the
    # live source's around today, and a week more before it.
    around = games_around(now)
    games = [*selectors.game_specs(now - HISTORY - timedelta(hours=36), now - timedelta(hours=36)), *around]
    params = traffic_params(fleet)
    end = now.astimezone(UTC).replace(second=0, microsecond=0)
    stamps = [end - HISTORY_STEP * i for i in range(HISTORY // HISTORY_STEP, 0, -1)]
    rates = [round(demand_at(t, games, params=params, seed=fleet.seed), 3) for t in stamps]
    history = HistoryFleet.sized_for(rates, service)
    samples = [
        MetricSample(service=service, ts=t, **history.sample(i, rps))
        for i, (t, rps) in enumerate(zip(stamps, rates, strict=True))
    ]
    MetricSample.objects.bulk_create(samples, batch_size=2000)
    return len(samples)


@dataclass(frozen=True)
class HistoryFleet:
    """The fleet behind the seeded history: provisioned at each minute for the most the serving model needs
    (with the warm start's headroom) until replicas started then are ready, within the service's
    bounds; a replica ready once started a provisioning delay before. What a pre-warming autoscaler runs,
    without inventing the decisions that would have run it."""

    provisioned: list[int]
    ready: list[int]
    model: ServingModel

    @classmethod
    def sized_for(cls, rates: list[float], service: Service) -> HistoryFleet:
        model = serving_model(service)
        needed = oracle_array(np.asarray(rates) * WARM_HEADROOM, model, service.min_replicas)
        delay = math.ceil(service.provisioning_delay_s / HISTORY_STEP.total_seconds())
        ahead = np.pad(needed, (0, delay), mode="edge")
        provisioned = np.clip(
            sliding_window_view(ahead, delay + 1).max(axis=1), service.min_replicas, service.max_replicas
        )
        behind = np.pad(provisioned, (delay, 0), mode="edge")
        ready = sliding_window_view(behind, delay + 1).min(axis=1)
        return cls([int(n) for n in provisioned], [int(n) for n in ready], model)

    def sample(self, i: int, rps: float) -> dict[str, float | int | None]:
        """The metrics of minute `i` at `rps`, as the simulated source reports them (`scaling.sim.fleet.observe`)."""
        ready = self.ready[i]
        counts = {"rps": rps, "provisioned": self.provisioned[i], "ready": ready}
        stats = response_stats(ready, rps, self.model)
        if stats is None:  # more than the bounds allow: no steady state, as the live source says it
            worst = self.model.slo_latency_ms * 2
            return {**counts, "p50_ms": worst, "p95_ms": worst, "p99_ms": worst, "error_rate": 1.0}
        mean_s, (p50, p95, p99) = stats
        utilization = rps / (ready * self.model.replica_capacity_rps)
        latency = {"p50_ms": p50, "p95_ms": p95, "p99_ms": p99}
        return {**counts, **latency, "utilization": utilization, "in_flight": rps * mean_s, "error_rate": 0.0}


NATIONAL_TV_RULE = "National TV games: pre-warm"


def ensure_national_tv_rule(services: list[Service], now: datetime) -> None:
    """A demo game-day rule, so the calendar shows scheduled floors around marquee games."""
    if GameDayRule.objects.filter(name=NATIONAL_TV_RULE).exists():
        return
    chosen = [s for s in services if s.name == "win-probability"]
    rule_create(
        spec=RuleSpec(
            name=NATIONAL_TV_RULE,
            match={"national_tv": True},
            services=chosen,
            reason="National TV games draw several times the traffic; be ready before tip-off",
            floor_replicas=12,
        ),
        actor=Actor.system("seed_demo"),
        now=now,
    )


@dataclass(frozen=True)
class DemoSeed:
    games: ImportSummary | None  # None when the calendar holds an imported schedule, left alone
    imported_games: int


def seed_demo(*, schedule_path: Path, now: datetime | None = None) -> DemoSeed:
    """Seed what is missing of the demo; its calendar only while no schedule has been imported.

    Raises ScheduleError naming the schedule file when it cannot be read or parsed.
    """
    now = now or datetime.now(UTC)
    imported = Game.objects.exclude(source__startswith=DEMO_SOURCE_PREFIX).count()
    records = [] if imported else _demo_schedule(schedule_path)
    existing = current_shift_weeks()
    with transaction.atomic():
        with account_changes_by(Actor.system("seed_demo"), "demo accounts", at=now):
            ensure_users()
        summary = None
        if not imported:
            summary = games_upsert(
                records=records,
                actor=Actor.system("seed_demo"),
                source=f"{DEMO_SOURCE_PREFIX}{schedule_path.name}",
                shift_weeks=shift_weeks_for(records, now) if existing is None else existing,
                now=now,  # every event of the seed at one instant: the audit log's times follow its order
            )
        services = ensure_services(now)  # after the games: the fleets start warm for tonight's demand
        ensure_national_tv_rule(services, now)
        return DemoSeed(games=summary, imported_games=imported)


def _demo_schedule(path: Path) -> list[GameRecord]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise ScheduleError(f"{path}: cannot read the demo schedule: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ScheduleError(f"{path}: not UTF-8 text") from None
    return parse_csv(text, source=str(path))
