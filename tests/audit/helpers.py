"""Build audit chains and tamper with them the way someone with database access could."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import timedelta

from django.db import connection, transaction

from scaling.audit import Actor, EventType, audit_record, chain_hash
from scaling.models import AuditChainHead, AuditEvent
from tests.factories import T0

SPACING = 10


def make_chain(n: int) -> list[AuditEvent]:
    """n chained events, then ids spread out (ids are not hashed) so a forged row fits between any two."""
    with transaction.atomic():
        for i in range(n):
            audit_record(
                actor=Actor.system("test"),
                event_type=EventType.DECISION_SCALED,
                object_type="decision",
                object_id=i,
                before={"desired": i},
                after={"desired": i + 1},
                reason=f"event {i}",
                cost_impact_per_hour=0.5 * i,
                at=T0 + timedelta(minutes=i),
            )
    with tampering(), connection.cursor() as cursor:
        table = AuditEvent._meta.db_table
        ids = list(AuditEvent.objects.order_by("id").values_list("id", flat=True))
        cursor.execute(f"UPDATE {table} SET id = -id")  # noqa: S608 - fixed table name
        for position, old_id in enumerate(ids, start=1):
            cursor.execute(f"UPDATE {table} SET id = %s WHERE id = %s", [position * SPACING, -old_id])  # noqa: S608
        if connection.vendor == "postgresql" and ids:
            cursor.execute("SELECT setval(pg_get_serial_sequence(%s, 'id'), %s)", [table, len(ids) * SPACING])
    events = list(AuditEvent.objects.order_by("id"))
    AuditChainHead.objects.filter(pk=1).update(last_event_id=events[-1].pk if events else 0)
    return events


@contextlib.contextmanager
def tampering() -> Iterator[None]:
    """Direct writes to the audit table; on PostgreSQL the append-only trigger is switched off meanwhile."""
    table = AuditEvent._meta.db_table
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute(f"ALTER TABLE {table} DISABLE TRIGGER scaling_auditevent_append_only")
        yield
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute(f"ALTER TABLE {table} ENABLE TRIGGER scaling_auditevent_append_only")


def forge_after(events: list[AuditEvent], position: int, *, reason: str = "forged") -> AuditEvent:
    """Insert a well-formed event (correct hash over its own content) at `position` in the chain."""
    prev = events[position - 1] if position > 0 else None
    forged = AuditEvent(
        id=(prev.pk if prev else 0) + SPACING // 2,
        created_at=(prev.created_at if prev else T0) + timedelta(seconds=1),
        actor_type="system",
        actor_label="system:forger",
        event_type=str(EventType.OVERRIDE_CREATED),
        object_type="override",
        object_id="999",
        reason=reason,
        prev_hash=prev.hash if prev else "0" * 64,
    )
    forged.hash = chain_hash(forged.prev_hash, forged.payload())
    forged.save(force_insert=True)
    return forged
