"""Policies replay can run: Tipoff's own engine (`tipoff`) and the baselines.

`EnginePolicy` drives `scaling.policy.decide`, the very function the live
controller calls each tick; `engine_input` builds its input the way
`scaling.selectors.engine_input` does live (same game horizon, same
recommendation window, same scale-time bookkeeping), from what replay observes.
"""

from __future__ import annotations

import importlib
import json
from bisect import bisect_left, bisect_right
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from scaling.policy import decide
from scaling.policy.types import (
    EngineInput,
    GameSpec,
    Mode,
    PastRecommendation,
    PolicyParams,
    Reason,
    ServiceSpec,
)
from scaling.sim.baselines.hpa import HpaPolicy
from scaling.sim.baselines.oracle import OraclePolicy
from scaling.sim.baselines.static_peak import StaticPeakPolicy
from scaling.sim.baselines.target_tracking import TargetTrackingPolicy
from scaling.sim.replay import Observation, ReplayContext, ReplayPolicy

# The live controller's game horizon (scaling.selectors.engine_input).
GAMES_BEFORE = timedelta(hours=4)
GAMES_AFTER = timedelta(hours=6)
_ENGINE_FIELDS = frozenset(f.name for f in fields(EngineInput))
_PAST_FIELDS = frozenset(f.name for f in fields(PastRecommendation))
_MISSING = (Reason.METRICS_STALE, Reason.METRICS_UNAVAILABLE)


class PolicyError(ValueError):
    """A --policy value that names no built-in policy and is not a usable policy JSON."""


def engine_extras(history: Sequence[tuple[datetime, float]], games: Sequence[GameSpec]) -> dict[str, Any]:
    """Inputs the engine learns once, before the run, from the history trace.

    The hook between replay and the engine's learning: whatever EngineInput
    accepts for learned state is built here, once, from `--history` and the
    schedule. Today that is the schedule-aware forecaster, when the engine has one.
    """
    extras: dict[str, Any] = {}
    if "forecaster" in _ENGINE_FIELDS and history:
        try:
            forecast = importlib.import_module("scaling.policy.forecast")
        except ImportError:
            forecast = None
        if forecast is not None:
            ts = [t for t, _ in history]
            rps = [v for _, v in history]
            nearby = [g for g in games if ts[0] - GAMES_AFTER <= g.tip_utc <= ts[-1] + GAMES_BEFORE]
            extras["forecaster"] = forecast.Forecaster.fit(ts, rps, nearby)
    return extras


@dataclass
class _EngineMemory:
    """What the live controller reads back from its Decision rows, kept in memory."""

    recent: deque[PastRecommendation]
    last_scale_out_at: datetime | None = None
    last_scale_in_at: datetime | None = None
    metrics_missing_since: datetime | None = None


class EnginePolicy:
    """Tipoff's engine as a replay policy."""

    def __init__(self, params: PolicyParams | None = None, *, name: str = "tipoff") -> None:
        self.name = name
        self.params = params or PolicyParams()
        self.service = ServiceSpec()
        self.games: tuple[GameSpec, ...] = ()
        self._tips: list[datetime] = []
        self.extras: dict[str, Any] = {}
        self.memory = _EngineMemory(recent=deque())
        self.reasons: dict[str, int] = {}

    def start(self, ctx: ReplayContext) -> None:
        self.service = ctx.service
        self.games = tuple(sorted(ctx.games, key=lambda g: g.tip_utc))
        self._tips = [g.tip_utc for g in self.games]
        self.extras = engine_extras(ctx.history, self.games)
        self.memory = _EngineMemory(recent=deque())
        self.reasons = {}

    def games_between(self, start: datetime, end: datetime) -> tuple[GameSpec, ...]:
        return self.games[bisect_left(self._tips, start) : bisect_right(self._tips, end)]

    def engine_input(self, obs: Observation) -> EngineInput:
        """Everything the engine needs at one tick, as the live controller would build it."""
        memory, params = self.memory, self.params
        window_s = max(params.scale_down_stabilization_s, params.scale_up_stabilization_s) + 1
        while memory.recent and (obs.now - memory.recent[0].ts).total_seconds() > window_s:
            memory.recent.popleft()
        return EngineInput(
            now=obs.now,
            service=self.service,
            params=params,
            provisioned=obs.provisioned,
            ready=obs.ready,
            metrics=obs.metrics,
            mode=Mode.ACTIVE,
            games=self.games_between(obs.now - GAMES_BEFORE, obs.now + GAMES_AFTER),
            recent=tuple(memory.recent),
            last_scale_out_at=memory.last_scale_out_at,
            last_scale_in_at=memory.last_scale_in_at,
            metrics_missing_since=memory.metrics_missing_since,
            **self.extras,
        )

    def decide(self, obs: Observation) -> int:
        decision = decide(self.engine_input(obs))
        memory = self.memory
        if decision.recommendation is not None:
            past: dict[str, Any] = {"ts": obs.now, "replicas": decision.recommendation}
            if "desired" in _PAST_FIELDS:
                past["desired"] = decision.desired
            memory.recent.append(PastRecommendation(**past))
        if decision.desired > obs.provisioned:
            memory.last_scale_out_at = obs.now
        elif decision.desired < obs.provisioned:
            memory.last_scale_in_at = obs.now
        if decision.reason in _MISSING:
            memory.metrics_missing_since = memory.metrics_missing_since or obs.now
        else:
            memory.metrics_missing_since = None
        key = str(decision.reason)
        self.reasons[key] = self.reasons.get(key, 0) + 1
        return decision.desired


BUILTIN: dict[str, Callable[[], ReplayPolicy]] = {
    "tipoff": EnginePolicy,
    "hpa": HpaPolicy,
    "target-tracking": TargetTrackingPolicy,
    "static-peak": StaticPeakPolicy,
    "oracle": OraclePolicy,
}


def policy_params_from(value: str) -> dict[str, Any]:
    """A policy JSON (inline object or file path) in the dashboard's stored format."""
    text = value
    source = "--policy"
    if not value.lstrip().startswith("{"):
        path = Path(value)
        source = str(path)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise PolicyError(
                f"{value}: not a built-in policy ({', '.join(BUILTIN)}) and not a readable JSON file: "
                f"{exc.strerror or exc}"
            ) from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise PolicyError(f"{source}: line {exc.lineno}: not valid JSON: {exc.msg}") from None
    if not isinstance(data, dict):
        raise PolicyError(f"{source}: expected a JSON object of policy parameters")
    try:
        PolicyParams.from_dict(data)
    except (TypeError, ValueError) as exc:
        raise PolicyError(f"{source}: {exc}") from None
    return data


def make_policy(value: str) -> tuple[ReplayPolicy, dict[str, Any] | None]:
    """A built-in policy by name, or the engine with the parameters of a policy JSON.

    Returns the policy and, for a JSON policy, its parameters (for the summary).
    """
    if value in BUILTIN:
        return BUILTIN[value](), None
    data = policy_params_from(value)
    return EnginePolicy(PolicyParams.from_dict(data), name="tipoff"), data
