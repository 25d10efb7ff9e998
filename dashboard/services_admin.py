"""Add and edit a service's backend (administrators), with a read-only Test connection.

Pages: /services/new/, /services/<name>/edit/, and the htmx endpoint
/services/test-connection/ that probes the identifiers in the form without saving.
The JSON API equivalents live in `router` (mounted at /api/admin/services).
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST
from ninja import Field, Router, Schema, Status
from pydantic import ConfigDict

from dashboard.api_auth import require_capability
from dashboard.api_errors import ApiError, refused
from dashboard.permissions import requires
from dashboard.views import HtmxHttpRequest
from scaling.audit import Actor
from scaling.backends.autoscaling import MODES
from scaling.backends.probe import ProbeReport, probe_connection
from scaling.backends.prometheus import SIGNALS as PROM_SIGNALS
from scaling.models import Service
from scaling.service_config import (
    EXTRA_KEYS,
    SERVICE_FIELDS,
    ConfigError,
    backend_config_from,
    service_configure,
    service_create,
)

PROMQL_FIELDS = ("rps", "p95_ms", "p99_ms", "in_flight", "error_rate")


class ServiceForm(forms.Form):
    name = forms.SlugField(max_length=64, help_text="Short id used in URLs and the API, e.g. win-probability.")
    display_name = forms.CharField(max_length=120)
    description = forms.CharField(max_length=300, required=False)
    enabled = forms.BooleanField(required=False, initial=True)
    backend = forms.ChoiceField(choices=Service.Backend.choices)
    metric_source = forms.ChoiceField(choices=Service.MetricSourceKind.choices)
    region = forms.CharField(
        required=False,
        help_text="AWS region of a SageMaker or ECS service; empty takes AWS_REGION of the Tipoff server, "
        "stored with the service so that every Tipoff process uses the same.",
    )
    endpoint_url = forms.CharField(
        required=False, help_text="Only for AWS-compatible endpoints (SageMaker and ECS); usually empty."
    )
    endpoint_name = forms.CharField(required=False, label="SageMaker endpoint name")
    variant_name = forms.CharField(required=False, label="SageMaker variant", initial="AllTraffic")
    cluster = forms.CharField(required=False, label="ECS cluster (name or ARN)")
    service = forms.CharField(required=False, label="ECS service (name or ARN)")
    load_balancer = forms.CharField(required=False, label="ALB (CloudWatch dimension, app/name/id)")
    target_group = forms.CharField(required=False, label="Target group (CloudWatch dimension, targetgroup/name/id)")
    autoscaling_mode = forms.ChoiceField(
        choices=[(m, m) for m in MODES],
        initial="refuse",
        label="If Application Auto Scaling also manages it",
        help_text="refuse: never actuate; suspend: pause its dynamic and scheduled scaling while Tipoff manages; "
        "bounds: drive it by setting its min = max.",
    )
    prometheus_url = forms.CharField(required=False, label="Prometheus URL")
    promql_rps = forms.CharField(required=False, label="PromQL: requests/s")
    promql_p95_ms = forms.CharField(required=False, label="PromQL: p95 latency (ms)")
    promql_p99_ms = forms.CharField(required=False, label="PromQL: p99 latency (ms)")
    promql_in_flight = forms.CharField(required=False, label="PromQL: in-flight requests")
    promql_error_rate = forms.CharField(required=False, label="PromQL: error ratio")
    metrics_lag_s = forms.FloatField(required=False, min_value=0, help_text="Allowed metric age beyond two ticks.")
    min_replicas = forms.IntegerField(min_value=0, initial=1)
    max_replicas = forms.IntegerField(min_value=1, initial=10)
    hard_max_replicas = forms.IntegerField(min_value=1, initial=20)
    # The dearest GPU instances cost about $100 an hour; 10,000 leaves room for any currency and catches typos.
    price_per_replica_hour = forms.FloatField(min_value=0, max_value=10_000, initial=1.0)
    slo_latency_ms = forms.FloatField(min_value=1, initial=300.0, help_text="Latency objective L.")
    slo_target = forms.FloatField(
        required=False,
        min_value=0.5,
        max_value=0.99999,
        initial=0.999,
        help_text="Share of requests that must finish within L.",
    )
    service_time_ms = forms.FloatField(
        required=False,
        min_value=0.1,
        initial=40.0,
        help_text="Mean time one replica slot spends on a request (the serving model).",
    )
    concurrency = forms.IntegerField(
        required=False, min_value=1, initial=4, help_text="Requests one replica serves in parallel."
    )
    provisioning_delay_s = forms.IntegerField(min_value=0, initial=180)
    reason = forms.CharField(
        max_length=500, required=False, help_text="Why (kept in the audit log; required when editing)."
    )

    def __init__(self, *args: Any, extra: dict[str, Any] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # backend_config keys the form does not show (EXTRA_KEYS), as the API gives them.
        self.extra = extra or {}
        # The field of each error of a key the form does not show (a non-field error on the page): the API's.
        self.unshown_fields: dict[str, str] = {}

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if not self.errors:
            try:
                data["backend_config"] = backend_config_from(data | self.extra)
            except ConfigError as exc:
                self.config_error(exc)
        return data

    def config_error(self, exc: ConfigError) -> None:
        """Show a refusal of the service functions on its field, or above the form naming a field not shown."""
        if exc.field in self.fields:
            self.add_error(exc.field, exc.message)
            return
        text = f"{exc.field}: {exc.message}" if exc.field else exc.message
        self.unshown_fields[text] = exc.field
        self.add_error(None, text)

    def defaulted(self) -> set[str]:
        """The service's fields left at the value the form starts with (its default)."""
        return {name for name in SERVICE_FIELDS if name in self.fields and name not in self.changed_data}

    def values(self) -> dict[str, Any]:
        # An empty serving-model field keeps the stored (or default) value.
        optional = {"slo_target", "service_time_ms", "concurrency"}
        return {
            k: v
            for k, v in self.cleaned_data.items()
            if k not in {"name", "reason", "backend_config"} and not (k in optional and v is None)
        }


