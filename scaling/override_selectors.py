"""Reads for overrides, the game calendar and their previews."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial

from django.conf import settings
from django.db.models import Count, F, OuterRef, Q, QuerySet, Subquery, Sum

from scaling import selectors
from scaling.models import Decision, Game, GameDayRule, MetricSample, Override, Service
from scaling.policy import EngineInput, OverrideSpec, PolicyParams, ServiceSpec
from scaling.policy.capacity import replica_capacity_rps
from scaling.policy.engine import held_under_overrides
from scaling.policy.forecast import PROFILE_END_MIN, PROFILE_START_MIN, Forecaster
from scaling.policy.rules import size_for

LIVE_STATUSES = (Override.Status.PENDING_APPROVAL, Override.Status.APPROVED)
# A game draws traffic from a little before tip-off until about this long after.
GAME_LENGTH = timedelta(hours=2, minutes=30)
FORECAST_STEP = timedelta(minutes=5)
# A window is priced at this many points at most: every 5 minutes for up to three days (the longest
# floor or ceiling a non-admin may ask for), evenly spread beyond, so an admin's months-long window
# prices as fast as a three-day one instead of taking seconds per service on every preview keystroke.
MAX_WINDOW_POINTS = 3 * 24 * 12
RECENT = timedelta(minutes=15)
# Games that tipped off this long before a point still draw traffic at it.
GAME_LOOKBACK = timedelta(hours=4)


def _window_points(start: datetime, end: datetime) -> list[datetime]:
    steps = min(max(1, math.ceil((end - start) / FORECAST_STEP)), MAX_WINDOW_POINTS)
    step = (end - start) / steps
    return [start + step * (i + 0.5) for i in range(steps)]


@dataclass(frozen=True)
class Tonight:
    """How the engine reads tonight: observed / forecast (None: not known) and the headroom it provisions
    above the corrected forecast (a fraction)."""

    ratio: float | None
    headroom: float


def engine_tonight(service: Service, *, now: datetime, learned: bool) -> Tonight:
    """Tonight's ratio and headroom from the engine's latest decision's forecast rule (rules.prewarm stores
    them in its inputs), when that decision is recent and forecast from the same kind of profile (learned or
    the default shape); otherwise no ratio, and the least headroom the forecast rule provisions."""
    params = PolicyParams.from_dict(service.policy)
    decision = Decision.objects.filter(service=service, tick__gt=now - RECENT, tick__lte=now).order_by("-tick").first()
    rules = decision.explanation.get("rules") if decision and isinstance(decision.explanation, dict) else None
    for rule in rules or []:
        inputs = rule.get("inputs") if isinstance(rule, dict) and rule.get("rule") == "forecast" else None
        if not isinstance(inputs, dict) or inputs.get("learned") is not learned:
            continue
        ratio, headroom = inputs.get("ratio"), inputs.get("headroom")
        if isinstance(ratio, int | float) and ratio > 0 and isinstance(headroom, int | float):
            return Tonight(float(ratio), float(headroom))
    least = params.forecast_headroom if learned else max(params.forecast_headroom, params.cold_start_headroom)
    return Tonight(None, least)


def forecast_rps_series(
    service: Service, *, now: datetime, points: list[datetime], tonight: bool = True
) -> tuple[list[float], list[float]] | None:
    """Demand the engine's forecaster expects at `points`, and the headroom the engine provisions above it at
    each: (rates, headrooms).

    The learned profile (enough history) or else the default shape. Within the engine's reach (now + the
    provisioning delay + a tick + the forecast's look-ahead: what its latest decision forecast for) and through
    the end of the games under way now, times tonight's ratio from that decision, with its headroom; beyond, or
    with `tonight` off, the profile as it is, with the forecast rule's least headroom, since the engine reads
    the ratio afresh at every tick and one hot or quiet evening says nothing of next week. The default shape is
    relative: it is always scaled, by the ratio or else by what the service sees now. None when there is
    neither history nor a recent sample to scale the default shape by.
    """
    forecaster = selectors.traffic_forecaster(service, now)
    learned = forecaster is not None and forecaster.learned
    params = PolicyParams.from_dict(service.policy)
    least = params.forecast_headroom if learned else max(params.forecast_headroom, params.cold_start_headroom)
    found = engine_tonight(service, now=now, learned=learned) if tonight else Tonight(None, least)
    if forecaster is None or not learned:
        forecaster = Forecaster.default()
    scale = 1.0  # beyond the engine's reach: the learned profile as it is
    if not learned:
        scaled = found.ratio if found.ratio is not None else _scale_now(service, forecaster, now)
        if scaled is None:
            return None
        scale = scaled
    near_scale = found.ratio if found.ratio is not None else scale
    reach = now + timedelta(seconds=service.provisioning_delay_s + settings.TICK_SECONDS + params.forecast_lookahead_s)
    # ... and through the games whose traffic is under way now: tonight's ratio is mostly their interest.
    for g in selectors.game_specs(now - _PROFILE_END, now - _PROFILE_START):
        reach = max(reach, g.tip_utc + _PROFILE_END)
    games = selectors.game_specs(min(points) - GAME_LOOKBACK, max(points) + timedelta(hours=1))
    prepared = forecaster.prepare(games)
    rates, headrooms = [], []
    for t in points:
        near = found.ratio is not None and t <= reach
        rate = forecaster.predict_epoch(t.timestamp(), prepared) * (near_scale if near else scale)
        rates.append(max(rate or 0.0, 0.0))
        headrooms.append(found.headroom if near else least)
    return rates, headrooms


_PROFILE_START = timedelta(minutes=PROFILE_START_MIN)
_PROFILE_END = timedelta(minutes=PROFILE_END_MIN)


def _scale_now(service: Service, forecaster: Forecaster, now: datetime) -> float | None:
    """What the service sees now over what the default shape expects (None without a recent sample)."""
    recent = list(
        MetricSample.objects.filter(service=service, ts__gte=now - RECENT, ts__lte=now, rps__isnull=False)
        .order_by("-ts")
        .values_list("ts", "rps")[:20]
    )
    if not recent:
        return None
    games_now = selectors.game_specs(now - GAME_LOOKBACK, now + timedelta(hours=1))
    expected = sum(forecaster.predict(ts, games_now) for ts, _ in recent) / len(recent)
    observed = sum(r or 0.0 for _, r in recent) / len(recent)
    return observed / expected if expected > 0 else 1.0


def forecast_replicas_series(
    service: Service, *, now: datetime, points: list[datetime], tonight: bool = True
) -> list[int]:
    """Replicas the engine would run at `points` without overrides, within the service's bounds.

    1. The forecast (corrected by tonight's ratio within the engine's reach; see forecast_rps_series), with
       the engine's headroom, sized by its own serving model (rules.size_for), or by the policy's utilization
       target where that asks for more; without a forecast, the count provisioned now.
    2. Until replicas asked for now could arrive (the provisioning delay), never below what is provisioned now:
       those keep running until then.
    """
    current = current_provisioned(service)
    forecast = forecast_rps_series(service, now=now, points=points, tonight=tonight)
    if forecast is None:
        counts = [current for _ in points]
    else:
        rates, headrooms = forecast
        params = PolicyParams.from_dict(service.policy)
        sizing = EngineInput(
            now=now, service=selectors.service_spec(service), params=params, provisioned=current, ready=current
        )
        counts = [size_for(r * (1.0 + h), sizing) for r, h in zip(rates, headrooms, strict=True)]
        if params.target_utilization > 0:
            per_replica = replica_capacity_rps(sizing.service) * params.target_utilization
            counts = [max(n, math.ceil(r / per_replica - 1e-9)) for n, r in zip(counts, rates, strict=True)]
        arrive = now + timedelta(seconds=service.provisioning_delay_s)
        counts = [max(n, current) if t < arrive else n for n, t in zip(counts, points, strict=True)]
    return [min(max(n, service.min_replicas), service.max_replicas) for n in counts]


def forecast_replicas(
    service: Service,
    *,
    now: datetime,
    start: datetime | None = None,
    end: datetime | None = None,
    tonight: bool = True,
) -> int:
    """The most replicas the policy forecasts over [start, end) (default: the coming hour); `tonight` as for
    forecast_rps_series."""
    start = start or now
    end = end if end is not None and end > start else start + timedelta(hours=1)
    return max(forecast_replicas_series(service, now=now, points=_window_points(start, end), tonight=tonight))


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
    forecast: int  # peak replicas without this override (the policy's forecast under the approved overrides)
    effective: int  # peak replicas with it, as the engine would hold them
    hours: float
    cost_delta: float  # dollars over the whole window; negative = saved
    # Pins and freezes in the window the engine follows instead (approved) or will once approved (pending).
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


# The id the proposed override goes by among the stored ones (whose ids are their primary keys) the engine is given.
PROPOSED = "proposed"

Held = tuple[int, str | None]  # what engine.held_under_overrides returns: the count and the kind that set it


def override_preview(
    service: Service, *, kind: str, replicas: int | None, starts_at: datetime, ends_at: datetime, now: datetime
) -> Preview:
    """The replicas the engine would hold over the window without and with the override, and the cost
    difference integrated over the window (5-minute steps, coarser past three days).

    At each point the engine's own precedence and bounds (engine.held_under_overrides) bind the policy's
    forecast under the approved overrides active then, without and with this one: an approved pin or freeze
    that overrules it leaves nothing to price, and a floor or ceiling and a freeze of scale-in combine as the
    engine combines them. Pending overrides that would overrule it are listed in `overruled_by` but not priced:
    the engine ignores them until approved.
    """
    hours = max((ends_at - starts_at).total_seconds(), 0.0) / 3600.0
    if hours <= 0:
        return Preview(service, kind, replicas, starts_at, ends_at, 0, 0, 0.0, 0.0)
    points = _window_points(starts_at, ends_at)
    forecast = forecast_replicas_series(service, now=now, points=points)
    current = current_provisioned(service)
    spec = selectors.service_spec(service)
    proposed = OverrideSpec(id=PROPOSED, kind=kind, starts_at=starts_at, ends_at=ends_at, replicas=replicas)
    others = overlapping(service, starts_at, ends_at)
    if kind == Override.Kind.PIN:
        # A new pin replaces the pins it overlaps, or is refused (overrides._check_against_others): it runs alone.
        others = others.exclude(kind=Override.Kind.PIN)
    live: dict[int | str, Override] = {o.pk: o for o in others}
    approved = [selectors.override_spec(o) for o in live.values() if o.status == Override.Status.APPROVED]
    # What the engine would follow once the pending ones are approved too: for the warning only.
    all_live = [selectors.override_spec(o) for o in live.values()]
    without: list[int] = []
    effective: list[int] = []
    overruled: dict[int | str, Override] = {}
    for t, f in zip(points, forecast, strict=True):
        held = partial(held_under_overrides, spec, now=t, provisioned=current, policy_count=f)
        before, after = held(approved), held([*approved, proposed])
        without.append(before[0])
        effective.append(after[0])
        overrulers = _overruling(held, approved, before, after)
        if len(all_live) > len(approved):
            overrulers += _overruling(held, all_live, held(all_live), held([*all_live, proposed]))
        overruled.update((o.id, live[o.id]) for o in overrulers)
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


def _overruling(
    held: Callable[[list[OverrideSpec]], Held], live: list[OverrideSpec], without: Held, with_proposed: Held
) -> list[OverrideSpec]:
    """The overrides of `live` the engine follows instead of the proposed one at a point: where it holds the
    same with the proposed one as without, set outright by a pin or a freeze, those that alone set that."""
    setter = with_proposed[1]
    if setter is None or with_proposed != without:
        return []
    return [o for o in live if o.kind == setter and held([o]) == with_proposed]


def overlapping(service: Service, starts_at: datetime, ends_at: datetime) -> QuerySet[Override]:
    """Pending or approved overrides of the service whose window overlaps [starts_at, ends_at)."""
    return Override.objects.filter(
        service=service, status__in=LIVE_STATUSES, starts_at__lt=ends_at, ends_at__gt=starts_at
    )


def unapproved_chain(
    service: Service,
    *,
    requester_id: int | None,
    starts_at: datetime,
    ends_at: datetime,
    now: datetime,
    exclude: Sequence[int] = (),
) -> list[Override]:
    """The requester's other live overrides of `service` that no second person approved, chained to the window
    [starts_at, ends_at]: each overlaps or abuts the window or another of the chain. Oldest first.

    "No second person approved": pending, let through under the thresholds (no approver), or approved by the
    requester themselves (an admin's bypass). A game-day rule's floors are the rule's, never a requester's.
    Twelve adjacent hour-long floors are one twelve-hour floor asked for in slices: approval looks at the
    chain (scaling.overrides.approval_need)."""
    if requester_id is None:
        return []
    candidates = list(
        Override.objects.select_related("service")
        .filter(
            service=service,
            created_by_id=requester_id,
            status__in=LIVE_STATUSES,
            ends_at__gt=now,
            rule__isnull=True,
        )
        .filter(
            Q(status=Override.Status.PENDING_APPROVAL) | Q(approved_by__isnull=True) | Q(approved_by=F("created_by"))
        )
        .exclude(pk__in=exclude)
        .order_by("starts_at", "pk")
    )
    chain: list[Override] = []
    lo, hi = starts_at, ends_at
    grew = True
    while grew:  # a link found can reach others already passed over
        grew = False
        for o in candidates:
            if o not in chain and o.starts_at <= hi and o.ends_at >= lo:
                chain.append(o)
                lo, hi = min(lo, o.starts_at), max(hi, o.ends_at)
                grew = True
    return sorted(chain, key=lambda o: (o.starts_at, o.pk))


def held_by_mode(service: Service, *, now: datetime) -> QuerySet[Override]:
    """The pending and approved overrides the service's pause or dry run keeps from being applied: those whose
    window overlaps [now, the mode's end). Paused or dry-running, Tipoff acts on no override (by design); the
    pages say which, rather than show them as in force. None while the service is active."""
    if service.mode == Service.Mode.ACTIVE:
        return Override.objects.none()
    held = Override.objects.filter(service=service, status__in=LIVE_STATUSES, ends_at__gt=now)
    if service.mode_until is not None:
        held = held.filter(starts_at__lt=service.mode_until)
    return held.select_related("rule").order_by("starts_at")


def is_held_by_mode(o: Override, *, now: datetime) -> bool:
    """held_by_mode for one override already loaded with its service."""
    until = o.service.mode_until
    return (
        o.service.mode != Service.Mode.ACTIVE
        and o.status in LIVE_STATUSES
        and o.ends_at > now
        and (until is None or o.starts_at < until)
    )


# An override's state at an instant, from its stored status and its window: what the overrides list shows and
# the API's `state` gives. A pending one whose window ended was never approved (lapsed); an approved one is
# scheduled (approved), in force (active) or over (expired).
STATE_LABELS: dict[str, str] = {
    "pending": "Pending approval",
    "lapsed": "Lapsed (never approved)",
    "approved": "Approved, scheduled",
    "active": "Active",
    "expired": "Expired",
    "cancelled": "Cancelled",
    "rejected": "Rejected",
}


def override_state(o: Override, *, now: datetime) -> str:
    """One of STATE_LABELS' keys: the stored status read against the window at `now`."""
    if o.status == Override.Status.PENDING_APPROVAL:
        return "lapsed" if o.ends_at <= now else "pending"
    if o.status == Override.Status.APPROVED:
        if o.ends_at <= now:
            return "expired"
        return "active" if o.starts_at <= now else "approved"
    return str(o.status)  # cancelled, rejected: over whatever the window


def overrides_list(
    *, now: datetime, service: Service | None = None, status: str | None = None, include_past: bool = False
) -> QuerySet[Override]:
    rows = Override.objects.select_related("service", "created_by", "approved_by", "cancelled_by", "game", "rule")
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


def latest_overrides(rows: QuerySet[Override], limit: int) -> tuple[list[Override], int]:
    """The `limit` latest-starting of `rows` (an `overrides_list`), in its order, and how many there are in all: a
    season's history outgrows a page, and its oldest weeks are the least wanted."""
    total = rows.count()
    latest = list(rows.reverse()[:limit]) if total > limit else list(rows)
    return (latest[::-1] if total > limit else latest), total


def adds_nothing_over(rows: Sequence[Override]) -> dict[int, Override]:
    """For each override of `rows` projected to cost nothing, the approved one made before it (among `rows`)
    it adds nothing over, if any: of the same service, with a window covering its own, and under which the
    engine (engine.held_under_overrides) holds the same count with it as without, whatever the policy and the
    fleet stand at.

    An override is priced when made, as the extra over what was approved then: of two identical floors the
    first takes the cost and the second adds nothing, which this names instead of a bare $0.00.
    """
    found: dict[int, Override] = {}
    specs: dict[int, ServiceSpec] = {}
    by_service: dict[int, list[Override]] = {}
    for o in rows:
        by_service.setdefault(o.service_id, []).append(o)
    # Both overrides are in force at the later one's start (the earlier covers its window), so the answer
    # depends only on the service and the two kinds and counts: a list of a rule's nightly floors under one
    # season floor asks the engine once per distinct pair, not once per row.
    memo: dict[tuple[int, str, int | None, str, int | None], bool] = {}
    for o in rows:
        if o.status not in LIVE_STATUSES or round(o.projected_cost_delta or 0.0, 2) != 0:
            continue
        for earlier in by_service[o.service_id]:
            if (
                earlier.pk < o.pk
                and earlier.status == Override.Status.APPROVED
                and earlier.starts_at <= o.starts_at
                and earlier.ends_at >= o.ends_at
            ):
                key = (o.service_id, o.kind, o.replicas, earlier.kind, earlier.replicas)
                if key not in memo:
                    spec = specs.setdefault(o.service_id, selectors.service_spec(o.service))
                    memo[key] = _changes_nothing(spec, selectors.override_spec(o), selectors.override_spec(earlier))
                if memo[key]:
                    found[o.pk] = earlier
                    break
    return found


def _changes_nothing(spec: ServiceSpec, o: OverrideSpec, earlier: OverrideSpec) -> bool:
    """Whether the engine holds the same with `o` as with `earlier` alone, at `o`'s start, at every count the
    policy or the fleet might stand at where the two could differ (around their counts and the bounds)."""
    marks = {0, spec.min_replicas, spec.max_replicas, spec.hard_max_replicas, o.replicas or 0, earlier.replicas or 0}
    counts = sorted({max(n + step, 0) for n in marks for step in (-1, 0, 1)})
    return all(
        held_under_overrides(spec, [earlier], now=o.starts_at, provisioned=p, policy_count=c)
        == held_under_overrides(spec, [earlier, o], now=o.starts_at, provisioned=p, policy_count=c)
        for p in counts
        for c in counts
    )


def pending_approvals(now: datetime) -> QuerySet[Override]:
    """The overrides waiting for approval, each with what approving it approves (approval_group): `group_size`
    pending overrides, `group_cost` their projected cost together."""
    group = (
        Override.objects.filter(group_id=OuterRef("group_id"), status=Override.Status.PENDING_APPROVAL)
        .order_by()
        .values("group_id")
    )
    return (
        Override.objects.select_related("service", "created_by", "game")
        .filter(status=Override.Status.PENDING_APPROVAL, ends_at__gt=now)
        .annotate(
            group_size=Subquery(group.annotate(n=Count("pk")).values("n")),
            group_cost=Subquery(group.annotate(total=Sum("projected_cost_delta")).values("total")),
        )
        .order_by("starts_at")
    )


def approval_group(o: Override) -> list[Override]:
    """What approving `o` approves: the pending overrides of its group (made together, one per service), oldest
    first; the others of a group already decided are not asked about."""
    return list(
        Override.objects.select_related("service", "created_by", "game")
        .filter(group_id=o.group_id, status=Override.Status.PENDING_APPROVAL)
        .order_by("pk")
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
    for an evening) and those of a game outside the range. Pending and approved only, as the overrides page's
    "Active and upcoming": a cancelled or rejected one never runs, and tied to no game it says nothing of one."""
    listed = [g.game.pk for g in games]
    return list(
        Override.objects.select_related("service", "rule")
        .filter(starts_at__lt=end, ends_at__gt=start, status__in=LIVE_STATUSES)
        .exclude(game__in=listed)
        .order_by("starts_at", "service__name")
    )


def live_cost(overrides: list[Override]) -> float:
    """What the pending and approved ones of `overrides` are expected to cost; cancelled ones count nothing."""
    return round(sum(o.projected_cost_delta or 0.0 for o in overrides if o.status in LIVE_STATUSES), 2)


def rules_list(now: datetime) -> QuerySet[GameDayRule]:
    """The rules, each with `scheduled_overrides`: how many of its overrides are pending or approved and not
    yet over (cancelled, rejected and past ones are history, not a schedule)."""
    scheduled = Count("overrides", filter=Q(overrides__status__in=LIVE_STATUSES, overrides__ends_at__gt=now))
    return GameDayRule.objects.prefetch_related("services").annotate(scheduled_overrides=scheduled).order_by("name")


def rule_approval_warnings(rule: GameDayRule) -> list[str]:
    """What a saved rule's confirmation should warn of beside its match (schedule.rules.match_warnings): a floor
    that, made by hand, would wait for a second person. A rule's floors need none: only administrators make
    rules, and making one approves its floors (scaling.overrides.override_create). A floor as a multiple of the
    forecast has no count to compare until a game is priced."""
    limit = settings.OVERRIDE_APPROVAL_REPLICAS
    if rule.floor_replicas is None or rule.floor_replicas <= limit:
        return []
    return [
        f"Floors above {limit} replicas would need a second person's approval if made by hand; this rule's are "
        "approved by the rule."
    ]


def games_between(start: datetime, end: datetime) -> QuerySet[Game]:
    return Game.objects.filter(tip_utc__gte=start, tip_utc__lt=end).order_by("tip_utc")
