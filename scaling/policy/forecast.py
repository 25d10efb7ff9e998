"""Schedule-aware demand forecast: a time-of-day baseline plus learned per-tier profiles around tip-off.

Demand is modelled as

    rps(t) = baseline(time of day) + overlap(k) × Σ_games profile[tier](minutes from tip)

where k is how many games are live at t. `Forecaster.fit` learns the baseline and
one game shape by least squares from a history of (ts, rps) samples and the
schedule that history ran under (the service's own samples live, `--history` in
replay), each game of the history at its own learned interest; a tier's profile is
the shape at its games' mean interest. Then the overlap factors from what is left
over. Without history the default shape stands in;
either way `rules.forecast_ratio` rescales the forecast by what the metric window
shows tonight, so a bigger-than-usual pre-game ramp lifts the forecast for tip-off
before tip-off arrives.

The fit also replays that correction over the history and keeps how far it fell
short (`surprise`), per horizon and phase of the game; over a game's finish, apart
for the moments when tonight's ratio was climbing (`surprise_rising`: a close finish)
and the rest. The engine provisions that much headroom above the forecast; where games
overlap, each game's phase weighs by its share of the forecast.

A game that runs past its usual finish (overtime) holds its late-game level where the
profile fades: `overtime_profile` is the profile with the finish delayed, and
`rules.detect_overtimes` reads from the metric window which games to forecast with it.

A Forecaster is a frozen value: build it once (from history) and pass it in
`EngineInput.forecaster`; `predict` is plain arithmetic, cheap enough for every tick.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, fields, replace
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any, NamedTuple

import numpy as np

from scaling.policy.types import GameSpec

TIERS: tuple[str, ...] = ("national", "regional")
FIT_RESOLUTION_S = 10.0  # the fit averages the history into buckets this long ...
CALIBRATION_S = 60.0  # ... and calibrates the headroom on buckets this long (what a metric window averages)
INTEREST_ROUNDS = 6  # shape, then each game's interest, this many times
# Each game's interest is pulled toward its tier's mean with this weight (times the mean curvature of the
# interests' least squares): a game the history holds only part of (its start or end) stays near its tier's.
INTEREST_PRIOR = 1.0
NATIONAL_START = 3.0  # a national game's interest to start from (regional games: 1)
INTEREST_FLOOR = 0.05  # a game's interest never falls below this (one the history barely holds)
# While it learns each game's interest, the fit pulls the baseline toward its first pass with this weight (times
# the mean curvature of the baseline's least squares): games tip within the same few evening hours every night,
# and with the baseline free the evening baseline and the games trade against each other where the data cannot
# tell them apart (on a history whose games tip at the same time every night, the baseline fell to nothing).
BASELINE_ANCHOR = 0.1
OVERLAP_MIN_MINUTES = 30  # an overlap factor needs this many minutes of the history with that many games live
BASELINE_BINS = 48  # half-hours of the UTC day
PROFILE_START_MIN = -120.0
PROFILE_END_MIN = 240.0
PROFILE_BIN_MIN = 1.0
MAX_OVERLAP = 6  # overlap factors for 1..MAX_OVERLAP live games (more share the last)
LIVE_START_MIN = -30.0  # a game counts as live (for overlap) from half an hour before tip ...
LIVE_END_MIN = 180.0  # ... to three hours after
# Calibrated headroom: how far tonight-corrected forecasts fell short in the history, by phase of the game.
SURPRISE_HORIZONS_S = (240, 360, 540, 780)  # from the observation to the forecast time
SURPRISE_BUCKET_MIN = 5.0
SURPRISE_BUCKETS = round((PROFILE_END_MIN - PROFILE_START_MIN) / SURPRISE_BUCKET_MIN)  # + 1 for "no game"
# 0.99 since games overlapping weigh their phases (`Forecaster._surprise`) rather than take the worst: the worst
# had bought at 0.98 what the blend needs 0.99 for where one game leads, at less cost where games overlap.
SURPRISE_QUANTILE = 0.99
SURPRISE_MIN_SAMPLES = 20
# The learned headroom stops here: a rarer, bigger surprise (an overtime) is the reactive rules' and the
# trend's to answer, not a reason to hold up to 2x through the end of every game.
SURPRISE_CAP = 0.35
# Tonight's ratio counts as rising above this slope (per second; 1 % a minute): the headroom then comes
# from the history's moments that were rising too (a close finish), and otherwise from the rest.
RISING_SLOPE_PER_S = 0.01 / 60.0
# The split applies to the finish (from here to the end of the profile): earlier in a game, and between
# games, a climbing ratio is noise more often than news.
SPLIT_FROM_MIN = 110.0
SPLIT_BUCKETS = range(round((SPLIT_FROM_MIN - PROFILE_START_MIN) / SURPRISE_BUCKET_MIN), SURPRISE_BUCKETS)
TREND_WINDOW_S = 240.0  # the ratio's rise is read over this long, from samples about a minute apart
# A game this close to its tip-off (minutes) asks for its own phase's headroom on all of the demand, whatever
# its share of it: it doubles within a minute (see `Forecaster._surprise`).
TIPPING_OFF_MIN = (-5.0, 15.0)
# Overtime: the learned profile's last peak marks where a game usually ends (the final buzzer). A game that
# goes to overtime holds its late-game level for OVERTIME_MIN more minutes of wall clock (five minutes of
# game clock, with timeouts and fouls) and ends then: its profile with the finish delayed.
FINISH_SEARCH_MIN = (120.0, 170.0)
OVERTIME_MIN = 15.0
OVERTIME_LEVEL_MIN = (-4.0, -1.0)  # the late-game level is the profile's mean over these minutes from the finish


# The default (unlearned) game shape's pre-game ramp, as shares of its live level: from a trickle an hour before
# tip-off to half the live level at it.
DEFAULT_RAMP_FROM = 0.05
DEFAULT_RAMP_TO = 0.5


def _profile_bins() -> int:
    return round((PROFILE_END_MIN - PROFILE_START_MIN) / PROFILE_BIN_MIN) + 1


def profile_minutes() -> np.ndarray:
    """The minute from tip-off of each profile bin: where a profile's values sit."""
    return PROFILE_START_MIN + PROFILE_BIN_MIN * np.arange(_profile_bins(), dtype=np.float64)


