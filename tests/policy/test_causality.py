"""The engine is causal: its decision at time t depends on nothing after t. Two traces identical up to T
give identical decisions up to T, through the very replay the benchmark runs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np

from scaling.policy import MetricPoint, PolicyParams, ServiceSpec
from scaling.policy.driver import EngineDriver
from scaling.sim.gentrace import generate
from scaling.sim.policies import EnginePolicy
from scaling.sim.replay import replay
from scaling.sim.trace import Trace
from tests.policy.builders import game

START = datetime(2026, 1, 15, 22, 0, tzinfo=UTC)
GAMES = (
    game(datetime(2026, 1, 16, 0, 0, tzinfo=UTC), gid="a"),
    game(datetime(2026, 1, 16, 0, 30, tzinfo=UTC), "NYK (Knicks)", "MIA (Heat)", tv="", gid="b"),
)
SPLIT_S = 2 * 3600  # the traces part at tip-off + 0 (00:00 UTC)


def _traces() -> tuple[Trace, Trace, Trace]:
    base = generate(START, 4 / 24, step_s=10, games=GAMES, seed=3)
    history = generate(START - timedelta(days=2), 2, step_s=60, games=GAMES, seed=4)
    other = base.rps.copy()
    cut = SPLIT_S // base.step_s
    other[cut:] = other[cut:] * np.linspace(3.0, 0.5, other.size - cut)
    return base, Trace(start=base.start, step_s=base.step_s, rps=other), history


def test_two_traces_identical_up_to_t_give_identical_decisions_up_to_t() -> None:
    base, other, history = _traces()
    service = ServiceSpec(max_replicas=400, hard_max_replicas=400, provisioning_delay_s=180)
    first = replay(base, service, EnginePolicy(), seed=5, games=GAMES, history=history)
    second = replay(other, service, EnginePolicy(), seed=5, games=GAMES, history=history)
    ticks_before = int(SPLIT_S // service.tick_s)  # a tick at T sees only what happened before T
    assert np.array_equal(first.tick_desired[: ticks_before + 1], second.tick_desired[: ticks_before + 1])
    # ... and the traces do lead to different decisions afterwards, so the comparison means something.
    assert not np.array_equal(first.tick_desired, second.tick_desired)


def test_the_driver_is_causal_too() -> None:
    """The same property through the engine's own tick loop (EngineDriver), with online relearning on."""
    base, other, history = _traces()
    service = ServiceSpec(max_replicas=400, hard_max_replicas=400)

    def run(trace: Trace) -> list[int]:
        driver = EngineDriver(service, PolicyParams(), GAMES, history.series(), relearn_every_s=3600)
        window: list[MetricPoint] = []
        out, provisioned = [], 10
        for k in range(int(trace.duration_s // 15)):
            now = trace.start + timedelta(seconds=15 * k)
            i = (15 * k) // trace.step_s
            if i >= 6:
                window = [*window[-19:], MetricPoint(ts=now, rps=float(trace.rps[i - 6 : i].mean()))]
            provisioned = driver.step(now, window, provisioned, provisioned).desired
            out.append(provisioned)
        return out

    first, second = run(base), run(other)
    split = SPLIT_S // 15
    assert first[: split + 1] == second[: split + 1]
    assert first != second
