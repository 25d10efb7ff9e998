"""Writes for operator overrides: create (one service or a group), approve,
reject, cancel, extend. Each runs in one transaction with its audit events;
refusals that depend on other overrides are audited too."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.text import Truncator

from scaling import override_selectors as reads
from scaling.audit import Actor, EventType, audit_record
from scaling.models import AuditEvent, Game, GameDayRule, Override, Service

# Start times this far in the past count as "now" (a form takes a while to fill in).
START_GRACE = timedelta(minutes=5)
KINDS_WITH_REPLICAS = {Override.Kind.PIN, Override.Kind.FLOOR, Override.Kind.CEILING}
# The length of an override's reason, bypass_reason and cancel_reason columns.
REASON_MAX_CHARS = 500
# Even an admin's override ends within this of now: an end further out is surely a typo (9999 for 2026),
# and one near the last instant a datetime can hold overflows the arithmetic done on windows.
HORIZON = timedelta(days=366)


class OverrideError(ValueError):
    """Bad or refused request; `field` names the input at fault when there is one."""

    def __init__(self, message: str, *, field: str = "") -> None:
        super().__init__(message)
        self.field = field


class OverrideConflict(OverrideError):
    """A second pin overlapping an existing one (HTTP 409)."""

    def __init__(self, message: str, *, existing: Override) -> None:
        super().__init__(message, field="replace")
        self.existing = existing


class ApprovalError(OverrideError):
    pass


class ApprovalStale(ApprovalError):
    """The override (or another of its group) changed after the approver was shown it: nothing was approved."""


def override_snapshot(o: Override) -> dict[str, Any]:
    return {
        "id": o.pk,
        "service": o.service.name,
        "group_id": str(o.group_id),
        "kind": o.kind,
        "replicas": o.replicas,
        "starts_at": o.starts_at.isoformat(),
        "ends_at": o.ends_at.isoformat(),
        "status": o.status,
        "game": o.game.game_id if o.game else None,
        "rule": o.rule.name if o.rule else None,
        "projected_cost_delta": o.projected_cost_delta,
        "bypass_reason": o.bypass_reason,
    }


def max_hours(kind: str) -> float:
    return float(settings.OVERRIDE_MAX_HOURS.get(kind, 24.0))


def both_times(when: datetime) -> str:
    """'2026-01-15 13:00 EST (18:00 UTC)': the operator's zone first, UTC beside it, as the pages show times."""
    local = when.astimezone(ZoneInfo(settings.OPERATOR_TIME_ZONE))
    return f"{local:%Y-%m-%d %H:%M} {local.tzname()} ({when.astimezone(UTC):%H:%M} UTC)"


def _describe(o: Override) -> str:
    n = "" if o.replicas is None else f" {o.replicas}"
    return f"#{o.pk} {o.kind}{n} on {o.service.name} {both_times(o.starts_at)} → {both_times(o.ends_at)}"


def _validate_request(
    *, kind: str, replicas: int | None, starts_at: datetime, ends_at: datetime, reason: str, now: datetime, admin: bool
) -> datetime:
    """Checks that need no other override. Returns the effective start."""
    if not reason.strip():
        raise OverrideError("a reason is required", field="reason")
    if len(reason.strip()) > REASON_MAX_CHARS:
        raise OverrideError(f"the reason is longer than {REASON_MAX_CHARS} characters", field="reason")
    check_replicas(kind=kind, replicas=replicas)
    return check_window(kind=kind, starts_at=starts_at, ends_at=ends_at, now=now, admin=admin)


def check_replicas(*, kind: str, replicas: int | None) -> None:
    """Refuse a kind there is not, or a count the kind cannot take: none for a pin, floor or ceiling, under 1
    (0 for a ceiling), or one for a freeze."""
    if kind not in Override.Kind.values:
        raise OverrideError(f"unknown kind {kind!r}", field="kind")
    if kind in KINDS_WITH_REPLICAS:
        if replicas is None:
            raise OverrideError(f"a {kind} needs a replica count", field="replicas")
        if replicas < (1 if kind in {Override.Kind.PIN, Override.Kind.FLOOR} else 0):
            raise OverrideError("replicas must be at least 1 (0 for a ceiling)", field="replicas")
    elif replicas is not None:
        raise OverrideError(f"a {kind} takes no replica count", field="replicas")


