"""Every read used by views, the API and the control loop."""

from __future__ import annotations

import hashlib
import logging
import math
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.cache import caches
from django.db.models import Count, F, Max, Min, OuterRef, Q, QuerySet, Subquery, Sum
from django.db.models.fields.json import KT
from redis.exceptions import RedisError

from scaling import policy as policy_package
from scaling.models import AuditEvent, Decision, Game, MetricSample, Override, PolicyRevision, Service
from scaling.policy import (
    EngineInput,
    Forecaster,
    GameSpec,
    MetricPoint,
    Mode,
    OverrideSpec,
    PastRecommendation,
    PolicyParams,
    ServiceSpec,
)
from scaling.policy.rules import slo_breach
from scaling.policy.signals import max_sample_age_s
from scaling.rollups import bucket_number, chart_bucket_s, chart_sums

RANGES: dict[str, timedelta] = {
    "1h": timedelta(hours=1),
    "6h": timedelta(hours=6),
    "24h": timedelta(hours=24),
    "7d": timedelta(days=7),
}

logger = logging.getLogger(__name__)


def enabled_service_ids() -> list[int]:
    return list(Service.objects.filter(enabled=True).values_list("id", flat=True))


def service_spec(service: Service) -> ServiceSpec:
    return ServiceSpec(
        min_replicas=service.min_replicas,
        max_replicas=service.max_replicas,
        hard_max_replicas=service.hard_max_replicas,
        service_time_ms=service.service_time_ms,
        concurrency=service.concurrency,
        provisioning_delay_s=float(service.provisioning_delay_s),
        slo_latency_ms=service.slo_latency_ms,
        slo_target=service.slo_target,
        tick_s=float(settings.TICK_SECONDS),
        metrics_lag_s=float(service.backend_config.get("metrics_lag_s", 0.0)),
        price_per_replica_hour=service.price_per_replica_hour,
    )


def override_spec(o: Override) -> OverrideSpec:
    return OverrideSpec(
        id=o.pk, kind=o.kind, starts_at=o.starts_at, ends_at=o.ends_at, replicas=o.replicas, reason=o.reason
    )


def override_specs(service: Service, start: datetime, end: datetime) -> tuple[OverrideSpec, ...]:
    """Approved overrides whose window overlaps [start, end)."""
    rows = Override.objects.filter(
        service=service, status=Override.Status.APPROVED, starts_at__lt=end, ends_at__gt=start
    )
    return tuple(override_spec(o) for o in rows)


def game_specs(start: datetime, end: datetime) -> tuple[GameSpec, ...]:
    rows = Game.objects.filter(tip_utc__gte=start, tip_utc__lt=end, postponed=False, tbd=False)
    return tuple(
        GameSpec(
            game_id=g.game_id,
            tip_utc=g.tip_utc,
            away_team=g.away_team,
            home_team=g.home_team,
            national_tv=g.national_tv,
        )
        for g in rows
    )


def engine_input(
    service: Service,
    *,
    now: datetime,
    provisioned: int,
    ready: int,
    metrics: tuple[MetricPoint, ...],
    params: PolicyParams | None = None,
) -> EngineInput:
    """Everything the engine needs for one service at one tick (DESIGN: one control tick, step 3). `params` is
    the service's stored policy, read here when not given (a PolicyParamsError when the engine refuses it)."""
    params = params if params is not None else PolicyParams.from_dict(service.policy)
    window = timedelta(
        seconds=max(
            params.scale_down_window_s(service.provisioning_delay_s),
            params.scale_up_stabilization_s,
            params.scale_up_period_s,
            params.scale_down_period_s,
        )
        + 1
    )
    recent_rows = (
        Decision.objects.filter(service=service, tick__gte=now - window, tick__lt=now, recommendation__isnull=False)
        .order_by("tick")
        .values_list("tick", "recommendation", "desired", "provisioned")
    )
    last_out = (
        Decision.objects.filter(service=service, changed=True, desired__gt=F("provisioned"), tick__lt=now)
        .order_by("-tick")
        .values_list("tick", flat=True)
        .first()
    )
    last_in = (
        Decision.objects.filter(service=service, changed=True, desired__lt=F("provisioned"), tick__lt=now)
        .order_by("-tick")
        .values_list("tick", flat=True)
        .first()
    )
    horizon = timedelta(hours=6)
    return EngineInput(
        now=now,
        service=service_spec(service),
        params=params,
        provisioned=provisioned,
        ready=ready,
        metrics=with_recent_samples(service, now, metrics),
        mode=Mode(service.mode),
        mode_until=service.mode_until,
        overrides=override_specs(service, now - timedelta(minutes=1), now + horizon),
        games=game_specs(now - timedelta(hours=4), now + horizon),
        recent=tuple(
            PastRecommendation(ts=t, replicas=r, desired=d, provisioned=n)
            for t, r, d, n in recent_rows
            if r is not None
        ),
        last_scale_out_at=last_out,
        last_scale_in_at=last_in,
        metrics_missing_since=metrics_missing_since(service, now),
        forecaster=traffic_forecaster(service, now),
    )


