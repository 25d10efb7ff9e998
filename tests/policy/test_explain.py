"""Every decision explains itself: one reason code, each rule's recommendation with its inputs, each
binding constraint, and one sentence a person can read."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from scaling.policy import EngineInput, Mode, PastRecommendation, PolicyParams, Reason, decide
from scaling.policy.explain import forecast_arithmetic, rule_sentence
from scaling.policy.types import RuleResult, ServiceSpec
from tests.policy.builders import (
    FINISH_SPEC,
    SPEC,
    T0,
    TT_ONLY,
    engine_input,
    finish_input,
    finishing_forecaster,
    game,
    override,
    point,
    recorded,
)

MODEL = PolicyParams(prewarm=False, scale_up_percent=500)


@pytest.mark.parametrize(
    ("inp", "reason"),
    [
        (engine_input(700.0), Reason.WITHIN_TOLERANCE),
        # The serving model sizes for exactly the current count: no tolerance band was involved.
        (engine_input(900.0, params=replace(MODEL, target_utilization=0.0)), Reason.NO_CHANGE),
        (engine_input(70.0, recent=(PastRecommendation(T0 - timedelta(seconds=30), 10),)), Reason.STABILIZING_SCALE_IN),
        (engine_input(10_000.0, 40), Reason.AT_MAX),
        (engine_input(0.0, 1), Reason.AT_MIN),
        (engine_input(2000.0, overrides=(override("freeze"),)), Reason.OVERRIDE_ACTIVE),
        (engine_input(metrics=(point(500.0, age_s=900),)), Reason.METRICS_STALE),
        (
            engine_input(
                0.0,
                20,
                params=replace(
                    TT_ONLY, scale_in_cooldown_s=600, scale_down_stabilization_s=0, stabilization_per_delay=0
                ),
                last_scale_in_at=T0 - timedelta(seconds=60),
            ),
            Reason.COOLDOWN,
        ),
        (engine_input(1400.0, mode=Mode.DRY_RUN), Reason.DRY_RUN),
        (engine_input(1400.0, mode=Mode.PAUSED), Reason.PAUSED),
        (engine_input(1400.0), Reason.SCALED_OUT),
        (
            engine_input(0.0, 20, params=replace(TT_ONLY, scale_down_stabilization_s=0, stabilization_per_delay=0)),
            Reason.SCALED_IN,
        ),
        (
            engine_input(
                0.0,
                20,
                params=replace(
                    TT_ONLY,
                    scale_down_stabilization_s=0,
                    stabilization_per_delay=0,
                    scale_down_percent=0,
                    scale_down_pods=0,
                ),
            ),
            Reason.RATE_LIMITED,
        ),
    ],
)
def test_every_decision_carries_one_reason_code(inp: object, reason: Reason) -> None:
    assert decide(inp).reason is reason  # type: ignore[arg-type]


COOLING = replace(TT_ONLY, scale_down_stabilization_s=300, scale_in_cooldown_s=300)
NO_SCALE_IN = replace(TT_ONLY, scale_down_percent=0, scale_down_pods=0)


@pytest.mark.parametrize(
    ("inp", "reason", "summary"),
    [
        # The window lets 10 go to 8, then the cooldown holds all 10: the cooldown is why.
        (
            engine_input(
                70.0, params=COOLING, recent=recorded(*[8] * 20), last_scale_out_at=T0 - timedelta(seconds=100)
            ),
            Reason.COOLDOWN,
            "Held at 10: scale-in cooldown "
            "(policy wants 1; scale-in stabilization 1 → 8, then 300 s cooldown, 200 s left)",
        ),
        (
            engine_input(70.0, params=NO_SCALE_IN, recent=recorded(9, 9, 9)),
            Reason.RATE_LIMITED,
            "Held at 10: scale-in rate limit "
            "(policy wants 1; scale-in stabilization 1 → 9, "
            "then at most 0 replicas per 15 s (the larger of 0 and 0 % of 10))",
        ),
        (
            engine_input(1400.0, params=replace(TT_ONLY, scale_up_stabilization_s=60), recent=recorded(10, 10, 10, 10)),
            Reason.STABILIZING_SCALE_OUT,
            "Held at 10: waiting out the scale-out stabilization window "
            "(policy wants 20; lowest recommendation in the last 60 s was 10)",
        ),
        (
            engine_input(1400.0, recent=(PastRecommendation(T0 - timedelta(seconds=20), 2, 2),)),
            Reason.RATE_LIMITED,
            "Held at 10: scale-out rate limit "
            "(policy wants 20; at most 4 replicas per 15 s (the larger of 4 and 200 % of 2))",
        ),
        # A ceiling of 50, then the service's maximum of 40: the bound binds last.
        (
            engine_input(10_000.0, 40, overrides=(override("ceiling", 50),)),
            Reason.AT_MAX,
            "Held at 40: at the service maximum (policy wants 161; scale-out rate limit 161 → 120, "
            "then override 1 ceiling 120 → 50, then service bounds [1, 40])",
        ),
    ],
)
def test_a_hold_is_explained_by_the_constraint_that_bound_last(inp: object, reason: Reason, summary: str) -> None:
    result = decide(inp)  # type: ignore[arg-type]
    assert (result.reason, result.summary) == (reason, summary)


def test_a_source_outage_reads_as_unavailable() -> None:
    result = decide(engine_input(700.0), metrics_unavailable=True)
    assert result.reason is Reason.METRICS_UNAVAILABLE
    assert result.summary == "Held at 10: metric source unavailable; holding (never scaling in on missing data)"


@pytest.mark.parametrize(
    ("inp", "summary"),
    [
        (
            engine_input(1800.0, params=MODEL),
            "Scaled 10 → 19: observed 1,800 rps needs 19 for 99.9 % within 300 ms",
        ),
        (
            engine_input(9000.0, params=replace(MODEL, scale_up_percent=100, panic_threshold=0)),
            "Scaled 10 → 20: observed 9,000 rps needs 91 for 99.9 % within 300 ms "
            "(at most 10 replicas per 15 s (the larger of 4 and 100 % of 10); wanted 91)",
        ),
        (
            engine_input(10.0, overrides=(override("pin", 55, oid=7),)),
            "Scaled 10 → 55: override 7 pins 55: marquee game",
        ),
        (
            engine_input(metrics=(point(1500.0, p95_ms=480.0),), params=replace(MODEL, model_sizing=False)),
            "Scaled 10 → 16: SLO breached (p95 480 ms vs 300 ms); 1,500 rps needs 16",
        ),
        (
            engine_input(700.0),
            "Held at 10: load within tolerance of target "
            "(700 rps is utilization 0.70 of 10 × 100 rps vs target 0.70; within ±10 % of target)",
        ),
        (
            engine_input(900.0, params=replace(MODEL, target_utilization=0.0)),
            "Held at 10: already at the count the policy asks for (observed 900 rps needs 10 for 99.9 % within 300 ms)",
        ),
        (
            engine_input(1400.0, mode=Mode.DRY_RUN),
            "Dry run: would scale 10 → 20, not actuated: 1,400 rps is utilization 1.40 of 10 × 100 rps vs target 0.70",
        ),
    ],
)
def test_the_summary_is_one_readable_sentence(inp: object, summary: str) -> None:
    assert decide(inp).summary == summary  # type: ignore[arg-type]


def test_the_reactive_sentences_name_the_rate_and_count_their_rule_sized_for() -> None:
    # 60 s windows 15 s apart: the mean rose by 500 rps, so the newest 15 s ran at about 3,000 rps.
    metrics = (point(1000.0, age_s=20), point(1500.0, age_s=5))
    params = PolicyParams(prewarm=False, scale_up_percent=1000, panic_threshold=0)
    result = decide(engine_input(metrics=metrics, params=params))
    assert result.summary == "Scaled 10 → 31: short-window 3,000 rps needs 31 for 99.9 % within 300 ms"
    with_headroom = decide(engine_input(metrics=metrics, params=replace(params, reactive_headroom=0.2)))
    assert with_headroom.summary.startswith("Scaled 10 → 37: short-window 3,000 rps + 20 % headroom needs 37 for")
    roomy = replace(SPEC, max_replicas=60)
    panicking = decide(engine_input(metrics=metrics, params=replace(params, panic_threshold=2.0), service=roomy))
    assert panicking.summary == (
        "Scaled 10 → 49: panic: short-window 3,000 rps needs 31, 3.1× the 10 ready (panic at 2×, panic_threshold); "
        "provisioning 49 with 60 % headroom (the surge may still rise)"
    )


def test_each_rule_reports_its_recommendation_and_inputs() -> None:
    params = PolicyParams(target_utilization=0.7, target_rps_per_replica=80.0)
    result = decide(engine_input(1400.0, params=params, metrics=(point(1400.0, p95_ms=900.0),)))
    rules = {r.rule: r for r in result.rules}
    assert set(rules) >= {"target_utilization", "target_rps_per_replica", "serving_model", "slo_guard", "forecast"}
    assert rules["target_rps_per_replica"].replicas == 18
    assert rules["target_rps_per_replica"].inputs["rps"] == 1400.0
    assert result.recommendation == max(r.replicas for r in result.rules if r.replicas is not None)


def test_every_binding_constraint_is_listed_in_order() -> None:
    params = replace(TT_ONLY, scale_up_percent=50, scale_up_pods=0)
    result = decide(engine_input(5000.0, 30, params=params))
    assert [(c.name, c.before, c.after) for c in result.constraints] == [
        ("scale_up_rate_limit", 72, 45),
        ("max_replicas", 45, 40),
    ]


@pytest.mark.parametrize(
    ("overtime", "tail"),
    [
        (["LAL @ BOS (ABC) at 19:30 ET"], "; LAL @ BOS (ABC) at 19:30 ET went to overtime"),
        (["A @ B at 19:00 ET", "C @ D at 19:00 ET"], "; A @ B at 19:00 ET and C @ D at 19:00 ET went to overtime"),
        ([], ""),
    ],
)
def test_the_forecast_sentence_names_the_games_read_as_in_overtime(overtime: list[str], tail: str) -> None:
    inputs = {
        "forecast_rps": 1640.0,
        "forecast_at": "2026-01-16T03:27:00+00:00",
        "games": ["LAL @ BOS (ABC) at 19:30 ET"],
        "more_games": 0,
        "overtime": overtime,
    }
    sentence = rule_sentence(RuleResult(rule="forecast", replicas=18, inputs=inputs))
    assert sentence == f"pre-warming for LAL @ BOS (ABC) at 19:30 ET; forecast 1,640 rps at 22:27 ET{tail}"


COLD_START = "no learned history yet: a generic game's shape, scaled to the traffic observed now"


@pytest.mark.parametrize(
    ("headroom", "learned", "tail"),
    [
        (0.134, True, " + 13.4 % headroom"),
        (0.5, False, f" + 50 % headroom ({COLD_START})"),
        (0.0, True, ""),
        # A cold start says what its forecast assumed whatever its headroom: cold_start_headroom may be 0.
        (0.0, False, f" ({COLD_START})"),
    ],
)
def test_the_forecast_sentence_names_the_headroom_above_the_forecast(headroom: float, learned: bool, tail: str) -> None:
    # The count is sized for the forecast plus its headroom: without it, 1,640 rps "needing" 27 replicas reads
    # as a mistake, above all on a cold start, whose headroom is large for want of a learned profile.
    inputs = {
        "forecast_rps": 1640.0,
        "forecast_at": "2026-01-16T03:27:00+00:00",
        "games": ["LAL @ BOS (ABC) at 19:30 ET"],
        "more_games": 0,
        "headroom": headroom,
        "learned": learned,
    }
    sentence = rule_sentence(RuleResult(rule="forecast", replicas=27, inputs=inputs))
    assert sentence == f"pre-warming for LAL @ BOS (ABC) at 19:30 ET; forecast 1,640 rps at 22:27 ET{tail}"


@pytest.mark.parametrize("scaling_in", [False, True])
def test_a_count_kept_for_a_sooner_peak_says_what_it_is_kept_for(scaling_in: bool) -> None:
    inputs = {
        "forecast_rps": 3666.0,
        "forecast_at": "2026-01-20T00:08:15+00:00",
        "games": ["DAL @ NYK (NBC | Peacock) at 17:00 ET"],
        "more_games": 2,
        "kept_for_rps": 3656.1,
        "kept_for_at": "2026-01-20T00:05:00+00:00",
    }
    sentence = rule_sentence(RuleResult(rule="forecast", replicas=45, inputs=inputs), scaling_in=scaling_in)
    assert sentence == (
        "keeping 45 for 3,656 rps expected at 19:05 ET, before replicas asked for now could serve; "
        "forecast 3,666 rps at 19:08 ET"
    )


def test_a_panic_that_adds_nothing_yields_the_explanation_to_the_rule_that_sized_the_count() -> None:
    # A rise no game explains: panic fires, but sized without headroom or surge multiple it asks only for the
    # two replicas running — as does target tracking, which sized for them. Target tracking explains the hold.
    params = replace(TT_ONLY, panic_headroom=0.0, panic_surge_multiple=0.0)
    climbing = (point(80.0, age_s=80), point(96.0, age_s=35), point(104.0, age_s=5))
    result = decide(engine_input(metrics=climbing, provisioned=2, params=params))
    rules = {r.rule: r.replicas for r in result.rules}
    assert rules == {"target_utilization": 2, "panic": 2}
    assert result.reason is Reason.NO_CHANGE
    assert result.summary.startswith(
        "Held at 2: already at the count the policy asks for "
        "(104 rps is utilization 0.52 of 2 × 100 rps vs target 0.70)"
    )
    # When panic holds more than any rule sized for, it explains the hold (no scale-in while panicking).
    held = decide(engine_input(metrics=climbing, provisioned=4, params=params))
    assert (held.desired, held.reason) == (4, Reason.PANICKING)
    assert held.summary.startswith("Held at 4: panic: short-window") and held.summary.endswith(
        "keeping 4: no scale-in while panicking"
    )


def test_a_breached_slo_never_asks_for_fewer_replicas_than_are_running() -> None:
    # 800 rps at 10 replicas: the serving model says 9 suffice, yet p99 is at 650 ms. The guard holds 10
    # and the summary names the breach, not a stabilization window.
    steady = tuple(point(800.0, age_s=5.0 + 15.0 * (8 - n)) for n in range(7))
    breached = (*steady, point(800.0, p99_ms=650.0, p95_ms=420.0, error_rate=0.004))
    result = decide(engine_input(metrics=breached, params=PolicyParams(prewarm=False)))
    guard = next(r for r in result.rules if r.rule == "slo_guard")
    assert (guard.replicas, guard.inputs["model_replicas"], guard.inputs["model_below_running"]) == (10, 9, True)
    assert result.reason is Reason.SLO_BREACHED
    assert result.summary == (
        "Held at 10: SLO breached (p99 650 ms, p95 420 ms vs 300 ms; errors 0.4 %): "
        "the serving model says 9 serve 800 rps; holding 10"
    )


@pytest.mark.parametrize(
    ("error_rate", "shown"), [(1.0, "errors 100 %"), (0.004, "errors 0.4 %"), (0.01234, "errors 1.23 %")]
)
def test_an_error_rate_reads_as_a_percentage_to_three_figures(error_rate: float, shown: str) -> None:
    # It read "errors 1e+02 %" when every request failed.
    rule = RuleResult(
        rule="slo_guard",
        replicas=12,
        inputs={"p99_ms": 600.0, "slo_latency_ms": 300.0, "error_rate": error_rate, "rps": 900.0},
    )
    assert f"({'p99 600 ms vs 300 ms; ' + shown})" in rule_sentence(rule)


NO_WINDOW = replace(TT_ONLY, scale_down_stabilization_s=0, stabilization_per_delay=0)
STALE = (point(700.0, age_s=600),)


@pytest.mark.parametrize(
    ("inp", "summary"),
    [
        # An override that set the count is named even when the service bounds then capped it.
        (
            engine_input(300.0, params=NO_WINDOW, overrides=(override("floor", 50),)),
            "Scaled 10 → 40: floor 50 from override 1 (marquee game) capped at the service maximum 40 (policy wants 5)",
        ),
        (
            engine_input(300.0, 45, params=NO_WINDOW, overrides=(override("freeze"),)),
            "Scaled 45 → 40: override 1 freezes: marquee game, capped by the service bounds [1, 40]",
        ),
        # A ceiling below the count waits for fresh metrics, and the summary says so.
        (
            engine_input(metrics=STALE, overrides=(override("ceiling", 6),)),
            "Held at 10: metrics stale or missing; override 1 ceiling 6: marquee game: "
            "not applied while metrics are missing (never scale in on missing data)",
        ),
        (
            engine_input(300.0, params=NO_WINDOW, overrides=(override("freeze_scale_in", oid=7),)),
            "Held at 10: override in force (override 7 freezes scale-in: marquee game)",
        ),
        (engine_input(metrics=STALE, mode=Mode.DRY_RUN), "Dry run: would hold at 10: metrics stale or missing"),
        (
            engine_input(
                None,
                3,
                metrics=STALE,
                params=replace(TT_ONLY, fallback_replicas=8),
                metrics_missing_since=T0 - timedelta(seconds=900),
            ),
            "Scaled 3 → 8: metrics missing since 18:15 ET (15 min); holding the fallback count 8",
        ),
    ],
)
def test_an_override_or_missing_metrics_that_set_the_count_is_named(inp: object, summary: str) -> None:
    assert decide(inp).summary == summary  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("inp", "summary"),
    [
        # The rule asked for 5 of the 17 running; the floor only kept the scale-in from going below 12.
        (
            engine_input(300.0, 17, params=NO_WINDOW, overrides=(override("floor", 12),)),
            "Scaled 17 → 12: 300 rps is utilization 0.18 of 17 × 100 rps vs target 0.70; "
            "stopped at 12 (policy wants 5) by override 1 floor 12: marquee game",
        ),
        # The rule asked for 20 of the 10 running; the ceiling only kept the scale-out from going above 15.
        (
            engine_input(1400.0, overrides=(override("ceiling", 15),)),
            "Scaled 10 → 15: 1,400 rps is utilization 1.40 of 10 × 100 rps vs target 0.70; "
            "stopped at 15 (policy wants 20) by override 1 ceiling 15: marquee game",
        ),
        (
            engine_input(300.0, 17, params=NO_WINDOW, overrides=(override("floor", 12),), mode=Mode.DRY_RUN),
            "Dry run: would scale 17 → 12, not actuated: 300 rps is utilization 0.18 of 17 × 100 rps vs target 0.70; "
            "stopped at 12 (policy wants 5) by override 1 floor 12: marquee game",
        ),
        # Where the override moved the count its own way, it alone is why.
        (
            engine_input(300.0, 4, params=NO_WINDOW, overrides=(override("floor", 12),)),
            "Scaled 4 → 12: override 1 floor 12: marquee game",
        ),
        (
            engine_input(300.0, 17, params=NO_WINDOW, overrides=(override("ceiling", 3),)),
            "Scaled 17 → 3: override 1 ceiling 3: marquee game",
        ),
        # A pin sets the count outright, whichever way the policy pointed.
        (
            engine_input(300.0, 17, params=NO_WINDOW, overrides=(override("pin", 12),)),
            "Scaled 17 → 12: override 1 pins 12: marquee game",
        ),
    ],
)
def test_an_override_that_only_limited_the_move_leaves_the_cause_to_the_rule(inp: object, summary: str) -> None:
    assert decide(inp).summary == summary  # type: ignore[arg-type]


CAPPED = replace(SPEC, min_replicas=2, max_replicas=20)


@pytest.mark.parametrize(
    ("inp", "summary"),
    [
        # The floor of 25 held the count at 25 (in force, changing nothing); the lowered maximum cut it to 20.
        # It read "Scaled 25 → 20: <the rule> (service bounds [2, 20]; wanted 25)", as if the rule had cut it.
        (
            engine_input(
                70.0, 25, service=CAPPED, overrides=(override("floor", 25, oid=21),), recent=recorded(*[25] * 20)
            ),
            "Scaled 25 → 20: floor 25 from override 21 (marquee game) capped at the service maximum 20 "
            "(policy wants 1)",
        ),
        # It read "Held at 20: at the service maximum (policy wants 1; …)": the maximum binds only for the floor.
        (
            engine_input(70.0, 20, service=CAPPED, overrides=(override("floor", 25, oid=21),)),
            "Held at 20: floor 25 from override 21 (marquee game) capped at the service maximum 20 (policy wants 1)",
        ),
        (
            engine_input(300.0, params=NO_WINDOW, overrides=(override("ceiling", 1, oid=4),), service=CAPPED),
            "Scaled 10 → 2: ceiling 1 from override 4 (marquee game) raised to the service minimum 2 (policy wants 5)",
        ),
    ],
)
def test_a_floor_or_ceiling_the_service_bounds_cut_is_named_with_the_bound(inp: object, summary: str) -> None:
    assert decide(inp).summary == summary  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("inp", "summary"),
    [
        # It named only the maximum: "(service bounds [1, 10]; wanted 12)", and nobody saw where 12 came from.
        (
            engine_input(3000.0, 4, service=replace(SPEC, max_replicas=10)),
            "Scaled 4 → 10: panic: short-window 3,000 rps needs 31, 7.75× the 4 ready (panic at 2×, panic_threshold); "
            "provisioning 49 with 60 % headroom "
            "(the surge may still rise) (scale-out rate limit 49 → 12, then service bounds [1, 10]; wanted 12)",
        ),
    ],
)
def test_the_summary_names_every_constraint_that_changed_the_count_in_order(inp: object, summary: str) -> None:
    assert decide(inp).summary == summary  # type: ignore[arg-type]


PAUSED_UNTIL = T0 + timedelta(hours=2)  # 20:30 ET, the same evening


@pytest.mark.parametrize(
    ("inp", "summary"),
    [
        (
            engine_input(5000.0, mode=Mode.PAUSED, mode_until=PAUSED_UNTIL),
            "Held at 10: service paused until 20:30 ET",
        ),
        # The overrides in force are named: a pause sets them aside too.
        (
            engine_input(
                5000.0,
                mode=Mode.PAUSED,
                mode_until=PAUSED_UNTIL,
                overrides=(override("floor", 25, oid=21), override("freeze_scale_in", oid=3)),
            ),
            "Held at 10: service paused until 20:30 ET; "
            "not applied while paused: override 21 floor 25, override 3 freezes scale-in",
        ),
        # An override not yet started is not in force.
        (
            engine_input(
                5000.0, mode=Mode.PAUSED, mode_until=PAUSED_UNTIL, overrides=(override("pin", 30, start_min=5),)
            ),
            "Held at 10: service paused until 20:30 ET",
        ),
        # An end on another day says which.
        (
            engine_input(5000.0, mode=Mode.PAUSED, mode_until=T0 + timedelta(hours=14)),
            "Held at 10: service paused until Fri 16 Jan 08:30 ET",
        ),
        (engine_input(5000.0, mode=Mode.PAUSED), "Held at 10: service paused (no end set)"),
        (
            engine_input(
                300.0,
                4,
                params=NO_WINDOW,
                mode=Mode.DRY_RUN,
                mode_until=PAUSED_UNTIL,
                overrides=(override("floor", 12),),
            ),
            "Dry run until 20:30 ET: would scale 4 → 12, not actuated: override 1 floor 12: marquee game",
        ),
        (
            engine_input(700.0, mode=Mode.DRY_RUN, mode_until=PAUSED_UNTIL),
            "Dry run until 20:30 ET: would hold at 10: 700 rps is utilization 0.70 of 10 × 100 rps vs target 0.70",
        ),
    ],
)
def test_a_pause_or_dry_run_says_until_when_and_what_it_sets_aside(inp: object, summary: str) -> None:
    assert decide(inp).summary == summary  # type: ignore[arg-type]


TIPS = ["DAL @ NYK at 19:00 ET", "MIA @ BOS at 19:00 ET", "LAL @ GSW (ESPN) at 19:30 ET"]


@pytest.mark.parametrize(
    ("games", "more", "named"),
    [
        # Every game listed is named: "and 2 more games" hid the national game tipping half an hour later.
        (TIPS, 0, "DAL @ NYK at 19:00 ET, MIA @ BOS at 19:00 ET and LAL @ GSW (ESPN) at 19:30 ET"),
        (TIPS[:2], 0, "DAL @ NYK at 19:00 ET and MIA @ BOS at 19:00 ET"),
        (TIPS[2:], 0, "LAL @ GSW (ESPN) at 19:30 ET"),
        (TIPS, 2, "DAL @ NYK at 19:00 ET, MIA @ BOS at 19:00 ET, LAL @ GSW (ESPN) at 19:30 ET and 2 more games"),
        (TIPS[:1], 1, "DAL @ NYK at 19:00 ET and 1 more game"),
    ],
)
def test_the_forecast_sentences_name_every_game_they_list(games: list[str], more: int, named: str) -> None:
    inputs = {"forecast_rps": 632.0, "forecast_at": "2026-01-16T00:01:00+00:00", "games": games, "more_games": more}
    pre_warming = rule_sentence(RuleResult(rule="forecast", replicas=12, inputs=inputs))
    assert pre_warming == f"pre-warming for {named}; forecast 632 rps at 19:01 ET"
    # Scaling in, the games tipping off after the forecast's time are those the next ticks will size for.
    later = {**inputs, "next_games": games, "more_next_games": more}
    scaling_in = rule_sentence(RuleResult(rule="forecast", replicas=9, inputs=later), scaling_in=True)
    assert scaling_in == (
        f"fewer needed until replicas asked for now could serve: forecast 632 rps at 19:01 ET; "
        f"later ticks will pre-warm for {named}"
    )


def _climbing(slope_per_s: float, *, delay_s: float = 180.0, trend: float = 0.3) -> EngineInput:
    """An hour into a game forecast flat at 1,000 rps, the rate running off it by `slope_per_s` a second."""
    inp = finish_input(finishing_forecaster(), 60, 0)
    metrics = tuple(
        replace(p, rps=1000.0 * (1 + slope_per_s * (300 - (inp.now - p.ts).total_seconds()))) for p in inp.metrics
    )
    return replace(
        inp,
        metrics=metrics,
        service=replace(FINISH_SPEC, provisioning_delay_s=delay_s),
        params=replace(inp.params, forecast_trend=trend),
    )


@pytest.mark.parametrize(
    ("inp", "capped"),
    [
        pytest.param(_climbing(0.0015), False, id="a climbing ratio, extrapolated"),
        pytest.param(_climbing(0.01, delay_s=600, trend=1.0), True, id="a steep climb, capped at double"),
    ],
)
def test_the_forecast_shown_multiplies_out_from_the_numbers_beside_it(inp: EngineInput, capped: bool) -> None:
    # 5.7 rps × ratio 1.0833 read as 6.17, yet 6.293 was shown: the trend was extrapolated out of sight.
    i = next(r for r in decide(inp).rules if r.rule == "forecast").inputs
    assert isinstance(i["trend_gain"], float) and i["trend_gain"] > 0
    predicted, used, forecast = i["predicted_rps"], i["ratio_used"], i["forecast_rps"]
    assert isinstance(predicted, float) and isinstance(used, float) and isinstance(forecast, float)
    assert predicted * used == pytest.approx(forecast, abs=predicted * 0.5e-4 + 1e-3)
    assert i["ratio"] + i["trend_gain"] == pytest.approx(used, abs=1e-4)
    extrapolated = i["ratio_slope_per_min"] * i["forecast_trend"] * i["trend_ahead_s"] / 60
    if capped:
        assert i["trend_gain"] == i["trend_capped_at"] == i["ratio"] < extrapolated
    else:
        assert "trend_capped_at" not in i
        assert i["trend_gain"] == pytest.approx(extrapolated, abs=1e-4)
    decision = decide(inp)
    assert decision.forecast is not None
    assert (decision.forecast["predicted_rps"], decision.forecast["ratio_used"]) == (predicted, used)


FORECAST = {"forecast_rps": 1537.75, "predicted_rps": 1000.0, "ratio": 1.4163, "forecast_trend": 0.3}


@pytest.mark.parametrize(
    ("inputs", "text"),
    [
        (
            {
                **FORECAST,
                "ratio_slope_per_min": 0.09,
                "trend_ahead_s": 270.0,
                "trend_gain": 0.1215,
                "ratio_used": 1.5377,
            },
            "predicted 1,000 rps × ratio used 1.5377 = forecast 1,537.75 rps; ratio used = observed 1.4163 + trend "
            "0.1215 (slope 0.09/min × forecast_trend 0.3 × 4.5 min from the newest window to then)",
        ),
        (
            {
                **FORECAST,
                "forecast_rps": 2832.6,
                "ratio_slope_per_min": 0.6,
                "trend_ahead_s": 630.0,
                "trend_gain": 1.4163,
                "trend_capped_at": 1.4163,
                "ratio_used": 2.8326,
            },
            "predicted 1,000 rps × ratio used 2.8326 = forecast 2,832.6 rps; ratio used = observed 1.4163 + trend "
            "1.4163 (slope 0.6/min × forecast_trend 0.3 × 10.5 min from the newest window to then, capped at 1.4163 "
            "(the trend may at most double the ratio))",
        ),
        (
            {
                **FORECAST,
                "forecast_rps": 5000.0,
                "ratio": 5.0,
                "ratio_measured": 6.25,
                "ratio_slope_per_min": -0.06,
                "trend_gain": 0.0,
                "ratio_used": 5.0,
            },
            "predicted 1,000 rps × ratio used 5 = forecast 5,000 rps; ratio used = observed 5 (measured 6.25, held "
            "within forecast_correction_min … _max), no trend (the ratio is not climbing; the trend never lowers "
            "the forecast)",
        ),
        (
            {**FORECAST, "forecast_trend": 0.0, "ratio_slope_per_min": 0.09, "trend_gain": 0.0, "ratio_used": 1.4163},
            "predicted 1,000 rps × ratio used 1.4163 = forecast 1,537.75 rps; ratio used = observed 1.4163, no trend "
            "(forecast_trend 0)",
        ),
        # A new service: the default shape (relative, not rps) scaled by tonight's traffic. It read "predicted
        # 0.344 rps × ratio used 350.89", a ratio nobody could place.
        (
            {
                "forecast_rps": 120.706,
                "predicted_rps": 0.344,
                "ratio": 350.89,
                "forecast_trend": 0.3,
                "ratio_slope_per_min": 0.0,
                "trend_gain": 0.0,
                "ratio_used": 350.89,
                "learned": False,
            },
            "the demand model has little history yet, so its default shape (0.344 at that time) is scaled by the "
            "ratio of observed to predicted traffic, 350.89×: forecast 120.706 rps",
        ),
        (
            {
                "forecast_rps": 150.0,
                "predicted_rps": 0.3,
                "ratio": 400.0,
                "forecast_trend": 0.3,
                "ratio_slope_per_min": 20.0,
                "trend_ahead_s": 600.0,
                "trend_gain": 100.0,
                "ratio_used": 500.0,
                "learned": False,
            },
            "the demand model has little history yet, so its default shape (0.3 at that time) is scaled by the "
            "ratio of observed to predicted traffic, 500×: forecast 150 rps; that ratio = observed 400 + trend 100 "
            "(slope 20/min × forecast_trend 0.3 × 10 min from the newest window to then)",
        ),
        # A decision recorded before the ratio used was: nothing to multiply out.
        ({"forecast_rps": 6.293, "predicted_rps": 5.7, "ratio": 1.0833}, ""),
    ],
)
def test_the_forecast_arithmetic_reads_from_the_rules_inputs(inputs: dict[str, object], text: str) -> None:
    assert forecast_arithmetic(inputs) == text


PANIC = {"short_rps": 1416.0, "needed": 16, "ready": 16, "panic_threshold": 2.0, "sized_by": "short_window"}


@pytest.mark.parametrize(
    ("inputs", "sentence"),
    [
        (
            {
                **PANIC,
                "triggered_by": ["calendar"],
                "unforecast_surge_over_rps": 650.0,
                "panic_ratio": 1.4,
                "panic_ratio_from": "panic_unforecast_ratio",
            },
            "panic: short-window 1,416 rps is 2.18× the calendar's expectation of 650 rps "
            "(panic at 1.4×, panic_unforecast_ratio)",
        ),
        (
            {
                **PANIC,
                "triggered_by": ["calendar"],
                "unforecast_surge_over_rps": 1100.0,
                "panic_ratio": 1.2,
                "panic_ratio_from": "panic_quiet_ratio",
                "quiet_hours": True,
            },
            "panic: short-window 1,416 rps is 1.29× the calendar's expectation of 1,100 rps "
            "(panic at 1.2× with no game near, panic_quiet_ratio)",
        ),
        (
            {**PANIC, "triggered_by": ["jump"], "before_rps": 600.0, "panic_surge_ratio": 2.0},
            "panic: short-window 1,416 rps is 2.36× the 600 rps of the minute or two before, with no forecast for "
            "now (panic at 2×, panic_surge_ratio)",
        ),
        (
            {**PANIC, "needed": 33, "triggered_by": ["threshold"]},
            "panic: short-window 1,416 rps needs 33, 2.06× the 16 ready (panic at 2×, panic_threshold)",
        ),
        (
            {
                **PANIC,
                "short_rps": 249.0,
                "needed": 2,
                "ready": 2,
                "triggered_by": ["earlier"],
                "triggered_at": "2026-01-15T23:29:25+00:00",
                "triggered_short_rps": 420.0,
                "triggered_needed": 5,
                "triggered_ready": 2,
                "panic_window_s": 60.0,
            },
            "panic: since 18:29:25 ET, when short-window 420 rps needed 5, 2.5× the 2 ready (panic at 2×, "
            "panic_threshold); it lasts 60 s (panic_window_s): now short-window 249 rps needs 2 (ready 2)",
        ),
        # Recorded before the trigger was: the old sentence.
        (PANIC, "panic: short-window 1,416 rps needs 16 (ready 16)"),
    ],
)
def test_the_panic_sentence_says_what_set_it_off_against_its_limit(inputs: dict[str, object], sentence: str) -> None:
    needed = inputs["needed"]
    assert isinstance(needed, int)
    assert rule_sentence(RuleResult(rule="panic", replicas=needed, inputs=inputs)) == sentence


def test_a_panic_lasting_from_an_earlier_sample_says_when_and_why() -> None:
    # A 60 s panic window: the sample 20 s ago needed 2 × the 2 ready; the newest needs only 2.
    metrics = (point(100.0, age_s=50), point(400.0, age_s=20), point(150.0, age_s=5))
    result = decide(engine_input(metrics=metrics, provisioned=2, params=replace(TT_ONLY, panic_surge_ratio=0.0)))
    panic = next(r for r in result.rules if r.rule == "panic")
    assert panic.inputs["triggered_by"] == ["earlier"]
    assert rule_sentence(panic).startswith("panic: since 18:29:40 ET, when short-window ")


def test_a_cold_start_forecast_reads_as_the_default_shape_scaled_to_tonight() -> None:
    # A new service (no learned history) before tip-off: the default shape is relative, so the ratio is large.
    metrics = tuple(point(120.0, age_s=age) for age in (50.0, 35.0, 20.0, 5.0))
    inp = engine_input(metrics=metrics, params=PolicyParams(), games=(game(T0 + timedelta(minutes=20)),), provisioned=3)
    rule = next(r for r in decide(inp).rules if r.rule == "forecast")
    assert rule.inputs["learned"] is False
    text = forecast_arithmetic(rule.inputs)
    assert text.startswith("the demand model has little history yet, so its default shape ("), text
    assert "scaled by the ratio of observed to predicted traffic" in text and "rps × ratio used" not in text


@pytest.mark.parametrize(
    ("provisioned", "unavailable", "summary"),
    [
        (0, True, "Scaled 0 → 1: metric source unavailable; moved into the service bounds [1, 3]"),
        (10, False, "Scaled 10 → 3: metrics stale or missing; moved into the service bounds [1, 3]"),
    ],
)
def test_a_move_into_the_bounds_without_metrics_says_metrics_were_missing(
    provisioned: int, unavailable: bool, summary: str
) -> None:
    # It read "Scaled 0 → 1: service bounds [1, 3]", under a caption saying it held.
    spec = ServiceSpec(min_replicas=1, max_replicas=3, hard_max_replicas=5)
    inp = engine_input(None, provisioned=provisioned, service=spec, params=PolicyParams())
    assert decide(inp, metrics_unavailable=unavailable).summary == summary