def check_window(*, kind: str, starts_at: datetime, ends_at: datetime, now: datetime, admin: bool) -> datetime:
    """Refuse a window that is not one an override can have: a start in the past (beyond START_GRACE), an end
    in the past or not after the start, or longer than check_duration allows. Returns the effective start.

    The form's preview checks with this too, so that it says what the submit says (and prices no window the
    submit would refuse)."""
    if starts_at.tzinfo is None or ends_at.tzinfo is None:
        raise OverrideError("start and end need a time zone", field="starts_at")
    if starts_at < now - START_GRACE:
        raise OverrideError("the start is in the past", field="starts_at")
    # Before "after the start": with no start given (it is then now), that would puzzle.
    if ends_at <= now:
        raise OverrideError("the end is in the past; it must be in the future", field="ends_at")
    start = max(starts_at, now)
    if ends_at <= start:
        raise OverrideError("the end must be after the start", field="ends_at")
    check_duration(kind=kind, starts_at=start, ends_at=ends_at, now=now, admin=admin)
    return start


def check_duration(*, kind: str, starts_at: datetime, ends_at: datetime, now: datetime, admin: bool) -> None:
    """Refuse a window longer than the kind's maximum (admins may exceed it) or ending past the horizon."""
    if ends_at - now > HORIZON:
        raise OverrideError(
            f"the end is more than {HORIZON.days} days away; an override must end within that", field="ends_at"
        )
    hours = (ends_at - starts_at).total_seconds() / 3600.0
    if hours > max_hours(kind) and not admin:
        raise OverrideError(
            f"a {kind} may last at most {max_hours(kind):g} h (asked {round(hours, 1):g} h); longer needs an admin",
            field="ends_at",
        )


def check_bounds(service: Service, *, kind: str, replicas: int | None) -> None:
    """Refuse a count the engine would never follow for this service.

    The engine applies the service's bounds [min_replicas, max_replicas] after floors and ceilings (only a pin
    may leave them, up to the hard limit): a ceiling below the minimum holds at the minimum, and a floor above
    the maximum at the maximum.
    """
    _check_hard_limit(service, replicas)
    if replicas is None:
        return
    if kind == Override.Kind.CEILING and replicas < service.min_replicas:
        raise OverrideError(
            f"{service.name}: a ceiling of {replicas} is below the service's minimum of {service.min_replicas} "
            f"replicas, and the engine never scales below the minimum for a ceiling (only a pin may leave the "
            f"bounds [{service.min_replicas}, {service.max_replicas}])",
            field="replicas",
        )
    if kind == Override.Kind.FLOOR and replicas > service.max_replicas:
        raise OverrideError(
            f"{service.name}: a floor of {replicas} is above the service's maximum of {service.max_replicas} "
            f"replicas, and the engine never scales above the maximum for a floor (only a pin may leave the "
            f"bounds [{service.min_replicas}, {service.max_replicas}])",
            field="replicas",
        )


def _check_hard_limit(service: Service, replicas: int | None) -> None:
    if replicas is not None and replicas > service.hard_max_replicas:
        raise OverrideError(
            f"{service.name}: {replicas} replicas is above the hard limit of {service.hard_max_replicas}",
            field="replicas",
        )


