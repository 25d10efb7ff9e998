"""Why did it scale? One decision with its full explanation (page, or side panel via htmx)."""

from __future__ import annotations

import json
import math
import re
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone

from dashboard.permissions import requires
from dashboard.views import HtmxHttpRequest
from scaling import selectors
from scaling.models import Decision, Service
from scaling.policy.explain import forecast_arithmetic

# Plain-language glossary for the names the engine writes into explanations.
# A name missing here still shows (just without the gloss).
RULE_HELP: dict[str, str] = {
    "target_utilization": "Target tracking: replicas needed so load ÷ capacity sits at the utilization target.",
    "target_rps_per_replica": "Target tracking: replicas needed for the target requests per second per replica.",
    "target_in_flight_per_replica": "Target tracking: replicas needed for the target in-flight requests per replica.",
    "serving_model": "Sizes the fleet for the observed request rate with the M/M/c serving model, so the SLO "
    "percentile of latency stays under the SLO.",
    "slo_guard": "Fires when the observed p95 or p99 latency is above the SLO's latency limit, or the error rate "
    "above its budget (1 − the SLO's share of requests), and scales out to what the serving model says meets the "
    "SLO (that share of requests within the limit).",
    "panic": "Surge detector on a short window: reacts to a surge the game calendar does not explain (a game's "
    "halftime is expected; breaking news is not), provisions for a multiple of the rate before it or of what the "
    "calendar expects when new replicas are ready, and never scales in while active.",
    "forecast": "Pre-warm: provisions for the demand forecast at now + provisioning delay + one tick, from the game "
    "calendar and learned traffic profiles, corrected by what tonight's ramp shows.",
    "metrics": "Metric freshness: with missing or stale metrics the count holds (never scales in).",
    "policy": "The service's stored policy: one the engine refuses holds the count until a valid one is saved.",
}
# What each input a rule records means (shown on hover over its name).
INPUT_HELP: dict[str, str] = {
    "rps": "Observed request rate (requests/s) over the metric window.",
    "short_rps": "Request rate over the newest sample only (the short, panic window).",
    "sized_rps": "The rate the serving model sized for: the observed rate plus the reactive headroom.",
    "headroom": "Extra request rate (fraction) provisioned above the rate or forecast.",
    "headroom_from": "Where the pre-warm headroom came from: how far the history's forecasts fell short this far "
    "ahead, in this phase of this game (the headroom is learned per 5 minutes of a game), or the policy's floor.",
    "headroom_replicas": "Replicas the headroom adds to those the forecast itself needs.",
    "forecast_replicas": "Replicas the forecast itself needs (before headroom and replicas kept).",
    "slo_latency_ms": "The SLO latency bound (ms).",
    "slo_target": "Share of requests the SLO wants within the latency bound.",
    "ready": "Replicas serving when the tick ran.",
    "model_replicas": "Replicas the serving model says meet the SLO at the observed rate.",
    "model_below_running": "The SLO is breached though the model asks for fewer than run: the guard holds them.",
    "needed": "Replicas the short-window rate needs now.",
    "utilization": "Observed load ÷ capacity of the ready replicas.",
    "capacity_rps_per_replica": "Requests per second one replica serves at full utilization.",
    "in_flight": "Requests in flight across the fleet.",
    "target_utilization": "The utilization this service's policy aims for.",
    "target_rps_per_replica": "The requests per second per replica this service's policy aims for.",
    "target_in_flight_per_replica": "The in-flight requests per replica this service's policy aims for.",
    "ratio": "Target tracking: observed ÷ target per replica. Pre-warm: tonight's observed ÷ predicted rate "
    "(before the trend: see ratio_used).",
    "p95_ms": "Observed 95th-percentile latency (ms), above the SLO bound.",
    "p99_ms": "Observed 99th-percentile latency (ms), above the SLO bound.",
    "error_rate": "Observed share of failed requests, above what the SLO allows.",
    "panic_threshold": "Panic when the short-window rate needs this many times the ready replicas.",
    "panic_headroom": "Extra request rate (fraction) provisioned above the short-window rate on entering panic.",
    "sized_by": "What set the panic count: the short-window rate, its panic headroom, the surge multiple of "
    "the rate before it, or the count already running (held: no scale-in while panicking).",
    "surge": "Yes when the rate jumped in a way the game calendar does not explain.",
    "quiet_hours": "No game on the calendar near: a smaller unexplained rise counts as a surge.",
    "triggered_at": "When panic mode last triggered (it lasts the panic window after).",
    "unforecast_surge_over_rps": "The rate the calendar forecast expects now; the observed rate exceeded it.",
    "surge_base_rps": "The rate the surge multiple is sized on: the rate before the surge, or what the calendar "
    "expects when replicas asked for now are ready (with the forecast's least headroom), whichever is more.",
    "surge_base_from": "Which rate the surge multiple is sized on: 'before' (the minute or two before the surge) "
    "or 'calendar' (the calendar's forecast when new replicas are ready).",
    "calendar_smooth": "The calendar expects no jump within two minutes (no quarter end, tip-off or buzzer): a "
    "smaller unexplained rise counts as a surge.",
    "surge_multiple": "Panic provisions at least this multiple of the rate before the surge.",
    "calendar_unlearned": "A game is near and no profile is learned yet: the default shape's jumps are a guess, so "
    "a surge is a jump over the minute before, sized on that rate, not a rise over the calendar's expectation.",
    "forecast_at": "The instant the forecast peak falls on (now + provisioning delay … + one tick).",
    "forecast_rps": "Forecast demand at that instant, after tonight's correction (requests/s).",
    "predicted_rps": "What the calendar profile alone predicts then: requests/s once learned; a relative shape "
    "before (the ratio scales it to tonight).",
    "ratio_trend_per_min": "How fast tonight's ratio is climbing, per minute, weighted by forecast_trend "
    "(0 when it is not climbing: the trend never lowers the forecast).",
    "ratio_measured": "Tonight's observed ÷ predicted before forecast_correction_min … _max held it (the ratio).",
    "ratio_slope_per_min": "How fast tonight's observed ÷ predicted ratio changed over the last few minutes, per "
    "minute (before forecast_trend weighs it).",
    "forecast_trend": "The policy's weight (0–1) of the ratio's slope, extrapolated to the forecast time.",
    "trend_ahead_s": "How far (s) the trend is extrapolated: from the middle of the newest metric window to the "
    "forecast time.",
    "trend_gain": "What the trend adds to the ratio: slope × forecast_trend × how far ahead, capped.",
    "trend_capped_at": "The trend was cut to this: it may at most double tonight's ratio.",
    "ratio_used": "The ratio the forecast applies: ratio + trend_gain. predicted_rps × ratio_used = forecast_rps.",
    "forecast_finish": "With a game read as in overtime, which finish gave the higher forecast (the overtime "
    "read only ever adds): 'overtime' or 'usual'.",
    "triggered_by": "What set panic off: 'calendar' (a rate well above the calendar's expectation), 'jump' (well "
    "above the minute before, with no forecast for now), 'threshold' (the rate needs panic_threshold × the ready "
    "count), or 'earlier' (a sample within the panic window did).",
    "panic_ratio": "The multiple of the calendar's expectation that is a surge here.",
    "panic_ratio_from": "The parameter that multiple came from: panic_quiet_ratio (no game near), "
    "panic_smooth_ratio (no jump expected near now) or panic_unforecast_ratio.",
    "before_rps": "The mean rate over the minute or two before the newest sample.",
    "panic_surge_ratio": "With no forecast for now, a rate this many times the minute before is a surge.",
    "panic_window_s": "Panic lasts this long after the sample that set it off.",
    "triggered_short_rps": "The short-window rate of the sample that set panic off.",
    "triggered_needed": "Replicas that rate needed.",
    "triggered_ready": "Replicas ready at that sample.",
    "ratio_rising": "Yes when the ratio climbs more than 1 % a minute (a close finish): headroom comes from such "
    "moments in the history.",
    "learned": "Yes when the profile was learned from this service's history; no = the default shape.",
    "games": "Games adding demand at the forecast instant, largest first.",
    "more_games": "Further games adding demand then.",
    "overtime": "Games past their usual finish whose demand holds as in overtime, read from the metric window: "
    "their finish (buzzer surge and fade) is forecast that much later.",
    "kept_for_rps": "Replicas kept for this forecast rate before new ones could arrive (they could not come "
    "back in time).",
    "kept_for_at": "When that rate is expected: sooner than replicas asked for now could serve.",
    "newest_sample": "Time of the newest metric sample.",
    "unavailable": "Yes when the metric source did not answer this tick.",
    "parameter": "The policy parameter the engine refused (the first it found wrong).",
    "problem": "What is wrong with it, in the engine's words: the range it must be in, or the rule it breaks.",
}
CONSTRAINT_HELP: dict[str, str] = {
    "scale_down_stabilization": "Scale in only to the highest recommendation within the stabilization window.",
    "scale_up_stabilization": "Scale out only to the lowest recommendation within the stabilization window.",
    "scale_in_cooldown": "No scale-in until the cooldown after the last change has passed.",
    "scale_up_rate_limit": "Scale-out rate limit (Pods or Percent per period).",
    "scale_down_rate_limit": "Scale-in rate limit (Pods or Percent per period).",
    "demand_rising": "The observed rate is climbing: no scale-in until it levels off.",
    "max_replicas": "The service's upper bound.",
    "min_replicas": "The service's lower bound.",
    "override_pin": "An active pin sets the count exactly.",
    "override_freeze": "An active freeze holds the current count.",
    "override_floor": "An active floor (override or game-day rule) keeps at least this many.",
    "override_ceiling": "An active ceiling keeps at most this many.",
    "override_freeze_scale_in": "An active override forbids scaling in.",
    "metrics_missing_hold": "Metrics are missing or stale: never scale in on them.",
    "signals_unread_hold": "A configured signal (a latency, the in-flight count, ...) could not be read this tick: "
    "scale out on the rest, but never scale in without it.",
    "fallback_replicas": "Metrics have been missing too long: hold at least the fallback count.",
}
REASON_HELP: dict[str, str] = {
    "SCALED_OUT": "Capacity was added.",
    "SCALED_IN": "Capacity was removed.",
    "WITHIN_TOLERANCE": "Load is within the tolerance band around the target: no change.",
    "STABILIZING_SCALE_IN": (
        "The load would allow fewer replicas, but the scale-down stabilization window (or a still-climbing "
        "rate) holds them."
    ),
    "STABILIZING_SCALE_OUT": (
        "The load asks for more replicas, but the scale-out stabilization window holds them until it has "
        "asked for more throughout."
    ),
    "AT_MAX": "More replicas were wanted, but the service is at its maximum.",
    "AT_MIN": "Fewer replicas were wanted, but the service is at its minimum.",
    "RATE_LIMITED": "A change was wanted but the rate limit allowed none this period.",
    "COOLDOWN": "Scale-in is waiting for the cooldown after the last change.",
    "OVERRIDE_ACTIVE": "A human override (pin, floor, ceiling or freeze) decided the count.",
    "METRICS_STALE": "Metrics are older than two ticks: holding, never scaling in.",
    "METRICS_UNAVAILABLE": "The metric source did not answer, or not for every signal: holding, never scaling in.",
    "ACTUATOR_UNAVAILABLE": (
        "The actuator (SageMaker, ECS) could not be read, so the fleet's count is unknown: holding, and no "
        "change is made. Check the backend: credentials, permissions, the resource, or an open circuit breaker."
    ),
    "PAUSED": "The service is paused: the engine holds the current count.",
    "DRY_RUN": "Dry run: the decision is recorded but never applied.",
    "NO_CHANGE": (
        "The rules already ask for the current count (the serving model or the forecast sized for exactly it): "
        "nothing to change."
    ),
    "PANICKING": (
        "Panic mode: a surge is on, or was within the panic window. No scale-in until it has passed; the count "
        "is held at least where it is."
    ),
    "SLO_BREACHED": "The observed latency or error rate breaks the SLO: nothing may scale in while it does.",
    "POLICY_INVALID": (
        "The service's stored policy is one the engine refuses (a parameter outside its allowed range, most likely "
        "saved before that range narrowed; manage.py check names it, as tipoff.W001): no rule can run, so the "
        "count provisioned is held and never scaled in. Pins, floors and the service bounds still apply, as on "
        "missing metrics; a ceiling waits. Save a valid policy on the service's policy page: the summary names the "
        "parameter and what is wrong with it."
    ),
}