def initial_for(service: Service) -> dict[str, Any]:
    cfg = service.backend_config or {}
    initial: dict[str, Any] = {k: getattr(service, k) for k in ("name", *SERVICE_FIELDS)}
    for key in (
        "region",
        "endpoint_url",
        "endpoint_name",
        "variant_name",
        "cluster",
        "service",
        "load_balancer",
        "target_group",
        "autoscaling_mode",
        "prometheus_url",
        "metrics_lag_s",
    ):
        if key in cfg:
            initial[key] = cfg[key]
    for signal, query in (cfg.get("promql") or {}).items():
        initial[f"promql_{signal}"] = query
    return initial


def _render(request: HttpRequest, form: ServiceForm, service: Service | None, status: int = 200) -> HttpResponse:
    return render(request, "dashboard/service_form.html", {"form": form, "service": service}, status=status)


@requires("administer")
def service_new(request: HtmxHttpRequest) -> HttpResponse:
    if request.method != "POST":
        return _render(request, ServiceForm(), None)
    form = ServiceForm(request.POST)
    if not form.is_valid():
        return _render(request, form, None, status=422)
    try:
        service = service_create(
            name=form.cleaned_data["name"],
            values=form.values(),
            backend_config=form.cleaned_data["backend_config"],
            actor=Actor.for_user(request.user),
            reason=form.cleaned_data["reason"],
            defaulted=form.defaulted(),
        )
    except ConfigError as exc:
        form.config_error(exc)
        return _render(request, form, None, status=422)
    messages.success(request, f"Service {service.name} added.")
    return redirect("dashboard:service", name=service.name)


