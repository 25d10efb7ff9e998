"""Coexistence with AWS Application Auto Scaling (AAS).

When the resource Tipoff would scale has a registered scalable target, Tipoff
must not silently fight it. Per service (`backend_config["autoscaling_mode"]`):

- `refuse` (default): never actuate; the fleet page says "owned by Application Auto Scaling".
- `suspend`: while Tipoff manages the service, suspend the target's dynamic and
  scheduled scaling; restore what was there when Tipoff stops.
- `bounds`: drive capacity by setting the target's MinCapacity = MaxCapacity = N;
  restore the original bounds when Tipoff stops.

Every change to a scalable target is audited. What to restore is saved with the
target it belongs to (resource, region, endpoint), and handed back whenever it no
longer matches what Tipoff manages: paused, dry run, disabled, another coexistence
mode, or the service pointed at another resource. A hand-back that fails is
retried by the next tick (`AwsActuator.status`) or, for a service no tick reads,
by `release_untended`.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
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
    """A scalable target, with the region and endpoint that reach it."""

    namespace: str
    resource_id: str
    dimension: str
    region: str | None
    endpoint_url: str | None

    def client(self, error_cls: type[BackendError] = ActuatorError) -> Any:
        config = {"region": self.region, "endpoint_url": self.endpoint_url}
        return aws.client("application-autoscaling", config, error_cls=error_cls)


@dataclass(frozen=True)
class ScalableTarget:
    min_capacity: int
    max_capacity: int
    suspended: dict[str, bool]

    @property
    def suspended_by_tipoff(self) -> bool:
        return all(self.suspended.get(k) for k in _SUSPEND_KEYS)


_SUSPEND_KEYS = ("DynamicScalingInSuspended", "DynamicScalingOutSuspended", "ScheduledScalingSuspended")


def _short(name: str) -> str:
    """An ECS cluster or service given as an ARN, reduced to its name."""
    return name.rsplit("/", 1)[-1] if name.startswith("arn:") else name


def scalable_resource(service: Service) -> ScalableResource | None:
    cfg = service.backend_config or {}
    where = {"region": aws.region_of(cfg), "endpoint_url": str(cfg.get("endpoint_url") or "").strip() or None}
    if service.backend == Service.Backend.SAGEMAKER:
        return ScalableResource(
            "sagemaker",
            f"endpoint/{cfg.get('endpoint_name', '')}/variant/{cfg.get('variant_name') or 'AllTraffic'}",
            "sagemaker:variant:DesiredInstanceCount",
            **where,
        )
    if service.backend == Service.Backend.ECS:
        return ScalableResource(
            "ecs",
            f"service/{_short(str(cfg.get('cluster', '')))}/{_short(str(cfg.get('service', '')))}",
            "ecs:service:DesiredCount",
            **where,
        )
    return None


def mode_of(service: Service) -> str:
    mode = str((service.backend_config or {}).get("autoscaling_mode") or "refuse")
    return mode if mode in MODES else "refuse"


def describe_target(service: Service, *, error_cls: type[BackendError] = ActuatorError) -> ScalableTarget | None:
    """The resource's scalable target, or None when AAS does not manage it (read only)."""
    res = scalable_resource(service)
    return None if res is None else _describe(res, error_cls)


