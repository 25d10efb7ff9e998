"""Show instants in the operator's time zone and in UTC."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from django import template
from django.conf import settings

from dashboard.decisions import local_and_utc
from scaling.overrides import signed_money

register = template.Library()


@register.filter
def local_time(value: datetime | None, fmt: str = "%a %b %d %H:%M") -> str:
    if value is None:
        return "–"
    local = value.astimezone(ZoneInfo(settings.OPERATOR_TIME_ZONE))
    return f"{local.strftime(fmt)} {local.tzname()}"


@register.filter
def both_times(value: datetime | None) -> str:
    """'Thu Jan 15 19:30 EST (00:30 UTC)': the operator's zone first, UTC beside it."""
    if value is None:
        return "–"
    utc = value.astimezone(UTC)
    return f"{local_time(value)} ({utc:%H:%M} UTC)"


@register.filter
def zone_and_utc(value: datetime | None) -> str:
    """'2026-01-15 18:34:05 EST (23:34:05 UTC)': to the second, as the decision pages write times."""
    return "–" if value is None else local_and_utc(value)


@register.filter
def clock_and_utc(value: datetime | None) -> str:
    """'18:34:05 EST (23:34:05 UTC)': zone_and_utc without the date, for rows within one day's minutes."""
    return "–" if value is None else local_and_utc(value, with_date=False)


@register.filter
def money(value: float | None) -> str:
    """+$12.00 extra / −$3.00 saved."""
    return "–" if value is None else signed_money(value)


@register.filter
def elapsed(value: timedelta | None) -> str:
    """'45 s', '3 min', '2 h 5 min', '3 d': how long, to the unit an operator reads it in."""
    if value is None:
        return "–"
    seconds = max(0, int(value.total_seconds()))
    if seconds < 90:
        return f"{seconds} s"
    minutes = round(seconds / 60)
    if minutes < 90:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    return f"{round(hours / 24)} d"


@register.filter
def ago(value: datetime | None, now: datetime) -> str:
    """'3 min ago': how old an instant is at `now` (the page's render time)."""
    return "–" if value is None else f"{elapsed(now - value)} ago"
