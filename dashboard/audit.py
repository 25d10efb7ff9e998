"""The audit review page: filter, seek through a million events, open what each event is about, export CSV."""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any

from django import forms
from django.conf import settings
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import render
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from dashboard.forms import local_to_utc, name_error_blocks, operator_tz, parse_local
from dashboard.permissions import requires
from scaling import selectors
from scaling.audit import EventType, latest_verification
from scaling.audit_selectors import EVENT_DOMAINS, AuditFilter, actor_labels, audit_export_rows, audit_page
from scaling.models import AuditEvent, Service

# object_type -> URL names to try, in order (the first that exists wins), and the URL kwarg for the
# object's id ("" = a list page, linked with a #<type>-<id> fragment).
OBJECT_LINKS: dict[str, tuple[tuple[str, str], ...]] = {
    "decision": (("dashboard:decision", "decision_id"),),
    "override": (
        ("dashboard:override", "pk"),
        ("dashboard:override-detail", "pk"),
        ("dashboard:overrides", ""),
    ),
    "rule": (("dashboard:rules", ""),),
    "api_token": (("access:tokens", ""),),
    "user": (("admin:auth_user_change", "object_id"),),  # the Django admin, for staff
    "group": (("admin:auth_group_change", "object_id"),),
}


def object_url(event: AuditEvent) -> str:
    """The page of the decision, override or rule the event is about ('' when there is none)."""
    if event.object_type == "service" and event.service_id is not None and event.service is not None:
        return reverse("dashboard:service", args=[event.service.name])
    if not event.object_id.isdigit():
        return ""
    for name, kwarg in OBJECT_LINKS.get(event.object_type, ()):
        try:
            if not kwarg:
                return f"{reverse(name)}#{event.object_type}-{event.object_id}"
            return reverse(name, kwargs={kwarg: int(event.object_id)})
        except NoReverseMatch:
            continue
    return ""


def _event_type_choices() -> list[tuple[str, str]]:
    choices: list[tuple[str, str]] = [("", "any event")]
    for domain in EVENT_DOMAINS:
        choices.append((domain, f"{domain}.* (all)"))
        choices.extend((str(t), f"  {t}") for t in EventType if str(t).startswith(domain + "."))
    return choices


def _local_time(raw: str, *, occurrence: str) -> datetime | None:
    """A filter's bound typed in the operator's zone, as UTC. A time the clocks repeat is read as the
    `occurrence` that widens the range (From the first, Until the second): a filter asks no questions."""
    if not raw:
        return None
    try:
        return local_to_utc(parse_local(raw), operator_tz(), occurrence)
    except OverflowError:  # in UTC it falls past 9999-12-31
        raise forms.ValidationError(f"{raw.strip()} is out of range: enter a date before the year 9999") from None


def _local_time_input() -> forms.DateTimeInput:
    return forms.DateTimeInput(attrs={"type": "datetime-local", "step": "60"})


