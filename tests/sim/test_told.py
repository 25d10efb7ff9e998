"""Tipoff's forecaster told the generator's average traffic, for the gap analysis."""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from scaling.policy.forecast import PROFILE_BIN_MIN, PROFILE_START_MIN, SURPRISE_BUCKET_MIN, SURPRISE_BUCKETS
from scaling.policy.types import GameSpec
from scaling.sim.gentrace import GenParams, game_shape, generate_drawn
from scaling.sim.told import expected_shape, told_forecaster

START = datetime(2026, 1, 12, 5, tzinfo=UTC)  # a Monday
QUIET = GenParams(noise_sigma=0.0, interest_sigma=0.0, close_finish_p=0.0, overtime_p=0.0)


def _games(days: int) -> list[GameSpec]:
    games = []
    for d in range(days):
        tip = START + timedelta(days=d, hours=19)  # 19:00 ET
        games.append(GameSpec(f"n{d}", tip, "LAL", "BOS", "ABC"))
        games.append(GameSpec(f"r{d}", tip + timedelta(minutes=30), "NYK", "MIA", ""))
    return games


def _minutes(*values: float) -> np.ndarray:
    return np.array(values, dtype=float)


def test_the_expected_shape_weighs_each_finish_by_how_often_it_is_drawn() -> None:
    params = GenParams()
    shape = expected_shape(params)

    def at(minutes: float) -> float:
        return float(shape[round((minutes - PROFILE_START_MIN) / PROFILE_BIN_MIN)])

    plain = game_shape(_minutes(30.0, 135.0), params, close_finish=False, overtimes=0)
    close = game_shape(_minutes(135.0), params, close_finish=True, overtimes=0)[0]
    assert at(30.0) == pytest.approx(plain[0])  # before the finish every variant agrees
    p = params.close_finish_p
    assert at(135.0) == pytest.approx((1 - p) * plain[1] + p * close, rel=1e-6)
    # Past regulation, an overtime (drawn with overtime_p) holds 1.6 where a finished game fades.
    ended = game_shape(_minutes(147.0), params, close_finish=False, overtimes=0)[0]
    assert ended < at(147.0) < 1.6


def test_told_the_exact_traffic_it_forecasts_it_exactly_and_needs_headroom_only_where_bins_smear_a_step() -> None:
    games = _games(4)
    drawn = generate_drawn(START, 4, step_s=10, games=games, params=QUIET, seed=1)
    told = told_forecaster(QUIET, drawn.trace.series(), games)
    night = [g for g in games if g.tip_utc.date() == (START + timedelta(days=3)).date()]
    tip = night[0].tip_utc
    for minutes in (-60, -5, 0, 20, 66, 120, 150):
        t = tip + timedelta(minutes=minutes)
        step = round((t - drawn.trace.start).total_seconds() / 10)
        assert told.predict(t, night) == pytest.approx(float(drawn.trace.rps[step]), rel=1e-3)
    # Demand steps up where the pre-game ramp starts (90 minutes before tip) and at the tip itself; minute
    # bins interpolate across each step, so the minute before it is forecast too high, tonight's ratio
    # read there too low, and the calibration keeps that as headroom over the next few buckets. Nowhere
    # else does an exact model fall short by more than the minute averages' alignment (a few percent).
    steps = {-90.0, 0.0}
    for horizon, row in told.surprise.items():
        for bucket, value in enumerate(row[:SURPRISE_BUCKETS]):
            start = PROFILE_START_MIN + bucket * SURPRISE_BUCKET_MIN
            if not any(step <= start < step + horizon / 60.0 + SURPRISE_BUCKET_MIN for step in steps):
                assert value < 0.07, (horizon, start)
    assert told.surprise[240][round(-PROFILE_START_MIN / SURPRISE_BUCKET_MIN)] > 0.3


def test_told_the_interests_it_scales_each_game_by_its_draw() -> None:
    params = replace(QUIET, interest_sigma=0.25)
    games = _games(4)
    drawn = generate_drawn(START, 4, step_s=60, games=games, params=params, seed=2)
    interests = {d.game.game_id: d.interest for d in drawn.draws}
    average = told_forecaster(params, drawn.trace.series(), games)
    told = told_forecaster(params, drawn.trace.series(), games, interests)
    game = games[-1]
    t = game.tip_utc + timedelta(minutes=20)  # with the night's national game, tipped half an hour before
    base = average.predict(t, [])
    mean = math.exp(params.interest_sigma**2 / 2)
    assert told.predict(t, [game]) - base == pytest.approx(
        (average.predict(t, [game]) - base) * interests[game.game_id] / mean
    )
    step = round((t - drawn.trace.start).total_seconds() / 60)
    both = [g for g in games if abs((g.tip_utc - game.tip_utc).total_seconds()) < 3600]
    assert told.predict(t, both) == pytest.approx(float(drawn.trace.rps[step]), rel=1e-3)


def test_told_the_draws_it_forecasts_each_finish_as_drawn_whatever_the_overtime_reads() -> None:
    params = replace(QUIET, interest_sigma=0.25, close_finish_p=0.5, overtime_p=0.5)
    games = _games(4)
    drawn = generate_drawn(START, 4, step_s=60, games=games, params=params, seed=3)
    told = told_forecaster(params, drawn.trace.series(), games, draws=drawn.draws)
    average = told_forecaster(params, drawn.trace.series(), games)
    finishes = {(d.close_finish, d.overtimes > 0) for d in drawn.draws}
    assert len(finishes) > 1  # the draw holds more than one kind of finish
    for d in drawn.draws:
        for minutes in (20, 135, 139, 150, 165):
            t = d.game.tip_utc + timedelta(minutes=minutes)
            step = round((t - drawn.trace.start).total_seconds() / 60)
            near = [g for g in games if abs((g.tip_utc - d.game.tip_utc).total_seconds()) < 4 * 3600]
            assert told.predict(t, near) == pytest.approx(float(drawn.trace.rps[step]), rel=1e-3)
    # An overtime read changes nothing for a game whose draw is told, and still does for one at its average.
    game = games[0]
    t = game.tip_utc + timedelta(minutes=150)
    read = {game.game_id: 1}
    assert told.predict_epoch(t.timestamp(), told.prepare([game], read)) == told.predict(t, [game])
    assert average.predict_epoch(t.timestamp(), average.prepare([game], read)) != average.predict(t, [game])