@requires("administer")
def service_edit(request: HtmxHttpRequest, name: str) -> HttpResponse:
    service = get_object_or_404(Service, name=name)
    if request.method != "POST":
        return _render(request, ServiceForm(initial=initial_for(service)), service)
    form = ServiceForm(_with_name(request, service))
    if form.is_valid() and not form.cleaned_data.get("reason", "").strip():
        form.add_error("reason", "A reason is required to change a service.")
    if not form.is_valid():
        return _render(request, form, service, status=422)
    try:
        changed = service_configure(
            service=service,
            values=form.values(),
            backend_config=form.cleaned_data["backend_config"],
            actor=Actor.for_user(request.user),
            reason=form.cleaned_data["reason"],
        )
    except ConfigError as exc:
        form.config_error(exc)
        return _render(request, form, service, status=422)
    if changed:
        messages.success(request, f"Service {service.name} saved.")
    else:
        messages.info(request, "Nothing changed.")
    return redirect("dashboard:service", name=service.name)


def _with_name(request: HttpRequest, service: Service) -> Any:
    data = request.POST.copy()
    data["name"] = service.name  # the name is the service's identity; it is not edited here
    return data


def _unsaved(form: ServiceForm) -> Service:
    data = form.cleaned_data
    return Service(
        name=data.get("name") or "unsaved",
        backend=data["backend"],
        metric_source=data["metric_source"],
        backend_config=data["backend_config"],
    )


@require_POST
@requires("administer")
def service_test_connection(request: HtmxHttpRequest) -> HttpResponse:
    """Probe the identifiers typed in the form (read calls only; nothing is saved)."""
    data = request.POST.copy()
    data.setdefault("name", "unsaved")
    data.setdefault("display_name", "unsaved")
    form = ServiceForm(data)
    report: ProbeReport | None = None
    if form.is_valid():
        # The fleet read fine: the breaker of the saved service on that same resource closes (audited).
        saved = Service.objects.filter(name=form.cleaned_data.get("name") or "").first()
        report = probe_connection(_unsaved(form), timezone.now(), actor=Actor.for_user(request.user), saved=saved)
    context = {"form": form, "report": report, "probing": True}
    return render(request, "dashboard/service_form.html#probe", context, status=200 if report else 422)


# --- JSON API (mounted by dashboard/api.py) ---

router = Router(tags=["services"])


def _form_default(name: str) -> Any:
    """What the service form starts a new service with: the API's default for a field not given."""
    return ServiceForm.base_fields[name].initial


# Optional settings an edit can remove (`clear`), back to their default: the numbers and tables that have no
# empty value to send (a text identifier is cleared by sending "").
CLEARABLE = ("metrics_lag_s", *EXTRA_KEYS)


class _ServiceSettingsIn(Schema):
    """The fields adding and editing a service both take, none required."""

    # A field the API does not take is refused, naming it, instead of being dropped in silence.
    model_config = ConfigDict(extra="forbid")

    description: str | None = None
    region: str | None = None
    endpoint_url: str | None = None
    endpoint_name: str | None = None
    variant_name: str | None = Field(None, description='SageMaker variant; "AllTraffic" when not given.')
    cluster: str | None = None
    service: str | None = None
    load_balancer: str | None = None
    target_group: str | None = None
    autoscaling_mode: str | None = Field(None, description='refuse, suspend or bounds; "refuse" when not given.')
    prometheus_url: str | None = None
    promql: dict[str, str] | None = None
    metrics_lag_s: float | None = Field(
        None, description="Allowed metric age beyond two ticks, seconds; 120 for CloudWatch when not given."
    )
    # Optional backend_config keys (docs/aws.md); an edit that does not give one keeps it.
    bearer_token_env: str | None = Field(
        None, description="Environment variable holding a Prometheus bearer token; its name begins TIPOFF_PROM_TOKEN_."
    )
    cpu_cores: float | None = Field(None, description="SageMaker: cores per instance (CPUUtilization ÷ 100 × cores).")
    period_s: int | None = Field(None, description="CloudWatch period: 1, 5, 10, 30 or a multiple of 60 (60).")
    lookback_s: int | None = Field(None, description="CloudWatch window read each tick, seconds (600).")
    publication_lag_s: int | None = Field(None, description="CloudWatch periods ending this recently are unread (60).")
    latency_stats: dict[str, str] | None = Field(
        None, description='CloudWatch statistic per latency field, e.g. {"p95_ms": "p95"}.'
    )
    breaker_errors: int | None = Field(None, description="Consecutive failed calls that open the breaker (3).")
    breaker_cooloff_s: int | None = Field(None, description="How long an open breaker stops calls, seconds (300).")
    reason: str | None = None


