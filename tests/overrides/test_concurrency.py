"""Fifty simultaneous pin requests for the same service and window through the API:
exactly one is accepted, the other 49 get 409, and every attempt is audited."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from django.contrib.auth.models import Group, User
from django.db import connections
from django.test import Client
from django.utils import timezone

from scaling.audit import EventType
from scaling.models import AuditEvent, Override
from tests.factories import make_service

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
