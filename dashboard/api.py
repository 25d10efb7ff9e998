"""The JSON API (django-ninja; OpenAPI docs at /api/docs, served locally).

Every error answers in one shape, {"detail", "field", "errors"} (dashboard/api_errors.py)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.utils import timezone
from ninja import Field, Query, Schema
from pydantic import ConfigDict

from dashboard.api_audit import router as audit_router
from dashboard.api_auth import PasswordConfirmationNeeded, api_auth, require_capability
from dashboard.api_errors import ApiError, TipoffAPI, error_body, install, refused
from dashboard.api_input import refuse_nul_in_body, refuse_nul_in_url
from dashboard.api_overrides import OverrideOut
from dashboard.api_overrides import router as overrides_router
from dashboard.api_policy import router as policy_router
from dashboard.services_admin import router as services_admin_router
from scaling import override_selectors, selectors, services
from scaling.audit import Actor
from scaling.models import Decision, MetricSample, Service
from scaling.overrides import REASON_MAX_CHARS

# Every endpoint: a Bearer API token, or the session with its CSRF token (dashboard/api_auth.py).
api = TipoffAPI(title="Tipoff API", version="1", auth=api_auth, urls_namespace="api")
# Errors, the schema's validation among them, answer {"detail", "field", "errors"} (dashboard/api_errors.py).
install(api)
# PostgreSQL refuses a NUL in text: refuse it first, naming where it is (dashboard/api_input.py).
api.add_decorator(refuse_nul_in_url, mode="view")
api.add_decorator(refuse_nul_in_body, mode="operation")


@api.exception_handler(PasswordConfirmationNeeded)
def password_confirmation_needed(request: HttpRequest, exc: PasswordConfirmationNeeded) -> HttpResponse:
    """403 naming the page that confirms the password, as the pages would send the browser there."""
    url = reverse("access:confirm-password")
    minutes = settings.REAUTH_MAX_AGE_SECONDS // 60
    detail = f"confirm your password at {url} first: an administrator's change needs it typed in the last {minutes} min"
    return api.create_response(request, {**error_body(detail), "confirm_password_url": url}, status=403)


class ServiceOut(Schema):
    name: str
    display_name: str
    mode: str
    mode_until: datetime | None = Field(None, description="When a pause or dry run ends (the service is active again).")
    backend: str
    min_replicas: int
    max_replicas: int
    price_per_replica_hour: float
    slo_latency_ms: float
    slo_target: float
    provisioning_delay_s: int
    policy_version: int


class DecisionOut(Schema):
    id: int
    tick: datetime
    provisioned: int
    ready: int
    desired: int
    recommendation: int | None
    changed: bool
    reason_code: str
    summary: str
    actuation: str
    explanation: dict[str, object]


# The chart ranges (selectors.RANGES), spelled out so that the API's schema lists them and refuses any other.
RangeName = Literal["1h", "6h", "24h", "7d"]


class SampleOut(Schema):
    ts: datetime
    rps: float | None
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    ready: int | None
    provisioned: int | None


@api.get("/services", response=list[ServiceOut], tags=["services"])
def list_services(request: HttpRequest) -> list[Service]:
    return list(Service.objects.all())


@api.get("/services/{name}", response=ServiceOut, tags=["services"])
def get_service(request: HttpRequest, name: str) -> Service:
    return get_object_or_404(Service, name=name)


class ModeIn(Schema):
    model_config = ConfigDict(extra="forbid")

    mode: str = Field(..., description="active | paused | dry_run")
    reason: str = Field(..., max_length=REASON_MAX_CHARS, description="Why (recorded in the audit log).")
    until: datetime | None = Field(
        None,
        description="ISO 8601 with offset: when a pause or dry run ends (required for them, at most MODE_MAX_HOURS "
        "ahead; the first tick after it makes the service active again). Omit it to set a service active.",
    )


class ModeChangeOut(ServiceOut):
    changed: bool
    set_aside: list[OverrideOut] = Field(
        description="The pending and approved overrides (game-day floors among them) the pause or dry run keeps "
        "from being applied: those whose window overlaps now to its end, soonest first. Empty when active."
    )


@api.post("/services/{name}/mode", response=ModeChangeOut, tags=["services"])
def set_mode(request: HttpRequest, name: str, payload: ModeIn) -> dict[str, Any]:
    """Pause a service, dry-run it or set it active again, as its page's mode control does: with a reason, and
    for a pause or dry run an end. Audited; `changed` is false when the service already was so. Paused or
    dry-running, Tipoff applies no override: `set_aside` lists those it keeps from being applied, as the page's
    message names them."""
    require_capability(request, "operate")
    service = get_object_or_404(Service, name=name)
    if payload.until is not None and payload.until.tzinfo is None:
        message = "give a UTC offset (e.g. 2026-01-15T23:00:00-05:00 or ...Z)"
        raise ApiError(f"until: {message}", field="until", message=message)
    try:
        changed = services.service_set_mode(
            service=service,
            mode=payload.mode,
            actor=Actor.for_request(request),
            reason=payload.reason.strip(),
            until=payload.until,
        )
    except services.ModeError as exc:
        raise refused(exc) from exc
    set_aside = override_selectors.held_by_mode(service, now=timezone.now()).select_related(
        "service", "created_by", "approved_by", "cancelled_by", "game"
    )
    return {**ServiceOut.model_validate(service).model_dump(), "changed": changed, "set_aside": list(set_aside)}


@api.get("/services/{name}/decisions", response=list[DecisionOut], tags=["decisions"])
def list_decisions(
    request: HttpRequest, name: str, limit: int = Query(50, ge=1, le=500, description="How many, newest first.")
) -> list[Decision]:
    service = get_object_or_404(Service, name=name)
    return list(selectors.recent_decisions(service, limit))


# A week of samples, one every tick (15 s), is 40,320: the longest range fits in one answer.
METRICS_LIMIT_MAX = 50_000


@api.get("/services/{name}/metrics", response=list[SampleOut], tags=["metrics"])
def list_metrics(
    request: HttpRequest,
    name: str,
    range: RangeName = "1h",  # noqa: A002
    limit: int = Query(
        1000, ge=1, le=METRICS_LIMIT_MAX, description="How many at most: the newest within the range, newest first."
    ),
) -> list[MetricSample]:
    """The service's metric samples over the range, newest first (as the decisions are): `limit` keeps the
    newest N. Reverse them to plot oldest to newest."""
    service = get_object_or_404(Service, name=name)
    since = timezone.now() - selectors.RANGES[range]
    return list(MetricSample.objects.filter(service=service, ts__gte=since).order_by("-ts")[:limit])


# Policy (read, replace, revisions) and decision detail: dashboard/api_policy.py.
api.add_router("", policy_router)
api.add_router("", overrides_router)
api.add_router("/audit", audit_router)
# Connecting services (create, reconfigure, test connection; administrators): dashboard/services_admin.py.
api.add_router("/admin/services", services_admin_router)
