"""Plain data in and out of the decision engine. No Django, no boto3."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from datetime import datetime
from enum import StrEnum
from typing import Any


class Mode(StrEnum):
    ACTIVE = "active"
    DRY_RUN = "dry_run"
    PAUSED = "paused"


class Reason(StrEnum):
    """Why the decision came out as it did (one per decision)."""

    SCALED_OUT = "SCALED_OUT"
    SCALED_IN = "SCALED_IN"
    WITHIN_TOLERANCE = "WITHIN_TOLERANCE"
    STABILIZING_SCALE_IN = "STABILIZING_SCALE_IN"
    AT_MAX = "AT_MAX"
    AT_MIN = "AT_MIN"
    RATE_LIMITED = "RATE_LIMITED"
    COOLDOWN = "COOLDOWN"
    OVERRIDE_ACTIVE = "OVERRIDE_ACTIVE"
    METRICS_STALE = "METRICS_STALE"
    METRICS_UNAVAILABLE = "METRICS_UNAVAILABLE"
    PAUSED = "PAUSED"
    DRY_RUN = "DRY_RUN"
    NO_CHANGE = "NO_CHANGE"


@dataclass(frozen=True)
class ServiceSpec:
    """A service's bounds and serving model (SERVING_MODEL.md keys)."""

    min_replicas: int = 1
    max_replicas: int = 500
    hard_max_replicas: int = 500
    service_time_ms: float = 40.0
    concurrency: int = 4
    provisioning_delay_s: float = 180.0
    slo_latency_ms: float = 300.0
    slo_target: float = 0.999
    tick_s: float = 15.0
    metrics_window_s: float = 60.0
    metrics_lag_s: float = 0.0
    price_per_replica_hour: float = 1.0


@dataclass(frozen=True)
class PolicyParams:
    """Tunable engine parameters, stored per service as a dict."""

    target_utilization: float = 0.7
    tolerance: float = 0.1
    scale_down_stabilization_s: float = 300.0
    scale_up_stabilization_s: float = 0.0
    # HPA-style rate limits: per period, the larger of Pods and Percent applies.
    scale_up_pods: int = 4
    scale_up_percent: float = 100.0
    scale_up_period_s: float = 15.0
    scale_down_pods: int = 0
    scale_down_percent: float = 100.0
    scale_down_period_s: float = 15.0
    scale_in_cooldown_s: float = 0.0
    # Replicas to hold at when metrics stay missing for this long (0 = keep current).
    fallback_replicas: int = 0
    fallback_after_s: float = 300.0

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> PolicyParams:
        known = {f.name for f in fields(cls)}
        unknown = set(data or {}) - known
        if unknown:
            raise ValueError(f"unknown policy parameter(s): {', '.join(sorted(unknown))}")
        return cls(**(data or {}))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class MetricPoint:
    """One observed metric sample. None means the source had no datapoint."""

    ts: datetime
    rps: float | None = None
    p50_ms: float | None = None
    p95_ms: float | None = None
    p99_ms: float | None = None
    utilization: float | None = None
    in_flight: float | None = None
    error_rate: float | None = None


@dataclass(frozen=True)
class OverrideSpec:
    id: int | str
    kind: str  # pin | floor | ceiling | freeze_scale_in | freeze
    starts_at: datetime
    ends_at: datetime
    replicas: int | None = None
    reason: str = ""

    def active_at(self, now: datetime) -> bool:
        return self.starts_at <= now < self.ends_at


@dataclass(frozen=True)
class GameSpec:
    game_id: str
    tip_utc: datetime
    away_team: str
    home_team: str
    national_tv: str = ""

    @property
    def is_national(self) -> bool:
        tv = self.national_tv.strip()
        return bool(tv) and tv.upper() != "NBA TV"


@dataclass(frozen=True)
class PastRecommendation:
    ts: datetime
    replicas: int


@dataclass(frozen=True)
class EngineInput:
    now: datetime
    service: ServiceSpec
    params: PolicyParams
    provisioned: int
    ready: int
    metrics: tuple[MetricPoint, ...] = ()
    mode: Mode = Mode.ACTIVE
    overrides: tuple[OverrideSpec, ...] = ()
    games: tuple[GameSpec, ...] = ()
    # The engine's own unconstrained recommendations over the recent past,
    # oldest first (for stabilization windows).
    recent: tuple[PastRecommendation, ...] = ()
    last_scale_out_at: datetime | None = None
    last_scale_in_at: datetime | None = None
    # When metrics were last seen fresh (for the fallback count).
    metrics_missing_since: datetime | None = None


@dataclass(frozen=True)
class RuleResult:
    rule: str
    replicas: int | None
    inputs: dict[str, Any] = field(default_factory=dict)
    note: str = ""


@dataclass(frozen=True)
class Constraint:
    name: str
    before: int
    after: int
    detail: str = ""


@dataclass(frozen=True)
class Decision:
    desired: int
    current: int
    recommendation: int | None
    reason: Reason
    summary: str
    rules: tuple[RuleResult, ...] = ()
    constraints: tuple[Constraint, ...] = ()
    forecast: dict[str, Any] | None = None

    @property
    def changed(self) -> bool:
        return self.desired != self.current

    def to_dict(self) -> dict[str, Any]:
        return {
            "desired": self.desired,
            "current": self.current,
            "recommendation": self.recommendation,
            "reason": str(self.reason),
            "summary": self.summary,
            "rules": [asdict(r) for r in self.rules],
            "constraints": [asdict(c) for c in self.constraints],
            "forecast": self.forecast,
        }