# The engine reads a few minutes of samples (short-window rate, the trend of tonight's forecast ratio).
RECENT_SAMPLES = timedelta(minutes=5)
# Learned demand profiles, refit from the service's own samples every few hours, per worker process.
FORECAST_LEARN_WINDOW = timedelta(days=7)
FORECAST_REFIT_S = 6 * 3600
REFIT_STAGGER_S = 997  # seconds between neighbouring services' refits (prime: ids spread over the period)
# The fit reads samples up to this long before its period starts: a metric store that reports late (CloudWatch's
# lag) is still delivering the last minutes before it when the period's first ticks run.
FORECAST_SAMPLES_SETTLED = timedelta(minutes=10)
# The fit reads the games that tipped this long around its history (a game's profile reaches into it).
FORECAST_GAMES_MARGIN = timedelta(hours=6)
_forecasters: dict[tuple[int, int, tuple[object, ...]], Forecaster] = {}


def metric_point(sample: MetricSample) -> MetricPoint:
    return MetricPoint(
        ts=sample.ts,
        rps=sample.rps,
        p50_ms=sample.p50_ms,
        p95_ms=sample.p95_ms,
        p99_ms=sample.p99_ms,
        utilization=sample.utilization,
        in_flight=sample.in_flight,
        error_rate=sample.error_rate,
    )


def with_recent_samples(service: Service, now: datetime, fetched: tuple[MetricPoint, ...]) -> tuple[MetricPoint, ...]:
    """The fetched window plus the stored samples of the last few minutes, oldest first, one per instant."""
    seen = {m.ts for m in fetched}
    stored = [
        metric_point(r)
        for r in MetricSample.objects.filter(service=service, ts__gte=now - RECENT_SAMPLES, ts__lt=now)
        if r.ts not in seen
    ]
    return tuple(sorted([*stored, *fetched], key=lambda m: m.ts))


def refit_period(service_id: int, now: datetime) -> int:
    """Which FORECAST_REFIT_S period `now` falls in for this service: a new one means a refit. Each service's
    periods start at its own offset, since all at once would land on one tick (00:00 UTC is 19:00 ET, the
    busiest tip-off slot)."""
    return (int(now.timestamp()) + service_id * REFIT_STAGGER_S) // FORECAST_REFIT_S


def refit_period_start(service_id: int, period: int) -> datetime:
    return datetime.fromtimestamp(period * FORECAST_REFIT_S - service_id * REFIT_STAGGER_S, tz=UTC)


def calendar_fingerprint(start: datetime, end: datetime) -> tuple[object, ...]:
    """What changes whenever a game tipping in [start, end) is added, moved, changed or deleted: how many there
    are and the latest write to one (postponed and undecided ones too: marking one changes what the engine plans
    for). One aggregate query on the indexed tip-off."""
    found = Game.objects.filter(tip_utc__gte=start, tip_utc__lt=end).aggregate(n=Count("id"), latest=Max("updated_at"))
    return (found["n"], found["latest"])


def traffic_forecaster(service: Service, now: datetime) -> Forecaster | None:
    """Per-tier profiles learned from the service's own recorded rates over the week before its refit period.

    The fit is a function of the service, its period and the calendar, never of `now` within the period: every
    process (the control worker's pool processes, the web process pricing a preview) that fits in the same
    period fits the same model. Each process keeps it until the period ends or the calendar around its history
    changes (an import, a moved tip-off, a postponement), which its next call sees."""
    period = refit_period(service.pk, now)
    start = refit_period_start(service.pk, period)
    history_end = start - FORECAST_SAMPLES_SETTLED
    games_start, games_end = history_end - FORECAST_LEARN_WINDOW - FORECAST_GAMES_MARGIN, start + FORECAST_GAMES_MARGIN
    key = (service.pk, period, calendar_fingerprint(games_start, games_end))
    if key in _forecasters:
        return _forecasters[key]
    samples = MetricSample.objects.filter(
        service=service, ts__gte=history_end - FORECAST_LEARN_WINDOW, ts__lt=history_end, rps__isnull=False
    )
    found = samples.aggregate(n=Count("id"), first=Min("ts"), last=Max("ts"), total=Sum("rps"))
    if found["n"] < 600:  # under a few hours of samples: the default shape, scaled by what is observed
        return None
    shared_key = _shared_forecaster_key(key, found)
    forecaster = _shared_forecaster(shared_key)
    if forecaster is None:
        rows = list(samples.order_by("ts").values_list("ts", "rps"))
        games = game_specs(games_start, games_end)
        forecaster = Forecaster.fit([t for t, _ in rows], [float(r or 0.0) for _, r in rows], games)
        _share_forecaster(shared_key, forecaster)
    for stale in [k for k in _forecasters if k[0] == service.pk]:
        del _forecasters[stale]
    _forecasters[key] = forecaster
    return forecaster


