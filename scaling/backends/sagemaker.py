"""A SageMaker real-time endpoint variant as an actuator.

backend_config: endpoint_name, variant_name (default AllTraffic), region, endpoint_url,
autoscaling_mode (refuse | suspend | bounds).
"""

from __future__ import annotations

from typing import Any

from scaling.backends import aws
from scaling.backends.aws_actuator import AwsActuator
from scaling.backends.base import ActuationResult, ActuatorError, FleetStatus
from scaling.models import Service

# Statuses in which the endpoint must not be called again; retry next tick.
BUSY_STATUSES = {"Creating", "Updating", "SystemUpdating", "RollingBack", "Deleting", "UpdateRollbackFailed"}
# Statuses an endpoint does not leave by waiting: someone has to fix or update it.
FAILED_STATUSES = {"Failed", "OutOfService"}


def identifiers(service: Service) -> tuple[str, str]:
    cfg = service.backend_config or {}
    endpoint = str(cfg.get("endpoint_name") or "").strip()
    if not endpoint:
        raise ActuatorError("backend_config.endpoint_name is required for a SageMaker service", permanent=True)
    return endpoint, str(cfg.get("variant_name") or "AllTraffic").strip()


def describe(service: Service) -> dict[str, Any]:
    endpoint, _ = identifiers(service)
    return aws.call(
        aws.client("sagemaker", service.backend_config or {}, error_cls=ActuatorError),
        "DescribeEndpoint",
        resource=f"SageMaker endpoint {endpoint!r}",
        error_cls=ActuatorError,
        EndpointName=endpoint,
    )


def _variant(service: Service, described: dict[str, Any]) -> dict[str, Any]:
    endpoint, variant = identifiers(service)
    for v in described.get("ProductionVariants", []):
        if v.get("VariantName") == variant:
            return dict(v)
    names = ", ".join(str(v.get("VariantName")) for v in described.get("ProductionVariants", [])) or "none"
    raise ActuatorError(
        f"unknown resource: SageMaker endpoint {endpoint!r} has no variant {variant!r} (it has: {names})",
        permanent=True,
    )


class SageMakerActuator(AwsActuator):
    def read(self, service: Service) -> FleetStatus:
        described = describe(service)
        variant = _variant(service, described)
        current = int(variant.get("CurrentInstanceCount") or 0)
        desired = int(variant.get("DesiredInstanceCount") or current)
        state = str(described.get("EndpointStatus", ""))
        because = f": {described.get('FailureReason')}" if described.get("FailureReason") else ""
        if state in FAILED_STATUSES:
            # An error, not busy: waiting does not end it, and the fleet page should say so.
            endpoint, _ = identifiers(service)
            raise ActuatorError(
                f"SageMaker endpoint {endpoint!r} is {state}{because}; Tipoff cannot scale it until it is InService",
                permanent=True,
            )
        return FleetStatus(
            provisioned=desired,
            ready=current,
            desired=desired,
            busy=state in BUSY_STATUSES,
            detail=f"endpoint {state}{because}",
        )

    def apply(self, service: Service, replicas: int) -> ActuationResult:
        endpoint, variant = identifiers(service)
        # Re-read just before writing: never call while the endpoint is updating.
        state = str(describe(service).get("EndpointStatus", ""))
        if state != "InService":
            return ActuationResult("busy", f"endpoint {endpoint!r} is {state}; retry next tick")
        try:
            aws.call(
                aws.client("sagemaker", service.backend_config or {}, error_cls=ActuatorError),
                "UpdateEndpointWeightsAndCapacities",
                resource=f"SageMaker endpoint {endpoint!r}",
                error_cls=ActuatorError,
                EndpointName=endpoint,
                DesiredWeightsAndCapacities=[{"VariantName": variant, "DesiredInstanceCount": replicas}],
            )
        except ActuatorError as exc:
            # Another update started between our read and our write.
            if "in-progress" in str(exc).lower() or "updating" in str(exc).lower():
                return ActuationResult("busy", f"endpoint {endpoint!r} is updating; retry next tick")
            raise
        return ActuationResult("ok", f"SageMaker {endpoint}/{variant} DesiredInstanceCount set to {replicas}")
