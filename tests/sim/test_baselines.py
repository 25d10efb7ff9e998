"""Baselines behave as their public definitions say."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np

from scaling.policy.types import GameSpec, MetricPoint, ServiceSpec
from scaling.sim.baselines.hpa import HpaPolicy, replica_calculator
from scaling.sim.baselines.oracle import OraclePolicy
from scaling.sim.baselines.static_peak import StaticPeakPolicy
from scaling.sim.baselines.target_tracking import TargetTrackingPolicy
from scaling.sim.inputs import service_from_dict
from scaling.sim.policies import EnginePolicy, make_policy
from scaling.sim.replay import Observation, ReplayContext, replay
from scaling.sim.score import score
from scaling.sim.trace import Trace

START = datetime(2026, 1, 15, 23, 0, tzinfo=UTC)


def _ctx(service: ServiceSpec | None = None, oracle: list[int] | None = None) -> ReplayContext:
    return ReplayContext(
        service=service or ServiceSpec(),
        start=START,
        step_s=10,
        steps=len(oracle or []),
        oracle_counts=np.asarray(oracle or [], dtype=np.int64),
    )


def _obs(elapsed_s: float, *, provisioned: int, ready: int, rps: float) -> Observation:
    capacity = ready * 100.0
    metric = MetricPoint(ts=START, rps=rps, utilization=rps / capacity if capacity else None)
    return Observation(
        now=START + timedelta(seconds=elapsed_s),
        elapsed_s=elapsed_s,
        metric=metric,
        metrics=(metric,),
        provisioned=provisioned,
        ready=ready,
    )


def test_hpa_scales_by_the_ratio_of_metric_to_target() -> None:
    # The documented example: 200m used of a 100m target doubles the replicas.
    assert replica_calculator(current=4, ready=4, utilization=1.0) == 6  # ceil(4 × 1.0/0.7)
    assert replica_calculator(current=10, ready=10, utilization=0.35) == 5


def test_hpa_holds_within_the_tolerance() -> None:
    assert replica_calculator(current=10, ready=10, utilization=0.75) == 10  # ratio 1.07
    assert replica_calculator(current=10, ready=10, utilization=0.64) == 10  # ratio 0.91


def test_hpa_counts_unready_pods_at_zero_on_a_scale_up() -> None:
    # 4 ready at 100 %, 4 pending: (4 × 1.0 + 4 × 0) / 8 = 0.5 → below target, no further scale-up.
    assert replica_calculator(current=8, ready=4, utilization=1.0) == 8
    # 4 ready at 100 %, 1 pending: 0.8/0.7 = 1.14 → ceil(1.14 × 5) = 6.
    assert replica_calculator(current=5, ready=4, utilization=1.0) == 6


def test_hpa_scale_up_is_limited_to_four_pods_or_double_per_period() -> None:
    hpa = HpaPolicy()
    hpa.start(_ctx())
    assert hpa.decide(_obs(0, provisioned=1, ready=1, rps=100.0)) == 2  # ceil(1 × 1.0/0.7) = 2
    hpa = HpaPolicy()
    hpa.start(_ctx())
    # Saturated pods read 100 %; ceil(20 × 1/0.7) = 29 is within max(4, 100 %) of 20.
    assert hpa.decide(_obs(0, provisioned=20, ready=20, rps=5000.0)) == 29
    hpa = HpaPolicy()
    hpa.start(_ctx(ServiceSpec(max_replicas=500)))
    first = hpa.decide(_obs(0, provisioned=2, ready=2, rps=10_000.0))
    assert first == 3  # ceil(2/0.7) = 3, under the limit of max(2 + 4, 4) = 6


def test_hpa_waits_out_the_scale_down_stabilization_window() -> None:
    hpa = HpaPolicy()
    hpa.start(_ctx())
    assert hpa.decide(_obs(0, provisioned=10, ready=10, rps=1000.0)) == 15  # 100 % → ceil(10/0.7)
    for t in range(15, 300, 15):
        assert hpa.decide(_obs(t, provisioned=15, ready=15, rps=100.0)) == 15
    assert hpa.decide(_obs(315, provisioned=15, ready=15, rps=100.0)) == 2


def test_target_tracking_needs_three_minutes_above_target_to_scale_out() -> None:
    tt = TargetTrackingPolicy()
    tt.start(_ctx())
    decisions = [tt.decide(_obs(t, provisioned=10, ready=10, rps=1000.0)) for t in range(0, 181, 15)]
    assert decisions[:8] == [10] * 8  # datapoints at 0 and 60 s: not yet
    assert decisions[8] == 15  # the third datapoint above target (120 s): ceil(1000/70)


def test_target_tracking_scales_in_only_after_fifteen_minutes_ten_percent_below() -> None:
    tt = TargetTrackingPolicy()
    tt.start(_ctx())
    outcomes = {t: tt.decide(_obs(t, provisioned=20, ready=20, rps=1000.0)) for t in range(0, 14 * 60, 60)}
    assert set(outcomes.values()) == {20}  # 14 datapoints at 50 rps per instance (< 63)
    assert tt.decide(_obs(14 * 60, provisioned=20, ready=20, rps=1000.0)) == 15  # the 15th: ceil(1000/70)


def test_target_tracking_holds_just_under_target() -> None:
    tt = TargetTrackingPolicy()
    tt.start(_ctx())
    results = {tt.decide(_obs(t, provisioned=10, ready=10, rps=650.0)) for t in range(0, 3600, 60)}
    assert results == {10}  # 65 per instance: neither above 70 nor below 63


def test_static_peak_pins_the_largest_oracle_count() -> None:
    policy = StaticPeakPolicy()
    policy.start(_ctx(oracle=[1, 5, 3]))
    assert policy.decide(_obs(0, provisioned=1, ready=1, rps=0.0)) == 5


def test_the_oracle_looks_ahead_by_the_provisioning_delay_plus_a_tick() -> None:
    counts = [1] * 30 + [9] * 5 + [1] * 30
    policy = OraclePolicy()
    policy.start(_ctx(ServiceSpec(provisioning_delay_s=100, tick_s=15), oracle=counts))
    assert policy.decide(_obs(170, provisioned=1, ready=1, rps=0)) == 1  # window [170, 285) ends before 300
    assert policy.decide(_obs(195, provisioned=1, ready=1, rps=0)) == 9  # window reaches 300 s
    assert policy.decide(_obs(350, provisioned=9, ready=9, rps=0)) == 1


def _night() -> Trace:
    t = np.arange(6 * 240)
    rps = 300 + 6000 * np.exp(-0.5 * ((t - 6 * 120) / 120.0) ** 2)
    return Trace(start=START, step_s=10, rps=np.round(rps, 3))


def test_static_peak_reaches_the_best_attainment_at_a_multiple_of_the_oracle_cost() -> None:
    service = service_from_dict({})
    results = {}
    for name in ("static-peak", "oracle", "hpa"):
        policy, _ = make_policy(name)
        results[name] = score(replay(_night(), service, policy, seed=1))
    peak, oracle, hpa = results["static-peak"], results["oracle"], results["hpa"]
    assert peak.attainment >= oracle.attainment >= service.slo_target
    assert peak.cost_ratio is not None and peak.cost_ratio > 2.0
    assert oracle.cost_ratio is not None and oracle.cost_ratio < 1.2
    assert hpa.attainment < service.slo_target
    assert oracle.slo_violation_minutes == 0


def test_the_engine_policy_builds_the_live_controllers_input() -> None:
    games = (
        GameSpec("far", START + timedelta(hours=9), "A", "B"),
        GameSpec("soon", START + timedelta(hours=2), "C", "D", "ESPN"),
        GameSpec("past", START - timedelta(hours=5), "E", "F"),
    )
    policy = EnginePolicy()
    policy.start(
        ReplayContext(service=ServiceSpec(), start=START, step_s=10, steps=0, games=games, history=((START, 1.0),))
    )
    first = policy.decide(_obs(0, provisioned=5, ready=5, rps=450.0))
    inp = policy.engine_input(_obs(15, provisioned=first, ready=5, rps=450.0))
    assert [g.game_id for g in inp.games] == ["soon"]
    assert [r.ts for r in inp.recent] == [START]
    assert inp.now == START + timedelta(seconds=15)
    assert inp.provisioned == first
