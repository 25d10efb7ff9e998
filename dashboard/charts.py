"""Plotly figure dicts for the service and fleet charts (rendered by static/js/charts.js)."""

from __future__ import annotations

import html
import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings

from dashboard.forms import utc_offset
from dashboard.templatetags.tipoff_slo import guard_latency_limits, slo_objective
from scaling.models import Override, Service
from scaling.rollups import chart_bucket_s
from scaling.selectors import CHART_POINTS, FleetTimeseries, longest_joined

_LAYOUT: dict[str, Any] = {
    "margin": {"l": 60, "r": 20, "t": 36, "b": 76},  # room for the axes' titles and the legend
    "height": 290,
    # Placed from the figure's bottom edge, not the plot's, so it sits under the time axis's title.
    "legend": {"orientation": "h", "yref": "container", "y": 0, "yanchor": "bottom"},
    "xaxis": {"type": "date"},
    "hovermode": "x unified",
}


def _plain(text: str) -> str:
    """Text a person wrote (a display name; a decision's summary, which quotes an override's reason) as it is to
    read in a figure: plotly.js renders a subset of HTML in text, hover text, trace names and titles (links,
    styles), so <, > and & are escaped, and it shows them as typed."""
    return html.escape(text, quote=False)


def _layout(title: str, yaxis_title: str, **extra: Any) -> dict[str, Any]:
    return {
        **_LAYOUT,
        "title": {"text": title, "font": {"size": 14}},
        # plotly.js 3 dropped the string form of an axis title: given as one, the axis showed none.
        "yaxis": {"title": {"text": yaxis_title}, "rangemode": "tozero"},
        **extra,
    }


def broken_at_gaps(
    x: list[datetime], y: list[Any], *, longest: timedelta, closed_after: timedelta | None = None
) -> tuple[list[datetime], list[Any]]:
    """`x` and `y` with a point of no value (y None) midway between two points further apart than `longest`: plotly
    joins every point to the next however far apart they are, so a gap in the data (the worker stopped for an hour)
    read as a line straight across it; at a None it lifts the pen (connectgaps is off).

    An area filled to zero is filled across the gap all the same, one polygon over the whole trace: given
    `closed_after` (the points' bucket), its line also drops to 0 at the end of the bucket before the gap and
    rises from 0 at the first point after it, so that nothing is filled where nothing was recorded."""
    xs: list[datetime] = []
    ys: list[Any] = []
    for i, at in enumerate(x):
        before = x[i - 1] if i else None
        if before is not None and at - before > longest:
            if closed_after is not None and y[i - 1] is not None:
                xs.append(before + closed_after)
                ys.append(0)
            xs.append(before + (at - before) / 2)
            ys.append(None)
            if closed_after is not None and y[i] is not None:
                xs.append(at)
                ys.append(0)
        xs.append(at)
        ys.append(y[i])
    return xs, ys


def _lines_broken_at_gaps(figure: dict[str, Any], *, bucket: timedelta) -> None:
    """Break each line of a service chart (its points are on chart buckets of `bucket`) where two are further apart
    than a value holds on the fleet's charts (`longest_joined`). A line's points carry only x and y; markers (the
    decisions that changed capacity) join nothing and stay as they are."""
    longest = longest_joined(bucket)
    for trace in figure["data"]:
        if trace.get("mode") == "lines" and "x" in trace:
            closed_after = bucket if trace.get("fill") == "tozeroy" else None
            trace["x"], trace["y"] = broken_at_gaps(trace["x"], trace["y"], longest=longest, closed_after=closed_after)


