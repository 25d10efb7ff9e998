"""What Tipoff sends to AWS, counted at the HTTP level by a recording proxy in front of moto."""

from __future__ import annotations

import pytest
from django.utils import timezone

from scaling import services
from scaling.backends.cloudwatch import fetch_many
from scaling.models import Decision, MetricSample, Service
from tests.backends.conftest import (
    RecordingProxy,
    create_sagemaker_endpoint,
    decision_of,
    publish_invocations,
    sagemaker_service,
)

pytestmark = pytest.mark.django_db


def test_a_dry_run_service_makes_no_write_call(recording_proxy: RecordingProxy) -> None:
    url = recording_proxy.url
    create_sagemaker_endpoint(url, instances=2)
    tick = services.align_tick(timezone.now())
    publish_invocations(url, tick, per_minute=60 * 700)
    service = sagemaker_service(autoscaling_mode="suspend")
    Service.objects.filter(pk=service.pk).update(mode=Service.Mode.DRY_RUN)
    recording_proxy.calls.clear()

    result = services.service_evaluate(service_id=service.pk, tick_at=tick)

    decision = decision_of(result)
    assert decision.changed and decision.actuation == Decision.Actuation.DRY_RUN
    assert sorted(recording_proxy.calls) == ["DescribeEndpoint", "DescribeScalableTargets", "GetMetricData"]
    assert recording_proxy.writes() == []


def test_an_active_service_makes_exactly_one_write_call(recording_proxy: RecordingProxy) -> None:
    url = recording_proxy.url
    create_sagemaker_endpoint(url, instances=2)
    tick = services.align_tick(timezone.now())
    publish_invocations(url, tick, per_minute=60 * 700)
    service = sagemaker_service()
    recording_proxy.calls.clear()

    services.service_evaluate(service_id=service.pk, tick_at=tick)

    assert recording_proxy.writes() == ["UpdateEndpointWeightsAndCapacities"]


def test_one_get_metric_data_call_serves_every_cloudwatch_service_in_a_tick(recording_proxy: RecordingProxy) -> None:
    url = recording_proxy.url
    tick = services.align_tick(timezone.now())
    names = [f"model-{i}" for i in range(5)]
    for i, name in enumerate(names):
        create_sagemaker_endpoint(url, name=name, instances=2)
        publish_invocations(url, tick, per_minute=60 * 100 * (i + 1), name=name)
    rows = [sagemaker_service(name=f"svc-{i}", endpoint=name) for i, name in enumerate(names)]
    recording_proxy.calls.clear()

    for row in rows:
        services.service_evaluate(service_id=row.pk, tick_at=tick)

    assert recording_proxy.calls.count("GetMetricData") == 1
    latest = [MetricSample.objects.filter(service=row).latest("ts").rps for row in rows]
    assert latest == [pytest.approx(100.0 * (i + 1)) for i in range(5)]


def test_fetch_many_batches_every_signal_of_many_services_in_one_call(recording_proxy: RecordingProxy) -> None:
    url = recording_proxy.url
    tick = services.align_tick(timezone.now())
    publish_invocations(url, tick, per_minute=6000, name="a")
    publish_invocations(url, tick, per_minute=12000, name="b")
    batch = [sagemaker_service(name="a", endpoint="a"), sagemaker_service(name="b", endpoint="b")]
    recording_proxy.calls.clear()

    windows = fetch_many(batch, tick)

    assert recording_proxy.calls == ["GetMetricData"]
    assert [w.points[-1].rps for w in windows.values()] == [pytest.approx(100.0), pytest.approx(200.0)]  # type: ignore[union-attr]
    assert windows[0].points[-1].p95_ms == pytest.approx(42.0)  # type: ignore[union-attr]  # (40000+2000) µs
