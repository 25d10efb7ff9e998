"""API: a service's policy (read, replace, revisions) and one decision with its full explanation.

Mounted on the NinjaAPI in dashboard/api.py. Writes need the "administer" capability,
a reason and the version they are based on; bad parameters get a 422 whose `errors` name
each field (a field the body should not hold, a 422 naming it), and a change based on a
version that is no longer current a 409, as on the edit page. Errors answer in the API's
one shape (dashboard/api_errors.py).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db import transaction
from django.http import Http404, HttpRequest
from django.shortcuts import get_object_or_404
from django.utils import timezone
from ninja import Field, Router, Schema, Status
from pydantic import ConfigDict

from dashboard.api_auth import require_capability
from dashboard.api_errors import ApiError, ErrorOut, error_body
from dashboard.decisions import METRIC_WINDOW_S
from dashboard.policy_forms import check_params, label_for, params_as_dict
from scaling import selectors, services
from scaling.audit import Actor
from scaling.models import MetricSample, Service

router = Router(tags=["policy"])


class PolicyOut(Schema):
    service: str
    version: int
    params: dict[str, Any]


class PolicyIn(Schema):
    # A field this does not know is refused, not ignored: sent as "version", the base of a change went unread
    # and the change replaced whatever had been saved since.
    model_config = ConfigDict(extra="forbid")

    params: dict[str, Any] = Field(
        ..., description="Parameters to set; any you omit keep their current value. Unknown names are rejected."
    )
    reason: str = Field(..., description="Why (recorded in the audit log and the revision history).")
    based_on_version: int = Field(
        ...,
        description="The version your change is based on (`version` from GET); if the policy has changed since, "
        "the answer is 409 with the current version and nothing changes, as on the edit page. Required.",
    )


class PolicyChangeOut(PolicyOut):
    changed: bool


class VersionConflictOut(ErrorOut):
    version: int


class RevisionOut(Schema):
    version: int
    params: dict[str, Any]
    actor: str
    reason: str
    created_at: datetime


class WindowSampleOut(Schema):
    ts: datetime
    rps: float | None
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    utilization: float | None
    in_flight: float | None
    error_rate: float | None
    ready: int | None
    provisioned: int | None


class DecisionDetailOut(Schema):
    id: int
    service: str
    tick: datetime
    mode: str
    provisioned: int
    ready: int
    desired: int
    recommendation: int | None
    changed: bool
    reason_code: str
    summary: str
    explanation: dict[str, Any]
    actuation: str
    actuation_error: str
    actuated_at: datetime | None
    metric_window: list[WindowSampleOut]


class RecordedEventOut(Schema):
    id: int
    created_at: datetime
    event_type: str
    actor: str
    before: Any
    after: Any
    reason: str


class DecisionPrunedOut(ErrorOut):
    id: int
    pruned: bool
    kept_days: int
    tick: datetime | None
    audit_events: list[RecordedEventOut]


def _policy_out(service: Service) -> dict[str, Any]:
    return {"service": service.name, "version": service.policy_version, "params": params_as_dict(service.policy)}


def _unlabelled(field: str, message: str) -> str:
    """A policy form's message without the label it opens with ("Tolerance must be in [0, 0.5] (got 0.9)." ->
    "must be in [0, 0.5] (got 0.9)"): the API names the field itself, as `field`."""
    label = label_for(field)
    if message.startswith(f"{label} "):
        message = message[len(label) + 1 :]
    return message.rstrip(".")


def _in_words(errors: list[dict[str, str]]) -> str:
    """`detail` for a refused policy: the first problem in words, and how many more there are, naming them
    ("tolerance: must be in [0, 0.5] (got 0.9) (and 1 more problem: reason)")."""
    first, rest = errors[0], [e["field"] for e in errors[1:]]
    detail = f"{first['field']}: {first['message']}"
    if rest:
        detail += f" (and {len(rest)} more problem{'s' if len(rest) > 1 else ''}: {', '.join(rest)})"
    return detail


@router.get("/services/{name}/policy", response=PolicyOut)
def get_policy(request: HttpRequest, name: str) -> dict[str, Any]:
    """The service's engine parameters (every parameter, defaults filled in) and their version."""
    require_capability(request, "view")
    return _policy_out(get_object_or_404(Service, name=name))


