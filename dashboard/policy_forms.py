"""The policy form: one field per `scaling.policy.PolicyParams` field, with help text and range checks.

The same form validates the dashboard page and the JSON API, so both reject the
same values with the same messages, each naming its field.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from typing import Any

from django import forms
from django.conf import settings

from dashboard.forms import FOLD_CHOICES, LocalTimesForm
from scaling.models import Service
from scaling.policy import PolicyParams
from scaling.policy.types import Range, param_range, service_problems

# What each parameter means, shown beside its input, for fields whose dataclass
# metadata carries no "help" of its own (the engine's text wins: it knows the semantics).
HELP: dict[str, str] = {
    "target_utilization": (
        "Fraction of each replica's capacity to aim for (0–1; 0 switches the rule off). Lower leaves more "
        "headroom for surges and costs more; 0.7 keeps p95 well inside the SLO for most models."
    ),
    "tolerance": (
        "Dead band around the target (0–0.5): no scaling while observed/target stays within 1 ± tolerance. "
        "Avoids flapping on noise."
    ),
    "scale_down_stabilization_s": (
        "Scale in only to the highest recommendation seen over this many seconds (HPA default 300), or over "
        "the provisioning-delay share below if longer. Longer means slower, safer scale-in."
    ),
    "scale_up_stabilization_s": (
        "Scale out only to the lowest recommendation seen over this many seconds. 0 reacts at once "
        "(recommended: replicas take minutes to become ready)."
    ),
    "scale_up_pods": "Scale-out rate limit: at most this many replicas added per period (the larger of Pods and "
    "Percent applies).",
    "scale_up_percent": "Scale-out rate limit: at most this percentage of the current count added per period.",
    "scale_up_period_s": "Length of the scale-out rate-limit period, in seconds (> 0).",
    "scale_down_pods": "Scale-in rate limit: at most this many replicas removed per period (the larger of Pods and "
    "Percent applies; 0 = use Percent only).",
    "scale_down_percent": "Scale-in rate limit: at most this percentage (0–100) of the current count removed per "
    "period.",
    "scale_down_period_s": "Length of the scale-in rate-limit period, in seconds (> 0).",
    "scale_in_cooldown_s": "After any scale-out or scale-in, wait this many seconds before scaling in again.",
    "fallback_replicas": (
        "When metrics stay missing for the fallback delay, hold at least this many replicas "
        "(0 = keep the current count). Never scales in."
    ),
    "fallback_after_s": "How long metrics must be missing, in seconds, before the fallback count applies.",
}


def range_for(name: str) -> Range:
    """The parameter's documented range (scaling.policy.types.PARAM_RANGES), the form's and the API's check."""
    return param_range(name)


def label_for(name: str) -> str:
    units = {"_s": " (s)", "_percent": " (%)", "_pods": " (replicas)"}
    for suffix, unit in units.items():
        if name.endswith(suffix):
            base = name[: -len(suffix)] if suffix != "_pods" else name
            return base.replace("_", " ").capitalize() + unit
    return name.replace("_", " ").capitalize()


def help_for(field: dataclasses.Field[Any]) -> str:
    return str(field.metadata.get("help", "")) or HELP.get(field.name) or f"Engine parameter {field.name}."


def policy_fields() -> list[dataclasses.Field[Any]]:
    return list(dataclasses.fields(PolicyParams))


def _hints() -> dict[str, Any]:
    try:
        return typing.get_type_hints(PolicyParams)
    except (NameError, TypeError):  # an annotation we cannot resolve: treat it as JSON
        return {}


def _unwrap_optional(hint: Any) -> tuple[Any, bool]:
    args = typing.get_args(hint)
    if typing.get_origin(hint) in (typing.Union, types.UnionType) and type(None) in args:
        rest = [a for a in args if a is not type(None)]
        return (rest[0] if len(rest) == 1 else Any), True
    return hint, False


def _default_of(field: dataclasses.Field[Any]) -> Any:
    if field.default is not dataclasses.MISSING:
        return field.default
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return None


