"""Say where a service's metrics come from, as its page's header shows it: the decisions read them."""

from __future__ import annotations

from django import template

from scaling.backends import aws, cloudwatch
from scaling.backends.base import MetricsUnavailable, url_without_credentials
from scaling.models import Service

register = template.Library()


@register.filter
def metric_source(service: Service) -> str:
    """'Simulator'; 'CloudWatch AWS/SageMaker and /aws/sagemaker/Endpoints in us-east-1'; 'Prometheus at
    http://prometheus:9090'."""
    cfg = service.backend_config or {}
    label = service.get_metric_source_display()
    if service.metric_source == Service.MetricSourceKind.CLOUDWATCH:
        try:
            namespaces = list(dict.fromkeys(s.namespace for s in cloudwatch.signals(service)))
        except MetricsUnavailable:
            return f"{label} (needs a SageMaker or ECS backend)"
        region = aws.region_of(cfg) or "no region set"
        named = ", ".join(namespaces[:-1]) + " and " + namespaces[-1] if len(namespaces) > 1 else namespaces[0]
        return f"{label} {named} in {region}"
    if service.metric_source == Service.MetricSourceKind.PROMETHEUS:
        url = str(cfg.get("prometheus_url") or "").strip()
        return f"{label} at {url_without_credentials(url)}" if url else f"{label} (no URL set)"
    return label
