"""Override pages: list, create (with an htmx preview), cancel, extend, approve, reject; game-day rules."""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from django import forms
from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST
from django_htmx.http import HttpResponseClientRedirect

from dashboard.forms import (
    ApproveForm,
    CancelForm,
    ExtendForm,
    OverrideForm,
    ReasonForm,
    RejectForm,
    RuleForm,
    local_input,
)
from dashboard.permissions import can, requires
from dashboard.redirects import safe_next
from dashboard.templatetags.tipoff_time import money
from dashboard.views import HtmxHttpRequest
from scaling import override_selectors as reads
from scaling.audit import Actor
from scaling.models import Game, GameDayRule, Override, Service
from scaling.overrides import (
    ApprovalError,
    ApprovalNeed,
    ApprovalStale,
    OverrideConflict,
    OverrideError,
    approval_need,
    check_approvable,
    check_replicas,
    check_service,
    check_window,
    override_approve,
    override_cancel,
    override_create,
    override_extend,
    override_reject,
)
from scaling.schedule.rules import (
    RuleError,
    describe_match,
    match_warnings,
    rule_create,
    rule_delete,
    rule_update,
)

FORM_TEMPLATE = "dashboard/overrides_form.html"
# The fields whose errors the preview shows (under each field) as the operator types; the reason, the
# services and the bypass reason are checked on submit.
PREVIEW_FIELDS = (
    "kind",
    "replicas",
    "starts_at_local",
    "starts_at_occurrence",
    "ends_at_local",
    "ends_at_occurrence",
    "duration_minutes",
)
# The inputs that make the override's window; while one has an error the preview prices nothing.
TIME_INPUTS = {"starts_at_local", "starts_at_occurrence", "ends_at_local", "ends_at_occurrence", "duration_minutes"}


@dataclass(frozen=True)
class PreviewRow:
    p: reads.Preview
    need: ApprovalNeed


def _actor(request: HttpRequest) -> Actor:
    return Actor.for_request(request)


def _next_url(request: HttpRequest, default: str = "dashboard:overrides") -> str:
    """Where an action's form came from (its `next`), when that leads to this site (safe_next); else `default`."""
    return safe_next(request, request.POST.get("next") or request.GET.get("next"), default)


def _back(request: HtmxHttpRequest, default: str = "dashboard:overrides") -> HttpResponse:
    """Back where the action's form came from, its message in the banner; for htmx a whole page load, since an
    action changes the override's row, the approvals and the badges."""
    target = _next_url(request, default)
    if request.htmx:
        return HttpResponseClientRedirect(target)
    return redirect(target)


LIST_LIMIT = 500  # rows on the overrides page: the latest-starting, the page saying how many it leaves out


@requires("view")
def overrides_list(request: HttpRequest) -> HttpResponse:
    now = timezone.now()
    show_past = request.GET.get("past") == "1"
    overrides, total = reads.latest_overrides(reads.overrides_list(now=now, include_past=show_past), LIST_LIMIT)
    adds_nothing_over = reads.adds_nothing_over(overrides)
    context = {
        "overrides": overrides,
        # Each row's state (reads.override_state: the API's `state`) and how the list says it.
        "rows": [
            (o, adds_nothing_over.get(o.pk), reads.is_held_by_mode(o, now=now), state, reads.STATE_LABELS[state])
            for o in overrides
            for state in [reads.override_state(o, now=now)]
        ],
        "pending": reads.pending_approvals(now),
        "show_past": show_past,
        "total": total,
        "now": now,
    }
    return render(request, "dashboard/overrides.html", context)


def _next_minute(now: datetime) -> datetime:
    """`now` rounded up to the whole minute, as a datetime-local input can hold it without going into the past."""
    floor = now.replace(second=0, microsecond=0)
    return floor if floor == now else floor + timedelta(minutes=1)


def _initial_from_query(request: HttpRequest, now: datetime) -> dict[str, Any]:
    """Prefill from ?game=<id>&service=<name>&kind=<kind>: a floor from lead time before tip-off (or from now,
    for a game closer than that, as a game-day rule starts its floors) to 3 h after."""
    initial: dict[str, Any] = {"kind": request.GET.get("kind") or Override.Kind.FLOOR}
    names = request.GET.getlist("service")
    chosen = list(Service.objects.filter(name__in=names)) if names else []
    if chosen:
        initial["services"] = chosen
    game_id = request.GET.get("game")
    game = Game.objects.filter(pk=game_id, tbd=False).first() if game_id and game_id.isdigit() else None
    if game is not None:
        delay_s = max([s.provisioning_delay_s for s in chosen] or [180])
        initial["game"] = game
        start = max(game.tip_utc - timedelta(seconds=delay_s, minutes=15), _next_minute(now))
        initial["starts_at_local"] = local_input(start)
        initial["ends_at_local"] = local_input(game.tip_utc + timedelta(hours=3))
        # The game is linked and shown beside the reason ("... (BOS @ NYK)"): the reason says why, not which game.
        initial["reason"] = "game-night traffic" + (f" on {game.national_tv}" if game.national_tv else "")
    return initial


