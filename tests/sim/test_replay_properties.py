"""Fleet invariants of replay under any sequence of decisions (hypothesis)."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from scaling.sim.inputs import service_from_dict
from scaling.sim.replay import Observation, ReplayContext, replay
from scaling.sim.trace import Trace

START = datetime(2026, 1, 15, 23, 0, tzinfo=UTC)


class CountsInTurn:
    name = "sequence"

    def __init__(self, counts: list[int]) -> None:
        self.counts = counts
        self.i = 0

    def start(self, ctx: ReplayContext) -> None:
        self.i = 0

    def decide(self, obs: Observation) -> int:
        n = self.counts[self.i % len(self.counts)]
        self.i += 1
        return n


@settings(max_examples=60, deadline=None)
@given(
    counts=st.lists(st.integers(min_value=0, max_value=40), min_size=1, max_size=30),
    step_s=st.sampled_from([1, 5, 10, 45, 60]),
    tick_s=st.sampled_from([5.0, 15.0, 60.0]),
    delay_s=st.sampled_from([0.0, 30.0, 180.0, 420.0]),
)
def test_the_fleet_keeps_its_invariants(counts: list[int], step_s: int, tick_s: float, delay_s: float) -> None:
    service = service_from_dict({"tick_s": tick_s, "provisioning_delay_s": delay_s, "max_replicas": 30})
    steps = 200
    trace = Trace(start=START, step_s=step_s, rps=np.full(steps, 500.0))
    run = replay(trace, service, CountsInTurn(counts))
    assert np.all(run.ready >= 0)
    assert np.all(run.ready <= run.provisioned)
    assert np.all(run.provisioned == run.desired)  # starts and stops take effect at once in the bill
    assert np.all((run.desired >= 1) & (run.desired <= 30))  # clamped to the bounds
    # Ready can rise only by replicas whose delay has passed: never faster than the pending count allows.
    rises = np.diff(run.ready) > 0
    assert np.all(run.provisioned[1:][rises] >= run.ready[1:][rises])
    if delay_s >= tick_s + step_s:
        # With a long delay, a fleet that grows at step i cannot be ready at step i.
        grew = np.nonzero(np.diff(run.provisioned) > 0)[0] + 1
        assert np.all(run.ready[grew] < run.provisioned[grew])
    assert np.all((run.attainment >= 0) & (run.attainment <= 1))
