"""Access events into the audit log: logins, failed logins, lockouts, logouts.

Receivers only translate the signal into one audit_record call (in its own
transaction, as these happen outside any change).
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.http import HttpRequest

from dashboard.permissions import mark_recent_auth
from scaling.audit import Actor, EventType, audit_record
from scaling.models import AuditEvent


def _client(request: HttpRequest | None) -> dict[str, str]:
    if request is None:
        return {}
    return {
        "ip": str(request.META.get("REMOTE_ADDR", "")),
        "user_agent": str(request.META.get("HTTP_USER_AGENT", ""))[:200],
    }


def _over_http(request: HttpRequest | None) -> bool:
    # A login with no client address did not come over HTTP (Django's test client
    # force_login, a shell): there is no one at a browser to record.
    return request is not None and bool(request.META.get("REMOTE_ADDR"))


def on_logged_in(sender: Any, request: HttpRequest | None, user: Any, **kwargs: Any) -> None:
    if request is not None and hasattr(request, "session"):
        mark_recent_auth(request)  # typing the password to log in counts as a fresh confirmation
    if not _over_http(request):
        return
    with transaction.atomic():
        audit_record(actor=Actor.for_user(user), event_type=EventType.AUTH_LOGIN, after=_client(request))


def on_logged_out(sender: Any, request: HttpRequest | None, user: Any, **kwargs: Any) -> None:
    if user is None or not _over_http(request):
        return
    with transaction.atomic():
        audit_record(actor=Actor.for_user(user), event_type=EventType.AUTH_LOGOUT, after=_client(request))


def on_login_failed(
    sender: Any, credentials: dict[str, Any], request: HttpRequest | None = None, **kwargs: Any
) -> None:
    username = str(credentials.get("username", ""))[:150]
    locked = bool(getattr(request, "axes_locked_out", False))
    actor = Actor(AuditEvent.ActorType.USER, username or "(no username)")
    with transaction.atomic():
        audit_record(
            actor=actor,
            event_type=EventType.AUTH_LOCKED_OUT if locked else EventType.AUTH_LOGIN_FAILED,
            after=_client(request),
            reason="locked out after too many failed logins" if locked else "wrong username or password",
        )


def connect() -> None:
    from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed

    user_logged_in.connect(on_logged_in, dispatch_uid="tipoff-audit-login")
    user_logged_out.connect(on_logged_out, dispatch_uid="tipoff-audit-logout")
    user_login_failed.connect(on_login_failed, dispatch_uid="tipoff-audit-login-failed")
