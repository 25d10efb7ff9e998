"""The rules: each looks at the observation (and the calendar) and recommends a replica count.

Every rule returns a RuleResult with the inputs it used, so a decision can say
which rule asked for what and why. The engine takes the largest recommendation.
"""

from __future__ import annotations

import itertools
import math
from bisect import bisect_left
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from scaling.policy.capacity import MAX_COUNT, replica_capacity_rps, replicas_for
from scaling.policy.forecast import (
    PROFILE_BIN_MIN,
    PROFILE_START_MIN,
    RISING_SLOPE_PER_S,
    SURPRISE_BUCKET_MIN,
    SURPRISE_QUANTILE,
    TREND_WINDOW_S,
    Forecaster,
    SurpriseSource,
    default_forecaster,
    games_near,
    profile_value,
)
from scaling.policy.signals import Observation
from scaling.policy.types import EngineInput, GameSpec, MetricPoint, RuleResult, ServiceSpec

EASTERN = ZoneInfo("America/New_York")
WITHIN_TOLERANCE = "within tolerance"


def _ceil(x: float) -> int:
    return min(max(math.ceil(x - 1e-9), 0), MAX_COUNT)


def size_for(rps: float, inp: EngineInput) -> int:
    """Replicas for `rps` at the policy's sizing target; at the SLO target itself while that needs no more
    than `low_count_replicas` (one replica is a large step there, and such steps carry few requests)."""
    params = inp.params
    if params.low_count_replicas > 0:
        at_slo = replicas_for(rps, inp.service)
        if at_slo <= params.low_count_replicas:
            return at_slo
    return replicas_for(rps, inp.service, params.sizing_target)


def target_tracking(inp: EngineInput, obs: Observation) -> list[RuleResult]:
    """HPA-style: ceil(observed total / per-replica target) for each metric with a target; hold within tolerance."""
    params, latest = inp.params, obs.latest
    current = max(inp.provisioned, 1)
    cap = replica_capacity_rps(inp.service)
    results: list[RuleResult] = []

    def track(rule: str, observed_total: float, per_replica_target: float, inputs: dict[str, object]) -> None:
        needed = observed_total / per_replica_target
        ratio = needed / current
        within = abs(ratio - 1.0) <= params.tolerance
        # Within tolerance the rule holds the count the ratio was taken against: one replica when none run
        # and there is load to serve (holding none would ask for fewer replicas under more load).
        held = current if needed > 0 else inp.provisioned
        results.append(
            RuleResult(
                rule=rule,
                replicas=held if within else _ceil(needed),
                inputs={**inputs, "ratio": round(ratio, 4)},
                note=WITHIN_TOLERANCE if within else "",
            )
        )

    if params.target_utilization > 0:
        track(
            "target_utilization",
            obs.rps,
            params.target_utilization * cap,
            {
                "rps": round(obs.rps, 3),
                "target_utilization": params.target_utilization,
                "capacity_rps_per_replica": round(cap, 3),
                "utilization": _round(latest.utilization),
            },
        )
    if params.target_rps_per_replica > 0:
        track(
            "target_rps_per_replica",
            obs.rps,
            params.target_rps_per_replica,
            {"rps": round(obs.rps, 3), "target_rps_per_replica": params.target_rps_per_replica},
        )
    if params.target_in_flight_per_replica > 0 and latest.in_flight is not None:
        track(
            "target_in_flight_per_replica",
            latest.in_flight,
            params.target_in_flight_per_replica,
            {
                "in_flight": round(latest.in_flight, 3),
                "target_in_flight_per_replica": params.target_in_flight_per_replica,
            },
        )
    return results


def model_sizing(inp: EngineInput, obs: Observation) -> RuleResult:
    """Size for the observed rate (the newer of window and short window) with the M/M/c model and the SLO."""
    rate = max(obs.rps, obs.short_rps)
    sized = rate * (1.0 + inp.params.reactive_headroom)
    return RuleResult(
        rule="serving_model",
        replicas=size_for(sized, inp),
        inputs={
            "rps": round(obs.rps, 3),
            "short_rps": round(obs.short_rps, 3),
            "headroom": inp.params.reactive_headroom,
            "sized_rps": round(sized, 3),
            "slo_latency_ms": inp.service.slo_latency_ms,
            "slo_target": inp.service.slo_target,
        },
    )


GUARD_LATENCIES = ("p95_ms", "p99_ms")  # the percentiles the SLO guard holds to the SLO's latency limit


def slo_breach(spec: ServiceSpec, point: MetricPoint) -> dict[str, float]:
    """The observed signals that break the SLO (empty when none does)."""
    breaches: dict[str, float] = {}
    for name in GUARD_LATENCIES:
        value = getattr(point, name)
        if value is not None and value > spec.slo_latency_ms:
            breaches[name] = round(float(value), 3)
    if point.error_rate is not None and point.error_rate > 1.0 - spec.slo_target:
        breaches["error_rate"] = round(float(point.error_rate), 6)
    return breaches


