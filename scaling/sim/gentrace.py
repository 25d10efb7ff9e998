"""Synthetic game-night traffic for replay and the benchmark.

Demand at time t (rps) is

    rps(t) = base_rps · diurnal(t) · noise(t)
             + Σ_games per_game_rps · tier_weight · interest_g · game_shape_g(t − tip_g) · noise(t)
             + unscheduled spikes

- **diurnal(t)**: low overnight in the US, a small lunchtime bump and an
  evening peak around 20:00 ET (ET = UTC−5): 0.25 + 0.15·bump(12:30 ET, σ 2 h)
  + 0.75·bump(20:00 ET, σ 3 h), weekends × `weekend_factor`.
- **tier_weight**: `national_multiple` (default 4) for a national-TV game
  (any network but NBA TV), 1 for a regional one. **interest_g** is a per-game
  log-normal draw (σ `interest_sigma`), a rivalry or a star's night.
- **game_shape** (minutes from tip-off m; 1.0 is the in-game level):
  - pre-tip ramp from m = −`ramp_min` (default 90): 0.05 + 0.45·x² with
    x going 0 → 1 (people open the app before the game);
  - tip-off: within the first minute demand doubles to the in-game level and
    surges +`tip_surge` (default 0.5, decaying with τ 5 min) as live
    predictions start — the step a reactive autoscaler is always late for;
  - in-game level 1.0 through regulation (`regulation_min`, 140 minutes of
    wall clock), extended by 15 minutes per overtime;
  - surges that rise within a minute and decay exponentially (τ 3 min): end of
    Q1 at m = 32 (+0.6), halftime at m = 66 (+1.0, τ 6 min), end of Q3 at
    m = 113 (+0.6) and the final buzzer (+1.2);
  - close-finish variant (probability `close_finish_p`): the last 15
    minutes of regulation climb linearly to +1.0 on top of the level;
  - overtime variant (probability `overtime_p`, a second OT with
    `overtime_p` again): level 1.6 during each 15-minute overtime;
  - after the game, an exponential fade (τ 12 min).
- **noise(t)**: multiplicative log-normal AR(1) per minute (σ `noise_sigma`,
  correlation 0.9), linearly interpolated between minutes.
- **unscheduled spikes** (`spikes` per trace, breaking news): at a random
  time, traffic rises × `spike_multiple` (default 3) within a minute, holds
  5–20 minutes and decays over 10 minutes.

All randomness comes from one seeded generator, drawn in a fixed order, so a
seed gives the same trace byte for byte.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import numpy.typing as npt

from scaling.policy.types import GameSpec
from scaling.sim.trace import Trace

FloatArray = npt.NDArray[np.float64]

Q1_END_MIN = 32.0
HALFTIME_MIN = 66.0
Q3_END_MIN = 113.0
OVERTIME_MIN = 15.0
SHAPE_BEFORE_MIN = 120.0
SHAPE_AFTER_MIN = 260.0
SPIKE_FADE_MIN = 10.0  # an unscheduled spike decays over this long after its hold
NOISE_CORRELATION = 0.9  # of the log-normal AR(1) noise, from one minute to the next


@dataclass(frozen=True)
class GenParams:
    base_rps: float = 400.0
    per_game_rps: float = 450.0
    national_multiple: float = 4.0
    interest_sigma: float = 0.25
    ramp_min: float = 90.0
    regulation_min: float = 140.0
    tip_surge: float = 0.5
    close_finish_p: float = 0.3
    overtime_p: float = 0.06
    noise_sigma: float = 0.04
    weekend_factor: float = 1.15
    spikes: int = 0
    spike_multiple: float = 3.0
    use_schedule: bool = True

    @property
    def mean_interest(self) -> float:
        """The mean of a game's interest, a log-normal draw (σ `interest_sigma`)."""
        return math.exp(self.interest_sigma**2 / 2.0)


def _bump(hours: FloatArray, centre: float, sigma: float) -> FloatArray:
    d = (hours - centre + 12.0) % 24.0 - 12.0
    out: FloatArray = np.exp(-0.5 * (d / sigma) ** 2)
    return out


