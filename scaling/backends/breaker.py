"""A per-service circuit breaker for real actuators, stored in the database.

After `breaker_errors` consecutive failed calls (describe or update), the actuator
is not called for `breaker_cooloff_s`; the fleet page shows "actuator unavailable"
with the last error. When the cool-off ends one call is let through: success
closes the breaker, failure opens it again. No sweeper: the state heals by time.

Writes keep their own streak: every tick reads before it writes, and a read that
succeeds must not hide a write that fails each time. A read that succeeds ends
only the reads' streak; the breaker closes when a write succeeds. A write AWS
refused for good (a missing permission, a rejected value) opens the breaker at
once: repeating it each tick only repeats the refusal.

Opening is audited when the breaker opens from closed, and recovery when it
closes; a probe that fails after a cool-off reopens it without a new event.

A person can close it before the cool-off ends (`reset`): a Test connection that
reads the resource, or an edit of the service's backend settings. Both are audited
as recovery, with that person as the actor.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction

from scaling.audit import Actor, EventType, audit_record
from scaling.backends.base import ActuatorError, BackendError
from scaling.models import ActuatorHealth, Service

DEFAULT_ERRORS = 3
DEFAULT_COOLOFF_S = 300


def thresholds(service: Service) -> tuple[int, int]:
    cfg: dict[str, Any] = service.backend_config or {}
    errors = int(cfg.get("breaker_errors") or getattr(settings, "TIPOFF_BREAKER_ERRORS", DEFAULT_ERRORS) or 1)
    cooloff = int(cfg.get("breaker_cooloff_s") or getattr(settings, "TIPOFF_BREAKER_COOLOFF_S", DEFAULT_COOLOFF_S) or 1)
    return max(errors, 1), max(cooloff, 1)


def health_of(service: Service) -> ActuatorHealth | None:
    if service.pk is None:
        return None
    return ActuatorHealth.objects.filter(service_id=service.pk).first()


def check(service: Service, now: datetime) -> None:
    """Raise instead of calling AWS while the breaker is open."""
    health = health_of(service)
    if health is not None and health.unavailable_at(now):
        assert health.open_until is not None  # noqa: S101 - narrowed by unavailable_at
        raise ActuatorError(
            f"actuator unavailable until {health.open_until:%Y-%m-%d %H:%M:%S} UTC after "
            f"{health.consecutive_errors} consecutive errors; last error: {health.last_error}",
            permanent=False,
        )


def record_failure(service: Service, now: datetime, exc: BackendError, *, write: bool = False) -> None:
    if service.pk is None:
        return
    limit, cooloff_s = thresholds(service)
    with transaction.atomic():
        ActuatorHealth.objects.get_or_create(service_id=service.pk)
        health = ActuatorHealth.objects.select_for_update().get(service_id=service.pk)
        health.consecutive_errors += 1
        health.write_errors += int(write)
        health.last_error = str(exc)[:2000]
        health.last_error_at = now
        fields = ["consecutive_errors", "write_errors", "last_error", "last_error_at", "updated_at"]
        opens = health.consecutive_errors >= limit or (write and exc.permanent)
        if opens and not health.unavailable_at(now):
            was_closed = health.open_until is None
            health.open_until = now + timedelta(seconds=cooloff_s)
            fields.append("open_until")
            if was_closed:
                _audit(
                    service,
                    EventType.ACTUATOR_UNAVAILABLE,
                    before={"consecutive_errors": health.consecutive_errors - 1},
                    after={"consecutive_errors": health.consecutive_errors, "open_until": health.open_until},
                    reason=f"actuator unavailable for {cooloff_s} s after {health.consecutive_errors} consecutive "
                    f"errors; last error: {health.last_error}",
                    at=now,
                )
        health.save(update_fields=fields)


def record_success(service: Service, now: datetime, *, wrote: bool = False) -> None:
    """A call answered. `wrote`: it set capacity, which ends the writes' streak and closes the breaker."""
    if service.pk is None:
        return
    # Cheap read first: a healthy service writes nothing on success.
    if not ActuatorHealth.objects.filter(service_id=service.pk, consecutive_errors__gt=0).exists():
        return
    with transaction.atomic():
        health = ActuatorHealth.objects.select_for_update().get(service_id=service.pk)
        if not wrote and health.write_errors:
            # The reads' streak ends; the writes' stands, and keeps the breaker as it is.
            if health.consecutive_errors != health.write_errors:
                health.consecutive_errors = health.write_errors
                health.save(update_fields=["consecutive_errors", "updated_at"])
            return
        if health.consecutive_errors == 0:
            return
        was_open = health.open_until is not None
        errors = health.consecutive_errors
        health.consecutive_errors = health.write_errors = 0
        health.open_until = None
        health.last_ok_at = now
        health.save(update_fields=["consecutive_errors", "write_errors", "open_until", "last_ok_at", "updated_at"])
        if was_open:
            _audit(
                service,
                EventType.ACTUATOR_RECOVERED,
                before={"consecutive_errors": errors},
                after={"consecutive_errors": 0},
                reason="actuator answered again; calls resume",
                at=now,
            )


