"""Builders for pure engine inputs (no database)."""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from scaling.policy import (
    EngineInput,
    GameSpec,
    MetricPoint,
    OverrideSpec,
    PastRecommendation,
    PolicyParams,
    ServiceSpec,
)
from scaling.policy.forecast import Forecaster

T0 = datetime(2026, 1, 15, 23, 30, tzinfo=UTC)  # 18:30 ET
SPEC = ServiceSpec(min_replicas=1, max_replicas=40, hard_max_replicas=60)
CAPACITY = 100.0  # rps per replica at 100 % (4 servers × 25/s)
# Only the rule under test: no pre-warm, no model sizing, unless a test asks for them.
TT_ONLY = PolicyParams(target_utilization=0.7, model_sizing=False, prewarm=False, slo_guard=False)


def point(rps: float | None, age_s: float = 5.0, **kw: Any) -> MetricPoint:
    return MetricPoint(ts=T0 - timedelta(seconds=age_s), rps=rps, **kw)


def recorded(*recommendations: int, desired: int | None = None) -> tuple[PastRecommendation, ...]:
    """Recommendations recorded one tick apart, oldest first, the newest a tick before T0: a stabilization
    window with no gap in its records."""
    tick = timedelta(seconds=SPEC.tick_s)
    n = len(recommendations)
    return tuple(PastRecommendation(T0 - (n - i) * tick, r, desired) for i, r in enumerate(recommendations))


def engine_input(
    rps: float | None = None,
    provisioned: int = 10,
    *,
    params: PolicyParams | None = None,
    metrics: tuple[MetricPoint, ...] | None = None,
    **kw: Any,
) -> EngineInput:
    if metrics is None:
        metrics = () if rps is None else (point(rps),)
    fields: dict[str, Any] = {
        "now": T0,
        "service": SPEC,
        "params": params or TT_ONLY,
        "provisioned": provisioned,
        "ready": provisioned,
        "metrics": metrics,
    }
    fields.update(kw)
    return EngineInput(**fields)


def override(
    kind: str, replicas: int | None = None, *, start_min: float = -1, end_min: float = 60, oid: int = 1
) -> OverrideSpec:
    return OverrideSpec(
        id=oid,
        kind=kind,
        starts_at=T0 + timedelta(minutes=start_min),
        ends_at=T0 + timedelta(minutes=end_min),
        replicas=replicas,
        reason="marquee game",
    )


def game(
    tip: datetime, away: str = "LAL (Lakers)", home: str = "BOS (Celtics)", tv: str = "ABC", gid: str = "g1"
) -> GameSpec:
    return GameSpec(game_id=gid, tip_utc=tip, away_team=away, home_team=home, national_tv=tv)


# A game's finish, for the overtime read: one learned profile and metrics shaped by it.
FINISH_TIP = datetime(2026, 1, 16, 1, 30, tzinfo=UTC)  # 20:30 ET
FINISH_SPEC = ServiceSpec(min_replicas=1, max_replicas=400, hard_max_replicas=400, provisioning_delay_s=180)


def finishing_forecaster() -> Forecaster:
    """One tier-shape: 1,000 rps in the game, a final-buzzer peak of 2,200 at minute 140, then a fade."""

    def shape(m: float) -> float:
        if m < 0:
            return 200.0
        if m < 140:
            return 1000.0
        return 1000.0 * math.exp(-(m - 140) / 12) + 1200.0 * math.exp(-(m - 140) / 3)

    profile = tuple(shape(-120.0 + i) for i in range(361))
    return Forecaster(baseline=(0.0,) * 48, profiles={"national": profile, "regional": profile}, learned=True)


def finish_input(
    forecaster: Forecaster,
    minutes_after_tip: float,
    overtimes: int,
    games: tuple[GameSpec, ...] = (game(FINISH_TIP),),
    factor: float = 1.0,
) -> EngineInput:
    """Metrics over the last five minutes as they would show if the first game had `overtimes` overtimes,
    times `factor` (tonight against the learned profile)."""
    now = FINISH_TIP + timedelta(minutes=minutes_after_tip)
    truth = forecaster.prepare(games, {games[0].game_id: overtimes} if overtimes else None)
    points = []
    for i, s in enumerate(range(300, -1, -15)):
        mid = (now - timedelta(seconds=s + 30)).timestamp()
        rate = sum(forecaster.predict_epoch(mid - 30 + 15 * (k + 0.5), truth) for k in range(4)) / 4
        points.append(replace(point(0.0), ts=now - timedelta(seconds=s), rps=factor * rate * (1.0 + 0.01 * (-1) ** i)))
    return EngineInput(
        now=now,
        service=FINISH_SPEC,
        params=PolicyParams(scale_up_percent=1000.0),
        provisioned=5,
        ready=5,
        metrics=tuple(points),
        games=games,
        forecaster=forecaster,
    )
