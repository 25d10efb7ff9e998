"""`target-tracking`: AWS Application Auto Scaling target tracking on a SageMaker
endpoint variant, metric SageMakerVariantInvocationsPerInstance.

Sources (public): "Target tracking scaling policies for Application Auto
Scaling", https://docs.aws.amazon.com/autoscaling/application/userguide/application-auto-scaling-target-tracking.html
("Cooldown period", "Scale in / scale out"), and the SageMaker guide "Configure
model auto scaling", https://docs.aws.amazon.com/sagemaker/latest/dg/endpoint-auto-scaling.html

Behaviour modelled:
- The policy creates two CloudWatch alarms on the per-instance metric
  (1-minute datapoints): the high alarm fires after 3 consecutive datapoints
  above the target, the low alarm after 15 consecutive datapoints below 90 %
  of it ("scales in only when ~10 % below", gradually).
- While an alarm is in ALARM, the policy sets capacity to
  ceil(invocations / target), re-evaluated every minute.
- Scale-out cooldown 300 s: capacity already added counts toward the next
  scale-out (so only a larger count scales out further). Scale-in cooldown
  300 s after a scale-in; a scale-out ends a scale-in cooldown.
Target: 70 % of a replica's capacity in requests per second per instance.
"""

from __future__ import annotations

import math
from collections import deque

from scaling.sim.replay import Observation, ReplayContext

TARGET_FRACTION_OF_CAPACITY = 0.7
HIGH_DATAPOINTS = 3
LOW_DATAPOINTS = 15
SCALE_IN_THRESHOLD = 0.9
PERIOD_S = 60.0
SCALE_OUT_COOLDOWN_S = 300.0
SCALE_IN_COOLDOWN_S = 300.0


class TargetTrackingPolicy:
    name = "target-tracking"

    def __init__(self) -> None:
        self.target_rps_per_instance = 70.0
        self.datapoints: deque[tuple[float, float]] = deque(maxlen=LOW_DATAPOINTS)  # (per-instance rps, rps)
        self.next_period_s = 0.0
        self.last_scale_in_s: float | None = None

    def start(self, ctx: ReplayContext) -> None:
        capacity = ctx.service.concurrency * 1000.0 / ctx.service.service_time_ms
        self.target_rps_per_instance = TARGET_FRACTION_OF_CAPACITY * capacity
        self.datapoints.clear()
        self.next_period_s = 0.0
        self.last_scale_in_s = None

    def decide(self, obs: Observation) -> int:
        current = obs.provisioned
        if obs.elapsed_s + 1e-9 < self.next_period_s:
            return current  # alarms are evaluated once a minute
        self.next_period_s = obs.elapsed_s + PERIOD_S
        metric = obs.metric
        if metric is None or metric.rps is None:
            self.datapoints.clear()  # INSUFFICIENT_DATA: neither alarm can fire
            return current
        instances = max(obs.ready, 1)
        self.datapoints.append((metric.rps / instances, metric.rps))
        target = self.target_rps_per_instance
        recent = list(self.datapoints)
        if len(recent) >= HIGH_DATAPOINTS and all(v > target for v, _ in recent[-HIGH_DATAPOINTS:]):
            wanted = math.ceil(metric.rps / target - 1e-9)
            if wanted > current:
                self.last_scale_in_s = None  # a scale-out ends the scale-in cooldown
                return wanted
            return current
        if len(recent) >= LOW_DATAPOINTS and all(v < SCALE_IN_THRESHOLD * target for v, _ in recent):
            in_cooldown = (
                self.last_scale_in_s is not None and obs.elapsed_s - self.last_scale_in_s < SCALE_IN_COOLDOWN_S
            )
            wanted = max(math.ceil(metric.rps / target - 1e-9), 1)
            if wanted < current and not in_cooldown:
                self.last_scale_in_s = obs.elapsed_s
                return wanted
        return current