def slo_guard(inp: EngineInput, obs: Observation) -> RuleResult | None:
    """Latency or errors above the SLO: scale out to what the model says meets the SLO at the observed rate,
    and never ask for fewer than are running: a breached SLO says the model's count does not serve this
    load, so fewer replicas cannot be the cure."""
    breaches = slo_breach(inp.service, obs.latest)
    if not breaches:
        return None
    rate = max(obs.rps, obs.short_rps, obs.stable_rps)
    sized = rate * (1.0 + inp.params.reactive_headroom)
    needed = size_for(sized, inp)
    return RuleResult(
        rule="slo_guard",
        replicas=max(needed, inp.provisioned),
        inputs={
            **breaches,
            "slo_latency_ms": inp.service.slo_latency_ms,
            "slo_target": inp.service.slo_target,
            "rps": round(rate, 3),
            "ready": inp.ready,
            "model_replicas": needed,
            **({"model_below_running": True} if needed < inp.provisioned else {}),
        },
        note="SLO breached",
    )


def panic(inp: EngineInput, obs: Observation) -> RuleResult | None:
    """Knative-style panic: the short-window rate needs ≥ threshold × ready replicas, or a surge the
    calendar does not explain (`_surge`).

    While any sample within the panic window met that, recommend at least the current
    count (never scale in while panicking) and size for the short-window rate.
    """
    params = inp.params
    if params.panic_threshold <= 0:
        return None
    ready = max(inp.ready, 1)
    needed_now = size_for(obs.short_rps * (1.0 + params.reactive_headroom), inp)
    surge = _surge(inp, obs, needed_now)
    over_threshold = needed_now >= params.panic_threshold * ready
    triggered_at: datetime | None = None
    earlier: _Trigger | None = None
    if surge.surging or over_threshold:
        triggered_at = obs.latest.ts
    elif params.panic_window_s > 0:
        earlier = _panicked_within(inp, obs, ready)
        triggered_at = earlier.ts if earlier is not None else None
    if triggered_at is None:
        return None
    # What set the count, for the sentence: the short-window rate alone, with the panic headroom (entering
    # panic), the surge multiple of the rate before it, or the current count (no scale-in while panicking).
    sized, sized_by = needed_now, "short_window"
    if triggered_at == obs.latest.ts:
        sized = size_for(obs.short_rps * (1.0 + params.reactive_headroom + params.panic_headroom), inp)
        sized_by = "panic_headroom"
        if (
            surge.base_rps is not None
            and (on_surge := size_for(params.panic_surge_multiple * surge.base_rps, inp)) > sized
        ):
            sized, sized_by = on_surge, "surge_multiple"
    if inp.provisioned > sized:
        sized, sized_by = inp.provisioned, "held"
    return RuleResult(
        rule="panic",
        replicas=sized,
        inputs={
            "short_rps": round(obs.short_rps, 3),
            "needed": needed_now,
            "ready": inp.ready,
            "sized_by": sized_by,
            "panic_headroom": params.panic_headroom,
            "panic_threshold": params.panic_threshold,
            "surge": surge.surging,
            "triggered_at": triggered_at.isoformat(),
            "triggered_by": _triggered_by(surge, over_threshold),
            **({"unforecast_surge_over_rps": round(surge.over_rps, 3)} if surge.over_rps is not None else {}),
            # What made it a surge, against its limit: so the sentence can say why it panicked.
            **(
                {"panic_ratio": surge.limit, "panic_ratio_from": surge.limit_from}
                if surge.surging and surge.over_rps is not None
                else {}
            ),
            **(
                {"before_rps": round(surge.before_rps, 3), "panic_surge_ratio": params.panic_surge_ratio}
                if surge.surging and surge.over_rps is None and surge.before_rps is not None
                else {}
            ),
            **({"calendar_unlearned": True} if surge.surging and surge.guessed else {}),
            **(
                {
                    "panic_window_s": params.panic_window_s,
                    "triggered_short_rps": round(earlier.short_rps, 3),
                    "triggered_needed": earlier.needed,
                    "triggered_ready": earlier.ready,
                }
                if earlier is not None
                else {}
            ),
            **({"quiet_hours": True} if surge.surging and surge.quiet else {}),
            **({"calendar_smooth": True} if surge.surging and surge.smooth and not surge.quiet else {}),
            **(
                {
                    "surge_base_rps": round(surge.base_rps, 3),
                    "surge_base_from": surge.base_from,
                    "surge_multiple": params.panic_surge_multiple,
                }
                if surge.base_rps is not None
                else {}
            ),
        },
        note="panicking: no scale-in",
    )


