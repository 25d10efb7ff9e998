"""A new service, with no history to learn from: the engine forecasts with the default shape, scaled to what it
observes, and says so."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from scaling.policy import Decision, PolicyParams, ServiceSpec, decide
from scaling.policy.explain import rule_sentence
from scaling.policy.forecast import Forecaster, profile_minutes
from scaling.sim.gentrace import GenParams, generate
from scaling.sim.policies import EnginePolicy
from scaling.sim.replay import Observation, ReplayRun, replay
from scaling.sim.score import score
from tests.policy.builders import T0, engine_input, game, point

MIDDAY_TIP = datetime(2025, 12, 25, 17, tzinfo=UTC)  # 12:00 ET: Christmas Day's first game
NEW_SERVICE = ServiceSpec(min_replicas=1, max_replicas=50, hard_max_replicas=100)  # the service form's defaults


class _Recording(EnginePolicy):
    """The engine as replay runs it, keeping each tick's decision."""

    def __init__(self) -> None:
        super().__init__()
        self.decisions: list[tuple[Observation, Decision]] = []

    def decide(self, obs: Observation) -> int:
        desired = super().decide(obs)
        assert self.last_decision is not None
        self.decisions.append((obs, self.last_decision))
        return desired


def _cold_start_around(tip: datetime, seed: int) -> tuple[ReplayRun, _Recording]:
    """75 minutes either side of a national tip-off, with the demo's full traffic and no history."""
    national = game(tip, "CLE (Cavaliers)", "NYK (Knicks)", tv="ABC")
    trace = generate(tip - timedelta(minutes=75), 2.5 / 24, games=[national], params=GenParams(), seed=seed)
    policy = _Recording()
    return replay(trace, NEW_SERVICE, policy, seed=1, games=[national]), policy


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_new_service_meets_a_midday_tip_off_without_running_to_its_maximum(seed: int) -> None:
    """With the default shape, tip-off used to be a quarter more than the ramp: the fleet met the rest of the step
    late (the SLO broken for minutes), and the panic read it as a surge over the calendar, sized on three times
    the calendar's guess: the service's maximum, for about twice what the traffic needed."""
    run, policy = _cold_start_around(MIDDAY_TIP, seed)
    assert policy.driver.forecaster is None  # no history: the default shape throughout
    assert (score(run, policy.driver.games).tipoff_attainment or 0.0) >= NEW_SERVICE.slo_target
    delay = round(NEW_SERVICE.provisioning_delay_s / run.trace.step_s)
    reach = round((NEW_SERVICE.tick_s + PolicyParams().forecast_lookahead_s + 60.0) / run.trace.step_s)
    for obs, decision in policy.decisions:
        step = round(obs.elapsed_s / run.trace.step_s)
        # What the traffic needs where replicas asked for now serve (a minute's leeway for the shape's timing).
        needed = int(np.max(run.oracle[min(step + delay, run.trace.steps - 1) : step + delay + reach]))
        panic = next((r for r in decision.rules if r.rule == "panic"), None)
        assert panic is None or "calendar" not in panic.inputs["triggered_by"], decision.summary
        # The cold-start headroom (1.5 ×) above a generic shape that may run ahead of the traffic by a little:
        # not three times the calendar's guess.
        assert (decision.recommendation or 0) <= 2.5 * needed, (obs.now, decision.summary)


def test_the_default_game_doubles_at_tip_off() -> None:
    shape = dict(zip(profile_minutes().tolist(), Forecaster.default().profiles["regional"], strict=True))
    assert shape[0.0] == pytest.approx(2 * shape[-1.0], rel=0.05)
    assert shape[-60.0] < 0.1 * shape[0.0] and shape[-61.0] == 0.0  # the ramp sets in from a trickle


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
