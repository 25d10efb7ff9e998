"""Creating, approving, cancelling and extending overrides, and the engine applying them tick by tick."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
import time_machine
from django.test import override_settings

from scaling import services
from scaling.audit import Actor, EventType
from scaling.models import AuditEvent, Decision, Override, Service
from scaling.overrides import (
    ApprovalError,
    ApprovalStale,
    OverrideConflict,
    OverrideError,
    _apply_change,
    check_duration,
    override_approve,
    override_cancel,
    override_create,
    override_extend,
    override_reject,
    override_transitions_record,
)
from tests.factories import T0, make_service, make_user

pytestmark = pytest.mark.django_db

H = timedelta(hours=1)


def _pin(service: Service, actor: Actor, start: datetime, end: datetime, n: int = 5, **kw: Any) -> list[Override]:
    return override_create(
        services=[service],
        kind="pin",
        replicas=n,
        starts_at=start,
        ends_at=end,
        reason="tip-off",
        actor=actor,
        now=T0,
        **kw,
    )


def test_it_creates_an_approved_small_override_and_audits_it() -> None:
    service = make_service()
    user = make_user()
    [o] = _pin(service, Actor.for_user(user), T0, T0 + 2 * H)
    assert o.status == Override.Status.APPROVED and o.created_by == user
    event = AuditEvent.objects.get(event_type=EventType.OVERRIDE_CREATED)
    assert event.object_id == str(o.pk) and event.reason == "tip-off" and event.actor_user == user


def test_it_refuses_an_overlapping_pin_naming_the_existing_one_and_audits_the_refusal() -> None:
    service = make_service()
    actor = Actor.for_user(make_user())
    [first] = _pin(service, actor, T0, T0 + 2 * H)
    with pytest.raises(OverrideConflict) as err:
        _pin(service, actor, T0 + H, T0 + 3 * H, n=7)
    assert err.value.existing == first and f"#{first.pk}" in str(err.value)
    assert AuditEvent.objects.filter(event_type=EventType.OVERRIDE_REFUSED, object_id=str(first.pk)).count() == 1
    assert Override.objects.count() == 1


def test_replace_cancels_the_existing_pin_in_the_same_transaction() -> None:
    service = make_service()
    actor = Actor.for_user(make_user())
    [first] = _pin(service, actor, T0, T0 + 2 * H)
    [second] = _pin(service, actor, T0 + H, T0 + 3 * H, n=7, replace=True)
    first.refresh_from_db()
    assert first.status == Override.Status.CANCELLED and "replaced" in first.cancel_reason
    assert second.status == Override.Status.APPROVED


def test_replacing_a_pin_with_the_longest_reason_keeps_the_cancel_reason_within_its_column() -> None:
    service = make_service()
    actor = Actor.for_user(make_user())
    [first] = _pin(service, actor, T0, T0 + 2 * H)
    reason = "r" * 500
    override_create(
        services=[service],
        kind="pin",
        replicas=7,
        starts_at=T0,
        ends_at=T0 + H,
        reason=reason,
        actor=actor,
        replace=True,
        now=T0,
    )
    first.refresh_from_db()
    assert len(first.cancel_reason) == 500 and first.cancel_reason.startswith("replaced by a new pin: rrr")
    assert first.cancel_reason.endswith("…")
    cancelled = AuditEvent.objects.get(event_type=EventType.OVERRIDE_CANCELLED)
    assert cancelled.reason == f"replaced by a new pin: {reason}"


@pytest.mark.parametrize(
    ("reason", "bypass_reason", "field"), [("x" * 501, "", "reason"), ("r", "x" * 501, "bypass_reason")]
)
def test_a_reason_longer_than_its_column_is_refused_naming_it(reason: str, bypass_reason: str, field: str) -> None:
    with pytest.raises(OverrideError, match="longer than 500 characters") as err:
        override_create(
            services=[make_service()],
            kind="pin",
            replicas=3,
            starts_at=T0,
            ends_at=T0 + H,
            reason=reason,
            actor=Actor.for_user(make_user("boss", "admin")),
            admin=True,
            bypass_reason=bypass_reason,
            now=T0,
        )
    assert err.value.field == field


@pytest.mark.parametrize(
    ("kind", "replicas", "start", "end", "field"),
    [
        ("pin", 500, T0, T0 + H, "replicas"),
        ("pin", None, T0, T0 + H, "replicas"),
        ("floor", 3, T0 + H, T0 + H, "ends_at"),
        ("floor", 3, T0 - 2 * H, T0 - H, "starts_at"),
        ("pin", 3, T0, T0 + 13 * H, "ends_at"),
        ("freeze", 3, T0, T0 + H, "replicas"),
    ],
)
def test_it_rejects_bad_requests_with_the_field_at_fault(
    kind: str, replicas: int | None, start: datetime, end: datetime, field: str
) -> None:
    service = make_service(hard_max_replicas=100)
    with pytest.raises(OverrideError) as err:
        override_create(
            services=[service],
            kind=kind,
            replicas=replicas,
            starts_at=start,
            ends_at=end,
            reason="r",
            actor=Actor.for_user(make_user()),
            now=T0,
        )
    assert err.value.field == field


def test_an_admin_may_exceed_the_maximum_duration() -> None:
    service = make_service()
    [o] = _pin(service, Actor.for_user(make_user("boss", "admin")), T0, T0 + 20 * H, admin=True)
    assert o.ends_at == T0 + 20 * H


def test_not_even_an_admin_may_end_an_override_more_than_a_year_away() -> None:
    service = make_service()
    admin = Actor.for_user(make_user("boss", "admin"))
    [o] = _pin(service, admin, T0, T0 + 366 * 24 * H, admin=True)
    with pytest.raises(OverrideError, match="more than 366 days away") as err:
        _pin(make_service("b"), admin, T0, T0 + 367 * 24 * H, admin=True)
    assert err.value.field == "ends_at"
    with pytest.raises(OverrideError, match="more than 366 days away"):
        override_extend(override=o, ends_at=T0 + 367 * 24 * H, actor=admin, reason="r", admin=True, now=T0)


def test_a_floor_above_an_overlapping_ceiling_is_refused() -> None:
    service = make_service()
    actor = Actor.for_user(make_user())
    override_create(
        services=[service],
        kind="ceiling",
        replicas=4,
        starts_at=T0,
        ends_at=T0 + 2 * H,
        reason="budget",
        actor=actor,
        now=T0,
    )
    with pytest.raises(OverrideError, match="above the overlapping ceiling"):
        override_create(
            services=[service],
            kind="floor",
            replicas=6,
            starts_at=T0 + H,
            ends_at=T0 + 3 * H,
            reason="game",
            actor=actor,
            now=T0,
        )


def test_a_group_override_creates_one_per_service_or_none() -> None:
    a, b = make_service("a"), make_service("b")
    actor = Actor.for_user(make_user())
    _pin(b, actor, T0, T0 + H)
    with pytest.raises(OverrideConflict):
        _pin_group = override_create(
            services=[a, b], kind="pin", replicas=3, starts_at=T0, ends_at=T0 + H, reason="g", actor=actor, now=T0
        )
    assert not Override.objects.filter(service=a).exists()
    rows = override_create(
        services=[a, b], kind="floor", replicas=3, starts_at=T0, ends_at=T0 + H, reason="g", actor=actor, now=T0
    )
    assert {o.service for o in rows} == {a, b} and len({o.group_id for o in rows}) == 1


@override_settings(OVERRIDE_APPROVAL_REPLICAS=10)
def test_a_large_override_waits_for_a_second_person() -> None:
    service = make_service(hard_max_replicas=100)
    requester, approver = make_user(), make_user("approver", "approver")
    [o] = _pin(service, Actor.for_user(requester), T0, T0 + H, n=30)
    assert o.status == Override.Status.PENDING_APPROVAL
    with pytest.raises(ApprovalError, match="cannot approve their own"):
        override_approve(override=o, actor=Actor.for_user(requester), now=T0)
    override_approve(override=o, actor=Actor.for_user(approver), now=T0)
    o.refresh_from_db()
    assert o.status == Override.Status.APPROVED and o.approved_by == approver
    assert AuditEvent.objects.filter(event_type=EventType.OVERRIDE_APPROVED, actor_user=approver).exists()


@override_settings(OVERRIDE_APPROVAL_COST=5.0)
def test_a_costly_override_waits_unless_an_admin_bypasses_with_a_reason() -> None:
    service = make_service(price_per_replica_hour=2.0)
    admin = Actor.for_user(make_user("boss", "admin"))
    [pending] = override_create(
        services=[service],
        kind="floor",
        replicas=10,
        starts_at=T0,
        ends_at=T0 + H,
        reason="game",
        actor=admin,
        admin=True,
        now=T0,
    )
    assert pending.status == Override.Status.PENDING_APPROVAL and pending.projected_cost_delta == 18.0
    [bypassed] = override_create(
        services=[make_service("b", price_per_replica_hour=2.0)],
        kind="floor",
        replicas=10,
        starts_at=T0,
        ends_at=T0 + H,
        reason="game",
        actor=admin,
        admin=True,
        bypass_reason="SLO burning, approver unreachable",
        now=T0,
    )
    assert bypassed.status == Override.Status.APPROVED and bypassed.bypass_reason
    with pytest.raises(OverrideError, match="only an admin"):
        override_create(
            services=[service],
            kind="floor",
            replicas=2,
            starts_at=T0,
            ends_at=T0 + H,
            reason="x",
            actor=Actor.for_user(make_user()),
            bypass_reason="please",
            now=T0,
        )


@override_settings(OVERRIDE_APPROVAL_REPLICAS=10)
def test_reject_cancel_and_extend_are_audited() -> None:
    service = make_service(hard_max_replicas=100)
    operator = Actor.for_user(make_user())
    approver = Actor.for_user(make_user("approver", "approver"))
    [big] = _pin(service, operator, T0, T0 + H, n=30)
    override_reject(override=big, actor=approver, reason="too big", now=T0)
    [o] = _pin(service, operator, T0, T0 + H)
    override_extend(override=o, ends_at=T0 + 2 * H, actor=operator, reason="overtime", now=T0)
    o.refresh_from_db()
    assert o.ends_at == T0 + 2 * H
    with pytest.raises(OverrideError, match="at most 12 h"):
        override_extend(override=o, ends_at=T0 + 13 * H, actor=operator, reason="more", now=T0)
    assert override_cancel(override=o, actor=operator, reason="game over", now=T0) is True
    assert override_cancel(override=o, actor=operator, reason="again", now=T0) is False
    types = list(AuditEvent.objects.order_by("id").values_list("event_type", flat=True))
    assert types == [
        "override.created",
        "override.rejected",
        "override.created",
        "override.extended",
        "override.cancelled",
    ]


def _tick(service: Service, at: datetime) -> Decision:
    with time_machine.travel(at, tick=False):
        result = services.service_evaluate(service_id=service.pk, tick_at=at)
    assert result.decision_id is not None
    return Decision.objects.get(pk=result.decision_id)


def test_the_engine_applies_a_pin_from_the_first_tick_inside_its_window_and_drops_it_the_first_tick_after() -> None:
    service = make_service(replicas=2, demand_scale=1.0)
    step = timedelta(seconds=15)
    start, end = T0 + 4 * step, T0 + 8 * step
    [pin] = override_create(
        services=[service],
        kind="pin",
        replicas=9,
        starts_at=start,
        ends_at=end,
        reason="marquee game",
        actor=Actor.for_user(make_user()),
        now=T0,
    )
    before = _tick(service, start - step)
    assert before.desired != 9
    inside = _tick(service, start)
    assert inside.desired == 9 and inside.reason_code in {"SCALED_OUT", "SCALED_IN", "OVERRIDE_ACTIVE"}
    assert any(
        c["detail"].startswith(f"override {pin.pk} ") and "marquee game" in c["detail"]
        for c in inside.explanation["constraints"]
    )
    last = _tick(service, end - step)
    assert last.desired == 9
    after = _tick(service, end)
    assert not any(c["name"].startswith("override_") for c in after.explanation["constraints"])


def test_starts_and_expiries_are_audited_once_each() -> None:
    service = make_service()
    [o] = _pin(service, Actor.for_user(make_user()), T0 + H, T0 + 2 * H)
    assert override_transitions_record(now=T0) == 0
    assert override_transitions_record(now=T0 + H) == 1
    assert override_transitions_record(now=T0 + H + timedelta(minutes=1)) == 0
    assert override_transitions_record(now=T0 + 2 * H) == 1
    assert override_transitions_record(now=T0 + 3 * H) == 0
    events = AuditEvent.objects.filter(object_id=str(o.pk)).order_by("id").values_list("event_type", flat=True)
    assert list(events) == ["override.created", "override.started", "override.expired"]


@override_settings(OVERRIDE_APPROVAL_COST=20.0)
def test_an_extension_cannot_grow_an_unapproved_override_past_the_approval_threshold() -> None:
    service = make_service(price_per_replica_hour=1.0)
    operator = Actor.for_user(make_user())
    [o] = override_create(
        services=[service],
        kind="floor",
        replicas=11,
        starts_at=T0,
        ends_at=T0 + H,
        reason="game",
        actor=operator,
        now=T0,
    )
    assert o.status == Override.Status.APPROVED and o.projected_cost_delta == 10.0
    with pytest.raises(OverrideError, match=r"\$30.00, above \$20.00\) would need a second person's approval"):
        override_extend(override=o, ends_at=T0 + 3 * H, actor=operator, reason="overtime", now=T0)
    o.refresh_from_db()
    assert o.ends_at == T0 + H and o.projected_cost_delta == 10.0


@override_settings(OVERRIDE_APPROVAL_REPLICAS=10, OVERRIDE_APPROVAL_COST=100.0)
def test_an_extension_of_an_approved_override_needs_a_second_person_again() -> None:
    service = make_service(hard_max_replicas=100, price_per_replica_hour=1.0)
    requester = Actor.for_user(make_user())
    [o] = _pin(service, requester, T0, T0 + H, n=40)
    override_approve(override=o, actor=Actor.for_user(make_user("approver", "approver")), now=T0)
    # The approver agreed to one hour of 40 replicas; twelve, alone, would be the requester's call.
    with pytest.raises(OverrideError, match=r"40 replicas, above 10; .* would need a second person") as refused:
        override_extend(override=o, ends_at=T0 + 12 * H, actor=requester, reason="longer", now=T0)
    assert refused.value.field == "ends_at"
    o.refresh_from_db()
    assert o.ends_at == T0 + H and o.status == Override.Status.APPROVED
    assert not AuditEvent.objects.filter(event_type=EventType.OVERRIDE_EXTENDED).exists()


@override_settings(OVERRIDE_APPROVAL_REPLICAS=10)
def test_only_an_admin_with_a_reason_may_extend_past_approval_alone() -> None:
    service = make_service(hard_max_replicas=100)
    [o] = _pin(service, Actor.for_user(make_user()), T0, T0 + H, n=40)
    override_approve(override=o, actor=Actor.for_user(make_user("approver", "approver")), now=T0)
    admin_user = make_user("boss", "admin")
    admin = Actor.for_user(admin_user)
    with pytest.raises(OverrideError, match="would need a second person"):
        override_extend(override=o, ends_at=T0 + 2 * H, actor=admin, reason="overtime", admin=True, now=T0)
    with pytest.raises(OverrideError, match="only an admin"):
        override_extend(
            override=o,
            ends_at=T0 + 2 * H,
            actor=Actor.for_user(make_user("op2")),
            reason="x",
            bypass_reason="please",
            now=T0,
        )
    override_extend(
        override=o,
        ends_at=T0 + 2 * H,
        actor=admin,
        reason="overtime",
        admin=True,
        bypass_reason="double overtime, approvers asleep",
        now=T0,
    )
    o.refresh_from_db()
    assert o.ends_at == T0 + 2 * H and o.approved_by == admin_user and o.bypass_reason
    event = AuditEvent.objects.get(event_type=EventType.OVERRIDE_EXTENDED)
    assert event.actor_user == admin_user
    assert (event.after or {})["bypass_reason"] == "double overtime, approvers asleep"


@override_settings(OVERRIDE_APPROVAL_REPLICAS=10)
def test_a_pending_override_cannot_be_extended_and_the_refusal_is_audited() -> None:
    """Its approver may be looking at its window: a longer one is a new request."""
    service = make_service(hard_max_replicas=100)
    requester = Actor.for_user(make_user())
    [o] = _pin(service, requester, T0, T0 + H, n=40)
    with pytest.raises(OverrideError, match="a pending override cannot be extended: cancel it") as refused:
        override_extend(override=o, ends_at=T0 + 2 * H, actor=requester, reason="overtime", now=T0)
    assert refused.value.field == "ends_at"
    o.refresh_from_db()
    assert o.ends_at == T0 + H and o.status == Override.Status.PENDING_APPROVAL and o.version == 1
    event = AuditEvent.objects.get(event_type=EventType.OVERRIDE_REFUSED)
    assert event.object_id == str(o.pk) and (event.after or {})["extend_to"] == (T0 + 2 * H).isoformat()


@override_settings(OVERRIDE_APPROVAL_REPLICAS=10)
def test_an_approval_naming_what_its_approver_saw_is_refused_once_that_changed() -> None:
    service, other = make_service(hard_max_replicas=100), make_service("b", hard_max_replicas=100)
    requester = Actor.for_user(make_user())
    approver = Actor.for_user(make_user("approver", "approver"))
    first, second = override_create(
        services=[service, other],
        kind="pin",
        replicas=40,
        starts_at=T0,
        ends_at=T0 + H,
        reason="r",
        actor=requester,
        now=T0,
    )
    seen = {first.pk: first.version, second.pk: second.version}
    # A schedule import moving the game (or anything else) changes the group's other override.
    _apply_change(
        second, actor=Actor.system("t"), event_type=EventType.OVERRIDE_MOVED, reason="moved", now=T0, ends_at=T0 + 2 * H
    )
    assert second.version == seen[second.pk] + 1
    with pytest.raises(ApprovalStale, match=rf"nothing was approved: #{second.pk} pin 40 on b .* changed after you"):
        override_approve(override=first, actor=approver, seen=seen, now=T0)
    assert not Override.objects.filter(status=Override.Status.APPROVED).exists()
    override_cancel(override=second, actor=requester, reason="not b after all", now=T0)
    with pytest.raises(ApprovalStale, match=rf"#{second.pk} is no longer pending"):
        override_approve(override=first, actor=approver, seen=seen | {second.pk: 3}, now=T0)
    [approved] = override_approve(override=first, actor=approver, seen={first.pk: first.version}, now=T0)
    assert approved.pk == first.pk and approved.status == Override.Status.APPROVED
    assert approved.version == first.version + 1  # approving is a change too


@pytest.mark.parametrize(("kind", "hours", "said"), [("floor", 1440, "asked 1440 h"), ("pin", 12.5, "asked 12.5 h")])
def test_a_window_too_long_is_said_in_hours_without_a_pointless_decimal(kind: str, hours: float, said: str) -> None:
    with pytest.raises(OverrideError, match=rf"may last at most \d+ h \({said}\); longer needs an admin"):
        check_duration(kind=kind, starts_at=T0, ends_at=T0 + timedelta(hours=hours), now=T0, admin=False)


# --- a floor asked for in slices is approved as the floor it makes ---------------------------------------


def _floor(service: Service, actor: Actor, start: datetime, end: datetime, n: int = 40) -> Override:
    [o] = override_create(
        services=[service],
        kind="floor",
        replicas=n,
        starts_at=start,
        ends_at=end,
        reason="slice",
        actor=actor,
        now=T0,
    )
    return o


@override_settings(OVERRIDE_APPROVAL_REPLICAS=50, OVERRIDE_APPROVAL_COST=100.0)
def test_adjacent_slices_by_one_requester_wait_for_approval_once_together_above_the_threshold() -> None:
    service = make_service()
    operator = Actor.for_user(make_user())
    first = _floor(service, operator, T0 + H, T0 + 2 * H)
    second = _floor(service, operator, T0 + 2 * H, T0 + 3 * H)
    cost = (first.projected_cost_delta or 0) + (second.projected_cost_delta or 0)
    assert first.status == second.status == Override.Status.APPROVED and 0 < cost <= 100  # each alone, and the two

    third = _floor(service, operator, T0 + 3 * H, T0 + 4 * H)

    assert (third.projected_cost_delta or 0) <= 100 and cost + (third.projected_cost_delta or 0) > 100
    assert third.status == Override.Status.PENDING_APPROVAL
    together = cost + (third.projected_cost_delta or 0)
    assert third.approval_needed_because == (
        f"${together:,.2f} together with the requester's adjacent overrides on win-probability that no second "
        f"person approved, #{first.pk} (+${first.projected_cost_delta:,.2f}), "
        f"#{second.pk} (+${second.projected_cost_delta:,.2f}), above $100.00"
    )
    event = AuditEvent.objects.get(event_type=EventType.OVERRIDE_CREATED, object_id=str(third.pk))
    assert (event.after or {})["approval_counted"] == [first.pk, second.pk]
    # A slice before the first, overlapping it: the chain runs through all three.
    before = _floor(service, operator, T0 + timedelta(minutes=30), T0 + H + timedelta(minutes=30))
    assert before.status == Override.Status.PENDING_APPROVAL
    assert all(f"#{o.pk} " in before.approval_needed_because for o in (first, second, third))


@override_settings(OVERRIDE_APPROVAL_REPLICAS=50, OVERRIDE_APPROVAL_COST=100.0)
def test_only_the_requesters_own_chained_overrides_no_second_person_approved_are_counted() -> None:
    service = make_service()
    operator, colleague = Actor.for_user(make_user()), Actor.for_user(make_user("op2"))
    approver = Actor.for_user(make_user("approver", "approver"))
    # An hour of 40 that a second person approved (it waited for its replicas then).
    with override_settings(OVERRIDE_APPROVAL_REPLICAS=10):
        approved = _floor(service, operator, T0, T0 + H)
    override_approve(override=approved, actor=approver, now=T0)
    gap = _floor(service, operator, T0 + 2 * H, T0 + 3 * H)  # an hour after the first ends
    theirs = _floor(service, colleague, T0 + H, T0 + 2 * H)  # between, but another person's
    mine = _floor(service, operator, T0 + 3 * H, T0 + 4 * H)  # abuts `gap` only
    assert (gap.projected_cost_delta or 0) + (mine.projected_cost_delta or 0) <= 100
    assert [o.status for o in (gap, theirs, mine)] == [Override.Status.APPROVED] * 3
    assert mine.approval_needed_because == ""
    assert not Override.objects.filter(status=Override.Status.PENDING_APPROVAL).exists()


@override_settings(OVERRIDE_APPROVAL_REPLICAS=50, OVERRIDE_APPROVAL_COST=100.0)
def test_an_extension_counts_the_requesters_chained_overrides_and_says_what_the_extra_time_would_need() -> None:
    service = make_service()
    operator = Actor.for_user(make_user())
    first = _floor(service, operator, T0, T0 + H)
    second = _floor(service, operator, T0 + H, T0 + 2 * H)
    assert second.status == Override.Status.APPROVED
    with pytest.raises(OverrideError, match=rf"together with .* #{first.pk} .* would need a second person") as refused:
        override_extend(override=second, ends_at=T0 + 3 * H, actor=operator, reason="more", now=T0)
    # The extra time alone would be chained to both, so it would wait too: the message says so, and it does.
    assert "a new override for the extra time would wait for approval too" in str(refused.value)
    extra = _floor(service, operator, T0 + 2 * H, T0 + 3 * H)
    assert extra.status == Override.Status.PENDING_APPROVAL


@override_settings(OVERRIDE_APPROVAL_REPLICAS=50, OVERRIDE_APPROVAL_COST=20.0)
def test_a_refused_extension_of_an_approved_override_says_truly_that_the_extra_time_alone_needs_no_approval() -> None:
    service = make_service()
    operator = Actor.for_user(make_user())
    big = _floor(service, operator, T0, T0 + 4 * H, n=10)
    assert big.status == Override.Status.PENDING_APPROVAL  # its cost, above $20
    override_approve(override=big, actor=Actor.for_user(make_user("approver", "approver")), now=T0)
    later = T0 + 4 * H + timedelta(minutes=30)
    with pytest.raises(OverrideError, match=r"extended, override .* would need a second person") as refused:
        override_extend(override=big, ends_at=later, actor=operator, reason="OT", now=T0)
    assert "a new override for the extra time alone (+$" in str(refused.value)
    assert str(refused.value).endswith(") would need none, or an admin may bypass with a reason")
    # It is so: a second person approved the four hours, and half an hour more is under the threshold alone.
    extra = _floor(service, operator, T0 + 4 * H, later, n=10)
    assert extra.status == Override.Status.APPROVED
