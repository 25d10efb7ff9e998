"""What the metric window says: the newest fresh sample and a short-window rate.

Metric sources report averages over a window (60 s by default) that trail the
present by their lag. Two overlapping windows a tick apart differ only in their
ends, so their difference recovers the rate of the newest slice — a short window
(like Knative's panic window) read from ordinary long-window samples.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace
from datetime import datetime, timedelta
from typing import Any

from scaling.policy.types import EngineInput, MetricPoint, ServiceSpec

# How far back the rules look at individual samples (trend of tonight's forecast ratio, panic window).
POINTS_WINDOW_S = 300.0


@dataclass(frozen=True)
class Observation:
    """The rates the rules act on, with the instants they describe."""

    latest: MetricPoint
    rps: float  # the newest window's mean rate
    short_rps: float  # the newest slice's rate (≥ 0); equals rps without an earlier sample
    stable_rps: float  # mean over the samples within the stable window
    observed_at: datetime  # the middle of the newest window
    points: tuple[MetricPoint, ...]  # fresh samples with a rate, oldest first
    points_s: tuple[float, ...]  # their instants as epoch seconds
    latest_s: float  # the newest sample's instant as epoch seconds


def max_metric_age_s(inp: EngineInput) -> float:
    return max_sample_age_s(inp.service)


def max_sample_age_s(spec: ServiceSpec) -> float:
    """How old a sample may be before the engine takes it as stale (and the pages show it as no current data)."""
    return spec.metrics_lag_s + 2 * spec.tick_s + spec.metrics_window_s / 2


def finite(m: MetricPoint) -> MetricPoint:
    """`m` with every non-finite value (NaN, ±inf) taken as missing: one bad datapoint from a source must not
    turn the short-window rate into NaN (and panic to the maximum) or make a rule's arithmetic raise."""
    bad: dict[str, Any] = {
        name: None for name in _VALUES if isinstance(value := getattr(m, name), float) and not math.isfinite(value)
    }
    return replace(m, **bad) if bad else m


def latest_fresh_metric(inp: EngineInput, metrics: list[MetricPoint]) -> MetricPoint | None:
    """The newest of `metrics` with a request rate, if it is younger than two ticks (plus the source's lag)."""
    # A sample stamped after `now` (a source's clock running ahead) is ignored rather than taken as the
    # newest: as the newest it would make every other sample look stale too.
    newest: MetricPoint | None = None
    for m in metrics:
        if m.rps is not None and m.ts <= inp.now and (newest is None or m.ts > newest.ts):
            newest = m
    if newest is None or (inp.now - newest.ts).total_seconds() > max_metric_age_s(inp):
        return None
    return newest


def observe(inp: EngineInput, stable_window_s: float = 60.0) -> Observation | None:
    metrics = [finite(m) for m in inp.metrics]
    latest = latest_fresh_metric(inp, metrics)
    if latest is None or latest.rps is None:
        return None
    window_s = inp.service.metrics_window_s
    latest_s = latest.epoch
    horizon_s = latest_s - (max(stable_window_s, window_s, POINTS_WINDOW_S) + 1.0)
    stamped = [(m.epoch, m) for m in metrics if m.rps is not None]
    stamped = sorted((p for p in stamped if horizon_s <= p[0] <= latest_s), key=_first)
    points = tuple(m for _, m in stamped)
    points_s = tuple(t for t, _ in stamped)
    rps = max(latest.rps, 0.0)
    short = rps
    i = len(stamped) - 1
    while i >= 0 and stamped[i][0] >= latest_s:
        i -= 1
    if i >= 0:
        prev_s, prev = stamped[i]
        gap_s = latest_s - prev_s
        if 0.0 < gap_s < window_s and prev.rps is not None:
            # newest slice ≈ dropped slice + (window / gap) × change; the dropped slice ≈ previous mean.
            short = max(prev.rps + (window_s / gap_s) * (rps - prev.rps), 0.0)
    stable_from_s = latest_s - (stable_window_s + 1.0)
    stable_points = [m.rps for t, m in stamped if m.rps is not None and t >= stable_from_s]
    stable = sum(stable_points) / len(stable_points) if stable_points else rps
    observed_at = latest.ts - timedelta(seconds=window_s / 2)
    return Observation(latest, rps, short, stable, observed_at, points, points_s, latest_s)


def _first(pair: tuple[float, MetricPoint]) -> float:
    return pair[0]


_VALUES = tuple(f.name for f in fields(MetricPoint) if f.name != "ts")
