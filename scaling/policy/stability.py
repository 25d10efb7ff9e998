"""Shaping a recommendation into a change: scale out fast, scale in slowly, never flap.

Each step returns the count and, when it changed it, appends a Constraint.
"""

from __future__ import annotations

import itertools
import math
from datetime import timedelta

from scaling.policy.signals import Observation
from scaling.policy.types import Constraint, EngineInput

RISING_LOOKBACK_S = 60.0  # the rise is measured against the sample at least this much older than the newest


def stabilize(inp: EngineInput, recommendation: int, constraints: list[Constraint]) -> int:
    """HPA stabilization: scale in only to the highest, out only to the lowest, recommendation in the window."""
    params, current = inp.params, inp.provisioned
    if recommendation < current and (window := params.scale_down_window_s(inp.service.provisioning_delay_s)) > 0:
        recent, gap = _window_recommendations(inp, window)
        stabilized = min(max([recommendation, *recent]), current)
        if stabilized != recommendation:
            constraints.append(
                Constraint(
                    "scale_down_stabilization",
                    recommendation,
                    stabilized,
                    f"highest recommendation in the last {window:.0f} s was {max(recent)}{_standing_in(gap)}",
                )
            )
        return stabilized
    if recommendation > current and params.scale_up_stabilization_s > 0:
        window = params.scale_up_stabilization_s
        recent, gap = _window_recommendations(inp, window)
        stabilized = max(min([recommendation, *recent]), current)
        if stabilized != recommendation:
            constraints.append(
                Constraint(
                    "scale_up_stabilization",
                    recommendation,
                    stabilized,
                    f"lowest recommendation in the last {window:.0f} s was {min(recent)}{_standing_in(gap)}",
                )
            )
        return stabilized
    return recommendation


def _window_recommendations(inp: EngineInput, window_s: float) -> tuple[list[int], bool]:
    """The recommendations recorded in the last `window_s`, and whether they leave part of the window
    uncovered; if so the current count is counted among them.

    Ticks without fresh metrics, paused ticks and the ticks before a service existed record no recommendation;
    the current count stands in for them, as the HPA seeds a new autoscaler's window with the current count.
    Without it the first fresh sample after a metrics gap finds the window empty, and one sample scales the
    fleet in at once.
    """
    inside = [(age, r.replicas) for r in inp.recent if 0 <= (age := (inp.now - r.ts).total_seconds()) < window_s]
    recent = [replicas for _, replicas in inside]
    # Each tick records at its instant: more than a tick and a half without one (jitter allowed), between
    # now, the records and the window's start, is a gap.
    edges = [0.0, *sorted(age for age, _ in inside), window_s]
    gap = any(older - newer > 1.5 * inp.service.tick_s for newer, older in itertools.pairwise(edges))
    if gap:
        recent.append(inp.provisioned)
    return recent, gap


def _standing_in(gap: bool) -> str:
    return ", counting the current count for the ticks that recorded none" if gap else ""


def hold_while_rising(inp: EngineInput, obs: Observation, desired: int, constraints: list[Constraint]) -> int:
    """No scale-in while the observed rate is climbing (a close finish, a slow surge): the forecast may lag
    a climb it has not seen before, and replicas let go now take a provisioning delay to come back."""
    threshold = inp.params.scale_in_hold_rising
    if desired >= inp.provisioned or threshold <= 0:
        return desired
    newest_s = obs.latest_s
    older = [(t, m.rps) for t, m in zip(obs.points_s, obs.points, strict=True) if newest_s - t >= RISING_LOOKBACK_S]
    then_s, then_rps = older[-1] if older else (newest_s, None)
    if then_rps is None or then_rps <= 0:
        return desired
    short = obs.short_rps > obs.rps
    rate = obs.short_rps if short else obs.rps
    rise = rate / then_rps - 1.0
    if rise <= threshold:
        return desired
    # Enough digits that the rise reads as more than the threshold it passed (2.04 %, not "2.0 %, more than 2 %").
    digits = next((d for d in (1, 2, 3) if round(rise * 100, d) > threshold * 100), 4)
    # Name the two rates compared: the short-window rate extrapolates the newest samples, and can climb
    # where the samples themselves look flat.
    what = "short-window rate" if short else "observed rate"
    constraints.append(
        Constraint(
            "demand_rising",
            desired,
            inp.provisioned,
            f"{what} {rate:,.1f} rps is {rise:.{digits}%} above the {then_rps:,.1f} rps of the sample "
            f"{newest_s - then_s:.0f} s older, more than {threshold * 100:g}%",
        )
    )
    return inp.provisioned


