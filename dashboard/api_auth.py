"""API authentication: a Bearer API token, or the browser session (with its CSRF token).

Either way the request acts as the user, with that user's role; a token also
sets `request.api_token`, so `Actor.for_request(request)` records the token.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from ninja.security import HttpBearer, SessionAuth

from dashboard.permissions import can
from scaling.tokens import token_authenticate


class ApiTokenAuth(HttpBearer):
    openapi_description = "An API token from /account/tokens/ in the Authorization header: `Bearer tpo_...`"

    def authenticate(self, request: HttpRequest, token: str) -> Any:
        found = token_authenticate(secret=token, method=request.method or "GET", path=request.path)
        if found is None or not can(found.user, "view"):
            return None
        request.user = found.user
        request.api_token = found  # type: ignore[attr-defined]
        return found.user


class RoleSessionAuth(SessionAuth):
    """The logged-in session (CSRF checked on writes), for users who hold a role."""

    def authenticate(self, request: HttpRequest, key: str | None) -> Any:
        user = super().authenticate(request, key)
        return user if user is not None and can(user, "view") else None


api_auth = [ApiTokenAuth(), RoleSessionAuth()]
