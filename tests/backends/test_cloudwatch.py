"""CloudWatch queries and their conversion: extended statistics, units, lag and gaps."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.stub import Stubber

from scaling.backends import MetricsUnavailable, MetricWindow
from scaling.backends import aws as aws_backend
from scaling.backends.cloudwatch import fetch_many, points_for, signals
from scaling.models import Service
from scaling.service_config import ConfigError, backend_config_from
from tests.backends.conftest import (
    RecordingProxy,
    admin_client,
    ecs_service,
    publish_invocations,
    sagemaker_service,
)

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


@pytest.mark.parametrize(
    "stat",
    [
        *("Average", "SampleCount", "Maximum", "IQM", "p95", "p99.9", "p100", "tm90", "wm99.5", "tc10", "ts90"),
        *("TM(10%:90%)", "TM(:95%)", "WM(5%:)", "TS(150:1000)", "TC(:0.5)", "PR(:300)", "PR(100:2000)"),
    ],
)
def test_latency_statistics_follow_cloudwatch_grammar(stat: str) -> None:
    config = backend_config_from(
        {"backend": "sagemaker", "metric_source": "cloudwatch", "endpoint_name": "e", "latency_stats": {"p95_ms": stat}}
    )
    assert config["latency_stats"] == {"p95_ms": stat}


@pytest.mark.parametrize("stat", ["avg", "average", "P95", "p101", "p-1", "tm", "TM(10:90%)", "PR(10%:)", "TM()", ""])
def test_a_statistic_cloudwatch_would_reject_is_refused_naming_the_field(stat: str) -> None:
    with pytest.raises(ConfigError) as caught:
        backend_config_from(
            {
                "backend": "sagemaker",
                "metric_source": "cloudwatch",
                "endpoint_name": "e",
                "latency_stats": {"p95_ms": stat},
            }
        )
    assert caught.value.field == "latency_stats"
    assert f"latency_stats p95_ms: {stat!r} is not a CloudWatch statistic" in caught.value.message


def test_a_stored_bad_statistic_blinds_only_its_own_service(aws: str) -> None:
    now = datetime.now(UTC)
    publish_invocations(aws, now, per_minute=6000)
    good = sagemaker_service()
    bad = sagemaker_service(name="other", endpoint="other", latency_stats={"p95_ms": "avg"})

    windows = fetch_many([good, bad], now)

    assert isinstance(windows[0], MetricWindow) and windows[0].points
    assert isinstance(windows[1], MetricsUnavailable)
    assert "latency_stats p95_ms: 'avg' is not a CloudWatch statistic" in str(windows[1])


def test_a_query_cloudwatch_rejects_fails_its_own_service_not_the_batch(
    aws: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # moto accepts any query; a Stubber answers as CloudWatch does: one rejected query fails the whole call.
    stubbed = aws_backend.client("cloudwatch", {})
    real_client = aws_backend.client

    def client(service_name: str, config: dict[str, Any], **kwargs: Any) -> Any:
        return stubbed if service_name == "cloudwatch" else real_client(service_name, config, **kwargs)

    monkeypatch.setattr(aws_backend, "client", client)
    now = datetime(2026, 1, 15, 23, 45, 30, tzinfo=UTC)
    good, bad = sagemaker_service(), sagemaker_service(name="other", endpoint="other")
    rejected = "The value of Dimensions.member.1.Value must not exceed 1024 characters"
    with Stubber(stubbed) as stubber:
        stubber.add_client_error("get_metric_data", "ValidationError", rejected, 400)
        point = {"Id": "s0_inv", "Timestamps": [T], "Values": [6000.0], "StatusCode": "Complete"}
        stubber.add_response("get_metric_data", {"MetricDataResults": [point]})
        stubber.add_client_error("get_metric_data", "ValidationError", rejected, 400)

        windows = fetch_many([good, bad], now)

    assert isinstance(windows[0], MetricWindow)
    assert [p.rps for p in windows[0].points] == [100.0]
    assert isinstance(windows[1], MetricsUnavailable) and rejected in str(windows[1])


def test_a_batch_that_fails_with_a_server_error_is_asked_again_per_service(aws: str) -> None:
    # moto answers GetMetricData with an HTML 500 page when a query asks a percentile of published data (it does
    # not compute them): the one bad service's query fails the whole batch, as CloudWatch's own 5xx would.
    now = datetime.now(UTC)
    publish_invocations(aws, now, per_minute=6000)
    good = sagemaker_service()
    bad = sagemaker_service(name="other", latency_stats={"p95_ms": "p95"})

    windows = fetch_many([good, bad], now)

    assert isinstance(windows[0], MetricWindow) and [p.rps for p in windows[0].points if p.rps]
    error = windows[1]
    assert isinstance(error, MetricsUnavailable)
    text = str(error)
    assert "500" in text and len(text) <= 200 and "\n" not in text and "<" not in text, text


def test_a_service_alone_is_not_asked_again_after_its_call_fails(recording_proxy: RecordingProxy) -> None:
    now = datetime.now(UTC)
    publish_invocations(recording_proxy.url, now, per_minute=6000)
    bad = sagemaker_service(name="other", latency_stats={"p95_ms": "p95"})
    recording_proxy.calls.clear()

    window = fetch_many([bad], now)[0]

    assert isinstance(window, MetricsUnavailable)
    assert recording_proxy.calls.count("GetMetricData") == aws_backend.RETRY_MAX_ATTEMPTS  # botocore's, no more