class ServiceCreateIn(_ServiceSettingsIn):
    """A new service: what it is and where it runs are required; the numbers default as the service form's."""

    name: str = Field(description="Short id used in URLs and the API (letters, digits, - and _), e.g. win-probability.")
    display_name: str
    backend: str = Field(description="simulated, sagemaker or ecs.")
    metric_source: str = Field(description="simulated (simulated backend only), cloudwatch or prometheus.")
    enabled: bool = _form_default("enabled")
    min_replicas: int = _form_default("min_replicas")
    max_replicas: int = _form_default("max_replicas")
    hard_max_replicas: int = _form_default("hard_max_replicas")
    price_per_replica_hour: float = _form_default("price_per_replica_hour")
    slo_latency_ms: float = _form_default("slo_latency_ms")
    slo_target: float = _form_default("slo_target")
    service_time_ms: float = _form_default("service_time_ms")
    concurrency: int = _form_default("concurrency")
    provisioning_delay_s: int = _form_default("provisioning_delay_s")


class ServiceUpdateIn(_ServiceSettingsIn):
    """A change to a service: a field not given (or null) keeps its value; `clear` removes optional settings."""

    name: str | None = Field(None, description="Not editable: if given, it must be the service's name.")
    display_name: str | None = None
    enabled: bool | None = None
    backend: str | None = None
    metric_source: str | None = None
    min_replicas: int | None = None
    max_replicas: int | None = None
    hard_max_replicas: int | None = None
    price_per_replica_hour: float | None = None
    slo_latency_ms: float | None = None
    slo_target: float | None = None
    service_time_ms: float | None = None
    concurrency: int | None = None
    provisioning_delay_s: int | None = None
    clear: list[str] = Field(
        default_factory=list,
        description=f"Optional settings to remove, back to their defaults: any of {', '.join(CLEARABLE)}.",
    )


class ProbeLineOut(Schema):
    level: str
    text: str


class ProbeOut(Schema):
    ok: bool
    lines: list[ProbeLineOut]


class ServiceConfigOut(Schema):
    name: str
    display_name: str
    backend: str
    metric_source: str
    backend_config: dict[str, Any]
    min_replicas: int
    max_replicas: int
    enabled: bool


def _api_field(form_field: str) -> str:
    if form_field.startswith("promql_"):
        return "promql." + form_field.removeprefix("promql_")
    return "" if form_field == "__all__" else form_field  # an error of no one field


def _without_label(message: str, field: str) -> str:
    """The message without the field's name in front ("period_s: period_s must be ..."): the error names it."""
    while field and message.startswith((f"{field}: ", f"{field} ")):
        message = message[len(field) + (2 if message.startswith(f"{field}: ") else 1) :]
    return message