_ISO_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}")

# The forecast a pre-warm decision used (its own block on the decision page).
FORECAST_HELP = {
    "ts": "The instant the forecast is for: when replicas asked for now would be ready, at the forecast's peak "
    "before the next tick's arrive.",
    "rps": "Demand forecast for that instant, after tonight's correction (requests/s).",
    "replicas": "Replicas the pre-warm rule asked for: the forecast plus its headroom.",
    "predicted_rps": "The learned profile's demand for that instant before tonight's correction (requests/s); "
    "with no learned history yet, the default shape's value there (relative, not requests/s).",
    "ratio": "Tonight's correction: observed ÷ predicted over the last minute or so (1 = as the history; "
    "with no learned history yet, what scales the default shape to tonight's traffic, often hundreds).",
    "trend_gain": "What the ratio's climb adds, extrapolated to the forecast's instant (never lowers it).",
    "ratio_used": "The correction the forecast applies: ratio + trend_gain; predicted_rps × ratio_used = rps.",
    "learned": "yes: profiles learned from this service's own history; no: the cold-start shape, scaled by "
    "what is observed, with the cold-start headroom.",
}

# Samples shown around a tick: the engine reads the last minute or so; five give context.
METRIC_WINDOW_S = 300.0


def local_and_utc(at: datetime, *, with_date: bool = True) -> str:
    """'2026-01-15 18:34:05 EST (23:34:05 UTC)', or without the date: where operators read times (tip-offs are
    listed in ET), with UTC beside it, as every page writes an instant."""
    local = at.astimezone(ZoneInfo(settings.OPERATOR_TIME_ZONE))
    day = "%Y-%m-%d " if with_date else ""
    return f"{local.strftime(day + '%H:%M:%S %Z')} ({at.astimezone(UTC):%H:%M:%S} UTC)"


