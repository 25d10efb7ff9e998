"""How many replicas a request rate needs: the serving model of SERVING_MODEL.md, sized for the SLO.

The queueing formula lives once, in `scaling.sim.serving` (pure); the engine sizes
with it so that what the benchmark scores and what the engine provisions for agree.
Sizing is cached on a 0.1 % grid of rates, always rounded up, so a decision costs a
dictionary lookup once the cache is warm and never provisions for less than asked.
"""

from __future__ import annotations

import math
from functools import lru_cache

from scaling.policy.types import ServiceSpec
from scaling.sim.serving import ServingModel, oracle_replicas

_GRID = math.log(1.001)


def serving_model(spec: ServiceSpec) -> ServingModel:
    return ServingModel(
        service_time_ms=spec.service_time_ms,
        concurrency=spec.concurrency,
        slo_latency_ms=spec.slo_latency_ms,
        slo_target=spec.slo_target,
    )


def replica_capacity_rps(spec: ServiceSpec) -> float:
    """Requests per second one replica serves at 100 % utilization."""
    return spec.concurrency * 1000.0 / spec.service_time_ms


@lru_cache(maxsize=65536)
def _replicas_on_grid(step: int, service_time_ms: float, concurrency: int, slo_ms: float, target: float) -> int:
    model = ServingModel(service_time_ms, concurrency, slo_ms, target)
    rps = math.exp(step * _GRID)
    try:
        return oracle_replicas(rps, model, min_replicas=0)
    except ValueError:  # the target is above the model's ceiling: size for the ceiling instead
        capped = ServingModel(service_time_ms, concurrency, slo_ms, _reachable_target(model))
        return oracle_replicas(rps, capped, min_replicas=0)


def _reachable_target(model: ServingModel) -> float:
    ceiling = 1.0 - math.exp(-model.mu * model.slo_latency_ms / 1000.0)
    return min(model.slo_target, ceiling - 1e-5)


def replicas_for(rps: float, spec: ServiceSpec) -> int:
    """The least replica count whose attainment at `rps` meets the service's SLO target (0 for no traffic)."""
    if rps <= 0.0 or not math.isfinite(rps):
        return 0 if rps <= 0.0 else spec.hard_max_replicas
    step = math.ceil(math.log(rps) / _GRID - 1e-9)
    return _replicas_on_grid(step, spec.service_time_ms, spec.concurrency, spec.slo_latency_ms, spec.slo_target)