def replicas_figure(series: dict[str, list[Any]], shapes: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    changes = series.get("changes", [])
    return {
        "data": [
            {
                "type": "scatter",
                "mode": "lines",
                "name": "desired",
                "x": series["decision_ts"],
                "y": series["desired"],
                "line": {"shape": "hv", "dash": "dot"},
            },
            {
                "type": "scatter",
                "mode": "lines",
                "name": "provisioned",
                "x": series["ts"],
                "y": series["provisioned"],
                "line": {"shape": "hv"},
            },
            {
                "type": "scatter",
                "mode": "lines",
                "name": "ready",
                "x": series["ts"],
                "y": series["ready"],
                "line": {"shape": "hv"},
            },
            {
                "type": "scatter",
                "mode": "markers",
                "name": "decisions",
                "x": [c["ts"] for c in changes],
                "y": [c["desired"] for c in changes],
                "text": [_plain(c["summary"]) for c in changes],
                # Decision ids: static/js/decisions.js opens the clicked decision's explanation.
                "customdata": [c.get("id") for c in changes],
                "hovertemplate": "%{text}<extra></extra>",
                "marker": {"symbol": "diamond", "size": 7},
            },
        ],
        "layout": _layout("Replicas", "replicas", shapes=shapes or []),
    }


def latency_figure(series: dict[str, list[Any]], service: Service) -> dict[str, Any]:
    return {
        "data": [
            {"type": "scatter", "mode": "lines", "name": name, "x": series["ts"], "y": series[key]}
            for name, key in (("p50", "p50_ms"), ("p95", "p95_ms"), ("p99", "p99_ms"))
        ],
        "layout": _layout(
            f"Latency · {slo_objective(service)}",
            "ms",
            **_limit_line(service.slo_latency_ms, f"guard: {guard_latency_limits(service)}"),
        ),
    }


def _limit_line(y: float, label: str) -> dict[str, list[dict[str, Any]]]:
    """A latency chart's limit: a dashed red line across the plot at `y`, labelled at its right end."""
    return {
        "shapes": [
            {
                "type": "line",
                "xref": "paper",
                "x0": 0,
                "x1": 1,
                "yref": "y",
                "y0": y,
                "y1": y,
                "line": {"color": "#d62728", "dash": "dash"},
            }
        ],
        "annotations": [
            {
                "xref": "paper",
                "x": 1,
                "y": y,
                "text": label,
                "showarrow": False,
                "xanchor": "right",
                "yanchor": "bottom",
                "font": {"color": "#d62728"},
            }
        ],
    }


def rate_figure(series: dict[str, list[Any]], forecast: dict[str, list[Any]] | None = None) -> dict[str, Any]:
    data: list[dict[str, Any]] = [
        {"type": "scatter", "mode": "lines", "name": "requests/s", "x": series["ts"], "y": series["rps"]},
    ]
    if forecast and forecast.get("ts"):
        # Forecasts exist only from the engine's first tick (the seeded history has none): a lone point drawn
        # as a line is no line at all, only a legend entry beside nothing, so one point is a marker.
        data.append(
            {
                "type": "scatter",
                "mode": "lines" if len(forecast["ts"]) > 1 else "markers",
                "name": "forecast",
                "x": forecast["ts"],
                "y": forecast["rps"],
                "line": {"dash": "dot"},
            }
        )
    return {"data": data, "layout": _layout("Request rate", "requests/s")}


def cost_figure(series: dict[str, list[Any]]) -> dict[str, Any]:
    return {
        "data": [
            {
                "type": "scatter",
                "mode": "lines",
                "name": "$/hour",
                "x": series["ts"],
                "y": series["cost_per_hour"],
                "line": {"shape": "hv"},
                "fill": "tozeroy",
            }
        ],
        "layout": _layout("Cost", "$ per hour"),
    }


_OVERRIDE_FILL = {"pending_approval": "rgba(255, 187, 0, 0.15)", "approved": "rgba(31, 119, 180, 0.15)"}


def _override_label(o: Override) -> str:
    n = "" if o.replicas is None else f" {o.replicas}"
    pending = " (pending)" if o.status == "pending_approval" else ""
    return f"{o.kind}{n}{pending}"


def override_shapes(overrides: list[Override], until: datetime | None = None) -> list[dict[str, Any]]:
    """Shaded bands for override windows (pending ones amber), labelled with kind and count; a window running
    past `until` is drawn to it (a shape widens the chart's axis to its end). Windows that start together
    share one label on the first of them ('floor 120 · pin 120'): each its own, at one place, overprinted
    into one unreadable word."""
    together: dict[datetime, list[str]] = {}
    for o in overrides:
        together.setdefault(o.starts_at, []).append(_override_label(o))
    shapes = []
    for o in overrides:
        labels = together.pop(o.starts_at, [])
        shapes.append(
            {
                "type": "rect",
                "xref": "x",
                "yref": "paper",
                "x0": o.starts_at,
                "x1": o.ends_at if until is None else min(o.ends_at, until),
                "y0": 0,
                "y1": 1,
                "layer": "below",
                "line": {"width": 0},
                "fillcolor": _OVERRIDE_FILL.get(o.status, "rgba(128, 128, 128, 0.12)"),
                "name": f"override-{o.pk}",
                "label": {"text": " · ".join(labels), "textposition": "top left", "font": {"size": 10}},
            }
        )
    return shapes


# How much of the time axis an override's label covers, for telling which labels would overprint: about 6 px a
# character at font size 10, on the replicas chart's plot at its narrowest (a 520 px card less its margins).
_LABEL_CHAR_PX = 6
_NARROWEST_PLOT_PX = 440
_LABEL_LINE_PX = 13  # one line of a 10 px label
_LABEL_PADDING_PX = 3  # plotly's own, from the band's edge


def _stagger_override_labels(shapes: list[dict[str, Any]], *, since: datetime, end: datetime) -> None:
    """Put each band's label on a line of its own where it would overprint another's: labels go from left to
    right, each on the first line whose last label ends (by the estimate above) before it starts. A top-left
    label's padding is how far below the band's top it stands (and as far right of its start)."""
    span_s = max((end - since).total_seconds(), 1.0)
    line_ends: list[float] = []  # per line, where its last label ends, as a fraction of the axis
    for shape in sorted((s for s in shapes if s["label"]["text"]), key=lambda s: s["x0"]):
        starts = (max(shape["x0"], since) - since).total_seconds() / span_s
        line = next((n for n, ends in enumerate(line_ends) if ends <= starts), len(line_ends))
        width_px = len(shape["label"]["text"]) * _LABEL_CHAR_PX + 2 * _LABEL_PADDING_PX
        ends = starts + width_px / _NARROWEST_PLOT_PX
        if line == len(line_ends):
            line_ends.append(ends)
        else:
            line_ends[line] = ends
        shape["label"]["padding"] = _LABEL_PADDING_PX + line * _LABEL_LINE_PX


def service_figures(
    service: Service,
    series: dict[str, list[Any]],
    forecast: dict[str, list[Any]] | None = None,
    *,
    since: datetime,
    now: datetime,
    overrides: list[Override] | None = None,
    until: datetime | None = None,
) -> dict[str, dict[str, Any]]:
    """The four charts of a service page, on one time axis: from `since` to the latest of what any of them
    draws (the newest sample, the forecast ahead, an override window to `until`), so that a moment sits at
    the same place in each and they read side by side. The axis is on the operator's clock as at `now`. Each
    line breaks where its points are further apart than the fleet's charts hold a value (`longest_joined`)."""
    shapes = override_shapes(overrides or [], until)
    figures = {
        "replicas": replicas_figure(series, shapes=shapes),
        "latency": latency_figure(series, service),
        "rate": rate_figure(series, forecast),
        "cost": cost_figure(series),
    }
    drawn = [
        *series.get("ts", []),
        *series.get("decision_ts", []),
        *(forecast or {}).get("ts", []),
        *(shape["x1"] for shape in shapes),
    ]
    end = max((t for t in drawn if t is not None), default=until or since)
    _stagger_override_labels(shapes, since=since, end=max(end, since))
    clock = chart_clock(ZoneInfo(settings.OPERATOR_TIME_ZONE), first=since, last=max(end, since), present=now)
    # The series are on the charts' buckets over [since, now] (`selectors.service_timeseries`, `forecast_series`).
    bucket = timedelta(seconds=chart_bucket_s(now - since, max_points=CHART_POINTS, tick_s=settings.TICK_SECONDS))
    for figure in figures.values():
        _lines_broken_at_gaps(figure, bucket=bucket)
        figure["layout"]["xaxis"] = {**figure["layout"]["xaxis"], "range": [since, max(end, since)]}
        _to_chart_clock(figure, clock)
    return figures


_FLEET_TOTAL_LINE = {"color": "#1d2330", "width": 1.5, "shape": "hv"}


def _rounded(values: list[float | None], digits: int) -> list[float | None]:
    return [None if v is None else round(v, digits) for v in values]


def _fleet_trace(fleet: FleetTimeseries, name: str, values: list[float | None], **extra: Any) -> dict[str, Any]:
    """One line on the fleet's buckets: they are evenly spaced, so the first and a step (in ms, as plotly.js
    takes a date axis's step) stand for every bucket's time, which twenty services' traces would otherwise
    repeat, each over 700 buckets, in every poll."""
    return {
        "type": "scatter",
        "mode": "lines",
        "name": name,
        "x0": fleet.ts[0],
        "dx": fleet.bucket.total_seconds() * 1000,
        "y": values,
        **extra,
    }


def _stacked(fleet: FleetTimeseries, group: str, columns: list[list[float | None]], hover: str) -> list[dict[str, Any]]:
    """One area per service, stacked in the fleet's order: a service has one colour in every fleet chart."""
    return [
        _fleet_trace(
            fleet,
            _fleet_name(s.service),
            values,
            stackgroup=group,
            line={"shape": "hv", "width": 0.5},
            hovertemplate=f"{hover}<extra>%{{fullData.name}}</extra>",
        )
        for s, values in zip(fleet.services, columns, strict=True)
    ]


def _fleet_name(service: Service) -> str:
    # Disabled services keep their history in the range (replicas they had, what they cost), marked as such.
    return _plain(service.display_name if service.enabled else f"{service.display_name} (disabled)")


def _fleet_layout(fleet: FleetTimeseries, title: str, yaxis_title: str, **extra: Any) -> dict[str, Any]:
    layout = _layout(title, yaxis_title, **extra)
    # The legend lists every service (four or so to a row) under the plot: the figure grows by its rows.
    rows = max(1, math.ceil((len(fleet.services) + 1) / 4))
    layout["margin"] = {**layout["margin"], "b": layout["margin"]["b"] + 20 * (rows - 1)}
    layout["height"] = layout["height"] + 20 * (rows - 1)
    return layout


def fleet_replicas_figure(fleet: FleetTimeseries) -> dict[str, Any]:
    return {
        "data": [
            *_stacked(fleet, "replicas", [_rounded(s.provisioned, 2) for s in fleet.services], "%{y:.1f}"),
            _fleet_trace(fleet, "ready, fleet total", _rounded(fleet.total_ready, 2), line=_FLEET_TOTAL_LINE),
        ],
        "layout": _fleet_layout(fleet, "Replicas · provisioned by service, ready across the fleet", "replicas"),
    }


def fleet_rate_figure(fleet: FleetTimeseries) -> dict[str, Any]:
    return {
        "data": [
            *_stacked(fleet, "rate", [_rounded(s.rps, 2) for s in fleet.services], "%{y:,.1f}"),
            _fleet_trace(fleet, "fleet total", _rounded(fleet.total_rps, 2), line=_FLEET_TOTAL_LINE),
        ],
        "layout": _fleet_layout(fleet, "Request rate · by service", "requests/s"),
    }


def fleet_latency_figure(fleet: FleetTimeseries) -> dict[str, Any]:
    """Each service's p95 as a share of its own limit, so that services with different SLOs share one axis."""
    layout = _fleet_layout(
        fleet,
        "Latency · each service's p95 against its own limit",
        "p95 / the SLO guard's limit",
        **_limit_line(1, "at the limit"),
    )
    layout["yaxis"]["tickformat"] = ".0%"
    return {
        "data": [
            _fleet_trace(
                fleet,
                _fleet_name(s.service),
                _rounded(s.p95_share_of_limit, 4),
                line={"shape": "hv"},
                customdata=_rounded(s.p95_ms, 1),
                hovertemplate=(
                    f"%{{y:.0%}} · p95 %{{customdata:.0f}} ms of {s.service.slo_latency_ms:g} ms"
                    "<extra>%{fullData.name}</extra>"
                ),
            )
            for s in fleet.services
        ],
        "layout": layout,
    }


# The services with samples for only part of the range a cost title names, the rest counted ("and 2 more").
_PARTIAL_NAMED = 3


def fleet_cost_title(fleet: FleetTimeseries, span_label: str) -> str:
    """'Cost · $11.45 over the last 1 h', and when a service has samples for only part of the range, which
    ones and for how long: their dollars are for that time only, not a cheaper hour."""
    from dashboard.templatetags.tipoff_time import elapsed  # it imports the views, which import this module

    costs = fleet.service_costs
    title = f"Cost · ${sum(c.dollars for c in costs):,.2f} over the last {span_label}"
    partial = [
        f"{_fleet_name(s.service)} {elapsed(c.observed)}"
        for s, c in zip(fleet.services, costs, strict=True)
        if c.partial
    ]
    if not partial:
        return title
    named = ", ".join(partial[:_PARTIAL_NAMED])
    more = f" and {len(partial) - _PARTIAL_NAMED} more" if len(partial) > _PARTIAL_NAMED else ""
    return f"{title} · counting only the time with samples: {named}{more}"


def fleet_cost_figure(fleet: FleetTimeseries, span_label: str) -> dict[str, Any]:
    return {
        "data": [
            *_stacked(fleet, "cost", [_rounded(s.cost_per_hour, 2) for s in fleet.services], "$%{y:,.2f}/hour"),
            _fleet_trace(fleet, "fleet total", _rounded(fleet.total_cost_per_hour, 2), line=_FLEET_TOTAL_LINE),
        ],
        "layout": _fleet_layout(fleet, fleet_cost_title(fleet, span_label), "$ per hour"),
    }


def _no_samples_figure(title: str, span_label: str) -> dict[str, Any]:
    """A chart with nothing to draw says so, in place of empty axes."""
    return {
        "data": [],
        "layout": {
            **_layout(title, ""),
            "xaxis": {"visible": False},
            "yaxis": {"visible": False},
            "annotations": [
                {
                    "xref": "paper",
                    "yref": "paper",
                    "x": 0.5,
                    "y": 0.5,
                    "text": f"No service reported metrics in the last {span_label}.",
                    "showarrow": False,
                    "font": {"size": 14, "color": "#6b7280"},
                }
            ],
        },
    }


def fleet_figures(fleet: FleetTimeseries, *, span_label: str, now: datetime) -> dict[str, dict[str, Any]]:
    """The fleet page's four charts, on one time axis from the range's start to its end, on the operator's
    clock as at `now`; with no service reporting in the range, four that say so."""
    if not fleet.services:
        titles = {"replicas": "Replicas", "rate": "Request rate", "latency": "Latency", "cost": "Cost"}
        return {name: _no_samples_figure(title, span_label) for name, title in titles.items()}
    figures = {
        "replicas": fleet_replicas_figure(fleet),
        "rate": fleet_rate_figure(fleet),
        "latency": fleet_latency_figure(fleet),
        "cost": fleet_cost_figure(fleet, span_label),
    }
    clock = chart_clock(ZoneInfo(settings.OPERATOR_TIME_ZONE), first=fleet.since, last=fleet.until, present=now)
    for figure in figures.values():
        figure["layout"]["xaxis"] = {**figure["layout"]["xaxis"], "range": [fleet.since, fleet.until]}
        _to_chart_clock(figure, clock)
    return figures


def _to_chart_clock(figure: dict[str, Any], clock: ChartClock) -> None:
    """Put every instant on the figure's time axis (points, override bands, the range) on `clock`."""

    def local(value: Any) -> Any:
        return clock.at(value) if isinstance(value, datetime) else value

    for trace in figure["data"]:
        if "x" in trace:
            trace["x"] = [local(t) for t in trace["x"]]
        if "x0" in trace:  # evenly spaced points: the first, and a step (dx) the clock leaves as it is
            trace["x0"] = local(trace["x0"])
    layout = figure["layout"]
    for shape in layout.get("shapes", []):
        if shape.get("xref") == "x":
            shape["x0"], shape["x1"] = local(shape["x0"]), local(shape["x1"])
    layout["xaxis"] = {
        **layout["xaxis"],
        "range": [local(t) for t in layout["xaxis"]["range"]],
        "title": {"text": clock.title},
    }


@dataclass(frozen=True)
class ChartClock:
    """The clock a chart's time axis reads: one UTC offset for every instant, and the axis's title."""

    offset: timedelta
    title: str

    def at(self, value: datetime) -> datetime:
        """`value` as this clock shows it, naive: plotly.js draws a date as it is written."""
        return (value.astimezone(UTC) + self.offset).replace(tzinfo=None)


def chart_clock(tz: ZoneInfo, *, first: datetime, last: datetime, present: datetime) -> ChartClock:
    """The operator's wall clock at `present`, for a chart's axis from `first` to `last`.

    plotly.js converts no zones and ignores an offset written with a time, so an axis on the zone's own
    clock draws the hour repeated when clocks fall back twice over one label, and the line doubles back.
    Every instant is written at one offset instead, the zone's at `present` (the clock on the wall); over
    a range in which the zone changes its offset, the axis says so and names the one it reads."""
    local = present.astimezone(tz)
    offset = local.utcoffset() or timedelta(0)
    if first.astimezone(tz).utcoffset() == last.astimezone(tz).utcoffset() == offset:
        return ChartClock(offset, f"time ({tz.key})")
    named = f"{local.tzname()} (UTC{utc_offset(local)})"
    return ChartClock(offset, f"time, all in {named}: {tz.key} changes its clocks in this range")
