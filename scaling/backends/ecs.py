"""An ECS service as an actuator.

backend_config: cluster (name or ARN), service (name or ARN), region, endpoint_url,
autoscaling_mode (refuse | suspend | bounds).
"""

from __future__ import annotations

from typing import Any

from scaling.backends import aws
from scaling.backends.aws_actuator import AwsActuator
from scaling.backends.base import ActuationResult, ActuatorError, FleetStatus
from scaling.models import Service


def identifiers(service: Service) -> tuple[str, str]:
    cfg = service.backend_config or {}
    cluster = str(cfg.get("cluster") or "").strip()
    name = str(cfg.get("service") or "").strip()
    if not cluster or not name:
        raise ActuatorError("backend_config.cluster and backend_config.service are required for ECS", permanent=True)
    return cluster, name


def describe(service: Service) -> dict[str, Any]:
    cluster, name = identifiers(service)
    out = aws.call(
        aws.client("ecs", service.backend_config or {}, error_cls=ActuatorError),
        "DescribeServices",
        resource=f"ECS service {name!r} in cluster {cluster!r}",
        error_cls=ActuatorError,
        cluster=cluster,
        services=[name],
    )
    for svc in out.get("services", []):
        if svc.get("status") != "INACTIVE":
            return dict(svc)
    reasons = "; ".join(f"{f.get('arn')}: {f.get('reason')}" for f in out.get("failures", [])) or "INACTIVE"
    raise ActuatorError(f"unknown resource: ECS service {name!r} in cluster {cluster!r} ({reasons})", permanent=True)


def _primary(svc: dict[str, Any]) -> dict[str, Any] | None:
    """The deployment of the service's current task definition (none under an external deployment controller)."""
    return next((d for d in svc.get("deployments", []) if d.get("status") == "PRIMARY"), None)


class EcsActuator(AwsActuator):
    def read(self, service: Service) -> FleetStatus:
        svc = describe(service)
        desired = int(svc.get("desiredCount") or 0)
        running = int(svc.get("runningCount") or 0)
        pending = int(svc.get("pendingCount") or 0)
        # During a rolling deployment the service's runningCount adds the old deployment's tasks, on their way
        # out (up to maximumPercent: twice the desired count at 200 %). Ready is the new deployment's.
        primary = _primary(svc)
        ready = min(running if primary is None else int(primary.get("runningCount") or 0), desired)
        rolling = len(svc.get("deployments", [])) > 1
        return FleetStatus(
            provisioned=desired,
            ready=ready,
            desired=desired,
            detail=f"ECS service {svc.get('status', '')}: {running} running, {pending} pending"
            + (f"; deploying, {ready} running the new task definition" if rolling else ""),
        )

    def apply(self, service: Service, replicas: int) -> ActuationResult:
        cluster, name = identifiers(service)
        aws.call(
            aws.client("ecs", service.backend_config or {}, error_cls=ActuatorError),
            "UpdateService",
            resource=f"ECS service {name!r} in cluster {cluster!r}",
            error_cls=ActuatorError,
            cluster=cluster,
            service=name,
            desiredCount=replicas,
        )
        return ActuationResult("ok", f"ECS {cluster}/{name} desiredCount set to {replicas}")