@router.put("/services/{name}/policy", response={200: PolicyChangeOut, 409: VersionConflictOut})
def put_policy(request: HttpRequest, name: str, payload: PolicyIn) -> Status[dict[str, Any]]:
    """Set the service's engine parameters; a change bumps the version, is audited and kept as a revision.

    The service stays locked from checking the version the change is based on until the change
    is saved, so of two changes at once based on the same version the second is refused (409).
    """
    require_capability(request, "administer")
    with transaction.atomic():
        service = get_object_or_404(Service.objects.select_for_update(), name=name)
        if payload.based_on_version != service.policy_version:
            detail = (
                f"the policy changed since version {payload.based_on_version} (now version {service.policy_version}): "
                "review the current values and send the change again"
            )
            return Status(409, {**error_body(detail), "version": service.policy_version})
        # Checked as the what-if page checks edited parameters, with the change's reason; a missing one is said
        # in the API's own words.
        blank = not payload.reason.strip()
        params, problems = check_params(
            payload.params,
            base=params_as_dict(service.policy),
            reason="-" if blank else payload.reason,
            service=service,
        )
        errors = [{"field": field, "message": _unlabelled(field, message)} for field, message in problems]
        if blank:
            errors.append({"field": "reason", "message": "a reason is required"})
        if errors:
            raise ApiError(_in_words(errors), field=errors[0]["field"], errors=errors)
        changed = services.service_update_policy(
            service=service, params=params, actor=Actor.for_request(request), reason=payload.reason.strip()
        )
    return Status(200, {**_policy_out(service), "changed": changed})


@router.get("/services/{name}/policy/revisions", response=list[RevisionOut])
def list_policy_revisions(request: HttpRequest, name: str) -> list[dict[str, Any]]:
    """Every recorded version of the policy, newest first."""
    require_capability(request, "view")
    service = get_object_or_404(Service, name=name)
    return [
        {
            "version": r.version,
            "params": r.params,
            "actor": r.actor_label,
            "reason": r.reason,
            "created_at": r.created_at,
        }
        for r in selectors.policy_revisions(service)
    ]


def _pruned_out(pruned: selectors.PrunedDecision) -> dict[str, Any]:
    return {
        **error_body(f"decision {pruned.decision_id} was pruned: decisions are kept {pruned.kept_days} days"),
        "id": pruned.decision_id,
        "pruned": True,
        "kept_days": pruned.kept_days,
        "tick": pruned.tick,
        "audit_events": [
            {
                "id": e.pk,
                "created_at": e.created_at,
                "event_type": e.event_type,
                "actor": e.actor_label,
                "before": e.before,
                "after": e.after,
                "reason": e.reason,
            }
            for e in pruned.events
        ],
    }


@router.get("/decisions/{decision_id}", response={200: DecisionDetailOut, 410: DecisionPrunedOut}, tags=["decisions"])
def get_decision(request: HttpRequest, decision_id: int) -> Status[dict[str, Any]]:
    """One decision: the engine's explanation, the actuation result and the metric window it saw.

    A decision older than DECISION_RETENTION_DAYS is pruned: 410, with what the audit log recorded about it
    (nothing unless it changed capacity or was blocked from changing it)."""
    require_capability(request, "view")
    decision = selectors.decision_for_view(decision_id)
    if decision is None:
        pruned = selectors.decision_pruned(decision_id, now=timezone.now())
        if pruned is None:
            raise Http404(f"no decision with id {decision_id}")
        return Status(410, _pruned_out(pruned))
    samples: list[MetricSample] = selectors.decision_metric_window(decision, before_s=METRIC_WINDOW_S)
    return Status(
        200,
        {
            "id": decision.pk,
            "service": decision.service.name,
            "tick": decision.tick,
            "mode": decision.mode,
            "provisioned": decision.provisioned,
            "ready": decision.ready,
            "desired": decision.desired,
            "recommendation": decision.recommendation,
            "changed": decision.changed,
            "reason_code": decision.reason_code,
            "summary": decision.summary,
            "explanation": decision.explanation if isinstance(decision.explanation, dict) else {},
            "actuation": decision.actuation,
            "actuation_error": decision.actuation_error,
            "actuated_at": decision.actuated_at,
            "metric_window": samples,
        },
    )
