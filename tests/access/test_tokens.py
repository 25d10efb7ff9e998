"""API tokens: shown once, stored hashed, named, expiring, revocable, acting with the user's role, audited."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from scaling.audit import Actor, EventType
from scaling.models import ApiToken, AuditEvent
from scaling.tokens import TokenError, token_create, token_digest
from tests.factories import make_service, make_user

pytestmark = pytest.mark.django_db


def _bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def test_a_user_creates_a_token_sees_it_once_and_only_its_hash_is_stored(client: Client) -> None:
    user = make_user("viewer", "viewer")
    client.force_login(user)
    response = client.post(reverse("access:tokens"), {"name": "grafana", "days": "30"})
    assert response.status_code == 200
    secret = response.context["secret"]
    assert secret.startswith("tpo_") and secret in response.content.decode()
    token = ApiToken.objects.get(user=user, name="grafana")
    assert token.token_sha256 == token_digest(secret) and secret not in str(token.__dict__)
    assert token.expires_at - token.created_at == timedelta(days=30)
    again = client.get(reverse("access:tokens")).content.decode()
    assert secret not in again and token.prefix in again
    event = AuditEvent.objects.get(event_type=EventType.TOKEN_CREATED)
    assert event.actor_label == "viewer" and secret not in str(event.after)


def test_a_token_acts_with_its_users_role_and_its_use_is_audited() -> None:
    make_service()
    viewer = make_user("viewer", "viewer")
    secret = token_create(user=viewer, name="ci", days=5, actor=Actor.for_user(viewer)).secret
    client = Client()
    listed = client.get("/api/services", headers=_bearer(secret))
    assert listed.status_code == 200 and listed.json()[0]["name"] == "win-probability"
    # a viewer's token cannot write, and is refused before the body is even read
    denied = client.post("/api/overrides", data="{}", content_type="application/json", headers=_bearer(secret))
    assert denied.status_code == 403
    used = AuditEvent.objects.filter(event_type=EventType.TOKEN_USED)
    assert used.count() == 2  # the read (first use) and the write attempt
    assert used.first() is not None and used.first().actor_type == "token"  # type: ignore[union-attr]
    denial = AuditEvent.objects.get(event_type=EventType.AUTH_DENIED, actor_label="viewer (token ci)")
    assert denial.actor_type == "token" and "operate" in denial.reason


def test_reads_with_a_token_are_audited_at_most_once_per_interval() -> None:
    viewer = make_user("viewer", "viewer")
    secret = token_create(user=viewer, name="poller", days=5, actor=Actor.for_user(viewer)).secret
    client = Client()
    with time_machine.travel(timezone.now(), tick=False) as clock:
        for _ in range(5):
            assert client.get("/api/services", headers=_bearer(secret)).status_code == 200
        clock.shift(timedelta(minutes=6))
        assert client.get("/api/services", headers=_bearer(secret)).status_code == 200
    assert AuditEvent.objects.filter(event_type=EventType.TOKEN_USED).count() == 2


def test_a_revoked_or_expired_or_unknown_token_is_refused(client: Client) -> None:
    user = make_user("operator", "operator")
    issued = token_create(user=user, name="old", days=1, actor=Actor.for_user(user))
    api = Client()
    client.force_login(user)
    assert client.post(reverse("access:token-revoke", args=[issued.token.pk])).status_code == 302
    assert api.get("/api/services", headers=_bearer(issued.secret)).status_code == 401
    assert AuditEvent.objects.filter(event_type=EventType.TOKEN_REVOKED).count() == 1

    fresh = token_create(user=user, name="new", days=1, actor=Actor.for_user(user))
    with time_machine.travel(timezone.now() + timedelta(days=1, seconds=1)):
        assert api.get("/api/services", headers=_bearer(fresh.secret)).status_code == 401
    assert api.get("/api/services", headers=_bearer("tpo_not-a-real-token")).status_code == 401


def test_one_user_cannot_revoke_anothers_token(client: Client) -> None:
    owner = make_user("approver", "approver")
    issued = token_create(user=owner, name="mine", days=3, actor=Actor.for_user(owner))
    client.force_login(make_user("operator", "operator"))
    assert client.post(reverse("access:token-revoke", args=[issued.token.pk])).status_code == 404
    assert ApiToken.objects.get(pk=issued.token.pk).revoked_at is None


def test_token_requests_are_validated_with_clear_messages() -> None:
    user = make_user("viewer", "viewer")
    with pytest.raises(TokenError, match="name"):
        token_create(user=user, name="  ", days=3, actor=Actor.for_user(user))
    with pytest.raises(TokenError, match="days"):
        token_create(user=user, name="x", days=10_000, actor=Actor.for_user(user))
    token_create(user=user, name="x", days=3, actor=Actor.for_user(user))
    with pytest.raises(TokenError, match="already have a token named 'x'"):
        token_create(user=user, name="x", days=3, actor=Actor.for_user(user))


def test_the_api_with_a_session_needs_the_csrf_token_but_a_bearer_token_does_not() -> None:
    user = make_user("operator", "operator")
    session = Client(enforce_csrf_checks=True)
    session.force_login(user)
    assert session.post("/api/overrides", data="{}", content_type="application/json").status_code == 403
    secret = token_create(user=user, name="ci", days=3, actor=Actor.for_user(user)).secret
    bearer = Client(enforce_csrf_checks=True)
    response = bearer.post("/api/overrides", data="{}", content_type="application/json", headers=_bearer(secret))
    assert response.status_code == 422  # through the gate, then the body is validated


def test_an_admin_revokes_anyones_token_in_the_admin_and_cannot_edit_the_audit_log(client: Client) -> None:
    owner = make_user("operator", "operator")
    issued = token_create(user=owner, name="laptop", days=3, actor=Actor.for_user(owner))
    client.force_login(make_user("admin", "admin"))
    changelist = reverse("admin:scaling_apitoken_changelist")
    response = client.post(changelist, {"action": "revoke", "_selected_action": [issued.token.pk]})
    assert response.status_code == 302
    assert ApiToken.objects.get(pk=issued.token.pk).revoked_at is not None
    assert AuditEvent.objects.filter(event_type=EventType.TOKEN_REVOKED, actor_label="admin").exists()
    event = AuditEvent.objects.first()
    assert event is not None
    assert client.get(reverse("admin:scaling_auditevent_change", args=[event.pk])).status_code == 200
    assert client.post(reverse("admin:scaling_auditevent_delete", args=[event.pk]), {"post": "yes"}).status_code == 403
    assert client.get(reverse("admin:scaling_auditevent_add")).status_code == 403
