"""Game-night demand: a diurnal baseline plus a shape around each tip-off.

A first, deterministic curve used by the simulated fleet. Times are UTC;
the baseline peaks in the US evening. Quarter ends, halftime and the finish
surge; national-TV games weigh several times a regional game.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class TrafficShape:
    base_rps: float = 40.0
    per_game_rps: float = 60.0
    national_multiple: float = 3.0
    pre_tip_ramp_min: float = 60.0
    game_length_min: float = 150.0


@dataclass(frozen=True)
class ScheduledGame:
    tip_utc: datetime
    national: bool = False


# Minutes after tip-off of the in-game surges (quarter ends, halftime, finish)
# and how much they add to the in-game level.
_SURGES: tuple[tuple[float, float, float], ...] = (
    (34.0, 4.0, 0.35),  # end of Q1
    (72.0, 15.0, 0.6),  # halftime
    (110.0, 4.0, 0.35),  # end of Q3
    (140.0, 10.0, 0.8),  # the finish
)


def game_profile(minutes_from_tip: float, shape: TrafficShape) -> float:
    """Relative demand of one game at a time relative to tip-off (0 outside the game)."""
    m = minutes_from_tip
    if m < -shape.pre_tip_ramp_min or m > shape.game_length_min + 30.0:
        return 0.0
    if m < 0.0:
        # Ramp up before tip-off: slow at first, steep in the last minutes.
        x = (m + shape.pre_tip_ramp_min) / shape.pre_tip_ramp_min
        return 0.1 + 0.7 * x**2
    level = 1.0
    for centre, width, height in _SURGES:
        level += height * math.exp(-0.5 * ((m - centre) / width) ** 2)
    if m > shape.game_length_min:
        level *= max(0.0, 1.0 - (m - shape.game_length_min) / 30.0)
    return level


def diurnal(t: datetime) -> float:
    """Baseline share by hour: low overnight in the US, highest in the evening (ET ≈ UTC−5)."""
    hour_et = (t.hour + t.minute / 60.0 - 5.0) % 24.0
    return 0.3 + 0.7 * math.exp(-0.5 * ((hour_et - 20.0) / 3.5) ** 2)


def demand_rps(t: datetime, games: Sequence[ScheduledGame], shape: TrafficShape) -> float:
    total = shape.base_rps * diurnal(t)
    for game in games:
        minutes = (t - game.tip_utc).total_seconds() / 60.0
        weight = shape.national_multiple if game.national else 1.0
        total += shape.per_game_rps * weight * game_profile(minutes, shape)
    return total
