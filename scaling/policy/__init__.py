"""The decision engine: pure functions over plain data (no Django, no boto3).

`decide(EngineInput) -> Decision` runs one tick (engine.py):

- rules.py — each rule recommends a count with its inputs: target tracking on utilization, requests
  and in-flight per replica (largest wins, tolerance band); serving-model sizing of the observed
  rate for the SLO (M/M/c, capacity.py); the SLO guard (p95 or p99 above the SLO's latency limit, or
  errors above its budget); Knative-style panic on a short-window surge; schedule-aware pre-warm for
  the forecast at now + provisioning delay + one tick (forecast.py: baseline + per-tier profiles
  around tip-off × live-game overlap, learned from history, corrected by tonight's observed /
  forecast ratio and its trend, with headroom calibrated on the history's errors by game phase);
- stability.py — scale-down stabilization, HPA-style Pods/Percent rate limits, scale-in cooldown;
- engine.py — overrides (pin > freeze > floors/ceilings > freeze_scale_in) and bounds bind last;
  missing or stale metrics hold (never scale in), with a fallback count after a while;
- explain.py — one reason code per decision and a one-sentence summary;
- driver.py — the engine's memory between ticks for replay and tests (the live controller
  rebuilds it from stored decisions in scaling.selectors.engine_input).
"""

from __future__ import annotations

from scaling.policy.engine import decide, hold_on_refused_policy
from scaling.policy.forecast import Forecaster
from scaling.policy.types import (
    Constraint,
    Decision,
    EngineInput,
    GameSpec,
    MetricPoint,
    Mode,
    OverrideSpec,
    PastRecommendation,
    PolicyParams,
    Reason,
    RuleResult,
    ServiceSpec,
)

__all__ = [
    "Constraint",
    "Decision",
    "EngineInput",
    "Forecaster",
    "GameSpec",
    "MetricPoint",
    "Mode",
    "OverrideSpec",
    "PastRecommendation",
    "PolicyParams",
    "Reason",
    "RuleResult",
    "ServiceSpec",
    "decide",
    "hold_on_refused_policy",
]
