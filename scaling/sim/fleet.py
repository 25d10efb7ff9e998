"""A simulated fleet: replicas that take provisioning_delay_s to become ready,
serving demand from the traffic curve under the M/M/c model."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np

from scaling.policy.types import MetricPoint
from scaling.sim.serving import ServingModel, latency_quantile_ms, mean_response_s


@dataclass(frozen=True)
class FleetState:
    """Times at which each provisioned replica is (or becomes) ready, oldest first."""

    ready_at: tuple[datetime, ...]

    def provisioned(self) -> int:
        return len(self.ready_at)

    def ready(self, now: datetime) -> int:
        return sum(1 for t in self.ready_at if t <= now)

    def set_capacity(self, replicas: int, now: datetime, provisioning_delay_s: float) -> FleetState:
        """Start new replicas, or stop pending ones first (newest first), then ready ones."""
        current = list(self.ready_at)
        if replicas > len(current):
            ready_time = now + timedelta(seconds=provisioning_delay_s)
            current.extend([ready_time] * (replicas - len(current)))
            return FleetState(tuple(current))
        to_stop = len(current) - replicas
        pending = sorted((t for t in current if t > now), reverse=True)
        for t in pending[:to_stop]:
            current.remove(t)
        to_stop -= min(to_stop, len(pending))
        if to_stop:
            current = current[to_stop:]
        return FleetState(tuple(current))


def observe(
    state: FleetState,
    now: datetime,
    demand: Callable[[datetime], float],
    model: ServingModel,
    *,
    window_s: float = 60.0,
    step_s: float = 5.0,
    seed: int = 0,
) -> MetricPoint:
    """What a metric source would report at `now`, averaged over the last window.

    Arrivals are Poisson draws seeded by (seed, second), so every worker that
    observes the same instant sees the same numbers.
    """
    steps = max(int(window_s // step_s), 1)
    arrivals = 0
    for i in range(steps):
        t = now - timedelta(seconds=window_s - i * step_s)
        rng = np.random.default_rng([seed, int(t.timestamp())])
        arrivals += int(rng.poisson(demand(t) * step_s))
    rps = arrivals / (steps * step_s)
    ready = state.ready(now)
    capacity = ready * model.replica_capacity_rps
    overloaded = capacity <= 0 or rps >= capacity
    if overloaded and rps > 0:
        # No steady state: the window counts as errors and latency as at least the SLO.
        worst = model.slo_latency_ms * 2
        return MetricPoint(
            ts=now,
            rps=rps,
            p50_ms=worst,
            p95_ms=worst,
            p99_ms=worst,
            utilization=(rps / capacity) if capacity > 0 else None,
            in_flight=None,
            error_rate=1.0,
        )
    mean_t = mean_response_s(ready, rps, model)
    return MetricPoint(
        ts=now,
        rps=rps,
        p50_ms=latency_quantile_ms(ready, rps, model, 0.50),
        p95_ms=latency_quantile_ms(ready, rps, model, 0.95),
        p99_ms=latency_quantile_ms(ready, rps, model, 0.99),
        utilization=rps / capacity,
        in_flight=rps * mean_t if mean_t is not None else None,
        error_rate=0.0,
    )
