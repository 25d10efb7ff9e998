"""`hpa`: the Kubernetes Horizontal Pod Autoscaler (autoscaling/v2) with its defaults.

Sources (public): the HPA algorithm documentation,
https://kubernetes.io/docs/tasks/run-application/horizontal-pod-autoscale/#algorithm-details
and its implementation, kubernetes/kubernetes pkg/controller/podautoscaler/
replica_calculator.go (GetResourceReplicas) and horizontal.go
(stabilizeRecommendationWithBehaviors, convertDesiredReplicasWithBehaviorRate,
calculateScaleUpLimitWithScalingRules, calculateScaleDownLimitWithBehaviors).

Defaults: CPU target 70 % utilization, tolerance 0.1, sync every 15 s (the
replay tick); scale-up: no stabilization, max(4 pods, 100 %) per 15 s;
scale-down: 300 s stabilization window, 100 % per 15 s.

Mapping to the serving model: a pod's CPU utilization is the observed
utilization λ/(ready·concurrency·μ), averaged over ready pods and capped at
100 % (a saturated pod cannot report more CPU than it has). Pods still
provisioning are the HPA's "unready" pods: ignored on a scale-down, counted at
0 % on a scale-up.
"""

from __future__ import annotations

import math
from collections import deque

from scaling.sim.replay import Observation, ReplayContext

TARGET_UTILIZATION = 0.7
TOLERANCE = 0.1
SCALE_UP_PODS = 4
SCALE_UP_PERCENT = 100.0
SCALE_UP_PERIOD_S = 15.0
SCALE_UP_STABILIZATION_S = 0.0
SCALE_DOWN_PERCENT = 100.0
SCALE_DOWN_PERIOD_S = 15.0
SCALE_DOWN_STABILIZATION_S = 300.0


def replica_calculator(current: int, ready: int, utilization: float) -> int:
    """GetResourceReplicas for CPU with no pods missing metrics."""
    unready = max(current - ready, 0)
    usage_ratio = utilization / TARGET_UTILIZATION
    scale_up_with_unready = unready > 0 and usage_ratio > 1.0
    if not scale_up_with_unready:
        if abs(1.0 - usage_ratio) <= TOLERANCE:
            return current
        return math.ceil(usage_ratio * ready)
    # On a scale-up, unready pods count as using 0 % of their request.
    counted = ready + unready
    new_ratio = utilization * ready / counted / TARGET_UTILIZATION
    if abs(1.0 - new_ratio) <= TOLERANCE or new_ratio < 1.0:
        return current
    replicas = math.ceil(new_ratio * counted)
    return current if replicas < current else replicas


class HpaPolicy:
    name = "hpa"

    def __init__(self) -> None:
        self.min_replicas = 1
        self.max_replicas = 500
        self.recommendations: deque[tuple[float, int]] = deque()
        self.scale_up_events: deque[tuple[float, int]] = deque()
        self.scale_down_events: deque[tuple[float, int]] = deque()

    def start(self, ctx: ReplayContext) -> None:
        self.min_replicas = ctx.service.min_replicas
        self.max_replicas = ctx.service.max_replicas
        self.recommendations.clear()
        self.scale_up_events.clear()
        self.scale_down_events.clear()

    def _stabilize(self, now: float, current: int, desired: int) -> int:
        up, down = desired, desired
        for ts, rec in self.recommendations:
            if ts > now - SCALE_UP_STABILIZATION_S:
                up = min(up, rec)
            if ts > now - SCALE_DOWN_STABILIZATION_S:
                down = max(down, rec)
        self.recommendations.append((now, desired))
        keep = max(SCALE_UP_STABILIZATION_S, SCALE_DOWN_STABILIZATION_S)
        while self.recommendations and self.recommendations[0][0] < now - keep:
            self.recommendations.popleft()
        recommendation = max(current, up)
        return min(recommendation, down)

    @staticmethod
    def _changed_in_period(events: deque[tuple[float, int]], now: float, period: float) -> int:
        return sum(n for ts, n in events if ts + period > now)

    def _rate_limit(self, now: float, current: int, desired: int) -> int:
        added_up = self._changed_in_period(self.scale_up_events, now, SCALE_UP_PERIOD_S)
        deleted_up = self._changed_in_period(self.scale_down_events, now, SCALE_UP_PERIOD_S)
        if desired > current:
            start = current - added_up + deleted_up
            limit = max(start + SCALE_UP_PODS, math.ceil(start * (1 + SCALE_UP_PERCENT / 100.0)))
            limit = max(limit, current)
            return min(desired, self.max_replicas, limit)
        if desired < current:
            added = self._changed_in_period(self.scale_up_events, now, SCALE_DOWN_PERIOD_S)
            deleted = self._changed_in_period(self.scale_down_events, now, SCALE_DOWN_PERIOD_S)
            start = current - added + deleted
            limit = min(int(start * (1 - SCALE_DOWN_PERCENT / 100.0)), current)
            return max(desired, self.min_replicas, limit)
        return desired

    def decide(self, obs: Observation) -> int:
        current = obs.provisioned
        metric = obs.metric
        if current == 0 or metric is None or metric.utilization is None or obs.ready == 0:
            # No metrics for any ready pod: the HPA reports an error and leaves the scale alone.
            return current
        utilization = min(metric.utilization, 1.0)
        proposal = replica_calculator(current, obs.ready, utilization)
        proposal = min(max(proposal, self.min_replicas), self.max_replicas)
        stabilized = self._stabilize(obs.elapsed_s, current, proposal)
        desired = self._rate_limit(obs.elapsed_s, current, stabilized)
        if desired > current:
            self.scale_up_events.append((obs.elapsed_s, desired - current))
        elif desired < current:
            self.scale_down_events.append((obs.elapsed_s, current - desired))
        horizon = max(SCALE_UP_PERIOD_S, SCALE_DOWN_PERIOD_S)
        for events in (self.scale_up_events, self.scale_down_events):
            while events and events[0][0] + horizon <= obs.elapsed_s:
                events.popleft()
        return desired