def fmt(value: Any) -> str:
    """A number as an operator reads it (1,640 rps; 0.72 utilization); anything else as text."""
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if math.isnan(value):
            return "–"
        magnitude = abs(value)
        if magnitude >= 100:
            return f"{value:,.0f}"
        if magnitude >= 1:
            return f"{value:,.2f}".rstrip("0").rstrip(".")
        return f"{value:.3g}"
    if isinstance(value, str) and _ISO_TIME.match(value):
        parsed = selectors.parse_ts(value)
        if parsed is not None:
            return local_and_utc(parsed)
    if isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
        # Names (the games a forecast saw, the signals unread): a list as a sentence would give it.
        return ", ".join(value) if value else "none"
    if isinstance(value, dict | list | tuple):
        return json.dumps(value, cls=DjangoJSONEncoder, ensure_ascii=False)
    return str(value)


def _items(mapping: Any) -> list[tuple[str, str]]:
    if not isinstance(mapping, dict):
        return []
    return [(str(k), fmt(v)) for k, v in mapping.items()]


def _inputs(mapping: Any) -> list[tuple[str, str, str]]:
    """A rule's inputs as (name, value, what the name means)."""
    return [(k, v, INPUT_HELP.get(k, "")) for k, v in _items(mapping)]


def explanation_context(decision: Decision) -> dict[str, Any]:
    """The stored explanation, normalised for the template (tolerates missing or older keys)."""
    raw = decision.explanation if isinstance(decision.explanation, dict) else {}
    recommendation = raw.get("recommendation", decision.recommendation)
    rules = []
    for rule in raw.get("rules") or []:
        if not isinstance(rule, dict):
            continue
        replicas = rule.get("replicas")
        rules.append(
            {
                "rule": str(rule.get("rule", "?")),
                "help": RULE_HELP.get(str(rule.get("rule")), ""),
                "replicas": replicas,
                "inputs": _inputs(rule.get("inputs")),
                "note": str(rule.get("note") or ""),
                "winning": replicas is not None and replicas == recommendation,
            }
        )
    constraints = []
    for c in raw.get("constraints") or []:
        if not isinstance(c, dict):
            continue
        before, after = c.get("before"), c.get("after")
        constraints.append(
            {
                "name": str(c.get("name", "?")),
                "help": CONSTRAINT_HELP.get(str(c.get("name")), ""),
                "before": before,
                "after": after,
                "detail": str(c.get("detail") or ""),
                "binding": before != after,
            }
        )
    forecast = raw.get("forecast")
    forecast_inputs = next(
        (r.get("inputs") for r in raw.get("rules") or [] if isinstance(r, dict) and r.get("rule") == "forecast"), None
    )
    forecast_scalars: list[tuple[str, str, str]] = []
    series_rows: list[dict[str, str]] = []
    forecast_other: list[tuple[str, str]] = []
    if isinstance(forecast, dict):
        for key, value in forecast.items():
            if key == "series" and isinstance(value, list):
                series_rows = [_series_row(point) for point in value[:60]]
            elif isinstance(value, dict | list):
                forecast_other.append((str(key), json.dumps(value, indent=1, ensure_ascii=False, default=str)))
            else:
                forecast_scalars.append((str(key), fmt(value), FORECAST_HELP.get(str(key), "")))
    series_columns: list[str] = []
    for row in series_rows:
        series_columns.extend(k for k in row if k not in series_columns)
    return {
        "summary": raw.get("summary") or decision.summary,
        "reason": raw.get("reason") or decision.reason_code,
        "reason_help": _reason_help(
            str(raw.get("reason") or decision.reason_code),
            constraints,
            current=raw.get("current", decision.provisioned),
            desired=raw.get("desired", decision.desired),
        ),
        "recommendation": recommendation,
        "current": raw.get("current", decision.provisioned),
        "desired": raw.get("desired", decision.desired),
        "rules": rules,
        "constraints": constraints,
        "binding_constraints": [c for c in constraints if c["binding"]],
        "has_forecast": isinstance(forecast, dict),
        "no_forecast": _no_forecast(str(raw.get("reason") or decision.reason_code), recommendation),
        # The forecast multiplied out from the numbers shown (predicted × ratio used = forecast).
        "forecast_arithmetic": forecast_arithmetic(forecast_inputs) if isinstance(forecast_inputs, dict) else "",
        "forecast_scalars": forecast_scalars,
        "forecast_series_columns": series_columns,
        "forecast_series": [[row.get(c, "") for c in series_columns] for row in series_rows],
        "forecast_other": forecast_other,
        "policy_version": raw.get("policy_version"),
        "raw_json": json.dumps(raw, indent=2, ensure_ascii=False, default=str),
    }


