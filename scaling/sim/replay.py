"""Replay a trace against a policy under the serving model of SERVING_MODEL.md.

The loop walks the trace step by step. Every `tick_s` the policy sees what a
metric source would report then (window, lag and seeded Poisson noise; never
the future) and returns a desired count; replicas start and become ready
`provisioning_delay_s` later, or stop at once (pending newest first, then
ready). Scoring happens afterwards, vectorized, in `scaling.sim.score`.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

import numpy as np
import numpy.typing as npt

from scaling.policy.capacity import serving_model
from scaling.policy.types import GameSpec, MetricPoint, ServiceSpec
from scaling.sim.serving import ServingModel, attainment_array, oracle_array, response_stats
from scaling.sim.trace import Trace

# How far back the policy's list of recent observations reaches.
RECENT_METRICS_S = 600.0
PROGRESS_EVERY_STEPS = 2000
_EPS = 1e-9


@dataclass(frozen=True)
class ReplayContext:
    """What a policy is told before the run.

    `oracle_counts` is the future (n*(t) for every step): only the look-ahead
    baselines (oracle, static-peak) may read it; causal policies must not.
    """

    service: ServiceSpec
    start: datetime
    step_s: int
    steps: int
    games: tuple[GameSpec, ...] = ()
    history: tuple[tuple[datetime, float], ...] = ()
    oracle_counts: npt.NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, dtype=np.int64))


@dataclass(frozen=True)
class Observation:
    """What the policy sees at one tick."""

    now: datetime
    elapsed_s: float  # since the trace's first step
    metric: MetricPoint | None  # the newest observable window, None before any data
    metrics: tuple[MetricPoint, ...]  # recent observations, oldest first (including `metric`)
    provisioned: int
    ready: int


class ReplayPolicy(Protocol):
    name: str

    def start(self, ctx: ReplayContext) -> None: ...

    def decide(self, obs: Observation) -> int: ...


@dataclass(frozen=True)
class ReplayRun:
    trace: Trace
    service: ServiceSpec
    policy: str
    seed: int
    initial_replicas: int
    desired: npt.NDArray[np.int64]  # per step: the count in force (last tick's decision)
    provisioned: npt.NDArray[np.int64]
    ready: npt.NDArray[np.int64]
    attainment: npt.NDArray[np.float64]
    oracle: npt.NDArray[np.int64]
    tick_desired: npt.NDArray[np.int64]  # per tick
    ticks: int = 0
    decide_seconds: float = 0.0


def _clamp(n: int, spec: ServiceSpec) -> int:
    return min(max(int(n), spec.min_replicas), spec.max_replicas)


class _Observer:
    """Observed metrics: realised arrivals over [now − lag − window, now − lag), and the
    latency the current ready count gives at that rate."""

    def __init__(self, trace: Trace, spec: ServiceSpec, model: ServingModel, arrivals: npt.NDArray[np.int64]):
        self.start = trace.start
        self.step = float(trace.step_s)
        self.steps = trace.steps
        self.spec = spec
        self.model = model
        cum = np.zeros(trace.steps + 1, dtype=np.int64)
        np.cumsum(arrivals, out=cum[1:])
        self.cum_arrivals: list[int] = cum.tolist()
        # Filled by the loop as steps complete: realised arrivals in overloaded steps.
        self.cum_overloaded: list[int] = [0] * (trace.steps + 1)
        self._cache: dict[tuple[int, int, int], tuple[float, tuple[float, ...]] | None] = {}

    def window(self, now_s: float) -> tuple[int, int]:
        end = now_s - self.spec.metrics_lag_s
        begin = end - self.spec.metrics_window_s
        lo = max(0, math.ceil(begin / self.step - _EPS))
        hi = min(self.steps, math.floor(end / self.step + _EPS))
        return lo, hi

    def observe(self, now_s: float, ready: int) -> MetricPoint | None:
        lo, hi = self.window(now_s)
        if hi <= lo:
            return None
        count = self.cum_arrivals[hi] - self.cum_arrivals[lo]
        rate = count / ((hi - lo) * self.step)
        ts = self.start + timedelta(seconds=now_s - self.spec.metrics_lag_s)
        capacity = ready * self.model.replica_capacity_rps
        utilization = rate / capacity if capacity > 0 else None
        key = (ready, count, hi - lo)
        if key not in self._cache:
            self._cache[key] = response_stats(ready, rate, self.model)
        stats = self._cache[key]
        if stats is None:
            # Overloaded: no steady state; the window counts as errors, latency as at least L.
            worst = 2.0 * self.model.slo_latency_ms
            return MetricPoint(
                ts=ts,
                rps=rate,
                p50_ms=worst,
                p95_ms=worst,
                p99_ms=worst,
                utilization=utilization,
                in_flight=None,
                error_rate=1.0 if count > 0 else 0.0,
            )
        mean_s, (p50, p95, p99) = stats
        overloaded = self.cum_overloaded[hi] - self.cum_overloaded[lo]
        return MetricPoint(
            ts=ts,
            rps=rate,
            p50_ms=p50,
            p95_ms=p95,
            p99_ms=p99,
            utilization=utilization,
            in_flight=rate * mean_s,
            error_rate=overloaded / count if count > 0 else 0.0,
        )


def replay(
    trace: Trace,
    service: ServiceSpec,
    policy: ReplayPolicy,
    *,
    seed: int = 0,
    games: Sequence[GameSpec] = (),
    history: Trace | None = None,
    progress: Callable[[float], None] | None = None,
) -> ReplayRun:
    """Run `policy` over `trace`; return the per-step fleet and attainment.

    1. Draw the realised arrivals (Poisson(rps·Δ) per step, seeded) and n*(t).
    2. Start warm: max n*(t) over the first tick + provisioning delay, all ready.
    3. For each step: run every tick due by the step's start (observe, decide,
       start or stop replicas), promote replicas whose delay has passed, record.
    4. Score the steps' attainment at the true rate, vectorized.

    `progress`, when given, is called with the fraction done every few thousand steps.
    """
    model = serving_model(service)
    n, dt = trace.steps, trace.step_s
    rng = np.random.default_rng(seed)
    arrivals = rng.poisson(trace.rps * dt).astype(np.int64)
    oracle = oracle_array(trace.rps, model, service.min_replicas)
    ctx = ReplayContext(
        service=service,
        start=trace.start,
        step_s=dt,
        steps=n,
        games=tuple(games),
        history=history.series() if history is not None else (),
        oracle_counts=oracle,
    )
    policy.start(ctx)
    observer = _Observer(trace, service, model, arrivals)

    # A warm start: the fleet covers n*(t) until the first request could land.
    first = max(1, math.ceil((service.provisioning_delay_s + service.tick_s) / dt))
    initial = _clamp(int(oracle[:first].max()), service)
    ready_count = initial
    pending: deque[float] = deque()  # ready-at times, oldest request first
    desired_now = initial
    desired = np.empty(n, dtype=np.int64)
    provisioned_out = np.empty(n, dtype=np.int64)
    ready_out = np.empty(n, dtype=np.int64)
    tick_desired: list[int] = []
    recent: deque[MetricPoint] = deque()
    rates: list[float] = trace.rps.tolist()
    arrivals_list: list[int] = arrivals.tolist()
    cum_over = observer.cum_overloaded
    capacity_per_replica = model.replica_capacity_rps
    tick_s, delay = service.tick_s, service.provisioning_delay_s
    next_tick, tick_index = 0.0, 0
    decide_seconds = 0.0

    for i in range(n):
        if progress is not None and i % PROGRESS_EVERY_STEPS == 0:
            progress(i / n)
        t = float(i * dt)
        while next_tick <= t + _EPS:
            while pending and pending[0] <= next_tick + _EPS:
                pending.popleft()
                ready_count += 1
            metric = observer.observe(next_tick, ready_count)
            if metric is not None:
                recent.append(metric)
            while recent and (next_tick - (recent[0].ts - trace.start).total_seconds()) > RECENT_METRICS_S:
                recent.popleft()
            obs = Observation(
                now=trace.start + timedelta(seconds=next_tick),
                elapsed_s=next_tick,
                metric=metric,
                metrics=tuple(recent),
                provisioned=ready_count + len(pending),
                ready=ready_count,
            )
            began = time.perf_counter()
            wanted = _clamp(policy.decide(obs), service)
            decide_seconds += time.perf_counter() - began
            provisioned = ready_count + len(pending)
            if wanted > provisioned:
                pending.extend([next_tick + delay] * (wanted - provisioned))
            elif wanted < provisioned:
                to_stop = provisioned - wanted
                while to_stop and pending:
                    pending.pop()
                    to_stop -= 1
                ready_count -= to_stop
            desired_now = wanted
            tick_desired.append(wanted)
            tick_index += 1
            next_tick = tick_index * tick_s
        while pending and pending[0] <= t + _EPS:
            pending.popleft()
            ready_count += 1
        desired[i] = desired_now
        provisioned_out[i] = ready_count + len(pending)
        ready_out[i] = ready_count
        lam = rates[i]
        overloaded = lam > 0.0 and lam >= ready_count * capacity_per_replica
        cum_over[i + 1] = cum_over[i] + (arrivals_list[i] if overloaded else 0)

    ticks = np.asarray(tick_desired, dtype=np.int64)
    return ReplayRun(
        trace=trace,
        service=service,
        policy=policy.name,
        seed=seed,
        initial_replicas=initial,
        desired=desired,
        provisioned=provisioned_out,
        ready=ready_out,
        attainment=attainment_array(ready_out, trace.rps, model),
        oracle=oracle,
        tick_desired=ticks,
        ticks=int(ticks.size),
        decide_seconds=decide_seconds,
    )
