"""The engine's pipeline, rule by rule, as tables."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from scaling.policy import Mode, OverrideSpec, PastRecommendation, PolicyParams, Reason, decide
from scaling.policy.capacity import MAX_COUNT, replicas_for
from scaling.policy.engine import held_under_overrides, hold_on_refused_policy
from scaling.policy.explain import rule_sentence
from scaling.policy.forecast import Forecaster
from scaling.policy.types import Decision, MetricPoint, RuleResult
from tests.policy.builders import SPEC, T0, TT_ONLY, engine_input, game, override, point, recorded


@pytest.mark.parametrize(
    ("rps", "provisioned", "desired", "reason"),
    [
        (700.0, 10, 10, Reason.WITHIN_TOLERANCE),  # exactly at the 70 % target
        (760.0, 10, 10, Reason.WITHIN_TOLERANCE),  # inside the 10 % band
        (1400.0, 10, 20, Reason.SCALED_OUT),
        (100_000.0, 10, 30, Reason.SCALED_OUT),  # rate-limited to +200 % per period
        (3500.0, 30, 40, Reason.SCALED_OUT),  # bounded by max_replicas
        (0.0, 2, 1, Reason.SCALED_IN),  # bounded by min_replicas
    ],
)
def test_it_tracks_the_utilization_target(rps: float, provisioned: int, desired: int, reason: Reason) -> None:
    result = decide(engine_input(rps, provisioned, recent=recorded(1, 1, 1)))
    assert (result.desired, result.reason) == (desired, reason)


@pytest.mark.parametrize(
    ("params", "metric", "desired"),
    [
        (PolicyParams(target_rps_per_replica=50.0), {"rps": 1000.0}, 20),
        (PolicyParams(target_in_flight_per_replica=2.0), {"rps": 100.0, "in_flight": 30.0}, 15),
        # Several targets at once: the largest recommendation wins.
        (
            PolicyParams(target_utilization=0.7, target_rps_per_replica=50.0, target_in_flight_per_replica=2.0),
            {"rps": 1000.0, "in_flight": 50.0},
            25,
        ),
    ],
)
def test_it_tracks_every_metric_with_a_target_and_takes_the_largest(
    params: PolicyParams, metric: dict[str, float], desired: int
) -> None:
    params = replace(params, model_sizing=False, prewarm=False, slo_guard=False, scale_up_percent=200)
    result = decide(engine_input(metrics=(point(**metric),), params=params))
    assert result.desired == desired


@pytest.mark.parametrize(("in_flight", "desired"), [(0.0, 0), (1.0, 1), (2.0, 1), (2.2, 2)])
def test_with_no_replicas_running_target_tracking_asks_for_one_within_tolerance(in_flight: float, desired: int) -> None:
    # 2 in flight against a target of 2 per replica is within tolerance of one replica, not of the none running.
    params = PolicyParams(target_in_flight_per_replica=2.0, model_sizing=False, prewarm=False, slo_guard=False)
    service = replace(SPEC, min_replicas=0)
    result = decide(
        engine_input(metrics=(point(10.0, in_flight=in_flight),), provisioned=0, params=params, service=service)
    )
    assert result.desired == desired


def test_no_recommendation_outgrows_a_stored_count() -> None:
    # A counter read as a rate: the recommendation stays a count a stored decision can hold.
    params = PolicyParams(target_rps_per_replica=10.0, model_sizing=False, prewarm=False, slo_guard=False)
    result = decide(engine_input(1e15, params=params))
    assert result.recommendation == MAX_COUNT < 2**31
    assert {r.rule: r.replicas for r in result.rules} == {"target_rps_per_replica": MAX_COUNT, "panic": MAX_COUNT}
    assert result.desired <= SPEC.max_replicas


@pytest.mark.parametrize(("rps", "expected"), [(1000.0, 11), (5000.0, 51), (100.0, 2)])
def test_it_sizes_the_observed_rate_with_the_serving_model(rps: float, expected: int) -> None:
    params = PolicyParams(prewarm=False, scale_up_percent=500)
    result = decide(engine_input(rps, provisioned=10, params=params))
    model = next(r for r in result.rules if r.rule == "serving_model")
    assert model.replicas == expected == replicas_for(rps, SPEC)


def test_it_reads_a_short_window_from_overlapping_samples() -> None:
    # 60 s windows 15 s apart: the mean rose by 500 rps, so the newest 15 s ran at about 3,000 rps.
    metrics = (point(1000.0, age_s=20), point(1500.0, age_s=5))
    result = decide(engine_input(metrics=metrics, params=PolicyParams(prewarm=False, scale_up_percent=500)))
    model = next(r for r in result.rules if r.rule == "serving_model")
    assert model.inputs["short_rps"] == pytest.approx(3000.0)
    assert model.replicas == replicas_for(3000.0, SPEC)


@pytest.mark.parametrize(
    ("signals", "breached"),
    [
        ({"p95_ms": 450.0}, True),
        ({"p99_ms": 900.0}, True),
        ({"error_rate": 0.01}, True),
        ({"p95_ms": 120.0, "p99_ms": 250.0, "error_rate": 0.0}, False),
    ],
)
def test_the_slo_guard_scales_out_to_what_the_model_says_meets_the_slo(
    signals: dict[str, float], breached: bool
) -> None:
    params = PolicyParams(model_sizing=False, prewarm=False, scale_up_percent=500)
    result = decide(engine_input(metrics=(point(2000.0, **signals),), provisioned=12, params=params))
    guard = [r for r in result.rules if r.rule == "slo_guard"]
    assert bool(guard) is breached
    if breached:
        assert guard[0].replicas == replicas_for(2000.0, SPEC) == result.desired
        assert "SLO breached" in result.summary


def test_panic_enters_on_a_short_window_surge_and_never_scales_in() -> None:
    # ready 10, the short window needs > 2 × 10: panic; size for the short-window rate.
    metrics = (point(900.0, age_s=20), point(1300.0, age_s=5))  # newest slice ≈ 2,500 rps
    params = PolicyParams(prewarm=False, scale_up_percent=500, model_sizing=False, panic_headroom=0.3)
    result = decide(engine_input(metrics=metrics, provisioned=10, params=params))
    panic = next(r for r in result.rules if r.rule == "panic")
    # A surge is probably still rising: size above the short-window rate.
    assert panic.replicas == replicas_for(2500.0 * (1 + params.panic_headroom), SPEC)
    assert result.desired == panic.replicas
    # Load drops right after the surge: still panicking, so no scale-in.
    calm = (point(900.0, age_s=35), point(1300.0, age_s=20, utilization=1.3), point(100.0, age_s=5))
    held = decide(engine_input(metrics=calm, provisioned=30, params=replace(params, scale_down_stabilization_s=0)))
    assert held.desired == 30
    assert any(r.rule == "panic" for r in held.rules)


def test_it_holds_when_metrics_are_stale() -> None:
    stale = (point(0.0, age_s=600),)
    result = decide(engine_input(metrics=stale))
    assert (result.desired, result.reason) == (10, Reason.METRICS_STALE)


def test_a_sample_stamped_after_now_is_ignored_not_taken_as_the_newest() -> None:
    # A source whose clock runs a second ahead: the sample of 5 s ago is still fresh, and the one from the
    # future (5,000 rps) is not read at all.
    metrics = (point(700.0, age_s=5), point(5000.0, age_s=-1))
    result = decide(engine_input(metrics=metrics))
    assert (result.desired, result.reason) == (10, Reason.WITHIN_TOLERANCE)


NAN, INF = float("nan"), float("inf")


@pytest.mark.parametrize(
    "metrics",
    [
        # A NaN in an older sample: no short-window rate against it (it would be NaN, and panic to the maximum).
        (point(NAN, age_s=20), point(500.0, age_s=5)),
        (point(INF, age_s=20), point(500.0, age_s=5)),
        # A NaN newest rate: the sample before it is the newest with a rate.
        (point(500.0, age_s=20), point(NAN, age_s=5)),
        # Non-finite latency or in-flight counts are missing values, not an SLO breach or a rule's input.
        (point(500.0, p95_ms=INF, p99_ms=NAN, in_flight=NAN, utilization=NAN, error_rate=NAN),),
    ],
)
def test_non_finite_metric_values_count_as_missing(metrics: tuple[MetricPoint, ...]) -> None:
    params = PolicyParams(prewarm=False, target_utilization=0.7, target_in_flight_per_replica=2.0)
    result = decide(engine_input(metrics=metrics, provisioned=4, params=params))
    assert result.desired == decide(engine_input(500.0, 4, params=params)).desired == 8
    assert {r.rule for r in result.rules} == {"target_utilization", "serving_model"}


def test_only_non_finite_rates_are_missing_metrics() -> None:
    result = decide(engine_input(metrics=(point(NAN), point(INF, age_s=20))))
    assert (result.desired, result.reason) == (10, Reason.METRICS_STALE)


def test_it_holds_when_the_metric_source_is_unavailable() -> None:
    result = decide(engine_input(0.0), metrics_unavailable=True)
    assert (result.desired, result.reason) == (10, Reason.METRICS_UNAVAILABLE)


REFUSED = "policy parameter tolerance must be in [0, 0.5], not 0.9"


def test_a_refused_policy_holds_the_count_and_names_the_parameter_and_its_problem() -> None:
    d = hold_on_refused_policy(engine_input(0.0, provisioned=8), parameter="tolerance", problem=REFUSED)
    assert (d.desired, d.current, d.recommendation, d.reason, d.changed) == (8, 8, None, Reason.POLICY_INVALID, False)
    assert d.summary == (
        f"Held at 8: stored policy refused by the engine ({REFUSED}); holding, never scaling in, until a valid one "
        "is saved"
    )
    assert d.rules[0].inputs == {"parameter": "tolerance", "problem": REFUSED}


@pytest.mark.parametrize(
    ("overrides", "mode", "desired", "reason", "says"),
    [
        # An operator's pin or floor is what is wanted while the policy is being mended: both apply.
        ((override("pin", 14),), Mode.ACTIVE, 14, Reason.OVERRIDE_ACTIVE, "Scaled 8 → 14: override 1 pins 14"),
        ((override("floor", 12),), Mode.ACTIVE, 12, Reason.OVERRIDE_ACTIVE, "Scaled 8 → 12: override 1"),
        # A ceiling waits, as on missing metrics: without a policy nothing says the fleet may shrink.
        ((override("ceiling", 5),), Mode.ACTIVE, 8, Reason.POLICY_INVALID, "not applied while the stored policy"),
        ((override("pin", 14),), Mode.DRY_RUN, 14, Reason.DRY_RUN, "Dry run: would scale 8 → 14"),
        ((override("pin", 14),), Mode.PAUSED, 8, Reason.PAUSED, "Held at 8: service paused"),
    ],
)
def test_under_a_refused_policy_overrides_and_modes_still_apply(
    overrides: tuple[OverrideSpec, ...], mode: Mode, desired: int, reason: Reason, says: str
) -> None:
    inp = engine_input(0.0, provisioned=8, overrides=overrides, mode=mode)
    d = hold_on_refused_policy(inp, parameter="tolerance", problem=REFUSED)
    assert (d.desired, d.reason) == (desired, reason)
    assert says in d.summary
    assert REFUSED in d.summary


def test_a_refused_policy_still_moves_the_count_into_the_service_bounds() -> None:
    d = hold_on_refused_policy(engine_input(0.0, provisioned=60), parameter="tolerance", problem=REFUSED)
    assert (d.desired, d.reason) == (SPEC.max_replicas, Reason.POLICY_INVALID)
    assert d.summary.startswith(f"Scaled 60 → {SPEC.max_replicas}: stored policy refused by the engine")


def test_an_unread_latency_does_not_turn_an_slo_breach_into_a_scale_in() -> None:
    params = replace(TT_ONLY, slo_guard=True)
    recent = recorded(1, 1, 1)
    breached = decide(engine_input(metrics=(point(70.0, p95_ms=900.0),), params=params, recent=recent))
    unread = engine_input(metrics=(point(70.0),), params=params, recent=recent)

    # Without its latency the guard is silent and the rate alone asks for one replica.
    assert (breached.desired, decide(unread).desired) == (10, 1)
    held = decide(unread, unread_signals=("p95_ms",))
    assert (held.desired, held.reason) == (10, Reason.METRICS_UNAVAILABLE)
    assert held.summary == "Held at 10: p95_ms unread this tick: no scale-in on part of the signals (policy wants 1)"


def test_it_still_scales_out_while_a_signal_is_unread() -> None:
    result = decide(engine_input(1400.0, recent=recorded(1, 1, 1)), unread_signals=("p95_ms", "in_flight"))
    assert (result.desired, result.reason) == (20, Reason.SCALED_OUT)
    assert "signals_unread_hold" not in [c.name for c in result.constraints]


def test_it_holds_at_the_fallback_count_when_metrics_stay_missing() -> None:
    params = replace(TT_ONLY, fallback_replicas=16, fallback_after_s=300)
    early = decide(engine_input(None, params=params, metrics_missing_since=T0 - timedelta(seconds=100)))
    late = decide(engine_input(None, params=params, metrics_missing_since=T0 - timedelta(seconds=400)))
    assert (early.desired, late.desired) == (10, 16)
    assert late.constraints[-1].name == "fallback_replicas"


def test_it_never_scales_in_on_missing_metrics_even_under_a_ceiling() -> None:
    result = decide(engine_input(None, overrides=(override("ceiling", 4),)))
    assert result.desired == 10


def test_it_stabilizes_scale_in_on_the_highest_recent_recommendation() -> None:
    result = decide(engine_input(70.0, recent=recorded(9, 1)))
    assert (result.desired, result.reason) == (9, Reason.SCALED_IN)
    assert [c.name for c in result.constraints] == ["scale_down_stabilization"]


def test_it_holds_with_a_reason_while_stabilizing() -> None:
    recent = (PastRecommendation(T0 - timedelta(seconds=30), 10),)
    result = decide(engine_input(70.0, recent=recent))
    assert (result.desired, result.reason) == (10, Reason.STABILIZING_SCALE_IN)
    assert result.summary.startswith("Held at 10: waiting out the scale-in stabilization window")


def test_old_recommendations_leave_the_stabilization_window() -> None:
    recent = (PastRecommendation(T0 - timedelta(seconds=400), 10), *recorded(1, 1, 1))
    assert decide(engine_input(70.0, recent=recent)).desired == 1


def _ago(*ages_s: int, replicas: int = 1) -> tuple[PastRecommendation, ...]:
    return tuple(PastRecommendation(T0 - timedelta(seconds=age), replicas) for age in sorted(ages_s, reverse=True))


@pytest.mark.parametrize(
    ("recent", "desired", "reason"),
    [
        ((), 10, Reason.STABILIZING_SCALE_IN),  # a new service: nothing recorded yet
        (_ago(400, 385, 370), 10, Reason.STABILIZING_SCALE_IN),  # metrics missing for six minutes since
        (_ago(15), 10, Reason.STABILIZING_SCALE_IN),  # the first fresh tick after a gap
        (_ago(45, 15), 10, Reason.STABILIZING_SCALE_IN),  # one tick without metrics inside the window
        (_ago(30, 15), 1, Reason.SCALED_IN),  # every tick of the 45 s window recorded
        (_ago(40, 25, 10), 1, Reason.SCALED_IN),  # ... at another phase of the tick
    ],
)
def test_ticks_that_recorded_no_recommendation_count_as_the_current_count(
    recent: tuple[PastRecommendation, ...], desired: int, reason: Reason
) -> None:
    # 70 rps needs one replica; the window is 45 s (a quarter of the 180 s provisioning delay).
    result = decide(engine_input(70.0, recent=recent))
    assert (result.desired, result.reason) == (desired, reason)
    if desired == 10:
        assert "counting the current count for the ticks that recorded none" in result.summary


def test_a_scale_up_stabilization_window_without_records_holds_the_current_count() -> None:
    params = replace(TT_ONLY, scale_up_stabilization_s=60)
    assert decide(engine_input(1400.0, params=params)).desired == 10
    assert decide(engine_input(1400.0, params=params, recent=_ago(60, 45, 30, 15, replicas=20))).desired == 20


@pytest.mark.parametrize(
    ("oldest", "desired"),
    [
        # 30 s ago the engine took 10 to 20; nothing older is known. The minute began at 10: no more now.
        (PastRecommendation(T0 - timedelta(seconds=30), 286, desired=20, provisioned=10), 20),
        # The count before that decision unknown (the live controller's rows): the 20 it set is the oldest known.
        (PastRecommendation(T0 - timedelta(seconds=30), 286, desired=20), 40),
    ],
)
def test_with_no_decision_as_old_as_the_period_the_oldest_count_inside_it_starts_it(
    oldest: PastRecommendation, desired: int
) -> None:
    params = replace(TT_ONLY, scale_up_pods=1, scale_up_percent=100, scale_up_period_s=60)
    recent = (oldest, PastRecommendation(T0 - timedelta(seconds=15), 286, desired=20, provisioned=20))
    assert decide(engine_input(20_000.0, 20, params=params, recent=recent)).desired == desired


@pytest.mark.parametrize(
    ("pods", "percent", "provisioned", "desired"),
    [
        (4, 100.0, 10, 20),  # the larger of 4 pods and 100 %
        (4, 10.0, 10, 14),  # 4 pods beats 10 % of 10
        (0, 50.0, 10, 15),
        (2, 0.0, 10, 12),
    ],
)
def test_it_limits_the_scale_up_rate_like_the_hpa(pods: int, percent: float, provisioned: int, desired: int) -> None:
    params = replace(TT_ONLY, scale_up_pods=pods, scale_up_percent=percent)
    result = decide(engine_input(100_000.0, provisioned, params=params))
    assert result.desired == desired
    assert result.constraints[0].name == "scale_up_rate_limit"


def test_it_counts_changes_made_earlier_in_the_rate_limit_period() -> None:
    params = replace(TT_ONLY, scale_up_pods=4, scale_up_percent=0, scale_up_period_s=60)
    # 30 s ago the count was 10; now 13 are provisioned: only one more fits in this minute.
    recent = (PastRecommendation(T0 - timedelta(seconds=75), 10, desired=10),)
    result = decide(engine_input(100_000.0, 13, params=params, recent=recent))
    assert result.desired == 14


@pytest.mark.parametrize(
    ("pods", "percent", "desired"),
    [(0, 10.0, 18), (5, 10.0, 15), (0, 100.0, 1)],
)
def test_it_limits_the_scale_down_rate(pods: int, percent: float, desired: int) -> None:
    params = _scale_in_params(scale_down_pods=pods, scale_down_percent=percent)
    assert decide(engine_input(0.0, 20, params=params)).desired == desired


@pytest.mark.parametrize(
    ("rps", "provisioned", "desired"),
    [
        (0.0, 9, 8),  # 10 % of 9 is 0.9: the HPA still lets one go
        (0.0, 25, 22),  # 2.5 rounds to 3
        (5000.0, 0, 1),  # none running: 10 % of none still allows the first replica
        (5000.0, 9, 10),
        (5000.0, 25, 28),
    ],
)
def test_a_percent_rate_limit_moves_a_small_fleet_at_least_one_replica(
    rps: float, provisioned: int, desired: int
) -> None:
    params = _scale_in_params(scale_up_pods=0, scale_up_percent=10.0, scale_down_pods=0, scale_down_percent=10.0)
    service = replace(SPEC, min_replicas=0)
    assert decide(engine_input(rps, provisioned, params=params, service=service)).desired == desired


def test_it_waits_out_the_scale_in_cooldown() -> None:
    params = _scale_in_params(scale_in_cooldown_s=600)
    cooling = decide(engine_input(0.0, 20, params=params, last_scale_out_at=T0 - timedelta(seconds=300)))
    cooled = decide(engine_input(0.0, 20, params=params, last_scale_out_at=T0 - timedelta(seconds=900)))
    assert (cooling.desired, cooling.reason) == (20, Reason.COOLDOWN)
    assert cooled.desired == 1


def test_a_pin_beats_the_policy_and_the_bounds() -> None:
    result = decide(engine_input(10.0, overrides=(override("pin", 55),)))
    assert (result.desired, result.reason) == (55, Reason.SCALED_OUT)
    assert result.constraints[-1].name == "override_pin"


def test_a_pin_never_exceeds_the_hard_limit() -> None:
    assert decide(engine_input(10.0, overrides=(override("pin", 500),))).desired == SPEC.hard_max_replicas


def test_a_pin_applies_even_without_metrics() -> None:
    result = decide(engine_input(None, overrides=(override("pin", 3),)))
    assert (result.desired, result.reason) == (3, Reason.OVERRIDE_ACTIVE)


@pytest.mark.parametrize(
    ("overrides", "rps", "desired", "constraint"),
    [
        ((override("floor", 25),), 700.0, 25, "override_floor"),
        ((override("floor", 25, oid=1), override("floor", 30, oid=2)), 700.0, 30, "override_floor"),  # max
        ((override("ceiling", 15),), 2000.0, 15, "override_ceiling"),
        ((override("ceiling", 15, oid=1), override("ceiling", 12, oid=2)), 2000.0, 12, "override_ceiling"),  # min
        ((override("freeze_scale_in"),), 0.0, 10, "override_freeze_scale_in"),
        ((override("freeze"),), 2000.0, 10, "override_freeze"),
        ((override("pin", 7), override("floor", 30, oid=2)), 700.0, 7, "override_pin"),  # pin > floor
    ],
)
def test_overrides_bind_in_precedence(
    overrides: tuple[OverrideSpec, ...], rps: float, desired: int, constraint: str
) -> None:
    params = _scale_in_params(scale_up_percent=500)
    result = decide(engine_input(rps, overrides=overrides, params=params))
    assert result.desired == desired
    assert result.constraints[-1].name == constraint


def test_every_override_in_force_is_listed_the_ones_that_changed_nothing_too() -> None:
    # A freeze of scale-in while demand climbs, and a floor below the count: neither changed it, and a person
    # reading the decision saw neither (the reviewer's "approved freeze, not in the constraints").
    overrides = (override("freeze_scale_in", oid=1), override("floor", 3, oid=2))
    result = decide(engine_input(2000.0, overrides=overrides, params=_scale_in_params(scale_up_percent=500)))
    assert result.desired > 10
    listed = [(c.name, c.before, c.after, c.detail) for c in result.constraints if c.name.startswith("override_")]
    count = result.desired
    assert listed == [
        (
            "override_freeze_scale_in",
            count,
            count,
            "override 1 freezes scale-in: marquee game (in force; changed nothing this tick)",
        ),
        ("override_floor", count, count, "override 2 floor 3: marquee game (in force; changed nothing this tick)"),
    ]
    assert result.reason is Reason.SCALED_OUT and "override" not in result.summary
    # Under a pin, the others are in force but overruled, and say by what.
    pinned = decide(engine_input(700.0, overrides=(*overrides, override("pin", 7, oid=3))))
    assert [(c.name, c.detail.endswith("(in force; overruled by override 3's pin)")) for c in pinned.constraints] == [
        ("override_freeze_scale_in", True),
        ("override_floor", True),
        ("override_pin", False),
    ]
    assert pinned.desired == 7 and pinned.summary.endswith("override 3 pins 7: marquee game")


def test_a_freeze_holds_within_the_service_bounds() -> None:
    # Only a pin may leave the bounds: a freeze on a fleet above its maximum holds at the maximum.
    result = decide(engine_input(700.0, 50, overrides=(override("freeze"),)))
    assert (result.desired, result.reason) == (40, Reason.SCALED_IN)
    assert [c.name for c in result.constraints][-2:] == ["override_freeze", "max_replicas"]
    assert decide(engine_input(None, 50, overrides=(override("freeze"),))).desired == 40


@pytest.mark.parametrize(
    ("overrides", "desired"),
    [
        ((override("floor", 20),), 20),  # the floor scales out, not the missing metrics
        ((override("pin", 10),), 10),  # a pin sets the count, even to the current one
        ((override("freeze"),), 10),  # ... as a freeze does, the fallback count included
    ],
)
def test_without_metrics_an_override_that_sets_the_count_is_the_reason(
    overrides: tuple[OverrideSpec, ...], desired: int
) -> None:
    params = replace(TT_ONLY, fallback_replicas=15, fallback_after_s=60)
    result = decide(engine_input(None, overrides=overrides, params=params))
    assert (result.desired, result.reason) == (desired, Reason.OVERRIDE_ACTIVE)
    missing = decide(engine_input(None, params=params, metrics_missing_since=T0 - timedelta(seconds=600)))
    frozen = decide(
        engine_input(
            None, overrides=(override("freeze"),), params=params, metrics_missing_since=T0 - timedelta(seconds=600)
        )
    )
    assert (missing.desired, missing.reason, frozen.desired) == (15, Reason.METRICS_STALE, 10)


def test_an_expired_override_never_applies() -> None:
    floor = override("floor", 30, start_min=-120, end_min=0)
    assert decide(engine_input(700.0, overrides=(floor,))).desired == 10


def test_a_future_override_does_not_apply_yet() -> None:
    floor = override("floor", 30, start_min=5, end_min=60)
    assert decide(engine_input(700.0, overrides=(floor,))).desired == 10


@pytest.mark.parametrize(
    ("overrides", "held"),
    [
        ((), (1, None)),  # the policy's 0, bounded
        ((override("floor", 25), override("freeze_scale_in", oid=2)), (25, None)),
        ((override("floor", 5), override("freeze_scale_in", oid=2)), (10, None)),  # the freeze holds the 10 running
        ((override("ceiling", 5), override("freeze", oid=2)), (10, "freeze")),
        ((override("pin", 55), override("freeze", oid=2)), (55, "pin")),  # over the maximum 40: a pin may
    ],
)
def test_held_under_overrides_is_what_decide_holds(
    overrides: tuple[OverrideSpec, ...], held: tuple[int, str | None]
) -> None:
    # The policy's count 0 against 10 running, through the overrides and bounds alone, as a preview asks.
    assert held_under_overrides(SPEC, overrides, now=T0, provisioned=10, policy_count=0) == held
    assert decide(engine_input(0.0, overrides=overrides, recent=recorded(0, 0, 0))).desired == held[0]


def test_a_paused_service_holds() -> None:
    result = decide(engine_input(5000.0, mode=Mode.PAUSED))
    assert (result.desired, result.reason) == (10, Reason.PAUSED)


def test_dry_run_computes_but_says_so() -> None:
    result = decide(engine_input(1400.0, mode=Mode.DRY_RUN))
    assert (result.desired, result.reason) == (20, Reason.DRY_RUN)
    assert result.summary.startswith("Dry run: would scale 10 → 20, not actuated")


def test_it_reports_at_max_when_the_bound_holds_it() -> None:
    result = decide(engine_input(10_000.0, 40))
    assert (result.desired, result.reason) == (40, Reason.AT_MAX)
    assert result.summary.startswith("Held at 40: at the service maximum")


def test_every_decision_serializes_to_json() -> None:
    import json

    result = decide(engine_input(1400.0, params=PolicyParams()))
    data = json.loads(json.dumps(result.to_dict()))
    assert data["reason"] == "SCALED_OUT"
    assert {r["rule"] for r in data["rules"]} >= {"serving_model", "forecast"}


def _steady_600_then(newest: float) -> tuple[MetricPoint, ...]:
    """60 s windows a tick apart at 600 rps, then one whose newest 15 s run at 600 + 4 × (newest − 600)."""
    return (point(600.0, age_s=50), point(600.0, age_s=35), point(600.0, age_s=20), point(newest, age_s=5))


def _panic_on_8_replicas(metrics: tuple[MetricPoint, ...], params: PolicyParams) -> tuple[Decision, RuleResult]:
    result = decide(engine_input(metrics=metrics, provisioned=8, params=params))
    return result, next(r for r in result.rules if r.rule == "panic")


def test_panic_enters_on_a_sudden_surge_over_the_minutes_before() -> None:
    # Steady at 600 rps, then the newest 15 s run at 1,200: × 2, more than the 8 ready serve. The calendar has
    # nothing to say (no baseline, no game): the jump over the minutes before is the test.
    metrics = _steady_600_then(750.0)
    params = PolicyParams(prewarm=False, scale_up_percent=500)
    silent = Forecaster(baseline=(0.0,) * 48, profiles={}, learned=True)
    result = decide(engine_input(metrics=metrics, provisioned=8, params=params, forecaster=silent))
    panic = next(r for r in result.rules if r.rule == "panic")
    assert panic.inputs["surge"] is True
    # Sized for the rise still to come: 3 × the 600 rps before it (1,800) against 1,200 × 1.6 (1,920).
    above_slice = replicas_for(1200.0 * (1 + params.panic_headroom), SPEC, params.sizing_target)
    tripled = replicas_for(3 * 600.0, SPEC, params.sizing_target)
    assert panic.replicas == max(above_slice, tripled) == result.desired
    assert (panic.inputs["surge_base_rps"], panic.inputs["surge_multiple"]) == (600.0, 3.0)
    assert panic.inputs["surge_base_from"] == "before"
    # The sentence names what sized the count: here the headroom over the slice, the larger.
    assert rule_sentence(panic) == (
        "panic: short-window 1,200 rps is 2× the 600 rps of the minute or two before, with no forecast for now "
        "(panic at 2×, panic_surge_ratio); provisioning 21 with 60 % headroom (the surge may still rise)"
    )
    less_headroom = decide(
        engine_input(metrics=metrics, provisioned=8, params=replace(params, panic_headroom=0.3), forecaster=silent)
    )
    tripling = next(r for r in less_headroom.rules if r.rule == "panic")
    assert tripling.replicas == tripled
    assert rule_sentence(tripling).endswith("; provisioning 19 for 3× the 600 rps before it")
    calm = decide(engine_input(metrics=metrics[:3], provisioned=8, params=params, forecaster=silent))
    assert all(r.rule != "panic" for r in calm.rules)


def _scale_in_params(**kw: object) -> PolicyParams:
    return replace(TT_ONLY, scale_down_stabilization_s=0.0, stabilization_per_delay=0.0, **kw)  # type: ignore[arg-type]


def test_at_the_service_minimum_the_bound_not_a_scale_in_rule_explains_the_hold() -> None:
    # Two replicas at a minimum of two: the policy wants one while the rate climbs and a stabilization window
    # remembers more, but the fleet could not scale in anyway. The bound says why it holds.
    at_min = replace(SPEC, min_replicas=2)
    climbing = (point(50.0, age_s=80), point(51.0, age_s=35), point(52.0, age_s=5))
    recent = (PastRecommendation(T0 - timedelta(seconds=20), 2),)
    result = decide(engine_input(metrics=climbing, provisioned=2, params=TT_ONLY, service=at_min, recent=recent))
    assert (result.desired, result.reason) == (2, Reason.AT_MIN)
    assert [c.name for c in result.constraints] == ["min_replicas"]
    assert result.summary.startswith("Held at 2: at the service minimum (policy wants 1;")
    # One above the minimum, the scale-in rules shape the step as before.
    above = decide(engine_input(metrics=climbing, provisioned=3, params=TT_ONLY, service=at_min, recent=recent))
    assert above.desired == 3 and above.reason is Reason.STABILIZING_SCALE_IN


def test_it_holds_scale_in_while_the_observed_rate_climbs() -> None:
    # 630 rps would need 9 replicas at 70 %, but the rate rose 12 % in a minute (a close finish climbing).
    climbing = (point(560.0, age_s=80), point(600.0, age_s=35), point(630.0, age_s=5))
    result = decide(engine_input(metrics=climbing, provisioned=20, params=_scale_in_params()))
    assert (result.desired, result.reason) == (20, Reason.STABILIZING_SCALE_IN)
    assert [c.name for c in result.constraints] == ["demand_rising"]
    assert result.summary == (
        "Held at 20: holding scale-in while demand climbs "
        "(policy wants 9; short-window rate 660.0 rps is 17.9% above the 560.0 rps of the sample 75 s older, "
        "more than 2%)"
    )

    # Just over the threshold, the rise shows the digits that tell it from the threshold.
    barely = (point(600.0, age_s=80), point(612.24, age_s=35), point(612.24, age_s=5))
    result = decide(engine_input(metrics=barely, provisioned=20, params=_scale_in_params()))
    assert "612.2 rps is 2.04% above the 600.0 rps of the sample 75 s older, more than 2%" in result.summary
    result = decide(engine_input(metrics=climbing, provisioned=20, params=_scale_in_params(scale_in_hold_rising=0.025)))
    assert "more than 2.5%" in result.summary

    flat = (point(630.0, age_s=80), point(630.0, age_s=35), point(630.0, age_s=5))
    result = decide(engine_input(metrics=flat, provisioned=20, params=_scale_in_params()))
    assert result.desired == 9
    off = decide(engine_input(metrics=climbing, provisioned=20, params=_scale_in_params(scale_in_hold_rising=0.0)))
    assert off.desired == 9


@pytest.mark.parametrize(("delay_s", "held"), [(180, False), (420, True)])
def test_a_slower_backend_stabilizes_scale_in_for_longer(delay_s: int, held: bool) -> None:
    # A recommendation of 10 from 90 s ago: outside a 60 s window, inside 0.25 × 420 s = 105 s.
    params = replace(TT_ONLY, scale_down_stabilization_s=60.0, stabilization_per_delay=0.25)
    spec = replace(SPEC, provisioning_delay_s=delay_s)
    result = decide(engine_input(70.0, service=spec, params=params, recent=recorded(10, 1, 1, 1, 1, 1)))
    assert result.desired == (10 if held else 1)
    assert params.scale_down_window_s(delay_s) == (105.0 if held else 60.0)


def test_few_replicas_are_sized_for_the_slo_target_itself() -> None:
    # 150 rps: two replicas meet 99.9 % (0.99925) but not the 99.93 % sizing target; one replica is half the fleet.
    params = PolicyParams(prewarm=False, scale_up_percent=500)
    assert replicas_for(150.0, SPEC) == 2 < replicas_for(150.0, SPEC, params.sizing_target)
    result = decide(engine_input(150.0, provisioned=2, params=params))
    assert next(r for r in result.rules if r.rule == "serving_model").replicas == 2
    # Above `low_count_replicas` the sizing target's margin applies again.
    big = decide(engine_input(2350.0, provisioned=30, params=params))
    assert next(r for r in big.rules if r.rule == "serving_model").replicas == replicas_for(
        2350.0, SPEC, params.sizing_target
    )
    strict = decide(engine_input(150.0, provisioned=2, params=replace(params, low_count_replicas=0)))
    assert next(r for r in strict.rules if r.rule == "serving_model").replicas == 3


def test_panic_enters_on_a_surge_the_calendar_does_not_explain() -> None:
    # Steady at 600 rps, then the newest 15 s at 900: only × 1.5 over the minutes before (under the × 2 of
    # the plain surge test), but 1.5 × what the forecast expects now, and more than the 8 ready serve.
    metrics = _steady_600_then(675.0)
    params = PolicyParams(prewarm=False, scale_up_percent=500)
    _, panic = _panic_on_8_replicas(metrics, params)
    assert panic.inputs["surge"] is True
    # The first tick of a surge sees only the start of its rise: 3 × what the calendar expects when new
    # replicas are ready (the 600 rps before it, as the flat night runs, with the forecast's 5 % headroom),
    # not 900 × 1.6.
    base = panic.inputs["surge_base_rps"]
    assert base == pytest.approx(600.0 * (1 + params.forecast_headroom), rel=0.02)
    assert panic.inputs["surge_base_from"] == "calendar"
    assert panic.replicas == replicas_for(3 * base, SPEC, params.sizing_target)
    assert panic.inputs["unforecast_surge_over_rps"] == pytest.approx(600.0, rel=0.02)
    assert "the calendar expects when new replicas are ready" in rule_sentence(panic)
    plain = decide(engine_input(metrics=metrics, provisioned=8, params=replace(params, panic_surge_multiple=0.0)))
    plain_panic = next(r for r in plain.rules if r.rule == "panic")
    assert plain_panic.replicas == replicas_for(900.0 * (1 + params.panic_headroom), SPEC, params.sizing_target)
    assert "surge_base_rps" not in plain_panic.inputs
    off = decide(engine_input(metrics=metrics, provisioned=8, params=replace(params, panic_unforecast_ratio=0.0)))
    assert all(r.rule != "panic" for r in off.rules)


def test_a_surge_is_watched_for_once_the_ready_replicas_have_none_to_spare() -> None:
    # In a game (the calendar expects 600 rps), an unexplained 1.5 × rise: with exactly the replicas the short
    # window needs ready, the next slice of a surge overloads them, so it panics; with one to spare it waits
    # for the next tick.
    flat = (500.0,) * 361
    forecaster = Forecaster(baseline=(100.0,) * 48, profiles={"national": flat, "regional": flat}, learned=True)
    games = (game(T0 - timedelta(minutes=60)),)
    metrics = _steady_600_then(675.0)
    params = PolicyParams(prewarm=False, scale_up_percent=500)
    needed = replicas_for(900.0 * (1 + params.reactive_headroom), SPEC, params.sizing_target)

    def panic_on(ready: int) -> RuleResult | None:
        inp = engine_input(metrics=metrics, provisioned=ready, params=params, forecaster=forecaster, games=games)
        return next((r for r in decide(inp).rules if r.rule == "panic"), None)

    at_need = panic_on(needed)
    assert at_need is not None and at_need.inputs["surge"] is True
    assert panic_on(needed + 1) is None


@pytest.mark.parametrize(
    ("step_to", "newest"),
    [
        pytest.param(800.0, 675.0, id="quarter end: x1.5 over the minute before"),
        pytest.param(1100.0, 750.0, id="halftime: x2, however steep"),
    ],
)
def test_a_surge_the_forecast_expects_is_no_panic(step_to: float, newest: float) -> None:
    # The jump lands at the minute a game's learned profile steps up from 500 rps: the calendar explains it,
    # so no panic — it would provision 1.6 × a surge the forecast already covers.
    profile = tuple(500.0 if i <= 178 else step_to for i in range(361))
    forecaster = Forecaster(baseline=(100.0,) * 48, profiles={"national": profile, "regional": profile}, learned=True)
    tip = T0 - timedelta(seconds=5 + 7.5) - timedelta(minutes=59)
    metrics = _steady_600_then(newest)
    params = PolicyParams(prewarm=False, scale_up_percent=500)
    result = decide(
        engine_input(metrics=metrics, provisioned=8, params=params, forecaster=forecaster, games=(game(tip),))
    )
    assert all(r.rule != "panic" for r in result.rules)
    # The same jump with no game on the calendar is breaking news.
    unexplained = decide(engine_input(metrics=metrics, provisioned=8, params=params))
    assert next(r for r in unexplained.rules if r.rule == "panic").inputs["surge"] is True


@pytest.mark.parametrize(
    ("step_at_bin", "panics"),
    [
        pytest.param(None, True, id="the calendar expects no jump: x1.33 is news"),
        pytest.param(180, False, id="a step a minute ahead: x1.33 may be it, mistimed"),
    ],
)
def test_where_the_calendar_expects_no_jump_a_smaller_rise_panics(step_at_bin: int | None, panics: bool) -> None:
    # In a game (500 rps by its profile, 100 of baseline), the newest 15 s run at 650: the short window's
    # 800 rps is 1.33 × the 600 the calendar expects — under the 1.4 of game hours, over the 1.3 where the
    # calendar's forecast is flat for two minutes either side. A step up a minute ahead is not flat.
    profile = tuple(800.0 if step_at_bin is not None and i >= step_at_bin else 500.0 for i in range(361))
    forecaster = Forecaster(baseline=(100.0,) * 48, profiles={"national": profile, "regional": profile}, learned=True)
    tip = T0 - timedelta(seconds=5 + 7.5) - timedelta(minutes=59)
    params = PolicyParams(prewarm=False, scale_up_percent=500)
    result = decide(
        engine_input(
            metrics=_steady_600_then(650.0), provisioned=8, params=params, forecaster=forecaster, games=(game(tip),)
        )
    )
    panic = next((r for r in result.rules if r.rule == "panic"), None)
    if not panics:
        assert panic is None
        return
    assert panic is not None and panic.inputs["calendar_smooth"] is True
    assert rule_sentence(panic).startswith(
        "panic: short-window 800 rps is 1.33× the calendar's expectation of 600 rps "
        "(panic at 1.3× where the calendar expects no jump near now, panic_smooth_ratio); "
    )
    # Sized for 3 × the calendar's 600 rps on arrival, with the forecast's headroom.
    assert panic.inputs["surge_base_rps"] == pytest.approx(600.0 * (1 + params.forecast_headroom), rel=1e-3)
    assert panic.replicas == result.desired == replicas_for(3 * 630.0, SPEC, params.sizing_target)
    off = decide(
        engine_input(
            metrics=_steady_600_then(650.0),
            provisioned=8,
            params=replace(params, panic_smooth_ratio=0.0),
            forecaster=forecaster,
            games=(game(tip),),
        )
    )
    assert all(r.rule != "panic" for r in off.rules)


def test_in_quiet_hours_a_smaller_rise_panics_before_the_ready_replicas_fall_short() -> None:
    # Night, no game near: 100 rps on 2 replicas, then the newest 15 s at 130 — still within what the 2
    # serve, and only 1.3 × the forecast, but no scheduled surge can explain it: breaking news, caught as
    # it starts and sized for 3 × the 100 rps before it.
    metrics = (point(100.0, age_s=50), point(100.0, age_s=35), point(100.0, age_s=20), point(107.5, age_s=5))
    params = PolicyParams(prewarm=False, scale_up_percent=500)
    result = decide(engine_input(metrics=metrics, provisioned=2, params=params))
    panic = next(r for r in result.rules if r.rule == "panic")
    assert (panic.inputs["surge"], panic.inputs["quiet_hours"], panic.inputs["needed"]) == (True, True, 2)
    assert panic.replicas == result.desired == replicas_for(300.0, SPEC) == 4
    assert "no game near" in rule_sentence(panic)
    # The same rise with a game on the calendar is left to the game-hours test (1.4 × the forecast).
    tip = T0 + timedelta(minutes=60)
    in_game_hours = decide(engine_input(metrics=metrics, provisioned=2, params=params, games=(game(tip),)))
    assert all(r.rule != "panic" for r in in_game_hours.rules)
    off = decide(engine_input(metrics=metrics, provisioned=2, params=replace(params, panic_quiet_ratio=0.0)))
    assert all(r.rule != "panic" for r in off.rules)


@pytest.mark.parametrize(
    ("games", "scaling_in", "expected"),
    [
        # A game label carries its zone ("at 20:30 ET"); the forecast time follows it in the same zone.
        (
            ["LAL @ BOS (ABC) at 20:30 ET"],
            False,
            "pre-warming for LAL @ BOS (ABC) at 20:30 ET; forecast 1,640 rps at 20:27 ET",
        ),
        # Without one, the sentence names the zone itself: the timeline beside it is in UTC.
        ([], False, "forecast 1,640 rps at 20:27 ET"),
        # Scaling in, the count is what the forecast needs until replicas asked for now could serve.
        (
            ["LAL @ BOS (ABC) at 20:30 ET"],
            True,
            "fewer needed until replicas asked for now could serve: forecast 1,640 rps at 20:27 ET",
        ),
    ],
)
def test_the_forecast_sentence_names_the_time_zone_of_its_time(
    games: list[str], scaling_in: bool, expected: str
) -> None:
    rule = RuleResult(
        rule="forecast",
        replicas=18,
        inputs={"forecast_rps": 1640.0, "forecast_at": "2026-01-13T01:27:00+00:00", "games": games, "more_games": 0},
    )
    assert rule_sentence(rule, scaling_in=scaling_in) == expected
