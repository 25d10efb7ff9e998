"""Plotly figure dicts for the service charts (rendered by static/js/charts.js)."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings

from scaling.models import Override, Service

_LAYOUT: dict[str, Any] = {
    "margin": {"l": 60, "r": 20, "t": 36, "b": 76},  # room for the axes' titles and the legend
    "height": 290,
    # Placed from the figure's bottom edge, not the plot's, so it sits under the time axis's title.
    "legend": {"orientation": "h", "yref": "container", "y": 0, "yanchor": "bottom"},
    "xaxis": {"type": "date"},
    "hovermode": "x unified",
}


def _layout(title: str, yaxis_title: str, **extra: Any) -> dict[str, Any]:
    return {
        **_LAYOUT,
        "title": {"text": title, "font": {"size": 14}},
        # plotly.js 3 dropped the string form of an axis title: given as one, the axis showed none.
        "yaxis": {"title": {"text": yaxis_title}, "rangemode": "tozero"},
        **extra,
    }


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
                "text": [c["summary"] for c in changes],
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
            "Latency",
            "ms",
            shapes=[
                {
                    "type": "line",
                    "xref": "paper",
                    "x0": 0,
                    "x1": 1,
                    "yref": "y",
                    "y0": service.slo_latency_ms,
                    "y1": service.slo_latency_ms,
                    "line": {"color": "#d62728", "dash": "dash"},
                }
            ],
            annotations=[
                {
                    "xref": "paper",
                    "x": 1,
                    "y": service.slo_latency_ms,
                    "text": f"SLO {service.slo_latency_ms:g} ms",
                    "showarrow": False,
                    "xanchor": "right",
                    "yanchor": "bottom",
                    "font": {"color": "#d62728"},
                }
            ],
        ),
    }


def rate_figure(series: dict[str, list[Any]], forecast: dict[str, list[Any]] | None = None) -> dict[str, Any]:
    data: list[dict[str, Any]] = [
        {"type": "scatter", "mode": "lines", "name": "requests/s", "x": series["ts"], "y": series["rps"]},
    ]
    if forecast and forecast.get("ts"):
        data.append(
            {
                "type": "scatter",
                "mode": "lines",
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


def override_shapes(overrides: list[Override], until: datetime | None = None) -> list[dict[str, Any]]:
    """Shaded bands for override windows (pending ones amber), labelled with kind and count; a window running
    past `until` is drawn to it (a shape widens the chart's axis to its end)."""
    shapes = []
    for o in overrides:
        n = "" if o.replicas is None else f" {o.replicas}"
        pending = " (pending)" if o.status == "pending_approval" else ""
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
                "label": {"text": f"{o.kind}{n}{pending}", "textposition": "top left", "font": {"size": 10}},
            }
        )
    return shapes


def service_figures(
    service: Service,
    series: dict[str, list[Any]],
    forecast: dict[str, list[Any]] | None = None,
    *,
    since: datetime,
    overrides: list[Override] | None = None,
    until: datetime | None = None,
) -> dict[str, dict[str, Any]]:
    """The four charts of a service page, on one time axis: from `since` to the latest of what any of them
    draws (the newest sample, the forecast ahead, an override window to `until`), so that a moment sits at
    the same place in each and they read side by side."""
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
    for figure in figures.values():
        figure["layout"]["xaxis"] = {**figure["layout"]["xaxis"], "range": [since, max(end, since)]}
        _to_wall_clock(figure, ZoneInfo(settings.OPERATOR_TIME_ZONE))
    return figures


def _to_wall_clock(figure: dict[str, Any], tz: ZoneInfo) -> None:
    """Put the figure's time axis in the operator's zone, as the page's summaries and forms are.

    plotly.js converts no zones: it draws a date as the wall-clock time written. So every instant on
    the x axis (points, override bands, the range) goes out as a naive local time, and the axis's
    title names the zone; in the repeated hour when clocks fall back two instants share a label."""

    def local(value: Any) -> Any:
        return wall_clock(value, tz) if isinstance(value, datetime) else value

    for trace in figure["data"]:
        if "x" in trace:
            trace["x"] = [local(t) for t in trace["x"]]
    layout = figure["layout"]
    for shape in layout.get("shapes", []):
        if shape.get("xref") == "x":
            shape["x0"], shape["x1"] = local(shape["x0"]), local(shape["x1"])
    layout["xaxis"] = {
        **layout["xaxis"],
        "range": [local(t) for t in layout["xaxis"]["range"]],
        "title": {"text": f"time ({tz.key})"},
    }


def wall_clock(value: datetime, tz: ZoneInfo) -> datetime:
    """`value` as the wall-clock time in `tz`, naive: how plotly.js draws a date is as it is written."""
    return value.astimezone(tz).replace(tzinfo=None)
