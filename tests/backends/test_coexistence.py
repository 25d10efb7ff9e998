"""Coexistence with Application Auto Scaling, one test per mode, against moto's server."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from django.utils import timezone

from scaling import services
from scaling.audit import Actor, EventType
from scaling.backends.autoscaling import autoscaling_release
from scaling.models import ActuatorHealth, AuditEvent, Decision, Service
from scaling.service_config import service_configure
from scaling.tasks import release_scalable_targets
from tests.backends.conftest import (
    create_ecs_service,
    create_sagemaker_endpoint,
    ecs_desired,
    ecs_service,
    publish_invocations,
    register_target,
    restricted_credentials,
    sagemaker_counts,
    sagemaker_service,
    scalable_target,
)

pytestmark = pytest.mark.django_db

SM_RESOURCE = "endpoint/win-prob/variant/AllTraffic"
SM_DIMENSION = "sagemaker:variant:DesiredInstanceCount"
ECS_RESOURCE = "service/serving/odds-api"
ECS_DIMENSION = "ecs:service:DesiredCount"
SUSPEND_KEYS = ("DynamicScalingInSuspended", "DynamicScalingOutSuspended", "ScheduledScalingSuspended")
ACTOR = Actor.system("test")


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


def test_a_refusal_that_goes_on_is_audited_once(aws: str) -> None:
    tick = _loaded_endpoint(aws)
    service = sagemaker_service()

    decisions = [_decide(service, tick + timedelta(seconds=15 * k)) for k in range(4)]

    assert [d.actuation for d in decisions] == [Decision.Actuation.SKIPPED] * 4
    assert len({(d.provisioned, d.desired, d.reason_code) for d in decisions}) == 1
    events = AuditEvent.objects.filter(service=service)
    assert [e.object_id for e in events.filter(event_type=EventType.DECISION_SCALED)] == [str(decisions[0].pk)]
    assert [e.object_id for e in events.filter(event_type=EventType.ACTUATOR_ERROR)] == [str(decisions[0].pk)]


def test_suspend_mode_suspends_dynamic_scaling_while_managed_and_restores_it_when_paused(aws: str) -> None:
    tick = _loaded_endpoint(aws)
    service = sagemaker_service(autoscaling_mode="suspend")

    decision = _decide(service, tick)

    assert decision.actuation == Decision.Actuation.OK, decision.actuation_error
    assert sagemaker_counts(aws)[1] == decision.desired
    state = scalable_target(aws, "sagemaker", SM_RESOURCE)["SuspendedState"]
    # Scheduled scaling too: a scheduled action moves min and max, and AAS would move the count into them.
    assert state == dict.fromkeys(SUSPEND_KEYS, True)
    assert AuditEvent.objects.filter(service=service, event_type=EventType.AUTOSCALING_SUSPENDED).count() == 1

    services.service_set_mode(
        service=service, mode=Service.Mode.PAUSED, actor=Actor.system("test"), reason="pause", until=tick + HOUR
    )
    _decide(service, tick + timedelta(seconds=15))

    state = scalable_target(aws, "sagemaker", SM_RESOURCE)["SuspendedState"]
    assert state == dict.fromkeys(SUSPEND_KEYS, False)
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

    assert autoscaling_release(service=service, actor=ACTOR, reason="mode changed")
    target = scalable_target(aws, "ecs", ECS_RESOURCE)
    assert (target["MinCapacity"], target["MaxCapacity"]) == (1, 10)
    assert not autoscaling_release(service=service, actor=ACTOR, reason="again")


def test_bounds_mode_sets_the_count_itself_when_application_auto_scaling_left_it_behind(aws: str) -> None:
    # moto never moves a resource into its target's bounds: as AAS does when the resource was updating.
    create_ecs_service(aws, desired=2)
    register_target(aws, "ecs", ECS_RESOURCE, ECS_DIMENSION, lo=1, hi=10)
    service = ecs_service(autoscaling_mode="bounds")
    actuator = services.get_actuator(service)
    assert actuator.set_capacity(service, 5, timezone.now()).status == "ok"
    assert ecs_desired(aws) == 2

    outcome = actuator.set_capacity(service, 5, timezone.now())

    assert (outcome.status, outcome.detail) == ("ok", "bounds already 5..5; ECS serving/odds-api desiredCount set to 5")
    assert ecs_desired(aws) == 5
    assert _bounds(aws, ECS_RESOURCE) == (5, 5)


def _bounds(url: str, resource: str) -> tuple[int, int]:
    target = scalable_target(url, "ecs", resource)
    return int(target["MinCapacity"]), int(target["MaxCapacity"])


def _reconfigure(service: Service, values: dict[str, object] | None = None, /, **config: object) -> None:
    config = service.backend_config | config
    assert service_configure(service=service, values=values or {}, backend_config=config, actor=ACTOR, reason="test")


def test_pointing_the_service_at_another_resource_hands_the_old_target_back(aws: str) -> None:
    create_ecs_service(aws, name="svc-a")
    create_ecs_service(aws, name="svc-b")
    register_target(aws, "ecs", "service/serving/svc-a", ECS_DIMENSION, lo=1, hi=10)
    register_target(aws, "ecs", "service/serving/svc-b", ECS_DIMENSION, lo=3, hi=30)
    service = ecs_service(service="svc-a", autoscaling_mode="bounds")
    assert services.get_actuator(service).set_capacity(service, 5, timezone.now()).status == "ok"

    _reconfigure(service, service="svc-b")

    assert _bounds(aws, "service/serving/svc-a") == (1, 10)
    restored = AuditEvent.objects.get(service=service, event_type=EventType.AUTOSCALING_RESTORED)
    assert (restored.object_id, restored.after) == ("service/serving/svc-a", {"min": 1, "max": 10})
    assert "service now points at service/serving/svc-b" in restored.reason

    assert services.get_actuator(service).set_capacity(service, 7, timezone.now()).status == "ok"
    assert _bounds(aws, "service/serving/svc-b") == (7, 7)
    services.service_set_mode(
        service=service, mode=Service.Mode.PAUSED, actor=ACTOR, reason="pause", until=timezone.now() + HOUR
    )

    assert _bounds(aws, "service/serving/svc-b") == (3, 30)  # its own original, not svc-a's
    assert _bounds(aws, "service/serving/svc-a") == (1, 10)


def test_a_new_region_hands_back_the_target_in_the_old_one(aws: str) -> None:
    create_ecs_service(aws)
    register_target(aws, "ecs", ECS_RESOURCE, ECS_DIMENSION, lo=1, hi=10)
    service = ecs_service(autoscaling_mode="bounds")
    assert services.get_actuator(service).set_capacity(service, 5, timezone.now()).status == "ok"

    _reconfigure(service, region="eu-west-1")

    assert _bounds(aws, ECS_RESOURCE) == (1, 10)  # restored in us-east-1, where it was pinned
    assert ActuatorHealth.objects.get(service=service).autoscaling_saved is None


def test_a_hand_back_that_failed_is_retried_by_the_next_tick(aws: str, monkeypatch: pytest.MonkeyPatch) -> None:
    create_ecs_service(aws)
    register_target(aws, "ecs", ECS_RESOURCE, ECS_DIMENSION, lo=1, hi=10)
    service = ecs_service(autoscaling_mode="bounds")
    assert services.get_actuator(service).set_capacity(service, 5, timezone.now()).status == "ok"
    with restricted_credentials(aws, monkeypatch, ["ecs:*", "application-autoscaling:Describe*", "cloudwatch:*"]):
        _reconfigure(service, autoscaling_mode="refuse")  # RegisterScalableTarget denied: still pinned
    assert _bounds(aws, ECS_RESOURCE) == (5, 5)

    _decide(service, services.align_tick(timezone.now()))

    assert _bounds(aws, ECS_RESOURCE) == (1, 10)
    assert ActuatorHealth.objects.get(service=service).autoscaling_saved is None
    assert AuditEvent.objects.filter(service=service, event_type=EventType.AUTOSCALING_RESTORED).count() == 1


def test_a_disabled_service_whose_hand_back_failed_is_handed_back_by_the_sweep(
    aws: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    create_ecs_service(aws)
    register_target(aws, "ecs", ECS_RESOURCE, ECS_DIMENSION, lo=1, hi=10)
    service = ecs_service(autoscaling_mode="suspend")
    assert services.get_actuator(service).set_capacity(service, 5, timezone.now()).status == "ok"
    with restricted_credentials(aws, monkeypatch, ["ecs:*", "application-autoscaling:Describe*", "cloudwatch:*"]):
        _reconfigure(service, {"enabled": False})
        assert release_scalable_targets() == 0  # still denied: kept for the next run
    assert scalable_target(aws, "ecs", ECS_RESOURCE)["SuspendedState"] == dict.fromkeys(SUSPEND_KEYS, True)

    assert release_scalable_targets() == 1

    assert scalable_target(aws, "ecs", ECS_RESOURCE)["SuspendedState"] == dict.fromkeys(SUSPEND_KEYS, False)
    assert ActuatorHealth.objects.get(service=service).autoscaling_saved is None
