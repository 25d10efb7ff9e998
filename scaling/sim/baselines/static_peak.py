"""`static-peak`: capacity pinned at the trace's peak need, all the time.

What an operator gets by pinning for the worst night: SERVING_MODEL.md defines
`static_peak_replica_hours` as max n*(t) × trace length, and this policy is that
pin run through replay (it reads the future, like the oracle; it exists for the
benchmark table, never for production).
"""

from __future__ import annotations

from scaling.sim.replay import Observation, ReplayContext


class StaticPeakPolicy:
    name = "static-peak"

    def __init__(self) -> None:
        self.peak = 1

    def start(self, ctx: ReplayContext) -> None:
        self.peak = int(ctx.oracle_counts.max()) if ctx.oracle_counts.size else ctx.service.min_replicas

    def decide(self, obs: Observation) -> int:
        return self.peak
