"""Reason codes and the one-sentence summary a person reads in the decision timeline."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from zoneinfo import ZoneInfo

from scaling.policy.rules import WITHIN_TOLERANCE
from scaling.policy.types import Constraint, EngineInput, OverrideSpec, Reason, RuleResult

EASTERN = ZoneInfo("America/New_York")

# When several rules ask for the same count, the one named first explains it.
RULE_PRIORITY = (
    "slo_guard",
    "panic",
    "forecast",
    "serving_model",
    "target_utilization",
    "target_rps_per_replica",
    "target_in_flight_per_replica",
)

HOLD_LABELS = {
    Reason.WITHIN_TOLERANCE: "load within tolerance of target",
    Reason.STABILIZING_SCALE_IN: "waiting out the scale-in stabilization window",
    Reason.STABILIZING_SCALE_OUT: "waiting out the scale-out stabilization window",
    Reason.METRICS_STALE: "metrics stale or missing; holding (never scaling in on missing data)",
    Reason.METRICS_UNAVAILABLE: "metric source unavailable; holding (never scaling in on missing data)",
    Reason.ACTUATOR_UNAVAILABLE: "actuator unavailable: the fleet's status could not be read; holding",
    Reason.PAUSED: "service paused; holding",
    Reason.AT_MAX: "at the service maximum",
    Reason.AT_MIN: "at the service minimum",
    Reason.OVERRIDE_ACTIVE: "override in force",
    Reason.COOLDOWN: "scale-in cooldown",
    Reason.RATE_LIMITED: "rate limit",
    Reason.NO_CHANGE: "already at the count the policy asks for",
    Reason.PANICKING: "panicking: no scale-in while a surge lasts",
    Reason.SLO_BREACHED: "SLO breached: no scale-in",
    Reason.POLICY_INVALID: "stored policy refused by the engine; holding, never scaling in, until a valid one is saved",
}
# A hold label more exact than its reason's, by the constraint that held.
CONSTRAINT_LABELS = {
    "demand_rising": "holding scale-in while demand climbs",
    "scale_up_rate_limit": "scale-out rate limit",
    "scale_down_rate_limit": "scale-in rate limit",
}
# The reason a hold gets from the constraint that held it (overrides: OVERRIDE_ACTIVE).
CONSTRAINT_REASONS = {
    "scale_down_stabilization": Reason.STABILIZING_SCALE_IN,
    "demand_rising": Reason.STABILIZING_SCALE_IN,
    "scale_up_stabilization": Reason.STABILIZING_SCALE_OUT,
    "scale_in_cooldown": Reason.COOLDOWN,
    "scale_up_rate_limit": Reason.RATE_LIMITED,
    "scale_down_rate_limit": Reason.RATE_LIMITED,
    "max_replicas": Reason.AT_MAX,
    "min_replicas": Reason.AT_MIN,
    "signals_unread_hold": Reason.METRICS_UNAVAILABLE,
}


# A hold explained by one of these rules gets its own reason: the surge or the breach, not "no change", is why.
HOLDING_RULES = {"panic": Reason.PANICKING, "slo_guard": Reason.SLO_BREACHED}

# Overrides that set the count outright: they decide it even when the policy asked for the same count.
SETTING_OVERRIDES = ("override_pin", "override_freeze")


_OVERRIDE_WORDS = {"pin": "pins", "floor": "floor", "ceiling": "ceiling", "freeze": "freezes"}


def override_text(o: OverrideSpec) -> str:
    """An override in a few words: "override 21 floor 25", "override 3 freezes scale-in"."""
    if o.kind == "freeze_scale_in":
        return f"override {o.id} freezes scale-in"
    n = f" {o.replicas}" if o.replicas is not None else ""
    return f"override {o.id} {_OVERRIDE_WORDS.get(o.kind, o.kind)}{n}"


def _until(inp: EngineInput) -> str:
    """When the pause or dry run ends, in Eastern time: " until 20:30 ET", with the day when it is not today's."""
    if inp.mode_until is None:
        return ""
    end = inp.mode_until.astimezone(EASTERN)
    if end.date() == inp.now.astimezone(EASTERN).date():
        return f" until {end:%H:%M} ET"
    return f" until {end:%a} {end.day} {end:%b %H:%M} ET"