@requires("operate")
def override_new(request: HttpRequest) -> HttpResponse:
    admin = can(request.user, "administer")
    if request.method != "POST":
        form = OverrideForm(initial=_initial_from_query(request, timezone.now()), admin=admin)
        return render(request, FORM_TEMPLATE, {"form": form, "game": form.initial.get("game")})
    form = OverrideForm(request.POST, admin=admin)
    status = 400
    conflict: Override | None = None
    if form.is_valid():
        data = form.cleaned_data
        try:
            created = override_create(
                services=list(data["services"]),
                kind=data["kind"],
                replicas=data["replicas"],
                starts_at=data["starts_at"] or timezone.now(),
                ends_at=data["ends_at"],
                reason=data["reason"],
                actor=_actor(request),
                admin=admin,
                bypass_reason=data.get("bypass_reason", ""),
                replace=data["replace"],
                game=data["game"],
            )
        except OverrideConflict as exc:
            # Shown once, by the conflict box above the form (with the existing pin's times in both zones).
            status, conflict = 409, exc.existing
        except OverrideError as exc:
            field = _form_field(exc.field)
            form.add_error(field if field in form.fields else None, str(exc))  # bypass_reason is an admin's only
        else:
            pending = [o for o in created if o.status == Override.Status.PENDING_APPROVAL]
            names = ", ".join(o.service.name for o in created)
            if pending:
                why = "; ".join(
                    (f"{o.service.name}: " if len(created) > 1 else "") + o.approval_needed_because for o in pending
                )
                messages.warning(
                    request, f"Override for {names} created; it waits for a second person's approval: {why}."
                )
            else:
                messages.success(request, f"Override for {names} created and approved.")
            return redirect("dashboard:overrides")
    context = {"form": form, "conflict": conflict, "game": form.cleaned_data.get("game") if form.is_bound else None}
    return render(request, FORM_TEMPLATE, context, status=status)


def _form_field(field: str) -> str | None:
    mapping = {"starts_at": "starts_at_local", "ends_at": "ends_at_local", "replace": None}
    if field in mapping:
        return mapping[field]
    return field if field in OverrideForm.base_fields else None


def _add_problem(field_problems: dict[str, list[str]], problems: list[str], exc: OverrideError) -> None:
    field = _form_field(exc.field)
    if field in field_problems:
        field_problems[field].append(str(exc))
    else:
        problems.append(str(exc))


def _checked(
    data: dict[str, Any],
    *,
    kind: str,
    replicas: int | None,
    ends_at: datetime,
    now: datetime,
    admin: bool,
    say: Callable[[OverrideError], None],
) -> tuple[datetime, list[Service]] | None:
    """The checks creating the override makes (scaling.overrides), for the preview: each refusal is said (where
    the submit says it), since the page a refused submit draws asks for the preview as it loads, and an error
    the preview did not check again it would erase. Returns the effective start and the services to price, or
    None when nothing is to be priced.

    1. The replica count for the kind.
    2. The window (before pricing, which forecasts every 5 minutes of it: a mistyped year would take seconds
       to hours, on every keystroke).
    3. Each service's bounds and the overrides the new one would overlap.
    """
    fine = True
    try:
        if replicas is not None:  # a missing one is the form's "required", said once submitted
            check_replicas(kind=kind, replicas=replicas)
    except OverrideError as exc:
        say(exc)
        fine = False
    try:
        start = check_window(kind=kind, starts_at=data.get("starts_at") or now, ends_at=ends_at, now=now, admin=admin)
    except OverrideError as exc:
        say(exc)
        return None
    services = []
    for service in data.get("services") or []:
        try:
            check_service(service, kind=kind, replicas=replicas, starts_at=start, ends_at=ends_at)
        except OverrideError as exc:
            say(exc)
            continue
        services.append(service)
    return (start, services) if fine else None