def _triggered_by(surge: _Surge, over_threshold: bool) -> list[str]:
    """What set panic off this tick, in the order the sentence says it: a surge over the calendar's expectation
    ("calendar") or, with no forecast for now, over the minute or two before ("jump"); the short-window rate
    needing the threshold times the ready count ("threshold"); else a sample within the panic window ("earlier")."""
    causes = []
    if surge.surging:
        causes.append("calendar" if surge.over_rps is not None else "jump")
    if over_threshold:
        causes.append("threshold")
    return causes or ["earlier"]


@dataclass(frozen=True)
class _Surge:
    """The breaking-news test on the newest slice, and what a surge is sized on."""

    surging: bool
    quiet: bool = False  # no game on the calendar near
    smooth: bool = False  # the calendar expects no jump near now
    over_rps: float | None = None  # what the calendar expected, when the slice was well above it
    base_rps: float | None = None  # the surge multiple applies to this rate (surging only)
    base_from: str = "before"  # ... the minute or two before the surge, or the "calendar" at arrival
    limit: float = 0.0  # the multiple of the calendar's expectation that is a surge ...
    limit_from: str = ""  # ... and the parameter it came from (quiet hours, no jump near, or elsewhere)
    before_rps: float | None = None  # the mean rate of the minute or two before the newest slice
    guessed: bool = False  # a game near and no learned model: the calendar's expectation was not read


def _surge(inp: EngineInput, obs: Observation, needed_now: int) -> _Surge:
    """A sudden surge (breaking news): the newest slice well above what the calendar expects, or — where the
    calendar has nothing to say — well above the minute or two before it, and (outside quiet hours) needing
    at least the replicas ready: a fleet with none to spare is overloaded by the next slice of a surge. A
    scheduled game's quarter-end or final-buzzer jump is expected: no surge."""
    params = inp.params
    latest_s, points_s = obs.latest_s, obs.points_s
    before = [
        m.rps
        for t, m in zip(points_s, obs.points, strict=True)
        if m.rps is not None and SURGE_BASE_FROM_S <= latest_s - t <= SURGE_BASE_TO_S
    ]
    over_before = (
        params.panic_surge_ratio > 0
        and bool(before)
        and obs.short_rps >= params.panic_surge_ratio * (sum(before) / len(before))
    )
    # With no game on the calendar near (quiet hours), no scheduled surge can explain a rise: a smaller one
    # counts, and it is caught as it starts, while the ready replicas still serve it.
    quiet = False
    if params.panic_quiet_ratio > 0 and (needed_now > inp.ready or (before and obs.short_rps > max(before))):
        quiet = not games_near(inp.games, inp.now - SURGE_GAMES_BACK, inp.now)
    if not (needed_now >= inp.ready or quiet):
        return _Surge(surging=False)
    calendar = _calendar_now(inp, obs, points_s, latest_s) if params.panic_unforecast_ratio > 0 else None
    # Without a learned model, the calendar near a game is the default shape's guess at the game's jumps (its
    # tip-off, quarter ends, finish), scaled by the minute before: a rise over it is the guess's error as often as
    # news, and a surge sized on its arrival tripled the guess (a new service went to its maximum at a midday
    # tip-off, for over twice what the traffic needed). There the test is the jump over the minute before, as
    # where no forecast covers the moment. With no game near, the guess is the baseline's slow drift: that it
    # still reads.
    guessed = calendar is not None and not calendar.forecaster.learned and bool(calendar.prepared) and not quiet
    if guessed:
        calendar = None
    expected = calendar.now if calendar is not None and math.isfinite(calendar.now) else None
    # Where the calendar expects no jump near now (no quarter end, tip-off or buzzer within two minutes), a
    # rise it does not explain is news at a lower multiple: the game-hours ratio allows for surges it mistimes.
    smooth = calendar is not None and calendar.jump <= SMOOTH_JUMP and params.panic_smooth_ratio > 0
    limit_from, ratio = (
        ("panic_quiet_ratio", params.panic_quiet_ratio)
        if quiet
        else ("panic_smooth_ratio", params.panic_smooth_ratio)
        if smooth
        else ("panic_unforecast_ratio", params.panic_unforecast_ratio)
    )
    unforecast = expected is not None and obs.short_rps >= ratio * expected
    # The jump over the minute before is the test only where no forecast covers the moment.
    surging = unforecast or (over_before and expected is None)
    base: float | None = None
    base_from = "before"
    if surging and before and params.panic_surge_multiple > 0:
        # Its first ticks see only the start of the rise: provision for the multiple of the rate before it,
        # or of what the calendar expects when the capacity ordered now is ready, if that is more.
        base = min(before)
        arrival = calendar.arrival(inp) if calendar is not None else math.inf
        if math.isfinite(arrival) and arrival > base:
            base, base_from = arrival, "calendar"
    return _Surge(
        surging=surging,
        quiet=quiet,
        smooth=smooth,
        over_rps=expected if unforecast else None,
        base_rps=base,
        base_from=base_from,
        limit=ratio,
        limit_from=limit_from,
        before_rps=sum(before) / len(before) if before else None,
        guessed=guessed,
    )


