"""Forms for overrides, game-day rules and schedule import.

Times are entered in the operator's time zone (settings.OPERATOR_TIME_ZONE)
and converted to UTC here; a wall-clock time that does not exist (spring
forward) is rejected, and one that happens twice (fall back) must say which.
Validation that depends on other overrides lives in scaling/overrides.py.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django import forms
from django.conf import settings
from django.utils import timezone

from scaling.models import Game, GameDayRule, Override, Service
from scaling.overrides import HORIZON, START_GRACE
from scaling.schedule.rules import WEEKDAYS, RuleSpec

LOCAL_FORMATS = ("%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M")
FOLD_CHOICES = (
    ("", "—"),
    ("first", "first time (daylight time)"),
    ("second", "second time (standard time)"),
)


def operator_tz() -> ZoneInfo:
    return ZoneInfo(settings.OPERATOR_TIME_ZONE)


def local_input(value: datetime) -> str:
    """A UTC instant as the value of a datetime-local input in the operator's zone."""
    return value.astimezone(operator_tz()).strftime("%Y-%m-%dT%H:%M")


def local_occurrence(value: datetime) -> str:
    """Which of its two times a UTC instant is, as local_to_utc's `occurrence` takes it, when its wall-clock time
    in the operator's zone happens twice (the clocks fall back); "" when it happens once."""
    local = value.astimezone(operator_tz())
    naive = local.replace(tzinfo=None)
    if naive.replace(tzinfo=local.tzinfo, fold=0).utcoffset() == naive.replace(tzinfo=local.tzinfo, fold=1).utcoffset():
        return ""
    return "second" if local.fold else "first"


def parse_local(raw: str) -> datetime:
    for fmt in LOCAL_FORMATS:
        try:
            return datetime.strptime(raw.strip(), fmt)
        except ValueError:
            continue
    raise forms.ValidationError("enter a date and time as YYYY-MM-DD HH:MM")


def local_to_utc(naive: datetime, tz: ZoneInfo, occurrence: str = "") -> datetime:
    """Interpret a wall-clock time in `tz`, refusing to guess at DST changes.

    A time inside the spring-forward gap does not exist and is rejected. A time
    in the fall-back hour happens twice; `occurrence` ("first" or "second")
    must choose one.
    """
    first = naive.replace(tzinfo=tz, fold=0)
    second = naive.replace(tzinfo=tz, fold=1)
    when = naive.strftime("%Y-%m-%d %H:%M")

    def round_trips(aware: datetime) -> bool:
        return aware.astimezone(UTC).astimezone(tz).replace(tzinfo=None) == naive

    if not round_trips(first) and not round_trips(second):
        raise forms.ValidationError(
            f"{when} does not exist in {tz.key}: the clocks jump forward an hour then; pick a time outside the gap",
            code="nonexistent",
        )
    if first.utcoffset() != second.utcoffset():
        if occurrence == "first":
            return first.astimezone(UTC)
        if occurrence == "second":
            return second.astimezone(UTC)
        raise forms.ValidationError(
            f"{when} happens twice in {tz.key} (the clocks fall back): choose the first time "
            f"({first.tzname()}, UTC{utc_offset(first)}) or the second ({second.tzname()}, UTC{utc_offset(second)})",
            code="ambiguous",
        )
    return first.astimezone(UTC)


