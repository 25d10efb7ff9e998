"""The M/M/c serving model of bench/SERVING_MODEL.md (shared contract).

A step with `ready` replicas of `concurrency` servers each, service rate
mu = 1000 / service_time_ms per server and arrival rate lam is a stationary
M/M/c queue. Attainment is the probability that a request's response time
(wait + service) is within the latency objective L.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt


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


# From this many servers on, Erlang B is summed over the terms that matter instead of recursed over every
# server: 10,000 replicas of concurrency 1,000 took a second a call, and sizing makes a dozen calls.
_WINDOWED_FROM_SERVERS = 20_000


def erlang_c(servers: int, offered_load: float) -> float:
    """Probability of waiting in M/M/c with c servers and offered load a = lam/mu (a < c).

    Computed through the Erlang B recursion, which stays stable for thousands of servers; from
    _WINDOWED_FROM_SERVERS on, from the few thousand terms of Erlang B's sum that are not negligible.
    """
    if servers >= _WINDOWED_FROM_SERVERS:
        b = _erlang_b_windowed(servers, offered_load)
        return servers * b / (servers - offered_load * (1.0 - b))
    return _erlang_c_recursion(servers, offered_load)


def _erlang_c_recursion(servers: int, offered_load: float) -> float:
    b = 1.0
    for k in range(1, servers + 1):
        b = offered_load * b / (k + offered_load * b)
    return servers * b / (servers - offered_load * (1.0 - b))


def _erlang_b_windowed(servers: int, offered_load: float) -> float:
    """Erlang B from 1/B = Σ_{j=0..c} T_j, T_j = Π_{i=j+1..c} i/a, in log space, over the terms near the largest.

    T_j is largest at j = min(c, ⌊a⌋) and falls off at least as e^{−d²/(2(a+d))} d steps away from it, so the
    terms more than 40·√a + 64 away are below e^{−50} of it (e^{−800} for large a): O(√a) work, not O(c).
    """
    c, a = servers, offered_load
    peak = min(c, math.floor(a))
    width = math.ceil(40.0 * math.sqrt(a)) + 64
    lo, hi = max(0, peak - width), min(c, peak + width)
    # log(T_j / T_hi) for j = hi, hi − 1, ..., lo: T_{j−1} = T_j · j/a.
    steps = np.log(np.arange(hi, lo, -1, dtype=np.float64)) - math.log(a)
    logs = np.concatenate(([0.0], np.cumsum(steps)))
    top = float(logs.max())
    log_sum = top + math.log(float(np.exp(logs - top).sum()))
    log_t_hi = math.lgamma(c + 1) - math.lgamma(hi + 1) - (c - hi) * math.log(a) if hi < c else 0.0
    return math.exp(-(log_t_hi + log_sum))


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
    """The least n >= min_replicas whose attainment at rps meets the SLO target.

    Raises ValueError at once when the target is above the model's ceiling
    1 − e^{−μL}, which no replica count reaches.
    """
    if rps > 0 and model.slo_target > model_ceiling(model):
        raise ValueError(
            f"SLO target {model.slo_target} is above the serving model's ceiling {model_ceiling(model):.6f} "
            f"(service time {model.service_time_ms} ms, latency objective {model.slo_latency_ms} ms)"
        )
    n = max(min_replicas, math.floor(rps / model.replica_capacity_rps))
    while attainment(n, rps, model) < model.slo_target:
        n += 1
        if n > max_search:
            raise ValueError(f"no replica count up to {max_search} meets the SLO at {rps} rps")
    return n


# --- Vectorized scoring -------------------------------------------------------
#
# The same formulas over whole traces at once. Each element follows the scalar
# code's operation order, so the two agree to the last few ulps (tests check it).

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


def model_ceiling(model: ServingModel) -> float:
    """1 − e^{−μL}: the best attainment any replica count can reach (the service time's own tail)."""
    return 1.0 - math.exp(-model.mu * model.slo_latency_ms / 1000.0)


def erlang_b_array(servers: IntArray, offered_load: FloatArray) -> FloatArray:
    """Erlang B for many (c, a) pairs through the stable recursion.

    Elements are sorted by c, largest first, so at recursion index k the ones
    still recursing are a prefix: the work is Σc, not n × max c.
    """
    servers = np.asarray(servers, dtype=np.int64)
    offered_load = np.asarray(offered_load, dtype=np.float64)
    result = np.ones(servers.shape, dtype=np.float64)
    if servers.size == 0:
        return result
    order = np.argsort(-servers, kind="stable")
    c_sorted = servers[order]
    a_sorted = offered_load[order]
    b = np.ones(servers.size, dtype=np.float64)
    max_c = int(c_sorted[0])
    if max_c > 0:
        # active[k-1] = how many elements have c >= k.
        active = np.searchsorted(-c_sorted, -np.arange(1, max_c + 1), side="right")
        for k in range(1, max_c + 1):
            m = int(active[k - 1])
            ab = a_sorted[:m] * b[:m]
            b[:m] = ab / (k + ab)
    result[order] = b
    return result


def _tail_array(servers: IntArray, lam: FloatArray, mu: float, latency_s: float) -> FloatArray:
    """P(T > L) for stable (c > 0, λ < cμ, λ > 0) elements."""
    b = erlang_b_array(servers, lam / mu)
    c = servers.astype(np.float64)
    a = lam / mu
    c_wait = c * b / (c - a * (1.0 - b))
    theta = c * mu - lam
    exp_mu = math.exp(-mu * latency_s)
    close = np.abs(theta - mu) <= np.maximum(1e-12 * np.maximum(np.abs(theta), mu), 1e-12)
    with np.errstate(divide="ignore", invalid="ignore"):
        h_general = (theta * exp_mu - mu * np.exp(-theta * latency_s)) / (theta - mu)
    h = np.where(close, (1.0 + mu * latency_s) * exp_mu, h_general)
    tail: FloatArray = (1.0 - c_wait) * exp_mu + c_wait * h
    return tail


def attainment_array(ready: IntArray, rps: FloatArray, model: ServingModel) -> FloatArray:
    """Step attainment A(t) for every step: 1 with no traffic, 0 when overloaded."""
    ready = np.asarray(ready, dtype=np.int64)
    lam = np.asarray(rps, dtype=np.float64)
    servers = ready * model.concurrency
    out = np.zeros(lam.shape, dtype=np.float64)
    out[lam <= 0.0] = 1.0
    stable = (lam > 0.0) & (servers > 0) & (lam < servers * model.mu)
    idx = np.nonzero(stable)[0]
    if idx.size:
        out[idx] = 1.0 - _tail_array(servers[idx], lam[idx], model.mu, model.slo_latency_ms / 1000.0)
    return out


def oracle_array(rps: FloatArray, model: ServingModel, min_replicas: int = 1, max_search: int = 100_000) -> IntArray:
    """n*(t) for every step: the least n >= min_replicas whose attainment meets the SLO target.

    One Erlang B recursion per element runs upwards in k; at each k that is a
    whole replica count at or above the element's starting guess the attainment
    is tested, and elements that pass drop out. Matches `oracle_replicas`.
    """
    lam = np.asarray(rps, dtype=np.float64)
    n = lam.size
    result = np.full(n, max(min_replicas, 0), dtype=np.int64)
    busy = np.nonzero(lam > 0.0)[0]
    if busy.size == 0:
        return result
    if model.slo_target >= model_ceiling(model):
        raise ValueError(
            f"slo_target {model.slo_target} is unreachable: the model's ceiling is {model_ceiling(model):.8f}"
        )
    mu, conc = model.mu, model.concurrency
    latency_s = model.slo_latency_ms / 1000.0
    exp_mu = math.exp(-mu * latency_s)
    start = np.maximum(min_replicas, np.floor(lam[busy] / model.replica_capacity_rps)).astype(np.int64)
    idx = busy
    lam_a = lam[busy]
    a = lam_a / mu
    b = np.ones(idx.size, dtype=np.float64)
    k = 0
    while idx.size:
        k += 1
        ab = a * b
        b = ab / (k + ab)
        if k % conc:
            continue
        replicas = k // conc
        if replicas > max_search:
            raise ValueError(f"no replica count up to {max_search} meets the SLO at {float(lam_a.max())} rps")
        test = (replicas >= start) & (lam_a < k * mu)
        if not test.any():
            continue
        c_wait = k * b[test] / (k - a[test] * (1.0 - b[test]))
        theta = k * mu - lam_a[test]
        close = np.abs(theta - mu) <= np.maximum(1e-12 * np.maximum(np.abs(theta), mu), 1e-12)
        with np.errstate(divide="ignore", invalid="ignore"):
            h_general = (theta * exp_mu - mu * np.exp(-theta * latency_s)) / (theta - mu)
        h = np.where(close, (1.0 + mu * latency_s) * exp_mu, h_general)
        passed_sub = 1.0 - ((1.0 - c_wait) * exp_mu + c_wait * h) >= model.slo_target
        if not passed_sub.any():
            continue
        passed = np.zeros(idx.size, dtype=bool)
        passed[np.nonzero(test)[0][passed_sub]] = True
        result[idx[passed]] = replicas
        keep = ~passed
        idx, lam_a, a, b, start = idx[keep], lam_a[keep], a[keep], b[keep], start[keep]
    return result


_LOG_INTEGERS: FloatArray = np.log(np.arange(1, 2, dtype=np.float64))
_FAST_FROM_SERVERS = 48


def erlang_c_fast(servers: int, offered_load: float) -> float:
    """Erlang C for one (c, a) in O(c) numpy work instead of O(c) Python steps.

    1/B_c = Σ_{j=0..c} c!/(j!·a^{c−j}); the sum is taken in log space
    (suffix sums of log(i/a)) so nothing overflows. Agrees with `erlang_c`
    to ~1e-12 relative; replay uses it for the observed latency each tick,
    while scoring keeps the recursion.
    """
    global _LOG_INTEGERS  # noqa: PLW0603 - a grow-only table of log(1..n)
    if servers < _FAST_FROM_SERVERS or servers >= _WINDOWED_FROM_SERVERS:
        return erlang_c(servers, offered_load)
    if _LOG_INTEGERS.size < servers:
        _LOG_INTEGERS = np.log(np.arange(1, 2 * servers + 1, dtype=np.float64))
    steps = _LOG_INTEGERS[:servers] - math.log(offered_load)  # log(i/a), i = 1..c
    suffix = np.cumsum(steps[::-1])  # log Π_{i=j+1..c} (i/a) for j = c−1 .. 0
    top = max(float(suffix.max()), 0.0)
    log_inverse_b = top + math.log(math.exp(-top) + float(np.exp(suffix - top).sum()))
    b = math.exp(-log_inverse_b)
    return servers * b / (servers - offered_load * (1.0 - b))


def response_stats(
    ready: int, rps: float, model: ServingModel, quantiles: tuple[float, ...] = (0.5, 0.95, 0.99)
) -> tuple[float, tuple[float, ...]] | None:
    """Mean response time (s) and quantiles of T (ms), or None when the step is overloaded.

    P(T > x) = a1·e^{−μx} + a2·e^{−θx} is a sum of two exponentials, so each
    quantile is found by Newton's method kept inside a bisection bracket: a few
    iterations instead of sixty bisections (replay asks for three per tick), and
    Erlang C is computed once for the mean and all quantiles.
    """
    servers = ready * model.concurrency
    mu = model.mu
    if servers <= 0 or rps >= servers * mu:
        return None
    if rps <= 0.0:
        return 1.0 / mu, tuple(-math.log(1.0 - q) / mu * 1000.0 for q in quantiles)
    c_wait = erlang_c_fast(servers, rps / mu)
    theta = servers * mu - rps
    mean_s = c_wait / theta + 1.0 / mu
    same = math.isclose(theta, mu, rel_tol=1e-12, abs_tol=1e-12)
    a1 = 0.0 if same else (1.0 - c_wait) + c_wait * theta / (theta - mu)
    a2 = 0.0 if same else -c_wait * mu / (theta - mu)

    def tail_and_density(x: float) -> tuple[float, float]:
        e_mu = math.exp(-mu * x)
        if same:
            return (
                (1.0 - c_wait) * e_mu + c_wait * (1.0 + mu * x) * e_mu,
                (1.0 - c_wait) * mu * e_mu + c_wait * mu * mu * x * e_mu,
            )
        e_th = math.exp(-theta * x)
        return a1 * e_mu + a2 * e_th, a1 * mu * e_mu + a2 * theta * e_th

    out: list[float] = []
    for q in quantiles:
        p = 1.0 - q
        lo, hi = 0.0, max(1.0 / mu, 1.0 / theta)
        while tail_and_density(hi)[0] > p:
            lo, hi = hi, hi * 2.0
        x = (lo + hi) / 2.0
        for _ in range(100):
            tail, density = tail_and_density(x)
            if abs(tail - p) <= 1e-10 * p or hi - lo <= 1e-12:
                break
            if tail > p:
                lo = x
            else:
                hi = x
            nxt = x + (tail - p) / density if density > 0.0 else (lo + hi) / 2.0
            x = nxt if lo < nxt < hi else (lo + hi) / 2.0
        out.append(x * 1000.0)
    return mean_s, tuple(out)