def _check_against_others(
    service: Service,
    *,
    kind: str,
    replicas: int | None,
    start: datetime,
    end: datetime,
    replace: bool,
    skip: int = 0,
    bounds: bool = True,
) -> list[Override]:
    """Checks against the service's bounds and overlapping overrides. Returns the pins to replace.

    `bounds=False` checks only the hard limit: a game-day rule's floor (a multiple of the forecast) may come
    out above the service's maximum, where the engine holds it at the maximum, which is what the rule wants.
    """
    if bounds:
        check_bounds(service, kind=kind, replicas=replicas)
    else:
        _check_hard_limit(service, replicas)
    others = list(reads.overlapping(service, start, end).exclude(pk=skip).select_related("service"))
    pins = [o for o in others if o.kind == Override.Kind.PIN]
    if kind == Override.Kind.PIN and pins and not replace:
        existing = pins[0]
        raise OverrideConflict(
            f"{service.name}: overlaps the existing pin {_describe(existing)}; tick 'replace' to replace it",
            existing=existing,
        )
    if kind == Override.Kind.FLOOR and replicas is not None:
        for o in others:
            if o.kind == Override.Kind.CEILING and o.replicas is not None and o.replicas < replicas:
                raise OverrideError(
                    f"{service.name}: floor {replicas} is above the overlapping ceiling {_describe(o)}",
                    field="replicas",
                )
    if kind == Override.Kind.CEILING and replicas is not None:
        for o in others:
            if o.kind == Override.Kind.FLOOR and o.replicas is not None and o.replicas > replicas:
                raise OverrideError(
                    f"{service.name}: ceiling {replicas} is below the overlapping floor {_describe(o)}",
                    field="replicas",
                )
    return pins if kind == Override.Kind.PIN else []


def check_service(service: Service, *, kind: str, replicas: int | None, starts_at: datetime, ends_at: datetime) -> None:
    """What creating the override would refuse for this service, read-only, for the form's preview: the
    service's bounds, and a floor above (or a ceiling below) an overlapping override. An overlapping pin is not
    refused here: the submit asks whether to replace it."""
    _check_against_others(service, kind=kind, replicas=replicas, start=starts_at, end=ends_at, replace=True)


@dataclass(frozen=True)
class ApprovalNeed:
    """Whether an override (or an extension) needs a second person's approval: `because` says why in words
    (empty when it needs none), `counted` the requester's other overrides whose cost was counted with it."""

    because: str = ""
    counted: tuple[Override, ...] = ()

    @property
    def needed(self) -> bool:
        return bool(self.because)


def approval_need(
    service: Service,
    *,
    requester_id: int | None,
    replicas: int | None,
    cost_delta: float,
    starts_at: datetime,
    ends_at: datetime,
    now: datetime,
    exclude: Sequence[int] = (),
) -> ApprovalNeed:
    """Whether an override of `service` over [starts_at, ends_at) asked for by `requester_id` needs approval.

    1. More replicas than OVERRIDE_APPROVAL_REPLICAS, on its own.
    2. A projected cost above OVERRIDE_APPROVAL_COST, on its own.
    3. Else, when it adds cost: that cost with the extra cost of the requester's other overrides chained to it
       that no second person approved (override_selectors.unapproved_chain), so that a floor asked for in
       slices is approved as the one floor it is. A saving elsewhere in the chain offsets nothing.
    """
    parts = []
    if replicas is not None and replicas > settings.OVERRIDE_APPROVAL_REPLICAS:
        parts.append(f"{replicas} replicas, above {settings.OVERRIDE_APPROVAL_REPLICAS}")
    limit = float(settings.OVERRIDE_APPROVAL_COST)
    counted: tuple[Override, ...] = ()
    if cost_delta > limit:
        parts.append(f"${cost_delta:,.2f}, above ${limit:,.2f}")
    elif cost_delta > 0:
        chain = reads.unapproved_chain(
            service, requester_id=requester_id, starts_at=starts_at, ends_at=ends_at, now=now, exclude=exclude
        )
        costly = tuple(o for o in chain if (o.projected_cost_delta or 0.0) > 0)
        together = round(cost_delta + sum(o.projected_cost_delta or 0.0 for o in costly), 2)
        if together > limit:
            counted = costly
            named = ", ".join(f"#{o.pk} ({_money(o.projected_cost_delta)})" for o in costly)
            parts.append(
                f"${together:,.2f} together with the requester's adjacent overrides on {service.name} that no second "
                f"person approved, {named}, above ${limit:,.2f}"
            )
    return ApprovalNeed("; ".join(parts), counted)


