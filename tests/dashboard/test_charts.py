"""The service charts' figure dicts: what plotly.js is given to draw."""

from __future__ import annotations

from datetime import timedelta
from itertools import pairwise
from typing import Any

from dashboard.charts import broken_at_gaps, override_shapes, rate_figure, replicas_figure, service_figures
from scaling.models import Override, Service
from tests.factories import T0


def _override(pk: int, kind: str, replicas: int | None, start_min: int, status: str = "approved") -> Override:
    starts_at = T0 + timedelta(minutes=start_min)
    return Override(
        pk=pk, kind=kind, replicas=replicas, status=status, starts_at=starts_at, ends_at=starts_at + timedelta(hours=1)
    )


def test_override_windows_that_start_together_share_one_readable_label() -> None:
    shapes = override_shapes(
        [
            _override(1, "floor", 120, 0),
            _override(2, "pin", 120, 0, status="pending_approval"),
            _override(3, "freeze", None, 0),
            _override(4, "ceiling", 40, 90),
        ]
    )
    # One band each, but one label where they start: three overprinted at one place read as 'flpin120'.
    assert [(s["name"], s["label"]["text"]) for s in shapes] == [
        ("override-1", "floor 120 · pin 120 (pending) · freeze"),
        ("override-2", ""),
        ("override-3", ""),
        ("override-4", "ceiling 40"),
    ]


def test_a_forecast_of_one_point_is_drawn_as_a_marker_not_as_a_line_of_nothing() -> None:
    actual: dict[str, list[Any]] = {"ts": [T0, T0 + timedelta(minutes=1)], "rps": [10.0, 11.0]}
    [_, lone] = rate_figure(actual, {"ts": [T0 + timedelta(minutes=4)], "rps": [12.0]})["data"]
    assert lone["name"] == "forecast" and lone["mode"] == "markers"
    [_, line] = rate_figure(actual, {"ts": [T0, T0 + timedelta(minutes=4)], "rps": [9.0, 12.0]})["data"]
    assert line["mode"] == "lines"
    assert [t["name"] for t in rate_figure(actual, {"ts": [], "rps": []})["data"]] == ["requests/s"]


def test_labels_of_windows_that_start_close_together_stand_on_different_lines() -> None:
    since = T0 - timedelta(hours=1)
    overrides = [
        _override(1, "floor", 120, 0),
        _override(2, "ceiling", 40, 1),  # a minute later: on a 5-hour axis, the labels would overprint
        _override(3, "pin", 80, 2),
        _override(4, "freeze", None, 150),  # well apart: back on the first line
    ]
    keys = ("desired", "provisioned", "ready", "p50_ms", "p95_ms", "p99_ms", "rps", "cost_per_hour")
    series: dict[str, list[Any]] = {
        "ts": [since, T0 + timedelta(hours=4)],
        "decision_ts": [],
        **{k: [1, 1] for k in keys},
    }
    figures = service_figures(Service(name="win-probability"), series, since=since, now=T0, overrides=overrides)
    labels = {s["name"]: s["label"] for s in figures["replicas"]["layout"]["shapes"]}
    # A top-left label's padding is how far below the band's top (and right of its start) it stands.
    lines = [labels[f"override-{pk}"]["padding"] for pk in (1, 2, 3)]
    assert all(lower - upper >= 12 for upper, lower in pairwise(sorted(lines)))  # a line apart at least
    assert labels["override-4"]["padding"] == labels["override-1"]["padding"]
    assert [labels[f"override-{pk}"]["textposition"] for pk in (1, 2, 3, 4)] == ["top left"] * 4


def test_a_line_is_broken_midway_between_points_further_apart_than_the_longest_joined() -> None:
    at = [T0, T0 + timedelta(seconds=15), T0 + timedelta(hours=1), T0 + timedelta(hours=1, seconds=15)]
    midway = at[1] + (at[2] - at[1]) / 2
    longest = timedelta(seconds=150)
    assert broken_at_gaps(at, [1.0, 2.0, 3.0, 4.0], longest=longest) == (
        [*at[:2], midway, *at[2:]],
        [1.0, 2.0, None, 3.0, 4.0],
    )
    # Points exactly that far apart, or closer, are joined; none or one point has nothing to break.
    assert broken_at_gaps([T0, T0 + longest], [1, 2], longest=longest) == ([T0, T0 + longest], [1, 2])
    assert broken_at_gaps([], [], longest=longest) == ([], [])


def test_an_area_filled_to_zero_closes_at_zero_on_both_sides_of_a_gap() -> None:
    # plotly fills one polygon under the whole trace, across the None too: it closes at 0 around the gap instead,
    # at the end of the bucket before it; a side without a value (no cost known) needs no closing.
    at = [T0, T0 + timedelta(seconds=15), T0 + timedelta(hours=1), T0 + timedelta(hours=2)]
    bucket = timedelta(seconds=15)
    x, y = broken_at_gaps(at, [4.0, 5.0, 3.0, None], longest=timedelta(seconds=150), closed_after=bucket)
    first_gap = [at[1] + bucket, at[1] + (at[2] - at[1]) / 2, at[2]]
    second_gap = [at[2] + bucket, at[2] + (at[3] - at[2]) / 2]
    assert x == [*at[:2], *first_gap, at[2], *second_gap, at[3]]
    assert y == [4.0, 5.0, 0, None, 0, 3.0, 0, None, None]


def test_an_override_reason_in_a_decision_marker_is_shown_as_typed_not_rendered() -> None:
    # plotly.js renders links and styles in hover text: a reason carrying them came through as a working link.
    summary = 'pin 6: override 3 pins 6: <a href="https://evil.example/">re-login</a> & <b>now</b>'
    series: dict[str, list[Any]] = {"decision_ts": [], "desired": [], "ts": [], "provisioned": [], "ready": []}
    series["changes"] = [{"id": 7, "ts": T0, "desired": 6, "summary": summary}]

    markers = replicas_figure(series)["data"][-1]

    shown = 'pin 6: override 3 pins 6: &lt;a href="https://evil.example/"&gt;re-login&lt;/a&gt;'
    assert markers["text"] == [f"{shown} &amp; &lt;b&gt;now&lt;/b&gt;"]
