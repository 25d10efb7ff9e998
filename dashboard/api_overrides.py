"""API: overrides (create, list, preview, cancel, extend, approve, reject), games, game-day rules, schedule import.

Mounted on the NinjaAPI in dashboard/api.py, with the same capabilities as the UI:
"operate" creates, cancels and extends; "approve" approves and rejects;
"administer" manages rules, imports schedules and may bypass approval with a
reason. Times are ISO 8601 with a UTC offset; a second pin overlapping an
existing one gets 409 naming it unless `replace` is true. Refusals answer in the
API's one error shape (dashboard/api_errors.py).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Literal
from uuid import UUID

from django.http import HttpRequest
from django.shortcuts import get_object_or_404
from django.utils import timezone
from ninja import Field, File, Router, Schema, Status
from ninja.files import UploadedFile

from dashboard.api_auth import require_capability
from dashboard.api_errors import ApiError, ErrorOut, error_body, refused
from dashboard.permissions import can
from scaling import override_selectors as reads
from scaling.audit import Actor
from scaling.models import Game, GameDayRule, Override, Service
from scaling.overrides import (
    REASON_MAX_CHARS,
    OverrideConflict,
    OverrideError,
    approval_need,
    check_replicas,
    check_service,
    check_window,
    override_approve,
    override_cancel,
    override_create,
    override_extend,
    override_reject,
)
from scaling.schedule.parse import ScheduleError, decode_schedule
from scaling.schedule.rules import RuleError, RuleSpec, match_warnings, rule_create, rule_delete, rule_update
from scaling.schedule.services import schedule_import

router = Router(tags=["overrides"])


def _actor(request: HttpRequest) -> Actor:
    return Actor.for_request(request)


class OverrideOut(Schema):
    id: int
    service: str
    group_id: UUID
    kind: str
    replicas: int | None
    reason: str
    starts_at: datetime
    ends_at: datetime
    status: str = Field(description="As stored: pending_approval | approved | rejected | cancelled.")
    state: str = Field(
        description="The status read against the window now, as the overrides list shows it: pending (awaits "
        "approval), lapsed (its window ended before anyone approved it), approved (scheduled), active (in force), "
        "expired (its window is over), cancelled or rejected."
    )
    created_by: str | None
    approved_by: str | None
    approved_at: datetime | None
    rejected_by: str | None = Field(description="Who rejected it (null unless rejected).")
    rejected_at: datetime | None
    cancelled_by: str | None = Field(
        description="Who cancelled it; null unless cancelled, and when Tipoff itself did (a game-day rule changed, "
        "an import moved or removed its game): `cancel_reason` says why."
    )
    cancelled_at: datetime | None
    bypass_reason: str
    approval_needed_because: str = Field(
        description="Why it needed a second person's approval, as decided when it was asked for: its size, or the "
        "requester's adjacent overrides on the service that no second person approved (named), with which it is "
        "above the cost threshold; empty when it needed none."
    )
    cancel_reason: str
    game_id: str | None
    rule: str | None
    projected_cost_delta: float | None
    version: int = Field(
        description="Counts the override's changes (moved, extended, decided): name it in an approval to approve "
        "only what you read."
    )

    @staticmethod
    def resolve_service(obj: Override) -> str:
        return obj.service.name

    @staticmethod
    def resolve_created_by(obj: Override) -> str | None:
        return obj.created_by.get_username() if obj.created_by else None

    @staticmethod
    def resolve_approved_by(obj: Override) -> str | None:
        return obj.approved_by.get_username() if obj.approved_by else None

    @staticmethod
    def resolve_state(obj: Override) -> str:
        return reads.override_state(obj, now=timezone.now())

    # Rejecting and cancelling store who and when in the same columns (cancelled_by, cancelled_at); the status
    # says which it was.
    @staticmethod
    def resolve_rejected_by(obj: Override) -> str | None:
        return _closed_by(obj, Override.Status.REJECTED)

    @staticmethod
    def resolve_rejected_at(obj: Override) -> datetime | None:
        return obj.cancelled_at if obj.status == Override.Status.REJECTED else None

    @staticmethod
    def resolve_cancelled_by(obj: Override) -> str | None:
        return _closed_by(obj, Override.Status.CANCELLED)

    @staticmethod
    def resolve_cancelled_at(obj: Override) -> datetime | None:
        return obj.cancelled_at if obj.status == Override.Status.CANCELLED else None

    @staticmethod
    def resolve_game_id(obj: Override) -> str | None:
        return obj.game.game_id if obj.game else None

    @staticmethod
    def resolve_rule(obj: Override) -> str | None:
        return obj.rule.name if obj.rule else None


def _closed_by(obj: Override, status: str) -> str | None:
    if obj.status != status or obj.cancelled_by is None:
        return None
    return obj.cancelled_by.get_username()


class PreviewIn(Schema):
    """What an override would be: all a preview needs (as the page's preview, no reason)."""

    services: list[str] = Field(..., description="Service names; one override each, created or refused as a group.")
    kind: str = Field(..., description="pin | floor | ceiling | freeze_scale_in | freeze")
    replicas: int | None = Field(None, description="Required for pin, floor and ceiling.")
    starts_at: datetime | None = Field(None, description="ISO 8601 with offset; omitted = now.")
    ends_at: datetime = Field(..., description="ISO 8601 with offset; required.")


class OverrideIn(PreviewIn):
    reason: str = Field(..., max_length=REASON_MAX_CHARS)
    replace: bool = Field(False, description="Replace an overlapping pin instead of getting 409.")
    bypass_reason: str = Field(
        "", max_length=REASON_MAX_CHARS, description="Admins only: skip the second person's approval, with this reason."
    )
    game_id: str | None = Field(None, description="Link to a game (league game id); a moved tip-off moves it.")


class ConflictOut(ErrorOut):
    existing: OverrideOut


class ReasonIn(Schema):
    reason: str = Field(..., max_length=REASON_MAX_CHARS)


class ApproveIn(Schema):
    reason: str = Field("", max_length=REASON_MAX_CHARS, description="An optional note, kept with the approval.")
    version: int | None = Field(
        None,
        ge=1,
        description="Optional: the override's `version` as you read it. Given, the approval is refused (409, "
        "naming what changed) if the override changed since or is no longer pending; left out, the override is "
        "approved as it stands when the request arrives.",
    )


class ExtendIn(Schema):
    ends_at: datetime
    reason: str = Field(..., max_length=REASON_MAX_CHARS)
    bypass_reason: str = Field(
        "",
        max_length=REASON_MAX_CHARS,
        description="Admins only: extend past what needs approval without a second person, with this reason.",
    )


class PreviewOut(Schema):
    service: str
    forecast_replicas: int
    override_replicas: int
    hours: float
    projected_cost_delta: float
    projected_cost_per_hour: float  # projected_cost_delta over the window's hours
    overruled_by_pins: list[int]  # pending or approved pins in the window that the engine follows instead
    needs_approval: bool
    approval_needed_because: str = Field(
        description="Why it would wait for a second person's approval (its size, or your adjacent overrides on the "
        "service that no second person approved, named, with which it is above the cost threshold); empty if not."
    )


class GameOut(Schema):
    game_id: str
    tip_utc: datetime
    away_team: str
    home_team: str
    season_type: str
    national_tv: str
    label: str
    sub_label: str
    postponed: bool
    tbd: bool = Field(False, description="Teams and tip-off not yet set: tip_utc is the schedule's placeholder.")


class RuleIn(Schema):
    name: str = Field(..., max_length=120)
    services: list[str]
    match: dict[str, Any] = Field(
        ...,
        description="Any of national_tv (true/false); networks, teams, season_types, labels (lists of strings); "
        "weekdays (list of numbers, 0 = Monday). A value of another type is refused, naming its key.",
    )
    reason: str = Field(..., max_length=300)
    floor_replicas: int | None = None
    floor_forecast_multiple: float | None = Field(None, description="0.1 to 20; give this or floor_replicas.")
    lead_minutes: int | None = Field(None, description="Default: the service's provisioning delay + 15 min.")
    tail_minutes: int = 180
    enabled: bool = True


class RuleOut(Schema):
    id: int
    name: str
    enabled: bool
    services: list[str]
    match: dict[str, Any]
    reason: str
    floor_replicas: int | None
    floor_forecast_multiple: float | None
    lead_minutes: int | None
    tail_minutes: int
    scheduled_overrides: int  # pending or approved and not yet over (override_selectors.rules_list)
    warnings: list[str]  # e.g. a network no game on the calendar is on (allowed: a TV deal not yet scheduled)

    @staticmethod
    def resolve_services(obj: GameDayRule) -> list[str]:
        return sorted(s.name for s in obj.services.all())

    @staticmethod
    def resolve_warnings(obj: GameDayRule) -> list[str]:
        return match_warnings(obj.match or {}) + reads.rule_approval_warnings(obj)


class ImportOut(Schema):
    created: int
    updated: int
    unchanged: int
    overrides_moved: int
    overrides_cancelled: int
    overrides_scheduled: int
    demo_games_removed: int


def _aware(value: datetime | None, field: str) -> None:
    if value is not None and value.tzinfo is None:
        message = "give a UTC offset (e.g. 2026-01-15T19:30:00-05:00 or ...Z)"
        raise ApiError(f"{field}: {message}", field=field, message=message)


def _services(names: list[str]) -> list[Service]:
    found = {s.name: s for s in Service.objects.filter(name__in=names)}
    missing = [n for n in names if n not in found]
    if missing:
        message = f"unknown service(s) {', '.join(missing)}"
        raise ApiError(f"services: {message}", field="services", message=message)
    return [found[n] for n in dict.fromkeys(names)]


def _conflict(exc: OverrideConflict) -> Status[Any]:
    """409 naming the pin in the way, in the error shape with the pin added."""
    return Status(409, {**error_body(str(exc), field=exc.field), "existing": _override(exc.existing.pk)})


def _override(pk: int) -> Override:
    return get_object_or_404(
        Override.objects.select_related("service", "created_by", "approved_by", "cancelled_by", "game", "rule"), pk=pk
    )


# The stored statuses (Override.Status), spelled out so that the schema lists them and an unknown one ("pending",
# a typo) is refused naming the ones there are, rather than answered with an empty list.
StatusName = Literal["pending_approval", "approved", "rejected", "cancelled"]


API_LIST_LIMIT = 1000  # the latest-starting, in order of start: the oldest of a season are left out first


@router.get("/overrides", response=list[OverrideOut])
def list_overrides(
    request: HttpRequest, service: str | None = None, status: StatusName | None = None, include_past: bool = False
) -> list[Override]:
    svc = get_object_or_404(Service, name=service) if service else None
    rows = reads.overrides_list(now=timezone.now(), service=svc, status=status, include_past=include_past)
    return reads.latest_overrides(rows, API_LIST_LIMIT)[0]


@router.get("/overrides/{int:pk}", response=OverrideOut)
def get_override(request: HttpRequest, pk: int) -> Override:
    return _override(pk)


@router.post("/overrides", response={201: list[OverrideOut], 409: ConflictOut})
def create_override(request: HttpRequest, payload: OverrideIn) -> Status[Any]:
    require_capability(request, "operate")
    _aware(payload.starts_at, "starts_at")
    _aware(payload.ends_at, "ends_at")
    game = get_object_or_404(Game, game_id=payload.game_id) if payload.game_id else None
    if game is not None and game.tbd:
        detail = f"game {game.game_id}: its teams and tip-off are not yet set, so there is nothing to link to"
        raise ApiError(detail, field="game_id")
    try:
        created = override_create(
            services=_services(payload.services),
            kind=payload.kind,
            replicas=payload.replicas,
            starts_at=payload.starts_at or timezone.now(),
            ends_at=payload.ends_at,
            reason=payload.reason,
            actor=_actor(request),
            admin=can(request.user, "administer"),
            bypass_reason=payload.bypass_reason,
            replace=payload.replace,
            game=game,
        )
    except OverrideConflict as exc:
        return _conflict(exc)
    except OverrideError as exc:
        raise refused(exc) from exc
    return Status(201, [_override(o.pk) for o in created])


@router.post("/overrides/preview", response=list[PreviewOut])
def preview_override(request: HttpRequest, payload: PreviewIn) -> Status[Any]:
    """What the override would do: the policy's forecast replicas vs the override's, and the projected cost.

    Takes the body of a create; a reason and the rest are not needed, and ignored when given."""
    _aware(payload.starts_at, "starts_at")
    _aware(payload.ends_at, "ends_at")
    now = timezone.now()
    try:
        # The create's own checks, as the form's preview makes them. The window first, before pricing, which
        # forecasts every 5 minutes of it: a mistyped year would take seconds to hours.
        admin = can(request.user, "administer")
        check_replicas(kind=payload.kind, replicas=payload.replicas)
        start = check_window(
            kind=payload.kind, starts_at=payload.starts_at or now, ends_at=payload.ends_at, now=now, admin=admin
        )
    except OverrideError as exc:
        raise refused(exc) from exc
    rows = []
    requester_id = _actor(request).user_id
    for service in _services(payload.services):
        try:
            check_service(
                service, kind=payload.kind, replicas=payload.replicas, starts_at=start, ends_at=payload.ends_at
            )
        except OverrideError as exc:
            raise refused(exc) from exc
        p = reads.override_preview(
            service, kind=payload.kind, replicas=payload.replicas, starts_at=start, ends_at=payload.ends_at, now=now
        )
        need = approval_need(
            service,
            requester_id=requester_id,
            replicas=payload.replicas,
            cost_delta=p.cost_delta,
            starts_at=start,
            ends_at=payload.ends_at,
            now=now,
        )
        rows.append(
            {
                "service": service.name,
                "forecast_replicas": p.forecast,
                "override_replicas": p.effective,
                "hours": round(p.hours, 3),
                "projected_cost_delta": p.cost_delta,
                "projected_cost_per_hour": round(p.cost_per_hour, 2),
                "overruled_by_pins": [o.pk for o in p.overruled_by],
                "needs_approval": need.needed,
                "approval_needed_because": need.because,
            }
        )
    return Status(200, rows)


@router.post("/overrides/{int:pk}/cancel", response={200: OverrideOut, 409: ErrorOut})
def cancel_override(request: HttpRequest, pk: int, payload: ReasonIn) -> Status[Any]:
    require_capability(request, "operate")
    override = _override(pk)
    try:
        done = override_cancel(override=override, actor=_actor(request), reason=payload.reason)
    except OverrideError as exc:
        raise refused(exc) from exc
    if not done:
        raise ApiError(f"override #{pk} had already ended or been cancelled", status=409)
    return Status(200, _override(pk))


@router.post("/overrides/{int:pk}/extend", response={200: OverrideOut, 409: ConflictOut})
def extend_override(request: HttpRequest, pk: int, payload: ExtendIn) -> Status[Any]:
    require_capability(request, "operate")
    _aware(payload.ends_at, "ends_at")
    try:
        override_extend(
            override=_override(pk),
            ends_at=payload.ends_at,
            actor=_actor(request),
            reason=payload.reason,
            admin=can(request.user, "administer"),
            bypass_reason=payload.bypass_reason,
        )
    except OverrideConflict as exc:
        return _conflict(exc)
    except OverrideError as exc:
        raise refused(exc) from exc
    return Status(200, _override(pk))


@router.post("/overrides/{int:pk}/approve", response={200: list[OverrideOut], 409: ErrorOut})
def approve_override(request: HttpRequest, pk: int, payload: ApproveIn | None = None) -> Status[Any]:
    """Approve a pending override (and the rest of its group). The requester cannot approve their own.

    No body is needed; one may carry a note (`reason`) and the `version` of the override that was read, to
    approve only that: an override changed since is refused with 409 and nothing is approved."""
    require_capability(request, "approve")
    note = payload.reason if payload is not None else ""
    seen = {pk: payload.version} if payload is not None and payload.version is not None else None
    try:
        group = override_approve(override=_override(pk), actor=_actor(request), reason=note, seen=seen)
    except OverrideError as exc:
        raise refused(exc, status=409) from exc
    return Status(200, [_override(o.pk) for o in group])


@router.post("/overrides/{int:pk}/reject", response={200: list[OverrideOut], 409: ErrorOut})
def reject_override(request: HttpRequest, pk: int, payload: ReasonIn) -> Status[Any]:
    require_capability(request, "approve")
    try:
        group = override_reject(override=_override(pk), actor=_actor(request), reason=payload.reason)
    except OverrideError as exc:
        raise refused(exc, status=409 if not exc.field else 422) from exc
    return Status(200, [_override(o.pk) for o in group])


@router.get("/games", response=list[GameOut], tags=["schedule"])
def list_games(
    request: HttpRequest, start: datetime | None = None, end: datetime | None = None, national_only: bool = False
) -> list[Game]:
    """Games tipping off in [start, end) (default: the next 7 days)."""
    _aware(start, "start")
    _aware(end, "end")
    if start is not None and end is not None and end <= start:
        message = f"must be after start ({start.isoformat()})"
        raise ApiError(f"end: {message}", field="end", message=message)
    lo = start or timezone.now()
    hi = end or lo + timedelta(days=7)
    rows = list(reads.games_between(lo, hi)[:2000])
    return [g for g in rows if g.is_national] if national_only else rows


def _rule_spec(payload: RuleIn) -> RuleSpec:
    return RuleSpec(
        name=payload.name,
        match=payload.match,
        services=_services(payload.services),
        reason=payload.reason,
        floor_replicas=payload.floor_replicas,
        floor_forecast_multiple=payload.floor_forecast_multiple,
        lead_minutes=payload.lead_minutes,
        tail_minutes=payload.tail_minutes,
        enabled=payload.enabled,
    )


@router.get("/rules", response=list[RuleOut], tags=["schedule"])
def list_rules(request: HttpRequest) -> list[GameDayRule]:
    return list(reads.rules_list(timezone.now()))


@router.post("/rules", response={201: RuleOut}, tags=["schedule"])
def create_rule(request: HttpRequest, payload: RuleIn) -> Status[Any]:
    require_capability(request, "administer")
    try:
        rule = rule_create(spec=_rule_spec(payload), actor=_actor(request))
    except RuleError as exc:
        raise refused(exc) from exc
    return Status(201, reads.rules_list(timezone.now()).get(pk=rule.pk))


@router.put("/rules/{int:pk}", response=RuleOut, tags=["schedule"])
def update_rule(request: HttpRequest, pk: int, payload: RuleIn) -> Status[Any]:
    require_capability(request, "administer")
    rule = get_object_or_404(GameDayRule, pk=pk)
    try:
        rule_update(rule=rule, spec=_rule_spec(payload), actor=_actor(request))
    except RuleError as exc:
        raise refused(exc) from exc
    return Status(200, get_object_or_404(reads.rules_list(timezone.now()), pk=pk))


@router.delete("/rules/{int:pk}", response={204: None}, tags=["schedule"])
def delete_rule(request: HttpRequest, pk: int, reason: str = "") -> Status[Any]:
    require_capability(request, "administer")
    rule = get_object_or_404(GameDayRule, pk=pk)
    try:
        rule_delete(rule=rule, actor=_actor(request), reason=reason)
    except RuleError as exc:
        raise refused(exc) from exc
    return Status(204, None)


@router.post("/schedule/import", response=ImportOut, tags=["schedule"])
def import_schedule(request: HttpRequest, file: File[UploadedFile]) -> Status[Any]:
    """Upload the league schedule (CSV or the league feed JSON; detected from content). All or nothing."""
    require_capability(request, "administer")
    try:
        text = decode_schedule(file.read(), file.name or "upload")
        summary = schedule_import(text=text, source=file.name or "upload", actor=_actor(request))
    except ScheduleError as exc:
        raise ApiError(f"nothing imported: {exc}", field="file") from exc
    return Status(200, summary.as_dict())