def diurnal(epoch_s: FloatArray, weekend_factor: float) -> FloatArray:
    hours_et = ((epoch_s / 3600.0) - 5.0) % 24.0
    level = 0.25 + 0.15 * _bump(hours_et, 12.5, 2.0) + 0.75 * _bump(hours_et, 20.0, 3.0)
    day_et = np.floor((epoch_s - 5 * 3600.0) / 86400.0)
    weekday = (day_et + 3) % 7  # 1970-01-01 was a Thursday (3 with Monday = 0)
    out: FloatArray = level * np.where(weekday >= 5, weekend_factor, 1.0)
    return out


def _surge(m: FloatArray, at: float, height: float, tau: float) -> FloatArray:
    """Rise within a minute at `at`, then decay with time constant `tau` minutes."""
    rise = np.clip(m - at + 1.0, 0.0, 1.0)
    decay = np.exp(-np.clip(m - at, 0.0, None) / tau)
    out: FloatArray = height * rise * decay
    return out


def game_shape(m: FloatArray, params: GenParams, *, close_finish: bool, overtimes: int) -> FloatArray:
    """Relative demand of one game at minutes `m` from tip-off (see the module docstring)."""
    end = params.regulation_min + OVERTIME_MIN * overtimes
    x = np.clip((m + params.ramp_min) / params.ramp_min, 0.0, 1.0)
    pre = np.where(m >= -params.ramp_min, 0.05 + 0.45 * x**2, 0.0)
    level = np.where(m >= params.regulation_min, 1.6 if overtimes else 1.0, 1.0)
    live = (m >= 0.0) & (m < end)
    # The first minute climbs from the ramp's 0.5 to the in-game level.
    level = level - np.where(m < 1.0, 0.5 * (1.0 - np.clip(m, 0.0, 1.0)), 0.0)
    shape = np.where(m < 0.0, pre, np.where(live, level, 0.0))
    shape = shape + np.where(live, _surge(m, 0.0, params.tip_surge, 5.0), 0.0)
    shape = shape + np.where(live, _surge(m, Q1_END_MIN, 0.6, 3.0), 0.0)
    shape = shape + np.where(live, _surge(m, HALFTIME_MIN, 1.0, 6.0), 0.0)
    shape = shape + np.where(live, _surge(m, Q3_END_MIN, 0.6, 3.0), 0.0)
    if close_finish:
        climb = np.clip((m - (params.regulation_min - 15.0)) / 15.0, 0.0, 1.0)
        shape = shape + np.where(live & (m < params.regulation_min), climb, 0.0)
    after = m >= end
    fade = np.exp(-np.clip(m - end, 0.0, None) / 12.0)
    shape = np.where(after, fade, shape) + _surge(m, end, 1.2, 3.0)
    out: FloatArray = shape
    return out


OVERTIMES_WEIGHED = 2  # a second overtime is drawn with overtime_p again; a third never


def expected_game_shape(m: FloatArray, params: GenParams) -> FloatArray:
    """A game's expected shape at minutes `m` from tip-off, at interest 1: each close-finish and overtime
    variant of `game_shape` weighed by how often the generator draws it."""
    p_close, p_ot = params.close_finish_p, params.overtime_p
    overtime_odds = (1.0 - p_ot, p_ot * (1.0 - p_ot), p_ot * p_ot)
    shape = np.zeros(len(m))
    for close, p_c in ((False, 1.0 - p_close), (True, p_close)):
        for overtimes in range(OVERTIMES_WEIGHED + 1):
            shape += p_c * overtime_odds[overtimes] * game_shape(m, params, close_finish=close, overtimes=overtimes)
    return shape


@dataclass(frozen=True)
class Spike:
    """An unscheduled spike: traffic starts rising at `onset` (epoch s), holds × multiple until `hold_end`."""

    onset: float
    hold_end: float


def spike_factor(m: FloatArray, hold_min: float, multiple: float) -> FloatArray:
    """A spike's multiplier on demand at `m` minutes from its onset: 1 before it, rising to `multiple` within
    a minute, held for `hold_min` minutes from the onset, then fading over SPIKE_FADE_MIN."""
    rise = np.clip(m, 0.0, 1.0)
    decay = np.where(m > hold_min, np.clip(1.0 - (m - hold_min) / SPIKE_FADE_MIN, 0.0, 1.0), 1.0)
    out: FloatArray = 1.0 + (multiple - 1.0) * rise * decay
    return out


