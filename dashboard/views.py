"""Function views: small, no business logic; partials for htmx requests."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, render
from django.utils import timezone
from django_htmx.middleware import HtmxDetails

from dashboard import charts
from dashboard.api_errors import error_body
from dashboard.permissions import requires
from dashboard.policy_forms import ModeForm
from scaling import override_selectors, selectors
from scaling.models import Service


class HtmxHttpRequest(HttpRequest):
    htmx: HtmxDetails


DEFAULT_RANGE = "6h"


def _range(request: HttpRequest) -> str:
    """The pages' ?range=, or 6h in place of one they do not offer (which they say: `_range_refused`)."""
    chosen = request.GET.get("range", DEFAULT_RANGE)
    return chosen if chosen in selectors.RANGES else DEFAULT_RANGE


def _range_refused(request: HttpRequest) -> str:
    """A ?range= the pages do not offer, which they say they replaced by 6h ("" when none was asked or it is known)."""
    asked = request.GET.get("range", DEFAULT_RANGE)
    return "" if asked in selectors.RANGES else asked


def _chart_range(request: HttpRequest) -> str | JsonResponse:
    """The chart data's ?range= (6h when none is asked), or a 400 in the API's error shape naming it and the
    ranges: a script is told, rather than drawn another range's charts without a sign (its page asks only for
    the range it shows)."""
    asked = request.GET.get("range", DEFAULT_RANGE)
    if asked in selectors.RANGES:
        return asked
    message = f"there is no range {asked!r}: the ranges are {', '.join(selectors.RANGES)}"
    body = error_body(f"range: {message}", field="range", errors=[{"field": "range", "message": message}])
    return JsonResponse(body, status=400)


def _stalled(rows: list[selectors.FleetRow]) -> dict[str, Any] | None:
    """The enabled services without a decision for over STALL_TICKS ticks, and the shortest such wait: when that is
    every enabled service, the control loop itself looks stopped."""
    overdue = [r for r in rows if r.decision_overdue is not None]
    if not overdue:
        return None
    return {
        "for": min(r.decision_overdue for r in overdue if r.decision_overdue is not None),
        "services": [r.service for r in overdue],
        "all": len(overdue) == sum(1 for r in rows if r.service.enabled),
    }


@requires("view")
def fleet(request: HtmxHttpRequest) -> HttpResponse:
    now = timezone.now()
    rows = selectors.fleet_overview(now)
    # A disabled service's last numbers are history: the totals are of the services scaled now.
    current = [r for r in rows if r.current]
    context = {
        "rows": rows,
        "now": now,
        "range": _range(request),
        "range_refused": _range_refused(request),
        "ranges": list(selectors.RANGES),
        "total_cost_per_hour": sum(r.cost_per_hour for r in current),
        "total_provisioned": sum((r.sample.provisioned or 0) if r.sample else 0 for r in current),
        "disabled_count": len(rows) - len(current),
        "stalled": _stalled(rows),
        "latest_tick": max((r.decision.tick for r in current if r.decision), default=None),
        "pending_approvals": override_selectors.pending_approvals(now),
    }
    template = "dashboard/fleet.html#fleet-table" if request.htmx else "dashboard/fleet.html"
    return render(request, template, context)


@requires("view", answers_json=True)
def fleet_charts(request: HttpRequest) -> JsonResponse:
    chosen = _chart_range(request)
    if isinstance(chosen, JsonResponse):
        return chosen
    now = timezone.now()
    fleet = selectors.fleet_timeseries(since=now - selectors.RANGES[chosen], until=now)
    figures = charts.fleet_figures(fleet, span_label=f"{chosen[:-1]} {chosen[-1]}", now=now)
    return JsonResponse({"figures": figures}, encoder=DjangoJSONEncoder)


@requires("view")
def service_detail(request: HtmxHttpRequest, name: str) -> HttpResponse:
    from dashboard.decisions import timeline_context  # it imports HtmxHttpRequest from here

    service = get_object_or_404(Service, name=name)
    now = timezone.now()
    chosen = _range(request)
    latest = selectors.latest_decision(service)
    sample = selectors.latest_sample(service)
    context = {
        "service": service,
        "now": now,
        "range": chosen,
        "range_refused": _range_refused(request),
        "ranges": list(selectors.RANGES),
        "sample": sample,
        "sample_stale": selectors.sample_is_stale(service, sample, now),
        "sample_age_limit": selectors.sample_age_limit(service),
        "latest_decision": latest,
        "decision_overdue": selectors.decision_overdue(service, latest.tick if latest else None, now),
        **timeline_context(request, service, range_name=chosen, now=now),
        "cost_24h": selectors.service_cost(service, since=now - selectors.RANGES["24h"], until=now),
        "mode_form": ModeForm(initial={"mode": service.mode}),
    }
    template = "dashboard/service.html#decisions" if request.htmx else "dashboard/service.html"
    return render(request, template, context)


@requires("view", answers_json=True)
def service_charts(request: HttpRequest, name: str) -> JsonResponse:
    service = get_object_or_404(Service, name=name)
    chosen = _chart_range(request)
    if isinstance(chosen, JsonResponse):
        return chosen
    span = selectors.RANGES[chosen]
    now = timezone.now()
    since = now - span
    series = selectors.service_timeseries(service, since=since, until=now)
    forecast = selectors.forecast_series(service, since=since, until=now)
    # Shade override windows from the chart's start to as far ahead as the range looks back, a day at most:
    # upcoming ones (tonight's game-day floors) widen the axis, never so far that the past is squeezed thin.
    until = now + min(span, timedelta(hours=24))
    windows = override_selectors.override_windows(service, since, until)
    figures = charts.service_figures(service, series, forecast, overrides=windows, until=until, since=since, now=now)
    return JsonResponse({"figures": figures}, encoder=DjangoJSONEncoder)
