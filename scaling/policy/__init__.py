"""The decision engine: pure functions over plain data (no Django, no boto3)."""

from __future__ import annotations

from scaling.policy.engine import decide
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
]
