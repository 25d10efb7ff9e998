"""Builders for pure engine inputs (no database)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from scaling.policy import EngineInput, GameSpec, MetricPoint, OverrideSpec, PolicyParams, ServiceSpec

T0 = datetime(2026, 1, 15, 23, 30, tzinfo=UTC)  # 18:30 ET
SPEC = ServiceSpec(min_replicas=1, max_replicas=40, hard_max_replicas=60)
CAPACITY = 100.0  # rps per replica at 100 % (4 servers × 25/s)
# Only the rule under test: no pre-warm, no model sizing, unless a test asks for them.
TT_ONLY = PolicyParams(target_utilization=0.7, model_sizing=False, prewarm=False, slo_guard=False)


def point(rps: float | None, age_s: float = 5.0, **kw: Any) -> MetricPoint:
    return MetricPoint(ts=T0 - timedelta(seconds=age_s), rps=rps, **kw)


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
