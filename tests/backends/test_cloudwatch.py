"""CloudWatch queries and their conversion: extended statistics, units, lag and gaps."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from scaling.backends.cloudwatch import fetch_many, points_for, signals
from scaling.models import Service
from tests.backends.conftest import admin_client, ecs_service, publish_invocations, sagemaker_service

pytestmark = pytest.mark.django_db

T = datetime(2026, 1, 15, 23, 40, tzinfo=UTC)


def test_by_default_latencies_use_extended_statistics() -> None:
    service = Service(backend="sagemaker", backend_config={"endpoint_name": "win-prob"})
    stats = {(s.metric, s.stat) for s in signals(service)}
    for metric in ("ModelLatency", "OverheadLatency"):
        assert {(metric, "p50"), (metric, "p95"), (metric, "p99")} <= stats
    alb = Service(
        backend="ecs", backend_config={"cluster": "c", "service": "s", "load_balancer": "lb", "target_group": "tg"}
    )
    assert ("TargetResponseTime", "p99") in {(s.metric, s.stat) for s in signals(alb)}


def test_sagemaker_latency_microseconds_become_milliseconds() -> None:
    service = Service(backend="sagemaker", backend_config={"endpoint_name": "win-prob"})
    series = {"inv": {T: 6000.0}, "ml_p95_ms": {T: 48_000.0}, "ol_p95_ms": {T: 2_000.0}, "err": {T: 60.0}}

    (point,) = points_for(service, series, T - timedelta(minutes=10), T + timedelta(minutes=1))

    assert (point.rps, point.p95_ms, point.error_rate) == (100.0, 50.0, 0.01)
    assert point.ts == T + timedelta(seconds=60)  # stamped at the end of its minute


def test_sagemaker_reports_no_in_flight_total_it_does_not_have() -> None:
    # ConcurrentRequestsPerModel is per container; the engine's in-flight target divides a fleet total.
    service = Service(backend="sagemaker", backend_config={"endpoint_name": "win-prob"})
    assert "ConcurrentRequestsPerModel" not in {s.metric for s in signals(service)}
    (point,) = points_for(service, {"inv": {T: 6000.0}}, T - timedelta(minutes=10), T + timedelta(minutes=1))
    assert point.in_flight is None


def test_a_missing_datapoint_stays_missing() -> None:
    service = Service(backend="sagemaker", backend_config={"endpoint_name": "win-prob"})
    series = {"inv": {T: 6000.0}, "ml_p95_ms": {T + timedelta(minutes=1): 40_000.0}}

    points = points_for(service, series, T - timedelta(minutes=10), T + timedelta(minutes=2))

    assert [p.rps for p in points] == [100.0, None]


def test_the_minute_still_being_published_is_not_read(aws: str) -> None:
    now = datetime.now(UTC).replace(second=30, microsecond=0)
    publish_invocations(aws, now, per_minute=6000)
    # A half-published current minute that would look like a traffic drop.
    dims = [{"Name": "EndpointName", "Value": "win-prob"}, {"Name": "VariantName", "Value": "AllTraffic"}]
    admin_client("cloudwatch", aws).put_metric_data(
        Namespace="AWS/SageMaker",
        MetricData=[
            {"MetricName": "Invocations", "Dimensions": dims, "Timestamp": now - timedelta(seconds=20), "Value": 10.0}
        ],
    )

    window = fetch_many([sagemaker_service()], now)[0]

    assert [p.rps for p in window.points] == [100.0] * 5  # type: ignore[union-attr]
    assert max(p.ts for p in window.points) <= now - timedelta(seconds=60)  # type: ignore[union-attr]


def test_ecs_reads_cpu_from_ecs_and_demand_from_the_load_balancer(aws: str) -> None:
    service = ecs_service(load_balancer="app/serving/abc", target_group="targetgroup/odds/def")
    names = {(s.namespace, s.metric) for s in signals(service)}
    assert ("AWS/ECS", "CPUUtilization") in names
    assert ("AWS/ApplicationELB", "RequestCount") in names
