"""Why did it scale? One decision with its full explanation (page, or side panel via htmx)."""

from __future__ import annotations

import json
import math
import re
from datetime import UTC
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.http import Http404, HttpResponse
from django.shortcuts import render

from dashboard.permissions import requires
from dashboard.views import HtmxHttpRequest
from scaling import selectors
from scaling.models import Decision

# Plain-language glossary for the names the engine writes into explanations.
# A name missing here still shows (just without the gloss).
RULE_HELP: dict[str, str] = {
    "target_utilization": "Target tracking: replicas needed so load ÷ capacity sits at the utilization target.",
    "target_rps_per_replica": "Target tracking: replicas needed for the target requests per second per replica.",
    "target_in_flight_per_replica": "Target tracking: replicas needed for the target in-flight requests per replica.",
    "serving_model": "Sizes the fleet for the observed request rate with the M/M/c serving model, so the SLO "
    "percentile of latency stays under the SLO.",
    "slo_guard": "Fires when observed p95/p99 latency or the error rate breaks the SLO, and scales out to what the "
    "serving model says meets it.",
    "panic": "Surge detector on a short window: reacts to a surge the game calendar does not explain (a game's "
    "halftime is expected; breaking news is not), provisions for a multiple of the rate before it, and never "
    "scales in while active.",
    "forecast": "Pre-warm: provisions for the demand forecast at now + provisioning delay + one tick, from the game "
    "calendar and learned traffic profiles, corrected by what tonight's ramp shows.",
    "metrics": "Metric freshness: with missing or stale metrics the count holds (never scales in).",
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
    "AT_MAX": "More replicas were wanted, but the service is at its maximum.",
    "AT_MIN": "Fewer replicas were wanted, but the service is at its minimum.",
    "RATE_LIMITED": "A change was wanted but the rate limit allowed none this period.",
    "COOLDOWN": "Scale-in is waiting for the cooldown after the last change.",
    "OVERRIDE_ACTIVE": "A human override (pin, floor, ceiling or freeze) decided the count.",
    "METRICS_STALE": "Metrics are older than two ticks: holding, never scaling in.",
    "METRICS_UNAVAILABLE": "The metric source did not answer: holding, never scaling in.",
    "PAUSED": "The service is paused: the engine holds the current count.",
    "DRY_RUN": "Dry run: the decision is recorded but never applied.",
    "NO_CHANGE": "The recommendation equals the current count.",
}

_ISO_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}")

# Samples shown around a tick: the engine reads the last minute or so; five give context.
METRIC_WINDOW_S = 300.0


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
            return parsed.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    if isinstance(value, dict | list | tuple):
        return json.dumps(value, cls=DjangoJSONEncoder, ensure_ascii=False)
    return str(value)


def _items(mapping: Any) -> list[tuple[str, str]]:
    if not isinstance(mapping, dict):
        return []
    return [(str(k), fmt(v)) for k, v in mapping.items()]


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
                "inputs": _items(rule.get("inputs")),
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
    forecast_scalars: list[tuple[str, str]] = []
    series_rows: list[dict[str, str]] = []
    forecast_other: list[tuple[str, str]] = []
    if isinstance(forecast, dict):
        for key, value in forecast.items():
            if key == "series" and isinstance(value, list):
                series_rows = [_series_row(point) for point in value[:60]]
            elif isinstance(value, dict | list):
                forecast_other.append((str(key), json.dumps(value, indent=1, ensure_ascii=False, default=str)))
            else:
                forecast_scalars.append((str(key), fmt(value)))
    series_columns: list[str] = []
    for row in series_rows:
        series_columns.extend(k for k in row if k not in series_columns)
    return {
        "summary": raw.get("summary") or decision.summary,
        "reason": raw.get("reason") or decision.reason_code,
        "reason_help": REASON_HELP.get(str(raw.get("reason") or decision.reason_code), ""),
        "recommendation": recommendation,
        "current": raw.get("current", decision.provisioned),
        "desired": raw.get("desired", decision.desired),
        "rules": rules,
        "constraints": constraints,
        "binding_constraints": [c for c in constraints if c["binding"]],
        "has_forecast": isinstance(forecast, dict),
        "forecast_scalars": forecast_scalars,
        "forecast_series_columns": series_columns,
        "forecast_series": [[row.get(c, "") for c in series_columns] for row in series_rows],
        "forecast_other": forecast_other,
        "policy_version": raw.get("policy_version"),
        "raw_json": json.dumps(raw, indent=2, ensure_ascii=False, default=str),
    }


def _series_row(point: Any) -> dict[str, str]:
    if isinstance(point, dict):
        return {str(k): fmt(v) for k, v in point.items()}
    if isinstance(point, list | tuple):
        return {str(i): fmt(v) for i, v in enumerate(point)}
    return {"value": fmt(point)}


@requires("view")
def decision_detail(request: HtmxHttpRequest, decision_id: int) -> HttpResponse:
    decision = selectors.decision_for_view(decision_id)
    if decision is None:
        raise Http404(f"no decision with id {decision_id}")
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
        "metric_window_s": int(METRIC_WINDOW_S),
        "audit_events": list(selectors.decision_audit_events(decision)),
    }
    template = "dashboard/decision.html#explanation" if request.htmx else "dashboard/decision.html"
    return render(request, template, context)


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
    if sample is None or sample.rps is None:
        return {"at": at, "predicted": fmt(float(predicted)), "actual": None, "error_pct": None}
    error_pct = (float(predicted) - sample.rps) / sample.rps * 100.0 if sample.rps else None
    return {
        "at": at,
        "predicted": fmt(float(predicted)),
        "actual": fmt(sample.rps),
        "actual_ts": sample.ts,
        "error_pct": None if error_pct is None else f"{error_pct:+.1f} %",
    }
