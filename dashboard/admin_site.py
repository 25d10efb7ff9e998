"""Django's admin site, asking for the password again as Tipoff's own admin pages do.

The admin makes users and superusers, grants roles and revokes tokens: a session older than
REAUTH_MAX_AGE_SECONDS (left open, or stolen) must not do that without the password, any more than it can
change a policy. Every admin page asks, reads too (they list every account), but for logging out.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import update_wrapper
from typing import Any, TypeVar, cast

from django.contrib import admin
from django.http import HttpRequest
from django.http.response import HttpResponseBase

from dashboard.permissions import has_recent_auth, reauth_redirect

View = TypeVar("View", bound=Callable[..., HttpResponseBase])


class TipoffAdminSite(admin.AdminSite):
    def admin_view(self, view: View, cacheable: bool = False) -> View:
        """Django's wrapper (staff only, CSRF, never cached) around a check that the password was typed within
        REAUTH_MAX_AGE_SECONDS, else to the confirmation page and back (`reauth_redirect`)."""
        if view == self.logout:
            return super().admin_view(view, cacheable)

        def confirmed(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
            if not has_recent_auth(request):
                return reauth_redirect(request)
            return view(request, *args, **kwargs)

        return super().admin_view(cast(View, update_wrapper(confirmed, view)), cacheable)