# What a decision without fresh metrics starts from, in the captions.
METRICS_MISSING = {
    "METRICS_STALE": "Metrics are older than two ticks",
    "METRICS_UNAVAILABLE": "The metric source did not answer, or not for every signal",
}


def _reason_help(reason: str, constraints: list[dict[str, Any]], *, current: object, desired: object) -> str:
    """The reason's caption; for a decision without metrics that changed the count, what changed it (the
    service bounds or the fallback count), where "holding, never scaling in" read as the opposite of 0 → 1."""
    caption = REASON_HELP.get(reason, "")
    moved = next((c for c in reversed(constraints) if c["binding"]), None)
    if reason not in METRICS_MISSING or current == desired or moved is None:
        return caption
    if moved["name"] in ("min_replicas", "max_replicas"):
        what = f"moved into the {moved['detail'] or 'service bounds'}"
    elif moved["name"] == "fallback_replicas":
        what = "raised to the policy's fallback count (fallback_replicas), metrics having stayed missing"
    else:
        what = f"set by {moved['name']}" + (f": {moved['detail']}" if moved["detail"] else "")
    return f"{METRICS_MISSING[reason]}: {what} ({current} → {desired})."


def _no_forecast(reason: str, recommendation: object) -> str:
    """Why a decision carries no forecast, by its kind: a paused tick decided nothing, and a tick without
    metrics sized nothing; neither was "reactive"."""
    if reason == "PAUSED":
        return "No forecast: the service was paused: the engine decided nothing this tick and held the count."
    if reason == "POLICY_INVALID":
        return "No forecast: the stored policy was refused: no rule ran this tick, and the engine held the count."
    if recommendation is None:
        return "No forecast: metrics were missing: no rule sized a count, and the engine held (see the constraints)."
    why = "No forecast: the pre-warm rule made none this tick"
    if reason == "DRY_RUN":
        return f"{why}; this dry run follows the reactive rules below, and nothing was actuated."
    if reason == "OVERRIDE_ACTIVE":
        return f"{why}; an override set the count, whatever the rules below asked for."
    return f"{why} (pre-warm off, or no game near): the reactive rules below decided."


