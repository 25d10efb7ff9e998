"""The audit review query through the API: the same filters and seek pages as /audit/."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.http import HttpRequest
from ninja import Query, Router, Schema, Status
from pydantic import Field

from dashboard.api_errors import ApiError
from scaling.audit import EventType, latest_verification
from scaling.audit_selectors import EVENT_DOMAINS, AuditFilter, audit_page
from scaling.models import Service

router = Router(tags=["audit"])


class AuditQuery(Schema):
    since: datetime | None = None
    until: datetime | None = None
    service: str = Field("", max_length=64)
    actor: str = Field(
        "",
        max_length=200,
        description="A username: everything they did, in the UI and with their API tokens. "
        'Any other actor (a system one, or one token: "operator (token ci)"): that exact label.',
    )
    event_type: str = Field(
        "", max_length=60, description='One event type ("override.created") or a whole domain of them ("override").'
    )
    q: str = Field("", max_length=200)
    object_type: str = Field("", max_length=40)
    object_id: str = Field("", max_length=64)
    before: int | None = Field(None, ge=1, description="seek: events older than this id")
    after: int | None = Field(None, ge=0, description="seek: events newer than this id")
    limit: int = Field(50, ge=1, le=500)


class AuditEventOut(Schema):
    id: int
    created_at: datetime
    actor_type: str
    actor: str
    service: str | None
    event_type: str
    object_type: str
    object_id: str
    reason: str
    cost_impact_per_hour: float | None
    before: Any
    after: Any
    prev_hash: str
    hash: str


class AuditPageOut(Schema):
    events: list[AuditEventOut]
    older_cursor: int | None = Field(description="pass as before= for the next, older page")
    newer_cursor: int | None = Field(description="pass as after= for the previous, newer page")


class ChainBreakOut(Schema):
    event_id: int | None = Field(description="the event where the chain stops holding (null: none can be named)")
    reason: str


class VerificationOut(Schema):
    ran_at: datetime | None
    ok: bool | None
    events_checked: int
    first_broken_id: int | None
    message: str
    broken_count: int = Field(
        description="how many links are broken: 0 when intact (and on runs recorded before the count was kept)"
    )
    breaks: list[ChainBreakOut] = Field(description="the first broken links, in chain order (at most 20)")


# What the page's Event choice offers: each event type, and each domain of them.
EVENT_TYPES = frozenset({*(str(t) for t in EventType), *EVENT_DOMAINS})


def _query_problem(query: AuditQuery) -> tuple[str, str] | None:
    """(field, what is wrong) for a filter that could only ever match nothing, as the page refuses it."""
    if query.since and query.until and query.since >= query.until:
        return "until", f"until ({query.until.isoformat()}) must be later than since ({query.since.isoformat()})"
    if query.event_type and query.event_type not in EVENT_TYPES:
        domains = ", ".join(EVENT_DOMAINS)
        return "event_type", f"unknown event type {query.event_type!r}: an event type, or one of its domains: {domains}"
    if query.service and not Service.objects.filter(name=query.service).exists():
        return "service", f"unknown service {query.service!r}"
    return None


@router.get("/events", response=AuditPageOut)
def list_audit_events(request: HttpRequest, query: Query[AuditQuery]) -> Status[dict[str, Any]]:
    """Audit events, newest first, filtered as on /audit/; a filter that names nothing that exists is refused
    (422 naming it), not answered with an empty page."""
    if problem := _query_problem(query):
        field, message = problem
        raise ApiError(f"{field}: {message}", field=field, message=message)
    f = AuditFilter(
        since=query.since,
        until=query.until,
        service=query.service,
        actor=query.actor,
        event_type=query.event_type,
        q=query.q,
        object_type=query.object_type,
        object_id=query.object_id,
    )
    page = audit_page(f, before=query.before, after=query.after, size=query.limit)
    events = [
        {
            "id": e.pk,
            "created_at": e.created_at,
            "actor_type": e.actor_type,
            "actor": e.actor_label,
            "service": e.service.name if e.service_id and e.service else None,
            "event_type": e.event_type,
            "object_type": e.object_type,
            "object_id": e.object_id,
            "reason": e.reason,
            "cost_impact_per_hour": e.cost_impact_per_hour,
            "before": e.before,
            "after": e.after,
            "prev_hash": e.prev_hash,
            "hash": e.hash,
        }
        for e in page.events
    ]
    return Status(200, {"events": events, "older_cursor": page.older_cursor, "newer_cursor": page.newer_cursor})


@router.get("/verification", response=VerificationOut)
def audit_verification(request: HttpRequest) -> dict[str, Any]:
    """The latest run of verify_audit (the periodic task)."""
    v = latest_verification()
    if v is None:
        return {
            "ran_at": None,
            "ok": None,
            "events_checked": 0,
            "first_broken_id": None,
            "message": "not run yet",
            "broken_count": 0,
            "breaks": [],
        }
    return {
        "ran_at": v.ran_at,
        "ok": v.ok,
        "events_checked": v.events_checked,
        "first_broken_id": v.first_broken_id,
        "message": v.message,
        "broken_count": v.broken_count,
        "breaks": v.breaks,
    }