@requires("operate")
@require_POST
def override_preview(request: HttpRequest) -> HttpResponse:
    """The htmx preview under the form: forecast replicas vs the override and the projected cost."""
    admin = can(request.user, "administer")
    form = OverrideForm(request.POST, admin=admin)
    form.is_valid()
    data = form.cleaned_data
    now = timezone.now()
    previews = []
    # Each error goes (out of band) under its field, replacing what that field showed: one message per problem.
    # Missing values ("required") wait for the submit, as the reason does: they are not mistakes yet. Once the
    # operator has submitted (the page then carries `submitted`), the preview keeps saying them.
    submitted = request.POST.get("submitted") == "1"
    field_problems: dict[str, list[str]] = {name: [] for name in PREVIEW_FIELDS}
    problems: list[str] = []
    for name, errors in form.errors.as_data().items():
        shown = [m for e in errors if submitted or e.code != "required" for m in e.messages]
        if name in field_problems:
            field_problems[name] += shown
        elif name not in {"reason", "services", "bypass_reason"}:
            problems += shown
    # A start or end that did not parse is None in cleaned_data: pricing then would price from now
    # (or to nowhere), a window the operator never asked for.
    times_invalid = bool(TIME_INPUTS & form.errors.keys())
    kind, replicas, end = data.get("kind"), data.get("replicas"), data.get("ends_at")
    if kind and end and not times_invalid:
        say = partial(_add_problem, field_problems, problems)
        checked = _checked(data, kind=kind, replicas=replicas, ends_at=end, now=now, admin=admin, say=say)
        if checked is not None:
            start, services = checked
            requester_id = _actor(request).user_id
            for service in services:
                p = reads.override_preview(service, kind=kind, replicas=replicas, starts_at=start, ends_at=end, now=now)
                need = approval_need(
                    service,
                    requester_id=requester_id,
                    replicas=replicas,
                    cost_delta=p.cost_delta,
                    starts_at=start,
                    ends_at=end,
                    now=now,
                )
                previews.append(PreviewRow(p, need))
    context = {
        "previews": previews,
        "total": round(sum(x.p.cost_delta for x in previews), 2),
        "problems": problems,
        "field_errors": [(form[name], errors) for name, errors in field_problems.items()],
        "has_problems": bool(problems) or any(field_problems.values()),
        "starts_at": data.get("starts_at"),
        "ends_at": data.get("ends_at"),
    }
    return render(request, f"{FORM_TEMPLATE}#preview", context)


# Where an override's actions are drawn: its row of the list, or the pending approvals (fleet and overrides
# pages). A pending override shows in both on the overrides page, so each place gives its inputs their own ids.
ACTION_PLACES = ("list", "approvals")
ACTION_FORMS: dict[str, type[forms.Form]] = {
    "approve": ApproveForm,
    "reject": RejectForm,
    "cancel": CancelForm,
    "extend": ExtendForm,
}
ACTION_DONE = {"approve": "approved", "reject": "rejected", "cancel": "cancelled", "extend": "extended"}
ROW_ACTIONS_TEMPLATE = "dashboard/_override_row_actions.html"
ACTION_PAGE_TEMPLATE = "dashboard/override_action.html"
APPROVE_TEMPLATE = "dashboard/_approve_confirm.html"


def action_form(action: str, o: Override, place: str, data: Any = None) -> forms.Form:
    """The form of one of `o`'s actions, its inputs' ids named for the override and the place it is drawn."""
    return ACTION_FORMS[action](data, auto_id=f"id_{place}{o.pk}_{action}_%s")


def available_actions(o: Override, user: Any, *, now: datetime) -> list[str]:
    """The actions `user` may take on `o` now: approve and reject another's pending override (approvers), cancel
    one not yet over and extend an approved one (operators)."""
    actions = []
    if o.status == Override.Status.PENDING_APPROVAL and can(user, "approve") and o.created_by_id != user.pk:
        actions += ["approve", "reject"]
    if o.status in reads.LIVE_STATUSES and can(user, "operate") and o.ends_at > now:
        actions += ["cancel"]
        # A pending override's window is what its approver is shown; asking for longer is a new override.
        if o.status == Override.Status.APPROVED:
            actions += ["extend"]
    return actions


def _place(request: HttpRequest) -> str:
    place = request.POST.get("place") or request.GET.get("place") or ""
    return place if place in ACTION_PLACES else ACTION_PLACES[0]


def _add_refusal(form: forms.Form, exc: OverrideError, *, shown: Collection[str]) -> None:
    """Put a refusal from scaling.overrides beside the input at fault, or with the form's own errors when the
    page shows no such input."""
    field = {"ends_at": "ends_at_local"}.get(exc.field, exc.field)
    form.add_error(field if field in shown else None, str(exc))


