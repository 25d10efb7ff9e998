"""A service's engine parameters (view, edit, revision history, restore) and its mode control."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from dashboard.permissions import requires
from dashboard.policy_forms import (
    ModeForm,
    PolicyForm,
    RestoreForm,
    form_data_from_json,
    help_for,
    label_for,
    params_as_dict,
    params_diff,
    policy_fields,
    range_for,
)
from dashboard.templatetags.tipoff_time import local_time
from dashboard.views import HtmxHttpRequest
from scaling import override_selectors as reads
from scaling import selectors, services
from scaling.audit import Actor
from scaling.models import Override, PolicyRevision, Service


def _parameter_rows(params: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for field in policy_fields():
        default = field.default if not callable(field.default) else None
        rows.append(
            {
                "name": field.name,
                "label": label_for(field.name),
                "value": params.get(field.name),
                "default": default,
                "changed": params.get(field.name) != default,
                "help": help_for(field),
                "range": range_for(field.name).describe() if not isinstance(default, bool) else "true or false",
            }
        )
    return rows


def _revision_rows(revisions: list[PolicyRevision]) -> list[dict[str, Any]]:
    """Newest first, each with its diff against the version before it."""
    rows = []
    for i, revision in enumerate(revisions):
        previous = revisions[i + 1] if i + 1 < len(revisions) else None
        rows.append(
            {
                "revision": revision,
                "diff": params_diff(previous.params, revision.params) if previous else [],
                "first": previous is None,
            }
        )
    return rows


@requires("view")
def policy_detail(request: HtmxHttpRequest, name: str) -> HttpResponse:
    service = get_object_or_404(Service, name=name)
    params = params_as_dict(service.policy)
    revisions = selectors.policy_revisions(service)
    context = {
        "service": service,
        "rows": _parameter_rows(params),
        "revisions": _revision_rows(revisions),
        "restore_form": RestoreForm(),
    }
    return render(request, "dashboard/policy.html", context)


@requires("administer")
def policy_edit(request: HtmxHttpRequest, name: str) -> HttpResponse:
    service = get_object_or_404(Service, name=name)
    current = params_as_dict(service.policy)
    if request.method != "POST":
        form = PolicyForm(initial=current)
        return render(request, "dashboard/policy_edit.html", {"service": service, "form": form})

    form = PolicyForm(request.POST, service=service)
    based_on = request.POST.get("based_on_version", str(service.policy_version))
    if not (based_on.isascii() and based_on.isdigit() and int(based_on) >= 1):
        # The page always sends the version it showed: anything else is a form not sent by it (or cut short),
        # which says nothing about whether the policy changed since.
        form.is_valid()
        form.add_error(
            None,
            "This form is malformed: the policy version it is based on is not a version number. "
            "Nothing was saved: reload the page and make the change again.",
        )
        return render(request, "dashboard/policy_edit.html", {"service": service, "form": form}, status=400)
    stale = int(based_on) != service.policy_version
    if stale:
        form.is_valid()
        form.add_error(
            None,
            f"The policy changed while you were editing it (now version {service.policy_version}). "
            "Review the current values below and save again.",
        )
    if stale or not form.is_valid():
        return render(request, "dashboard/policy_edit.html", {"service": service, "form": form}, status=422)
    changed = services.service_update_policy(
        service=service, params=form.params(), actor=Actor.for_user(request.user), reason=form.cleaned_data["reason"]
    )
    if changed:
        messages.success(request, f"Saved policy version {service.policy_version}.")
    else:
        messages.info(request, "Nothing changed: the policy is already set to these values.")
    return redirect("dashboard:policy", name=service.name)


@require_POST
@requires("administer")
def policy_restore(request: HtmxHttpRequest, name: str, version: int) -> HttpResponse:
    service = get_object_or_404(Service, name=name)
    revision = get_object_or_404(PolicyRevision, service=service, version=version)
    restore = RestoreForm(request.POST)
    target = reverse("dashboard:policy", kwargs={"name": service.name})
    if not restore.is_valid():
        messages.error(request, f"Restoring version {version} needs a reason.")
        return HttpResponseRedirect(target)
    # The same validation as an edit: an old version may hold values the engine now rejects.
    known = {f.name for f in policy_fields()}
    stored = {k: v for k, v in revision.params.items() if k in known}
    form = PolicyForm(
        form_data_from_json(stored, restore.cleaned_data["reason"], base=params_as_dict({})), service=service
    )
    if not form.is_valid():
        problems = "; ".join(f"{field}: {' '.join(errs)}" for field, errs in form.field_errors().items())
        messages.error(request, f"Version {version} cannot be restored: {problems}")
        return HttpResponseRedirect(target)
    reason = f"restore version {version}: {restore.cleaned_data['reason']}"
    if services.service_update_policy(
        service=service, params=form.params(), actor=Actor.for_user(request.user), reason=reason
    ):
        messages.success(request, f"Restored version {version} as version {service.policy_version}.")
    else:
        messages.info(request, f"Nothing changed: the policy already matches version {version}.")
    return HttpResponseRedirect(target)


# How a message ends "will not be applied while ...".
MODE_WHILE: dict[str, str] = {Service.Mode.PAUSED: "paused", Service.Mode.DRY_RUN: "in dry run"}


def _override_label(o: Override) -> str:
    """'floor 25 from Thu 06:42 EST (rule National TV games)'."""
    n = "" if o.replicas is None else f" {o.replicas}"
    notes = [f"rule {o.rule.name}"] if o.rule else []
    if o.status == Override.Status.PENDING_APPROVAL:
        notes.append("pending approval")
    return f"{o.kind.replace('_', ' ')}{n} from {local_time(o.starts_at, '%a %H:%M')}" + "".join(
        f" ({note})" for note in notes
    )


# The form field each of service_set_mode's refusals belongs to.
MODE_FORM_FIELDS = {"mode": "mode", "reason": "reason", "until": "until_local"}


@require_POST
@requires("operate")
def service_mode(request: HtmxHttpRequest, name: str) -> HttpResponse:
    service = get_object_or_404(Service, name=name)
    form = ModeForm(request.POST)
    changed = False
    if form.is_valid():
        try:
            changed = services.service_set_mode(
                service=service,
                mode=form.cleaned_data["mode"],
                actor=Actor.for_user(request.user),
                reason=form.cleaned_data["reason"],
                until=form.cleaned_data["until"],
            )
        except services.ModeError as exc:
            form.add_error(MODE_FORM_FIELDS.get(exc.field), exc.message)
    if form.errors:
        if request.htmx:
            return render(request, "dashboard/service_mode.html#mode-control", {"service": service, "mode_form": form})
        problems = "; ".join(" ".join(str(e) for e in errs) for errs in form.errors.values())
        messages.error(request, f"The mode was not changed: {problems}")
        return redirect("dashboard:service", name=service.name)
    if changed:
        until = f" until {local_time(service.mode_until)}" if service.mode_until else ""
        messages.success(request, f"{service.display_name} is now {service.get_mode_display().lower()}{until}.")
        held = [_override_label(o) for o in reads.held_by_mode(service, now=timezone.now())]
        if held:
            listed = ", ".join(held)
            messages.warning(
                request, f"{listed[0].upper()}{listed[1:]} will not be applied while {MODE_WHILE[service.mode]}."
            )
    else:
        messages.info(request, f"{service.display_name} was already {service.get_mode_display().lower()}.")
    if request.htmx:
        # The mode shows in several places on the page (badge, controls, decisions): reload it.
        response = HttpResponse(status=204)
        response["HX-Refresh"] = "true"
        return response
    return redirect("dashboard:service", name=service.name)