def reset(service: Service, now: datetime, *, actor: Actor, reason: str, reads_only: bool = False) -> str:
    """Close the breaker because a person showed the cause is gone; returns what changed ("" for nothing).

    `reads_only`: what showed it was a read (Test connection makes no write). It ends the reads' streak; if
    writes failed too, only a write can show they are fixed, so the cool-off ends instead ("cooloff_ended"):
    the next tick lets one update through, and a refusal reopens the breaker. Otherwise (the backend settings
    changed, so the errors were another configuration's) every streak ends and the breaker closes ("closed").
    """
    if service.pk is None:
        return ""
    with transaction.atomic():
        health = ActuatorHealth.objects.select_for_update().filter(service_id=service.pk).first()
        if health is None or (health.consecutive_errors == 0 and health.open_until is None):
            return ""
        before = {"consecutive_errors": health.consecutive_errors, "open_until": health.open_until}
        was_open = health.unavailable_at(now)
        if reads_only and health.write_errors:
            if not was_open and health.consecutive_errors == health.write_errors:
                return ""
            health.consecutive_errors = health.write_errors
            health.open_until = now if was_open else health.open_until
            outcome = "cooloff_ended"
            said = f"{reason}; writes failed too, so the cool-off ends and the next update is let through"
        else:
            health.consecutive_errors = health.write_errors = 0
            health.open_until = None
            health.last_ok_at = now
            outcome = "closed"
            said = f"{reason}; calls resume"
        health.save(update_fields=["consecutive_errors", "write_errors", "open_until", "last_ok_at", "updated_at"])
        if was_open:
            _audit(
                service,
                EventType.ACTUATOR_RECOVERED,
                actor=actor,
                before=before,
                after={"consecutive_errors": health.consecutive_errors, "open_until": health.open_until},
                reason=said,
                at=now,
            )
    return outcome


def _audit(service: Service, event_type: EventType, *, actor: Actor | None = None, **event: Any) -> None:
    """The breaker opening or closing, on the service's record."""
    audit_record(
        actor=actor or Actor.system("breaker"),
        event_type=event_type,
        service=service,
        object_type="service",
        object_id=service.pk,
        **event,
    )


def set_note(service: Service, note: str) -> None:
    """Remember what the backend says about who owns capacity (shown on the fleet page)."""
    if service.pk is None:
        return
    note = note[:300]
    updated = ActuatorHealth.objects.filter(service_id=service.pk).exclude(note=note).update(note=note)
    if not updated and note and not ActuatorHealth.objects.filter(service_id=service.pk).exists():
        ActuatorHealth.objects.get_or_create(service_id=service.pk, defaults={"note": note})