def _refused(
    request: HtmxHttpRequest, o: Override, action: str, form: forms.Form, *, default: str = "dashboard:overrides"
) -> HttpResponse:
    """A refused cancel, extend or reject: its form again, with what was typed and each error beside its field.
    For htmx in place of the override's actions (a 200: htmx swaps no 4xx answer), saying above them that
    nothing was done; without JavaScript on a page of its own (400), the banner summing up."""
    now = timezone.now()
    context: dict[str, Any] = {
        "o": o,
        "now": now,
        "place": _place(request),
        "next": _next_url(request, default),
        "refused": action,
        "refused_form": form,
    }
    said = f"Override #{o.pk} not {ACTION_DONE[action]}"
    if request.htmx:
        still_offered = action in available_actions(o, request.user, now=now)
        # When the action is no longer offered (the override ended meanwhile), no field is there to say why.
        context["refused_summary"] = f"{said}; see below." if still_offered else f"{said}: {_named_errors(form)}"
        return render(request, ROW_ACTIONS_TEMPLATE, context)
    messages.error(request, f"{said}: {_named_errors(form)}")
    return render(request, ACTION_PAGE_TEMPLATE, context, status=400)


def _named_errors(form: forms.Form) -> str:
    """Each of a form's errors after its field's label ("New end: …"), for a summary away from the fields."""
    named: list[str] = []
    for name, errors in form.errors.items():
        field = form.fields.get(name)  # None for the form's own errors (NON_FIELD_ERRORS)
        label = (field.label or name.replace("_", " ").capitalize()) if field else ""
        named.extend(f"{label}: {e}" if label else str(e) for e in errors)
    return "; ".join(named)


