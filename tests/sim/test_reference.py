"""The causal reference: told the generator's model, learning tonight's draws from the metric window only."""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from scaling.policy.capacity import serving_model
from scaling.policy.types import GameSpec, ServiceSpec
from scaling.sim.gentrace import Generated, GenParams, generate_drawn
from scaling.sim.reference import Powers, model_reference, plans
from scaling.sim.trace import Trace

NIGHT = datetime(2026, 1, 15, 22, 0, tzinfo=UTC)
TIP = NIGHT + timedelta(hours=2)
GAME = GameSpec("1", TIP, "LAL", "BOS", "ABC")
QUIET = GenParams(noise_sigma=0.0, interest_sigma=0.0, close_finish_p=0.0, overtime_p=0.0)
SERVICE = ServiceSpec(provisioning_delay_s=420, metrics_lag_s=60)


def _drawn(params: GenParams, seed: int = 1, games: tuple[GameSpec, ...] = (GAME,)) -> Generated:
    return generate_drawn(NIGHT, 0.5, games=games, params=params, seed=seed, step_s=10)


def _tick(minutes_from_tip: float) -> int:
    return round(((TIP - NIGHT).total_seconds() + minutes_from_tip * 60.0) / SERVICE.tick_s)


def _step(tick: int) -> int:
    return int(tick * SERVICE.tick_s // 10)


def test_knowing_the_demand_exactly_it_needs_no_headroom_and_pays_only_for_what_could_still_happen() -> None:
    quiet = model_reference(_drawn(QUIET), QUIET, SERVICE, serving_model(SERVICE))
    assert quiet is not None and quiet["z"] == 0.0 and quiet["attainment"] >= SERVICE.slo_target
    # Above the oracle it holds, a delay ahead, what the next surge needs, and a close finish or overtime
    # until the game shows it has neither.
    assert 1.0 < quiet["cost_ratio"] < 1.2
    noisy_params = GenParams()
    noisy = model_reference(_drawn(noisy_params), noisy_params, SERVICE, serving_model(SERVICE))
    assert noisy is not None and noisy["z"] > 0.0 and noisy["attainment"] >= SERVICE.slo_target
    assert noisy["cost_ratio"] > quiet["cost_ratio"]


def test_it_learns_tonights_interest_from_the_metric_window() -> None:
    params = replace(QUIET, interest_sigma=0.25)
    drawn = _drawn(params, seed=4)
    assert abs(math.log(drawn.draws[0].interest)) > 0.15  # tonight is far from the prior's mean
    means, sds = plans(drawn, params, SERVICE)
    rps = drawn.trace.rps
    early, late = _tick(-95), _tick(60)  # early: its plan reaches into the ramp, its window not yet
    # An hour into the game its forecast of now is tonight's demand, and sure of it; before the ramp shows
    # anything, it spreads over the prior.
    assert means[late, 0] == pytest.approx(rps[_step(late)], rel=0.01)
    assert sds[late, 0] / means[late, 0] < 0.01
    assert sds[early, -1] / means[early, -1] > 0.02


def test_it_plans_for_a_close_finish_until_the_game_shows_it_has_none() -> None:
    drawn = _drawn(QUIET)
    assert not drawn.draws[0].close_finish
    means, sds = plans(drawn, QUIET, SERVICE)
    rps = drawn.trace.rps
    width = means.shape[1]
    before, after = _tick(124), _tick(126)  # the climb would begin at 125 minutes, 15 before regulation ends
    assert means[before].max() > 1.2 * rps[_step(before) : _step(before) + width].max()
    assert means[after].max() == pytest.approx(rps[_step(after) : _step(after) + width].max(), rel=1e-3)
    assert not sds.any()


def test_without_reveal_it_plans_the_worst_finish_to_the_end_and_without_learning_keeps_the_prior() -> None:
    """The gap analysis's ablations: what revealing a finish, and learning each game's interest, are worth."""
    drawn = _drawn(QUIET)
    assert not drawn.draws[0].close_finish
    blind, _ = plans(drawn, QUIET, SERVICE, Powers(reveal=False))
    rps = drawn.trace.rps
    after = _tick(126)  # the game has shown it has no close finish; planned for one all the same
    assert blind[after].max() > 1.2 * rps[_step(after) : _step(after) + blind.shape[1]].max()
    params = replace(QUIET, interest_sigma=0.25)
    drawn = _drawn(params, seed=4)  # tonight's interest is far from the prior's mean (as above)
    means, sds = plans(drawn, params, SERVICE, Powers(learn_interests=False))
    late = _tick(60)
    assert means[late, 0] != pytest.approx(float(drawn.trace.rps[_step(late)]), rel=0.05)  # still the prior's
    assert sds[late, 0] / means[late, 0] > 0.05  # as unsure an hour in as before the game
    learned = model_reference(drawn, params, SERVICE, serving_model(SERVICE))
    fixed = model_reference(drawn, params, SERVICE, serving_model(SERVICE), powers=Powers(learn_interests=False))
    assert learned is not None and fixed is not None and fixed["cost_ratio"] > learned["cost_ratio"]


def test_a_late_reveal_plans_the_worst_finish_until_the_finish_has_shown_that_long() -> None:
    """The gap analysis's weaker reveal: a finish seen only `reveal_delay_s` after it begins."""
    drawn = _drawn(QUIET)
    assert not drawn.draws[0].close_finish
    means, _ = plans(drawn, QUIET, SERVICE, Powers(reveal_delay_s=300.0))
    rps = drawn.trace.rps
    width = means.shape[1]
    shown, seen = _tick(126), _tick(131)  # the climb would begin at 125 minutes; seen five minutes later
    assert means[shown].max() > 1.2 * rps[_step(shown) : _step(shown) + width].max()
    assert means[seen].max() == pytest.approx(rps[_step(seen) : _step(seen) + width].max(), rel=1e-3)
    on_time, _ = plans(drawn, QUIET, SERVICE)
    assert means[: _tick(124)].tolist() == on_time[: _tick(124)].tolist()  # the same plan until a finish could show


def test_without_the_close_reveal_it_plans_a_close_finish_until_regulation_ends() -> None:
    """The gap analysis's policy that cannot tell one game's climb from the rest: told no close finish."""
    drawn = _drawn(QUIET)
    assert not drawn.draws[0].close_finish
    means, _ = plans(drawn, QUIET, SERVICE, Powers(close_reveal=False))
    rps = drawn.trace.rps
    width = means.shape[1]
    climbing, ended = _tick(135), _tick(141)  # the climb would begin at 125 minutes; regulation ends at 140
    assert means[climbing].max() > 1.2 * rps[_step(climbing) : _step(climbing) + width].max()
    assert means[ended].max() == pytest.approx(rps[_step(ended) : _step(ended) + width].max(), rel=1e-3)
    told, _ = plans(drawn, QUIET, SERVICE)
    assert told[climbing].max() == pytest.approx(rps[_step(climbing) : _step(climbing) + width].max(), rel=1e-3)
    assert means[: _tick(124)].tolist() == told[: _tick(124)].tolist()  # the same plan until a finish could show


def test_knowing_no_finish_it_plans_and_reads_each_game_as_its_average_finish() -> None:
    """The gap analysis's reference without finish shapes, as a learned profile would have them: averaged."""
    params = replace(QUIET, close_finish_p=0.5)
    drawn = next(d for d in (_drawn(params, seed=s) for s in range(1, 20)) if d.draws[0].close_finish)
    average, _ = plans(drawn, params, SERVICE, Powers(finishes=False))
    told, _ = plans(drawn, params, SERVICE)
    rps = drawn.trace.rps
    width = average.shape[1]
    climbing, playing = _tick(130), _tick(60)
    actual = rps[_step(climbing) : _step(climbing) + width].max()
    assert told[climbing].max() == pytest.approx(actual, rel=1e-3)  # shown at 125 minutes, planned since
    assert average[climbing].max() < 0.9 * actual  # half a climb on average: the close finish outruns it
    assert average[climbing].max() > rps[_step(climbing)]  # ... though it plans for half of one
    assert average[playing].tolist() == pytest.approx(told[playing].tolist())  # every finish alike till then


def test_a_spike_is_known_from_its_onset_and_not_before() -> None:
    params = replace(QUIET, use_schedule=False, spikes=1)
    drawn = _drawn(params, seed=5, games=())
    (spike,) = drawn.spikes
    means, _ = plans(drawn, params, SERVICE)
    rps = drawn.trace.rps
    onset_tick = math.ceil((spike.onset - drawn.trace.start_epoch_s) / SERVICE.tick_s)
    assert onset_tick > 0 and _step(onset_tick + 20) < drawn.trace.steps  # the seed puts it well inside the trace
    blind, seen = onset_tick - 1, onset_tick + 10
    assert means[blind, -1] == pytest.approx(rps[_step(blind)], rel=0.02)  # no spike planned
    assert rps[_step(blind) + means.shape[1] - 1] > 2.5 * rps[_step(blind)]  # ... though it comes
    assert means[seen, 0] == pytest.approx(rps[_step(seen)], rel=0.01)


def test_it_is_causal_a_later_change_changes_no_earlier_plan() -> None:
    params = GenParams()
    drawn = _drawn(params)
    cut = _step(_tick(30))
    rps = drawn.trace.rps.copy()
    rps[cut:] *= 1.5
    changed = replace(drawn, trace=Trace(drawn.trace.start, drawn.trace.step_s, rps, "test"))
    means, sds = plans(drawn, params, SERVICE)
    means2, sds2 = plans(changed, params, SERVICE)
    # A tick sees the metric window that ends a lag before it: up to cut + lag, nothing differs.
    last_same = int((cut * 10 + SERVICE.metrics_lag_s) // SERVICE.tick_s)
    assert np.array_equal(means[: last_same + 1], means2[: last_same + 1])
    assert np.array_equal(sds[: last_same + 1], sds2[: last_same + 1])
    assert not np.array_equal(means[last_same + 2], means2[last_same + 2])
