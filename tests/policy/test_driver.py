"""EngineDriver keeps the memory the live controller rebuilds from its Decision rows."""

from __future__ import annotations

from datetime import timedelta

from scaling.policy import MetricPoint, Mode, PolicyParams, Reason, ServiceSpec
from scaling.policy.driver import EngineDriver
from tests.policy.builders import SPEC, T0


def _metric(now_offset_s: float, rps: float) -> MetricPoint:
    return MetricPoint(ts=T0 + timedelta(seconds=now_offset_s), rps=rps)


def test_it_falls_back_after_metrics_stay_missing() -> None:
    driver = EngineDriver(SPEC, PolicyParams(fallback_replicas=25, fallback_after_s=60))
    reasons, counts = [], []
    for k in range(8):
        decision = driver.step(T0 + timedelta(seconds=15 * k), (), 10, 10)
        reasons.append(decision.reason)
        counts.append(decision.desired)
    assert set(reasons) == {Reason.METRICS_STALE}
    assert counts[:4] == [10, 10, 10, 10]  # not yet missing for 60 s
    assert counts[-1] == 25


def test_it_remembers_recommendations_for_stabilization() -> None:
    driver = EngineDriver(SPEC, PolicyParams(prewarm=False))
    high = driver.step(T0, (_metric(-5, 3000.0),), 10, 10)
    assert high.desired > 10
    # The load vanishes at once: the highest recommendation of the window still holds.
    low = driver.step(T0 + timedelta(seconds=15), (_metric(10, 10.0),), high.desired, high.desired)
    assert low.desired == high.desired
    assert low.reason is Reason.STABILIZING_SCALE_IN
    assert driver.last_scale_out_at == T0


def _run(driver: EngineDriver, rates: list[float | None], provisioned: int) -> list[int]:
    """Step once per tick from T0, one sample 5 s old per tick (none where the rate is None); the counts set."""
    counts = []
    for k, rps in enumerate(rates):
        now = T0 + timedelta(seconds=15 * k)
        metrics = () if rps is None else (MetricPoint(ts=now - timedelta(seconds=5), rps=rps),)
        provisioned = driver.step(now, metrics, provisioned, provisioned).desired
        counts.append(provisioned)
    return counts


BIG = ServiceSpec(min_replicas=1, max_replicas=500, hard_max_replicas=500)


def test_after_a_metrics_gap_one_sample_does_not_scale_in_past_the_stabilization_window() -> None:
    # Two minutes without metrics leave no recommendation in the 45 s window: the fresh sample after them
    # (50 rps, where 9,000 ran before) waits out the window like any other drop.
    driver = EngineDriver(service=BIG, params=PolicyParams(prewarm=False), relearn_every_s=0)
    counts = _run(driver, [9000.0] * 6 + [None] * 8 + [50.0] * 3, 100)
    before = counts[5]
    assert counts[6:16] == [before] * 10
    assert counts[16] < before  # three ticks after the gap, the window holds only the low recommendations


def test_a_new_service_does_not_compound_its_rate_limit_within_one_period() -> None:
    # At most 100 % per 60 s: from 10, no more than 20 within the first minute, 40 in the second.
    params = PolicyParams(
        target_utilization=0.7,
        model_sizing=False,
        prewarm=False,
        slo_guard=False,
        panic_threshold=0,
        scale_up_pods=1,
        scale_up_percent=100.0,
        scale_up_period_s=60.0,
    )
    driver = EngineDriver(service=BIG, params=params, relearn_every_s=0)
    assert _run(driver, [20_000.0] * 9, 10) == [20, 20, 20, 20, 40, 40, 40, 40, 80]


def test_it_plans_for_no_game_still_to_be_decided() -> None:
    from scaling.policy import GameSpec

    placeholder = GameSpec("tbd", T0 + timedelta(hours=1), "TBD", "TBD", "Prime Video", tbd=True)
    real = GameSpec("real", T0 + timedelta(hours=2), "OKC (Thunder)", "SAS (Spurs)", "Prime Video")
    driver = EngineDriver(service=SPEC, params=PolicyParams(), games=(placeholder, real))
    assert driver.games == (real,)
    assert driver.games_around(T0 + timedelta(hours=1)) == (real,)


def test_a_dry_run_counts_missing_metrics_towards_the_fallback_too() -> None:
    # A dry run's reason is always DRY_RUN; the missing metrics, not the reason code, start the fallback clock.
    driver = EngineDriver(SPEC, PolicyParams(fallback_replicas=25, fallback_after_s=60), mode=Mode.DRY_RUN)
    decisions = [driver.step(T0 + timedelta(seconds=15 * k), (), 10, 10) for k in range(8)]
    assert {d.reason for d in decisions} == {Reason.DRY_RUN}
    assert decisions[-1].desired == 25