def utc_offset(aware: datetime) -> str:
    """'−5' for EST, '+5:30' for IST: the offset as written after "UTC"."""
    delta = aware.utcoffset()
    minutes = int(delta.total_seconds() // 60) if delta is not None else 0
    sign = "+" if minutes >= 0 else "−"
    hours, rest = divmod(abs(minutes), 60)
    return f"{sign}{hours}:{rest:02}" if rest else f"{sign}{hours}"


def name_error_blocks(form: forms.Form) -> None:
    """For a form whose errors an htmx answer swaps in under each field (dashboard/_field_errors.html, oob) long
    after the page drew the inputs: the page always has each field's error block (empty or not), so each input
    names it from the start, where Django would name it only when the page itself had errors to show (static/
    js/app.js keeps aria-invalid in step with the block)."""
    for field in form.visible_fields():
        if not field.use_fieldset:  # a group of boxes is described on its fieldset
            help_id = f"{field.auto_id}_helptext" if field.help_text else ""
            field.field.widget.attrs["aria-describedby"] = f"{help_id} {field.auto_id}_error".strip()


class LocalTimesForm(forms.Form):
    """Cleans <name>_local text inputs (and <name>_occurrence choices) into UTC <name>."""

    time_fields: tuple[str, ...] = ()

    def _clean_local_times(self) -> None:
        tz = operator_tz()
        for name in self.time_fields:
            raw = self.cleaned_data.get(f"{name}_local") or ""
            if not raw:
                self.cleaned_data[name] = None
                continue
            try:
                naive = parse_local(raw)
                self.cleaned_data[name] = local_to_utc(naive, tz, self.cleaned_data.get(f"{name}_occurrence") or "")
            except forms.ValidationError as exc:
                self.add_error(f"{name}_local", exc)
                self.cleaned_data[name] = None
            except OverflowError:  # in UTC it falls past 9999-12-31
                self.add_error(f"{name}_local", f"{raw.strip()} is out of range: enter a date before the year 9999")
                self.cleaned_data[name] = None


def _local_field(label: str, required: bool) -> forms.CharField:
    return forms.CharField(
        label=label,
        required=required,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
        help_text=f"in {settings.OPERATOR_TIME_ZONE}",
    )


def _occurrence_field() -> forms.ChoiceField:
    return forms.ChoiceField(
        label="If the clocks fall back",
        choices=FOLD_CHOICES,
        required=False,
        help_text="only needed for a time in the repeated hour",
    )


class OverrideForm(LocalTimesForm):
    time_fields = ("starts_at", "ends_at")

    services = forms.ModelMultipleChoiceField(
        queryset=Service.objects.filter(enabled=True).order_by("name"),
        widget=forms.CheckboxSelectMultiple,
        to_field_name="name",
        help_text="one override per service; a group is created or refused as a whole",
    )
    kind = forms.ChoiceField(choices=Override.Kind.choices, initial=Override.Kind.FLOOR)
    replicas = forms.IntegerField(
        required=False,
        min_value=0,
        help_text="not used by freeze kinds",
        error_messages={"invalid": "enter the replica count as a whole number, e.g. 12"},
    )
    starts_at_local = _local_field("Start", required=False)
    starts_at_occurrence = _occurrence_field()
    ends_at_local = _local_field("End", required=False)
    ends_at_occurrence = _occurrence_field()
    duration_minutes = forms.IntegerField(
        required=False,
        min_value=1,
        max_value=int(HORIZON.total_seconds() // 60),
        label="…or lasting (minutes)",
        help_text="instead of an end: from the start (or now)",
        error_messages={"invalid": "enter the duration as a whole number of minutes, e.g. 120 for two hours"},
    )
    reason = forms.CharField(max_length=500, widget=forms.Textarea(attrs={"rows": 2}))
    replace = forms.BooleanField(required=False, label="Replace an overlapping pin")
    bypass_reason = forms.CharField(
        max_length=500,
        required=False,
        label="Emergency bypass reason (admins)",
        help_text="skips the second person's approval; recorded in the audit log",
    )
    game = forms.ModelChoiceField(
        queryset=Game.objects.filter(tbd=False),
        required=False,
        widget=forms.HiddenInput,
        error_messages={"invalid_choice": "That game's teams and tip-off are not yet set: nothing to plan around."},
    )

    def __init__(self, *args: Any, admin: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not admin:  # only an admin may bypass approval: offered to no one else
            del self.fields["bypass_reason"]
        # The preview swaps a field's errors in under it as the operator types.
        name_error_blocks(self)

    def clean(self) -> dict[str, Any]:
        super().clean()
        self._clean_local_times()
        kind = self.cleaned_data.get("kind")
        replicas = self.cleaned_data.get("replicas")
        if kind in {Override.Kind.FREEZE, Override.Kind.FREEZE_SCALE_IN}:
            self.cleaned_data["replicas"] = None
        elif kind and replicas is None and "replicas" not in self.errors:  # one message: a bad count says so
            # "required": the preview waits for it, as for a missing end; only the submit reports it.
            self.add_error("replicas", forms.ValidationError(f"a {kind} needs a replica count", code="required"))
        start, end = self.cleaned_data.get("starts_at"), self.cleaned_data.get("ends_at")
        duration = self.cleaned_data.get("duration_minutes")
        time_errors = {"ends_at_local", "duration_minutes"} & self.errors.keys()
        if duration and not time_errors:
            try:
                by_duration = (start or timezone.now()) + timedelta(minutes=duration)
            except OverflowError:
                self.add_error("duration_minutes", "from that start, the end would fall past the year 9999")
            else:
                if end is None:
                    self.cleaned_data["ends_at"] = by_duration
                else:
                    self._check_end_agrees(start=start, end=end, by_duration=by_duration, duration=duration)
        elif end is None and not time_errors:
            self.add_error("ends_at_local", forms.ValidationError("give an end, or a duration", code="required"))
        # Whether the window is one an override may have (an end after the start and in the future, within the
        # longest allowed) is scaling.overrides.check_window's to say, for the submit and the preview alike.
        return self.cleaned_data

    def _check_end_agrees(self, *, start: datetime | None, end: datetime, by_duration: datetime, duration: int) -> None:
        """Both an end and a duration: refused unless they give the same end (within START_GRACE when the start
        is now, which moves while the form is filled in), rather than one of them silently dropped."""
        if abs(by_duration - end) <= (START_GRACE if start is None else timedelta(0)):
            return
        tz = operator_tz()
        origin = "now" if start is None else "the start"
        self.add_error(
            "duration_minutes",
            f"End and “{self.fields['duration_minutes'].label}” disagree: {duration} minutes from {origin} ends "
            f"{_local_text(by_duration, tz)}, the End {_local_text(end, tz)}; give one of them",
        )


def _local_text(when: datetime, tz: ZoneInfo) -> str:
    local = when.astimezone(tz)
    return f"{local:%Y-%m-%d %H:%M} {local.tzname()}"


def _reason_field(label: str, placeholder: str, *, required: bool = True, help_text: str = "") -> forms.CharField:
    return forms.CharField(
        label=label,
        max_length=500,
        required=required,
        help_text=help_text,
        widget=forms.TextInput(attrs={"placeholder": placeholder}),
    )


class ExtendForm(LocalTimesForm):
    """Extend an override from its row; the page offers the bypass to admins only (scaling.overrides refuses
    anyone else's)."""

    time_fields = ("ends_at",)

    ends_at_local = _local_field("New end", required=True)
    ends_at_occurrence = _occurrence_field()
    reason = _reason_field("Reason for extending", "why extend")
    bypass_reason = _reason_field(
        "Emergency bypass reason (admins)",
        "skips a second person's approval",
        required=False,
        help_text="needed only if the longer window would need approval; recorded in the audit log",
    )

    @property
    def ends_at_happens_twice(self) -> bool:
        """The end asked falls in the repeated hour: the only problem the "If the clocks fall back" choice solves,
        so a row offers that choice only then (as the mode form does), not on every row of the list."""
        return self.has_error("ends_at_local", code="ambiguous") or bool(self["ends_at_occurrence"].value())

    def clean(self) -> dict[str, Any]:
        super().clean()
        self._clean_local_times()
        return self.cleaned_data


class ReasonForm(forms.Form):
    reason = forms.CharField(max_length=500)


class CancelForm(forms.Form):
    reason = _reason_field("Reason for cancelling", "why cancel")


class RejectForm(forms.Form):
    reason = _reason_field("Reason for rejecting", "why reject")


class ApproveForm(forms.Form):
    # "reason", as the API's approve takes it: kept as the approval's reason in the audit log.
    reason = _reason_field(
        "Note (optional)",
        "anything the audit log should keep",
        required=False,
        help_text="kept with the approval in the audit log",
    )
    # What the confirm step showed: "<id>:<version>" for each override of the group it listed, in a hidden input
    # the template fills from the overrides as drawn (seen_value), never from what was posted. Approving is
    # refused when any of them changed since (scaling.overrides.check_unchanged).
    seen = forms.CharField(required=False, widget=forms.HiddenInput)

    @staticmethod
    def seen_value(group: Iterable[Override]) -> str:
        return ",".join(f"{o.pk}:{o.version}" for o in group)

    def clean(self) -> dict[str, Any]:
        super().clean()
        raw = str(self.cleaned_data.get("seen") or "").strip()
        if not raw:
            raise forms.ValidationError(
                "This confirmation does not say which overrides you were shown (a page drawn before approving "
                "checked that), so nothing was approved: look at what approving approves below and confirm again.",
                code="unseen",
            )
        seen: dict[int, int] = {}
        for item in raw.split(","):
            pk, _, version = item.strip().partition(":")
            if not (pk.isascii() and pk.isdigit() and version.isascii() and version.isdigit()):
                raise forms.ValidationError(
                    f"This confirmation is malformed: {item.strip()!r} is not an override and its version "
                    "(<id>:<version>), so nothing was approved: look at what approving approves below and "
                    "confirm again.",
                    code="malformed",
                )
            seen[int(pk)] = int(version)
        self.cleaned_data["seen"] = seen
        return self.cleaned_data


def _split(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


class RuleForm(forms.Form):
    name = forms.CharField(max_length=120)
    enabled = forms.BooleanField(required=False, initial=True)
    services = forms.ModelMultipleChoiceField(
        queryset=Service.objects.order_by("name"), widget=forms.CheckboxSelectMultiple, to_field_name="name"
    )
    national_tv = forms.BooleanField(required=False, label="Games on national TV")
    networks = forms.CharField(required=False, help_text="comma-separated, e.g. ESPN, ABC, Prime Video")
    teams = forms.CharField(required=False, help_text="tricodes, comma-separated, e.g. LAL, BOS")
    season_types = forms.CharField(required=False, help_text="e.g. Regular Season, Playoffs")
    labels = forms.CharField(required=False, help_text="words in the game label, e.g. Christmas, Cup")
    weekdays = forms.TypedMultipleChoiceField(
        choices=list(enumerate(WEEKDAYS)),
        coerce=int,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text=f"tip-off day in {settings.OPERATOR_TIME_ZONE}",
    )
    floor_replicas = forms.IntegerField(
        required=False,
        min_value=1,
        label="Floor (replicas)",
        help_text=(
            "A rule's floors need no second approval, however large: only administrators make rules, and "
            f"making one approves its floors (made by hand, one above {settings.OVERRIDE_APPROVAL_REPLICAS} "
            "replicas would wait for a second person)."
        ),
    )
    floor_forecast_multiple = forms.FloatField(
        required=False, min_value=0.1, max_value=20, label="…or floor as a multiple of the forecast"
    )
    lead_minutes = forms.IntegerField(
        required=False, min_value=0, max_value=1440, help_text="default: the service's provisioning delay + 15 min"
    )
    tail_minutes = forms.IntegerField(min_value=1, max_value=1440, initial=180)
    reason = forms.CharField(max_length=300)

    @classmethod
    def initial_for(cls, rule: GameDayRule) -> dict[str, Any]:
        match = rule.match or {}
        return {
            "name": rule.name,
            "enabled": rule.enabled,
            "services": list(rule.services.all()),
            "national_tv": bool(match.get("national_tv")),
            "networks": ", ".join(match.get("networks") or []),
            "teams": ", ".join(match.get("teams") or []),
            "season_types": ", ".join(match.get("season_types") or []),
            "labels": ", ".join(match.get("labels") or []),
            "weekdays": match.get("weekdays") or [],
            "floor_replicas": rule.floor_replicas,
            "floor_forecast_multiple": rule.floor_forecast_multiple,
            "lead_minutes": rule.lead_minutes,
            "tail_minutes": rule.tail_minutes,
            "reason": rule.reason,
        }

    def to_spec(self) -> RuleSpec:
        d = self.cleaned_data
        return RuleSpec(
            name=d["name"],
            enabled=bool(d.get("enabled")),
            services=list(d["services"]),
            match={
                "national_tv": bool(d.get("national_tv")),
                "networks": _split(d.get("networks") or ""),
                "teams": [t.upper() for t in _split(d.get("teams") or "")],
                "season_types": _split(d.get("season_types") or ""),
                "labels": _split(d.get("labels") or ""),
                "weekdays": d.get("weekdays") or [],
            },
            floor_replicas=d.get("floor_replicas"),
            floor_forecast_multiple=d.get("floor_forecast_multiple"),
            lead_minutes=d.get("lead_minutes"),
            tail_minutes=d.get("tail_minutes") or 180,
            reason=d["reason"],
        )


class ScheduleImportForm(forms.Form):
    # An empty file is the parser's to refuse, naming it, as the API and the command do.
    file = forms.FileField(
        allow_empty_file=True,
        help_text="the league schedule as CSV or the league feed JSON (detected from content)",
    )
