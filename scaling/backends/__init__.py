"""Metric sources and actuators behind small Protocols, one module per backend."""

from __future__ import annotations

from scaling.backends.base import (
    ActuationResult,
    Actuator,
    ActuatorError,
    BackendError,
    FleetStatus,
    MetricSource,
    MetricsUnavailable,
    MetricWindow,
    get_actuator,
    get_metric_source,
)

__all__ = [
    "ActuationResult",
    "Actuator",
    "ActuatorError",
    "BackendError",
    "FleetStatus",
    "MetricSource",
    "MetricWindow",
    "MetricsUnavailable",
    "get_actuator",
    "get_metric_source",
]