def _check_bypass_reason(bypass_reason: str, *, admin: bool) -> None:
    if bypass_reason.strip() and not admin:
        raise OverrideError("only an admin can bypass approval", field="bypass_reason")
    if len(bypass_reason.strip()) > REASON_MAX_CHARS:
        raise OverrideError(f"the bypass reason is longer than {REASON_MAX_CHARS} characters", field="bypass_reason")


@dataclass(frozen=True)
class _Refusal:
    error: OverrideError


def override_create(
    *,
    services: Sequence[Service],
    kind: str,
    replicas: int | None,
    starts_at: datetime,
    ends_at: datetime,
    reason: str,
    actor: Actor,
    admin: bool = False,
    bypass_reason: str = "",
    replace: bool = False,
    game: Game | None = None,
    rule: GameDayRule | None = None,
    now: datetime | None = None,
) -> list[Override]:
    """Create one override per service (sharing a group id), all or none.

    1. Validate what needs no database; admins may exceed the maximum duration.
    2. Lock the services' rows (serializes concurrent requests for the same service).
    3. Check against overlapping overrides; a refusal is audited and raised after commit.
    4. Price each override; above the thresholds it waits for approval unless an admin bypasses with a reason.
    5. Replace overlapping pins if asked; create and audit.
    """
    now = now or timezone.now()
    if not services:
        raise OverrideError("choose at least one service", field="services")
    start = _validate_request(
        kind=kind, replicas=replicas, starts_at=starts_at, ends_at=ends_at, reason=reason, now=now, admin=admin
    )
    _check_bypass_reason(bypass_reason, admin=admin)
    group_id = uuid.uuid4()
    outcome: list[Override] | _Refusal
    with transaction.atomic():
        locked = list(Service.objects.select_for_update().filter(pk__in=[s.pk for s in services]).order_by("pk"))
        outcome = _create_locked(
            locked,
            kind=kind,
            replicas=replicas,
            start=start,
            end=ends_at,
            reason=reason.strip(),
            actor=actor,
            admin=admin,
            bypass_reason=bypass_reason.strip(),
            replace=replace,
            game=game,
            rule=rule,
            group_id=group_id,
            now=now,
        )
    if isinstance(outcome, _Refusal):
        raise outcome.error
    return outcome