# Fits shared between processes (the control worker's pool, the web process pricing a preview, a restarted
# worker) through the "shared" cache: a fit takes seconds. The key holds everything the fit reads, so that a
# hit is the model this process would have fitted: the service and its period, the calendar's fingerprint,
# and the samples' (how many, their first and last instants, their sum). Kept a period and a tick past it.
# The engine's code is in the key too: a deploy that changes how it fits does not read the last version's fits.
ENGINE_CODE = hashlib.sha256(
    b"".join(path.read_bytes() for path in sorted(Path(policy_package.__file__).parent.glob("*.py")))
).hexdigest()[:16]


def _shared_forecaster_key(key: tuple[int, int, tuple[object, ...]], samples: dict[str, Any]) -> str:
    parts = [ENGINE_CODE, *key[:2], *key[2], samples["n"], samples["first"], samples["last"], samples["total"]]
    digest = hashlib.sha256(repr(parts).encode()).hexdigest()[:32]
    return f"forecaster:{key[0]}:{digest}"


def _shared_forecaster(key: str) -> Forecaster | None:
    """The fit another process shared under `key`; None when there is none, or Redis does not answer in time."""
    try:
        state = caches["shared"].get(key)
        return None if state is None else Forecaster.from_state(state)
    except (RedisError, TypeError, ValueError, KeyError, AttributeError) as exc:  # unreachable, or not a state
        logger.warning("shared forecaster %s not read (%s): fitting here", key, exc)
        return None


def _share_forecaster(key: str, forecaster: Forecaster) -> None:
    try:
        caches["shared"].set(key, forecaster.state(), timeout=FORECAST_REFIT_S + settings.TICK_SECONDS)
    except (RedisError, ValueError) as exc:  # unreachable, or a value JSON cannot hold (not a number)
        logger.warning("forecaster %s not shared (%s): other processes will fit their own", key, exc)


def metrics_missing_since(service: Service, now: datetime) -> datetime | None:
    """When the current run of ticks without metrics began (None if the last tick had them).

    A tick without metrics is one the engine decided with no recommendation and not paused
    (`policy.Decision.metrics_missing`): its reason code may name an override or a dry run instead."""
    missing = Q(recommendation__isnull=True) & ~Q(mode=Mode.PAUSED.value)
    last_good = (
        Decision.objects.filter(service=service, tick__lt=now)
        .exclude(missing)
        .order_by("-tick")
        .values_list("tick", flat=True)
        .first()
    )
    first_bad = Decision.objects.filter(missing, service=service, tick__lt=now)
    if last_good is not None:
        first_bad = first_bad.filter(tick__gt=last_good)
    return first_bad.order_by("tick").values_list("tick", flat=True).first()


# The control loop decides every enabled service once a tick: more ticks than this without a decision means the
# loop (beat, the worker, or Redis between them) has stopped, and the numbers shown are as old as that.
STALL_TICKS = 3


def decision_overdue(service: Service, last_tick: datetime | None, now: datetime) -> timedelta | None:
    """How long an enabled service has gone without a decision, once that is more than STALL_TICKS ticks.

    Counted from its last decision, or from its last change (created, enabled again) when later: a service
    enabled a moment ago waits for its first tick, not for the day it was off."""
    if not service.enabled:
        return None
    since = service.updated_at if last_tick is None else max(last_tick, service.updated_at)
    silent = now - since
    return silent if silent > timedelta(seconds=STALL_TICKS * settings.TICK_SECONDS) else None


def override_awaits_tick(override: Override, decision: Decision | None) -> bool:
    """Whether no decision has run since the override came into force: the engine has not applied it yet.

    In force from its start, and from when it was approved (or created, without approval); a decision applies
    what is in force at its tick, once it is evaluated."""
    if decision is None:
        return True
    return decision.tick < override.starts_at or decision.created_at < (override.approved_at or override.created_at)


@dataclass(frozen=True)
class FleetRow:
    service: Service
    sample: MetricSample | None
    decision: Decision | None
    cost_per_hour: float
    pending_overrides: int
    active_overrides: list[Override]
    # The latest sample's signals that break the SLO, judged as the engine's slo_guard judges them.
    slo_breaches: dict[str, float]
    # How long the service has gone without a decision, when the control loop looks stopped (decision_overdue).
    decision_overdue: timedelta | None = None
    # Every override in force came after the latest decision: shown in force, it is not applied yet.
    overrides_await_tick: bool = False
    # The latest sample is older than the engine accepts (metrics unavailable or stale since): its SLO reading
    # and counts are not current, and the page says as of when.
    sample_stale: bool = False

    @property
    def has_slo_signals(self) -> bool:
        """Whether the latest sample measured anything the SLO is judged by; without, 'within' would be a guess."""
        s = self.sample
        return s is not None and any(v is not None for v in (s.p95_ms, s.p99_ms, s.error_rate))

    @property
    def current(self) -> bool:
        """Whether its numbers count in the fleet's totals now: a disabled service is not scaled nor read."""
        return self.service.enabled


