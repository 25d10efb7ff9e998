"""Demand for the live simulated fleet, from the same generator as the benchmark traces.

The live simulator asks for demand one instant at a time; the generator draws
a whole trace at once (per-game interest, close finishes, overtimes, noise).
So each "demo day" is generated once, seeded by the day, and cached. Days join
at 10:00 UTC (05:00 ET), the quietest hour, so no game night is cut in two.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from functools import lru_cache

from scaling.policy.types import GameSpec
from scaling.sim.gentrace import SHAPE_AFTER_MIN, SHAPE_BEFORE_MIN, GenParams, generate
from scaling.sim.trace import Trace

DAY_BOUNDARY = timedelta(hours=10)
STEP_S = 10


def day_start(t: datetime) -> datetime:
    """The 10:00 UTC that starts the demo day containing t."""
    shifted = t.astimezone(UTC) - DAY_BOUNDARY
    return datetime(shifted.year, shifted.month, shifted.day, tzinfo=UTC) + DAY_BOUNDARY


def games_of_day(start: datetime, games: Sequence[GameSpec]) -> tuple[GameSpec, ...]:
    """Games whose traffic shape reaches into the day starting at `start`."""
    lo = start - timedelta(minutes=SHAPE_AFTER_MIN)
    hi = start + timedelta(days=1, minutes=SHAPE_BEFORE_MIN)
    return tuple(sorted((g for g in games if lo <= g.tip_utc <= hi), key=lambda g: (g.tip_utc, g.game_id)))


@lru_cache(maxsize=64)
def _day_trace(start: datetime, games: tuple[GameSpec, ...], params: GenParams, seed: int) -> Trace:
    day_number = int(start.timestamp()) // 86400
    return generate(start, 1.0, step_s=STEP_S, games=games, params=params, seed=seed * 100_003 + day_number)


def demand_at(t: datetime, games: Sequence[GameSpec], *, params: GenParams, seed: int) -> float:
    """Mean request rate at t for a service whose traffic follows `params`."""
    start = day_start(t)
    trace = _day_trace(start, games_of_day(start, games), params, seed)
    index = min(int((t - start).total_seconds()) // STEP_S, trace.steps - 1)
    return float(trace.rps[index])
