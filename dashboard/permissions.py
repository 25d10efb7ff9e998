"""Who may do what. Roles are Django groups holding explicit permissions.

Each capability is a permission `scaling.<capability>` (declared on
scaling.models.Capability); `ensure_roles()` grants every role its
capabilities plus the model permissions that go with them, and runs after
every migrate (and test-database flush). Views use `@requires("operate")`;
the API uses `can(user, "operate")`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar
from urllib.parse import urlencode

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.http.response import HttpResponseBase
from django.shortcuts import redirect, resolve_url
from django_htmx.http import HttpResponseClientRedirect

ROLES = ("viewer", "operator", "approver", "admin")

# role -> its capabilities, then the Django model permissions (app_label.codename) it holds.
ROLE_CAPABILITIES: dict[str, tuple[str, ...]] = {
    "viewer": ("view",),
    "operator": ("view", "operate"),
    "approver": ("view", "operate", "approve"),
    "admin": ("view", "operate", "approve", "administer"),
}
_READABLE = ("service", "decision", "metricsample", "override", "game", "gamedayrule", "auditevent")
ROLE_MODEL_PERMISSIONS: dict[str, tuple[str, ...]] = {
    # read everything except secrets (API tokens are never readable across users)
    "viewer": tuple(f"scaling.view_{m}" for m in _READABLE),
    "operator": (*(f"scaling.view_{m}" for m in _READABLE), "scaling.add_override", "scaling.change_override"),
    "approver": (*(f"scaling.view_{m}" for m in _READABLE), "scaling.add_override", "scaling.change_override"),
    "admin": (
        *(f"scaling.{verb}_{m}" for m in _READABLE for verb in ("view", "add", "change")),
        "scaling.delete_gamedayrule",
        "auth.view_user",
        "auth.add_user",
        "auth.change_user",
        "auth.view_group",
    ),
}

# capability -> the roles that hold it (kept for templates and older callers)
CAPABILITIES: dict[str, frozenset[str]] = {
    capability: frozenset(role for role, caps in ROLE_CAPABILITIES.items() if capability in caps)
    for capability in ("view", "operate", "approve", "administer")
}


def ensure_roles() -> None:
    """Create the role groups with exactly their permissions (idempotent).

    A role that already exists is set back to its permissions through the relation, so
    the audit log records what changed (a grant made by hand in the admin, taken back).
    A role created here starts with them written directly, which sends no signal: it
    comes into being with the database, like the tables, rather than being changed.
    """
    from django.contrib.auth.models import Group, Permission

    from scaling.audit import Actor, account_changes_by

    reason = "a role is reset to the permissions Tipoff gives it (after migrate)"
    with transaction.atomic(), account_changes_by(Actor.system("ensure_roles"), reason):
        for role in ROLES:
            wanted = {f"scaling.{cap}" for cap in ROLE_CAPABILITIES[role]} | set(ROLE_MODEL_PERMISSIONS[role])
            perms = [
                p
                for p in Permission.objects.select_related("content_type")
                if f"{p.content_type.app_label}.{p.codename}" in wanted
            ]
            group, created = Group.objects.get_or_create(name=role)
            if created:
                through = Group.permissions.through
                through.objects.bulk_create([through(group_id=group.pk, permission_id=p.pk) for p in perms])
            else:
                group.permissions.set(perms)


def roles_of(user: Any) -> set[str]:
    if not getattr(user, "is_authenticated", False):
        return set()
    if getattr(user, "is_superuser", False):
        return set(ROLES)
    cached = getattr(user, "_tipoff_roles", None)
    if cached is None:
        cached = set(user.groups.filter(name__in=ROLES).values_list("name", flat=True))
        user._tipoff_roles = cached
    return set(cached)


def can(user: Any, capability: str) -> bool:
    if capability not in CAPABILITIES:
        raise ValueError(f"unknown capability {capability!r}")
    if not getattr(user, "is_authenticated", False) or not getattr(user, "is_active", False):
        return False
    return bool(user.has_perm(f"scaling.{capability}"))


View = TypeVar("View", bound=Callable[..., HttpResponseBase])


def requires(capability: str, *, answers_json: bool = False) -> Callable[[View], View]:
    """Log in first; then 403 unless the user's role holds the capability.

    answers_json marks an endpoint a page's script fetches: without a session it answers 401, not a
    redirect to the login page (see `login_needed`).
    """
    if capability not in CAPABILITIES:
        raise ValueError(f"unknown capability {capability!r}")

    def decorator(view: View) -> View:
        @wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
            if not request.user.is_authenticated:
                return login_needed(request, answers_json=answers_json)
            if not can(request.user, capability):
                raise PermissionDenied(f"needs the {capability!r} capability")
            if capability == "administer" and request.method not in SAFE_METHODS and not has_recent_auth(request):
                return reauth_redirect(request)
            return view(request, *args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorator


def login_needed(request: HttpRequest, *, answers_json: bool) -> HttpResponse:
    """No session (never logged in, or it expired while a live page kept polling).

    A plain request is redirected to the login page. The requests a page makes by itself must not be:
    htmx would follow the redirect and swap the whole login page into the polled element, and a script
    reading JSON would fail without a sign. htmx is told to send the browser to the login page and back
    to the page it was on; a JSON endpoint answers 401 for its script to say the session has ended.
    """
    if answers_json:
        return JsonResponse(
            {"error": "not logged in: the session has ended", "login_url": resolve_url(settings.LOGIN_URL)}, status=401
        )
    htmx = getattr(request, "htmx", None)
    if htmx:
        back = htmx.current_url_abs_path or request.get_full_path()
        return HttpResponseClientRedirect(f"{resolve_url(settings.LOGIN_URL)}?{urlencode({'next': back})}")
    return redirect_to_login(request.get_full_path())


SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
REAUTH_SESSION_KEY = "tipoff_reauth_at"


def mark_recent_auth(request: HttpRequest) -> None:
    request.session[REAUTH_SESSION_KEY] = time.time()


def has_recent_auth(request: HttpRequest, max_age_s: int | None = None) -> bool:
    max_age = settings.REAUTH_MAX_AGE_SECONDS if max_age_s is None else max_age_s
    confirmed_at = request.session.get(REAUTH_SESSION_KEY)
    return isinstance(confirmed_at, int | float) and time.time() - confirmed_at <= max_age


def recent_auth(max_age_s: int | None = None) -> Callable[[View], View]:
    """The password must have been typed within max_age_s (default REAUTH_MAX_AGE_SECONDS).

    `@requires("administer")` already applies this to every non-GET request;
    use it directly for other sensitive views. Logging in counts as typing it.
    """

    def decorator(view: View) -> View:
        @wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
            if has_recent_auth(request, max_age_s):
                return view(request, *args, **kwargs)
            return reauth_redirect(request)

        return wrapper  # type: ignore[return-value]

    return decorator


def reauth_redirect(request: HttpRequest) -> HttpResponse:
    """To the password confirmation page, which returns to the page the change was made from."""
    from django.urls import reverse

    back = request.get_full_path() if request.method in SAFE_METHODS else request.META.get("HTTP_REFERER", "")
    url = f"{reverse('access:confirm-password')}?{urlencode({'next': back or '/'})}"
    if getattr(request, "htmx", False):
        response = HttpResponse(status=204)
        response["HX-Redirect"] = url
        return response
    return redirect(url)