def latest_sample(service: Service) -> MetricSample | None:
    return MetricSample.objects.filter(service=service).order_by("-ts").first()


def sample_is_stale(service: Service, sample: MetricSample | None, now: datetime) -> bool:
    """Whether `sample` is older than the service's staleness limit, past which the engine does not use it."""
    if sample is None:
        return False
    return (now - sample.ts).total_seconds() > max_sample_age_s(service_spec(service))


def sample_age_limit(service: Service) -> timedelta:
    return timedelta(seconds=max_sample_age_s(service_spec(service)))


def latest_decision(service: Service) -> Decision | None:
    return Decision.objects.filter(service=service).order_by("-tick").first()


def fleet_overview(now: datetime) -> list[FleetRow]:
    """Every service with its latest sample and decision and its overrides.

    The fleet page polls this every tick from every open tab, so it costs the same few queries
    however many services there are: one for the services with the ids of their latest sample and
    decision, one each to load those, one for the overrides that are live or awaiting approval.
    """
    fleet = list(
        Service.objects.select_related("actuator_health").annotate(
            latest_sample_id=Subquery(
                MetricSample.objects.filter(service=OuterRef("pk")).order_by("-ts").values("pk")[:1]
            ),
            latest_decision_id=Subquery(
                Decision.objects.filter(service=OuterRef("pk")).order_by("-tick").values("pk")[:1]
            ),
        )
    )
    samples = MetricSample.objects.in_bulk([s.latest_sample_id for s in fleet if s.latest_sample_id is not None])
    decisions = Decision.objects.in_bulk([s.latest_decision_id for s in fleet if s.latest_decision_id is not None])
    active: dict[int, list[Override]] = defaultdict(list)
    pending: Counter[int] = Counter()
    for override in Override.objects.filter(ends_at__gt=now).filter(
        Q(status=Override.Status.APPROVED, starts_at__lte=now) | Q(status=Override.Status.PENDING_APPROVAL)
    ):
        if override.status == Override.Status.PENDING_APPROVAL:
            pending[override.service_id] += 1
        else:
            active[override.service_id].append(override)
    rows = []
    for service in fleet:
        sample = samples.get(service.latest_sample_id)
        decision = decisions.get(service.latest_decision_id)
        provisioned = sample.provisioned if sample and sample.provisioned is not None else 0
        rows.append(
            FleetRow(
                service=service,
                sample=sample,
                decision=decision,
                cost_per_hour=provisioned * service.price_per_replica_hour,
                pending_overrides=pending[service.pk],
                active_overrides=active[service.pk],
                slo_breaches=slo_breach(service_spec(service), metric_point(sample)) if sample else {},
                decision_overdue=decision_overdue(service, decision.tick if decision else None, now),
                overrides_await_tick=bool(active[service.pk])
                and all(override_awaits_tick(o, decision) for o in active[service.pk]),
                sample_stale=sample_is_stale(service, sample, now),
            )
        )
    return rows


def recent_decisions(service: Service, limit: int = 20, *, changes_only: bool = False) -> QuerySet[Decision]:
    return _timeline_rows(service, changes_only=changes_only).order_by("-tick")[:limit]


@dataclass(frozen=True)
class TimelinePage:
    decisions: list[Decision]  # newest first
    older_cursor: int | None  # a decision id: pass as before= for the next (older) page
    newer_cursor: int | None  # pass as after= for the previous (newer) page


def decision_timeline(
    service: Service,
    *,
    since: datetime,
    changes_only: bool = False,
    before: int | None = None,
    after: int | None = None,
    size: int = 20,
) -> TimelinePage:
    """One page of the service's decisions from `since` on, newest first, seeking on the tick of the decision
    named by `before` (older than it) or `after` (newer than it): page 50 costs what page 1 does (the
    service-and-tick index), and a page stays put while ticks are added. A cursor naming no decision of the
    service (pruned since) starts from the newest."""
    rows = _timeline_rows(service, changes_only=changes_only).filter(tick__gte=since)
    cursor = before if before is not None else after
    at = Decision.objects.filter(service=service, pk=cursor).values_list("tick", flat=True).first() if cursor else None
    if at is not None and after is not None:
        found = list(rows.filter(tick__gt=at).order_by("tick")[: size + 1])
        decisions, has_newer, has_older = found[:size][::-1], len(found) > size, True
    else:
        if at is not None:
            rows = rows.filter(tick__lt=at)
        found = list(rows.order_by("-tick")[: size + 1])
        decisions, has_older, has_newer = found[:size], len(found) > size, at is not None
    return TimelinePage(
        decisions=decisions,
        older_cursor=decisions[-1].pk if decisions and has_older else None,
        newer_cursor=decisions[0].pk if decisions and has_newer else None,
    )


