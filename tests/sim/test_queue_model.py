"""The M/M/c formulas against hand-computed Erlang C values and a discrete-event
simulation of the same queue, and the vectorized scorer against the scalar one."""

from __future__ import annotations

import heapq
import math
import random

import numpy as np
import pytest

from scaling.sim.serving import (
    ServingModel,
    attainment,
    attainment_array,
    erlang_c,
    erlang_c_fast,
    latency_quantile_ms,
    mean_response_s,
    oracle_array,
    oracle_replicas,
    prob_response_exceeds,
    response_stats,
)

MODEL = ServingModel()


@pytest.mark.parametrize(
    ("servers", "offered", "expected"),
    [
        # C = (a^c/c! · c/(c−a)) / (Σ_{k<c} a^k/k! + a^c/c! · c/(c−a)), worked by hand:
        (1, 0.5, 0.5),  # M/M/1: C = ρ
        (2, 1.0, 1 / 3),  # (1/2·2) / (1 + 1 + 1) = 1/3
        (3, 2.0, 4 / 9),  # (8/6·3) / (1 + 2 + 2 + 4) = 4/9
        (4, 3.0, 13.5 / 26.5),  # (81/24·4) / (1 + 3 + 4.5 + 4.5 + 13.5)
    ],
)
def test_erlang_c_matches_hand_computed_values(servers: int, offered: float, expected: float) -> None:
    assert erlang_c(servers, offered) == pytest.approx(expected, rel=1e-12)


def _simulate_fcfs(servers: int, lam: float, mu: float, requests: int, seed: int) -> list[float]:
    """Response times of a FCFS M/M/c queue: each arrival takes the server free soonest."""
    rng = random.Random(seed)
    free_at = [0.0] * servers
    heapq.heapify(free_at)
    now = 0.0
    times: list[float] = []
    for _ in range(requests):
        now += rng.expovariate(lam)
        start = max(now, heapq.heappop(free_at))
        done = start + rng.expovariate(mu)
        heapq.heappush(free_at, done)
        times.append(done - now)
    return times[requests // 10 :]  # drop the warm-up tenth


@pytest.mark.parametrize(
    ("servers", "lam", "latency_s"),
    [(4, 80.0, 0.1), (4, 90.0, 0.3), (8, 180.0, 0.12), (2, 40.0, 0.2)],
)
def test_the_tail_formula_matches_a_discrete_event_simulation(servers: int, lam: float, latency_s: float) -> None:
    # 300,000 requests; tolerance 0.01 absolute on P(T > L) and 3 % on the mean,
    # several standard errors of these (autocorrelated) estimates at ρ <= 0.9.
    mu = 25.0
    times = _simulate_fcfs(servers, lam, mu, 300_000, seed=servers * 1000 + int(lam))
    simulated_tail = sum(t > latency_s for t in times) / len(times)
    assert simulated_tail == pytest.approx(prob_response_exceeds(servers, lam, mu, latency_s), abs=0.01)
    model = ServingModel(service_time_ms=1000 / mu, concurrency=servers)
    expected_mean = mean_response_s(1, lam, model)
    assert expected_mean is not None
    assert sum(times) / len(times) == pytest.approx(expected_mean, rel=0.03)


def test_the_vectorized_attainment_matches_the_scalar_one() -> None:
    rng = np.random.default_rng(7)
    rps = rng.uniform(0.0, 20_000.0, 3000)
    rps[::11] = 0.0
    ready = np.floor(rps / 100.0 * rng.uniform(0.8, 1.5, rps.size)).astype(np.int64)
    vector = attainment_array(ready, rps, MODEL)
    scalar = np.array([attainment(int(r), float(v), MODEL) for r, v in zip(ready, rps, strict=True)])
    assert np.max(np.abs(vector - scalar)) < 1e-12
    assert set(np.unique(vector[ready * 400 <= rps])) <= {0.0, 1.0}


def test_the_vectorized_oracle_matches_the_scalar_one() -> None:
    rng = np.random.default_rng(8)
    rps = np.concatenate([[0.0, 100.0, 1000.0, 5000.0, 20000.0], rng.uniform(0.0, 30_000.0, 500)])
    vector = oracle_array(rps, MODEL, min_replicas=1)
    assert vector[:5].tolist() == [1, 2, 11, 51, 201]
    assert vector.tolist() == [oracle_replicas(float(v), MODEL) for v in rps]


def test_the_oracle_count_is_the_least_that_meets_the_target() -> None:
    rps = np.linspace(1.0, 9000.0, 200)
    counts = oracle_array(rps, MODEL, min_replicas=1)
    assert np.all(attainment_array(counts, rps, MODEL) >= MODEL.slo_target)
    below = np.maximum(counts - 1, 0)
    ok = counts > 1
    assert np.all(attainment_array(below[ok], rps[ok], MODEL) < MODEL.slo_target)


def test_the_oracle_refuses_an_unreachable_target() -> None:
    with pytest.raises(ValueError, match="unreachable"):
        oracle_array(np.array([100.0]), ServingModel(slo_target=0.9995))


@pytest.mark.parametrize(("servers", "load"), [(48, 0.5), (400, 0.9), (2000, 0.99), (2000, 0.2)])
def test_the_fast_erlang_c_agrees_with_the_recursion(servers: int, load: float) -> None:
    assert erlang_c_fast(servers, servers * load) == pytest.approx(erlang_c(servers, servers * load), rel=1e-10)


@pytest.mark.parametrize(("ready", "rps"), [(1, 50.0), (2, 199.0), (10, 900.0), (120, 11_000.0)])
def test_observed_quantiles_match_bisection_of_the_tail(ready: int, rps: float) -> None:
    stats = response_stats(ready, rps, MODEL)
    assert stats is not None
    mean_s, quantiles = stats
    assert mean_s == pytest.approx(mean_response_s(ready, rps, MODEL), rel=1e-9)
    for q, value in zip((0.5, 0.95, 0.99), quantiles, strict=True):
        reference = latency_quantile_ms(ready, rps, MODEL, q)
        assert reference is not None
        assert value == pytest.approx(reference, rel=1e-6)
        servers = ready * MODEL.concurrency
        assert prob_response_exceeds(servers, rps, MODEL.mu, value / 1000) == pytest.approx(1 - q, rel=1e-6)


def test_an_overloaded_step_has_no_latency_quantiles() -> None:
    assert response_stats(3, 1200.0, MODEL) is None
    assert math.isclose(attainment(3, 1200.0, MODEL), 0.0)
