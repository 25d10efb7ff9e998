"""Simultaneous requests: fifty pins for the same service and window through the API
(exactly one is accepted, the other 49 get 409, and every attempt is audited), and
two approvers on one group."""

from __future__ import annotations

import contextlib
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import Group, User
from django.db import connection, connections
from django.test import Client, override_settings
from django.utils import timezone

from scaling.audit import Actor, EventType
from scaling.models import AuditEvent, Override
from scaling.overrides import ApprovalError, override_approve, override_create
from tests.factories import make_service, make_user

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

ATTEMPTS = 50


def test_fifty_simultaneous_pins_exactly_one_is_accepted_and_every_attempt_is_audited() -> None:
    service = make_service()
    # No passwords: hashing fifty of them would dominate the test's time.
    users = User.objects.bulk_create([User(username=f"op{i}") for i in range(ATTEMPTS)])
    Group.objects.get_or_create(name="operator")[0].user_set.add(*users)
    clients = []
    for user in users:
        client = Client()
        client.force_login(user)
        clients.append(client)
    now = timezone.now()
    body = {
        "services": [service.name],
        "kind": "pin",
        "starts_at": (now + timedelta(minutes=10)).isoformat(),
        "ends_at": (now + timedelta(hours=2)).isoformat(),
    }
    barrier = threading.Barrier(ATTEMPTS)

    def attempt(i: int) -> int:
        try:
            barrier.wait(timeout=30)
            payload = body | {"replicas": 5 + i % 3, "reason": f"attempt {i}"}
            return clients[i].post("/api/overrides", payload, content_type="application/json").status_code
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=ATTEMPTS) as pool:
        statuses = list(pool.map(attempt, range(ATTEMPTS)))

    assert sorted(statuses) == [201] + [409] * (ATTEMPTS - 1)
    assert Override.objects.filter(service=service, kind="pin").count() == 1
    created = AuditEvent.objects.filter(event_type=EventType.OVERRIDE_CREATED).count()
    refused = AuditEvent.objects.filter(event_type=EventType.OVERRIDE_REFUSED).count()
    assert (created, refused) == (1, ATTEMPTS - 1)
    audited_users = set(
        AuditEvent.objects.filter(event_type__in=[EventType.OVERRIDE_CREATED, EventType.OVERRIDE_REFUSED]).values_list(
            "actor_user_id", flat=True
        )
    )
    assert audited_users == {u.pk for u in users}


@override_settings(OVERRIDE_APPROVAL_REPLICAS=10)
def test_two_approvers_clicking_two_rows_of_one_group_at_once_do_not_deadlock(on_postgres: None) -> None:
    a, b = make_service("a", hard_max_replicas=100), make_service("b", hard_max_replicas=100)
    now = timezone.now()
    group = override_create(
        services=[a, b],
        kind="floor",
        replicas=30,
        starts_at=now + timedelta(hours=1),
        ends_at=now + timedelta(hours=2),
        reason="game",
        actor=Actor.for_user(make_user()),
    )
    approvers = [make_user("ap1", "approver"), make_user("ap2", "approver")]
    # Each approval waits here after its first row-lock query, so two of them interleave as closely as they
    # can; when the first query already locks the whole group, the other approval cannot get that far and
    # the wait times out.
    barrier = threading.Barrier(2)

    def approve(i: int) -> str:
        paused = False

        def pause_after_first_lock(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
            nonlocal paused
            result = execute(sql, params, many, context)
            if "FOR UPDATE" in sql and not paused:
                paused = True
                with contextlib.suppress(threading.BrokenBarrierError):
                    barrier.wait(timeout=1)
            return result

        try:
            with connection.execute_wrapper(pause_after_first_lock):
                override_approve(override=group[i], actor=Actor.for_user(approvers[i]))
            return "approved"
        except ApprovalError as exc:
            return str(exc)
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=2) as pool:
        outcomes = list(pool.map(approve, range(2)))

    assert sorted(outcomes)[0] == "approved" and "approved, not pending" in sorted(outcomes)[1]
    assert set(Override.objects.values_list("status", flat=True)) == {Override.Status.APPROVED}
