"""Say a service's SLO, and what the engine's slo_guard (and the fleet's badge, which judges as it does)
checks it by, in the same words on every page."""

from __future__ import annotations

from django import template

from scaling.models import Service
from scaling.policy.rules import GUARD_LATENCIES

register = template.Library()

# The latency percentiles scaling.policy.rules.slo_breach holds to the SLO's latency limit ("p95", "p99"). The
# SLO itself is stated over a share of requests (slo_target): p99.9 for 0.999, which no metric source reports;
# the guard watches these at the same limit, and the error rate.
GUARD_PERCENTILES = tuple(name.removesuffix("_ms") for name in GUARD_LATENCIES)


def _number(value: float) -> str:
    return f"{round(value, 6):g}"


@register.filter
def slo_objective(service: Service) -> str:
    """'SLO: 99.9 % of requests within 300 ms'."""
    return f"SLO: {_number(service.slo_target * 100)} % of requests within {_number(service.slo_latency_ms)} ms"


def guard_latency_limits(service: Service) -> str:
    """'p95 ≤ 300 ms, p99 ≤ 300 ms': the latency the guard holds to the SLO's limit."""
    return ", ".join(f"{p} ≤ {_number(service.slo_latency_ms)} ms" for p in GUARD_PERCENTILES)


@register.filter
def slo_guard_limits(service: Service) -> str:
    """'guard: p95 ≤ 300 ms, p99 ≤ 300 ms, errors ≤ 0.1 %': what slo_guard scales out on, and the badge shows."""
    return f"guard: {guard_latency_limits(service)}, errors ≤ {_number((1.0 - service.slo_target) * 100)} %"


@register.filter
def slo_statement(service: Service) -> str:
    """The SLO and the guard's limits in one line: how every page states a service's SLO."""
    return f"{slo_objective(service)}; {slo_guard_limits(service)}"
