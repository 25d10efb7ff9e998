"""Run the engine tick after tick outside the live controller (replay, what-if, tests).

The live controller rebuilds the engine's memory (recent recommendations, last
scale times, how long metrics have been missing) from stored decisions; a replay
has no database, so `EngineDriver` keeps the same memory in plain fields and
builds exactly the `EngineInput` the live path would. It also learns online:
every `relearn_every_s` it refits the demand profile from the history it was given
plus the rates it has observed so far — never anything from the future.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from scaling.policy.engine import decide
from scaling.policy.forecast import Forecaster
from scaling.policy.types import (
    Decision,
    EngineInput,
    GameSpec,
    MetricPoint,
    Mode,
    OverrideSpec,
    PastRecommendation,
    PolicyParams,
    ServiceSpec,
    planned,
)

GAMES_BEHIND = timedelta(hours=4)
GAMES_AHEAD = timedelta(hours=6)


@dataclass
class EngineDriver:
    service: ServiceSpec
    params: PolicyParams = field(default_factory=PolicyParams)
    games: tuple[GameSpec, ...] = ()
    history: tuple[tuple[datetime, float], ...] = ()
    mode: Mode = Mode.ACTIVE
    overrides: tuple[OverrideSpec, ...] = ()
    # Refit the profile from history + observed samples this often (0 = never refit).
    relearn_every_s: float = 86400.0
    # How much of the past a refit reads (a week, like the live path).
    learn_window_s: float = 7 * 86400.0

    forecaster: Forecaster | None = None
    recent: deque[PastRecommendation] = field(default_factory=deque)
    last_scale_out_at: datetime | None = None
    last_scale_in_at: datetime | None = None
    metrics_missing_since: datetime | None = None
    observed: list[tuple[datetime, float]] = field(default_factory=list)
    learned_at: datetime | None = None

    def __post_init__(self) -> None:
        self.games = tuple(sorted(planned(self.games), key=lambda g: (g.tip_utc, g.game_id)))
        self._tips = [g.tip_utc for g in self.games]
        if self.forecaster is None and self.history:
            self.forecaster = Forecaster.fit([t for t, _ in self.history], [r for _, r in self.history], self.games)

    def games_around(self, now: datetime) -> tuple[GameSpec, ...]:
        lo = bisect_left(self._tips, now - GAMES_BEHIND)
        hi = bisect_right(self._tips, now + GAMES_AHEAD)
        return self.games[lo:hi]

    def engine_input(self, now: datetime, metrics: Sequence[MetricPoint], provisioned: int, ready: int) -> EngineInput:
        return EngineInput(
            now=now,
            service=self.service,
            params=self.params,
            provisioned=provisioned,
            ready=ready,
            metrics=tuple(metrics),
            mode=self.mode,
            overrides=self.overrides,
            games=self.games_around(now),
            recent=tuple(self.recent),
            last_scale_out_at=self.last_scale_out_at,
            last_scale_in_at=self.last_scale_in_at,
            metrics_missing_since=self.metrics_missing_since,
            forecaster=self.forecaster,
        )

    def step(
        self,
        now: datetime,
        metrics: Sequence[MetricPoint],
        provisioned: int,
        ready: int,
        *,
        metrics_unavailable: bool = False,
    ) -> Decision:
        """Decide for `now`, then remember what the live controller would have stored."""
        self._learn(now, metrics)
        decision = decide(self.engine_input(now, metrics, provisioned, ready), metrics_unavailable)
        self._remember(now, decision)
        return decision

    def _remember(self, now: datetime, decision: Decision) -> None:
        if decision.recommendation is not None:
            self.recent.append(PastRecommendation(now, decision.recommendation, decision.desired, decision.current))
        keep_s = max(
            self.params.scale_down_window_s(self.service.provisioning_delay_s),
            self.params.scale_up_stabilization_s,
            self.params.scale_up_period_s,
            self.params.scale_down_period_s,
        )
        while self.recent and (now - self.recent[0].ts).total_seconds() > keep_s + self.service.tick_s:
            self.recent.popleft()
        if decision.metrics_missing:
            if self.metrics_missing_since is None:
                self.metrics_missing_since = now
        else:
            self.metrics_missing_since = None
        acted = self.mode is Mode.ACTIVE
        if acted and decision.desired > decision.current:
            self.last_scale_out_at = now
        elif acted and decision.desired < decision.current:
            self.last_scale_in_at = now

    def _learn(self, now: datetime, metrics: Sequence[MetricPoint]) -> None:
        newest: MetricPoint | None = None
        for m in metrics:
            if m.rps is not None and (newest is None or m.ts > newest.ts):
                newest = m
        if newest is not None and newest.rps is not None and (not self.observed or newest.ts > self.observed[-1][0]):
            half = timedelta(seconds=self.service.metrics_window_s / 2)
            self.observed.append((newest.ts - half, newest.rps))
        if self.relearn_every_s <= 0:
            return
        if self.learned_at is None:
            self.learned_at = now
            return
        if (now - self.learned_at).total_seconds() < self.relearn_every_s:
            return
        self.learned_at = now
        since = now - timedelta(seconds=self.learn_window_s)
        samples = [s for s in (*self.history, *self.observed) if s[0] >= since]
        if len(samples) >= 60:
            self.forecaster = Forecaster.fit([t for t, _ in samples], [r for _, r in samples], self.games)
