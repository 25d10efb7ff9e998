"""What-if: pick a past range and a policy, see beside what happened what that policy
would have done on the recorded traffic. The replay runs in a Celery task
(scaling.whatif); this page starts it and polls its progress with htmx."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django import forms
from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.forms import BoundField
from django.http import Http404, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django_htmx.http import push_url, reswap, retarget

from dashboard.charts import chart_clock
from dashboard.decisions import fmt
from dashboard.forms import FOLD_CHOICES, LocalTimesForm, local_input, local_occurrence
from dashboard.permissions import can, requires
from dashboard.policy_forms import check_params
from dashboard.views import HtmxHttpRequest
from scaling.models import Service, WhatIfRun
from scaling.policy import PolicyParams
from scaling.sim.policies import BUILTIN
from scaling.sim.whatif import WhatIfError
from scaling.whatif import (
    CURRENT_POLICY,
    RUNS_KEPT_DAYS,
    WhatIfBusy,
    WhatIfRangeError,
    WhatIfRequest,
    WhatIfUnqueued,
    whatif_run_get,
    whatif_runs_recent,
    whatif_start,
)

RANGES = {"1h": timedelta(hours=1), "6h": timedelta(hours=6), "24h": timedelta(hours=24), "7d": timedelta(days=7)}
EDITED = "edited"
# The Range choice for a typed start and end.
CUSTOM_RANGE = "custom"


class WhatIfForm(LocalTimesForm):
    """The range and the policy to replay; Start and End are in the operator's zone (dashboard/forms.py)."""

    time_fields = ("start", "end")

    range = forms.ChoiceField(
        choices=[*((k, f"last {k}") for k in RANGES), (CUSTOM_RANGE, "start and end below")], initial="6h"
    )
    start_local = forms.CharField(
        required=False,
        help_text="with an end, instead of the range",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
    )
    start_occurrence = forms.ChoiceField(label="If the clocks fall back (start)", choices=FOLD_CHOICES, required=False)
    end_local = forms.CharField(required=False, widget=forms.DateTimeInput(attrs={"type": "datetime-local"}))
    end_occurrence = forms.ChoiceField(label="If the clocks fall back (end)", choices=FOLD_CHOICES, required=False)
    policy = forms.ChoiceField(
        choices=[
            (CURRENT_POLICY, "tipoff — this service's current parameters"),
            (EDITED, "tipoff — edited parameters below"),
            *((name, name) for name in BUILTIN if name != "tipoff"),
            ("tipoff", "tipoff — default parameters"),
        ]
    )
    params = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 6, "class": "code"}),
        help_text="Engine parameters as JSON (the format the policy page stores); used with “edited”.",
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["start_local"].label = f"Start ({settings.OPERATOR_TIME_ZONE})"
        self.fields["end_local"].label = f"End ({settings.OPERATOR_TIME_ZONE})"

    def shown_fields(self) -> list[BoundField]:
        """Its fields but an "If the clocks fall back" choice no time needs: one is shown when its time falls in
        the repeated hour, or when it has a value (the choice made, or a reopened run's)."""

        def needed(time_field: str) -> bool:
            choice = self[f"{time_field}_occurrence"]
            return bool(choice.value()) or bool(choice.errors) or self.has_error(f"{time_field}_local", "ambiguous")

        hidden = {f"{name}_occurrence" for name in self.time_fields if not needed(name)}
        return [field for field in self if field.name not in hidden]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        self._clean_local_times()
        # What was typed, not what parsed: an unreadable time has its own error, and is not missing.
        given = {
            name: bool((self.data.get(self.add_prefix(f"{name}_local")) or "").strip()) for name in self.time_fields
        }
        if given["start"] != given["end"]:
            self.add_error(None, "Give both start and end, or neither (then the range applies).")
        elif data.get("range") == CUSTOM_RANGE and not given["start"]:
            self.add_error("range", "For a range of your own, give its start and end.")
        if data.get("policy") == EDITED:
            try:
                parsed = json.loads(data.get("params") or "{}")
            except json.JSONDecodeError as exc:
                self.add_error("params", f"not valid JSON: line {exc.lineno}: {exc.msg}")
                return data
            if not isinstance(parsed, dict):
                self.add_error("params", "expected a JSON object of parameters")
                return data
            # Checked as the policy page checks an edit, over the defaults the replay fills in.
            params, problems = check_params(parsed, base=PolicyParams().to_dict())
            for name, message in problems:
                self.add_error("params", f"{name}: {message}")
            if not problems:
                data["parsed_params"] = {name: params[name] for name in parsed}
        return data


