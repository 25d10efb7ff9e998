"""Who may do what. Roles are Django groups; a capability lists the roles that hold it.

Views use `@requires("operate")`; the API uses `can(user, "operate")`.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse

ROLES = ("viewer", "operator", "approver", "admin")

CAPABILITIES: dict[str, frozenset[str]] = {
    # read every page and endpoint (no secrets)
    "view": frozenset({"viewer", "operator", "approver", "admin"}),
    # create/cancel/extend overrides within limits, pause and dry-run services
    "operate": frozenset({"operator", "approver", "admin"}),
    # approve or reject other people's overrides
    "approve": frozenset({"approver", "admin"}),
    # services, policies, game-day rules, users, emergency bypass
    "administer": frozenset({"admin"}),
}


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
    return bool(roles_of(user) & CAPABILITIES[capability])


View = TypeVar("View", bound=Callable[..., HttpResponse])


def requires(capability: str) -> Callable[[View], View]:
    """Log in first; then 403 unless the user's role holds the capability."""
    if capability not in CAPABILITIES:
        raise ValueError(f"unknown capability {capability!r}")

    def decorator(view: View) -> View:
        @login_required
        @wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if not can(request.user, capability):
                raise PermissionDenied(f"needs the {capability!r} capability")
            return view(request, *args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorator
