"""Reads of the audit log: one filter, seek (keyset) pages, and a streaming iterator for exports."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

from django.contrib.auth import get_user_model
from django.db.models import Q, QuerySet, Value
from django.db.models.functions import Left
from django.db.models.lookups import Exact

from scaling.audit import EventType
from scaling.models import AuditEvent, Service

PAGE_SIZE = 50
EVENT_DOMAINS = tuple(sorted({str(t).split(".")[0] for t in EventType}))


@dataclass(frozen=True)
class AuditFilter:
    since: datetime | None = None
    until: datetime | None = None
    service: str = ""  # Service.name
    actor: str = ""  # a username (all they did, on the pages and with their tokens), or an exact actor label
    event_type: str = ""  # "override.created", or a whole domain: "override"
    q: str = ""  # free text in the reason or the actor
    object_type: str = ""
    object_id: str = ""


@dataclass(frozen=True)
class AuditPage:
    events: list[AuditEvent]
    older_cursor: int | None  # pass as before= for the next (older) page
    newer_cursor: int | None  # pass as after= for the previous (newer) page


def audit_events(f: AuditFilter) -> QuerySet[AuditEvent]:
    """The filtered events, newest first. Every filter is served by an index (see AuditEvent.Meta)."""
    qs = AuditEvent.objects.all()
    if f.since is not None:
        qs = qs.filter(created_at__gte=f.since)
    if f.until is not None:
        qs = qs.filter(created_at__lt=f.until)
    if f.service:
        service_id = Service.objects.filter(name=f.service).values_list("id", flat=True).first()
        qs = qs.filter(service_id=service_id) if service_id is not None else qs.none()
    if f.actor:
        qs = qs.filter(_by_actor(f.actor))
    if f.event_type:
        if "." in f.event_type:
            qs = qs.filter(event_type=f.event_type)
        else:
            qs = qs.filter(event_type__startswith=f.event_type + ".")
    if f.q:
        qs = qs.filter(Q(reason__icontains=f.q) | Q(actor_label__icontains=f.q))
    if f.object_type:
        qs = qs.filter(object_type=f.object_type)
        if f.object_id:
            qs = qs.filter(object_id=f.object_id)
    return qs.order_by("-id")


def _by_actor(actor: str) -> Q:
    """The events of one actor label, and when it is a person's name, everything that person did.

    A token's events are labelled "<username> (token <name>)" (scaling.audit.Actor), so an exact label found
    only the pages' half. A person is matched by the user the event names (a rename since keeps them) and by
    the labels recorded under the name (a user deleted since has none to name). Usernames hold no spaces, so
    "operator (token " does not start "operator2 (token ...".
    """
    # istartswith is UPPER(actor_label) LIKE ..., which the trigram index on UPPER(actor_label) serves (on
    # PostgreSQL); the label's first characters then must equal the prefix as typed. (A plain startswith would
    # not do: LIKE ignores case on SQLite, where "operator" took "Operator (token ci)".)
    token = f"{actor} (token "
    prefix: Exact[str] = Exact(Left("actor_label", len(token)), Value(token))
    match = Q(actor_label=actor) | (Q(actor_label__istartswith=token) & Q(prefix))
    user_model = get_user_model()
    user_id = user_model._default_manager.filter(**{user_model.USERNAME_FIELD: actor}).values_list("pk", flat=True)
    if (found := user_id.first()) is not None:
        match |= Q(actor_user_id=found)
    return match


def audit_page(
    f: AuditFilter, *, before: int | None = None, after: int | None = None, size: int = PAGE_SIZE
) -> AuditPage:
    """One page by seeking on id: cost stays the same on page 1 and page 20,000."""
    qs = audit_events(f).select_related("service")
    if after is not None:
        rows = list(qs.filter(id__gt=after).order_by("id")[: size + 1])
        has_newer = len(rows) > size
        events = rows[:size][::-1]
        has_older = True
    else:
        if before is not None:
            qs = qs.filter(id__lt=before)
        rows = list(qs[: size + 1])
        has_older = len(rows) > size
        events = rows[:size]
        has_newer = before is not None
    return AuditPage(
        events=events,
        older_cursor=events[-1].pk if events and has_older else None,
        newer_cursor=events[0].pk if events and has_newer else None,
    )


def audit_export_rows(f: AuditFilter, *, chunk_size: int = 2000) -> Iterator[AuditEvent]:
    """Every matching event, fetched in chunks (a server-side cursor on PostgreSQL), never all in memory."""
    return audit_events(f).select_related("service").iterator(chunk_size=chunk_size)


def actor_labels(limit: int = 200) -> list[str]:
    """Recent distinct actors, for the filter's suggestions (bounded: cheap at a million events)."""
    recent = AuditEvent.objects.order_by("-id").values_list("actor_label", flat=True)[:5000]
    return sorted(set(recent))[:limit]