@dataclass(frozen=True)
class _Trigger:
    """A sample within the panic window that set panic off: its time, short-window rate, and the replicas
    that rate needed and were ready then."""

    ts: datetime
    short_rps: float
    needed: int
    ready: int


def _panicked_within(inp: EngineInput, obs: Observation, ready: int) -> _Trigger | None:
    """The newest sample within the panic window whose short-window rate needed ≥ threshold × the replicas
    ready then (None if none did): panic lasts that long after it."""
    params, window = inp.params, inp.service.metrics_window_s
    cap = replica_capacity_rps(inp.service)
    points_s = obs.points_s
    since_s = obs.latest_s - params.panic_window_s
    start = max(bisect_left(points_s, since_s) - 1, 0)
    triggered: _Trigger | None = None
    pts = list(zip(points_s[start:], obs.points[start:], strict=True))
    for (prev_s, prev), (cur_s, cur) in itertools.pairwise(pts):
        if cur_s < since_s:
            continue
        gap = cur_s - prev_s
        if prev.rps is None or cur.rps is None or not 0.0 < gap < window:
            continue
        short = max(prev.rps + (window / gap) * (cur.rps - prev.rps), 0.0)
        # Compare with the ready count of that moment (utilization = rate / ready capacity), as Knative does.
        ready_then = ready
        if cur.utilization and cur.utilization > 0:
            implied = cur.rps / (cur.utilization * cap)
            ready_then = max(round(min(implied, 1e6)), 1) if math.isfinite(implied) else ready
        needed = size_for(short * (1.0 + params.reactive_headroom), inp)
        if needed >= params.panic_threshold * ready_then:
            triggered = _Trigger(cur.ts, short, needed, ready_then)
    return triggered


@dataclass(frozen=True)
class _CalendarNow:
    """What the calendar forecast says around the newest slice, scaled as the minute or two before it ran."""

    now: float  # expected in the newest slice (inf when unknown)
    jump: float  # the unscaled forecast's highest over its lowest across SMOOTH_STEPS around the newest slice
    scale: float  # how the minute or two before ran against the forecast (inf when unknown)
    forecaster: Forecaster
    prepared: list[tuple[float, tuple[float, ...]]]  # the games near, through arrival

    def arrival(self, inp: EngineInput) -> float:
        """Expected when capacity ordered now is ready (inf when unknown): the highest over the tick after it
        and the look-ahead, as the forecast rule provisions, with the forecast's least headroom. Only a surge
        sized on it asks, so a quiet tick does not pay for it."""
        if not math.isfinite(self.scale):
            return math.inf
        arrival_s = inp.now.timestamp() + inp.service.provisioning_delay_s
        predict, prepared = self.forecaster.predict_epoch, self.prepared
        peak = max(predict(t, prepared) for t in _served_from(inp, arrival_s))
        return peak * self.scale * (1.0 + inp.params.forecast_headroom)


NEXT_GAMES_S = 3600.0  # a scale-in names the games tipping off within this long after its forecast
PEAK_STEP_S = 15.0  # the forecast's peak over what replicas ordered now will serve is read this often