def _timeline_rows(service: Service, *, changes_only: bool) -> QuerySet[Decision]:
    rows = Decision.objects.filter(service=service)
    if changes_only:
        # Ticks that changed capacity or were stopped from changing it (the ones worth reading). A tick that
        # recommended nothing (paused, metrics missing) held: negated, `recommendation = desired` would also
        # match its NULL, so it is ruled out first.
        blocked = Q(recommendation__isnull=False) & ~Q(recommendation=F("desired"))
        rows = rows.filter(Q(changed=True) | blocked)
    return rows


def decision_count(service: Service) -> int:
    return Decision.objects.filter(service=service).count()


# The charts draw about this many points over any range: the range over it is their bucket (`chart_bucket_s`).
CHART_POINTS = 720


def service_timeseries(
    service: Service, *, since: datetime, until: datetime, max_points: int = CHART_POINTS, use_rollups: bool = True
) -> dict[str, list[Any]]:
    """Metric and decision series for the service charts, about max_points of each.

    The metrics are on the fleet charts' buckets (`chart_bucket_s`), one point per bucket with samples at its
    start: replicas and request rate the mean of its samples, each latency the highest (a breach within it
    stays visible). Read from the rollups where the bucket allows (24 h, 7 d; scaling/rollups.py)."""
    bucket_s = chart_bucket_s(until - since, max_points=max_points, tick_s=settings.TICK_SECONDS)
    sums = chart_sums([service.pk], since=since, until=until, bucket_s=bucket_s, use_rollups=use_rollups)
    buckets = sorted(sums.get(service.pk, {}).items())
    provisioned = [b.provisioned for _, b in buckets]
    return {
        "ts": [datetime.fromtimestamp(k * bucket_s, tz=UTC) for k, _ in buckets],
        "rps": [b.rps for _, b in buckets],
        "p50_ms": [b.p50_ms_max for _, b in buckets],
        "p95_ms": [b.p95_ms_max for _, b in buckets],
        "p99_ms": [b.p99_ms_max for _, b in buckets],
        "ready": [b.ready for _, b in buckets],
        "provisioned": provisioned,
        # A sample without a replica count (a rate from before Tipoff managed the service) has no known cost.
        "cost_per_hour": [None if n is None else n * service.price_per_replica_hour for n in provisioned],
        **decision_series(service, since=since, until=until, bucket_s=bucket_s),
    }


def decision_series(service: Service, *, since: datetime, until: datetime, bucket_s: int) -> dict[str, list[Any]]:
    """The replicas decisions asked for, one a chart bucket (`last_decisions`), and every decision that changed
    capacity (the newest 200), so that markers are never thinned away."""
    thinned = list(
        Decision.objects.filter(pk__in=last_decisions(service, since=since, until=until, bucket_s=bucket_s))
        .order_by("tick")
        .values("id", "tick", "desired")
    )
    changed = list(
        Decision.objects.filter(service=service, tick__gte=since, tick__lte=until, changed=True)
        .order_by("-tick")
        .values("id", "tick", "desired", "summary")[:200]
    )[::-1]
    return {
        "decision_ts": [d["tick"] for d in thinned],
        "desired": [d["desired"] for d in thinned],
        "changes": [
            {"id": d["id"], "ts": d["tick"], "desired": d["desired"], "summary": d["summary"]} for d in changed
        ],
    }


# Sources report as seldom as once a minute (CloudWatch's period, the demo's seeded history): a bucket shorter than
# that has none of a service's samples between two of its reports, and at the live edge the newest bucket has only
# the services that have reported in it so far. A service's value holds over such buckets, for this long at most,
# so that a service that stops reporting leaves the stack instead of being drawn on at its last count.
FLEET_HOLD = timedelta(minutes=2)


def held_buckets(bucket: timedelta) -> int:
    """How many empty chart buckets in a row a value holds over: FLEET_HOLD's worth, at least one."""
    return max(1, math.ceil(FLEET_HOLD / bucket))


def longest_joined(bucket: timedelta) -> timedelta:
    """The widest spacing of two chart points a line joins, on buckets of `bucket`: a value held over empty buckets
    as the fleet's charts hold one (`held_buckets`), a source that reports once a minute among them. Wider is a
    gap in the data (the worker stopped, the service was off), where a line breaks rather than draw across it."""
    return bucket * (held_buckets(bucket) + 1)