def _default_game_shape(minutes: float) -> float:
    """A generic game: a pre-game ramp over the last hour, a live level with a halftime bump, a fade after.

    The ramp rises to half the live level, so that tip-off doubles the game's demand within a minute (see
    TIPPING_OFF_MIN). It rose to 0.8 of it: a cold start then expected a quarter more at tip-off, pre-warmed
    for that, and met the rest of the step late, as a surge over the calendar's expectation."""
    if minutes < -60.0 or minutes > 180.0:
        return 0.0
    if minutes < 0.0:
        x = (minutes + 60.0) / 60.0
        return DEFAULT_RAMP_FROM + (DEFAULT_RAMP_TO - DEFAULT_RAMP_FROM) * x * x
    level = 1.0 + 0.6 * math.exp(-0.5 * ((minutes - 72.0) / 15.0) ** 2)
    level += 0.8 * math.exp(-0.5 * ((minutes - 140.0) / 10.0) ** 2)
    if minutes > 150.0:
        level *= max(0.0, 1.0 - (minutes - 150.0) / 30.0)
    return level


def _default_baseline(hour_utc: float) -> float:
    hour_et = (hour_utc - 5.0) % 24.0
    return 0.3 + 0.7 * math.exp(-0.5 * ((hour_et - 20.0) / 3.5) ** 2)


def _epoch(t: datetime) -> float:
    return t.timestamp()


class SurpriseSource(NamedTuple):
    """Where a learned headroom came from, for explanations."""

    horizon_s: int  # the calibrated horizon it read
    bucket: int  # the phase bucket it names (SURPRISE_BUCKETS: no game near)
    game: int | None  # the index in `prepared` of the game in that phase (None for the no-game bucket)
    climbing: bool  # whether it came from the history's climbing moments alone
    games: int  # how many games' phases were weighed into it, each by its share (1: that game's alone)


MEMO_SIZE = 20_000  # entries (a few MB); cleared when full


class PreparedGames(list[tuple[float, tuple[float, ...]]]):
    """`Forecaster.prepare`'s answer: (tip epoch, profile) per game, and a key for that set of games."""

    key: int | None = None