def _form_field(field: dataclasses.Field[Any], hint: Any) -> forms.Field:
    kind, optional = _unwrap_optional(hint)
    common: dict[str, Any] = {"label": label_for(field.name), "help_text": help_for(field), "required": not optional}
    if kind is bool:
        return forms.BooleanField(**(common | {"required": False}))
    if kind is int:
        return forms.IntegerField(**common)
    if kind is float:
        return forms.FloatField(**common)
    if kind is str:
        return forms.CharField(**(common | {"required": False}), strip=True)
    return forms.JSONField(**common)


def is_json_field(name: str) -> bool:
    kind, _ = _unwrap_optional(_hints().get(name, Any))
    return kind not in (bool, int, float, str)


def params_as_dict(stored: dict[str, Any] | None) -> dict[str, Any]:
    """A service's stored policy as a full parameter dict, tolerating keys the engine no longer knows."""
    known = {f.name for f in policy_fields()}
    kept = {k: v for k, v in (stored or {}).items() if k in known}
    try:
        return PolicyParams.from_dict(kept).to_dict()
    except (TypeError, ValueError):
        pass
    try:  # show what is stored even if the engine would now reject it
        return dataclasses.asdict(PolicyParams(**kept))
    except (TypeError, ValueError):
        return PolicyParams().to_dict()