@dataclass(frozen=True)
class ObservedCost:
    """What a service cost over the part of a window its samples cover: a chart bucket without any adds no
    dollars and no time, so a window whose samples stopped (or began late) says so rather than reading as a
    cheaper one."""

    dollars: float
    observed: timedelta  # the time its buckets with a count (or one held, FLEET_HOLD) cover inside the window
    window: timedelta

    @property
    def partial(self) -> bool:
        # A source reporting once a minute leaves up to a minute before its first report in a window unsampled:
        # short of it by no more than the hold, a window counts as whole.
        return self.window - self.observed > FLEET_HOLD


def observed_cost(
    starts: list[datetime], cost_per_hour: list[float | None], *, bucket: timedelta, since: datetime, until: datetime
) -> ObservedCost:
    """Dollars over [since, until] from buckets of `bucket` starting at `starts` (the area under a cost chart):
    each bucket with a cost counted for the part of it inside the window, one without for nothing."""
    dollars, observed = 0.0, timedelta(0)
    for start, per_hour in zip(starts, cost_per_hour, strict=True):
        inside = min(start + bucket, until) - max(start, since)
        if per_hour is not None and inside > timedelta(0):
            dollars += per_hour * inside.total_seconds() / 3600.0
            observed += inside
    return ObservedCost(dollars=dollars, observed=observed, window=until - since)


@dataclass(frozen=True)
class ServiceBuckets:
    """One service's metrics on the fleet's common buckets; None where it reported nothing (nor held a value)."""

    service: Service
    provisioned: list[float | None]  # the mean of the bucket's samples, as are ready and rps
    ready: list[float | None]
    rps: list[float | None]
    p95_ms: list[float | None]  # the highest in the bucket: a breach within it stays visible

    @property
    def cost_per_hour(self) -> list[float | None]:
        price = self.service.price_per_replica_hour
        return [None if n is None else n * price for n in self.provisioned]

    @property
    def p95_share_of_limit(self) -> list[float | None]:
        """p95 as a share of this service's own latency limit (the SLO guard's): 1.0 is at the limit."""
        limit = self.service.slo_latency_ms
        return [None if ms is None else ms / limit for ms in self.p95_ms]


def _fleet_total(columns: list[list[float | None]]) -> list[float | None]:
    """Per bucket, the sum over the services that have a value there; None where none has."""
    return [
        None if all(v is None for v in bucket) else sum(v for v in bucket if v is not None)
        for bucket in zip(*columns, strict=True)
    ]


@dataclass(frozen=True)
class FleetTimeseries:
    """Every service that reported in [since, until], on common time buckets of one length."""

    since: datetime
    until: datetime
    bucket: timedelta
    ts: list[datetime]  # each bucket's start: evenly spaced by `bucket`
    services: list[ServiceBuckets]

    @property
    def total_ready(self) -> list[float | None]:
        return _fleet_total([s.ready for s in self.services])

    @property
    def total_provisioned(self) -> list[float | None]:
        return _fleet_total([s.provisioned for s in self.services])

    @property
    def total_rps(self) -> list[float | None]:
        return _fleet_total([s.rps for s in self.services])

    @property
    def total_cost_per_hour(self) -> list[float | None]:
        return _fleet_total([s.cost_per_hour for s in self.services])

    @property
    def service_costs(self) -> list[ObservedCost]:
        """Each service's dollars over [since, until] (the area of its band in the stacked cost chart) and the
        time its samples cover, in the order of `services`."""
        return [
            observed_cost(self.ts, s.cost_per_hour, bucket=self.bucket, since=self.since, until=self.until)
            for s in self.services
        ]

    @property
    def total_cost(self) -> float:
        """Dollars over [since, until]: the area under the stacked cost chart, from what was sampled only (see
        `service_costs` for how much of the range that covers)."""
        return sum(cost.dollars for cost in self.service_costs)