def _create_locked(
    services: list[Service],
    *,
    kind: str,
    replicas: int | None,
    start: datetime,
    end: datetime,
    reason: str,
    actor: Actor,
    admin: bool,
    bypass_reason: str,
    replace: bool,
    game: Game | None,
    rule: GameDayRule | None,
    group_id: uuid.UUID,
    now: datetime,
) -> list[Override] | _Refusal:
    to_replace: list[Override] = []
    for service in services:
        try:
            to_replace += _check_against_others(
                service, kind=kind, replicas=replicas, start=start, end=end, replace=replace, bounds=rule is None
            )
        except OverrideError as exc:
            audit_record(
                actor=actor,
                event_type=EventType.OVERRIDE_REFUSED,
                service=service,
                object_type="override",
                object_id=exc.existing.pk if isinstance(exc, OverrideConflict) else "",
                after={
                    "kind": kind,
                    "replicas": replicas,
                    "starts_at": start.isoformat(),
                    "ends_at": end.isoformat(),
                    "error": str(exc),
                },
                reason=reason,
                at=now,
            )
            return _Refusal(exc)

    for old in to_replace:
        _cancel_locked(old, actor=actor, reason=f"replaced by a new pin: {reason}", now=now)

    created: list[Override] = []
    for service in services:
        preview = reads.override_preview(service, kind=kind, replicas=replicas, starts_at=start, ends_at=end, now=now)
        # A game-day rule's floors are approved by the rule (made by an admin, audited with its floor).
        need = ApprovalNeed()
        if rule is None:
            need = approval_need(
                service,
                requester_id=actor.user_id,
                replicas=replicas,
                cost_delta=preview.cost_delta,
                starts_at=start,
                ends_at=end,
                now=now,
            )
        pending = need.needed
        bypassed = pending and admin and bool(bypass_reason)
        status = Override.Status.PENDING_APPROVAL if pending and not bypassed else Override.Status.APPROVED
        override = Override.objects.create(
            service=service,
            group_id=group_id,
            kind=kind,
            replicas=replicas,
            reason=reason,
            starts_at=start,
            ends_at=end,
            status=status,
            created_by_id=actor.user_id,
            approved_by_id=actor.user_id if bypassed else None,
            approved_at=now if bypassed else None,
            bypass_reason=bypass_reason if bypassed else "",
            approval_needed_because=Truncator(need.because).chars(REASON_MAX_CHARS),
            game=game,
            rule=rule,
            projected_cost_delta=preview.cost_delta,
        )
        audit_record(
            actor=actor,
            event_type=EventType.OVERRIDE_CREATED,
            service=service,
            object_type="override",
            object_id=override.pk,
            after=override_snapshot(override)
            | {
                "forecast_replicas": preview.forecast,
                "approval_needed_because": need.because,
                "approval_counted": [o.pk for o in need.counted],
            },
            reason=reason,
            cost_impact_per_hour=round(preview.cost_per_hour, 4),
            at=now,
        )
        created.append(override)
    return created


def _locked_override(override: Override) -> Override:
    return (
        Override.objects.select_for_update(of=("self",)).select_related("service", "game", "rule").get(pk=override.pk)
    )


def _apply_change(
    o: Override, *, actor: Actor, event_type: EventType, reason: str, now: datetime, **fields: Any
) -> None:
    """Set fields on a locked override, save just those, count the change in its version, and audit the change
    with before and after."""
    before = override_snapshot(o)
    fields["version"] = o.version + 1
    for name, value in fields.items():
        setattr(o, name, value)
    o.save(update_fields=[name.removesuffix("_id") for name in fields])
    audit_record(
        actor=actor,
        event_type=event_type,
        service=o.service,
        object_type="override",
        object_id=o.pk,
        before=before,
        after=override_snapshot(o),
        reason=reason,
        at=now,
    )


def _locked_group(override: Override) -> tuple[Override, list[Override]]:
    """Row-lock every override created together with `override`, in id order, in one query.

    Returns the locked copy of `override` and the group's still-pending rows,
    oldest first. Locking the clicked row first and the rest after would let two
    approvers clicking two rows of one group each hold one and wait for the
    other: a deadlock.
    """
    group_id = Override.objects.values_list("group_id", flat=True).get(pk=override.pk)
    group = list(
        Override.objects.select_for_update(of=("self",))
        .select_related("service", "game", "rule")
        .filter(group_id=group_id)
        .order_by("pk")
    )
    clicked = next(o for o in group if o.pk == override.pk)
    return clicked, [o for o in group if o.status == Override.Status.PENDING_APPROVAL]


def check_approvable(override: Override, *, actor: Actor, now: datetime) -> None:
    """Raise ApprovalError unless `actor` may approve `override` now: it is pending, not over, and not theirs.
    override_approve checks it on the locked row; the dashboard's confirm step asks it first, to say so
    before offering the confirmation."""
    if override.status != Override.Status.PENDING_APPROVAL:
        raise ApprovalError(f"override #{override.pk} is {override.get_status_display().lower()}, not pending")
    if actor.user_id is not None and override.created_by_id == actor.user_id:
        raise ApprovalError("the requester cannot approve their own override; ask a second person")
    if override.ends_at <= now:
        raise ApprovalError(f"override #{override.pk} has already ended")