def _permalink(service: Service, job_id: str) -> str:
    return f"{reverse('dashboard:whatif', args=[service.name])}?job={job_id}"


def _job_context(service: Service, job_id: str) -> dict[str, Any]:
    run = whatif_run_get(job_id, service_id=service.pk)
    if run is None:
        raise Http404(f"no such what-if run (runs are kept {RUNS_KEPT_DAYS} days)")
    context: dict[str, Any] = {
        "service": service,
        "run": run,
        "job_id": run.job_id,
        "job_url": _permalink(service, run.job_id),
        "runs_kept_days": RUNS_KEPT_DAYS,
    }
    result = run.result
    if result:
        context["rows"] = _comparison_rows(result)
        context["figures"] = _figures(result)
        # In the operator's zone with UTC beside, as the decision pages show times.
        context["times"] = {key: fmt(result[key]) for key in ("start", "end", "compared_from") if result.get(key)}
    return context


def _form_for_job(service: Service, run: WhatIfRun) -> WhatIfForm:
    """The form as it was sent for this run, so a reopened result sits beside the request it answers: its preset
    range, or its typed times to the minute, in the operator's zone, saying which time when one happens twice."""
    # A preset ran over the last hours when it was asked: sent again, it runs over the last hours now, as the
    # run's own request would. Typed times stay those times.
    times = (
        {}
        if run.range_preset in RANGES
        else {
            "start_local": local_input(run.range_start),
            "start_occurrence": local_occurrence(run.range_start),
            "end_local": local_input(run.range_end),
            "end_occurrence": local_occurrence(run.range_end),
        }
    )
    return WhatIfForm(
        initial={
            "range": run.range_preset if run.range_preset in RANGES else CUSTOM_RANGE,
            **times,
            "policy": EDITED if run.edited else run.policy,
            "params": json.dumps(run.params if run.edited else service.policy or {}, indent=2, sort_keys=True),
        }
    )


def _comparison_rows(result: dict[str, Any]) -> list[tuple[str, str, str]]:
    replayed = result["replayed"]
    # No replica count recorded in the range (rates only, from before Tipoff ran the service): nothing to
    # set beside the replay.
    actual = result["actual"] or dict.fromkeys(replayed)

    def pct(v: float | None) -> str:
        return "—" if v is None else f"{100 * v:.3f} %"

    def num(v: float | None, digits: int = 1) -> str:
        return "—" if v is None else f"{v:,.{digits}f}"

    def money(v: float | None) -> str:
        return "—" if v is None else f"${v:,.2f}"

    def text(v: object) -> str:
        return "—" if v is None else str(v)

    return [
        ("SLO attainment", pct(actual["attainment"]), pct(replayed["attainment"])),
        ("Tip-off attainment (±30 min)", pct(actual["tipoff_attainment"]), pct(replayed["tipoff_attainment"])),
        ("SLO-violation minutes", text(actual["slo_violation_minutes"]), text(replayed["slo_violation_minutes"])),
        ("Replica-hours", num(actual["replica_hours"]), num(replayed["replica_hours"])),
        ("Cost", money(actual["cost"]), money(replayed["cost"])),
        ("Cost ÷ oracle", num(actual["cost_ratio"], 3), num(replayed["cost_ratio"], 3)),
        ("Scale events", text(actual["scale_events"]), text(replayed["scale_events"])),
    ]


def _figures(result: dict[str, Any]) -> dict[str, Any]:
    s = result["series"]
    instants = [datetime.fromisoformat(t) for t in s["ts"]]
    # On the operator's clock at the range's end, as the service page's charts are on it now.
    clock = chart_clock(
        ZoneInfo(settings.OPERATOR_TIME_ZONE), first=instants[0], last=instants[-1], present=instants[-1]
    )
    layout = {
        "margin": {"l": 60, "r": 20, "t": 36, "b": 76},
        "height": 320,
        "legend": {"orientation": "h", "yref": "container", "y": 0, "yanchor": "bottom"},
        "xaxis": {"type": "date", "title": {"text": clock.title}},
        "hovermode": "x unified",
    }
    xs = [clock.at(t).isoformat() for t in instants]
    line = {"type": "scatter", "mode": "lines", "x": xs}
    return {
        "replicas": {
            "data": [
                {**line, "name": "actual", "y": s["actual_provisioned"], "line": {"shape": "hv"}},
                {**line, "name": result["policy"], "y": s["replayed_provisioned"], "line": {"shape": "hv"}},
                {**line, "name": "oracle n*", "y": s["oracle"], "line": {"shape": "hv", "dash": "dot"}},
            ],
            "layout": {
                **layout,
                "title": {"text": "Provisioned replicas"},
                "yaxis": {"title": {"text": "replicas"}, "rangemode": "tozero"},
            },
        },
        "rate": {
            "data": [{**line, "name": "recorded rps", "y": s["rps"]}],
            "layout": {
                **layout,
                "title": {"text": "Request rate (peak per point)"},
                "yaxis": {"title": {"text": "requests/s"}, "rangemode": "tozero"},
            },
        },
    }


