"""Request guards: oversize bodies get 413 (a page's: back to the page, with a message); every 403 a
signed-in user (or token) meets is audited; account changes made while serving a signed-in user are audited as
theirs; every 4xx under /api/ answers in the API's error shape."""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import render
from django.urls import reverse

from dashboard.api_errors import error_body, reason_phrase
from dashboard.redirects import safe_next
from scaling.audit import Actor, EventType, account_changes_by, audit_record


class RequestLimitsMiddleware:
    """Refuse a body larger than TIPOFF_MAX_REQUEST_BYTES before anything reads it.

    Under /api/ it is refused here (413, in the API's error shape: ApiErrorBodyMiddleware). A page's request
    is marked, and refused by OversizePageMiddleware, which comes once the user and the messages are known;
    none of the middleware between them reads the body (a view's CSRF check, which does, comes after both)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return HttpResponse("Content-Length is not a number\n", status=400, content_type="text/plain")
        if length > settings.TIPOFF_MAX_REQUEST_BYTES:
            if request.path_info.startswith("/api/") or OVERSIZE_PAGE not in settings.MIDDLEWARE:
                return HttpResponse(
                    f"request body of {length} bytes is over the {settings.TIPOFF_MAX_REQUEST_BYTES}-byte limit\n",
                    status=413,
                    content_type="text/plain",
                )
            request._tipoff_oversize = length  # type: ignore[attr-defined]
        return self.get_response(request)


OVERSIZE_PAGE = "dashboard.middleware.OversizePageMiddleware"


def _size(n: int) -> str:
    for unit, scale in (("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= scale:
            return f"{n / scale:.1f}".removesuffix(".0") + f" {unit}"
    return f"{n} bytes"


class OversizePageMiddleware:
    """A page's request over TIPOFF_MAX_REQUEST_BYTES (marked by RequestLimitsMiddleware), its body unread.

    A signed-in person is sent back to the page they sent it from (the calendar, for a schedule upload),
    which says why nothing was imported or saved; anyone else gets the app's 413 page saying the same."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        length = getattr(request, "_tipoff_oversize", None)
        if length is None:
            return self.get_response(request)
        importing = request.path_info == reverse("dashboard:schedule-import")
        what = "upload" if request.content_type == "multipart/form-data" else "request"
        why = (
            f"the {what} of {_size(length)} is over the {_size(settings.TIPOFF_MAX_REQUEST_BYTES)} a request may carry"
        )
        if importing:
            why += "; manage.py import_schedule imports a larger file"
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated:
            return render(request, "413.html", {"why": why}, status=413)
        messages.error(request, f"Nothing {'imported' if importing else 'saved'}: {why}.")
        back = safe_next(request, request.META.get("HTTP_REFERER"), "dashboard:calendar" if importing else "/")
        response = HttpResponseRedirect(back)
        response.status_code = 303  # See Other: the page is fetched, not posted to again
        return response


class ApiErrorBodyMiddleware:
    """A 4xx under /api/ that Django answered before the API ran is given the API's error shape.

    The API's handlers answer its own errors (dashboard/api_errors.py); these come from elsewhere: a URL no
    endpoint has (among them a path value the route's converter refuses, as /api/overrides/abc), a method the
    URL does not take (405), and the request guards below (an oversize body, 413). The page or text they
    carried is for a browser; a client of the API gets JSON saying the same."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if not (request.path_info.startswith("/api/") and 400 <= response.status_code < 500):
            return response
        content_type = response.get("Content-Type", "")
        if content_type.startswith("application/json") or getattr(response, "streaming", False):
            return response
        text = response.content.decode("utf-8", "replace").strip() if content_type.startswith("text/plain") else ""
        detail = text if text and len(text) <= 500 else reason_phrase(response.status_code)
        if response.status_code == 405 and "Allow" in response:
            detail = f"{reason_phrase(405)}: {request.path_info} takes {response['Allow']}"
        replaced = JsonResponse(error_body(detail), status=response.status_code)
        for header in ("Allow", "Retry-After", "WWW-Authenticate"):
            if header in response:
                replaced[header] = response[header]
        return replaced


class AuditDeniedMiddleware:
    """Write auth.permission_denied for each 403 served to an authenticated user or API token."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if response.status_code == 403:
            user = getattr(request, "user", None)
            if user is not None and user.is_authenticated:
                with transaction.atomic():
                    audit_record(
                        actor=Actor.for_request(request),
                        event_type=EventType.AUTH_DENIED,
                        after={"method": request.method, "path": request.path[:200]},
                        reason=str(getattr(request, "_tipoff_denied", "") or "forbidden")[:200],
                    )
        return response

    def process_exception(self, request: HttpRequest, exception: Exception) -> None:
        if isinstance(exception, PermissionDenied):
            request._tipoff_denied = str(exception) or "permission denied"  # type: ignore[attr-defined]


class AccountChangerMiddleware:
    """Account changes made while serving a signed-in user's request are audited as that user's.

    The audit events of account changes are written by model signals (dashboard/signals.py),
    which learn who made the change from `account_changes_by()`. The Django admin and single
    sign-on say so themselves, with a reason of their own; this covers every other page that
    changes an account (the admin's page where you change your own password), so that none of
    them is recorded as a command run from the shell.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated:
            return self.get_response(request)
        reason = f"changed by a signed-in request: {request.method} {request.path[:200]}"
        with account_changes_by(Actor.for_user(user), reason):
            return self.get_response(request)


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """Django's CSRF failure page; the denial it causes is audited with the reason."""
    from django.views.csrf import csrf_failure as django_csrf_failure

    request._tipoff_denied = f"CSRF check failed: {reason}"  # type: ignore[attr-defined]
    return django_csrf_failure(request, reason=reason)
