from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest

from dashboard.permissions import CAPABILITIES, can
from scaling import selectors


def tipoff(request: HttpRequest) -> dict[str, Any]:
    if not getattr(request, "user", None) or not request.user.is_authenticated:
        return {}
    return {
        "demo_shift_weeks": selectors.demo_shift_weeks(),
        "operator_time_zone": settings.OPERATOR_TIME_ZONE,
        "tick_seconds": settings.TICK_SECONDS,
        # {% if user_can.operate %} in templates: show only the controls the user may use.
        "user_can": {capability: can(request.user, capability) for capability in CAPABILITIES},
        # The red banner for admins when the latest periodic verify_audit found a broken chain.
        "audit_alarm": _audit_alarm(request),
    }


def _audit_alarm(request: HttpRequest) -> Any:
    if not can(request.user, "administer"):
        return None
    from scaling.audit import latest_verification

    latest = latest_verification()
    return latest if latest is not None and not latest.ok else None