def _describe(res: ScalableResource, error_cls: type[BackendError] = ActuatorError) -> ScalableTarget | None:
    page = aws.call(
        res.client(error_cls),
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


def _register(res: ScalableResource, **params: Any) -> None:
    aws.call(
        res.client(),
        "RegisterScalableTarget",
        resource=f"scalable target {res.resource_id}",
        error_cls=ActuatorError,
        ServiceNamespace=res.namespace,
        ResourceId=res.resource_id,
        ScalableDimension=res.dimension,
        **params,
    )


def _managed(service: Service) -> ScalableResource:
    res = scalable_resource(service)
    assert res is not None  # noqa: S101 - only called for AWS backends
    return res


def ownership_note(service: Service, target: ScalableTarget | None) -> str:
    if target is None:
        return ""
    mode = mode_of(service)
    bounds = f"min {target.min_capacity}, max {target.max_capacity}"
    if mode == "refuse":
        return f"{OWNED_NOTE} ({bounds}); Tipoff does not actuate (coexistence mode: refuse)"
    if mode == "suspend":
        state = "suspended by Tipoff" if target.suspended_by_tipoff else "active"
        return f"Application Auto Scaling dynamic and scheduled scaling {state} ({bounds}; coexistence mode: suspend)"
    return f"Tipoff drives Application Auto Scaling bounds ({bounds}; coexistence mode: bounds)"


def _save_original(service: Service, res: ScalableResource, mode: str, original: dict[str, Any]) -> None:
    ActuatorHealth.objects.get_or_create(service_id=service.pk)
    health = ActuatorHealth.objects.select_for_update().get(service_id=service.pk)
    if health.autoscaling_saved is None:
        # Keep the first original: a later change must not overwrite what to restore. One saved for another
        # target or mode was handed back before this change (`release_if_unmanaged`).
        health.autoscaling_saved = {"mode": mode, "target": asdict(res), **original}
        health.save(update_fields=["autoscaling_saved", "updated_at"])


def ensure_suspended(service: Service, target: ScalableTarget, actor: Actor) -> bool:
    """Suspend the target's dynamic (in and out) and scheduled scaling. Returns False when it already was.

    Scheduled actions too: one that fires moves the target's min and max, and AAS then moves the count
    into them, over Tipoff's."""
    if target.suspended_by_tipoff:
        return False
    res = _managed(service)
    new_state = dict.fromkeys(_SUSPEND_KEYS, True)
    _register(res, SuspendedState=new_state)
    with transaction.atomic():
        _save_original(service, res, "suspend", {"suspended": target.suspended})
        audit_record(
            actor=actor,
            event_type=EventType.AUTOSCALING_SUSPENDED,
            service=service,
            object_type="scalable_target",
            object_id=res.resource_id[:64],
            before={"suspended_state": target.suspended},
            after={"suspended_state": new_state},
            reason="Tipoff manages this service: Application Auto Scaling dynamic and scheduled scaling suspended",
        )
    return True


def set_bounds(service: Service, target: ScalableTarget, replicas: int, actor: Actor) -> ActuationResult:
    """Drive capacity through AAS by pinning MinCapacity = MaxCapacity = replicas."""
    res = _managed(service)
    _register(res, MinCapacity=replicas, MaxCapacity=replicas)
    with transaction.atomic():
        _save_original(service, res, "bounds", {"min": target.min_capacity, "max": target.max_capacity})
        audit_record(
            actor=actor,
            event_type=EventType.AUTOSCALING_BOUNDS_SET,
            service=service,
            object_type="scalable_target",
            object_id=res.resource_id[:64],
            before={"min": target.min_capacity, "max": target.max_capacity},
            after={"min": replicas, "max": replicas},
            reason=f"coexistence mode bounds: Application Auto Scaling set to {replicas}..{replicas}",
        )
    return ActuationResult("ok", f"Application Auto Scaling bounds set to {replicas}..{replicas}")


def _saved_resource(service: Service, saved: dict[str, Any]) -> ScalableResource | None:
    # A state saved before the target was saved with it belongs to the service's current one.
    return ScalableResource(**saved["target"]) if "target" in saved else scalable_resource(service)


def _unmanaged_because(service: Service, saved: dict[str, Any]) -> str:
    """Why Tipoff no longer manages the target it changed, or "" while it still does."""
    if not service.enabled:
        return "service disabled"
    if service.mode != Service.Mode.ACTIVE:
        return f"service is {service.get_mode_display().lower()}"
    now = scalable_resource(service)
    if now != _saved_resource(service, saved):
        return "service no longer on an AWS backend" if now is None else f"service now points at {now.resource_id}"
    if mode_of(service) != saved.get("mode"):
        return f"coexistence mode is now {mode_of(service)}"
    return ""


def autoscaling_release(*, service: Service, actor: Actor, reason: str) -> bool:
    """Give the target back to Application Auto Scaling: restore what Tipoff changed.

    The target is the one the original was saved with, whatever the service's identifiers, region or mode
    are now. Returns False when Tipoff had changed nothing (or another caller handed it back first).
    """
    health = ActuatorHealth.objects.filter(service_id=service.pk).first()
    if health is None or not health.autoscaling_saved:
        return False
    saved = dict(health.autoscaling_saved)
    res = _saved_resource(service, saved)
    target = None if res is None else _describe(res)
    if res is not None and target is not None:
        if saved.get("mode") == "bounds":
            params: dict[str, Any] = {"MinCapacity": int(saved["min"]), "MaxCapacity": int(saved["max"])}
            before: dict[str, Any] = {"min": target.min_capacity, "max": target.max_capacity}
            after: dict[str, Any] = {"min": saved["min"], "max": saved["max"]}
        else:
            restored = {k: bool(saved.get("suspended", {}).get(k, False)) for k in _SUSPEND_KEYS}
            params = {"SuspendedState": restored}
            before = {"suspended_state": target.suspended}
            after = {"suspended_state": restored}
        _register(res, **params)
    else:
        before, after = {"saved": saved}, {"note": "scalable target no longer registered; nothing to restore"}
    with transaction.atomic():
        if not ActuatorHealth.objects.filter(pk=health.pk, autoscaling_saved=saved).update(autoscaling_saved=None):
            return False
        audit_record(
            actor=actor,
            event_type=EventType.AUTOSCALING_RESTORED,
            service=service,
            object_type="scalable_target",
            object_id=res.resource_id[:64] if res else "",
            before=before,
            after=after,
            reason=reason,
        )
    return True


def release_if_unmanaged(service: Service, actor: Actor, context: str = "") -> bool:
    """Hand back what Tipoff changed on a target it no longer manages. Returns whether it did; raises
    ActuatorError when AWS refuses, the saved state kept to retry."""
    saved = ActuatorHealth.objects.filter(service_id=service.pk).values_list("autoscaling_saved", flat=True).first()
    if not saved:
        return False
    why = _unmanaged_because(service, saved)
    if not why:
        return False
    reason = f"Tipoff no longer manages the scalable target ({why})" + (f": {context}" if context else "")
    return autoscaling_release(service=service, actor=actor, reason=reason)


def release_quietly(service: Service, actor: Actor, context: str = "") -> bool:
    """release_if_unmanaged for callers that must not fail: the error is logged, the state kept, and the
    next tick (or `release_untended`) tries again."""
    try:
        return release_if_unmanaged(service, actor, context)
    except BackendError as exc:
        log.warning("service %s (id %s): could not restore Application Auto Scaling: %s", service.name, service.pk, exc)
        return False


def release_untended(actor: Actor) -> int:
    """Hand back the targets of services no tick reads (disabled, or moved off AWS) whose hand-back failed
    when they stopped; an active service's own tick retries its own. Returns how many were handed back."""
    untended = Service.objects.filter(actuator_health__autoscaling_saved__isnull=False).exclude(
        enabled=True, backend__in=(Service.Backend.SAGEMAKER, Service.Backend.ECS)
    )
    return sum(release_quietly(service, actor) for service in untended)
