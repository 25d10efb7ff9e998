"""`oracle`: the scorer's lower bound (SERVING_MODEL.md, "Oracle") run as a policy.

It reads the future: at tick τ it asks for the largest n*(t) over steps in
[τ, τ + tick_s + provisioning_delay_s) — replicas needed before τ + delay must
already exist (so it never stops them), and a replica requested now is the
earliest that can serve from τ + delay until the next tick's request lands.
It still pays for the provisioning delay, so it costs somewhat more than
`oracle_replica_hours`. For the benchmark table only, never for production.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from scaling.sim.replay import Observation, ReplayContext


class OraclePolicy:
    name = "oracle"

    def __init__(self) -> None:
        self.counts: npt.NDArray[np.int64] = np.zeros(0, dtype=np.int64)
        self.step_s = 1.0
        self.horizon_s = 0.0

    def start(self, ctx: ReplayContext) -> None:
        self.counts = ctx.oracle_counts
        self.step_s = float(ctx.step_s)
        self.horizon_s = ctx.service.tick_s + ctx.service.provisioning_delay_s

    def decide(self, obs: Observation) -> int:
        lo = math.ceil(obs.elapsed_s / self.step_s - 1e-9)
        hi = math.ceil((obs.elapsed_s + self.horizon_s) / self.step_s - 1e-9)
        window = self.counts[lo : max(hi, lo + 1)]
        return int(window.max()) if window.size else obs.provisioned
