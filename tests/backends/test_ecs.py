"""The ECS actuator through the control tick, against moto's server."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from botocore.stub import Stubber
from django.utils import timezone

from scaling import services
from scaling.backends import ActuatorError
from scaling.backends import aws as aws_backend
from scaling.backends.ecs import EcsActuator
from scaling.models import Decision, MetricSample
from tests.backends.conftest import admin_client, create_ecs_service, decision_of, ecs_desired, ecs_service

pytestmark = pytest.mark.django_db

ALB = [{"Name": "LoadBalancer", "Value": "app/serving/abc"}, {"Name": "TargetGroup", "Value": "targetgroup/odds/def"}]


def _publish_alb(url: str, now: datetime, per_minute: float, response_s: float) -> None:
    start = now.replace(second=0, microsecond=0)
    data = []
    for k in range(2, 6):
        ts = start - timedelta(minutes=k)
        data += [
            {"MetricName": "RequestCount", "Dimensions": ALB, "Timestamp": ts, "Value": per_minute},
            {"MetricName": "HTTPCode_Target_5XX_Count", "Dimensions": ALB, "Timestamp": ts, "Value": per_minute / 100},
            {"MetricName": "TargetResponseTime", "Dimensions": ALB, "Timestamp": ts, "Value": response_s},
        ]
    admin_client("cloudwatch", url).put_metric_data(Namespace="AWS/ApplicationELB", MetricData=data)


def test_it_scales_an_ecs_service_from_alb_metrics(aws: str) -> None:
    create_ecs_service(aws, desired=2)
    tick = services.align_tick(timezone.now())
    _publish_alb(aws, tick, per_minute=60 * 500, response_s=0.120)
    service = ecs_service(load_balancer="app/serving/abc", target_group="targetgroup/odds/def")

    result = services.service_evaluate(service_id=service.pk, tick_at=tick)

    decision = decision_of(result)
    assert decision.changed and decision.desired > 2, decision.summary
    assert decision.actuation == Decision.Actuation.OK, decision.actuation_error
    assert ecs_desired(aws) == decision.desired
    sample = MetricSample.objects.filter(service=service).latest("ts")
    assert sample.rps == pytest.approx(500.0)
    assert sample.p95_ms == pytest.approx(120.0)  # seconds -> milliseconds
    assert sample.error_rate == pytest.approx(0.01)


def test_it_reads_desired_running_and_pending_counts(aws: str) -> None:
    create_ecs_service(aws, desired=3)
    status = EcsActuator().read(ecs_service())
    assert status.provisioned == 3 and status.desired == 3
    assert "running" in status.detail and "pending" in status.detail


def test_it_names_a_missing_ecs_service(aws: str) -> None:
    create_ecs_service(aws, desired=3)
    with pytest.raises(ActuatorError, match=r"unknown resource: ECS service 'nope' in cluster 'serving'") as info:
        EcsActuator().read(ecs_service(service="nope"))
    assert info.value.permanent


def test_ready_counts_the_new_deployment_only_during_a_rolling_deployment(
    aws: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # moto has no deployments in flight: a Stubber answers as ECS does mid-rollout at maximumPercent 200.
    stubbed = aws_backend.client("ecs", {})
    real_client = aws_backend.client

    def client(service_name: str, config: dict[str, Any], **kwargs: Any) -> Any:
        return stubbed if service_name == "ecs" else real_client(service_name, config, **kwargs)

    monkeypatch.setattr(aws_backend, "client", client)
    deployments = [
        {"id": "new", "status": "PRIMARY", "desiredCount": 4, "runningCount": 3, "pendingCount": 1},
        {"id": "old", "status": "ACTIVE", "desiredCount": 4, "runningCount": 4, "pendingCount": 0},
    ]
    service = {"serviceName": "odds-api", "status": "ACTIVE", "desiredCount": 4, "runningCount": 7, "pendingCount": 1}
    with Stubber(stubbed) as stubber:
        stubber.add_response("describe_services", {"services": [service | {"deployments": deployments}]})
        stubber.add_response("describe_services", {"services": [service | {"runningCount": 9, "deployments": []}]})

        rolling = EcsActuator().read(ecs_service())
        without_deployments = EcsActuator().read(ecs_service(name="odds-2"))

    assert (rolling.provisioned, rolling.ready) == (4, 3)
    assert rolling.detail.endswith("7 running, 1 pending; deploying, 3 running the new task definition")
    assert without_deployments.ready == 4  # the service's count, at most the desired count
