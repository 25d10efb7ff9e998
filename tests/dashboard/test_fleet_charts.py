"""The fleet page's charts: the JSON its script fetches, and the figures in it."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.conf import settings
from django.test import Client
from django.urls import reverse

from scaling.models import MetricSample, Service
from tests.factories import T0, make_service

pytestmark = pytest.mark.django_db

URL = reverse("dashboard:fleet-charts")


def _sample(service: Service, minutes_ago: float, **values: Any) -> None:
    MetricSample.objects.create(service=service, ts=T0 - timedelta(minutes=minutes_ago), **values)


def _figures(client: Client, query: str = "?range=1h") -> dict[str, Any]:
    with time_machine.travel(T0, tick=False):
        response = client.get(URL + query)
    assert response.status_code == 200
    figures: dict[str, Any] = response.json()["figures"]
    return figures


def _wall_clock(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(settings.OPERATOR_TIME_ZONE))


def test_the_fleet_chart_data_needs_a_login_and_answers_401_to_the_pages_script(client: Client) -> None:
    response = client.get(URL)
    assert response.status_code == 401 and response.json()["login_url"] == "/login/"


def test_the_fleet_page_offers_the_ranges_and_fetches_its_charts_for_the_chosen_one(viewer: Client) -> None:
    body = viewer.get(reverse("dashboard:fleet") + "?range=24h").content.decode()
    assert f'data-chart-url="{URL}?range=24h"' in body
    assert '<a href="?range=24h" class="active"' in body and '<a href="?range=7d" class=""' in body


@pytest.mark.parametrize(("query", "hours"), [("?range=7d", 24 * 7), ("", 6)])
def test_the_chart_data_is_for_the_range_asked_or_six_hours_when_none_is(
    viewer: Client, query: str, hours: int
) -> None:
    _sample(make_service("live-odds"), 10, provisioned=3)
    figures = _figures(viewer, query)
    start, end = (_wall_clock(t) for t in figures["replicas"]["layout"]["xaxis"]["range"])
    assert (start, end) == (T0 - timedelta(hours=hours), T0)
    assert f"over the last {'7 d' if hours > 24 else '6 h'} · " in figures["cost"]["layout"]["title"]["text"]


@pytest.mark.parametrize("asked", ["3y", "", "1H"])
def test_chart_data_for_an_unknown_range_is_refused_naming_the_field_and_the_ranges(viewer: Client, asked: str) -> None:
    # It had answered 6 h's charts: a script asking for another range drew the wrong one without a sign.
    _sample(make_service("live-odds"), 10, provisioned=3)
    response = viewer.get(URL, {"range": asked})
    assert response.status_code == 400
    message = f"there is no range {asked!r}: the ranges are 1h, 6h, 24h, 7d"
    assert response.json() == {
        "detail": f"range: {message}",
        "field": "range",
        "errors": [{"field": "range", "message": message}],
    }


def test_the_fleet_page_says_it_shows_six_hours_in_place_of_an_unknown_range(viewer: Client) -> None:
    body = viewer.get(reverse("dashboard:fleet") + "?range=3y").content.decode()
    assert "There is no range “3y” here: showing the last 6h. The ranges are 1h, 6h, 24h, 7d." in body
    assert f'data-chart-url="{URL}?range=6h"' in body  # its charts ask for the range it shows
    assert 'data-testid="range-refused"' not in viewer.get(reverse("dashboard:fleet") + "?range=24h").content.decode()


def test_replicas_stack_by_service_under_the_fleets_ready_line(viewer: Client) -> None:
    odds = make_service("live-odds", display_name="Live odds")
    props = make_service("player-props", display_name="Player props", enabled=False)
    _sample(odds, 1, provisioned=4, ready=3)
    _sample(props, 1, provisioned=6, ready=6)
    *areas, ready = _figures(viewer)["replicas"]["data"]
    # A disabled service keeps its history in the range, marked as such.
    assert [(a["name"], a["stackgroup"], a["y"][0]) for a in areas] == [
        ("Live odds", "replicas", 4),
        ("Player props (disabled)", "replicas", 6),
    ]
    assert ready["name"] == "ready, fleet total" and "stackgroup" not in ready and ready["y"][0] == 9
    # Every trace is on the fleet's buckets: the first on the operator's clock, a tick (in ms) apart.
    first = _wall_clock(ready["x0"])
    assert T0 - timedelta(minutes=1, seconds=15) < first <= T0 - timedelta(minutes=1)
    assert all(t["x0"] == ready["x0"] and t["dx"] == 15_000 for t in [*areas, ready])


def test_latency_is_each_p95_against_its_own_limit_with_the_ms_in_the_hover(viewer: Client) -> None:
    _sample(make_service("live-odds", display_name="Live odds", slo_latency_ms=200.0), 1, p95_ms=150.0)
    _sample(make_service("summaries", display_name="Summaries", slo_latency_ms=2000.0), 1, p95_ms=2400.0)
    latency = _figures(viewer)["latency"]
    odds, summaries = latency["data"]
    assert (odds["y"][0], odds["customdata"][0]) == (0.75, 150.0)
    assert (summaries["y"][0], summaries["customdata"][0]) == (1.2, 2400.0)
    assert "of 2000 ms" in summaries["hovertemplate"] and "%{customdata:.0f} ms" in summaries["hovertemplate"]
    [limit] = latency["layout"]["shapes"]
    assert (limit["y0"], limit["y1"], limit["line"]["dash"]) == (1, 1, "dash")
    assert latency["layout"]["annotations"][0]["text"] == "at the limit"
    assert latency["layout"]["yaxis"]["tickformat"] == ".0%"


def test_cost_stacks_by_service_and_states_the_ranges_total(viewer: Client) -> None:
    odds = make_service("live-odds", price_per_replica_hour=1.5)
    props = make_service("player-props", price_per_replica_hour=3.0)
    for minutes in range(61):  # the whole hour, on the minute, from its first instant
        _sample(odds, minutes, provisioned=2)
        _sample(props, minutes, provisioned=10)
    cost = _figures(viewer)["cost"]
    assert [t["y"][-1] for t in cost["data"]] == [3.0, 30.0, 33.0]  # each service's $/hour, then the fleet's
    # $33/hour for the hour, and not for the bucket that starts at its end (with a sample, at T0).
    assert cost["layout"]["title"]["text"] == "Cost · $33.00 over the last 1 h"


def test_the_cost_title_names_the_services_with_samples_for_only_part_of_the_range(viewer: Client) -> None:
    odds = make_service("live-odds", display_name="Live odds", price_per_replica_hour=1.5)
    props = make_service("player-props", display_name="Player props", price_per_replica_hour=3.0)
    for minutes in range(61):
        _sample(odds, minutes, provisioned=2)
        if minutes >= 20:  # the last sample 20 minutes ago: held for two, then nothing
            _sample(props, minutes, provisioned=4)
    title = _figures(viewer)["cost"]["layout"]["title"]["text"]
    # $3 for the hour of live odds, $12/hour for player props' 42 min 15 s (its last bucket and two held).
    assert title == "Cost · $11.45 over the last 1 h · counting only the time with samples: Player props 42 min"


def test_a_fleet_with_no_samples_in_the_range_says_so_in_place_of_empty_axes(viewer: Client) -> None:
    _sample(make_service("live-odds"), 120, provisioned=3)  # two hours ago: outside the last hour
    figures = _figures(viewer)
    assert set(figures) == {"replicas", "latency", "rate", "cost"}
    for figure in figures.values():
        assert figure["data"] == [] and figure["layout"]["xaxis"]["visible"] is False
        assert figure["layout"]["annotations"][0]["text"] == "No service reported metrics in the last 1 h."


def test_every_line_of_the_fleet_charts_breaks_where_a_service_stopped_reporting(viewer: Client) -> None:
    # The service page's lines break at a gap (tests/dashboard/test_views.py); the fleet's buckets are evenly
    # spaced, each line with no value (None) where a service reported nothing for longer than a value holds.
    odds = make_service("live-odds", slo_latency_ms=200.0)
    for minutes in (*range(50, 39, -1), *range(10, -1, -1)):  # 40 minutes without a sample between
        _sample(odds, minutes, provisioned=2, ready=2, rps=50.0, p95_ms=100.0)
    figures = _figures(viewer)
    step = timedelta(milliseconds=figures["cost"]["data"][0]["dx"])
    lines = [trace for figure in figures.values() for trace in figure["data"]]
    assert len(lines) == 7  # the service and the fleet's total on three charts; its p95 on the fourth
    for trace in lines:
        first = _wall_clock(trace["x0"])
        at = [first + step * k for k, y in enumerate(trace["y"]) if y is not None]
        assert at[0] < T0 - timedelta(minutes=39) and at[-1] > T0 - timedelta(minutes=11), trace["name"]
        assert not [t for t in at if T0 - timedelta(minutes=37) < t < T0 - timedelta(minutes=11)], trace["name"]


def test_a_display_name_is_shown_as_typed_in_the_legends_hover_and_titles_not_rendered(viewer: Client) -> None:
    # plotly.js renders links and styles in trace names and titles: a display name carrying them was a link.
    name = '<a href="https://evil.example/">Odds</a> & <i>props</i>'
    odds = make_service("live-odds", display_name=name, price_per_replica_hour=1.5)
    _sample(odds, 20, provisioned=2, rps=10.0, p95_ms=100.0)  # samples for part of the hour: named in the title
    shown = '&lt;a href="https://evil.example/"&gt;Odds&lt;/a&gt; &amp; &lt;i&gt;props&lt;/i&gt;'

    figures = _figures(viewer)

    for chart in ("replicas", "rate", "latency", "cost"):
        assert figures[chart]["data"][0]["name"] == shown, chart
    assert f"counting only the time with samples: {shown} " in figures["cost"]["layout"]["title"]["text"]
    assert "<a" not in str(figures)
