"""Policies replay can run: Tipoff's own engine (`tipoff`) and the baselines.

`EnginePolicy` drives `scaling.policy.decide`, the very function the live
controller calls each tick, through the engine's own tick loop
(`scaling.policy.driver.EngineDriver`), which builds its input the way
`scaling.selectors.engine_input` does live from what replay observes.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from scaling.policy.driver import EngineDriver
from scaling.policy.types import Decision, EngineInput, PolicyParams, ServiceSpec
from scaling.sim.baselines.hpa import HpaPolicy
from scaling.sim.baselines.oracle import OraclePolicy
from scaling.sim.baselines.static_peak import StaticPeakPolicy
from scaling.sim.baselines.target_tracking import TargetTrackingPolicy
from scaling.sim.replay import Observation, ReplayContext, ReplayPolicy


class PolicyError(ValueError):
    """A --policy value that names no built-in policy and is not a usable policy JSON."""


class EnginePolicy:
    """Tipoff's engine as a replay policy.

    A thin adapter over `scaling.policy.driver.EngineDriver`, the engine team's
    tick loop: it keeps the memory the live controller reads back from its
    Decision rows (recent recommendations, last scale times, missing-metrics
    start), builds the same EngineInput, and learns the demand profile from
    `--history` (and, online, from what it has observed — never the future).
    """

    def __init__(self, params: PolicyParams | None = None, *, name: str = "tipoff") -> None:
        self.name = name
        self.params = params or PolicyParams()
        self.driver = EngineDriver(service=ServiceSpec(), params=self.params)
        self.reasons: dict[str, int] = {}
        self.last_decision: Decision | None = None

    def start(self, ctx: ReplayContext) -> None:
        self.driver = EngineDriver(service=ctx.service, params=self.params, games=ctx.games, history=ctx.history)
        self.reasons = {}

    def engine_input(self, obs: Observation) -> EngineInput:
        """The EngineInput the live controller would build at this tick."""
        return self.driver.engine_input(obs.now, obs.metrics, obs.provisioned, obs.ready)

    def decide(self, obs: Observation) -> int:
        decision = self.driver.step(obs.now, obs.metrics, obs.provisioned, obs.ready)
        self.last_decision = decision
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
            text = path.read_text(encoding="utf-8-sig")
        except OSError as exc:
            raise PolicyError(
                f"{value}: not a built-in policy ({', '.join(BUILTIN)}) and not a readable JSON file: "
                f"{exc.strerror or exc}"
            ) from None
        except UnicodeDecodeError:
            raise PolicyError(f"{path}: not UTF-8 text") from None
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