def check_unchanged(pending: Sequence[Override], seen: Mapping[int, int]) -> None:
    """Raise ApprovalStale unless each override the approver was shown (`seen`: id → version) is still pending
    in the group at the version shown: what they were shown is what they approve. One changed since (moved by
    a schedule import, say) or decided is to be shown to them again instead."""
    by_pk = {o.pk: o for o in pending}
    changed = []
    for pk, version in sorted(seen.items()):
        o = by_pk.get(pk)
        if o is None:
            changed.append(f"#{pk} is no longer pending")
        elif o.version != version:
            changed.append(f"{_describe(o)}, projected {_money(o.projected_cost_delta)}, changed after you saw it")
    if changed:
        raise ApprovalStale(
            f"nothing was approved: {'; '.join(changed)}. Look at what approving approves now, and confirm again "
            "if it is still right"
        )


def signed_money(cost_delta: float) -> str:
    """+$12.00 extra, −$3.00 saved: a projected cost as the pages (the `money` filter) and the messages say it."""
    return f"−${abs(cost_delta):,.2f}" if cost_delta < 0 else f"+${cost_delta:,.2f}"


def _money(cost_delta: float | None) -> str:
    return signed_money(cost_delta or 0.0)


def override_approve(
    *,
    override: Override,
    actor: Actor,
    reason: str = "",
    seen: Mapping[int, int] | None = None,
    now: datetime | None = None,
) -> list[Override]:
    """Approve a pending override and the rest of its group. The requester cannot approve their own.

    `seen` names the version of each override the approver was shown (the confirm step shows the whole group;
    an API client may name the one it read): one that changed since, or is no longer pending, refuses the
    approval (ApprovalStale) and nothing is approved. Without it, the group is approved as it stands."""
    now = now or timezone.now()
    with transaction.atomic():
        locked, pending = _locked_group(override)
        check_approvable(locked, actor=actor, now=now)
        if seen is not None:
            check_unchanged(pending, seen)
        for o in pending:
            _apply_change(
                o,
                actor=actor,
                event_type=EventType.OVERRIDE_APPROVED,
                reason=reason or o.reason,
                now=now,
                status=Override.Status.APPROVED,
                approved_by_id=actor.user_id,
                approved_at=now,
            )
    return pending


def override_reject(*, override: Override, actor: Actor, reason: str, now: datetime | None = None) -> list[Override]:
    """Reject a pending override and the rest of its group."""
    now = now or timezone.now()
    if not reason.strip():
        raise OverrideError("a reason is required", field="reason")
    with transaction.atomic():
        locked, pending = _locked_group(override)
        if locked.status != Override.Status.PENDING_APPROVAL:
            raise ApprovalError(f"override #{locked.pk} is {locked.get_status_display().lower()}, not pending")
        for o in pending:
            _close_locked(o, actor=actor, reason=reason.strip(), now=now, status=Override.Status.REJECTED)
    return pending


_CLOSING_EVENTS = {
    Override.Status.CANCELLED: EventType.OVERRIDE_CANCELLED,
    Override.Status.REJECTED: EventType.OVERRIDE_REJECTED,
}


def _close_locked(o: Override, *, actor: Actor, reason: str, now: datetime, status: str) -> None:
    _apply_change(
        o,
        actor=actor,
        event_type=_CLOSING_EVENTS[Override.Status(status)],
        reason=reason,
        now=now,
        status=status,
        cancelled_by_id=actor.user_id,
        cancelled_at=now,
        # A generated reason ("replaced by a new pin: " + the new pin's) can outgrow the column;
        # the audit event keeps it whole.
        cancel_reason=Truncator(reason).chars(REASON_MAX_CHARS),
    )


def _cancel_locked(o: Override, *, actor: Actor, reason: str, now: datetime) -> None:
    _close_locked(o, actor=actor, reason=reason, now=now, status=Override.Status.CANCELLED)