def deciding_constraint(constraints: list[Constraint] | tuple[Constraint, ...]) -> Constraint | None:
    """The constraint that set the final count: the last one that changed the count, or a pin or freeze."""
    for c in reversed(constraints):
        if c.before != c.after or c.name in SETTING_OVERRIDES:
            return c
    return None


def _capped_override(constraints: list[Constraint] | tuple[Constraint, ...], last: Constraint) -> Constraint | None:
    """The override that set the count when the service bounds, binding after it, only capped it."""
    if last.name not in ("max_replicas", "min_replicas"):
        return None
    earlier = [c for c in constraints[: list(constraints).index(last)] if c.name.startswith("override_")]
    setters = [c for c in earlier if c.before != c.after or c.name in SETTING_OVERRIDES]
    return setters[-1] if setters else None


def _cut_by_bounds(inp: EngineInput, last: Constraint) -> str:
    """A floor or ceiling the service bounds cut, in words ("floor 25 from override 21 (cap spend) capped at the
    service maximum 20"), when the bound binding `last` cut exactly what the override asked for: the override,
    not the policy, asked for the count the bound cut, changed this tick or already in force. "" otherwise."""
    active = [o for o in inp.overrides if o.active_at(inp.now) and o.replicas is not None]
    spec = inp.service
    if last.name == "max_replicas":
        floors = [o for o in active if o.kind == "floor"]
        floor = max(floors, key=lambda o: (o.replicas or 0, str(o.id)), default=None)
        if floor is not None and floor.replicas == last.before:
            return (
                f"floor {floor.replicas} from override {floor.id} ({floor.reason}) "
                f"capped at the service maximum {spec.max_replicas}"
            )
    if last.name == "min_replicas":
        ceilings = [o for o in active if o.kind == "ceiling"]
        ceiling = min(ceilings, key=lambda o: (o.replicas or 0, str(o.id)), default=None)
        if ceiling is not None and ceiling.replicas == last.before:
            return (
                f"ceiling {ceiling.replicas} from override {ceiling.id} ({ceiling.reason}) "
                f"raised to the service minimum {spec.min_replicas}"
            )
    return ""


# Constraints in a few words, for those a summary names before the one that set the count.
BRIEF_LABELS = {
    "scale_down_stabilization": "scale-in stabilization",
    "scale_up_stabilization": "scale-out stabilization",
    "demand_rising": "scale-in held while demand climbs",
    "scale_in_cooldown": "scale-in cooldown",
    "scale_up_rate_limit": "scale-out rate limit",
    "scale_down_rate_limit": "scale-in rate limit",
    "signals_unread_hold": "signals unread",
    "max_replicas": "service maximum",
    "min_replicas": "service minimum",
    "fallback_replicas": "fallback count",
    "metrics_missing_hold": "missing metrics",
}
OVERRIDE_KINDS = {
    "override_pin": "pin",
    "override_freeze": "freeze",
    "override_floor": "floor",
    "override_ceiling": "ceiling",
    "override_freeze_scale_in": "scale-in freeze",
}


def _earlier_moves(constraints: list[Constraint] | tuple[Constraint, ...], last: Constraint) -> str:
    """Each constraint that changed the count before `last`, briefly and in order ("scale-out rate limit
    49 → 12"): naming only the last left the count it started from unexplained."""
    moves = []
    for c in constraints[: list(constraints).index(last)]:
        if c.before == c.after:
            continue
        label = BRIEF_LABELS.get(c.name, c.name)
        if c.name.startswith("override_"):
            # "override 1 ceiling 120 → 50": the override's number and kind; its count is where it took it.
            label = " ".join([*c.detail.split()[:2], OVERRIDE_KINDS.get(c.name, c.name)])
        moves.append(f"{label} {c.before} → {c.after}")
    return ", then ".join(moves)


def _limited_the_move(last: Constraint, current: int, desired: int) -> bool:
    """A floor that raised the count though it still went down, or a ceiling that lowered it though it still went
    up: the override limited a move the policy made, it did not make it. (A pin or freeze sets the count.)"""
    if last.name == "override_floor":
        return desired < current
    if last.name == "override_ceiling":
        return desired > current
    return False


