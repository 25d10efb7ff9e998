"""Coexistence with Application Auto Scaling, one test per mode, against moto's server."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from django.utils import timezone

from scaling import services
from scaling.audit import Actor, EventType
from scaling.backends.autoscaling import autoscaling_release
from scaling.models import ActuatorHealth, AuditEvent, Decision, Service
from tests.backends.conftest import (
    create_ecs_service,
    create_sagemaker_endpoint,
    ecs_desired,
    ecs_service,
    publish_invocations,
    register_target,
    sagemaker_counts,
    sagemaker_service,
    scalable_target,
)

pytestmark = pytest.mark.django_db

SM_RESOURCE = "endpoint/win-prob/variant/AllTraffic"
SM_DIMENSION = "sagemaker:variant:DesiredInstanceCount"
ECS_RESOURCE = "service/serving/odds-api"


def _decide(service: Service, tick: datetime) -> Decision:
    result = services.service_evaluate(service_id=service.pk, tick_at=tick)
    assert result.decision_id is not None, result
    return Decision.objects.get(pk=result.decision_id)


HOUR = timedelta(hours=1)


def _loaded_endpoint(url: str) -> datetime:
    create_sagemaker_endpoint(url, instances=2)
    register_target(url, "sagemaker", SM_RESOURCE, SM_DIMENSION, lo=1, hi=10)
    tick = services.align_tick(timezone.now())
    publish_invocations(url, tick, per_minute=60 * 700)
    return tick


def test_by_default_it_refuses_to_fight_application_auto_scaling(aws: str) -> None:
    tick = _loaded_endpoint(aws)
    service = sagemaker_service()

    decision = _decide(service, tick)

    assert decision.changed
    assert decision.actuation == Decision.Actuation.SKIPPED
    assert "owned by Application Auto Scaling" in decision.actuation_error
    assert sagemaker_counts(aws) == (2, 2, "InService")
    assert "owned by Application Auto Scaling" in ActuatorHealth.objects.get(service=service).note
    assert not scalable_target(aws, "sagemaker", SM_RESOURCE).get("SuspendedState", {}).get("DynamicScalingInSuspended")


def test_suspend_mode_suspends_dynamic_scaling_while_managed_and_restores_it_when_paused(aws: str) -> None:
    tick = _loaded_endpoint(aws)
    service = sagemaker_service(autoscaling_mode="suspend")

    decision = _decide(service, tick)

    assert decision.actuation == Decision.Actuation.OK, decision.actuation_error
    assert sagemaker_counts(aws)[1] == decision.desired
    state = scalable_target(aws, "sagemaker", SM_RESOURCE)["SuspendedState"]
    assert state["DynamicScalingInSuspended"] and state["DynamicScalingOutSuspended"]
    assert AuditEvent.objects.filter(service=service, event_type=EventType.AUTOSCALING_SUSPENDED).count() == 1

    services.service_set_mode(
        service=service, mode=Service.Mode.PAUSED, actor=Actor.system("test"), reason="pause", until=tick + HOUR
    )
    _decide(service, tick + timedelta(seconds=15))

    state = scalable_target(aws, "sagemaker", SM_RESOURCE)["SuspendedState"]
    assert not state["DynamicScalingInSuspended"] and not state["DynamicScalingOutSuspended"]
    assert AuditEvent.objects.filter(service=service, event_type=EventType.AUTOSCALING_RESTORED).count() == 1
    assert ActuatorHealth.objects.get(service=service).autoscaling_saved is None


def test_pausing_hands_the_resource_back_at_once_without_waiting_for_a_tick(aws: str) -> None:
    tick = _loaded_endpoint(aws)
    service = sagemaker_service(autoscaling_mode="suspend")
    assert _decide(service, tick).actuation == Decision.Actuation.OK

    services.service_set_mode(
        service=service, mode=Service.Mode.DRY_RUN, actor=Actor.system("test"), reason="drill", until=tick + HOUR
    )

    state = scalable_target(aws, "sagemaker", SM_RESOURCE)["SuspendedState"]
    assert not state["DynamicScalingInSuspended"] and not state["DynamicScalingOutSuspended"]
    assert AuditEvent.objects.filter(service=service, event_type=EventType.AUTOSCALING_RESTORED).count() == 1


def test_bounds_mode_drives_capacity_through_min_and_max_and_restores_them(aws: str) -> None:
    create_ecs_service(aws, desired=2)
    register_target(aws, "ecs", ECS_RESOURCE, "ecs:service:DesiredCount", lo=1, hi=10)
    service = ecs_service(autoscaling_mode="bounds")

    outcome = services.get_actuator(service).set_capacity(service, 5, timezone.now())

    assert (outcome.status, outcome.detail) == ("ok", "Application Auto Scaling bounds set to 5..5")
    target = scalable_target(aws, "ecs", ECS_RESOURCE)
    assert (target["MinCapacity"], target["MaxCapacity"]) == (5, 5)
    assert ecs_desired(aws) == 2  # Tipoff did not call UpdateService; AAS moves the service
    event = AuditEvent.objects.get(service=service, event_type=EventType.AUTOSCALING_BOUNDS_SET)
    assert (event.before, event.after) == ({"min": 1, "max": 10}, {"min": 5, "max": 5})

    assert autoscaling_release(service=service, actor=Actor.system("test"), reason="mode changed")
    target = scalable_target(aws, "ecs", ECS_RESOURCE)
    assert (target["MinCapacity"], target["MaxCapacity"]) == (1, 10)
    assert not autoscaling_release(service=service, actor=Actor.system("test"), reason="again")