class PolicyForm(forms.Form):
    """Every engine parameter plus the required reason for the change."""

    reason = forms.CharField(
        max_length=500,
        strip=True,
        help_text="Why you are changing the policy (recorded in the audit log and the revision history).",
        error_messages={"required": "A reason is required: say why the policy is changing."},
        widget=forms.TextInput(attrs={"placeholder": "e.g. more headroom for the playoffs"}),
    )

    def __init__(self, *args: Any, service: Service | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # The service the policy is for, when known: some limits are its own (the SLO target, the maximum).
        self.service = service
        hints = _hints()
        reason = self.fields.pop("reason")
        for field in policy_fields():
            self.fields[field.name] = _form_field(field, hints.get(field.name, Any))
        self.fields["reason"] = reason

    @classmethod
    def for_params(cls, params: dict[str, Any], **kwargs: Any) -> PolicyForm:
        return cls(initial=params, **kwargs)

    def parameter_fields(self) -> list[forms.BoundField]:
        return [self[f.name] for f in policy_fields()]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        for field in policy_fields():
            value = cleaned.get(field.name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                continue
            allowed = range_for(field.name)
            if not allowed.contains(value):
                self.add_error(field.name, f"{label_for(field.name)} must be {allowed.describe()} (got {value:g}).")
        if self.service is not None:
            service = self.service
            for name, message in service_problems(
                cleaned, slo_target=service.slo_target, max_replicas=service.max_replicas
            ):
                if name not in self.errors:
                    self.add_error(name, f"{label_for(name)} {message}.")
        if not self.errors:
            try:
                PolicyParams.from_dict(self.params())
            except (TypeError, ValueError) as exc:
                # The engine's own check (a rule between fields among them): beside the field it names.
                named = getattr(exc, "field", None)
                named = named or next((f.name for f in policy_fields() if f.name in str(exc)), None)
                self.add_error(named, f"{exc}")
        return cleaned

    def params(self) -> dict[str, Any]:
        """The validated parameters (call after is_valid())."""
        out: dict[str, Any] = {}
        for field in policy_fields():
            value = self.cleaned_data.get(field.name)
            out[field.name] = _default_of(field) if value is None and self.fields[field.name].required else value
        return out

    def field_errors(self) -> dict[str, list[str]]:
        return {name: [str(m) for m in messages] for name, messages in self.errors.items()}


def form_data_from_json(params: dict[str, Any], reason: str, base: dict[str, Any]) -> dict[str, Any]:
    """Form data for a JSON request body: omitted parameters keep `base`, JSON-typed ones are encoded."""
    merged = base | params
    data: dict[str, Any] = {"reason": reason}
    for name, value in merged.items():
        if is_json_field(name):
            data[name] = json.dumps(value)
        elif isinstance(value, bool):
            data[name] = "on" if value else ""
        else:
            data[name] = "" if value is None else value
    return data


def json_type_problems(params: dict[str, Any]) -> list[tuple[str, str]]:
    """(parameter, message) for each JSON value of the wrong type for its parameter: the form reads a JSON
    body's values as a page's form data, where any text but "false" or "0" is a ticked box, so a yes/no
    parameter sent as "no" or 7 would have been switched on, and a number sent as true read as 1."""
    problems = []
    hints = _hints()
    for name, value in params.items():
        kind, optional = _unwrap_optional(hints.get(name, Any))
        if value is None and optional:
            continue
        if kind is bool and not isinstance(value, bool):
            problems.append((name, f"{label_for(name)} must be true or false (got {value!r})."))
        elif kind in (int, float) and (isinstance(value, bool) or not isinstance(value, int | float)):
            problems.append((name, f"{label_for(name)} must be a number (got {value!r})."))
    return problems


def check_params(
    params: dict[str, Any], *, base: dict[str, Any], reason: str = "-", service: Service | None = None
) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """`params` merged over `base`, checked as the policy page and API check a change (with its `reason`; and
    against `service`'s own limits when given): the full parameters and no problems, or every problem as
    (parameter, message), unknown parameters first."""
    known = {f.name for f in policy_fields()}
    problems = [(key, f"unknown policy parameter {key!r}") for key in sorted(set(params) - known)]
    mistyped = json_type_problems({k: v for k, v in params.items() if k in known})
    problems += mistyped
    # The rest as the form checks them, each mistyped value left at `base`'s. The form wants a reason; a
    # caller with none to give (the what-if page) is only checking values.
    typed = {k: v for k, v in params.items() if k in known and k not in {name for name, _ in mistyped}}
    form = PolicyForm(form_data_from_json(typed, reason, base=base), service=service)
    if not form.is_valid():
        problems.extend((name, message) for name, messages in form.field_errors().items() for message in messages)
    return ({} if problems else form.params()), problems


def params_diff(before: dict[str, Any], after: dict[str, Any]) -> list[tuple[str, Any, Any]]:
    """(name, before, after) for every parameter that differs, in the engine's field order."""
    order = [f.name for f in policy_fields()]
    names = order + sorted((set(before) | set(after)) - set(order))
    return [(n, before.get(n), after.get(n)) for n in names if before.get(n) != after.get(n)]


class ModeForm(LocalTimesForm):
    """Pause, dry-run or activate a service, with the reason the audit log records and, for a pause or a
    dry run, its end (in the operator's time zone); the end's limits are checked by service_set_mode."""

    time_fields = ("until",)

    mode = forms.ChoiceField(
        choices=[
            (Service.Mode.ACTIVE, "Active (decide and act)"),
            (Service.Mode.DRY_RUN, "Dry run (decide, never act)"),
            (Service.Mode.PAUSED, "Paused (hold)"),
        ]
    )
    reason = forms.CharField(
        max_length=500,
        strip=True,
        error_messages={"required": "A reason is required to change the mode."},
        widget=forms.TextInput(attrs={"placeholder": "why (recorded in the audit log)"}),
    )
    until_local = forms.CharField(
        label="Until",
        required=False,
        widget=forms.DateTimeInput(
            attrs={
                "type": "datetime-local",
                "title": "a pause or dry run always ends; the first tick after it makes the service active again",
            }
        ),
    )
    until_occurrence = forms.ChoiceField(label="If the clocks fall back", choices=FOLD_CHOICES, required=False)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # Ids of its own on the service page, so that each field's label and error name this form's field.
        kwargs.setdefault("auto_id", "mode-%s")
        super().__init__(*args, **kwargs)
        self.fields["until_local"].label = f"Until ({settings.OPERATOR_TIME_ZONE})"

    @property
    def until_happens_twice(self) -> bool:
        """The end asked falls in the repeated hour: the only problem the "If the clocks fall back" choice solves."""
        return self.has_error("until_local", code="ambiguous")

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if cleaned.get("mode") == Service.Mode.ACTIVE:
            cleaned["until"] = None  # back to active needs no end
            return cleaned
        self._clean_local_times()
        if cleaned.get("until") is None and not self.has_error("until_local"):
            self.add_error("until_local", "A pause or dry run needs an end: when should the service be active again?")
        return cleaned


class RestoreForm(forms.Form):
    reason = forms.CharField(
        max_length=500, strip=True, error_messages={"required": "A reason is required to restore a version."}
    )
