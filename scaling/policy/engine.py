"""`decide(input) -> Decision`: the one entry point of the engine.

The engine is a pipeline of small steps over plain data. Each step may change
the count and, when it does, records a Constraint so the decision explains
itself. `now` is an argument; nothing here reads the clock.
"""

from __future__ import annotations

import math
from datetime import datetime

from scaling.policy.types import (
    Constraint,
    Decision,
    EngineInput,
    MetricPoint,
    Mode,
    Reason,
    RuleResult,
)


def latest_fresh_metric(inp: EngineInput) -> MetricPoint | None:
    """The newest sample with a request rate, if it is younger than two ticks (plus the source's lag)."""
    points = [m for m in inp.metrics if m.rps is not None]
    if not points:
        return None
    newest = max(points, key=lambda m: m.ts)
    max_age_s = inp.service.metrics_lag_s + 2 * inp.service.tick_s + inp.service.metrics_window_s / 2
    if (inp.now - newest.ts).total_seconds() > max_age_s:
        return None
    return newest


def _target_tracking(inp: EngineInput, metric: MetricPoint) -> RuleResult:
    spec, params = inp.service, inp.params
    per_replica_rps = spec.concurrency * 1000.0 / spec.service_time_ms
    rps = metric.rps or 0.0
    current = max(inp.provisioned, 1)
    needed = rps / (params.target_utilization * per_replica_rps)
    ratio = needed / current
    if abs(ratio - 1.0) <= params.tolerance:
        replicas = inp.provisioned
        note = "within tolerance"
    else:
        replicas = max(math.ceil(needed - 1e-9), 0)
        note = ""
    return RuleResult(
        rule="target_tracking",
        replicas=replicas,
        inputs={
            "rps": round(rps, 3),
            "target_utilization": params.target_utilization,
            "capacity_rps_per_replica": round(per_replica_rps, 3),
            "ratio": round(ratio, 4),
        },
        note=note,
    )


def _stabilize(inp: EngineInput, recommendation: int, desired: int, constraints: list[Constraint]) -> int:
    """Scale in only to the highest recommendation seen within the stabilization window."""
    if desired >= inp.provisioned:
        return desired
    window = inp.params.scale_down_stabilization_s
    recent = [r.replicas for r in inp.recent if (inp.now - r.ts).total_seconds() < window]
    stabilized = max([recommendation, *recent])
    stabilized = min(stabilized, inp.provisioned)
    if stabilized != desired:
        constraints.append(
            Constraint("scale_down_stabilization", desired, stabilized, f"highest recommendation in {window:.0f}s")
        )
    return stabilized


def _rate_limit(inp: EngineInput, desired: int, constraints: list[Constraint]) -> int:
    params, current = inp.params, inp.provisioned
    if desired > current:
        step = max(params.scale_up_pods, math.ceil(current * params.scale_up_percent / 100.0))
        limited = min(desired, current + step)
        name = "scale_up_rate_limit"
    elif desired < current:
        step = max(params.scale_down_pods, math.floor(current * params.scale_down_percent / 100.0))
        limited = max(desired, current - step)
        name = "scale_down_rate_limit"
    else:
        return desired
    if limited != desired:
        constraints.append(Constraint(name, desired, limited, f"at most {step} replicas per period"))
    return limited


def _cooldown(inp: EngineInput, desired: int, constraints: list[Constraint]) -> int:
    cooldown = inp.params.scale_in_cooldown_s
    if desired >= inp.provisioned or cooldown <= 0:
        return desired
    last = max((t for t in (inp.last_scale_out_at, inp.last_scale_in_at) if t is not None), default=None)
    if last is not None and (inp.now - last).total_seconds() < cooldown:
        constraints.append(Constraint("scale_in_cooldown", desired, inp.provisioned, f"{cooldown:.0f}s cooldown"))
        return inp.provisioned
    return desired


def _apply_overrides(inp: EngineInput, desired: int, constraints: list[Constraint]) -> tuple[int, bool]:
    """Precedence: active pin > floors/ceilings > policy. Returns (count, pinned)."""
    active = [o for o in inp.overrides if o.active_at(inp.now)]
    pins = [o for o in active if o.kind == "pin" and o.replicas is not None]
    if pins:
        pin = max(pins, key=lambda o: o.starts_at)
        replicas = min(pin.replicas or 0, inp.service.hard_max_replicas)
        constraints.append(Constraint("override_pin", desired, replicas, f"override {pin.id}: {pin.reason}"))
        return replicas, True
    result = desired
    for o in active:
        if o.kind == "freeze":
            constraints.append(Constraint("override_freeze", result, inp.provisioned, f"override {o.id}: {o.reason}"))
            return inp.provisioned, True
    floors = [o for o in active if o.kind == "floor" and o.replicas is not None]
    ceilings = [o for o in active if o.kind == "ceiling" and o.replicas is not None]
    if floors:
        floor = max(floors, key=lambda o: o.replicas or 0)
        if result < (floor.replicas or 0):
            constraints.append(
                Constraint("override_floor", result, floor.replicas or 0, f"override {floor.id}: {floor.reason}")
            )
            result = floor.replicas or 0
    if ceilings:
        ceiling = min(ceilings, key=lambda o: o.replicas or 0)
        if result > (ceiling.replicas or 0):
            constraints.append(
                Constraint(
                    "override_ceiling", result, ceiling.replicas or 0, f"override {ceiling.id}: {ceiling.reason}"
                )
            )
            result = ceiling.replicas or 0
    if any(o.kind == "freeze_scale_in" for o in active) and result < inp.provisioned:
        constraints.append(Constraint("override_freeze_scale_in", result, inp.provisioned, "scale-in frozen"))
        result = inp.provisioned
    return result, False


