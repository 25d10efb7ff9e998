"""Fifty simultaneous pin requests for the same service and window: one wins, the rest get a conflict."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.db import connections
from django.utils import timezone

from scaling.audit import Actor, EventType
from scaling.models import AuditEvent, Override
from scaling.overrides import OverrideConflict, override_create
from tests.factories import make_service

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

ATTEMPTS = 50


def test_fifty_simultaneous_pins_exactly_one_is_accepted_and_every_attempt_is_audited() -> None:
    service = make_service()
    # No passwords: hashing fifty of them would dominate the test's time.
    users = User.objects.bulk_create([User(username=f"op{i}") for i in range(ATTEMPTS)])
    now = timezone.now()
    start, end = now + timedelta(minutes=10), now + timedelta(hours=2)
    barrier = threading.Barrier(ATTEMPTS)

    def attempt(i: int) -> str:
        try:
            barrier.wait(timeout=30)
            override_create(
                services=[service],
                kind="pin",
                replicas=5 + i % 3,
                starts_at=start,
                ends_at=end,
                reason=f"attempt {i}",
                actor=Actor.for_user(users[i]),
            )
            return "accepted"
        except OverrideConflict:
            return "conflict"
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=ATTEMPTS) as pool:
        outcomes = list(pool.map(attempt, range(ATTEMPTS)))

    assert outcomes.count("accepted") == 1
    assert outcomes.count("conflict") == ATTEMPTS - 1
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