def fleet_timeseries(
    *, since: datetime, until: datetime, max_points: int = CHART_POINTS, use_rollups: bool = True
) -> FleetTimeseries:
    """Replicas, request rate, p95 and cost of every service on common buckets, for the fleet charts.

    1. The bucket is the range over max_points, never shorter than a tick (each service samples once a tick,
       each at its own instant), from a minute up a whole number of rollups (`chart_bucket_s`), in whole
       seconds from the epoch, so a bucket is the same from poll to poll.
    2. One query loads the services; `chart_sums` sums their samples by bucket, from the rollups where the
       bucket allows and they are settled, from the samples elsewhere (a couple of queries). It names the
       services, though it reads them all: the indexes lead with the service, and a range of times alone is a
       full scan (a quarter of a second over four million samples, against a few milliseconds).
    3. Each service's values (means, the highest p95) go on the fleet's buckets, from the first any service
       has to `until`'s, held over its empty buckets for FLEET_HOLD at most.
    """
    bucket_s = chart_bucket_s(until - since, max_points=max_points, tick_s=settings.TICK_SECONDS)
    fleet = list(Service.objects.all())
    by_service = chart_sums([s.pk for s in fleet], since=since, until=until, bucket_s=bucket_s, use_rollups=use_rollups)
    bucket = timedelta(seconds=bucket_s)
    if not by_service:
        return FleetTimeseries(since=since, until=until, bucket=bucket, ts=[], services=[])
    first = min(min(buckets) for buckets in by_service.values())
    last = int(until.timestamp() // bucket_s)
    hold = held_buckets(bucket)
    services = []
    for service in (s for s in fleet if s.pk in by_service):
        buckets = by_service[service.pk]
        columns: dict[str, list[float | None]] = {"provisioned": [], "ready": [], "rps": [], "p95_ms": []}
        held: dict[str, float | None] = dict.fromkeys(columns)
        held_for = dict.fromkeys(columns, 0)
        for k in range(first, last + 1):
            sums = buckets.get(k)
            found = (
                dict.fromkeys(columns)
                if sums is None
                else {"provisioned": sums.provisioned, "ready": sums.ready, "rps": sums.rps, "p95_ms": sums.p95_ms_max}
            )
            for key, value in found.items():
                if value is not None:
                    held[key], held_for[key] = value, 0
                    columns[key].append(value)
                elif held[key] is not None and held_for[key] < hold:
                    held_for[key] += 1
                    columns[key].append(held[key])
                else:
                    columns[key].append(None)
        services.append(ServiceBuckets(service=service, **columns))
    ts = [datetime.fromtimestamp(k * bucket_s, tz=UTC) for k in range(first, last + 1)]
    return FleetTimeseries(since=since, until=until, bucket=bucket, ts=ts, services=services)


def service_cost(
    service: Service, *, since: datetime, until: datetime, max_points: int = CHART_POINTS, use_rollups: bool = True
) -> ObservedCost:
    """Dollars over [since, until] and the time its samples cover: the area under the service's cost chart for
    that range, read as the chart reads it (`chart_sums`: the settled rollups, then the samples after them)."""
    bucket_s = chart_bucket_s(until - since, max_points=max_points, tick_s=settings.TICK_SECONDS)
    sums = chart_sums([service.pk], since=since, until=until, bucket_s=bucket_s, use_rollups=use_rollups)
    buckets = sorted(sums.get(service.pk, {}).items())
    price = service.price_per_replica_hour
    return observed_cost(
        [datetime.fromtimestamp(k * bucket_s, tz=UTC) for k, _ in buckets],
        [None if b.provisioned is None else b.provisioned * price for _, b in buckets],
        bucket=timedelta(seconds=bucket_s),
        since=since,
        until=until,
    )


def demo_shift_weeks(now: datetime | None = None) -> int:
    """The weeks the demo's games to come are shifted by, for the banner that says they are not real; 0 once
    none is to come. An import removes those and keeps the played ones (the record the history ran under),
    which do not make the imported games to come any less real."""
    upcoming = Game.objects.exclude(shifted_weeks=0).filter(tip_utc__gt=now or datetime.now(UTC))
    return int(upcoming.values_list("shifted_weeks", flat=True).first() or 0)


def decision_for_view(decision_id: int) -> Decision | None:
    return Decision.objects.select_related("service").filter(pk=decision_id).first()


@dataclass(frozen=True)
class PrunedDecision:
    """A decision no longer stored because it outlived DECISION_RETENTION_DAYS, with what the audit log
    recorded about it (nothing when it neither changed capacity nor was blocked from changing it, or when
    those events were archived)."""

    decision_id: int
    kept_days: int
    events: list[AuditEvent]

    @property
    def tick(self) -> datetime | None:
        # The decision's own event is recorded at its tick; an actuation's follows within the tick.
        return self.events[0].created_at if self.events else None

    @property
    def service_label(self) -> str:
        first = next((e for e in self.events if e.service_id is not None), None)
        if first is None:
            return ""
        return first.service.display_name if first.service is not None else f"service #{first.service_id}"


def decision_pruned(decision_id: int, *, now: datetime) -> PrunedDecision | None:
    """The decision `decision_id` as far as it is known after a prune; None when it is stored, or when
    nothing says it ever was (an id never given out: a plain 404).

    With audit events about it, it was pruned when they are older than the retention. Without, it was when
    its id is older than every decision kept: ids are given out in the order decisions are recorded, and
    the prune deletes the oldest."""
    if Decision.objects.filter(pk=decision_id).exists():
        return None
    kept_days = settings.DECISION_RETENTION_DAYS
    events = list(
        AuditEvent.objects.filter(object_type="decision", object_id=str(decision_id))
        .select_related("service")
        .order_by("id")
    )
    if events:
        pruned = events[0].created_at < now - timedelta(days=kept_days)
    else:
        oldest_kept = Decision.objects.order_by("pk").values_list("pk", flat=True).first()
        pruned = oldest_kept is not None and 0 < decision_id < oldest_kept
    return PrunedDecision(decision_id, kept_days, events) if pruned else None


def decisions_not_stored(decision_ids: set[int]) -> set[int]:
    """Those of `decision_ids` no longer stored (past DECISION_RETENTION_DAYS): one query for a page of links."""
    return decision_ids - set(Decision.objects.filter(pk__in=decision_ids).values_list("pk", flat=True))


def decision_neighbours(decision: Decision) -> tuple[Decision | None, Decision | None]:
    """The service's decisions just before and just after this one (for stepping through the timeline)."""
    rows = Decision.objects.filter(service_id=decision.service_id).only("id", "tick")
    earlier = rows.filter(tick__lt=decision.tick).order_by("-tick").first()
    later = rows.filter(tick__gt=decision.tick).order_by("tick").first()
    return earlier, later


def decision_metric_window(decision: Decision, *, before_s: float = 300.0, after_s: float = 0.0) -> list[MetricSample]:
    """The samples the engine had stored up to the decision's tick (and a little before, for context)."""
    return list(
        MetricSample.objects.filter(
            service_id=decision.service_id,
            ts__gt=decision.tick - timedelta(seconds=before_s),
            ts__lte=decision.tick + timedelta(seconds=after_s),
        ).order_by("ts")
    )


def decision_audit_events(decision: Decision) -> QuerySet[AuditEvent]:
    return AuditEvent.objects.filter(object_type="decision", object_id=str(decision.pk)).order_by("id")


def last_decisions(service: Service, *, since: datetime, until: datetime, bucket_s: int) -> list[int]:
    """The newest decision of each chart bucket from `since` to `until` (ids, which grow with the tick): what the
    charts draw of a range holding more decisions than points (a week at a 15 s tick is 40,320 a service).
    Grouped in the database on the (service, tick) index, so no decision's explanation is read."""
    return list(
        Decision.objects.filter(service=service, tick__gte=since, tick__lte=until)
        .annotate(bucket=bucket_number("tick", bucket_s))
        .values("bucket")
        .annotate(last=Max("id"))
        .order_by()
        .values_list("last", flat=True)
    )


def forecast_series(
    service: Service, *, since: datetime, until: datetime, max_points: int = CHART_POINTS
) -> dict[str, list[Any]]:
    """The demand decisions forecast, placed at the instant each forecast for (to draw beside actual demand).

    One decision a chart bucket, its newest (`last_decisions`), so that a week reads a few hundred explanations
    rather than every one (about 0.7 s a service at a 15 s tick); it reads only the forecast's `ts` and `rps`
    out of them. A decision without a forecast (or with one missing either key) is skipped, and its bucket has
    no point.
    """
    bucket_s = chart_bucket_s(until - since, max_points=max_points, tick_s=settings.TICK_SECONDS)
    rows = list(
        Decision.objects.filter(
            pk__in=last_decisions(service, since=since, until=until, bucket_s=bucket_s),
            explanation__forecast__rps__isnull=False,
        )
        .order_by("tick")
        .values_list("tick", KT("explanation__forecast__ts"), KT("explanation__forecast__rps"))
    )
    points: dict[datetime, float] = {}
    for tick, raw_ts, raw_rps in rows:
        try:
            rps = float(raw_rps)
        except (TypeError, ValueError):
            continue
        at = parse_ts(raw_ts) or tick
        points[at] = rps  # the latest decision's forecast for an instant wins
    ordered = sorted(points.items())
    return {"ts": [t for t, _ in ordered], "rps": [r for _, r in ordered]}


def sample_near(service: Service, at: datetime, *, within_s: float = 60.0) -> MetricSample | None:
    """The stored sample closest to `at` (within `within_s`), e.g. the actual demand at a forecast's instant."""
    window = MetricSample.objects.filter(
        service=service, ts__gte=at - timedelta(seconds=within_s), ts__lte=at + timedelta(seconds=within_s)
    )
    return min(window, key=lambda s: abs((s.ts - at).total_seconds()), default=None)


def parse_ts(raw: Any) -> datetime | None:
    """A timestamp from an explanation (ISO string or epoch seconds), timezone-aware; None if it is not one."""
    if isinstance(raw, datetime):
        return raw
    if isinstance(raw, int | float):
        return datetime.fromtimestamp(raw, tz=UTC)
    if isinstance(raw, str) and raw:
        try:
            parsed = datetime.fromisoformat(raw)
        except ValueError:
            return None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return None


def policy_revisions(service: Service) -> list[PolicyRevision]:
    return list(PolicyRevision.objects.filter(service=service).select_related("actor_user").order_by("-version"))
