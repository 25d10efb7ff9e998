"""The SageMaker actuator and the CloudWatch source through the control tick, against moto's server."""

from __future__ import annotations

from datetime import datetime

import pytest
from django.utils import timezone

from scaling import services
from scaling.audit import EventType
from scaling.models import AuditEvent, Decision, MetricSample
from tests.backends.conftest import create_sagemaker_endpoint, publish_invocations, sagemaker_counts, sagemaker_service

pytestmark = pytest.mark.django_db


def _tick() -> datetime:
    return services.align_tick(timezone.now())


def _decide(service_id: int, tick: datetime) -> Decision:
    result = services.service_evaluate(service_id=service_id, tick_at=tick)
    assert result.decision_id is not None, result
    return Decision.objects.get(pk=result.decision_id)


def test_it_scales_a_sagemaker_endpoint_out_from_cloudwatch_invocations(aws: str) -> None:
    create_sagemaker_endpoint(aws, instances=2)
    tick = _tick()
    publish_invocations(aws, tick, per_minute=60 * 700)  # 700 requests/s
    service = sagemaker_service()

    decision = _decide(service.pk, tick)

    assert decision.changed and decision.desired > 2, decision.summary
    assert decision.actuation == Decision.Actuation.OK, decision.actuation_error
    assert sagemaker_counts(aws) == (decision.desired, decision.desired, "InService")
    sample = MetricSample.objects.filter(service=service).latest("ts")
    assert sample.rps == pytest.approx(700.0)
    assert sample.provisioned == 2
    assert AuditEvent.objects.filter(event_type=EventType.ACTUATOR_OK, service=service).exists()


def test_it_holds_when_cloudwatch_has_no_datapoints(aws: str) -> None:
    create_sagemaker_endpoint(aws, instances=3)
    service = sagemaker_service()

    decision = _decide(service.pk, _tick())

    assert (decision.reason_code, decision.changed, decision.desired) == ("METRICS_STALE", False, 3)
    assert sagemaker_counts(aws) == (3, 3, "InService")


def test_it_reports_an_unknown_endpoint_in_plain_words(aws: str) -> None:
    service = sagemaker_service(endpoint="no-such-endpoint")

    decision = _decide(service.pk, _tick())

    assert decision.reason_code == "ACTUATOR_UNAVAILABLE"
    assert "unknown resource: SageMaker endpoint 'no-such-endpoint'" in decision.summary
