"""The game calendar: the coming days' games with their scheduled overrides and projected cost."""

from __future__ import annotations

from datetime import datetime, timedelta
from itertools import groupby

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from dashboard.forms import ScheduleImportForm, operator_tz
from dashboard.permissions import requires
from scaling import override_selectors as reads
from scaling.audit import Actor
from scaling.schedule.parse import ScheduleError, decode_schedule
from scaling.schedule.services import schedule_import

DEFAULT_DAYS = 7
MAX_DAYS = 31
# A ?from= further than this from today is a typo, not a schedule anyone reads; it is also what keeps
# the page's earlier/later arithmetic away from year 1 and year 9999, where dates overflow.
MAX_FROM_DISTANCE = timedelta(days=10 * 366)


def _ignore(request: HttpRequest, param: str, raw: str, why: str) -> None:
    shown = raw if len(raw) <= 20 else raw[:20] + "…"
    messages.warning(request, f"Ignored {param}={shown!r}: {why}.")


def _days(request: HttpRequest) -> int:
    raw = request.GET.get("days")
    if raw is None:
        return DEFAULT_DAYS
    try:
        return min(max(int(raw), 1), MAX_DAYS)
    except ValueError:
        _ignore(request, "days", raw, f"not a whole number of days; showing {DEFAULT_DAYS}")
        return DEFAULT_DAYS


def _start(request: HttpRequest, now: datetime) -> datetime:
    """Local midnight of ?from=YYYY-MM-DD (default today) in the operator's zone."""
    tz = operator_tz()
    today = now.astimezone(tz).date()
    raw = request.GET.get("from", "")
    day = today
    if raw:
        try:
            day = datetime.strptime(raw, "%Y-%m-%d").date()
        except ValueError:
            _ignore(request, "from", raw, "not a date (YYYY-MM-DD); showing today")
        else:
            if abs(day - today) > MAX_FROM_DISTANCE:
                _ignore(request, "from", raw, "more than ten years from today; showing today")
                day = today
    return datetime(day.year, day.month, day.day, tzinfo=tz)


@requires("view")
def calendar(request: HttpRequest) -> HttpResponse:
    now = timezone.now()
    days = _days(request)
    start = _start(request, now)
    end = start + timedelta(days=days)
    tz = operator_tz()
    games = reads.calendar_games(start=start, end=end)
    others = reads.calendar_other_overrides(start=start, end=end, games=games)
    games_by_day = {day: list(rows) for day, rows in groupby(games, key=lambda g: g.game.tip_utc.astimezone(tz).date())}
    by_day = []
    for i in range(days):
        # Aware arithmetic in a ZoneInfo zone is wall-clock: local midnight to local midnight, DST or not.
        day_start = start + timedelta(days=i)
        day_end = start + timedelta(days=i + 1)
        day_others = [o for o in others if o.starts_at < day_end and o.ends_at > day_start]
        day_games = games_by_day.get(day_start.date(), [])
        if day_games or day_others:
            by_day.append(
                {
                    "day": day_start.date(),
                    "games": day_games,
                    "other_overrides": day_others,
                    "other_cost": reads.live_cost(day_others),
                }
            )
    # Paused or dry-running, a service applies none of its overrides: the calendar says so, as the list does.
    listed = [o for g in games for o in g.overrides] + others
    context = {
        "days": by_day,
        "n_days": days,
        "start": start,
        "last_day": (start + timedelta(days=days - 1)).date(),
        # "the next 7 days" reads right only from today; another range is said by its dates.
        "from_today": start.date() == now.astimezone(tz).date(),
        "held_by_mode": {o.pk for o in listed if reads.is_held_by_mode(o, now=now)},
        "prev_from": (start - timedelta(days=days)).strftime("%Y-%m-%d"),
        "next_from": (start + timedelta(days=days)).strftime("%Y-%m-%d"),
        "now": now,
        "total_games": len(games),
        "marquee_games": sum(1 for g in games if g.marquee),
        # An override spanning two days is listed on both but counted once.
        "projected_cost": round(sum(g.projected_cost for g in games) + reads.live_cost(others), 2),
        "import_form": ScheduleImportForm(),
    }
    return render(request, "dashboard/calendar.html", context)


@requires("administer")
@require_POST
def schedule_upload(request: HttpRequest) -> HttpResponse:
    form = ScheduleImportForm(request.POST, request.FILES)
    if not form.is_valid():
        messages.error(request, "Choose a schedule file to import.")
        return redirect("dashboard:calendar")
    upload = form.cleaned_data["file"]
    try:
        text = decode_schedule(upload.read(), upload.name)
        summary = schedule_import(text=text, source=upload.name, actor=Actor.for_request(request))
    except ScheduleError as exc:
        messages.error(request, f"Nothing imported: {exc}")
    else:
        counts = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in summary.as_dict().items())
        messages.success(request, f"Imported {upload.name}: {counts}.")
        if summary.demo_games_removed or summary.overrides_cancelled:
            # What an import took away is said apart from the counts, where it cannot be read past.
            messages.warning(
                request,
                f"The import removed {summary.demo_games_removed} demo game(s) still to come and cancelled "
                f"{summary.overrides_cancelled} override(s) scheduled around removed, postponed or changed games; "
                "the audit log lists each.",
            )
    return redirect("dashboard:calendar")
