"""EngineDriver keeps the memory the live controller rebuilds from its Decision rows."""

from __future__ import annotations

from datetime import timedelta

from scaling.policy import MetricPoint, PolicyParams, Reason
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


def test_it_plans_for_no_game_still_to_be_decided() -> None:
    from scaling.policy import GameSpec

    placeholder = GameSpec("tbd", T0 + timedelta(hours=1), "TBD", "TBD", "Prime Video", tbd=True)
    real = GameSpec("real", T0 + timedelta(hours=2), "OKC (Thunder)", "SAS (Spurs)", "Prime Video")
    driver = EngineDriver(service=SPEC, params=PolicyParams(), games=(placeholder, real))
    assert driver.games == (real,)
    assert driver.games_around(T0 + timedelta(hours=1)) == (real,)