def _series_row(point: Any) -> dict[str, str]:
    if isinstance(point, dict):
        return {str(k): fmt(v) for k, v in point.items()}
    if isinstance(point, list | tuple):
        return {str(i): fmt(v) for i, v in enumerate(point)}
    return {"value": fmt(point)}


TIMELINE_PAGE_SIZE = 20


def _cursor(raw: str | None) -> int | None:
    return int(raw) if raw and raw.isdigit() else None


def timeline_context(request: HttpRequest, service: Service, *, range_name: str, now: datetime) -> dict[str, Any]:
    """The service page's decision timeline: the decisions of the chosen range (the charts' above it), every
    tick or only the changes and blocked changes, 20 a page from the newest, "Older" and "Newer" seeking on
    the tick (?before= / ?after=, a decision id). Only the newest page refreshes itself: an older one stays
    put while ticks are added."""
    changes_only = request.GET.get("timeline") == "changes"
    since = now - selectors.RANGES[range_name]
    before, after = _cursor(request.GET.get("before")), _cursor(request.GET.get("after"))
    page = selectors.decision_timeline(
        service, since=since, changes_only=changes_only, before=before, after=after, size=TIMELINE_PAGE_SIZE
    )
    paging = before is not None or after is not None
    newest = None
    if not page.decisions and not paging:
        newest = Decision.objects.filter(service=service).order_by("-tick").values_list("tick", flat=True).first()
    query = {"timeline": "changes" if changes_only else "all", "range": range_name}
    return {
        "decisions": page.decisions,
        "timeline": query["timeline"],
        "timeline_query": urlencode(query),
        "timeline_older": page.older_cursor,
        "timeline_newer": page.newer_cursor,
        "timeline_paging": paging,
        # An empty page says why: nothing yet, nothing in the range (the newest decision is older), or, under
        # "changes", how many ticks held in the range.
        "timeline_newest_outside": newest if newest is not None and newest < since else None,
        "ticks_held": (
            Decision.objects.filter(service=service, tick__gte=since).count()
            if changes_only and not page.decisions and not paging
            else 0
        ),
    }