def override_cancel(*, override: Override, actor: Actor, reason: str, now: datetime | None = None) -> bool:
    """Cancel a pending or approved override; the engine drops it from the next tick. False if already over."""
    now = now or timezone.now()
    if not reason.strip():
        raise OverrideError("a reason is required", field="reason")
    with transaction.atomic():
        locked = _locked_override(override)
        if locked.status not in reads.LIVE_STATUSES or locked.ends_at <= now:
            return False
        _cancel_locked(locked, actor=actor, reason=reason.strip(), now=now)
    override.refresh_from_db()
    return True


def override_extend(
    *,
    override: Override,
    ends_at: datetime,
    actor: Actor,
    reason: str,
    admin: bool = False,
    bypass_reason: str = "",
    now: datetime | None = None,
) -> Override:
    """Move an override's end later, within the maximum duration (admins may exceed it).

    An approved override whose longer window would need approval were it asked
    for anew is refused: whoever approved it (or let it through unapproved)
    agreed to the current end only. An admin may bypass with a reason, as when
    creating one. A pending override is refused outright (audited): an approver
    may already be looking at its window, and would approve a longer one than
    they saw; its requester cancels it and asks for the longer window anew.
    """
    now = now or timezone.now()
    if not reason.strip():
        raise OverrideError("a reason is required", field="reason")
    _check_bypass_reason(bypass_reason, admin=admin)
    outcome: Override | _Refusal
    with transaction.atomic():
        service = Service.objects.select_for_update().get(pk=override.service_id)
        locked = _locked_override(override)
        if locked.status not in reads.LIVE_STATUSES or locked.ends_at <= now:
            raise OverrideError(f"override #{locked.pk} is over or cancelled; create a new one", field="ends_at")
        if ends_at <= locked.ends_at:
            raise OverrideError("the new end must be after the current end", field="ends_at")
        check_duration(kind=locked.kind, starts_at=locked.starts_at, ends_at=ends_at, now=now, admin=admin)
        if locked.status == Override.Status.PENDING_APPROVAL:
            pending = OverrideError(
                f"override #{locked.pk} waits for a second person's approval of the window it asks for (to "
                f"{both_times(locked.ends_at)}), which an approver may be looking at; a pending override cannot be "
                "extended: cancel it and ask for the longer window as a new override",
                field="ends_at",
            )
            outcome = _extension_refused(locked, pending, ends_at=ends_at, actor=actor, reason=reason, now=now)
        else:
            outcome = _extend_approved(
                locked,
                service,
                ends_at=ends_at,
                actor=actor,
                reason=reason,
                bypass_reason=bypass_reason.strip() if admin else "",
                now=now,
            )
    if isinstance(outcome, _Refusal):
        raise outcome.error
    return outcome


def _extend_approved(
    locked: Override,
    service: Service,
    *,
    ends_at: datetime,
    actor: Actor,
    reason: str,
    bypass_reason: str,
    now: datetime,
) -> Override | _Refusal:
    """Extend an approved override (locked, with its service) to an end already checked: refused against the
    overrides the longer window would meet, or past what its approval covered (_extend_locked)."""
    try:
        _check_against_others(
            service,
            kind=locked.kind,
            replicas=locked.replicas,
            start=locked.ends_at,
            end=ends_at,
            replace=False,
            skip=locked.pk,
        )
    except OverrideError as exc:
        return _extension_refused(locked, exc, ends_at=ends_at, actor=actor, reason=reason, now=now)
    return _extend_locked(
        locked, ends_at=ends_at, actor=actor, reason=reason.strip(), bypass_reason=bypass_reason, now=now
    )


def _extension_refused(
    locked: Override, exc: OverrideError, *, ends_at: datetime, actor: Actor, reason: str, now: datetime
) -> _Refusal:
    """Audit a refused extension (committed with the transaction); the caller raises it after."""
    audit_record(
        actor=actor,
        event_type=EventType.OVERRIDE_REFUSED,
        service=locked.service,
        object_type="override",
        object_id=locked.pk,
        after={"extend_to": ends_at.isoformat(), "error": str(exc)},
        reason=reason,
        at=now,
    )
    return _Refusal(exc)


