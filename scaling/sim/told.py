"""Tipoff's demand model told how the benchmark's traffic is made, in place of what it learns.

The gap analysis (`bench/gap.py`) asks how much of tipoff's cost is its learned model of demand. The
causal reference answers with a whole other policy; this answers inside tipoff: the same forecaster
class, the same rules around it (tonight's ratio, the trend, the calibrated headroom, overtime reads),
with only the model's content swapped for the generator's:

  - the baseline exactly as drawn (`gentrace.diurnal`, weekends included), where tipoff learns one day's
    shape in half-hour bins;
  - each tier's expected game shape: every close finish and overtime weighed by its probability and the
    interest by its mean, in tipoff's own representation (minute bins, interpolated), where tipoff
    learns it by least squares from a week;
  - with `interests`, each game's drawn interest as well, which no forecast can know before the game;
  - with `draws`, each game's whole draw: its interest, close finish and overtimes, its profile the shape the
    generator drew (in minute bins, interpolated). The forecast is then the traffic but for its noise, and
    what is left of tipoff's cost is how its forecast rule reads a model.

Its headroom is calibrated on the history as `Forecaster.fit` calibrates a learned model
(`Forecaster.calibrated`): it carries the errors of this model, not of a learned one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import cast

import numpy as np

from scaling.policy.forecast import (
    BASELINE_BINS,
    MAX_OVERLAP,
    Forecaster,
    PreparedGames,
    profile_minutes,
)
from scaling.policy.types import GameSpec
from scaling.sim.gentrace import GameDraw, GenParams, diurnal, expected_game_shape, game_shape


def expected_shape(params: GenParams) -> np.ndarray:
    """A game's expected shape at interest 1 over the profile's minute bins (`gentrace.expected_game_shape`)."""
    return expected_game_shape(profile_minutes(), params)


def drawn_profile(draw: GameDraw, params: GenParams) -> tuple[float, ...]:
    """What one game adds (rps) over the profile's minute bins, as the generator drew it: its tier, interest,
    close finish and overtimes."""
    shape = game_shape(profile_minutes(), params, close_finish=draw.close_finish, overtimes=draw.overtimes)
    return tuple(float(v) for v in shape * draw.interest * draw.tier_rps(params))


@dataclass(frozen=True)
class ToldForecaster(Forecaster):
    """A Forecaster whose baseline and profiles are the generator's (see the module docstring)."""

    gen: GenParams = field(default_factory=GenParams)
    # Game id -> the interest drawn for it; empty = the mean interest for every game.
    interests: Mapping[str, float] = field(default_factory=dict)
    # Game id -> its profile as drawn (`drawn_profile`): such a game's forecast is its draw, whatever the
    # overtime reads say.
    drawn: Mapping[str, tuple[float, ...]] = field(default_factory=dict)
    _scaled: dict[tuple[str, int], tuple[float, ...]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def _predict(self, t: float, prepared: list[tuple[float, tuple[float, ...]]]) -> float:
        # The inherited baseline is all zeros: the games' part, to which the drawn baseline is added.
        base = self.gen.base_rps * float(diurnal(np.array([t]), self.gen.weekend_factor)[0])
        return super()._predict(t, prepared) + base

    def prepare(
        self, games: Sequence[GameSpec], overtimes: dict[str, int] | None = None
    ) -> list[tuple[float, tuple[float, ...]]]:
        prepared = super().prepare(games, overtimes)
        if not self.interests and not self.drawn:
            return prepared
        ot = overtimes or {}
        scaled = PreparedGames(
            (tip, self.drawn.get(g.game_id) or self._scaled_profile(g, profile, ot.get(g.game_id, 0)))
            for g, (tip, profile) in zip(games, prepared, strict=True)
        )
        # Not memoized: the base class keys a set of games by tips and tiers alone, which two sets with
        # other interests or draws can share.
        scaled.key = None
        return scaled

    def _scaled_profile(self, game: GameSpec, profile: tuple[float, ...], overtimes: int) -> tuple[float, ...]:
        """The tier's profile (at the mean interest) scaled to the game's drawn interest."""
        key = (game.game_id, overtimes)
        cached = self._scaled.get(key)
        if cached is None:
            mean = self.gen.mean_interest
            factor = self.interests.get(game.game_id, mean) / mean
            cached = self._scaled[key] = tuple(v * factor for v in profile)
        return cached


def told_forecaster(
    params: GenParams,
    history: Sequence[tuple[datetime, float]],
    games: Sequence[GameSpec],
    interests: Mapping[str, float] | None = None,
    draws: Sequence[GameDraw] = (),
) -> ToldForecaster:
    """The generator's average traffic (`params`) as a tipoff forecaster, its headroom calibrated on
    `history` (samples under `games`); with `interests`, each game's drawn interest too, and with `draws`,
    each of those games' whole draw (the history's games' as well, so that the calibration measures this
    model's errors)."""
    shape = expected_shape(params) * params.mean_interest
    per_game = params.per_game_rps
    told = ToldForecaster(
        baseline=(0.0,) * BASELINE_BINS,
        profiles={
            "national": tuple(float(v) for v in shape * per_game * params.national_multiple),
            "regional": tuple(float(v) for v in shape * per_game),
        },
        overlap_factors=(1.0,) * MAX_OVERLAP,
        learned=True,
        gen=params,
        interests=dict(interests or {}),
        drawn={d.game.game_id: drawn_profile(d, params) for d in draws},
    )
    return cast(ToldForecaster, told.calibrated([t for t, _ in history], [r for _, r in history], games))
