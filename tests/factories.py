"""Test data builders, in one place."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from django.contrib.auth.models import Group, User

from scaling.models import Service, SimulatedFleet, WhatIfRun

T0 = datetime(2026, 1, 15, 23, 30, tzinfo=UTC)


def make_service(
    name: str = "win-probability", *, replicas: int = 2, demand_scale: float = 1.0, **fields: Any
) -> Service:
    defaults: dict[str, Any] = {"display_name": name.replace("-", " ").title(), "min_replicas": 1, "max_replicas": 50}
    service = Service.objects.create(name=name, **(defaults | fields))
    ready = [(T0 - timedelta(days=365)).isoformat()] * replicas
    SimulatedFleet.objects.create(service=service, ready_at=ready, demand_scale=demand_scale, seed=1)
    return service


def make_user(username: str = "operator", role: str = "operator", password: str = "pw-for-tests-1") -> User:
    """A user with the role, as if made before the test: bulk_create sends no signals, so the setup writes
    none of the account-change audit events a test may be counting (tests/access/test_accounts.py tests those)."""
    admin = role == "admin"
    user = User(username=username, is_staff=admin, is_superuser=admin)
    user.set_password(password)
    User.objects.bulk_create([user])
    group = Group.objects.get_or_create(name=role)[0]
    User.groups.through.objects.bulk_create([User.groups.through(user_id=user.pk, group_id=group.pk)])
    return user


def make_whatif_run(service: Service, *, created_at: datetime, user: User | None = None, **fields: Any) -> WhatIfRun:
    """A what-if run as if queued at created_at (over the hour before it), without a slot or a worker."""
    return WhatIfRun.objects.create(
        service=service,
        created_by=user,
        created_at=created_at,
        range_start=created_at - timedelta(hours=1),
        range_end=created_at,
        policy=fields.pop("policy", "hpa"),
        **fields,
    )
