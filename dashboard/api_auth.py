"""API authentication and the role check, before any body is parsed.

Either a Bearer API token or the browser session (with its CSRF token on
writes) identifies the user; the request then acts with that user's role. A
token also sets `request.api_token`, so `Actor.for_request(request)` records
the token. Reads need "view"; writes need "operate" unless API_CAPABILITIES
asks for more — so a viewer's write is refused before validation, and an
endpoint added without an entry is never open to viewers. Endpoints keep their
own `can()` checks as a second line.

An administrator's write through the session also needs the password typed
recently, as `@requires("administer")` asks of the pages; otherwise a session
the pages would send to /account/confirm-password/ could make the same change
here. A Bearer token is exempt: it is a separate secret a script holds, issued
only after its user typed the password (/account/tokens/ asks for it), expiring
and revocable; there is no password to re-type, and re-confirming guards an
unlocked browser left open, which a token is not.
"""

from __future__ import annotations

import re
from typing import Any

from django.http import HttpRequest
from ninja.errors import HttpError
from ninja.security import HttpBearer, SessionAuth

from dashboard.permissions import SAFE_METHODS, can, has_recent_auth
from scaling.tokens import token_authenticate

# (method, Django route of the endpoint, converters left out) -> capability, where more than the default is needed.
API_CAPABILITIES: dict[tuple[str, str], str] = {
    ("POST", "api/overrides/<pk>/approve"): "approve",
    ("POST", "api/overrides/<pk>/reject"): "approve",
    ("POST", "api/rules"): "administer",
    ("PUT", "api/rules/<pk>"): "administer",
    ("DELETE", "api/rules/<pk>"): "administer",
    ("POST", "api/schedule/import"): "administer",
    ("PUT", "api/services/<name>/policy"): "administer",
}


# Everything under these routes is for administrators, whatever the method.
ADMIN_ROUTE_PREFIXES = ("api/admin/",)


def required_capability(request: HttpRequest) -> str:
    method = (request.method or "GET").upper()
    match = getattr(request, "resolver_match", None)
    # "<int:pk>" and "<pk>" name the same route here.
    route = re.sub(r"<(?:\w+:)?(\w+)>", r"<\1>", match.route) if match is not None else ""
    if route.startswith(ADMIN_ROUTE_PREFIXES):
        return "administer"
    return API_CAPABILITIES.get((method, route), "view" if method in SAFE_METHODS else "operate")


def require_capability(request: HttpRequest, capability: str) -> None:
    """A second line behind the route table: the session or token's user must hold the capability."""
    if not can(request.user, capability):
        raise HttpError(403, f"needs the {capability!r} capability")


def _check_role(request: HttpRequest, user: Any) -> Any:
    capability = required_capability(request)
    if not can(user, capability):
        request._tipoff_denied = f"API: needs the {capability!r} capability"  # type: ignore[attr-defined]
        raise HttpError(403, f"needs the {capability!r} capability")
    return user


class PasswordConfirmationNeeded(Exception):
    """An administrator's write through a session whose password was not typed recently.

    dashboard/api.py answers it with a 403 naming the page that confirms the password.
    """


class ApiTokenAuth(HttpBearer):
    openapi_description = "An API token from /account/tokens/ in the Authorization header: `Bearer tpo_...`"

    def authenticate(self, request: HttpRequest, token: str) -> Any:
        found = token_authenticate(secret=token, method=request.method or "GET", path=request.path)
        if found is None:
            return None
        request.user = found.user
        request.api_token = found  # type: ignore[attr-defined]
        return _check_role(request, found.user)


class RoleSessionAuth(SessionAuth):
    """The logged-in session; ninja checks the CSRF token on writes before this runs."""

    def authenticate(self, request: HttpRequest, key: str | None) -> Any:
        user = super().authenticate(request, key)
        if user is None:
            return None
        _check_role(request, user)
        writes = (request.method or "GET").upper() not in SAFE_METHODS
        if writes and required_capability(request) == "administer" and not has_recent_auth(request):
            request._tipoff_denied = "API: the password was not confirmed recently"  # type: ignore[attr-defined]
            raise PasswordConfirmationNeeded
        return user


api_auth = [ApiTokenAuth(), RoleSessionAuth()]
