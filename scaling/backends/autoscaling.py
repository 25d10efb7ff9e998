"""Coexistence with AWS Application Auto Scaling (AAS).

When the resource Tipoff would scale has a registered scalable target, Tipoff
must not silently fight it. Per service (`backend_config["autoscaling_mode"]`):

- `refuse` (default): never actuate; the fleet page says "owned by Application Auto Scaling".
- `suspend`: while Tipoff manages the service, set the target's dynamic scaling
  SuspendedState (in and out); restore what was there when Tipoff stops.
- `bounds`: drive capacity by setting the target's MinCapacity = MaxCapacity = N;
  restore the original bounds when Tipoff stops.

Every change to a scalable target is audited.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from django.db import transaction

from scaling.audit import Actor, EventType, audit_record
from scaling.backends import aws
from scaling.backends.base import ActuationResult, ActuatorError, BackendError
from scaling.models import ActuatorHealth, Service

log = logging.getLogger(__name__)

MODES = ("refuse", "suspend", "bounds")
OWNED_NOTE = "owned by Application Auto Scaling"


@dataclass(frozen=True)
class ScalableResource:
    namespace: str
    resource_id: str
    dimension: str


@dataclass(frozen=True)
class ScalableTarget:
    min_capacity: int
    max_capacity: int
    suspended: dict[str, bool]

    @property
    def dynamic_suspended(self) -> bool:
        return bool(self.suspended.get("DynamicScalingInSuspended")) and bool(
            self.suspended.get("DynamicScalingOutSuspended")
        )


def _short(name: str) -> str:
    """An ECS cluster or service given as an ARN, reduced to its name."""
    return name.rsplit("/", 1)[-1] if name.startswith("arn:") else name


def scalable_resource(service: Service) -> ScalableResource | None:
    cfg = service.backend_config or {}
    if service.backend == Service.Backend.SAGEMAKER:
        return ScalableResource(
            "sagemaker",
            f"endpoint/{cfg.get('endpoint_name', '')}/variant/{cfg.get('variant_name') or 'AllTraffic'}",
            "sagemaker:variant:DesiredInstanceCount",
        )
    if service.backend == Service.Backend.ECS:
        return ScalableResource(
            "ecs",
            f"service/{_short(str(cfg.get('cluster', '')))}/{_short(str(cfg.get('service', '')))}",
            "ecs:service:DesiredCount",
        )
    return None


def mode_of(service: Service) -> str:
    mode = str((service.backend_config or {}).get("autoscaling_mode") or "refuse")
    return mode if mode in MODES else "refuse"


def _client(service: Service) -> Any:
    return aws.client("application-autoscaling", service.backend_config or {}, error_cls=ActuatorError)


def describe_target(service: Service, *, error_cls: type[BackendError] = ActuatorError) -> ScalableTarget | None:
    """The resource's scalable target, or None when AAS does not manage it (read only)."""
    res = scalable_resource(service)
    if res is None:
        return None
    c = _client(service)
    page = aws.call(
        c,
        "DescribeScalableTargets",
        resource=f"scalable target {res.resource_id}",
        error_cls=error_cls,
        ServiceNamespace=res.namespace,
        ResourceIds=[res.resource_id],
        ScalableDimension=res.dimension,
    )
    for t in page.get("ScalableTargets", []):
        if t.get("ResourceId") == res.resource_id and t.get("ScalableDimension") == res.dimension:
            state = t.get("SuspendedState") or {}
            return ScalableTarget(
                min_capacity=int(t["MinCapacity"]),
                max_capacity=int(t["MaxCapacity"]),
                suspended={k: bool(state.get(k, False)) for k in _SUSPEND_KEYS},
            )
    return None


_SUSPEND_KEYS = ("DynamicScalingInSuspended", "DynamicScalingOutSuspended", "ScheduledScalingSuspended")


def _register(service: Service, **params: Any) -> None:
    res = scalable_resource(service)
    assert res is not None  # noqa: S101 - only called for AWS backends
    aws.call(
        _client(service),
        "RegisterScalableTarget",
        resource=f"scalable target {res.resource_id}",
        error_cls=ActuatorError,
        ServiceNamespace=res.namespace,
        ResourceId=res.resource_id,
        ScalableDimension=res.dimension,
        **params,
    )


def ownership_note(service: Service, target: ScalableTarget | None) -> str:
    if target is None:
        return ""
    mode = mode_of(service)
    bounds = f"min {target.min_capacity}, max {target.max_capacity}"
    if mode == "refuse":
        return f"{OWNED_NOTE} ({bounds}); Tipoff does not actuate (coexistence mode: refuse)"
    if mode == "suspend":
        state = "suspended by Tipoff" if target.dynamic_suspended else "active"
        return f"Application Auto Scaling dynamic scaling {state} ({bounds}; coexistence mode: suspend)"
    return f"Tipoff drives Application Auto Scaling bounds ({bounds}; coexistence mode: bounds)"