def cooldown(inp: EngineInput, desired: int, constraints: list[Constraint]) -> int:
    """No scale-in until `scale_in_cooldown_s` after the last change in either direction."""
    period = inp.params.scale_in_cooldown_s
    if desired >= inp.provisioned or period <= 0:
        return desired
    last = max((t for t in (inp.last_scale_out_at, inp.last_scale_in_at) if t is not None), default=None)
    if last is not None and 0 <= (inp.now - last).total_seconds() < period:
        left = period - (inp.now - last).total_seconds()
        constraints.append(
            Constraint("scale_in_cooldown", desired, inp.provisioned, f"{period:.0f} s cooldown, {left:.0f} s left")
        )
        return inp.provisioned
    return desired


def count_at_period_start(inp: EngineInput, period_s: float) -> int:
    """The count at the start of the last `period_s`: the one set by the last decision at least a period ago.

    Without such a decision (a new service, or a metrics gap, whose ticks record nothing), the oldest count
    known inside the period: the count before its oldest decision, else that decision's own count. Taking
    the current count instead would start a new period every tick and compound the limit (10 → 20 → 40 → 80
    within one period of 100 %); the current count is left for when nothing at all is known.
    """
    cutoff = inp.now - timedelta(seconds=period_s)
    decided = [r for r in inp.recent if r.desired is not None]
    earlier = [r for r in decided if r.ts <= cutoff]
    if earlier:
        last = max(earlier, key=lambda r: r.ts)
        return last.desired if last.desired is not None else inp.provisioned
    if decided:
        oldest = min(decided, key=lambda r: r.ts)
        known = oldest.provisioned if oldest.provisioned is not None else oldest.desired
        return known if known is not None else inp.provisioned
    return inp.provisioned


def percent_step(base: int, percent: float) -> int:
    """The change `percent` of `base` allows, rounded in favour of the change as the HPA rounds (a 10 % step
    of 9 replicas is one, not none), and at least one replica whenever the percent allows any change: a
    small fleet, or one scaled to zero, must still be able to move."""
    if percent <= 0:
        return 0
    return max(math.ceil(base * percent / 100.0 - 1e-9), 1)


def _up_step(inp: EngineInput) -> tuple[int, int]:
    """The count the scale-out period started from, and the step its limit allows from there."""
    params = inp.params
    base = min(count_at_period_start(inp, params.scale_up_period_s), inp.provisioned)
    return base, max(params.scale_up_pods, percent_step(base, params.scale_up_percent))


def _down_step(inp: EngineInput) -> tuple[int, int]:
    """The count the scale-in period started from, and the step its limit allows from there."""
    params = inp.params
    base = max(count_at_period_start(inp, params.scale_down_period_s), inp.provisioned)
    return base, max(params.scale_down_pods, percent_step(base, params.scale_down_percent))


def scale_up_limit(inp: EngineInput) -> int:
    base, step = _up_step(inp)
    return max(base + step, inp.provisioned)


def scale_down_limit(inp: EngineInput) -> int:
    base, step = _down_step(inp)
    return min(base - step, inp.provisioned)


def _limit_detail(step: int, pods: int, percent: float, base: int, period_s: float) -> str:
    """The limit in words: the step it allowed, and the two it is the larger of."""
    noun = "replica" if step == 1 else "replicas"
    return f"at most {step} {noun} per {period_s:g} s (the larger of {pods} and {percent:g} % of {base})"


def rate_limit(inp: EngineInput, desired: int, constraints: list[Constraint]) -> int:
    """HPA-style: within any period, add at most max(Pods, Percent of the count at the period's start); same down."""
    current, params = inp.provisioned, inp.params
    if desired > current:
        base, step = _up_step(inp)
        limit = max(base + step, current)
        if desired > limit:
            detail = _limit_detail(step, params.scale_up_pods, params.scale_up_percent, base, params.scale_up_period_s)
            constraints.append(Constraint("scale_up_rate_limit", desired, limit, detail))
            return limit
    elif desired < current:
        base, step = _down_step(inp)
        limit = min(base - step, current)
        if desired < limit:
            detail = _limit_detail(
                step, params.scale_down_pods, params.scale_down_percent, base, params.scale_down_period_s
            )
            constraints.append(Constraint("scale_down_rate_limit", desired, limit, detail))
            return limit
    return desired