def _extend_locked(
    locked: Override, *, ends_at: datetime, actor: Actor, reason: str, bypass_reason: str, now: datetime
) -> Override:
    extra = reads.override_preview(
        locked.service, kind=locked.kind, replicas=locked.replicas, starts_at=locked.ends_at, ends_at=ends_at, now=now
    )
    total = round((locked.projected_cost_delta or 0.0) + extra.cost_delta, 2)
    # A pending override is never extended (override_extend). An approved one's approval, by a second person, a
    # game-day rule or none needed, covered its current window only: the longer one is judged as if asked for
    # anew by whoever asks, with their overrides chained to it.
    need = approval_need(
        locked.service,
        requester_id=actor.user_id,
        replicas=locked.replicas,
        cost_delta=total,
        starts_at=locked.starts_at,
        ends_at=ends_at,
        now=now,
        exclude=[locked.pk],
    )
    if need.needed and not bypass_reason:
        raise OverrideError(
            f"extended, override #{locked.pk} ({need.because}) would need a second person's approval, and its "
            f"approval covers only its current window; {_extra_time_alone(locked, extra, actor=actor, now=now)}, "
            "or an admin may bypass with a reason",
            field="ends_at",
        )
    fields: dict[str, Any] = {"ends_at": ends_at, "projected_cost_delta": total}
    if need.needed:  # bypassed by an admin: the approval of the longer window is theirs
        fields |= {
            "approved_by_id": actor.user_id,
            "approved_at": now,
            "bypass_reason": bypass_reason,
            "approval_needed_because": Truncator(need.because).chars(REASON_MAX_CHARS),
        }
    _apply_change(locked, actor=actor, event_type=EventType.OVERRIDE_EXTENDED, reason=reason, now=now, **fields)
    return locked


def _extra_time_alone(locked: Override, extra: reads.Preview, *, actor: Actor, now: datetime) -> str:
    """What asking for an extension's extra time as a new override would come to, in words: approval is then
    decided for it as for any new override (the overrides it is chained to counted), not promised either way."""
    alone = approval_need(
        locked.service,
        requester_id=actor.user_id,
        replicas=locked.replicas,
        cost_delta=extra.cost_delta,
        starts_at=extra.starts_at,
        ends_at=extra.ends_at,
        now=now,
    )
    if alone.needed:
        return f"a new override for the extra time would wait for approval too ({alone.because})"
    return f"a new override for the extra time alone ({_money(extra.cost_delta)}) would need none"


def override_transitions_record(*, now: datetime | None = None, lookback: timedelta = timedelta(days=1)) -> int:
    """Note in the audit log each approved override that has started or expired (once each).

    The engine applies overrides by their windows on its own; this makes the
    moments they took and lost effect findable in the audit log.
    """
    now = now or timezone.now()
    recorded = 0
    with transaction.atomic():
        rows = list(
            Override.objects.select_for_update(of=("self",))
            .select_related("service", "game", "rule")
            .filter(status=Override.Status.APPROVED, starts_at__lte=now, ends_at__gt=now - lookback)
            .order_by("starts_at", "pk")
        )
        if not rows:
            return 0
        seen = set(
            AuditEvent.objects.filter(
                event_type__in=[EventType.OVERRIDE_STARTED, EventType.OVERRIDE_EXPIRED],
                object_type="override",
                object_id__in=[str(o.pk) for o in rows],
            ).values_list("event_type", "object_id")
        )
        for o in rows:
            due = [EventType.OVERRIDE_STARTED] + ([EventType.OVERRIDE_EXPIRED] if o.ends_at <= now else [])
            for event in due:
                if (str(event), str(o.pk)) in seen:
                    continue
                audit_record(
                    actor=Actor.system("overrides"),
                    event_type=event,
                    service=o.service,
                    object_type="override",
                    object_id=o.pk,
                    after=override_snapshot(o),
                    reason=o.reason,
                    at=now,
                )
                recorded += 1
    return recorded