@dataclass(frozen=True)
class Forecaster:
    """A learned (or default) demand model. Units of rps when learned; relative when default."""

    baseline: tuple[float, ...]  # BASELINE_BINS values at the start of each half-hour (UTC)
    profiles: dict[str, tuple[float, ...]]  # tier -> values at PROFILE_START_MIN + i × PROFILE_BIN_MIN
    overlap_factors: tuple[float, ...] = (1.0,) * MAX_OVERLAP
    learned: bool = False
    history_samples: int = 0
    history_games: int = 0
    # Tips seen in the history per tier (how much the profile rests on).
    tier_games: dict[str, int] = field(default_factory=dict)
    # horizon_s -> per phase bucket (minutes from the leading game's tip; the last = no game):
    # the SURPRISE_QUANTILE of how much demand exceeded the corrected forecast in the history.
    surprise: dict[int, tuple[float, ...]] = field(default_factory=dict)
    # The same, from the moments when the ratio was rising (see RISING_SLOPE_PER_S); empty = use `surprise`.
    surprise_rising: dict[int, tuple[float, ...]] = field(default_factory=dict)
    # Memo of predictions and surprises per (set of games, instant): successive ticks ask for mostly the
    # same instants. Pure caching — a value never depends on whether it was cached.
    _memo: dict[tuple[int, float, float], float] = field(default_factory=dict, init=False, repr=False, compare=False)
    _game_sets: dict[tuple[tuple[float, str, int], ...], int] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )
    _overtime_profiles: dict[tuple[str, int], tuple[float, ...]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )
    _finishes: dict[str, int | None] = field(default_factory=dict, init=False, repr=False, compare=False)

    # -- building --------------------------------------------------------------------------------------

    @classmethod
    def default(cls) -> Forecaster:
        """The shape to fall back on without history: scaled by what is observed (`rules.forecast_ratio`)."""
        baseline = tuple(_default_baseline(i * 24.0 / BASELINE_BINS) for i in range(BASELINE_BINS))
        shape = [_default_game_shape(float(m)) for m in profile_minutes()]
        return cls(
            baseline=baseline,
            profiles={"national": tuple(3.0 * v for v in shape), "regional": tuple(shape)},
        )

    @classmethod
    def fit(
        cls,
        ts: Sequence[datetime],
        rps: Sequence[float],
        games: Sequence[GameSpec],
        *,
        resolution_s: float = FIT_RESOLUTION_S,
        calibration_s: float = CALIBRATION_S,
        baseline_smoothing: float = 30.0,
        profile_smoothing: float = 0.3,
        interest_prior: float = INTEREST_PRIOR,
    ) -> Forecaster:
        """Learn baseline and per-tier profiles from samples `(ts[i], rps[i])` and the games around them.

        1. Average the samples into `resolution_s` buckets (the history may be at any step).
        2. Solve baseline (hat basis over the day) + one game shape (hat basis over minutes from tip) by least
           squares, each game adding the shape times its interest (to start with, NATIONAL_START for a national
           game, 1 for a regional one), with a small second-difference penalty so bins with little data stay
           smooth.
        3. Learn each game's interest (least squares on what the baseline leaves, pulled toward its tier's mean
           by `interest_prior`), then baseline and shape again, the baseline pulled toward its first pass
           (BASELINE_ANCHOR); INTEREST_ROUNDS times.
        4. A tier's profile is the shape times its games' mean interest (regional games average 1). A tier
           without games in the history borrows the other tier's profile (national = 3 × regional).
        5. Learn a factor per number of live games from the residual, and the headroom (`surprise`) from how
           far the tonight-corrected forecast fell short over the history, in `calibration_s` buckets.

        Why buckets finer than the profile's minute knots: minute means centred half-way between the knots (a
        history on the minute, tips on the minute) fix only the sums of neighbouring knots, and the profile
        alternated from one minute to the next, by up to 45-57 % (against its own [1, 2, 1] smoothing) in the
        half hour before tip-off on the benchmark's regular-week and slow-provisioning histories; fitted on
        10 s buckets, 15-23 %, which is the fit's noise and does not alternate.

        Why each game's interest: a game is then one shape at its own level, and the shape is learned from all
        of them alike. Why the anchor: see BASELINE_ANCHOR.
        """
        buckets = _buckets(ts, rps, resolution_s)
        if buckets is None:
            return cls.default()
        _, times, y = buckets
        relevant = _games_within(games, times)
        smoothing = (baseline_smoothing, profile_smoothing)
        interests = [NATIONAL_START if g.is_national else 1.0 for g in relevant]
        coef, cols, vals, live = _solve(times, y, relevant, interests, smoothing)
        first_baseline = coef[:BASELINE_BINS]
        for _ in range(INTEREST_ROUNDS if relevant else 0):
            left = y - np.sum(vals[:, :2] * coef[cols[:, :2]], axis=1)  # what the baseline leaves
            interests = _interests(times, left, relevant, coef[BASELINE_BINS:], interests, prior=interest_prior)
            coef, cols, vals, live = _solve(times, y, relevant, interests, smoothing, anchor=first_baseline)
        nb = BASELINE_BINS
        shape = coef[nb:]
        tier_interest = {
            tier: float(np.mean([a for a, g in zip(interests, relevant, strict=True) if g.tier == tier]))
            for tier in TIERS
            if any(g.tier == tier for g in relevant)
        }
        profiles = {tier: tuple(float(a * v) for v in shape) for tier, a in tier_interest.items()}
        baseline = tuple(float(v) for v in coef[:nb])
        if "national" not in profiles and "regional" in profiles:
            profiles["national"] = tuple(3.0 * v for v in profiles["regional"])
        if "regional" not in profiles and "national" in profiles:
            profiles["regional"] = tuple(v / 3.0 for v in profiles["national"])
        if not profiles:
            profiles = dict(cls.default().profiles)
            profiles = {k: tuple(0.0 for _ in v) for k, v in profiles.items()}

        # Overlap factors: how much more (or less) the games add when k of them are live at once.
        base_part = np.sum(vals[:, :2] * coef[cols[:, :2]], axis=1)
        game_part = np.sum(vals[:, 2:] * coef[cols[:, 2:]], axis=1)
        factors = []
        for k in range(1, MAX_OVERLAP + 1):
            mask = (live >= k) if k == MAX_OVERLAP else (live == k)
            predicted = float(np.sum(game_part[mask]))
            observed = float(np.sum(y[mask] - base_part[mask]))
            enough = np.unique(times[mask] // 60.0).size >= OVERLAP_MIN_MINUTES
            factors.append(min(max(observed / predicted, 0.5), 2.0) if predicted > 1e-9 and enough else 1.0)
        tier_games = {tier: sum(1 for g in relevant if g.tier == tier) for tier in TIERS}
        fitted = cls(
            baseline=baseline,
            profiles=profiles,
            overlap_factors=tuple(factors),
            learned=True,
            history_samples=len(ts),
            history_games=len(relevant),
            tier_games=tier_games,
        )
        return fitted.calibrated(ts, rps, games, resolution_s=calibration_s)

    def calibrated(
        self, ts: Sequence[datetime], rps: Sequence[float], games: Sequence[GameSpec], *, resolution_s: float = 60.0
    ) -> Forecaster:
        """This model with its headroom (`surprise`, `surprise_rising`) calibrated on a history, as `fit`
        calibrates the model it learns: how far this model's tonight-corrected forecasts fell short there.

        For a model built some other way than `fit` (the benchmark's gap analysis builds one told how its
        traffic is made), so that it carries headroom for its own errors and not for a learned model's."""
        buckets = _buckets(ts, rps, resolution_s)
        if buckets is None:
            return replace(self, surprise={}, surprise_rising={})
        keys, times, y = buckets
        relevant = _games_within(games, times)
        prepared = self.prepare(relevant)
        predicted = np.array([self.predict_epoch(float(t), prepared) for t in times])
        return self._with_headroom(keys, times, y, predicted, relevant, resolution_s=resolution_s)

    def _with_headroom(
        self,
        keys: np.ndarray,
        times: np.ndarray,
        observed: np.ndarray,
        predicted: np.ndarray,
        games: Sequence[GameSpec],
        *,
        resolution_s: float,
    ) -> Forecaster:
        """This model with the headroom its `predicted` rates (per history bucket) leave below `observed`."""
        flat, rising = _calibrate(keys, observed, predicted, self._phases(times, games), resolution_s)
        return replace(self, surprise=flat, surprise_rising=rising)

    def _phases(self, times: np.ndarray, games: Sequence[GameSpec]) -> np.ndarray:
        """The surprise bucket at every epoch of `times`: minutes from the tip of the game adding the most demand
        then (the history's shortfalls are kept by the leading game's phase; see `_surprise`)."""
        best = np.zeros(len(times))
        best_minutes = np.full(len(times), np.nan)
        for tip, profile in self.prepare(games):
            if not profile:
                continue
            minutes = (times - tip) / 60.0
            inside = (minutes >= PROFILE_START_MIN) & (minutes < PROFILE_END_MIN)
            idx = np.where(inside, (minutes - PROFILE_START_MIN) / PROFILE_BIN_MIN, 0.0).astype(int)
            value = np.where(inside, np.asarray(profile)[idx], 0.0)
            better = value > best
            best = np.where(better, value, best)
            best_minutes = np.where(better, minutes, best_minutes)
        phase = np.full(len(times), SURPRISE_BUCKETS, dtype=np.int64)
        has = ~np.isnan(best_minutes)
        phase[has] = np.minimum(
            ((best_minutes[has] - PROFILE_START_MIN) / SURPRISE_BUCKET_MIN).astype(np.int64), SURPRISE_BUCKETS - 1
        )
        return phase

    def surprise_at(
        self, horizon_s: float, t: float, prepared: list[tuple[float, tuple[float, ...]]], *, rising: bool = False
    ) -> float:
        """How much to add above the corrected forecast at `t`, `horizon_s` after the observation (0 unlearned),
        from the history's moments when tonight's ratio was `rising` or not."""
        table = self._surprise_table(rising)
        if not table:
            return 0.0
        h = self._surprise_horizon(table, horizon_s)
        key = getattr(prepared, "key", None)
        if key is None:
            return self._surprise(table[h], t, prepared)[0]
        memo_key = (key, float(h) + (0.5 if table is self.surprise_rising else 0.0), t)
        value = self._memo.get(memo_key)
        if value is None:
            value = self._surprise(table[h], t, prepared)[0]
            self._remember(memo_key, value)
        return value

    def surprise_source(
        self, horizon_s: float, t: float, prepared: list[tuple[float, tuple[float, ...]]], *, rising: bool = False
    ) -> SurpriseSource | None:
        """Where `surprise_at` took its value from, for explanations (see SurpriseSource); None unlearned."""
        table = self._surprise_table(rising)
        if not table:
            return None
        h = self._surprise_horizon(table, horizon_s)
        _, bucket, game, weighed = self._surprise(table[h], t, prepared)
        return SurpriseSource(h, bucket, game, table is self.surprise_rising and bucket in SPLIT_BUCKETS, weighed)

    def _surprise_table(self, rising: bool) -> dict[int, tuple[float, ...]]:
        return self.surprise_rising if rising and self.surprise_rising else self.surprise

    @staticmethod
    def _surprise_horizon(table: dict[int, tuple[float, ...]], horizon_s: float) -> int:
        """The shortest calibrated horizon at least `horizon_s` (the longest if none is)."""
        fitting = [h for h in sorted(table) if h >= horizon_s]
        return fitting[0] if fitting else max(table)

    def _surprise(
        self, row: tuple[float, ...], t: float, prepared: list[tuple[float, tuple[float, ...]]]
    ) -> tuple[float, int, int | None, int]:
        """The headroom `row` gives at `t`: (the value, the phase bucket it names, the game in that phase (index
        in `prepared`; None for the no-game bucket), how many games' phases were weighed into the value).

        Each game's phase weighs by that game's share of the games' demand then: where one game leads by far,
        its phase's headroom; where games overlap, a blend of theirs. The history's shortfalls were kept by the
        leading game's phase, which is the same thing where one leads. Taking the worst phase among the games
        instead laid a small game's finish, and the overtime it may bring, on all of the demand. A game tipping
        off doubles within a minute, however small its share, so its own phase's headroom is a floor."""
        values: list[tuple[float, int, bool, int]] = []
        for i, (tip, profile) in enumerate(prepared):
            minutes = (t - tip) / 60.0
            if PROFILE_START_MIN <= minutes < PROFILE_END_MIN and profile:
                value = profile[int((minutes - PROFILE_START_MIN) / PROFILE_BIN_MIN)]
                bucket = min(int((minutes - PROFILE_START_MIN) / SURPRISE_BUCKET_MIN), SURPRISE_BUCKETS - 1)
                values.append((value, bucket, TIPPING_OFF_MIN[0] <= minutes < TIPPING_OFF_MIN[1], i))
        total = sum(v for v, _, _, _ in values if v > 0.0)
        if total <= 0.0:
            return row[SURPRISE_BUCKETS], SURPRISE_BUCKETS, None, 0
        weighed = [(v, b, i) for v, b, _, i in values if v > 0.0]
        blend = sum(v * row[b] for v, b, _ in weighed) / total
        _, lead_bucket, lead = max(weighed, key=lambda vbi: (vbi[0], -vbi[2]))
        tipping = max(((row[b], b, i) for _, b, tip, i in values if tip), default=None)
        if tipping is not None and tipping[0] > blend:
            return tipping[0], tipping[1], tipping[2], 1
        return blend, lead_bucket, lead, len(weighed)

    # -- predicting ------------------------------------------------------------------------------------

    def baseline_at(self, t: datetime) -> float:
        pos = ((_epoch(t) % 86400.0) / 86400.0) * BASELINE_BINS
        i = int(pos)
        frac = pos - i
        return self.baseline[i % BASELINE_BINS] * (1.0 - frac) + self.baseline[(i + 1) % BASELINE_BINS] * frac

    def profile_for(self, tier: str) -> tuple[float, ...]:
        """The tier's profile (the regional one for a tier without its own)."""
        return self.profiles.get(tier) or self.profiles.get("regional") or ()

    def game_at(self, game: GameSpec, t: datetime) -> float:
        return profile_value(_epoch(game.tip_utc), self.profile_for(game.tier), _epoch(t))

    def predict(self, t: datetime, games: Sequence[GameSpec]) -> float:
        """Expected demand at `t` (before tonight's correction)."""
        return self.predict_epoch(_epoch(t), self.prepare(games))

    def prepare(
        self, games: Sequence[GameSpec], overtimes: dict[str, int] | None = None
    ) -> list[tuple[float, tuple[float, ...]]]:
        """(tip epoch, profile) per game: what `predict_epoch` needs, computed once per decision.

        `overtimes` names the games known to run into overtime (game id -> how many periods): their
        profiles end later (`overtime_profile`). The list carries a key for the set of games, under which
        predictions are memoized."""
        ot = overtimes or {}
        tips = [(g.tip_s, g.tier, ot.get(g.game_id, 0)) for g in games]
        prepared = PreparedGames((tip, self.overtime_profile(tier, k)) for tip, tier, k in tips)
        sets = self._game_sets
        identity = tuple(tips)
        key = sets.get(identity)
        if key is None:
            if len(sets) >= MEMO_SIZE:
                sets.clear()
                self._memo.clear()
            key = sets[identity] = len(sets)
        prepared.key = key
        return prepared

    def finish_index(self, tier: str) -> int | None:
        """The bin of the tier's final-buzzer peak: the profile's highest within FINISH_SEARCH_MIN."""
        if tier in self._finishes:
            return self._finishes[tier]
        profile = self.profile_for(tier)
        lo = round((FINISH_SEARCH_MIN[0] - PROFILE_START_MIN) / PROFILE_BIN_MIN)
        hi = min(round((FINISH_SEARCH_MIN[1] - PROFILE_START_MIN) / PROFILE_BIN_MIN), len(profile))
        window = profile[lo:hi]
        finish = lo + window.index(max(window)) if window and max(window) > 0.0 else None
        self._finishes[tier] = finish
        return finish

    def overtime_profile(self, tier: str, overtimes: int = 0) -> tuple[float, ...]:
        """The tier's profile for a game with `overtimes` overtime periods: the late-game level held from
        the usual finish for OVERTIME_MIN per period, then the usual finish (buzzer and fade), that much
        later. With no overtime, the profile itself."""
        profile = self.profile_for(tier)
        if overtimes <= 0:
            return profile
        cached = self._overtime_profiles.get((tier, overtimes))
        if cached is not None:
            return cached
        finish = self.finish_index(tier)
        if finish is None:
            return profile
        lo = finish + round(OVERTIME_LEVEL_MIN[0] / PROFILE_BIN_MIN)
        hi = finish + round(OVERTIME_LEVEL_MIN[1] / PROFILE_BIN_MIN) + 1
        level = sum(profile[lo:hi]) / (hi - lo)
        shift = round(overtimes * OVERTIME_MIN / PROFILE_BIN_MIN)
        delayed = (*profile[:finish], *(level,) * shift, *profile[finish:])[: len(profile)]
        self._overtime_profiles[(tier, overtimes)] = delayed
        return delayed

    def _remember(self, key: tuple[int, float, float], value: float) -> None:
        if len(self._memo) >= MEMO_SIZE:
            self._memo.clear()
        self._memo[key] = value

    def predict_epoch(self, t: float, prepared: list[tuple[float, tuple[float, ...]]]) -> float:
        key = getattr(prepared, "key", None)
        if key is None:
            return self._predict(t, prepared)
        memo_key = (key, -1.0, t)
        value = self._memo.get(memo_key)
        if value is None:
            value = self._predict(t, prepared)
            self._remember(memo_key, value)
        return value

    def _predict(self, t: float, prepared: list[tuple[float, tuple[float, ...]]]) -> float:
        total = 0.0
        live = 0
        for tip, profile in prepared:  # `profile_value` inline: every forecast point passes here
            minutes = (t - tip) / 60.0
            if minutes < PROFILE_START_MIN or minutes >= PROFILE_END_MIN or not profile:
                continue
            pos = (minutes - PROFILE_START_MIN) / PROFILE_BIN_MIN
            i = int(pos)
            frac = pos - i
            total += profile[i] * (1.0 - frac) + profile[min(i + 1, len(profile) - 1)] * frac
            live += LIVE_START_MIN <= minutes < LIVE_END_MIN
        if live:
            total *= self.overlap_factors[min(live, MAX_OVERLAP) - 1]
        pos = ((t % 86400.0) / 86400.0) * BASELINE_BINS
        i = int(pos)
        frac = pos - i
        base = self.baseline[i % BASELINE_BINS] * (1.0 - frac) + self.baseline[(i + 1) % BASELINE_BINS] * frac
        return base + total

    def state(self) -> dict[str, object]:
        """What the model is, as plain values (no memo): `from_state(f.state()) == f`. For sharing a fit between
        processes: a value of tuples, dicts and numbers keeps across code changes that a pickled object would not."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.init}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Forecaster:
        """The model `state()` describes, also once it has been through JSON (lists for tuples, text for integer
        keys); a TypeError or ValueError when it is not the state of this version's model."""

        def floats(values: Any) -> tuple[float, ...]:
            return tuple(float(v) for v in values)

        def by_horizon(table: Any) -> dict[int, tuple[float, ...]]:
            return {int(k): floats(v) for k, v in table.items()}

        return cls(
            baseline=floats(state["baseline"]),
            profiles={str(k): floats(v) for k, v in state["profiles"].items()},
            overlap_factors=floats(state["overlap_factors"]),
            learned=bool(state["learned"]),
            history_samples=int(state["history_samples"]),
            history_games=int(state["history_games"]),
            tier_games={str(k): int(v) for k, v in state["tier_games"].items()},
            surprise=by_horizon(state["surprise"]),
            surprise_rising=by_horizon(state["surprise_rising"]),
            **{k: v for k, v in state.items() if k not in _STATE_FIELDS},  # another version's field: a TypeError
        )

    def summary(self) -> dict[str, object]:
        return {
            "learned": self.learned,
            "history_samples": self.history_samples,
            "history_games": self.history_games,
            "tier_games": dict(self.tier_games),
            "overlap_factors": [round(f, 3) for f in self.overlap_factors],
        }


def _buckets(
    ts: Sequence[datetime], rps: Sequence[float | None], resolution_s: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """A history averaged into `resolution_s` buckets from its first sample: (bucket numbers, their
    centres as epochs, the mean rate in each), or None with fewer than 10 buckets of data."""
    if len(ts) != len(rps):
        raise ValueError("history: ts and rps differ in length")
    if not ts:
        return None
    epochs = np.fromiter((_epoch(t) for t in ts), dtype=float, count=len(ts))
    values = np.array([math.nan if r is None else float(r) for r in rps], dtype=float)
    finite = np.isfinite(values)
    t0 = float(epochs[0])
    bucket_of = np.floor_divide(epochs[finite] - t0, resolution_s).astype(np.int64)
    keys, inverse = np.unique(bucket_of, return_inverse=True)
    n = len(keys)
    if n < 10:
        return None
    y = np.bincount(inverse, weights=values[finite], minlength=n) / np.bincount(inverse, minlength=n)
    return keys, t0 + (keys + 0.5) * resolution_s, y


def _games_within(games: Sequence[GameSpec], times: np.ndarray) -> list[GameSpec]:
    """The games whose profile reaches into [times[0], times[-1]], in tip-off order."""
    start, end = times[0] - PROFILE_END_MIN * 60, times[-1] - PROFILE_START_MIN * 60
    return sorted((g for g in games if start <= _epoch(g.tip_utc) <= end), key=lambda g: (g.tip_utc, g.game_id))


def _solve(
    times: np.ndarray,
    y: np.ndarray,
    games: Sequence[GameSpec],
    interests: Sequence[float],
    smoothing: tuple[float, float],
    *,
    anchor: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Least squares: baseline (hat basis over the day) + one game shape (hat basis over minutes from tip).

    A game adds the shape at its minutes from tip, times its interest. Given an `anchor` (baseline
    coefficients), the baseline is pulled toward it with weight BASELINE_ANCHOR. Returns the coefficients
    (baseline, then shape; clipped at 0), the design as (column, value) slots per row, and live games per row."""
    n, nb, npb = len(times), BASELINE_BINS, _profile_bins()
    ncols = nb + npb
    # The design matrix X is sparse (two baseline hats + two profile hats per game a row sees): keep it
    # as (column, value) slots per row and accumulate the normal equations from them.
    spans = []
    overlap = np.zeros(n, dtype=np.int64)
    live = np.zeros(n, dtype=int)
    for g in games:
        minutes = (times - _epoch(g.tip_utc)) / 60.0
        inside = np.nonzero((minutes >= PROFILE_START_MIN) & (minutes < PROFILE_END_MIN))[0]
        spans.append((minutes, inside))
        overlap[inside] += 1
        live += (minutes >= LIVE_START_MIN) & (minutes < LIVE_END_MIN)
    width = 2 + 2 * int(overlap.max(initial=0))
    cols = np.zeros((n, width), dtype=np.int64)
    vals = np.zeros((n, width))
    day_pos = ((times % 86400.0) / 86400.0) * nb
    lo = np.floor(day_pos).astype(int) % nb
    frac = day_pos - np.floor(day_pos)
    cols[:, 0], vals[:, 0] = lo, 1.0 - frac
    cols[:, 1], vals[:, 1] = (lo + 1) % nb, frac
    fill = np.full(n, 2, dtype=np.int64)
    for (minutes, inside), weight in zip(spans, interests, strict=True):
        pos = (minutes[inside] - PROFILE_START_MIN) / PROFILE_BIN_MIN
        plo = np.floor(pos).astype(int)
        pfrac = pos - plo
        slot = fill[inside]
        cols[inside, slot], vals[inside, slot] = nb + plo, weight * (1.0 - pfrac)
        cols[inside, slot + 1], vals[inside, slot + 1] = nb + np.minimum(plo + 1, npb - 1), weight * pfrac
        fill[inside] += 2

    # XᵀX, a row's slots at a time; rows grouped by how many slots they fill (most see few games).
    gram: np.ndarray = np.zeros(ncols * ncols)
    for filled in np.unique(fill).tolist():
        rows_f = fill == filled
        c, v = cols[rows_f, :filled], vals[rows_f, :filled]
        pairs = (c[:, :, None] * ncols + c[:, None, :]).ravel()
        weights = (v[:, :, None] * v[:, None, :]).ravel()
        gram += np.bincount(pairs, weights=weights, minlength=ncols * ncols)
    gram = gram.reshape(ncols, ncols) + _penalty_gram(*smoothing)
    gram[np.diag_indices_from(gram)] += 1e-6 * max(float(np.trace(gram)) / ncols, 1.0)
    xty: np.ndarray = np.bincount(cols.ravel(), weights=(vals * y[:, None]).ravel(), minlength=ncols)
    if anchor is not None:
        pull = BASELINE_ANCHOR * max(float(np.mean(np.diag(gram)[:nb])), 1e-9)
        gram[np.arange(nb), np.arange(nb)] += pull
        xty[:nb] = xty[:nb] + pull * anchor
    coef = np.maximum(np.linalg.solve(gram, xty), 0.0)
    return coef, cols, vals, live


def _interests(
    times: np.ndarray,
    left: np.ndarray,
    games: Sequence[GameSpec],
    shape: np.ndarray,
    interests: Sequence[float],
    *,
    prior: float,
) -> list[float]:
    """Each game's interest, given the game `shape`: least squares on `left` (what the baseline leaves),
    each pulled toward its tier's mean over `interests` (the last round's) with weight `prior`; rescaled so
    that regional games average 1 (all games, when none is regional), since the shape carries the scale."""
    x = np.zeros((len(times), len(games)))
    minutes_grid = profile_minutes()
    for j, g in enumerate(games):
        minutes = (times - _epoch(g.tip_utc)) / 60.0
        inside = (minutes >= PROFILE_START_MIN) & (minutes < PROFILE_END_MIN)
        x[inside, j] = np.interp(minutes[inside], minutes_grid, shape)
    gram = x.T @ x
    national = np.array([g.is_national for g in games])
    current = np.asarray(interests, dtype=float)
    means = {flag: float(current[national == flag].mean()) for flag in (True, False) if (national == flag).any()}
    toward = np.array([means[flag] for flag in national])
    weight = prior * max(float(np.mean(np.diag(gram))), 1e-9)
    solved = np.linalg.solve(gram + weight * np.eye(len(games)), x.T @ left + weight * toward)
    solved = np.maximum(solved, INTEREST_FLOOR)
    unit = float(solved[~national].mean()) if (~national).any() else float(solved.mean())
    return [float(v) for v in (solved / unit if unit > 1e-9 else current)]


def _ratio_slope(window_ratio: np.ndarray, at: np.ndarray, lag_rows: int, resolution_s: float) -> np.ndarray:
    """Per row of `at`: the least-squares slope per second of the window ratios a minute apart over the
    last TREND_WINDOW_S, as `rules.forecast_ratio` reads it live (0 where a window is missing)."""
    offsets = np.arange(int(TREND_WINDOW_S // 60.0) + 1) * lag_rows
    back = at[:, None] - offsets[None, :]
    series = np.where(back >= 0, window_ratio[np.clip(back, 0, None)], np.nan)
    t_c = -offsets * resolution_s
    t_c = t_c - t_c.mean()
    complete = ~np.isnan(series).any(axis=1)
    slope = np.zeros(len(at))
    if complete.any():
        r = series[complete]
        slope[complete] = ((r - r.mean(axis=1, keepdims=True)) * t_c).sum(axis=1) / float((t_c**2).sum())
    return slope


def _calibrate(
    keys: np.ndarray, observed: np.ndarray, predicted: np.ndarray, phase: np.ndarray, resolution_s: float
) -> tuple[dict[int, tuple[float, ...]], dict[int, tuple[float, ...]]]:
    """Replay the forecast over the history as the engine corrects it (observed / predicted over the
    last minute or so) and keep, per horizon and phase of the game, a high quantile of the shortfall:
    once over the moments when that ratio was not rising, once over those when it was.

    `keys` are the sorted bucket numbers of the history, `observed`, `predicted` and `phase` per bucket."""
    first = int(keys[0])
    size = int(keys[-1]) - first + 1
    obs = np.full(size, np.nan)
    pred = np.full(size, np.nan)
    ph = np.full(size, SURPRISE_BUCKETS, dtype=np.int64)
    obs[keys - first], pred[keys - first], ph[keys - first] = observed, predicted, phase
    lag_rows = max(round(60.0 / resolution_s), 1)
    # obs_back[i] / pred_back[i]: sums over the lag_rows buckets ending lag_rows before bucket i.
    idx = np.arange(size)
    obs_back = np.zeros(size)
    pred_back = np.zeros(size)
    for j in range(lag_rows):
        back = idx - lag_rows - j
        ok = back >= 0
        o = np.full(size, np.nan)
        p = np.full(size, np.nan)
        o[ok], p[ok] = obs[back[ok]], pred[back[ok]]
        obs_back += o
        pred_back += p
    rows = keys - first
    with np.errstate(divide="ignore", invalid="ignore"):
        window_ratio = np.where(pred_back > 1e-9, obs_back / pred_back, np.nan)
    result: dict[int, tuple[float, ...]] = {}
    result_rising: dict[int, tuple[float, ...]] = {}
    for horizon_s in SURPRISE_HORIZONS_S:
        ahead = max(round(horizon_s / resolution_s), 1)
        target = rows + ahead - lag_rows
        ok = (target >= 0) & (target < size)
        k, tgt = rows[ok], target[ok]
        o_back, p_back, o_t, p_t = obs_back[k], pred_back[k], obs[tgt], pred[tgt]
        valid = ~np.isnan(o_back) & ~np.isnan(o_t) & (p_back > 1e-9) & (p_t > 1e-9)
        ratio = np.clip(o_back[valid] / p_back[valid], 0.6, 3.0)
        errors = o_t[valid] / (p_t[valid] * ratio) - 1.0
        buckets = ph[tgt[valid]]
        rising = _ratio_slope(window_ratio, k[valid], lag_rows, resolution_s) > RISING_SLOPE_PER_S
        overall = _quantile_rows(errors, buckets, None)
        flat = _quantile_rows(errors[~rising], buckets[~rising], overall)
        climbing = _quantile_rows(errors[rising], buckets[rising], overall)
        result[horizon_s] = tuple(flat[b] if b in SPLIT_BUCKETS else overall[b] for b in range(len(overall)))
        result_rising[horizon_s] = tuple(climbing[b] if b in SPLIT_BUCKETS else overall[b] for b in range(len(overall)))
    return result, result_rising


def _quantile_rows(errors: np.ndarray, buckets: np.ndarray, fallback: tuple[float, ...] | None) -> tuple[float, ...]:
    """Per phase bucket, the SURPRISE_QUANTILE of `errors` (clipped to [0, SURPRISE_CAP]); a bucket with too
    few samples takes `fallback`'s value (or, without one, the quantile over all buckets)."""
    overall = float(np.quantile(errors, SURPRISE_QUANTILE)) if errors.size else 0.0
    row = []
    for b in range(SURPRISE_BUCKETS + 1):
        e = errors[buckets == b]
        if len(e) >= SURPRISE_MIN_SAMPLES:
            q = float(np.quantile(e, SURPRISE_QUANTILE))
        else:
            q = fallback[b] if fallback is not None else overall
        row.append(min(max(q, 0.0), SURPRISE_CAP))
    return tuple(row)


@lru_cache(maxsize=16)
def _penalty_gram(baseline_smoothing: float, profile_smoothing: float) -> np.ndarray:
    """PᵀP of the smoothness rows: second differences of the baseline (circular) and of the game shape,
    which also fades to nothing at both ends. Read-only (cached)."""
    nb, npb = BASELINE_BINS, _profile_bins()
    ncols = nb + npb
    penalty: list[np.ndarray] = []
    for i in range(nb):
        row = np.zeros(ncols)
        row[(i - 1) % nb], row[i], row[(i + 1) % nb] = 1.0, -2.0, 1.0
        penalty.append(row * baseline_smoothing)
    for i in range(1, npb - 1):
        row = np.zeros(ncols)
        row[nb + i - 1], row[nb + i], row[nb + i + 1] = 1.0, -2.0, 1.0
        penalty.append(row * profile_smoothing)
    for i in (0, npb - 1):
        row = np.zeros(ncols)
        row[nb + i] = 1.0
        penalty.append(row * baseline_smoothing)
    pen = np.array(penalty).reshape(-1, ncols)
    gram: np.ndarray = pen.T @ pen
    gram.flags.writeable = False
    return gram


_STATE_FIELDS = frozenset(f.name for f in fields(Forecaster) if f.init)
_DEFAULT = Forecaster.default()


def default_forecaster() -> Forecaster:
    return _DEFAULT


def profile_value(tip_s: float, profile: tuple[float, ...], t: float) -> float:
    """What a game (tip epoch, profile) adds at epoch `t`: its profile interpolated between minute bins."""
    minutes = (t - tip_s) / 60.0
    if not profile or minutes < PROFILE_START_MIN or minutes >= PROFILE_END_MIN:
        return 0.0
    pos = (minutes - PROFILE_START_MIN) / PROFILE_BIN_MIN
    i = int(pos)
    frac = pos - i
    return profile[i] * (1.0 - frac) + profile[min(i + 1, len(profile) - 1)] * frac


def games_near(games: Sequence[GameSpec], start: datetime, end: datetime) -> list[GameSpec]:
    """Games whose profile window reaches into [start, end] (the only ones a forecast there can see)."""
    lo = start - _PROFILE_END
    hi = end - _PROFILE_START
    return [g for g in games if lo <= g.tip_utc <= hi]


_PROFILE_END = timedelta(minutes=PROFILE_END_MIN)
_PROFILE_START = timedelta(minutes=PROFILE_START_MIN)


def utc(t: datetime) -> datetime:
    return t if t.tzinfo is not None else t.replace(tzinfo=UTC)
