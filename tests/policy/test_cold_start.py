"""A new service, with no history to learn from: the engine forecasts with the default shape, scaled to what it
observes, and says so."""

from __future__ import annotations

from datetime import timedelta

from scaling.policy import PolicyParams, decide
from scaling.policy.explain import rule_sentence
from tests.policy.builders import T0, engine_input, game, point


def test_near_a_game_a_cold_start_takes_a_jump_over_the_minute_before_as_the_surge() -> None:
    """Tip-off a minute ago, the minute before it at 1,200 rps, the newest slice at 2,600: without a learned model
    the calendar's expectation is the default shape's guess, so the surge is the jump over the minute before, and
    it is sized on that rate, not on the guess."""
    before = tuple(point(1200.0, age_s=age) for age in range(135, 0, -15))
    inp = engine_input(
        metrics=(*before, point(1550.0, age_s=0)),
        provisioned=20,
        params=PolicyParams(),
        games=(game(T0 - timedelta(minutes=1)),),
    )
    panic = next(r for r in decide(inp).rules if r.rule == "panic")
    assert panic.inputs["triggered_by"][0] == "jump"
    assert panic.inputs["calendar_unlearned"] is True
    assert (panic.inputs["surge_base_from"], panic.inputs["surge_base_rps"]) == ("before", 1200.0)
    assert rule_sentence(panic).startswith(
        "panic: short-window 2,600 rps is 2.17× the 1,200 rps of the minute or two before, with no learned model "
        "to say how big a game's jumps are (the default shape's are a guess) (panic at 2×, panic_surge_ratio)"
    )