@requires("view")
def whatif(request: HtmxHttpRequest, name: str) -> HttpResponse:
    """GET: the form (or, with ?job=, that run's progress/results partial). POST: start a run."""
    service = get_object_or_404(Service, name=name)
    job_id = request.GET.get("job")
    if request.method == "GET" and job_id:
        shown = _job_context(service, job_id)
        if request.htmx:
            # The recent runs come along out of band with each poll, so the list says what the run says (its
            # progress, then done) rather than "replaying" until a reload.
            shown.update(recent=whatif_runs_recent(service.pk), oob=True)
            parts = [
                render_to_string(f"dashboard/whatif.html#{name}", shown, request) for name in ("job", "recent-jobs")
            ]
            return HttpResponse("".join(parts))
        form = _form_for_job(service, shown["run"])
        return render(
            request, "dashboard/whatif.html", {**shown, "form": form, "recent": whatif_runs_recent(service.pk)}
        )
    form = WhatIfForm(
        request.POST if request.method == "POST" else None,
        initial={"params": json.dumps(service.policy or {}, indent=2, sort_keys=True)},
    )
    context: dict[str, Any] = {"service": service, "form": form, "runs_kept_days": RUNS_KEPT_DAYS}
    if request.method == "POST":
        user_id = request.user.pk  # whose slots the run takes (scaling.whatif)
        if user_id is None or not can(request.user, "operate"):
            raise PermissionDenied("running a what-if needs the 'operate' capability")
        if form.is_valid():
            data = form.cleaned_data
            end = data["end"] or timezone.now()
            start = data["start"] or end - RANGES[data["range"]]
            chosen = data["policy"]
            try:
                job_id = whatif_start(
                    WhatIfRequest(
                        service_id=service.pk,
                        start=start,
                        end=end,
                        policy=CURRENT_POLICY if chosen == EDITED else chosen,
                        params=data.get("parsed_params") if chosen == EDITED else None,
                        preset="" if data["start"] else data["range"],
                    ),
                    user_id=user_id,
                )
            except WhatIfBusy as exc:
                context.update(busy=exc.runs, busy_limit=exc.limit)
            except WhatIfUnqueued as exc:
                form.add_error(None, str(exc))
                context["unqueued"] = True
            except WhatIfRangeError as exc:
                # Beside the field that set that end of the range: the preset range, or the typed time.
                form.add_error(f"{exc.bound}_local" if data["start"] else "range", str(exc))
            except (WhatIfError, ValueError) as exc:
                form.add_error(None, str(exc))
            else:
                if not request.htmx:
                    # To the run's own address: a reload shows the run again instead of starting another.
                    return HttpResponseRedirect(_permalink(service, job_id), status=303)
                context.update(_job_context(service, job_id), recent=whatif_runs_recent(service.pk), oob=True)
                # The run goes where the form points (#whatif-job), and its address to the address bar; the
                # form and the recent runs come along out of band, so the errors of an earlier try do not stay
                # beside a run that has started, and the list has the new run.
                parts = [
                    render_to_string(f"dashboard/whatif.html#{name}", context, request)
                    for name in ("job", "whatif-form", "recent-jobs")
                ]
                return push_url(HttpResponse("".join(parts)), context["job_url"])
        if request.htmx:
            # htmx 2 swaps no 4xx answer, and the form posts into #whatif-job: the form with its errors
            # (or the runs that hold every slot) replaces the form itself, as a 200 htmx will swap.
            response = render(request, "dashboard/whatif.html#whatif-form", context)
            return reswap(retarget(response, "#whatif-form"), "outerHTML")
        context["recent"] = whatif_runs_recent(service.pk)
        status = 429 if "busy" in context else 503 if "unqueued" in context else 400
        return render(request, "dashboard/whatif.html", context, status=status)
    if request.htmx:
        return render(request, "dashboard/whatif.html#whatif-form", context)
    return render(request, "dashboard/whatif.html", {**context, "recent": whatif_runs_recent(service.pk)})