def _form_from_api(payload: ServiceCreateIn | ServiceUpdateIn, base: dict[str, Any]) -> ServiceForm:
    given = {k: v for k, v in payload.dict().items() if v is not None and k != "clear"}
    unknown = sorted(set(payload.promql or {}) - set(PROM_SIGNALS))
    if unknown:  # the form has a field a signal: an unknown one would be dropped without a word
        message = f"unknown signal(s) {', '.join(unknown)}: the signals are {', '.join(PROM_SIGNALS)}"
        raise ApiError(f"promql: {message}", field="promql", message=message)
    data = base | {k: v for k, v in given.items() if k != "promql" and k not in EXTRA_KEYS}
    for signal, query in (payload.promql or {}).items():
        data[f"promql_{signal}"] = query
    form = ServiceForm(data, extra={k: v for k, v in given.items() if k in EXTRA_KEYS})
    if not form.is_valid():
        # The form's fields are the body's, but for the PromQL queries (promql_rps is the body's promql.rps)
        # and the keys the form does not show, which are the body's own.
        errors: list[dict[str, str]] = []
        for name, errs in form.errors.items():
            if name == "__all__":
                for e in errs:
                    field = form.unshown_fields.get(str(e), "")
                    errors.append({"field": field, "message": _without_label(str(e), field)})
            else:
                errors.append({"field": _api_field(name), "message": " ".join(str(e) for e in errs)})
        detail = "; ".join(f"{e['field']}: {e['message']}" if e["field"] else e["message"] for e in errors)
        raise ApiError(detail, field=errors[0]["field"], errors=errors)
    return form


def _check_clear(payload: ServiceUpdateIn) -> None:
    unknown = sorted(set(payload.clear) - set(CLEARABLE))
    if unknown:
        message = f"cannot clear {', '.join(unknown)}: clear takes {', '.join(CLEARABLE)}"
        raise ApiError(f"clear: {message}", field="clear", message=message)
    both = sorted(k for k in payload.clear if getattr(payload, k) is not None)
    if both:
        message = f"{', '.join(both)} both given and cleared: give a value or clear it"
        raise ApiError(f"clear: {message}", field="clear", message=message)


@router.post("", response={201: ServiceConfigOut})
def api_service_create(request: HttpRequest, payload: ServiceCreateIn) -> Status:
    require_capability(request, "administer")
    form = _form_from_api(payload, {"enabled": True, "autoscaling_mode": "refuse"})
    try:
        service = service_create(
            name=form.cleaned_data["name"],
            values=form.values(),
            backend_config=form.cleaned_data["backend_config"],
            actor=Actor.for_request(request),
            reason=payload.reason or "",
            defaulted=set(SERVICE_FIELDS) - payload.model_fields_set,
        )
    except ConfigError as exc:
        raise refused(exc) from exc
    return Status(201, service)


@router.put("/{name}", response=ServiceConfigOut)
def api_service_update(request: HttpRequest, name: str, payload: ServiceUpdateIn) -> Service:
    require_capability(request, "administer")
    service = get_object_or_404(Service, name=name)
    if payload.name is not None and payload.name != service.name:
        raise ApiError(
            "name: not editable: a service's name is its identity in URLs, the API and the audit log "
            "(add a service under the new name instead)",
            field="name",
            message="not editable: a service's name is its identity in URLs, the API and the audit log",
        )
    _check_clear(payload)
    # A simulated service stores no autoscaling mode but the form requires one: default it as create does.
    base = {"autoscaling_mode": "refuse"} | initial_for(service)
    base = {k: v for k, v in base.items() if k not in payload.clear}
    if payload.promql is not None:
        base = {k: v for k, v in base.items() if not k.startswith("promql_")}
    form = _form_from_api(payload, base | {"name": service.name})
    try:
        service_configure(
            service=service,
            values=form.values(),
            backend_config=form.cleaned_data["backend_config"],
            actor=Actor.for_request(request),
            reason=payload.reason or "",
            cleared=payload.clear,
        )
    except ConfigError as exc:
        raise refused(exc) from exc
    service.refresh_from_db()
    return service


@router.post("/{name}/test-connection", response=ProbeOut)
def api_service_test_connection(request: HttpRequest, name: str) -> dict[str, Any]:
    require_capability(request, "administer")
    service = get_object_or_404(Service, name=name)
    report = probe_connection(service, timezone.now(), actor=Actor.for_request(request))
    return {"ok": report.ok, "lines": [{"level": line.level, "text": line.text} for line in report.lines]}
