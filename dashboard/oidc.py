"""Optional single sign-on through OpenID Connect (mozilla-django-oidc), on when OIDC_RP_CLIENT_ID is set.

The provider's role claim (OIDC_ROLE_CLAIM, default "groups") decides the
user's Tipoff role at every sign-in; someone the provider gives no Tipoff role
is refused. Sign-ins go through Django's login(), so they are audited like any other.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth.models import Group
from django.core.exceptions import SuspiciousOperation
from django.db import transaction
from mozilla_django_oidc.auth import OIDCAuthenticationBackend

from dashboard.permissions import ROLES
from scaling.audit import Actor, account_changes_by

# Accounts single sign-on creates, and the roles it sets, are audited as this system actor.
SSO_ACTOR = Actor.system("sso")


def username_from_claims(email: str | None, claims: dict[str, Any]) -> str:
    return str(claims.get("preferred_username") or email or claims["sub"])[:150]


def roles_from_claims(claims: dict[str, Any]) -> list[str]:
    raw = claims.get(settings.OIDC_ROLE_CLAIM) or []
    values = {raw} if isinstance(raw, str) else {str(v) for v in raw}
    prefix = settings.OIDC_ROLE_PREFIX
    return [role for role in ROLES if f"{prefix}{role}" in values]


class TipoffOIDCBackend(OIDCAuthenticationBackend):
    def verify_claims(self, claims: dict[str, Any]) -> bool:
        return bool(claims.get("sub")) and bool(roles_from_claims(claims))

    def filter_users_by_claims(self, claims: dict[str, Any]) -> Any:
        username = username_from_claims(claims.get("email"), claims)
        users = self.UserModel.objects.filter(username=username)
        # A provider must never sign someone in as a local (password) account that shares the name.
        if any(user.has_usable_password() for user in users):
            raise SuspiciousOperation(f"a local account is named {username!r}; refusing to sign in over it")
        return users

    def create_user(self, claims: dict[str, Any]) -> Any:
        with account_changes_by(SSO_ACTOR, "first single sign-on"):
            user = super().create_user(claims)
        user.set_unusable_password()
        user.save(update_fields=["password"])
        return self.update_user(user, claims)

    def update_user(self, user: Any, claims: dict[str, Any]) -> Any:
        """The provider is the source of truth for the role: replace the user's role groups."""
        wanted = set(roles_from_claims(claims))
        reason = f"single sign-on: the provider's {settings.OIDC_ROLE_CLAIM!r} claim sets the role"
        with transaction.atomic(), account_changes_by(SSO_ACTOR, reason):
            user.groups.remove(*Group.objects.filter(name__in=set(ROLES) - wanted))
            user.groups.add(*Group.objects.filter(name__in=wanted))
        return user