class AuditFilterForm(forms.Form):
    since = forms.CharField(required=False, max_length=40, label="From", widget=_local_time_input())
    until = forms.CharField(required=False, max_length=40, label="Until", widget=_local_time_input())
    # The page offers the services there are; a name that is none (typed into the address) is refused beside it.
    service = forms.SlugField(required=False, max_length=64, widget=forms.Select)
    actor = forms.CharField(
        required=False,
        max_length=200,
        help_text="A username finds all they did, on these pages and with their API tokens; any other actor, as "
        "listed (e.g. one token: “operator (token ci)”).",
        widget=forms.TextInput(attrs={"placeholder": "e.g. operator", "list": "audit-actors"}),
    )
    event_type = forms.ChoiceField(required=False, choices=_event_type_choices, label="Event")
    q = forms.CharField(
        required=False,
        max_length=200,
        label="Text",
        widget=forms.TextInput(attrs={"type": "search", "placeholder": "words in the reason or actor"}),
    )
    object_type = forms.CharField(required=False, max_length=40, widget=forms.HiddenInput)
    object_id = forms.CharField(required=False, max_length=64, widget=forms.HiddenInput)
    before = forms.IntegerField(required=False, min_value=1, widget=forms.HiddenInput)
    after = forms.IntegerField(required=False, min_value=0, widget=forms.HiddenInput)

    def __init__(self, *args: Any, service_names: Iterable[str] = (), **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for name in ("since", "until"):
            self.fields[name].help_text = f"in {settings.OPERATOR_TIME_ZONE}"
        service = self.fields["service"]
        service.widget.choices = [("", "any service"), *((n, n) for n in service_names)]
        service.widget.attrs.pop("maxlength", None)  # a text box's attribute, which SlugField gives any widget
        name_error_blocks(self)

    def clean_service(self) -> str:
        name: str = self.cleaned_data.get("service") or ""
        if name and not Service.objects.filter(name=name).exists():
            raise forms.ValidationError(f"no service is named {name!r}")
        return name

    def clean_since(self) -> datetime | None:
        return _local_time(self.cleaned_data.get("since") or "", occurrence="first")

    def clean_until(self) -> datetime | None:
        return _local_time(self.cleaned_data.get("until") or "", occurrence="second")

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        since, until = data.get("since"), data.get("until")
        if since and until and since >= until:
            self.add_error("until", "must be later than From")
        return data

    def errors_no_field_shows(self) -> list[str]:
        """The errors not said beside a field: the form's own, and its hidden fields' (the paging cursors, the
        object a link asked about), each named."""
        hidden = [f"{f.name}: {' '.join(str(e) for e in f.errors)}" for f in self.hidden_fields() if f.errors]
        return [*(str(e) for e in self.non_field_errors()), *hidden]

    def audit_filter(self) -> AuditFilter:
        d = self.cleaned_data
        return AuditFilter(
            since=d.get("since"),
            until=d.get("until"),
            service=d.get("service") or "",
            actor=(d.get("actor") or "").strip(),
            event_type=d.get("event_type") or "",
            q=(d.get("q") or "").strip(),
            object_type=d.get("object_type") or "",
            object_id=d.get("object_id") or "",
        )


def _query_without(request: HttpRequest, *drop: str) -> str:
    params = request.GET.copy()
    for key in drop:
        params.pop(key, None)
    return params.urlencode()


@requires("view")
def audit_list(request: HttpRequest) -> HttpResponse:
    # A filter answered by htmx swaps the form and the results (audit.html#audit-view); restoring a page htmx
    # no longer keeps in its history asks for the whole page.
    details = getattr(request, "htmx", None)
    htmx = details is not None and bool(details) and not details.history_restore_request
    service_names = Service.objects.order_by("name").values_list("name", flat=True)
    form = AuditFilterForm(request.GET or None, service_names=service_names)
    page = None
    if form.is_bound and not form.is_valid():
        # htmx swaps only 2xx responses: it gets the form with its errors beside the fields with a 200.
        status = 200 if htmx else 400
    else:
        status = 200
        if not form.is_bound:
            form = AuditFilterForm({}, service_names=service_names)
            form.is_valid()
        page = audit_page(
            form.audit_filter(), before=form.cleaned_data.get("before"), after=form.cleaned_data.get("after")
        )
    rows = [(event, object_url(event)) for event in page.events] if page else []
    # A decision event's link still opens a page after the decision is pruned (it says so); the row says so too.
    decision_ids = {int(e.object_id) for e, _ in rows if e.object_type == "decision" and e.object_id.isdigit()}
    pruned_decisions = {str(pk) for pk in selectors.decisions_not_stored(decision_ids)}
    context = {
        "form": form,
        "page": page,
        "rows": rows,
        "pruned_decisions": pruned_decisions,
        "decision_retention_days": settings.DECISION_RETENTION_DAYS,
        "actors": [] if htmx else actor_labels(),
        "htmx": htmx,
        "verification": latest_verification(),
        "base_query": _query_without(request, "before", "after"),
        "now": timezone.now(),
    }
    template = "dashboard/audit.html#audit-view" if htmx else "dashboard/audit.html"
    return render(request, template, context, status=status)


class _Echo:
    """A file-like object that hands each CSV line straight back (nothing is accumulated)."""

    def write(self, value: str) -> str:
        return value


CSV_COLUMNS = (
    "id",
    "created_at (UTC)",  # ISO 8601 with its offset, +00:00: a spreadsheet's column, not an operator's clock
    "actor_type",
    "actor",
    "service",
    "event_type",
    "object_type",
    "object_id",
    "reason",
    "cost_impact_per_hour",
    "before",
    "after",
    "prev_hash",
    "hash",
)


def _cell(value: Any) -> str:
    text = "" if value is None else str(value)
    # A spreadsheet would run a cell starting with these as a formula (CSV injection).
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def _csv_lines(events: Iterator[AuditEvent]) -> Iterator[str]:
    import json

    writer = csv.writer(_Echo())
    yield writer.writerow(CSV_COLUMNS)
    for e in events:
        yield writer.writerow(
            [
                _cell(v)
                for v in (
                    e.pk,
                    e.created_at.isoformat(),
                    e.actor_type,
                    e.actor_label,
                    e.service.name if e.service_id and e.service else "",
                    e.event_type,
                    e.object_type,
                    e.object_id,
                    e.reason,
                    e.cost_impact_per_hour,
                    "" if e.before is None else json.dumps(e.before, sort_keys=True),
                    "" if e.after is None else json.dumps(e.after, sort_keys=True),
                    e.prev_hash,
                    e.hash,
                )
            ]
        )


@requires("view")
def audit_csv(request: HttpRequest) -> HttpResponseBase:
    form = AuditFilterForm(request.GET)
    if not form.is_valid():
        errors = "; ".join(f"{field}: {' '.join(str(m) for m in msgs)}" for field, msgs in form.errors.items())
        return HttpResponse(f"invalid filter: {errors}\n", status=400, content_type="text/plain")
    stamp = datetime.now().strftime("%Y%m%dT%H%M%S")
    response = StreamingHttpResponse(_csv_lines(audit_export_rows(form.audit_filter())), content_type="text/csv")
    response["Content-Disposition"] = f'attachment; filename="tipoff-audit-{stamp}.csv"'
    return response