def samples_pruned_before(now: datetime) -> datetime:
    """Samples before this instant have been (or are about to be) pruned: METRIC_RETENTION_DAYS."""
    return now - timedelta(days=settings.METRIC_RETENTION_DAYS)


@requires("view")
def decision_detail(request: HtmxHttpRequest, decision_id: int) -> HttpResponse:
    decision = selectors.decision_for_view(decision_id)
    if decision is None:
        return _decision_gone(request, decision_id)
    samples = selectors.decision_metric_window(decision, before_s=METRIC_WINDOW_S)
    x = explanation_context(decision)
    earlier, later = selectors.decision_neighbours(decision)
    context = {
        "decision": decision,
        "service": decision.service,
        "x": x,
        "forecast_actual": forecast_actual(decision),
        "earlier": earlier,
        "later": later,
        "samples": samples,
        "samples_pruned": not samples and decision.tick < samples_pruned_before(timezone.now()),
        "metric_retention_days": settings.METRIC_RETENTION_DAYS,
        "metric_window_s": int(METRIC_WINDOW_S),
        "audit_events": list(selectors.decision_audit_events(decision)),
    }
    template = "dashboard/decision.html#explanation" if request.htmx else "dashboard/decision.html"
    return render(request, template, context)


def _decision_gone(request: HtmxHttpRequest, decision_id: int) -> HttpResponse:
    """A pruned decision says so, with what the audit log recorded about it (410); an unknown id is a 404."""
    pruned = selectors.decision_pruned(decision_id, now=timezone.now())
    if pruned is None:
        raise Http404(f"no decision with id {decision_id}")
    context = {
        "pruned": pruned,
        "audit_url": f"{reverse('dashboard:audit')}?object_type=decision&object_id={decision_id}",
    }
    if request.htmx:
        # Into the service page's panel, which htmx fills only from a 2xx answer.
        return render(request, "dashboard/decision_pruned.html#pruned", context)
    return render(request, "dashboard/decision_pruned.html", context, status=410)


def forecast_actual(decision: Decision) -> dict[str, Any] | None:
    """What demand turned out to be at the instant the decision forecast for (None until then)."""
    forecast = decision.explanation.get("forecast") if isinstance(decision.explanation, dict) else None
    if not isinstance(forecast, dict):
        return None
    at = selectors.parse_ts(forecast.get("ts"))
    predicted = forecast.get("rps")
    if at is None or not isinstance(predicted, int | float) or isinstance(predicted, bool):
        return None
    sample = selectors.sample_near(decision.service, at)
    at_label = fmt(at.isoformat())  # in the operator's zone with UTC beside, as every time on the page
    if sample is None or sample.rps is None:
        return {
            "at": at,
            "at_label": at_label,
            "predicted": fmt(float(predicted)),
            "actual": None,
            "error_pct": None,
            "actual_pruned": at < samples_pruned_before(timezone.now()),
        }
    error_pct = (float(predicted) - sample.rps) / sample.rps * 100.0 if sample.rps else None
    return {
        "at": at,
        "at_label": at_label,
        "predicted": fmt(float(predicted)),
        "actual": fmt(sample.rps),
        "actual_ts": sample.ts,
        "actual_label": fmt(sample.ts.isoformat()),
        "error_pct": None if error_pct is None else f"{error_pct:+.1f} %",
    }
