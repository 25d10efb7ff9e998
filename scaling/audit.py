"""Audit event types (grouped by domain) and the append-only, hash-chained writer."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from django.db import transaction
from django.utils import timezone

from scaling.models import AuditChainHead, AuditEvent, Service


class EventType(StrEnum):
    # engine
    DECISION_SCALED = "decision.scaled"
    DECISION_BLOCKED = "decision.blocked"
    DECISION_DRY_RUN = "decision.dry_run"
    # actuators
    ACTUATOR_OK = "actuator.ok"
    ACTUATOR_ERROR = "actuator.error"
    ACTUATOR_BUSY = "actuator.busy"
    ACTUATOR_STALE = "actuator.stale"
    ACTUATOR_UNAVAILABLE = "actuator.unavailable"
    ACTUATOR_RECOVERED = "actuator.recovered"
    # coexistence with AWS Application Auto Scaling
    AUTOSCALING_SUSPENDED = "autoscaling.suspended"
    AUTOSCALING_BOUNDS_SET = "autoscaling.bounds_set"
    AUTOSCALING_RESTORED = "autoscaling.restored"
    # services and policies
    SERVICE_CREATED = "service.created"
    SERVICE_UPDATED = "service.updated"
    SERVICE_MODE_CHANGED = "service.mode_changed"
    POLICY_CHANGED = "policy.changed"
    # overrides
    OVERRIDE_CREATED = "override.created"
    OVERRIDE_APPROVED = "override.approved"
    OVERRIDE_REJECTED = "override.rejected"
    OVERRIDE_STARTED = "override.started"
    OVERRIDE_EXPIRED = "override.expired"
    OVERRIDE_CANCELLED = "override.cancelled"
    OVERRIDE_EXTENDED = "override.extended"
    OVERRIDE_REFUSED = "override.refused"
    OVERRIDE_MOVED = "override.moved"
    # schedule
    SCHEDULE_IMPORTED = "schedule.imported"
    RULE_CREATED = "rule.created"
    RULE_UPDATED = "rule.updated"
    RULE_DELETED = "rule.deleted"
    # access
    AUTH_LOGIN = "auth.login"
    AUTH_LOGIN_FAILED = "auth.login_failed"
    AUTH_LOGOUT = "auth.logout"
    AUTH_DENIED = "auth.permission_denied"
    TOKEN_CREATED = "token.created"
    TOKEN_REVOKED = "token.revoked"
    TOKEN_USED = "token.used"
    # audit itself
    AUDIT_ARCHIVED = "audit.archived"


@dataclass(frozen=True)
class Actor:
    """Who did it: a user, an API token (acting for its user), or the system."""

    type: str
    label: str
    user_id: int | None = None

    @classmethod
    def system(cls, identity: str = "tipoff") -> Actor:
        return cls(AuditEvent.ActorType.SYSTEM, f"system:{identity}")

    @classmethod
    def for_user(cls, user: Any) -> Actor:
        return cls(AuditEvent.ActorType.USER, user.get_username(), user.pk)


GENESIS_HASH = "0" * 64


def canonical(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str, ensure_ascii=False).encode()


def chain_hash(prev_hash: str, payload: dict[str, Any]) -> str:
    return hashlib.sha256(prev_hash.encode() + b"\n" + canonical(payload)).hexdigest()


def audit_record(
    *,
    actor: Actor,
    event_type: EventType,
    service: Service | None = None,
    object_type: str = "",
    object_id: str | int = "",
    before: Any = None,
    after: Any = None,
    reason: str = "",
    cost_impact_per_hour: float | None = None,
    at: datetime | None = None,
) -> AuditEvent:
    """Append one event to the chain. Must run inside the transaction of the change it records."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("audit_record must run inside the transaction of the change it records")
    head, _ = AuditChainHead.objects.get_or_create(pk=1)
    head = AuditChainHead.objects.select_for_update().get(pk=1)
    event = AuditEvent(
        created_at=at or timezone.now(),
        actor_type=actor.type,
        actor_user_id=actor.user_id,
        actor_label=actor.label,
        service=service,
        event_type=str(event_type),
        object_type=object_type,
        object_id=str(object_id),
        before=before,
        after=after,
        reason=reason,
        cost_impact_per_hour=cost_impact_per_hour,
        prev_hash=head.last_hash,
    )
    # Round-trip through JSON so the hash covers exactly what the database stores.
    event.before = json.loads(canonical({"v": before}))["v"]
    event.after = json.loads(canonical({"v": after}))["v"]
    event.hash = chain_hash(head.last_hash, event.payload())
    event.save(force_insert=True)
    head.last_hash = event.hash
    head.last_event_id = event.pk
    head.save(update_fields=["last_hash", "last_event_id"])
    return event