def _served_from(inp: EngineInput, ready_s: float) -> list[float]:
    """The instants, about PEAK_STEP_S apart, from `ready_s` (when replicas ordered now are ready) through the
    tick after it and the look-ahead: where the forecast rule, and a surge sized on the calendar, read the
    peak those replicas must serve."""
    span_s = inp.service.tick_s + inp.params.forecast_lookahead_s
    points = max(int(span_s // PEAK_STEP_S), 1)
    return [ready_s + span_s * i / points for i in range(points + 1)]


def _calendar_now(inp: EngineInput, obs: Observation, points_s: tuple[float, ...], latest_s: float) -> _CalendarNow:
    """What the calendar expects now, and whether it expects a jump near now: a game's quarter-end surge is
    expected, breaking news is not."""
    forecaster = inp.forecaster or default_forecaster()
    span_s = inp.service.provisioning_delay_s + inp.service.tick_s + inp.params.forecast_lookahead_s
    through = inp.now + timedelta(seconds=span_s)  # the games a surge's arrival forecast may need
    prepared = forecaster.prepare(games_near(inp.games, inp.now - SURGE_GAMES_BACK, through))
    half_window_s = inp.service.metrics_window_s / 2
    seen = expected = 0.0
    for t, m in zip(points_s, obs.points, strict=True):
        if m.rps is not None and SURGE_BASE_FROM_S <= latest_s - t <= SURGE_BASE_TO_S:
            seen += m.rps
            expected += forecaster.predict_epoch(t - half_window_s, prepared)
    around = [forecaster.predict_epoch(latest_s + k * SMOOTH_STEP_S, prepared) for k in SMOOTH_STEPS]
    jump = max(around) / min(around) if min(around) > 1e-9 else math.inf
    if seen <= 0.0 or expected <= 1e-9:
        return _CalendarNow(math.inf, jump, math.inf, forecaster, prepared)
    scale = seen / expected
    now = forecaster.predict_epoch(latest_s - inp.service.tick_s / 2, prepared) * scale
    return _CalendarNow(now, jump, scale, forecaster, prepared)


def _eastern(t: datetime) -> str:
    return t.astimezone(EASTERN).strftime("%H:%M")


@lru_cache(maxsize=4096)
def game_label(game: GameSpec) -> str:
    tv = f" ({game.national_tv})" if game.national_tv.strip() else ""
    return f"{game.matchup}{tv} at {_eastern(game.tip_utc)} ET"


SURGE_BASE_FROM_S = 30.0  # the minute and a half before the newest sample is the surge's baseline
SURGE_BASE_TO_S = 120.0
SURGE_GAMES_BACK = timedelta(minutes=5)  # the games whose profiles can explain a surge now
# The calendar expects no jump near now when its forecast varies by at most SMOOTH_JUMP (highest / lowest)
# across two minutes either side of the newest slice. On the benchmark's four game-night traces, wherever a
# game's own surge (quarter end, halftime, tip-off, buzzer) outran the forecast by 1.3 x, the forecast moved
# 26 % or more there; the only smoother such ticks were a day's first pre-game ramp setting in, at 3 replicas.
SMOOTH_JUMP = 1.15
SMOOTH_STEP_S = 30.0
SMOOTH_STEPS = range(-4, 5)
TREND_SPACING_S = 55.0
WINDOW_POINTS = 4  # a window's mean rate is compared with the forecast averaged at this many points across it
MAX_TREND_GAIN = 1.0  # the trend may at most double tonight's ratio


@dataclass(frozen=True)
class TonightRatio:
    """How tonight compares with the learned shape: observed / predicted over the newest samples, held within
    the policy's correction bounds once learned (`level`; `measured` before that), and how fast the ratio
    changes (`slope`, per second)."""

    level: float
    slope: float
    measured: float


def forecast_ratio(
    inp: EngineInput, obs: Observation, forecaster: Forecaster, prepared: list[tuple[float, tuple[float, ...]]]
) -> TonightRatio:
    """Observed / predicted over the newest samples — how tonight compares with the learned shape — and
    how fast that ratio changes (per second, from samples a minute apart; 0 without enough of them)."""
    half_window_s = inp.service.metrics_window_s / 2
    stamped = list(zip(obs.points_s, obs.points, strict=True))
    newest_s = obs.latest_s
    level = stamped[-4:]
    spaced: list[tuple[float, MetricPoint]] = []
    for t, m in reversed(stamped):
        if newest_s - t > TREND_WINDOW_S:
            break
        if not spaced or spaced[-1][0] - t >= TREND_SPACING_S:
            spaced.append((t, m))
    predicted: dict[float, float] = {}
    for t0, _ in (*level, *spaced):
        t = t0 - half_window_s
        if t not in predicted:
            predicted[t] = _window_mean(forecaster, prepared, t, inp.service.metrics_window_s)
    recent_obs = sum(max(m.rps or 0.0, 0.0) for _, m in level)
    recent_pred = sum(predicted[t - half_window_s] for t, _ in level)
    if recent_pred <= 1e-9:
        fallback = 1.0 if forecaster.learned else 0.0
        return TonightRatio(fallback, 0.0, fallback)
    measured = ratio = recent_obs / recent_pred
    if forecaster.learned:
        ratio = min(max(ratio, inp.params.forecast_correction_min), inp.params.forecast_correction_max)
    slope = 0.0
    series = []
    for t0, m in spaced:
        t = t0 - half_window_s
        if predicted[t] > 1e-9:
            series.append((t, max(m.rps or 0.0, 0.0) / predicted[t]))
    if len(series) >= 3:
        mean_t = sum(t for t, _ in series) / len(series)
        mean_r = sum(r for _, r in series) / len(series)
        var = sum((t - mean_t) ** 2 for t, _ in series)
        if var > 0:
            slope = sum((t - mean_t) * (r - mean_r) for t, r in series) / var
    return TonightRatio(ratio, slope, measured)


OVERTIME_AFTER_MIN = 2.0  # a game is judged from this far past its usual finish (newest window's middle) ...
OVERTIME_JUDGED_MIN = 32.0  # ... to this far: through an overtime and the finish after it
OVERTIME_FIT = 0.5  # overtime is read when it halves how badly tonight's ratio fits ...
OVERTIME_POINTS = 5  # ... over at least this many samples a minute apart ...
OVERTIME_EFFECT = 0.06  # ... and changes the newest window's forecast by at least this fraction.
# A ratio fits worse the more it drifts (its variance) and the further it lies from 1 (this weight times its
# log squared): a drift of a few percent weighs as much as tonight running a quarter off the learned profile.
OVERTIME_LEVEL_WEIGHT = 0.05


def detect_overtimes(
    inp: EngineInput, obs: Observation, forecaster: Forecaster, games: list[GameSpec]
) -> dict[str, int]:
    """The games that seem to run into overtime (game id -> 1), read from the metric window.

    Past a game's usual finish, a game that ended fades while one in overtime holds its level: whichever
    is true keeps tonight's ratio (observed / forecast) steady over the last few minutes, and the other
    makes it drift. A game is taken to be in overtime when that fits tonight's ratio at least twice as well
    (OVERTIME_FIT): steadier, and no less likely a level for tonight (an overtime adds demand, so it must
    explain some that the usual finish does not); games are judged one at a time, oldest tip first, each given
    the ones before it. A second overtime (one game in 300) reads as one: past the first one's end, its late
    finish is nearer the truth than the usual one."""
    if not forecaster.learned:
        return {}
    half_window_s = inp.service.metrics_window_s / 2
    newest_s = obs.latest_s - half_window_s
    candidates = []
    for g in games:
        finish = forecaster.finish_index(g.tier)
        if finish is None:
            continue
        past_finish = (newest_s - g.tip_s) / 60.0 - (PROFILE_START_MIN + finish * PROFILE_BIN_MIN)
        if OVERTIME_AFTER_MIN <= past_finish < OVERTIME_JUDGED_MIN:
            candidates.append(g)
    if not candidates:
        return {}
    samples: list[tuple[float, float]] = []
    for t, m in reversed(list(zip(obs.points_s, obs.points, strict=True))):
        if m.rps is not None and (not samples or samples[-1][0] - (t - half_window_s) >= TREND_SPACING_S):
            samples.append((t - half_window_s, max(m.rps, 0.0)))
    if len(samples) < OVERTIME_POINTS:
        return {}

    def fit(overtimes: dict[str, int]) -> tuple[float, float]:
        """How badly tonight's ratio fits (its relative variance over the samples, plus OVERTIME_LEVEL_WEIGHT
        × its log mean squared; inf without a forecast), and the newest sample's forecast."""
        prepared = forecaster.prepare(games, overtimes)
        forecasts = [_window_mean(forecaster, prepared, t, inp.service.metrics_window_s) for t, _ in samples]
        ratios = [rps / f for (_, rps), f in zip(samples, forecasts, strict=True) if f > 1e-9]
        mean = sum(ratios) / len(ratios) if len(ratios) == len(samples) else 0.0
        if mean <= 0.0:
            return math.inf, forecasts[0]
        variance = sum((r - mean) ** 2 for r in ratios) / (len(ratios) * mean * mean)
        return variance + OVERTIME_LEVEL_WEIGHT * math.log(mean) ** 2, forecasts[0]

    found: dict[str, int] = {}
    best, newest = fit(found)
    if not math.isfinite(best):
        return found
    for g in sorted(candidates, key=lambda g: (g.tip_utc, g.game_id)):
        trial = {**found, g.game_id: 1}
        value, predicted = fit(trial)
        if value < OVERTIME_FIT * best and abs(predicted - newest) >= OVERTIME_EFFECT * newest:
            found, best, newest = trial, value, predicted
    return found


def _window_mean(
    forecaster: Forecaster, prepared: list[tuple[float, tuple[float, ...]]], mid: float, window_s: float
) -> float:
    """The forecast averaged over a metric window centred on `mid` (what a window's mean rate compares with)."""
    step = window_s / WINDOW_POINTS
    start = mid - window_s / 2 + step / 2
    return sum(forecaster.predict_epoch(start + i * step, prepared) for i in range(WINDOW_POINTS)) / WINDOW_POINTS


def prewarm(inp: EngineInput, obs: Observation) -> tuple[RuleResult, dict[str, object]] | None:
    """Provision now for the demand forecast over [now + delay, now + delay + tick].

    Replicas asked for now serve from now + provisioning delay until the next tick's
    replicas arrive, so that interval is what counts. Replicas already running are
    kept for the forecast peak before then, since they could not come back in time.
    """
    if not inp.params.prewarm:
        return None
    spec, params = inp.service, inp.params
    forecaster = inp.forecaster or default_forecaster()
    delay_s, tick_s = spec.provisioning_delay_s, spec.tick_s
    lookback = timedelta(seconds=spec.metrics_lag_s + 2 * spec.metrics_window_s + 120)
    ahead = timedelta(seconds=delay_s + tick_s + params.forecast_lookahead_s)
    games = games_near(inp.games, inp.now - lookback, inp.now + ahead)
    overtimes = detect_overtimes(inp, obs, forecaster, games) if params.detect_overtime else {}
    prepared = forecaster.prepare(games, overtimes)
    tonight = forecast_ratio(inp, obs, forecaster, prepared)
    rising = tonight.slope > RISING_SLOPE_PER_S
    if tonight.level <= 0.0:
        return None
    now_s = inp.now.timestamp()
    observed_s = obs.observed_at.timestamp()
    predict = forecaster.predict_epoch

    def reading(profiles: list[tuple[float, tuple[float, ...]]], ratio: TonightRatio) -> Reading:
        """A reading of tonight: (profiles, ratio, trend per second, the trend's cap). The trend is
        extrapolated, and never lowers the forecast."""
        level = ratio.level
        return profiles, level, max(ratio.slope, 0.0) * params.forecast_trend, level * MAX_TREND_GAIN

    readings = [reading(prepared, tonight)]
    ratios = [tonight]
    if overtimes:
        # An overtime read only ever adds capacity: the forecast is also the usual finish's, whichever is higher.
        usual = forecaster.prepare(games)
        usual_tonight = forecast_ratio(inp, obs, forecaster, usual)
        if usual_tonight.level > 0.0:
            readings.append(reading(usual, usual_tonight))
            ratios.append(usual_tonight)

    def corrected(t: float) -> float:
        best = 0.0
        for profiles, level, slope, max_gain in readings:
            gain = slope * (t - observed_s) if t > observed_s else 0.0
            rate = predict(t, profiles) * (level + (gain if gain < max_gain else max_gain))
            best = max(best, rate)
        return best

    peak_s, peak_rps = now_s + delay_s, -math.inf
    for t in _served_from(inp, now_s + delay_s):
        rate = corrected(t)
        if rate > peak_rps:
            peak_s, peak_rps = t, rate
    horizon_s = peak_s - observed_s
    uncertainty, flat = params.forecast_uncertainty, params.forecast_headroom
    if not forecaster.learned:
        flat = max(flat, params.cold_start_headroom)
    surprise = forecaster.surprise_at(horizon_s, peak_s, prepared, rising=rising) * uncertainty
    headroom = 1.0 + max(flat, surprise)
    needed = size_for(peak_rps * headroom, inp)
    keep = 0
    near_rps, near_s = 0.0, now_s
    if inp.provisioned > needed:
        steps = max(math.ceil(delay_s / 30.0), 1)
        near_sized = 0.0
        for i in range(steps + 1):
            t = now_s + delay_s * i / steps
            rate = corrected(t)
            near_surprise = forecaster.surprise_at(t - observed_s, t, prepared, rising=rising) * uncertainty
            sized = rate * (1.0 + (near_surprise if near_surprise > flat else flat))
            if sized > near_sized:
                near_rps, near_sized, near_s = rate, sized, t
        keep = min(inp.provisioned, size_for(near_sized, inp))
    replicas = max(needed, keep)
    peak_at = inp.now + timedelta(seconds=peak_s - now_s)
    adds = [(profile_value(tip_s, profile, peak_s), g) for g, (tip_s, profile) in zip(games, prepared, strict=True)]
    contributing = [(c, g) for c, g in adds if c > 0]
    live = [g for _, g in sorted(contributing, key=lambda cg: (-cg[0], cg[1].tip_utc, cg[1].game_id))]
    forecast_replicas = size_for(peak_rps, inp)
    if surprise > flat:
        source = forecaster.surprise_source(horizon_s, peak_s, prepared, rising=rising)
        headroom_from = _headroom_source(source, games, uncertainty)
    elif forecaster.learned:
        headroom_from = "the policy's least headroom (forecast_headroom)"
    else:
        headroom_from = "cold start: no learned profile yet (cold_start_headroom)"
    # The forecast multiplied out, from the reading that gave the peak: predicted × ratio used = forecast_rps.
    used = _ratio_used(
        readings=readings,
        ratios=ratios,
        peak_s=peak_s,
        observed_s=observed_s,
        predict=predict,
        weight=params.forecast_trend,
    )
    inputs: dict[str, object] = {
        "forecast_at": peak_at.isoformat(),
        "forecast_rps": round(peak_rps, 3),
        **used,
        "ratio_rising": rising,
        "forecast_replicas": forecast_replicas,
        "headroom": round(headroom - 1.0, 4),
        "headroom_from": headroom_from,
        "headroom_replicas": needed - forecast_replicas,
        "learned": forecaster.learned,
        # The games whose traffic is in the forecast at its time, the largest share first (a game tipping after
        # it may be here for its pre-game rise); "next_games" below are those tipping after it, by tip-off.
        "games": [game_label(g) for g in live[:3]],
        "more_games": max(len(live) - 3, 0),
    }
    if keep > needed:
        inputs["kept_for_rps"] = round(near_rps, 3)
        inputs["kept_for_at"] = (inp.now + timedelta(seconds=near_s - now_s)).isoformat()
    if overtimes:
        inputs["overtime"] = [game_label(g) for g in games if g.game_id in overtimes]
        if len(readings) > 1:
            # Which finish gave the forecast: the overtime read only ever adds, so the usual finish may be higher.
            usual_won = _winning_reading(readings, peak_s, observed_s, predict) == 1
            inputs["forecast_finish"] = "usual" if usual_won else "overtime"
    if replicas < inp.provisioned:
        # Scaling in ahead of games: name them, so that a person sees they are known and pre-warmed for in time.
        upcoming = sorted(
            (g for g in inp.games if peak_s < g.tip_s <= peak_s + NEXT_GAMES_S), key=lambda g: (g.tip_s, g.game_id)
        )
        if upcoming:
            inputs["next_games"] = [game_label(g) for g in upcoming[:3]]
            inputs["more_next_games"] = max(len(upcoming) - 3, 0)
    forecast = {
        "ts": peak_at.isoformat(),
        "rps": round(peak_rps, 3),
        "replicas": needed,
        "predicted_rps": used["predicted_rps"],
        "ratio": used["ratio"],
        "trend_gain": used["trend_gain"],
        "ratio_used": used["ratio_used"],
        "learned": forecaster.learned,
    }
    note = "pre-warm" if live else ""
    return RuleResult(rule="forecast", replicas=replicas, inputs=inputs, note=note), forecast


# A reading of tonight: (profiles, ratio, trend per second, the trend's cap); and the forecaster's predict.
Reading = tuple[list[tuple[float, tuple[float, ...]]], float, float, float]
Predict = Callable[[float, list[tuple[float, tuple[float, ...]]]], float]


def _trend_gain(reading: Reading, t: float, observed_s: float) -> tuple[float, bool]:
    """What the trend adds to a reading's ratio at `t` (extrapolated from the newest window's middle), and
    whether the cap (MAX_TREND_GAIN × the ratio) cut it."""
    _, _, slope, max_gain = reading
    gain = slope * (t - observed_s) if t > observed_s else 0.0
    return (gain, False) if gain < max_gain else (max_gain, True)


def _winning_reading(readings: list[Reading], t: float, observed_s: float, predict: Predict) -> int:
    """The reading whose corrected forecast at `t` is the highest (the first on a tie), as `corrected` takes."""
    rates = [predict(t, r[0]) * (r[1] + _trend_gain(r, t, observed_s)[0]) for r in readings]
    return rates.index(max(rates))


def _ratio_used(
    *,
    readings: list[Reading],
    ratios: list[TonightRatio],
    peak_s: float,
    observed_s: float,
    predict: Predict,
    weight: float,
) -> dict[str, object]:
    """The forecast's factors at its peak, so that predicted_rps × ratio_used = forecast_rps: the ratio
    observed (held within the correction bounds: the measured one beside it when they cut it), its slope, the
    trend that slope weighted by forecast_trend adds over how far ahead it is extrapolated, and its cap."""
    k = _winning_reading(readings, peak_s, observed_s, predict)
    reading, tonight = readings[k], ratios[k]
    gain, capped = _trend_gain(reading, peak_s, observed_s)
    level = reading[1]
    used: dict[str, object] = {
        "predicted_rps": round(predict(peak_s, reading[0]), 3),
        "ratio": round(level, 4),
        **({"ratio_measured": round(tonight.measured, 4)} if tonight.measured != level else {}),
        "ratio_slope_per_min": round(tonight.slope * 60.0, 5),
        "forecast_trend": weight,
        "ratio_trend_per_min": round(reading[2] * 60.0, 5),
        "trend_ahead_s": round(max(peak_s - observed_s, 0.0), 1),
        "trend_gain": round(gain, 4),
        **({"trend_capped_at": round(reading[3], 4)} if capped else {}),
        "ratio_used": round(level + gain, 4),
    }
    return used


def _headroom_source(source: SurpriseSource | None, games: list[GameSpec], uncertainty: float) -> str:
    """Where the learned headroom came from, in words: the history's shortfall quantile at that horizon,
    in which phase of which game (or with no game near), and over how many games' phases, weighed by share."""
    if source is None:
        return "the learned forecast error"
    percentile = f"{SURPRISE_QUANTILE * 100:g}th-percentile"
    text = f"the {percentile} shortfall of the history's forecasts {source.horizon_s / 60:g} min ahead"
    if source.climbing:
        text += " where its ratio was climbing too"
    if source.game is None:
        text += ", with no game near"
    else:
        lo = PROFILE_START_MIN + source.bucket * SURPRISE_BUCKET_MIN
        hi = lo + SURPRISE_BUCKET_MIN
        label = game_label(games[source.game])
        phase = (
            f"{abs(hi):g} to {abs(lo):g} min before {label}"
            if hi <= 0
            else f"{lo:g} to {hi:g} min after {label} tipped"
        )
        if source.games > 1:
            text += f", weighed over {source.games} games' phases by their share of the forecast (the largest: {phase})"
        else:
            text += f", {phase}"
    if uncertainty != 1.0:
        text += f", × {uncertainty:g} (forecast_uncertainty)"
    return text


def _round(value: float | None) -> float | None:
    return None if value is None else round(float(value), 4)