@dataclass(frozen=True)
class GameDraw:
    """What the generator drew for one game of the schedule."""

    game: GameSpec
    interest: float
    close_finish: bool
    overtimes: int

    def tier_rps(self, params: GenParams) -> float:
        """The game's demand at shape 1.0 and interest 1: per-game rps × its tier's weight."""
        return params.per_game_rps * (params.national_multiple if self.game.is_national else 1.0)


@dataclass(frozen=True)
class Generated:
    """A generated trace with what was drawn for it: each game's draw (in tip-off order) and the spikes."""

    trace: Trace
    spikes: list[Spike]
    draws: list[GameDraw]


def generate(
    start: datetime,
    days: float,
    *,
    step_s: int = 10,
    games: Sequence[GameSpec] = (),
    params: GenParams | None = None,
    seed: int = 0,
) -> Trace:
    """A trace from `start` for `days`, at `step_s`, shaped by the games of the schedule (`generate_drawn`)."""
    return generate_drawn(start, days, step_s=step_s, games=games, params=params, seed=seed).trace


def generate_drawn(
    start: datetime,
    days: float,
    *,
    step_s: int = 10,
    games: Sequence[GameSpec] = (),
    params: GenParams | None = None,
    seed: int = 0,
) -> Generated:
    """A trace from `start` for `days`, at `step_s`, shaped by the games of the schedule, with its draws.

    1. Diurnal baseline over the whole grid.
    2. For each game (sorted by tip-off), draw interest, close finish and overtime, add its shape (none for
       a game still to be decided, whose tip-off is a placeholder).
    3. Multiply by the correlated noise; add the unscheduled spikes.
    """
    params = params or GenParams()
    rng = np.random.default_rng(seed)
    start = start.astimezone(UTC)
    t0 = int(start.timestamp())
    n = round(days * 86400 / step_s)
    epoch = t0 + step_s * np.arange(n, dtype=np.float64)
    demand = params.base_rps * diurnal(epoch, params.weekend_factor)

    draws = []
    ordered = sorted(games, key=lambda g: (g.tip_utc, g.game_id)) if params.use_schedule else []
    for game in ordered:
        tip = game.tip_utc.timestamp()
        interest = math.exp(rng.normal(0.0, params.interest_sigma))
        close_finish = bool(rng.random() < params.close_finish_p)
        overtimes = 0
        if rng.random() < params.overtime_p:
            overtimes = 2 if rng.random() < params.overtime_p else 1
        draw = GameDraw(game, interest, close_finish, overtimes)
        draws.append(draw)
        lo = max(0, math.floor((tip - SHAPE_BEFORE_MIN * 60 - t0) / step_s))
        hi = min(n, math.ceil((tip + SHAPE_AFTER_MIN * 60 - t0) / step_s))
        # A game to be decided has a placeholder tip-off: no traffic then (its draws are still taken, so the
        # games after it draw the same with or without it).
        if hi <= lo or game.tbd:
            continue
        minutes = (epoch[lo:hi] - tip) / 60.0
        shape = game_shape(minutes, params, close_finish=close_finish, overtimes=overtimes)
        demand[lo:hi] += draw.tier_rps(params) * interest * shape

    # Correlated multiplicative noise, one value per minute, interpolated.
    minutes_n = math.ceil(n * step_s / 60.0) + 2
    shocks = rng.normal(0.0, params.noise_sigma * math.sqrt(1 - NOISE_CORRELATION**2), minutes_n)
    ar = np.empty(minutes_n)
    ar[0] = rng.normal(0.0, params.noise_sigma)
    for i in range(1, minutes_n):
        ar[i] = NOISE_CORRELATION * ar[i - 1] + shocks[i]
    noise = np.exp(np.interp((epoch - t0) / 60.0, np.arange(minutes_n, dtype=np.float64), ar))
    demand = demand * noise

    spikes = []
    for _ in range(params.spikes):
        at_min = float(rng.uniform(0.0, n * step_s / 60.0))
        hold_min = float(rng.uniform(5.0, 20.0))
        spike = Spike(onset=t0 + at_min * 60.0, hold_end=t0 + (at_min + hold_min) * 60.0)
        spikes.append(spike)
        demand = demand * spike_factor((epoch - t0) / 60.0 - at_min, hold_min, params.spike_multiple)

    rps = np.round(np.maximum(demand, 0.0), 3).astype(np.float64)
    trace = Trace(start=datetime.fromtimestamp(t0, tz=UTC), step_s=step_s, rps=rps, source="generated")
    return Generated(trace, spikes, draws)