def _bounds(inp: EngineInput, desired: int, constraints: list[Constraint]) -> int:
    spec = inp.service
    bounded = min(max(desired, spec.min_replicas), spec.max_replicas)
    if bounded != desired:
        name = "max_replicas" if bounded < desired else "min_replicas"
        constraints.append(
            Constraint(name, desired, bounded, f"service bounds [{spec.min_replicas}, {spec.max_replicas}]")
        )
    return bounded


def _summary(
    inp: EngineInput, desired: int, reason: Reason, constraints: list[Constraint], rules: list[RuleResult]
) -> str:
    current = inp.provisioned
    why = ""
    if constraints:
        why = constraints[-1].detail or constraints[-1].name
    elif rules and rules[0].inputs:
        rps = rules[0].inputs.get("rps")
        why = f"observed {rps:,.0f} rps" if isinstance(rps, int | float) else ""
    if reason is Reason.DRY_RUN:
        return f"Dry run: would set {current} → {desired}" + (f" ({why})" if why else "")
    if desired > current:
        return f"Scaled {current} → {desired}" + (f": {why}" if why else "")
    if desired < current:
        return f"Scaled {current} → {desired}" + (f": {why}" if why else "")
    labels = {
        Reason.WITHIN_TOLERANCE: "load within tolerance of target",
        Reason.STABILIZING_SCALE_IN: "waiting out the scale-in stabilization window",
        Reason.METRICS_STALE: "metrics stale or missing; holding",
        Reason.METRICS_UNAVAILABLE: "metric source unavailable; holding",
        Reason.PAUSED: "service paused; holding",
        Reason.AT_MAX: "at the service maximum",
        Reason.AT_MIN: "at the service minimum",
        Reason.OVERRIDE_ACTIVE: "override in force",
        Reason.COOLDOWN: "scale-in cooldown",
    }
    return f"Held at {current}: {labels.get(reason, why or 'no change needed')}"


def _reason_for_hold(constraints: list[Constraint], rules: list[RuleResult]) -> Reason:
    names = [c.name for c in constraints]
    if any(n.startswith("override_") for n in names):
        return Reason.OVERRIDE_ACTIVE
    if "scale_down_stabilization" in names:
        return Reason.STABILIZING_SCALE_IN
    if "scale_in_cooldown" in names:
        return Reason.COOLDOWN
    if "max_replicas" in names:
        return Reason.AT_MAX
    if "min_replicas" in names:
        return Reason.AT_MIN
    if any(r.note == "within tolerance" for r in rules):
        return Reason.WITHIN_TOLERANCE
    return Reason.NO_CHANGE


def decide(inp: EngineInput, metrics_unavailable: bool = False) -> Decision:
    """Decide the desired replica count for one service at `inp.now`.

    1. Paused services hold.
    2. Without fresh metrics the engine holds (never scales in), unless a pin applies.
    3. Rules recommend; the largest recommendation wins.
    4. Stabilization, cooldown and rate limits shape the change.
    5. Overrides (pin > floors/ceilings) and the service bounds bind last.
    """
    current = inp.provisioned
    constraints: list[Constraint] = []
    rules: list[RuleResult] = []

    if inp.mode is Mode.PAUSED:
        return Decision(current, current, None, Reason.PAUSED, _summary(inp, current, Reason.PAUSED, [], []))

    metric = None if metrics_unavailable else latest_fresh_metric(inp)
    if metric is None:
        held, pinned = _apply_overrides(inp, current, constraints)
        if not pinned:
            held = max(held, current)  # never scale in on missing data
            held = _fallback(inp, held, constraints)
        reason = Reason.METRICS_UNAVAILABLE if metrics_unavailable else Reason.METRICS_STALE
        if held != current:
            reason = Reason.OVERRIDE_ACTIVE if pinned else reason
        return Decision(held, current, None, reason, _summary(inp, held, reason, constraints, rules))

    rules.append(_target_tracking(inp, metric))
    candidates = [r.replicas for r in rules if r.replicas is not None]
    recommendation = max(candidates) if candidates else current
    desired = _stabilize(inp, recommendation, recommendation, constraints)
    desired = _cooldown(inp, desired, constraints)
    desired = _rate_limit(inp, desired, constraints)
    desired, pinned = _apply_overrides(inp, desired, constraints)
    if not pinned:
        desired = _bounds(inp, desired, constraints)

    if inp.mode is Mode.DRY_RUN:
        reason = Reason.DRY_RUN
    elif desired > current:
        reason = Reason.SCALED_OUT
    elif desired < current:
        reason = Reason.SCALED_IN
    else:
        reason = _reason_for_hold(constraints, rules)
    return Decision(
        desired=desired,
        current=current,
        recommendation=recommendation,
        reason=reason,
        summary=_summary(inp, desired, reason, constraints, rules),
        rules=tuple(rules),
        constraints=tuple(constraints),
    )


def _fallback(inp: EngineInput, held: int, constraints: list[Constraint]) -> int:
    params = inp.params
    since: datetime | None = inp.metrics_missing_since
    if params.fallback_replicas <= 0 or since is None:
        return held
    if (inp.now - since).total_seconds() >= params.fallback_after_s and held < params.fallback_replicas:
        constraints.append(Constraint("fallback_replicas", held, params.fallback_replicas, "metrics missing too long"))
        return params.fallback_replicas
    return held
