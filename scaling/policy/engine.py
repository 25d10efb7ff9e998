"""`decide(input) -> Decision`: the one entry point of the engine.

The engine is a pipeline of small steps over plain data. Rules recommend, the
largest recommendation wins, and each later step that changes the count records
a Constraint, so the decision explains itself. `now` is an argument; nothing
here reads the clock.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from datetime import datetime
from typing import Any

from scaling.policy import rules as r
from scaling.policy.explain import (
    EASTERN,
    deciding_constraint,
    override_text,
    reason_for,
    summarize,
)
from scaling.policy.signals import observe
from scaling.policy.stability import cooldown, hold_while_rising, rate_limit, stabilize
from scaling.policy.types import (
    Constraint,
    Decision,
    EngineInput,
    Mode,
    OverrideSpec,
    PolicyParams,
    Reason,
    RuleResult,
    ServiceSpec,
)

__all__ = ["decide", "held_under_overrides", "hold_on_refused_policy"]


def decide(
    inp: EngineInput,
    metrics_unavailable: bool = False,
    unread_signals: tuple[str, ...] = (),
    actuator_unavailable: bool = False,
) -> Decision:
    """Decide the desired replica count for one service at `inp.now`.

    1. Paused services hold.
    2. Without fresh metrics the engine holds (never scales in), unless an override applies;
       after `fallback_after_s` of missing metrics it holds at least `fallback_replicas`. Without the
       fleet's status (`actuator_unavailable`: the actuator could not be read) it holds the same way,
       with its own reason: the actuator, not the metric source, is what to look at.
    3. Rules recommend — target tracking, serving-model sizing, SLO guard, panic, pre-warm
       forecast; the largest recommendation wins.
    4. Stabilization, a hold on scale-in while demand climbs, cooldown and rate limits shape the change;
       while a configured signal went unread (`unread_signals`) the change may scale out but not in.
    5. Overrides (pin > freeze > floors/ceilings > freeze_scale_in) and the service bounds bind last.
    """
    current = inp.provisioned
    constraints: list[Constraint] = []

    if inp.mode is Mode.PAUSED:
        return _paused(inp)

    unavailable = metrics_unavailable or actuator_unavailable
    obs = None if unavailable else observe(inp, stable_window_s=max(inp.params.panic_window_s, 60.0))
    if obs is None:
        return _hold_without_metrics(inp, metrics_unavailable, actuator_unavailable)

    rules: list[RuleResult] = r.target_tracking(inp, obs)
    forecast: dict[str, Any] | None = None
    if inp.params.model_sizing:
        rules.append(r.model_sizing(inp, obs))
    for extra in (r.slo_guard(inp, obs) if inp.params.slo_guard else None, r.panic(inp, obs)):
        if extra is not None:
            rules.append(extra)
    prewarm = r.prewarm(inp, obs)
    if prewarm is not None:
        rules.append(prewarm[0])
        forecast = prewarm[1]

    candidates = [rule.replicas for rule in rules if rule.replicas is not None]
    recommendation = max(candidates) if candidates else current
    if recommendation < current <= inp.service.min_replicas:
        # At the service minimum the fleet cannot scale in: the bound, not a scale-in rule, holds it.
        desired = recommendation
    else:
        desired = stabilize(inp, recommendation, constraints)
        desired = hold_while_rising(inp, obs, desired, constraints)
        desired = cooldown(inp, desired, constraints)
        desired = rate_limit(inp, desired, constraints)
        desired = _hold_while_unread(inp, unread_signals, desired, constraints)
    desired, setter = _apply_overrides(inp, desired, constraints)
    if setter != "pin":
        desired = _bounds(inp, desired, constraints)

    reason = reason_for(inp, desired, recommendation, constraints, dry_run=inp.mode is Mode.DRY_RUN, rules=rules)
    return Decision(
        desired=desired,
        current=current,
        recommendation=recommendation,
        reason=reason,
        summary=summarize(
            inp, desired, reason=reason, recommendation=recommendation, rules=rules, constraints=constraints
        ),
        rules=tuple(rules),
        constraints=tuple(constraints),
        forecast=forecast,
    )


def hold_on_refused_policy(inp: EngineInput, *, parameter: str, problem: str) -> Decision:
    """The decision of a tick whose stored policy the engine refuses (`PolicyParams.from_dict` raised: a row saved
    before a parameter's range narrowed). No rule can size the fleet without parameters, so it holds as on
    missing metrics: the overrides in force and the service bounds still apply (an operator's pin or floor is
    what is wanted while the policy is being mended), a ceiling waits, and nothing else scales in. `inp.params`
    are the defaults and go unread; there is no fallback count, the metrics being there."""
    refused = RuleResult(
        rule="policy",
        replicas=None,
        inputs={"parameter": parameter, "problem": problem},
        note=f"stored policy refused by the engine ({problem})",
    )
    if inp.mode is Mode.PAUSED:
        held = _paused(inp)
    else:
        held = _hold(inp, Reason.POLICY_INVALID, refused, while_="the stored policy is refused (no rule to size it)")
    if refused.note and refused.note not in held.summary:
        # A pause or an override set the count: it leads the summary, and the refused policy still needs mending.
        held = replace(held, summary=f"{held.summary} ({refused.note})")
    return held


def held_under_overrides(
    service: ServiceSpec, overrides: Iterable[OverrideSpec], *, now: datetime, provisioned: int, policy_count: int
) -> tuple[int, str | None]:
    """What step 5 of `decide` makes of the policy's count at `now`: the overrides active then, in the engine's
    precedence, and the service bounds (which only a pin leaves). With the kind of override that set the count
    outright ("pin" or "freeze"; None when the policy's count stands, bounded or not). For previews that ask
    what an override would change, without the rules' inputs."""
    inp = EngineInput(
        now=now,
        service=service,
        params=PolicyParams(),
        provisioned=provisioned,
        ready=provisioned,
        overrides=tuple(overrides),
    )
    held, setter = _apply_overrides(inp, policy_count, [])
    return (held if setter == "pin" else _bounds(inp, held, [])), setter


def _hold_while_unread(
    inp: EngineInput, unread_signals: tuple[str, ...], desired: int, constraints: list[Constraint]
) -> int:
    """No scale-in on part of the signals (as Kubernetes' HPA skips a scale-down when a metric fails): the
    unread one may be the latency that breaches the SLO or the in-flight count that asks for more."""
    current = inp.provisioned
    if not unread_signals or desired >= current:
        return desired
    detail = f"{', '.join(unread_signals)} unread this tick: no scale-in on part of the signals"
    constraints.append(Constraint("signals_unread_hold", desired, current, detail))
    return current


def _paused(inp: EngineInput) -> Decision:
    current = inp.provisioned
    summary = summarize(inp, current, reason=Reason.PAUSED, recommendation=None, rules=[], constraints=[])
    return Decision(current, current, None, Reason.PAUSED, summary)


def _hold_without_metrics(inp: EngineInput, metrics_unavailable: bool, actuator_unavailable: bool = False) -> Decision:
    if actuator_unavailable:
        reason, note = Reason.ACTUATOR_UNAVAILABLE, "actuator unavailable: fleet status unread"
    elif metrics_unavailable:
        reason, note = Reason.METRICS_UNAVAILABLE, "metric source unavailable"
    else:
        reason, note = Reason.METRICS_STALE, "metrics stale or missing"
    stale = RuleResult(
        rule="metrics",
        replicas=None,
        inputs={"newest_sample": _newest(inp), "unavailable": metrics_unavailable or actuator_unavailable},
        note=note,
    )
    return _hold(inp, reason, stale, while_="metrics are missing (never scale in on missing data)", fallback=True)


def _hold(inp: EngineInput, reason: Reason, cause: RuleResult, *, while_: str, fallback: bool = False) -> Decision:
    """Hold the count provisioned when no rule can size it (`cause` says why; `while_` finishes "not applied
    while ..."): the overrides in force still apply, except that a ceiling waits (never scale in on what
    cannot be read), then the fallback count when asked for, then the service bounds."""
    current = inp.provisioned
    constraints: list[Constraint] = []
    held, setter = _apply_overrides(inp, current, constraints)
    if setter is None:
        if held < current:
            # Only a ceiling lowers the count here: say which one waits.
            lowered = constraints[-1].detail if constraints else "the policy's count"
            constraints.append(
                Constraint(
                    "metrics_missing_hold",
                    held,
                    current,
                    f"{lowered}: not applied while {while_}",
                )
            )
        held = max(held, current)
        if fallback:
            held = _fallback(inp, held, constraints)
    if setter != "pin":
        held = _bounds(inp, held, constraints)
    deciding = deciding_constraint(constraints)
    if inp.mode is Mode.DRY_RUN:
        reason = Reason.DRY_RUN
    elif deciding is not None and deciding.name.startswith("override_"):
        # An override set the count (a pin, even to the current count; a floor above it): it, not the
        # missing metrics or policy, explains the decision.
        reason = Reason.OVERRIDE_ACTIVE
    return Decision(
        held,
        current,
        None,
        reason,
        summarize(inp, held, reason=reason, recommendation=None, rules=[cause], constraints=constraints),
        (cause,),
        tuple(constraints),
    )


def _newest(inp: EngineInput) -> str | None:
    stamps = [m.ts for m in inp.metrics]
    return max(stamps).isoformat() if stamps else None


def _apply_overrides(inp: EngineInput, desired: int, constraints: list[Constraint]) -> tuple[int, str | None]:
    """Precedence: active pin > freeze > floors/ceilings > freeze_scale_in > policy. Returns the count and the
    kind of override that set it outright ("pin" or "freeze"; None when the policy's count stands, bounded
    or not). Only a pin may leave the service's bounds (DESIGN: bounds); a freeze holds within them.

    Every active override appears among the constraints, the ones that changed nothing too (before = after,
    saying why), so that a person reading the decision sees every override in force, not only one that bound."""
    active = sorted((o for o in inp.overrides if o.active_at(inp.now)), key=lambda o: str(o.id))
    first = len(constraints)  # those that changed nothing go before those that did: the last to bind stays last
    pins = [o for o in active if o.kind == "pin" and o.replicas is not None]
    if pins:
        pin = max(pins, key=lambda o: (o.starts_at, str(o.id)))
        replicas = min(max(pin.replicas or 0, 0), inp.service.hard_max_replicas)
        constraints.append(
            Constraint("override_pin", desired, replicas, f"override {pin.id} pins {replicas}: {pin.reason}")
        )
        _in_force(active, [pin], replicas, f"overruled by override {pin.id}'s pin", constraints, at=first)
        return replicas, "pin"
    result = desired
    freezes = [o for o in active if o.kind == "freeze"]
    if freezes:
        o = freezes[0]
        constraints.append(
            Constraint("override_freeze", result, inp.provisioned, f"override {o.id} freezes: {o.reason}")
        )
        _in_force(active, [o], inp.provisioned, f"overruled by override {o.id}'s freeze", constraints, at=first)
        return inp.provisioned, "freeze"
    applied = []
    floors = [o for o in active if o.kind == "floor" and o.replicas is not None]
    ceilings = [o for o in active if o.kind == "ceiling" and o.replicas is not None]
    if floors:
        floor = max(floors, key=lambda o: (o.replicas or 0, str(o.id)))
        if result < (floor.replicas or 0):
            constraints.append(
                Constraint(
                    "override_floor",
                    result,
                    floor.replicas or 0,
                    f"override {floor.id} floor {floor.replicas}: {floor.reason}",
                )
            )
            result = floor.replicas or 0
            applied.append(floor)
    if ceilings:
        ceiling = min(ceilings, key=lambda o: (o.replicas or 0, str(o.id)))
        if result > (ceiling.replicas or 0):
            constraints.append(
                Constraint(
                    "override_ceiling",
                    result,
                    ceiling.replicas or 0,
                    f"override {ceiling.id} ceiling {ceiling.replicas}: {ceiling.reason}",
                )
            )
            result = ceiling.replicas or 0
            applied.append(ceiling)
    freezes_in = [o for o in active if o.kind == "freeze_scale_in"]
    if freezes_in and result < inp.provisioned:
        o = freezes_in[0]
        constraints.append(
            Constraint(
                "override_freeze_scale_in", result, inp.provisioned, f"override {o.id} freezes scale-in: {o.reason}"
            )
        )
        result = inp.provisioned
        applied.append(o)
    _in_force(active, applied, result, "changed nothing this tick", constraints, at=first)
    return result, None


def _in_force(
    active: list[OverrideSpec],
    applied: list[OverrideSpec],
    count: int,
    why: str,
    constraints: list[Constraint],
    *,
    at: int,
) -> None:
    """A constraint that changed nothing (before = after = `count`) for each active override not in `applied`,
    saying `why`, inserted in `constraints` at `at`."""
    for o in reversed(active):
        if o in applied:
            continue
        what = override_text(o)
        constraints.insert(at, Constraint(f"override_{o.kind}", count, count, f"{what}: {o.reason} (in force; {why})"))


def _bounds(inp: EngineInput, desired: int, constraints: list[Constraint]) -> int:
    spec = inp.service
    bounded = min(max(desired, spec.min_replicas), spec.max_replicas)
    if bounded != desired:
        name = "max_replicas" if bounded < desired else "min_replicas"
        constraints.append(
            Constraint(name, desired, bounded, f"service bounds [{spec.min_replicas}, {spec.max_replicas}]")
        )
    return bounded


def _fallback(inp: EngineInput, held: int, constraints: list[Constraint]) -> int:
    params = inp.params
    since: datetime | None = inp.metrics_missing_since
    if params.fallback_replicas <= 0 or since is None:
        return held
    missing_s = (inp.now - since).total_seconds()
    if missing_s >= params.fallback_after_s and held < params.fallback_replicas:
        constraints.append(
            Constraint(
                "fallback_replicas",
                held,
                params.fallback_replicas,
                f"metrics missing since {since.astimezone(EASTERN):%H:%M} ET ({missing_s / 60:.0f} min); "
                f"holding the fallback count {params.fallback_replicas}",
            )
        )
        return params.fallback_replicas
    return held