def _save_original(service: Service, saved: dict[str, Any]) -> None:
    ActuatorHealth.objects.get_or_create(service_id=service.pk)
    health = ActuatorHealth.objects.select_for_update().get(service_id=service.pk)
    if health.autoscaling_saved is None:
        # Keep the first original: a later change must not overwrite what to restore.
        health.autoscaling_saved = saved
        health.save(update_fields=["autoscaling_saved", "updated_at"])


def ensure_suspended(service: Service, target: ScalableTarget, actor: Actor) -> bool:
    """Suspend the target's dynamic scaling (in and out). Returns False when it already was."""
    if target.dynamic_suspended:
        return False
    new_state = {
        "DynamicScalingInSuspended": True,
        "DynamicScalingOutSuspended": True,
        "ScheduledScalingSuspended": target.suspended.get("ScheduledScalingSuspended", False),
    }
    _register(service, SuspendedState=new_state)
    with transaction.atomic():
        _save_original(service, {"mode": "suspend", "suspended": target.suspended})
        audit_record(
            actor=actor,
            event_type=EventType.AUTOSCALING_SUSPENDED,
            service=service,
            object_type="scalable_target",
            object_id=_resource_id(service),
            before={"suspended_state": target.suspended},
            after={"suspended_state": new_state},
            reason="Tipoff manages this service: Application Auto Scaling dynamic scaling suspended",
        )
    return True


def set_bounds(service: Service, target: ScalableTarget, replicas: int, actor: Actor) -> ActuationResult:
    """Drive capacity through AAS by pinning MinCapacity = MaxCapacity = replicas."""
    if target.min_capacity == replicas and target.max_capacity == replicas:
        return ActuationResult("ok", f"Application Auto Scaling bounds already {replicas}..{replicas}")
    _register(service, MinCapacity=replicas, MaxCapacity=replicas)
    with transaction.atomic():
        _save_original(service, {"mode": "bounds", "min": target.min_capacity, "max": target.max_capacity})
        audit_record(
            actor=actor,
            event_type=EventType.AUTOSCALING_BOUNDS_SET,
            service=service,
            object_type="scalable_target",
            object_id=_resource_id(service),
            before={"min": target.min_capacity, "max": target.max_capacity},
            after={"min": replicas, "max": replicas},
            reason=f"coexistence mode bounds: Application Auto Scaling set to {replicas}..{replicas}",
        )
    return ActuationResult("ok", f"Application Auto Scaling bounds set to {replicas}..{replicas}")


def _resource_id(service: Service) -> str:
    res = scalable_resource(service)
    return res.resource_id[:64] if res else ""


def autoscaling_release(*, service: Service, actor: Actor, reason: str) -> bool:
    """Give the resource back to Application Auto Scaling: restore what Tipoff changed.

    Call when Tipoff stops managing the service (paused, dry run, disabled, or
    coexistence mode changed). Returns False when Tipoff had changed nothing.
    """
    health = ActuatorHealth.objects.filter(service_id=service.pk).first()
    if health is None or not health.autoscaling_saved:
        return False
    saved = dict(health.autoscaling_saved)
    target = describe_target(service)
    if target is not None:
        if saved.get("mode") == "bounds":
            params: dict[str, Any] = {"MinCapacity": int(saved["min"]), "MaxCapacity": int(saved["max"])}
            before: dict[str, Any] = {"min": target.min_capacity, "max": target.max_capacity}
            after: dict[str, Any] = {"min": saved["min"], "max": saved["max"]}
        else:
            restored = {k: bool(saved.get("suspended", {}).get(k, False)) for k in _SUSPEND_KEYS}
            params = {"SuspendedState": restored}
            before = {"suspended_state": target.suspended}
            after = {"suspended_state": restored}
        _register(service, **params)
    else:
        before, after = {"saved": saved}, {"note": "scalable target no longer registered; nothing to restore"}
    with transaction.atomic():
        ActuatorHealth.objects.filter(pk=health.pk).update(autoscaling_saved=None)
        audit_record(
            actor=actor,
            event_type=EventType.AUTOSCALING_RESTORED,
            service=service,
            object_type="scalable_target",
            object_id=_resource_id(service),
            before=before,
            after=after,
            reason=reason,
        )
    return True


def release_quietly(service: Service, actor: Actor, reason: str) -> None:
    """autoscaling_release for callers that must not fail (the error is logged, the state kept to retry)."""
    try:
        autoscaling_release(service=service, actor=actor, reason=reason)
    except BackendError as exc:
        log.warning("service %s: could not restore Application Auto Scaling: %s", service.pk, exc)
