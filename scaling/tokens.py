"""API tokens: created (shown once), used, revoked — each audited in the same transaction."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from scaling.audit import Actor, EventType, audit_record
from scaling.models import ApiToken

TOKEN_PREFIX = "tpo_"  # noqa: S105 - a marker that makes leaked tokens easy to grep for, not a secret


class TokenError(ValueError):
    """The token request is invalid; the message names the field."""


@dataclass(frozen=True)
class IssuedToken:
    token: ApiToken
    secret: str  # shown once, never stored


def token_digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def token_create(*, user: Any, name: str, days: int, actor: Actor, now: datetime | None = None) -> IssuedToken:
    now = now or timezone.now()
    name = name.strip()
    if not name or len(name) > 80:
        raise TokenError("name: give the token a name of 1 to 80 characters")
    if not 1 <= days <= settings.API_TOKEN_MAX_DAYS:
        raise TokenError(f"days: a token lives 1 to {settings.API_TOKEN_MAX_DAYS} days")
    if ApiToken.objects.filter(user=user, name=name).exists():
        raise TokenError(f"name: you already have a token named {name!r}")
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    with transaction.atomic():
        token = ApiToken.objects.create(
            user=user,
            name=name,
            prefix=secret[:12],
            token_sha256=token_digest(secret),
            created_at=now,
            expires_at=now + timedelta(days=days),
        )
        audit_record(
            actor=actor,
            event_type=EventType.TOKEN_CREATED,
            object_type="api_token",
            object_id=token.pk,
            after={"name": name, "prefix": token.prefix, "user": user.get_username(), "expires_at": token.expires_at},
            at=now,
        )
    return IssuedToken(token=token, secret=secret)


def token_revoke(*, token: ApiToken, actor: Actor, now: datetime | None = None) -> bool:
    """Revoke; False when it was already revoked (nothing changes)."""
    now = now or timezone.now()
    with transaction.atomic():
        updated = ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(revoked_at=now)
        if not updated:
            return False
        audit_record(
            actor=actor,
            event_type=EventType.TOKEN_REVOKED,
            object_type="api_token",
            object_id=token.pk,
            before={"name": token.name, "prefix": token.prefix, "user": token.user.get_username()},
            at=now,
        )
    return True


def token_authenticate(*, secret: str, method: str, path: str, now: datetime | None = None) -> ApiToken | None:
    """The live token for this secret, or None. Its use is audited: every write, reads at most
    once per API_TOKEN_USE_AUDIT_SECONDS."""
    if not secret.startswith(TOKEN_PREFIX):
        return None
    now = now or timezone.now()
    token = ApiToken.objects.select_related("user").filter(token_sha256=token_digest(secret)).first()
    if token is None or token.revoked_at is not None or token.expires_at <= now or not token.user.is_active:
        return None
    quiet_until = (token.last_used_at or now - timedelta(days=1)) + timedelta(
        seconds=settings.API_TOKEN_USE_AUDIT_SECONDS
    )
    is_write = method not in ("GET", "HEAD", "OPTIONS")
    with transaction.atomic():
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        if is_write or now >= quiet_until:
            audit_record(
                actor=Actor.for_token(token),
                event_type=EventType.TOKEN_USED,
                object_type="api_token",
                object_id=token.pk,
                after={"method": method, "path": path[:200]},
                at=now,
            )
    token.last_used_at = now
    return token
