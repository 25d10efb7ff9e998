"""The service charts' figure dicts: what plotly.js is given to draw."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from dashboard.charts import override_shapes, rate_figure
from scaling.models import Override
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