def winning_rule(
    rules: list[RuleResult] | tuple[RuleResult, ...], recommendation: int | None, current: int | None = None
) -> RuleResult | None:
    """The rule that explains the recommendation: of those asking for it, the first in RULE_PRIORITY. A panic
    asking for just the `current` count (it never lets go while panicking, and found nothing to add) yields
    to a rule that sized for that count."""
    candidates = [r for r in rules if r.replicas is not None and r.replicas == recommendation]
    if not candidates:
        return None
    return min(
        candidates,
        key=lambda r: (
            r.rule == "panic" and r.replicas == current,
            RULE_PRIORITY.index(r.rule) if r.rule in RULE_PRIORITY else 99,
        ),
    )


def reason_for(
    inp: EngineInput,
    desired: int,
    recommendation: int | None,
    constraints: list[Constraint],
    *,
    dry_run: bool,
    rules: list[RuleResult] | tuple[RuleResult, ...] = (),
) -> Reason:
    """The one reason code of a decision. A hold is explained by the constraint that set the final count
    (the last to bind: a stabilization window partly binding before a cooldown holds is a COOLDOWN). A hold
    at the recommendation is WITHIN_TOLERANCE only when a target-tracking rule held inside its band; a rule
    that sized for exactly the current count (the serving model, the forecast) is NO_CHANGE: no tolerance
    was involved."""
    current = inp.provisioned
    if dry_run:
        return Reason.DRY_RUN
    if desired > current:
        return Reason.SCALED_OUT
    if desired < current:
        return Reason.SCALED_IN
    deciding = deciding_constraint(constraints)
    if deciding is not None:
        if deciding.name.startswith("override_"):
            return Reason.OVERRIDE_ACTIVE
        return CONSTRAINT_REASONS[deciding.name]
    winner = winning_rule(rules, recommendation, current)
    if winner is not None and winner.rule in HOLDING_RULES:
        return HOLDING_RULES[winner.rule]
    return Reason.NO_CHANGE if winner is not None and winner.note != WITHIN_TOLERANCE else Reason.WITHIN_TOLERANCE


def _hhmm(iso: object) -> str:
    if not isinstance(iso, str):
        return "?"
    return datetime.fromisoformat(iso).astimezone(EASTERN).strftime("%H:%M")


def _hhmm_ss(iso: object) -> str:
    if not isinstance(iso, str):
        return "?"
    return datetime.fromisoformat(iso).astimezone(EASTERN).strftime("%H:%M:%S")


def _num(value: object) -> str:
    return f"{value:,.0f}" if isinstance(value, int | float) else "?"


def _pct(fraction: object) -> str:
    return f"{float(fraction) * 100:g} %" if isinstance(fraction, int | float) else "?"


def _share(fraction: object) -> str:
    """A fraction as a percentage to three figures: 1 → "100 %", 0.004 → "0.4 %", 0.01234 → "1.23 %"."""
    return f"{float(fraction) * 100:.3g} %" if isinstance(fraction, int | float) else "?"


def _games_text(labels: list[object], more: object) -> str:
    """Every game listed, and how many more were left off ("A at 19:00 ET, B at 19:00 ET and C at 19:30 ET";
    "A, B, C and 2 more games"): naming only the first hid the others behind a count."""
    named = [str(label) for label in labels]
    if isinstance(more, int) and more > 0:
        named.append(f"{more} more game{'s' if more > 1 else ''}")
    return ", ".join(named[:-1]) + " and " + named[-1] if len(named) > 1 else named[0]


