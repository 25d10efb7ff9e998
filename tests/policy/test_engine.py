"""The first engine rules, as tables."""

from __future__ import annotations

from datetime import timedelta

import pytest

from scaling.policy import (
    EngineInput,
    MetricPoint,
    Mode,
    OverrideSpec,
    PastRecommendation,
    PolicyParams,
    Reason,
    ServiceSpec,
    decide,
)
from tests.factories import T0

SPEC = ServiceSpec(min_replicas=1, max_replicas=40, hard_max_replicas=60)
CAPACITY = 100.0  # rps per replica at 100% (4 servers × 25/s)


def _input(rps: float | None, provisioned: int = 10, **kw: object) -> EngineInput:
    metrics = () if rps is None else (MetricPoint(ts=T0 - timedelta(seconds=5), rps=rps),)
    fields: dict[str, object] = {
        "now": T0,
        "service": SPEC,
        "params": PolicyParams(),
        "provisioned": provisioned,
        "ready": provisioned,
        "metrics": metrics,
    }
    fields.update(kw)
    return EngineInput(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("rps", "provisioned", "desired", "reason"),
    [
        (700.0, 10, 10, Reason.WITHIN_TOLERANCE),  # exactly at 70 % target
        (1400.0, 10, 20, Reason.SCALED_OUT),
        (100_000.0, 10, 20, Reason.SCALED_OUT),  # rate-limited to +100 % per period
        (3500.0, 30, 40, Reason.SCALED_OUT),  # bounded by max_replicas
        (0.0, 2, 1, Reason.SCALED_IN),
    ],
)
def test_it_tracks_the_utilization_target(rps: float, provisioned: int, desired: int, reason: Reason) -> None:
    result = decide(_input(rps, provisioned))
    assert (result.desired, result.reason) == (desired, reason)


def test_it_holds_when_metrics_are_stale() -> None:
    stale = (MetricPoint(ts=T0 - timedelta(minutes=10), rps=0.0),)
    result = decide(_input(None, metrics=stale))
    assert (result.desired, result.reason) == (10, Reason.METRICS_STALE)


def test_it_holds_when_the_metric_source_is_unavailable() -> None:
    result = decide(_input(0.0), metrics_unavailable=True)
    assert (result.desired, result.reason) == (10, Reason.METRICS_UNAVAILABLE)


def test_it_stabilizes_scale_in_on_the_highest_recent_recommendation() -> None:
    recent = (PastRecommendation(T0 - timedelta(seconds=120), 9),)
    result = decide(_input(70.0, recent=recent))
    assert (result.desired, result.reason) == (9, Reason.SCALED_IN)
    assert [c.name for c in result.constraints] == ["scale_down_stabilization"]


def test_a_pin_beats_the_policy_and_the_bounds() -> None:
    pin = OverrideSpec(
        id=1,
        kind="pin",
        starts_at=T0 - timedelta(minutes=1),
        ends_at=T0 + timedelta(hours=1),
        replicas=55,
        reason="marquee",
    )
    result = decide(_input(10.0, overrides=(pin,)))
    assert (result.desired, result.reason) == (55, Reason.SCALED_OUT)
    assert result.constraints[-1].name == "override_pin"


def test_an_expired_override_never_applies() -> None:
    floor = OverrideSpec(id=1, kind="floor", starts_at=T0 - timedelta(hours=2), ends_at=T0, replicas=30, reason="done")
    result = decide(_input(700.0, overrides=(floor,)))
    assert result.desired == 10


def test_a_paused_service_holds() -> None:
    result = decide(_input(5000.0, mode=Mode.PAUSED))
    assert (result.desired, result.reason) == (10, Reason.PAUSED)


def test_dry_run_computes_but_says_so() -> None:
    result = decide(_input(1400.0, mode=Mode.DRY_RUN))
    assert (result.desired, result.reason) == (20, Reason.DRY_RUN)
    assert result.summary.startswith("Dry run")
