"""Sizing stays quick for every service the service form accepts (SERVICE_RANGES): a tick that recursed over
the servers of 10,000 replicas of concurrency 1,000 one by one, per search step, ran into the task's time limit."""

from __future__ import annotations

import pytest

from scaling.policy.capacity import replicas_for
from scaling.policy.types import SERVICE_RANGES, ServiceSpec
from scaling.sim.serving import ServingModel, attainment, erlang_c


def _top(name: str) -> float:
    high = SERVICE_RANGES[name].high
    assert high is not None
    return high


@pytest.mark.parametrize("service_time_ms", [0.1, 40.0, _top("service_time_ms")])
def test_sizing_returns_for_the_largest_fleet_the_service_form_allows(service_time_ms: float) -> None:
    cap = int(_top("hard_max_replicas"))
    conc = int(_top("concurrency"))
    spec = ServiceSpec(
        min_replicas=0,
        max_replicas=cap,
        hard_max_replicas=cap,
        concurrency=conc,
        service_time_ms=service_time_ms,
        slo_latency_ms=service_time_ms * 8,
        slo_target=0.999,
    )
    per_replica = conc * 1000.0 / service_time_ms
    for share in (0.5, 0.9, 0.999, 2.0):
        n = replicas_for(per_replica * cap * share, spec)
        assert n >= share * cap
        if share <= 0.9:
            model = ServingModel(service_time_ms, conc, service_time_ms * 8, 0.999)
            assert attainment(n, per_replica * cap * share, model) >= 0.999


@pytest.mark.parametrize(("servers", "load"), [(20_000, 0.5), (50_000, 0.999), (120_000, 0.9), (200_000, 0.01)])
def test_erlang_c_past_the_window_threshold_agrees_with_the_recursion(servers: int, load: float) -> None:
    from scaling.sim import serving

    recursion = serving._erlang_c_recursion(servers, servers * load)

    assert erlang_c(servers, servers * load) == pytest.approx(recursion, rel=1e-9, abs=1e-300)


def test_erlang_c_for_ten_million_servers_is_a_probability() -> None:
    assert 0.0 < erlang_c(10_000_000, 9_999_000.0) < 1.0
    assert erlang_c(10_000_000, 1000.0) == 0.0
