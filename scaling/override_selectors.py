"""Reads for overrides, the game calendar and their previews."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Q, QuerySet

from scaling import selectors
from scaling.models import Game, GameDayRule, MetricSample, Override, Service
from scaling.policy import PolicyParams
from scaling.policy.forecast import Forecaster

LIVE_STATUSES = (Override.Status.PENDING_APPROVAL, Override.Status.APPROVED)
# A game draws traffic from a little before tip-off until about this long after.
GAME_LENGTH = timedelta(hours=2, minutes=30)
PREVIEW_TARGET_UTILIZATION = 0.7
FORECAST_STEP = timedelta(minutes=5)
# A window is priced at this many points at most: every 5 minutes for up to three days (the longest
# floor or ceiling a non-admin may ask for), evenly spread beyond, so an admin's months-long window
# prices as fast as a three-day one instead of taking seconds per service on every preview keystroke.
MAX_WINDOW_POINTS = 3 * 24 * 12
RECENT = timedelta(minutes=15)
# Games that tipped off this long before a point still draw traffic at it.
GAME_LOOKBACK = timedelta(hours=4)


def capacity_per_replica_rps(service: Service) -> float:
    return service.concurrency * 1000.0 / service.service_time_ms


def _sized(service: Service, rps: float) -> int:
    """Replicas for a request rate at the policy's utilization target (0.7 when the policy sizes by the
    serving model instead): a quick, bounded estimate for previews, never a queueing-model search."""
    params = PolicyParams.from_dict(service.policy)
    target = params.target_utilization if params.target_utilization > 0 else PREVIEW_TARGET_UTILIZATION
    needed = math.ceil(rps / (target * capacity_per_replica_rps(service)) - 1e-9)
    return min(max(needed, service.min_replicas), service.max_replicas)


def _window_points(start: datetime, end: datetime) -> list[datetime]:
    steps = min(max(1, math.ceil((end - start) / FORECAST_STEP)), MAX_WINDOW_POINTS)
    step = (end - start) / steps
    return [start + step * (i + 0.5) for i in range(steps)]


def forecast_rps_series(service: Service, *, now: datetime, points: list[datetime]) -> list[float] | None:
    """Demand the engine's forecaster expects at `points`, from the game calendar.

    With a learned forecaster (enough history) its rates are used as they are;
    otherwise the default shape is scaled by what the service sees now. None
    when there is neither history nor a recent sample to scale by.
    """
    forecaster = selectors.traffic_forecaster(service, now)
    scale = 1.0
    if forecaster is None or not forecaster.learned:
        recent = list(
            MetricSample.objects.filter(service=service, ts__gte=now - RECENT, ts__lte=now, rps__isnull=False)
            .order_by("-ts")
            .values_list("ts", "rps")[:20]
        )
        if not recent:
            return None
        forecaster = Forecaster.default()
        games_now = selectors.game_specs(now - GAME_LOOKBACK, now + timedelta(hours=1))
        expected = sum(forecaster.predict(ts, games_now) for ts, _ in recent) / len(recent)
        observed = sum(r or 0.0 for _, r in recent) / len(recent)
        scale = observed / expected if expected > 0 else 1.0
    games = selectors.game_specs(min(points) - GAME_LOOKBACK, max(points) + timedelta(hours=1))
    prepared = forecaster.prepare(games)
    return [max(forecaster.predict_epoch(t.timestamp(), prepared) * scale, 0.0) for t in points]


def forecast_replicas_series(service: Service, *, now: datetime, points: list[datetime]) -> list[int]:
    """Replicas the policy forecasts at `points`; without a forecast, the last provisioned count."""
    rates = forecast_rps_series(service, now=now, points=points)
    if rates is None:
        held = min(max(current_provisioned(service), service.min_replicas), service.max_replicas)
        return [held for _ in points]
    return [_sized(service, r) for r in rates]


def forecast_replicas(
    service: Service, *, now: datetime, start: datetime | None = None, end: datetime | None = None
) -> int:
    """The most replicas the policy forecasts over [start, end) (default: the coming hour)."""
    start = start or now
    end = end if end is not None and end > start else start + timedelta(hours=1)
    return max(forecast_replicas_series(service, now=now, points=_window_points(start, end)))


def current_provisioned(service: Service) -> int:
    sample = MetricSample.objects.filter(service=service).order_by("-ts").first()
    if sample is None or sample.provisioned is None:
        return service.min_replicas
    return sample.provisioned


@dataclass(frozen=True)
class Preview:
    service: Service
    kind: str
    replicas: int | None
    starts_at: datetime
    ends_at: datetime
    forecast: int  # peak replicas without this override (the policy's forecast, or a pin that overrules it)
    effective: int  # peak replicas with it, as the engine would hold them
    hours: float
    cost_delta: float  # dollars over the whole window; negative = saved
    # Pins (or, over a floor or ceiling, freezes) in the window the engine follows instead (approved) or will
    # once approved (pending).
    overruled_by: tuple[Override, ...] = ()
    # Replicas above (negative: below) what would run without the override, averaged over the window.
    average_extra_replicas: float = 0.0

    @property
    def saves(self) -> bool:
        return self.cost_delta < 0

    @property
    def cost_delta_abs(self) -> float:
        return abs(self.cost_delta)

    @property
    def cost_per_hour(self) -> float:
        """The projected extra (or saved) dollars per hour of the window, on average."""
        return self.cost_delta / self.hours if self.hours > 0 else 0.0


def effective_replicas(kind: str, replicas: int | None, forecast: int, current: int) -> int:
    n = replicas or 0
    if kind == Override.Kind.PIN:
        return n
    if kind == Override.Kind.FLOOR:
        return max(forecast, n)
    if kind == Override.Kind.CEILING:
        return min(forecast, n)
    if kind == Override.Kind.FREEZE:
        return current
    return max(forecast, current)  # freeze scale-in


def _held(service: Service, kind: str, replicas: int) -> int:
    """What the engine holds for an override's count: a pin up to the hard limit, the rest within the bounds."""
    if kind == Override.Kind.PIN:
        return min(max(replicas, 0), service.hard_max_replicas)
    return min(max(replicas, service.min_replicas), service.max_replicas)


