"""The M/M/c serving model of bench/SERVING_MODEL.md (shared contract).

A step with `ready` replicas of `concurrency` servers each, service rate
mu = 1000 / service_time_ms per server and arrival rate lam is a stationary
M/M/c queue. Attainment is the probability that a request's response time
(wait + service) is within the latency objective L.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class ServingModel:
    service_time_ms: float = 40.0
    concurrency: int = 4
    slo_latency_ms: float = 300.0
    slo_target: float = 0.999

    @property
    def mu(self) -> float:
        """Service rate of one server, requests per second."""
        return 1000.0 / self.service_time_ms

    @property
    def replica_capacity_rps(self) -> float:
        return self.concurrency * self.mu


def erlang_c(servers: int, offered_load: float) -> float:
    """Probability of waiting in M/M/c with c servers and offered load a = lam/mu (a < c).

    Computed through the Erlang B recursion, which stays stable for thousands of servers.
    """
    b = 1.0
    for k in range(1, servers + 1):
        b = offered_load * b / (k + offered_load * b)
    return servers * b / (servers - offered_load * (1.0 - b))


def prob_response_exceeds(servers: int, lam: float, mu: float, latency_s: float) -> float:
    """P(T > latency_s) for M/M/c; 1.0 when overloaded or with no servers."""
    if lam <= 0.0:
        return math.exp(-mu * latency_s) if servers > 0 else 1.0
    if servers <= 0 or lam >= servers * mu:
        return 1.0
    c_wait = erlang_c(servers, lam / mu)
    theta = servers * mu - lam
    exp_mu = math.exp(-mu * latency_s)
    if math.isclose(theta, mu, rel_tol=1e-12, abs_tol=1e-12):
        h = (1.0 + mu * latency_s) * exp_mu
    else:
        h = (theta * exp_mu - mu * math.exp(-theta * latency_s)) / (theta - mu)
    return (1.0 - c_wait) * exp_mu + c_wait * h


def attainment(ready: int, rps: float, model: ServingModel) -> float:
    """Step attainment A(t): share of requests finishing within the SLO latency."""
    if rps <= 0.0:
        return 1.0
    servers = ready * model.concurrency
    if servers <= 0 or rps >= servers * model.mu:
        return 0.0
    return 1.0 - prob_response_exceeds(servers, rps, model.mu, model.slo_latency_ms / 1000.0)


def latency_quantile_ms(ready: int, rps: float, model: ServingModel, q: float) -> float | None:
    """The q-quantile of response time in ms, or None when the step is overloaded."""
    servers = ready * model.concurrency
    if servers <= 0 or rps >= servers * model.mu:
        return None
    tail = 1.0 - q
    lo, hi = 0.0, 1.0
    while prob_response_exceeds(servers, rps, model.mu, hi) > tail:
        hi *= 2.0
        if hi > 1e6:
            return None
    for _ in range(60):
        mid = (lo + hi) / 2.0
        if prob_response_exceeds(servers, rps, model.mu, mid) > tail:
            lo = mid
        else:
            hi = mid
    return hi * 1000.0


def mean_response_s(ready: int, rps: float, model: ServingModel) -> float | None:
    servers = ready * model.concurrency
    mu = model.mu
    if servers <= 0 or rps >= servers * mu:
        return None
    if rps <= 0:
        return 1.0 / mu
    c_wait = erlang_c(servers, rps / mu)
    return c_wait / (servers * mu - rps) + 1.0 / mu


def oracle_replicas(rps: float, model: ServingModel, min_replicas: int = 1, max_search: int = 100_000) -> int:
    """The least n >= min_replicas whose attainment at rps meets the SLO target."""
    n = max(min_replicas, math.floor(rps / model.replica_capacity_rps))
    while attainment(n, rps, model) < model.slo_target:
        n += 1
        if n > max_search:
            raise ValueError(f"no replica count up to {max_search} meets the SLO at {rps} rps")
    return n
