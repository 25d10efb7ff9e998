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
from scaling.sim.serving import ServingModel, attainment

_GRID = math.log(1.001)
# No fleet is larger: a count past it (a rate read from a counter by mistake, 1e15) is capped here, so every
# count the engine recommends fits a stored decision's integer.
MAX_COUNT = 1_000_000


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


def _reachable_target(model: ServingModel) -> float:
    """The SLO target, or just under the model's ceiling 1 − e^(−μL) when the target is above it."""
    ceiling = 1.0 - math.exp(-model.mu * model.slo_latency_ms / 1000.0)
    return min(model.slo_target, ceiling - 1e-6)


@lru_cache(maxsize=65536)
def _replicas_on_grid(step: int, model: ServingModel, limit: int) -> int:
    """Least n with attainment ≥ target at the grid rate, searched by doubling then bisection (attainment
    grows with n); `limit` when even that many fall short."""
    goal = _reachable_target(model)
    rps = math.exp(step * _GRID)
    lo = math.floor(rps / model.replica_capacity_rps) + 1  # the least stable count
    if lo >= limit:
        return min(max(lo, limit), MAX_COUNT)
    if attainment(lo, rps, model) >= goal:
        return lo
    width = 1
    hi = lo + width
    while hi < limit and attainment(hi, rps, model) < goal:
        lo = hi
        width *= 2
        hi = lo + width
    if hi >= limit:
        hi = limit
        if attainment(hi, rps, model) < goal:
            return limit
    while hi - lo > 1:  # attainment(lo) < goal ≤ attainment(hi)
        mid = (lo + hi) // 2
        if attainment(mid, rps, model) >= goal:
            hi = mid
        else:
            lo = mid
    return hi


def replicas_for(rps: float, spec: ServiceSpec, target: float | None = None) -> int:
    """The least replica count whose attainment at `rps` meets `target` (default: the service's SLO target;
    0 replicas for no traffic).

    Counts above the service's hard limit are never needed exactly: the search stops one above it.
    """
    if rps <= 0.0:
        return 0
    for last in _last:
        if last[0] is spec and last[1] == target:
            limit, model, known = last[2], last[3], last[4]
            break
    else:
        limit = max(spec.hard_max_replicas, spec.max_replicas) + 1
        model = _model_for(spec, target)
        known = _known.setdefault((model, limit), {})
        _last.insert(0, (spec, target, limit, model, known))
        del _last[_LAST_SIZE:]
    if not math.isfinite(rps):
        return limit
    step = math.ceil(math.log(rps) / _GRID - 1e-9)
    replicas = known.get(step)
    if replicas is None:
        replicas = known[step] = _replicas_on_grid(step, model, limit)
    return replicas


# The sizings of the last few (spec, target) asked for, found by identity (hashing a ServiceSpec costs
# more than the lookup): (spec, target, limit, model, {grid step: replicas}), newest first.
_known: dict[tuple[ServingModel, int], dict[int, int]] = {}
_LAST_SIZE = 4
_last: list[tuple[ServiceSpec | None, float | None, int, ServingModel | None, dict[int, int]]] = []


@lru_cache(maxsize=256)
def _model_for(spec: ServiceSpec, target: float | None) -> ServingModel:
    model = serving_model(spec)
    if target is not None and target > 0:
        model = ServingModel(spec.service_time_ms, spec.concurrency, spec.slo_latency_ms, max(target, spec.slo_target))
    return model