# The kinds whose overrides the engine follows instead of one of the given kind (engine._apply_overrides:
# pin > freeze > floors/ceilings > freeze_scale_in).
OVERRULED_BY = {
    Override.Kind.FREEZE: (Override.Kind.PIN,),
    Override.Kind.FLOOR: (Override.Kind.PIN, Override.Kind.FREEZE),
    Override.Kind.CEILING: (Override.Kind.PIN, Override.Kind.FREEZE),
    Override.Kind.FREEZE_SCALE_IN: (Override.Kind.PIN, Override.Kind.FREEZE),
}


def _overruling_at(overrides: list[Override], t: datetime) -> Override | None:
    """The override the engine follows at `t` instead: an active pin (the latest to start), else a freeze."""
    active = [o for o in overrides if o.starts_at <= t < o.ends_at]
    pins = [o for o in active if o.kind == Override.Kind.PIN and o.replicas is not None]
    if pins:
        return max(pins, key=lambda o: (o.starts_at, str(o.pk)))
    return min(active, key=lambda o: str(o.pk)) if active else None


def override_preview(
    service: Service, *, kind: str, replicas: int | None, starts_at: datetime, ends_at: datetime, now: datetime
) -> Preview:
    """The replicas the engine would hold over the window without and with the override, and the cost
    difference integrated over the window (5-minute steps, coarser past three days).

    The engine's precedence and bounds apply: where an approved pin covers a point, a floor, ceiling or
    freeze changes nothing there (the pin wins), nor does a floor or ceiling under an approved freeze; a
    floor or ceiling holds within the service's bounds. Pending overrides that would overrule are listed in
    `overruled_by` but not priced: the engine ignores them until approved.
    """
    hours = max((ends_at - starts_at).total_seconds(), 0.0) / 3600.0
    if hours <= 0:
        return Preview(service, kind, replicas, starts_at, ends_at, 0, 0, 0.0, 0.0)
    points = _window_points(starts_at, ends_at)
    forecast = forecast_replicas_series(service, now=now, points=points)
    current = current_provisioned(service)
    higher = OVERRULED_BY.get(Override.Kind(kind), ()) if kind in Override.Kind.values else ()
    above = list(overlapping(service, starts_at, ends_at).filter(kind__in=higher)) if higher else []
    without: list[int] = []
    effective: list[int] = []
    # The engine follows approved overrides only: a pending one is warned of but not priced.
    approved = [o for o in above if o.status == Override.Status.APPROVED]
    overruled = {o.pk: o for o in above if o.status == Override.Status.PENDING_APPROVAL}
    for t, f in zip(points, forecast, strict=True):
        winner = _overruling_at(approved, t)
        if winner is not None:
            overruled[winner.pk] = winner
            held = winner.replicas if winner.kind == Override.Kind.PIN and winner.replicas is not None else current
            without.append(_held(service, winner.kind, held))
            effective.append(without[-1])
        else:
            without.append(f)
            effective.append(_held(service, kind, effective_replicas(kind, replicas, f, current)))
    extra = sum(e - f for e, f in zip(effective, without, strict=True))
    delta = extra * (hours / len(points)) * service.price_per_replica_hour
    return Preview(
        service,
        kind,
        replicas,
        starts_at,
        ends_at,
        max(without),
        max(effective),
        hours,
        round(delta, 2),
        tuple(sorted(overruled.values(), key=lambda o: o.starts_at)),
        extra / len(points),
    )