@requires("operate")
@require_POST
def override_cancel_view(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    override = get_object_or_404(Override, pk=pk)
    form = action_form("cancel", override, _place(request), request.POST)
    if not form.is_valid():
        return _refused(request, override, "cancel", form)
    try:
        cancelled = override_cancel(override=override, actor=_actor(request), reason=form.cleaned_data["reason"])
    except OverrideError as exc:
        _add_refusal(form, exc, shown={"reason"})
        return _refused(request, override, "cancel", form)
    if cancelled:
        messages.success(request, f"Override #{override.pk} on {override.service.name} cancelled.")
    else:
        messages.info(request, f"Override #{override.pk} had already ended or been cancelled.")
    return _back(request)


@requires("operate")
@require_POST
def override_extend_view(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    override = get_object_or_404(Override, pk=pk)
    form = action_form("extend", override, _place(request), request.POST)
    if not form.is_valid():
        return _refused(request, override, "extend", form)
    admin = can(request.user, "administer")
    try:
        override_extend(
            override=override,
            ends_at=form.cleaned_data["ends_at"],
            actor=_actor(request),
            reason=form.cleaned_data["reason"],
            admin=admin,
            bypass_reason=form.cleaned_data["bypass_reason"],
        )
    except OverrideError as exc:
        shown = {"ends_at_local", "reason"} | ({"bypass_reason"} if admin else set())  # as the row draws them
        _add_refusal(form, exc, shown=shown)
        return _refused(request, override, "extend", form)
    messages.success(request, f"Override #{override.pk} extended.")
    return _back(request)


@requires("approve")
@require_http_methods(["GET", "POST"])
def override_approve_view(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    """The approve step: what approving would approve, and a "Confirm approval" button (with an optional note)
    that posts back here with `confirmed`, which approves, and `seen`, the version of each override the step
    showed: one changed since is not approved, and the step is shown again as it is now. A post without
    `confirmed` (a page drawn before this step existed) only shows the step."""
    override = get_object_or_404(Override.objects.select_related("service", "created_by", "game"), pk=pk)
    confirmed = request.method == "POST" and request.POST.get("confirmed") == "1"
    form = action_form("approve", override, _place(request), request.POST if confirmed else None)
    if not confirmed:
        return _approve_step(request, override, form)
    status = 400
    if form.is_valid():
        try:
            group = override_approve(
                override=override,
                actor=_actor(request),
                reason=form.cleaned_data["reason"],
                seen=form.cleaned_data["seen"],
            )
        except OverrideError as exc:
            # Who may approve, and when, or what changed since the step was drawn: nothing the note could fix.
            _add_refusal(form, exc, shown=())
            status = 409 if isinstance(exc, ApprovalStale) else 400
        else:
            messages.success(request, f"Approved {len(group)} override(s): {approved_list(group)}.")
            return _back(request, "dashboard:fleet")
    if not request.htmx:
        messages.error(request, f"Override #{override.pk} not approved: {_named_errors(form)}")
    # The step drawn again shows the overrides as they are now, and the confirmation names those.
    return _approve_step(request, override, form, status=200 if request.htmx else status)


def approved_list(group: list[Override]) -> str:
    """Each override approving approved, named: "#12 win-probability floor 8 (+$57.42), #13 ..." (a group's
    others are approved with the one asked about)."""
    named = []
    for o in group:
        n = "" if o.replicas is None else f" {o.replicas}"
        named.append(f"#{o.pk} {o.service.name} {o.kind}{n} ({money(o.projected_cost_delta)})")
    return ", ".join(named)


def _approve_step(request: HtmxHttpRequest, o: Override, form: forms.Form, *, status: int = 200) -> HttpResponse:
    """The approve step for `o`, in place of its actions (htmx) or on a page of its own."""
    o.refresh_from_db()  # a refused approval may have found it decided meanwhile
    try:
        check_approvable(o, actor=_actor(request), now=timezone.now())
        blocker = ""
    except ApprovalError as exc:
        blocker = str(exc)
    group = reads.approval_group(o) or [o]
    context = {
        "o": o,
        "group": group,
        "group_cost": sum(g.projected_cost_delta or 0.0 for g in group),
        "seen": ApproveForm.seen_value(group),
        "form": form,
        "blocker": blocker,
        "place": _place(request),
        "next": _next_url(request, "dashboard:fleet"),
        "approval_replicas": settings.OVERRIDE_APPROVAL_REPLICAS,
        "approval_cost": float(settings.OVERRIDE_APPROVAL_COST),
        "confirm": True,
    }
    template = APPROVE_TEMPLATE if request.htmx else ACTION_PAGE_TEMPLATE
    return render(request, template, context, status=status)


@requires("approve")
@require_POST
def override_reject_view(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    override = get_object_or_404(Override, pk=pk)
    form = action_form("reject", override, _place(request), request.POST)
    if not form.is_valid():
        return _refused(request, override, "reject", form, default="dashboard:fleet")
    try:
        override_reject(override=override, actor=_actor(request), reason=form.cleaned_data["reason"])
    except OverrideError as exc:
        _add_refusal(form, exc, shown={"reason"})
        return _refused(request, override, "reject", form, default="dashboard:fleet")
    messages.success(request, f"Rejected override #{override.pk}.")
    return _back(request, "dashboard:fleet")


# --- game-day rules ---------------------------------------------------------------


@requires("view")
def rules_list(request: HttpRequest) -> HttpResponse:
    rules = [
        {"rule": r, "match": describe_match(r.match), "services": [s.name for s in r.services.all()]}
        for r in reads.rules_list(timezone.now())
    ]
    return render(request, "dashboard/overrides_rules.html", {"rules": rules})


@requires("administer")
def rule_edit(request: HttpRequest, pk: int | None = None) -> HttpResponse:
    rule = get_object_or_404(GameDayRule, pk=pk) if pk is not None else None
    if request.method != "POST":
        initial = RuleForm.initial_for(rule) if rule else {"enabled": True, "tail_minutes": 180}
        return render(request, "dashboard/overrides_rule_form.html", {"form": RuleForm(initial=initial), "rule": rule})
    form = RuleForm(request.POST)
    if form.is_valid():
        try:
            if rule is None:
                rule = rule_create(spec=form.to_spec(), actor=_actor(request))
                messages.success(
                    request, f"Rule {rule.name!r} created; it scheduled {rule.overrides.count()} override(s)."
                )
            else:
                changed = rule_update(rule=rule, spec=form.to_spec(), actor=_actor(request))
                messages.success(request, f"Rule {rule.name!r} {'updated' if changed else 'unchanged'}.")
            for warning in match_warnings(rule.match) + reads.rule_approval_warnings(rule):
                messages.warning(request, warning)
            return redirect("dashboard:rules")
        except RuleError as exc:
            field = exc.field.removeprefix("match.")  # the form has one input per match key
            form.add_error(field if field in RuleForm.base_fields else None, str(exc))
    return render(request, "dashboard/overrides_rule_form.html", {"form": form, "rule": rule}, status=400)


@requires("administer")
@require_POST
def rule_delete_view(request: HttpRequest, pk: int) -> HttpResponse:
    rule = get_object_or_404(GameDayRule, pk=pk)
    form = ReasonForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Deleting a rule needs a reason.")
        return redirect("dashboard:rules")
    name = rule.name
    rule_delete(rule=rule, actor=_actor(request), reason=form.cleaned_data["reason"])
    messages.success(request, f"Rule {name!r} deleted; its future overrides were cancelled.")
    return redirect("dashboard:rules")
