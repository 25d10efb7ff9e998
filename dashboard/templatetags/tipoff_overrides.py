"""The forms of the actions an override offers its viewer where it is drawn (dashboard/_override_row_actions.html)."""

from __future__ import annotations

from typing import Any

from django import forms, template
from django.utils import timezone

from dashboard.overrides import action_form, available_actions

register = template.Library()


@register.simple_tag(takes_context=True)
def override_actions(context: template.Context, o: Any, place: str) -> dict[str, forms.Form]:
    """Each action the signed-in user may take on `o` now, with its form: a fresh one, or for the action a
    refused submit drew the page again for (`refused`), that submit's (what was typed, and its errors)."""
    refused, refused_form = context.get("refused"), context.get("refused_form")
    now = context.get("now") or timezone.now()
    return {
        action: refused_form if action == refused and refused_form is not None else action_form(action, o, place)
        for action in available_actions(o, context["request"].user, now=now)
    }