def overlapping(service: Service, starts_at: datetime, ends_at: datetime) -> QuerySet[Override]:
    """Pending or approved overrides of the service whose window overlaps [starts_at, ends_at)."""
    return Override.objects.filter(
        service=service, status__in=LIVE_STATUSES, starts_at__lt=ends_at, ends_at__gt=starts_at
    )


def overrides_list(
    *, now: datetime, service: Service | None = None, status: str | None = None, include_past: bool = False
) -> QuerySet[Override]:
    rows = Override.objects.select_related("service", "created_by", "approved_by", "game", "rule")
    if service is not None:
        rows = rows.filter(service=service)
    if status:
        rows = rows.filter(status=status)
    if not include_past:
        # Active and upcoming: a cancelled or rejected override will never take effect, whatever its window;
        # it is history (unless asked for by status).
        rows = rows.filter(ends_at__gt=now)
        if not status:
            rows = rows.filter(status__in=LIVE_STATUSES)
    return rows.order_by("starts_at", "service__name")


def pending_approvals(now: datetime) -> QuerySet[Override]:
    return (
        Override.objects.select_related("service", "created_by", "game")
        .filter(status=Override.Status.PENDING_APPROVAL, ends_at__gt=now)
        .order_by("starts_at")
    )


def override_windows(service: Service, start: datetime, end: datetime) -> list[Override]:
    """Pending and approved overrides of a service overlapping [start, end), for chart shading."""
    return list(overlapping(service, start, end).order_by("starts_at"))


@dataclass(frozen=True)
class CalendarGame:
    game: Game
    overrides: list[Override]
    overlaps: int  # other games whose traffic window overlaps this one's

    @property
    def marquee(self) -> bool:
        return self.game.is_national or bool(self.game.label)

    @property
    def projected_cost(self) -> float:
        """What the game's pending and approved overrides are expected to cost; cancelled ones are listed only."""
        return live_cost(self.overrides)


def calendar_games(*, start: datetime, end: datetime) -> list[CalendarGame]:
    games = list(Game.objects.filter(tip_utc__gte=start, tip_utc__lt=end).order_by("tip_utc"))
    overrides: dict[int, list[Override]] = {}
    rows = (
        Override.objects.select_related("service", "rule")
        .filter(game__in=games)
        .filter(Q(status__in=LIVE_STATUSES) | Q(status=Override.Status.CANCELLED))
        .order_by("starts_at", "service__name")
    )
    for o in rows:
        if o.game_id is not None:
            overrides.setdefault(o.game_id, []).append(o)
    result = []
    for g in games:
        # A game still to be decided has only a placeholder tip-off: it overlaps nothing.
        overlaps = (
            0
            if g.tbd
            else sum(
                1
                for other in games
                if other.pk != g.pk and not other.tbd and abs(other.tip_utc - g.tip_utc) < GAME_LENGTH
            )
        )
        result.append(CalendarGame(g, overrides.get(g.pk, []), overlaps))
    return result


def calendar_other_overrides(*, start: datetime, end: datetime, games: list[CalendarGame]) -> list[Override]:
    """Overrides whose window overlaps [start, end) and that none of `games` lists: ad-hoc ones (a group floor
    for an evening) and those of a game outside the range. Pending, approved and cancelled, as a game's are."""
    listed = [g.game.pk for g in games]
    return list(
        Override.objects.select_related("service", "rule")
        .filter(starts_at__lt=end, ends_at__gt=start)
        .filter(Q(status__in=LIVE_STATUSES) | Q(status=Override.Status.CANCELLED))
        .exclude(game__in=listed)
        .order_by("starts_at", "service__name")
    )


def live_cost(overrides: list[Override]) -> float:
    """What the pending and approved ones of `overrides` are expected to cost; cancelled ones count nothing."""
    return round(sum(o.projected_cost_delta or 0.0 for o in overrides if o.status in LIVE_STATUSES), 2)


def rules_list() -> QuerySet[GameDayRule]:
    return GameDayRule.objects.prefetch_related("services").order_by("name")


def games_between(start: datetime, end: datetime) -> QuerySet[Game]:
    return Game.objects.filter(tip_utc__gte=start, tip_utc__lt=end).order_by("tip_utc")
