"""Say a service's SLO as operators read it, and what the badge judges it by."""

from __future__ import annotations

from django import template

from scaling.models import Service

register = template.Library()


@register.filter
def slo_percentile(target: float) -> str:
    """0.999 → 'p99.9'."""
    return f"p{round(target * 100, 6):g}"


@register.filter
def slo_rule(service: Service) -> str:
    """What the fleet's SLO badge checks, as the engine's slo_breach does: p95 and p99 against the latency
    limit and the error rate against the target (the SLO is stated at a higher percentile than p95)."""
    limit = f"{service.slo_latency_ms:g} ms"
    errors = f"{round((1.0 - service.slo_target) * 100, 6):g}%"
    return (
        f"SLO {slo_percentile(service.slo_target)} ≤ {limit}. A breach when p95 or p99 is above {limit} "
        f"or more than {errors} of requests fail."
    )
