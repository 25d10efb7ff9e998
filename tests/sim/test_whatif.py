"""What-if on recorded samples: resampling, side-by-side scores, progress."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from scaling.policy.types import ServiceSpec
from scaling.sim.baselines.static_peak import StaticPeakPolicy
from scaling.sim.whatif import RecordedSample, WhatIfError, compare, recorded_trace

T0 = datetime(2026, 1, 15, 23, 0, tzinfo=UTC)


def _samples(count: int, rps: float, provisioned: int, every_s: int = 15) -> list[RecordedSample]:
    return [RecordedSample(T0 + timedelta(seconds=every_s * i), rps, provisioned, provisioned) for i in range(count)]


def test_it_carries_each_sample_forward_over_gaps() -> None:
    samples = [
        RecordedSample(T0, 100.0, 2, 2),
        RecordedSample(T0 + timedelta(seconds=15), 200.0, 3, 2),
        RecordedSample(T0 + timedelta(seconds=60), 300.0, 4, 4),  # two ticks missing before
        RecordedSample(T0 + timedelta(seconds=75), None, None, None),  # no rate: skipped
    ]
    recorded = recorded_trace(samples, 15)
    assert recorded.trace.rps.tolist() == [100.0, 200.0, 200.0, 200.0, 300.0]
    assert recorded.provisioned.tolist() == [2, 3, 3, 3, 4]
    assert recorded.ready.tolist() == [2, 2, 2, 2, 4]


def test_it_needs_at_least_two_samples() -> None:
    with pytest.raises(WhatIfError, match="fewer than two"):
        recorded_trace([RecordedSample(T0, 1.0, 1, 1)], 15)


def test_it_sets_the_policy_beside_what_happened() -> None:
    service = ServiceSpec(tick_s=15)
    samples = _samples(240, 900.0, 8)  # an hour under-provisioned: 8 replicas for 900 rps
    seen: list[float] = []
    result = compare(samples, service, StaticPeakPolicy(), progress=seen.append)
    assert result["actual"]["attainment"] == 0.0  # 8 × 100 rps < 900: overloaded throughout
    assert result["replayed"]["attainment"] > service.slo_target
    assert result["actual"]["replica_hours"] == pytest.approx(8 * 240 * 15 / 3600)
    assert result["replayed"]["replica_hours"] == pytest.approx(10 * 240 * 15 / 3600)
    assert result["policy"] == "static-peak"
    assert len(result["series"]["ts"]) == len(result["series"]["replayed_provisioned"]) == 240
    assert seen
    assert seen[0] == 0.0


def test_rates_recorded_before_any_replica_count_are_replayed_but_not_compared() -> None:
    service = ServiceSpec(tick_s=15)
    # Half an hour of rates only (the service's history from before Tipoff), then half an hour managed.
    history = [RecordedSample(T0 + timedelta(seconds=15 * i), 900.0, None, None) for i in range(120)]
    managed = [RecordedSample(T0 + timedelta(seconds=15 * i), 900.0, 8, 8) for i in range(120, 240)]
    result = compare([*history, *managed], service, StaticPeakPolicy())
    assert result["compared_from"] == "2026-01-15T23:30:00Z"
    # Both columns cover the managed half hour only: 8 replicas there, not 0 before it.
    assert result["actual"]["replica_hours"] == pytest.approx(8 * 120 * 15 / 3600)
    assert result["replayed"]["replica_hours"] == pytest.approx(10 * 120 * 15 / 3600)
    assert result["actual"]["attainment"] == 0.0
    actual = result["series"]["actual_provisioned"]
    assert actual[:120] == [None] * 120 and actual[120:] == [8] * 120
    assert result["series"]["actual_attainment"][:120] == [None] * 120


def test_a_range_of_rates_only_scores_the_replay_alone() -> None:
    samples = [RecordedSample(T0 + timedelta(seconds=15 * i), 900.0, None, None) for i in range(240)]
    result = compare(samples, ServiceSpec(tick_s=15), StaticPeakPolicy())
    assert result["actual"] is None and result["compared_from"] is None
    assert result["replayed"]["replica_hours"] == pytest.approx(10 * 240 * 15 / 3600)
    assert result["series"]["actual_provisioned"] == result["series"]["actual_attainment"] == [None] * 240


def test_a_rate_only_sample_between_counted_ones_leaves_the_fleet_as_it_was() -> None:
    samples = [
        RecordedSample(T0, 100.0, 2, 2),
        RecordedSample(T0 + timedelta(seconds=15), 200.0, None, None),
        RecordedSample(T0 + timedelta(seconds=30), 300.0, 4, 3),
    ]
    recorded = recorded_trace(samples, 15)
    assert recorded.trace.rps.tolist() == [100.0, 200.0, 300.0]
    assert recorded.provisioned.tolist() == [2, 2, 4] and recorded.ready.tolist() == [2, 2, 3]
    assert recorded.counted_from == 0