def _exact(value: object) -> str:
    """A recorded number as recorded (1,537.75; 1.4163), for arithmetic a person can check."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return f"{value:,.4f}".rstrip("0").rstrip(".")
    return "?"


def _times(value: float) -> str:
    """A multiple to two decimals: 2.2, 1.45."""
    return f"{value:.2f}".rstrip("0").rstrip(".")


def forecast_arithmetic(i: Mapping[str, object]) -> str:
    """The forecast multiplied out from the forecast rule's inputs ("" for a decision recorded without them):
    predicted × ratio used = forecast, and the ratio used as the ratio observed plus the trend extrapolated
    (its slope, forecast_trend's weight, how far ahead), with any cap or correction bound that cut them."""
    if not all(k in i for k in ("predicted_rps", "ratio", "trend_gain", "ratio_used", "forecast_rps")):
        return ""
    if i.get("learned") is False:
        # Without learned history the prediction is the default shape's, in relative units, and the ratio scales
        # it to tonight's traffic: hundreds, where a learned model's ratio is near 1. Say so, not "× ratio used".
        text = (
            f"the demand model has little history yet, so its default shape ({_exact(i['predicted_rps'])} at that "
            f"time) is scaled by the ratio of observed to predicted traffic, {_exact(i['ratio_used'])}×: "
            f"forecast {_exact(i['forecast_rps'])} rps"
        )
        gain = i.get("trend_gain")
        if isinstance(gain, int | float) and gain > 0:
            return f"{text}; that ratio = observed {_exact(i['ratio'])} + trend {_exact(gain)} ({_trend_text(i)})"
        return text
    text = (
        f"predicted {_exact(i['predicted_rps'])} rps × ratio used {_exact(i['ratio_used'])} "
        f"= forecast {_exact(i['forecast_rps'])} rps"
    )
    observed = f"observed {_exact(i['ratio'])}"
    if "ratio_measured" in i:
        observed += f" (measured {_exact(i['ratio_measured'])}, held within forecast_correction_min … _max)"
    slope, gain = i.get("ratio_slope_per_min"), i.get("trend_gain")
    if isinstance(gain, int | float) and gain > 0:
        return f"{text}; ratio used = {observed} + trend {_exact(gain)} ({_trend_text(i)})"
    if isinstance(slope, int | float) and slope > 0:
        why = "forecast_trend 0"
    else:
        why = "the ratio is not climbing; the trend never lowers the forecast"
    return f"{text}; ratio used = {observed}, no trend ({why})"


def _trend_text(i: Mapping[str, object]) -> str:
    """How the trend was extrapolated: its slope, forecast_trend's weight, how far ahead, and any cap."""
    slope, ahead_s, weight = i.get("ratio_slope_per_min"), i.get("trend_ahead_s"), i.get("forecast_trend")
    ahead = f"{float(ahead_s) / 60:g} min" if isinstance(ahead_s, int | float) else "?"
    trend = f"slope {_exact(slope)}/min × forecast_trend {_exact(weight)} × {ahead} from the newest window to then"
    if "trend_capped_at" in i:
        trend += f", capped at {_exact(i['trend_capped_at'])} (the trend may at most double the ratio)"
    return trend


def _panic_cause(i: Mapping[str, object]) -> str:
    """What set panic off, against its limit, from the panic rule's inputs ("" for one recorded without them)."""
    causes = i.get("triggered_by")
    if not isinstance(causes, list):
        return ""
    short = i.get("short_rps")
    parts = []
    for cause in causes:
        if cause == "calendar":
            expected, limit = i.get("unforecast_surge_over_rps"), i.get("panic_ratio")
            if isinstance(short, int | float) and isinstance(expected, int | float) and expected > 0:
                where = " with no game near" if i.get("quiet_hours") else ""
                where = " where the calendar expects no jump near now" if i.get("calendar_smooth") else where
                parts.append(
                    f"short-window {_num(short)} rps is {_times(short / expected)}× the calendar's expectation of "
                    f"{_num(expected)} rps (panic at {_exact(limit)}×{where}, {i.get('panic_ratio_from')})"
                )
        elif cause == "jump":
            before, limit = i.get("before_rps"), i.get("panic_surge_ratio")
            if isinstance(short, int | float) and isinstance(before, int | float) and before > 0:
                # Near a game without a learned model there is a forecast, the default shape's, but no measure of
                # how big the game's jumps are: say that, not that nothing forecast the moment.
                why = (
                    "no learned model to say how big a game's jumps are (the default shape's are a guess)"
                    if i.get("calendar_unlearned")
                    else "no forecast for now"
                )
                parts.append(
                    f"short-window {_num(short)} rps is {_times(short / before)}× the {_num(before)} rps of the "
                    f"minute or two before, with {why} (panic at {_exact(limit)}×, panic_surge_ratio)"
                )
        elif cause == "threshold":
            parts.append(_needs_ready(short, i.get("needed"), i.get("ready"), i.get("panic_threshold")))
        elif cause == "earlier":
            then = _needs_ready(
                i.get("triggered_short_rps"),
                i.get("triggered_needed"),
                i.get("triggered_ready"),
                i.get("panic_threshold"),
                verb="needed",
            )
            window = i.get("panic_window_s")
            parts.append(
                f"since {_hhmm_ss(i.get('triggered_at'))} ET, when {then}; it lasts {_num(window)} s "
                f"(panic_window_s): now short-window {_num(short)} rps needs {i.get('needed')} (ready {i.get('ready')})"
            )
    return "; and ".join(parts)


def _needs_ready(short: object, needed: object, ready: object, threshold: object, *, verb: str = "needs") -> str:
    """ "short-window 3,000 rps needs 31, 3.1× the 10 ready (panic at 2×, panic_threshold)"."""
    text = f"short-window {_num(short)} rps {verb} {needed}"
    if isinstance(needed, int) and isinstance(ready, int) and ready > 0:
        text += f", {_times(needed / ready)}× the {ready} ready"
    else:
        text += " with none ready"
    return f"{text} (panic at {_exact(threshold)}×, panic_threshold)"


def _sized_rate(i: dict[str, object]) -> str:
    """The rate a reactive rule sized for, in words: the short-window rate when it was the higher, with the
    rule's headroom."""
    rps, short = i.get("rps"), i.get("short_rps")
    if isinstance(rps, int | float) and isinstance(short, int | float) and short > rps:
        rate = f"short-window {_num(short)} rps"
    else:
        rate = f"observed {_num(rps)} rps"
    headroom = i.get("headroom")
    return f"{rate} + {_pct(headroom)} headroom" if isinstance(headroom, int | float) and headroom > 0 else rate


def rule_sentence(rule: RuleResult, scaling_in: bool = False) -> str:
    """Why one rule asked for its count, in words."""
    i = rule.inputs
    n = rule.replicas
    if rule.rule == "forecast":
        games = i.get("games") or []
        when = f"forecast {_num(i.get('forecast_rps'))} rps at {_hhmm(i.get('forecast_at'))} ET"
        headroom = i.get("headroom")
        if isinstance(headroom, int | float) and headroom > 0:
            # The count is sized for the forecast and this much more: say so, and on a cold start why it is large.
            when += f" + {_pct(round(headroom, 3))} headroom"
        if i.get("learned") is False:
            # Without a learned profile the forecast is an assumption (Forecaster.default): say which, with
            # headroom or without.
            when += " (no learned history yet: a generic game's shape, scaled to the traffic observed now)"
        overtime = i.get("overtime") or []
        late = ""
        if isinstance(overtime, list) and overtime:
            named = ", ".join(overtime[:-1]) + " and " + overtime[-1] if len(overtime) > 1 else overtime[0]
            late = f"; {named} went to overtime"
        if "kept_for_rps" in i:
            # The count is what runs now, kept for a rate expected before replicas asked for now could serve.
            kept = f"keeping {n} for {_num(i['kept_for_rps'])} rps expected at {_hhmm(i.get('kept_for_at'))} ET"
            return f"{kept}, before replicas asked for now could serve; {when}{late}"
        if isinstance(games, list) and games and not scaling_in:
            return f"pre-warming for {_games_text(games, i.get('more_games'))}; {when}{late}"
        if not scaling_in:
            return when + late
        # Fewer are needed as far ahead as replicas asked for now would serve, whatever the rate is doing now.
        # The games tipping off after that are not in this forecast yet: say that the next ticks will size for
        # them, so that nobody reads the scale-in as the games being forgotten.
        text = f"fewer needed until replicas asked for now could serve: {when}{late}"
        upcoming = i.get("next_games") or []
        if isinstance(upcoming, list) and upcoming:
            text += f"; later ticks will pre-warm for {_games_text(upcoming, i.get('more_next_games'))}"
        return text
    if rule.rule == "serving_model":
        target = i.get("slo_target")
        pct = f"{float(target) * 100:g} %" if isinstance(target, int | float) else "the SLO"
        return f"{_sized_rate(i)} needs {n} for {pct} within {_num(i.get('slo_latency_ms'))} ms"
    if rule.rule == "slo_guard":
        breached = [f"{name[:3]} {_num(i[name])} ms" for name in ("p99_ms", "p95_ms") if name in i]
        text = f"{', '.join(breached)} vs {_num(i.get('slo_latency_ms'))} ms" if breached else ""
        if isinstance(error_rate := i.get("error_rate"), int | float):
            errors = f"errors {_share(error_rate)}"
            text = f"{text}; {errors}" if text else errors
        model = i.get("model_replicas", n)
        if i.get("model_below_running"):
            return f"SLO breached ({text}): the serving model says {model} serve {_num(i.get('rps'))} rps; holding {n}"
        return f"SLO breached ({text}); {_num(i.get('rps'))} rps needs {n}"
    if rule.rule == "panic":
        needed = i.get("needed")
        cause = _panic_cause(i)
        text = f"panic: short-window {_num(i.get('short_rps'))} rps needs {needed} (ready {i.get('ready')})"
        if cause:
            text = f"panic: {cause}"
        elif "unforecast_surge_over_rps" in i:
            # The calendar's forecast for now, scaled as the minute or two before ran against it: not the
            # forecast rule's, which is for when replicas asked for now could serve.
            expected = _num(i.get("unforecast_surge_over_rps"))
            text += f"; the calendar, scaled to the minutes before, expects {expected} rps now"
            if i.get("quiet_hours"):
                text += " (no game near)"
            elif i.get("calendar_smooth"):
                text += " and no jump near now"
        if n == needed:
            return text
        sized_by = i.get("sized_by")
        if sized_by == "surge_multiple":
            base, multiple = _num(i.get("surge_base_rps")), _num(i.get("surge_multiple"))
            if i.get("surge_base_from") == "calendar":
                return (
                    f"{text}; provisioning {n} for {multiple}× the {base} rps the calendar expects "
                    "when new replicas are ready"
                )
            return f"{text}; provisioning {n} for {multiple}× the {base} rps before it"
        if sized_by == "panic_headroom":
            return f"{text}; provisioning {n} with {_pct(i.get('panic_headroom'))} headroom (the surge may still rise)"
        return f"{text}; keeping {n}: no scale-in while panicking"
    if rule.rule == "target_utilization":
        util, target = i.get("utilization"), i.get("target_utilization")
        rps, ratio, capacity = i.get("rps"), i.get("ratio"), i.get("capacity_rps_per_replica")
        target_text = f"{float(target):.2f}" if isinstance(target, int | float) else "?"
        if isinstance(util, int | float):
            return f"utilization {float(util):.2f} vs target {target_text}"
        if (
            isinstance(rps, int | float)
            and isinstance(ratio, int | float)
            and isinstance(capacity, int | float)
            and isinstance(target, int | float)
            and min(rps, ratio, capacity, target) > 0
        ):
            # A rate against a fraction compares different units: say the utilization the rate makes of the
            # replicas it was measured against.
            seen = ratio * target
            replicas = round(rps / (seen * capacity))
            fleet = f"{replicas} × {_num(capacity)} rps"
            return f"{_num(rps)} rps is utilization {seen:.2f} of {fleet} vs target {target_text}"
        return f"{_num(rps)} rps vs target {target_text}"
    if rule.rule == "target_rps_per_replica":
        return f"{_num(i.get('rps'))} rps vs target {i.get('target_rps_per_replica')} per replica"
    if rule.rule == "target_in_flight_per_replica":
        return f"{_num(i.get('in_flight'))} in flight vs target {i.get('target_in_flight_per_replica')} per replica"
    return rule.note or rule.rule


def summarize(
    inp: EngineInput,
    desired: int,
    *,
    reason: Reason,
    recommendation: int | None,
    rules: list[RuleResult] | tuple[RuleResult, ...],
    constraints: list[Constraint] | tuple[Constraint, ...],
) -> str:
    current = inp.provisioned
    winner = winning_rule(rules, recommendation, current)
    why = rule_sentence(winner, scaling_in=desired < current) if winner else ""
    last = deciding_constraint(constraints)
    cut = _cut_by_bounds(inp, last) if last is not None else ""
    earlier = ""
    if last is not None:
        bound = f"{last.detail or last.name}"
        if not cut and not last.name.startswith("override_"):
            # What an override or a floor the bound cut set overrules the steps before it; a limit does not.
            earlier = _earlier_moves(constraints, last)
        then = f"{earlier}, then " if earlier else ""
        setter = _capped_override(constraints, last)
        if cut:
            # A floor (ceiling) the bound cut: the override asked for the count, the bound cut it, and the
            # policy's own count is beside the point but for the record. "At the service maximum" alone
            # read as the policy pressing against it.
            wants = f" (policy wants {recommendation})" if recommendation is not None else ""
            why = f"{cut}{wants}"
        elif setter is not None:
            # The override set the count and the bound only trimmed it: both are why.
            why = f"{setter.detail}, capped by the {bound}"
        elif why and _limited_the_move(last, current, desired):
            # The rule moved the count; the override only stopped it short: the rule leads, the override follows.
            why = f"{why}; {then}stopped at {last.after} (policy wants {recommendation}) by {bound}"
        elif last.name.startswith("override_") or last.name == "fallback_replicas":
            why = f"{then}{bound}"
        else:
            why = f"{why} ({then}{bound}; wanted {last.before})" if why else f"{then}{bound}"
    if not why:
        # A hold without metrics (or without a policy the engine accepts) names no rule that sized: that is the cause.
        why = next((r.note for r in rules if r.rule in ("metrics", "policy") and r.note), "")

    if reason is Reason.PAUSED:
        # The pause sets the overrides aside too: name those in force, so nobody expects them to act now.
        text = f"Held at {current}: service paused{_until(inp) or ' (no end set)'}"
        set_aside = [override_text(o) for o in sorted(inp.overrides, key=lambda o: str(o.id)) if o.active_at(inp.now)]
        return text + (f"; not applied while paused: {', '.join(set_aside)}" if set_aside else "")
    if reason is Reason.DRY_RUN:
        if desired == current:
            return f"Dry run{_until(inp)}: would hold at {current}" + (f": {why}" if why else "")
        moved = f"Dry run{_until(inp)}: would scale {current} → {desired}, not actuated"
        return moved + (f": {why}" if why else "")
    missing = {
        Reason.METRICS_UNAVAILABLE: "metric source unavailable",
        Reason.ACTUATOR_UNAVAILABLE: "actuator unavailable (fleet status unread)",
        Reason.POLICY_INVALID: next((r.note for r in rules if r.rule == "policy"), "stored policy refused"),
    }.get(reason, "metrics stale or missing")
    if desired != current:
        bounded = last is not None and last.name in ("min_replicas", "max_replicas") and not cut
        missing_reasons = (
            Reason.METRICS_STALE,
            Reason.METRICS_UNAVAILABLE,
            Reason.ACTUATOR_UNAVAILABLE,
            Reason.POLICY_INVALID,
        )
        if reason in missing_reasons and bounded and last is not None:
            # No rule sized a count: the bounds alone moved it (a service at 0 under a minimum of 1, or above
            # a maximum lowered since); the missing metrics are why nothing else did.
            why = f"{missing}; moved into the {last.detail}"
        return f"Scaled {current} → {desired}" + (f": {why}" if why else "")
    if last is not None and last.name == "metrics_missing_hold":
        return f"Held at {current}: {missing}; {last.detail}"
    if last is not None and last.name == "signals_unread_hold":
        return f"Held at {current}: {last.detail} (policy wants {recommendation})"
    if cut:
        return f"Held at {current}: {why}"
    if reason is Reason.POLICY_INVALID and last is None:
        return f"Held at {current}: {why}; holding, never scaling in, until a valid one is saved"
    label = HOLD_LABELS.get(reason, "no change needed")
    if last is not None:
        label = CONSTRAINT_LABELS.get(last.name, label)
    detail = ""
    then = f"{earlier}, then " if earlier else ""
    if reason in (
        Reason.STABILIZING_SCALE_IN,
        Reason.STABILIZING_SCALE_OUT,
        Reason.COOLDOWN,
        Reason.AT_MAX,
        Reason.AT_MIN,
        Reason.RATE_LIMITED,
    ):
        detail = f" (policy wants {recommendation}; {then}{last.detail})" if last is not None else ""
    elif reason is Reason.OVERRIDE_ACTIVE and last is not None:
        detail = f" ({then}{last.detail})"
    elif reason in (Reason.SLO_BREACHED, Reason.PANICKING) and winner is not None:
        # The breach or the surge, not "already there", is the news: it kept the fleet from scaling in.
        return f"Held at {current}: {why}"
    elif reason in (Reason.WITHIN_TOLERANCE, Reason.NO_CHANGE) and winner is not None:
        band = f"; within ±{inp.params.tolerance * 100:g} % of target" if reason is Reason.WITHIN_TOLERANCE else ""
        detail = f" ({why}{band})"
    return f"Held at {current}: {label}{detail}"
