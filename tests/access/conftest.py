"""Objects every URL of the role matrix can point at."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.utils import timezone

from scaling import services
from scaling.audit import Actor
from scaling.models import ApiToken, Decision, GameDayRule, Override, Service
from scaling.tokens import token_create
from tests.factories import make_service, make_user

ROLES = ("anon", "norole", "viewer", "operator", "approver", "admin")


@dataclass
class World:
    service: Service
    decision: Decision
    override: Override
    rule: GameDayRule
    token: ApiToken
    users: dict[str, User]


@pytest.fixture
def world(db: None) -> World:
    users = {role: make_user(f"u-{role}", role) for role in ROLES if role not in ("anon", "norole")}
    users["norole"] = User.objects.create_user(username="u-norole", password="pw-for-tests-1")
    service = make_service(demand_scale=40.0)
    now = timezone.now()
    services.service_evaluate(service_id=service.pk, tick_at=services.align_tick(now))
    decision = Decision.objects.get(service=service)
    override = Override.objects.create(
        service=service,
        kind=Override.Kind.FLOOR,
        replicas=3,
        reason="matrix fixture",
        starts_at=now + timedelta(hours=1),
        ends_at=now + timedelta(hours=2),
        status=Override.Status.PENDING_APPROVAL,
        created_by=users["operator"],
    )
    rule = GameDayRule.objects.create(name="matrix rule", reason="matrix fixture", floor_replicas=2)
    token = token_create(user=users["admin"], name="matrix", days=30, actor=Actor.system("test")).token
    return World(service=service, decision=decision, override=override, rule=rule, token=token, users=users)
