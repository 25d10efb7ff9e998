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
    }
