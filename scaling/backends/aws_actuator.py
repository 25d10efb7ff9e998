"""What every AWS actuator shares: the circuit breaker and Application Auto Scaling coexistence.

A subclass only reads the resource (`read`) and sets its absolute count (`apply`).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from scaling.audit import Actor
from scaling.backends import autoscaling, breaker
from scaling.backends.base import ActuationResult, BackendError, FleetStatus
from scaling.models import Service


class AwsActuator:
    def read(self, service: Service) -> FleetStatus:
        """Current counts and status; read calls only. Raises ActuatorError."""
        raise NotImplementedError

    def apply(self, service: Service, replicas: int) -> ActuationResult:
        """Set the absolute count. Raises ActuatorError."""
        raise NotImplementedError

    def status(self, service: Service, now: datetime) -> FleetStatus:
        breaker.check(service, now)
        try:
            fleet = self.read(service)
            target = autoscaling.describe_target(service)
        except BackendError as exc:
            breaker.record_failure(service, now, exc)
            raise
        breaker.record_success(service, now)
        # Give back what Tipoff changed on a target it no longer manages (paused, dry run, another mode or
        # resource); every tick, so a hand-back that failed is tried again until it succeeds.
        autoscaling.release_quietly(service, Actor.system("tipoff"))
        note = autoscaling.ownership_note(service, target)
        breaker.set_note(service, note)
        if note:
            fleet = replace(fleet, detail="; ".join(p for p in (fleet.detail, note) if p))
        return fleet

    def set_capacity(self, service: Service, replicas: int, now: datetime) -> ActuationResult:
        breaker.check(service, now)
        actor = Actor.system("tipoff")
        try:
            target = autoscaling.describe_target(service)
            mode = autoscaling.mode_of(service)
            if target is not None and mode != "refuse" and autoscaling.release_if_unmanaged(service, actor):
                # A target saved for another mode or resource goes back before this one is changed.
                target = autoscaling.describe_target(service)
            if target is not None and mode == "refuse":
                result = ActuationResult("refused", autoscaling.ownership_note(service, target))
            elif target is not None and mode == "bounds" and target.min_capacity == target.max_capacity == replicas:
                # Pinned at N..N already, yet the count is not N: AAS did not move it (the resource was updating
                # when the bounds were set, or its move failed). Nothing can pull it out of N..N: set it here.
                applied = self.apply(service, replicas)
                result = replace(applied, detail=f"bounds already {replicas}..{replicas}; {applied.detail}")
            elif target is not None and mode == "bounds":
                result = autoscaling.set_bounds(service, target, replicas, actor)
            else:
                if target is not None:
                    autoscaling.ensure_suspended(service, target, actor)
                result = self.apply(service, replicas)
        except BackendError as exc:
            breaker.record_failure(service, now, exc, write=True)
            raise
        breaker.record_success(service, now, wrote=result.status == "ok")
        return result
