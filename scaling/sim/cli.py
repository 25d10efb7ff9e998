"""The replay run behind `manage.py replay` and the benchmark: validate every input, run, score.

Kept out of the management command so the benchmark and the what-if task call
the same code, and so nothing here needs Django.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scaling.policy.types import GameSpec, ServiceSpec
from scaling.sim.inputs import read_schedule, read_service
from scaling.sim.policies import make_policy
from scaling.sim.replay import ReplayPolicy, ReplayRun, replay
from scaling.sim.score import Scores, score, steps_csv, summary_dict, summary_json
from scaling.sim.trace import Trace, read_trace


@dataclass(frozen=True)
class ReplayInputs:
    trace: Trace
    service: ServiceSpec
    policy: ReplayPolicy
    policy_params: dict[str, Any] | None
    games: tuple[GameSpec, ...]
    history: Trace | None
    seed: int


def load_inputs(
    *,
    trace: str | Path,
    schedule: str | Path | None = None,
    history: str | Path | None = None,
    service: str | Path | None = None,
    policy: str = "tipoff",
    seed: int = 0,
) -> ReplayInputs:
    """Read and validate every input before anything runs (each raises a ValueError naming the file)."""
    policy_obj, params = make_policy(policy)
    return ReplayInputs(
        trace=read_trace(trace),
        service=read_service(service),
        policy=policy_obj,
        policy_params=params,
        games=read_schedule(schedule) if schedule else (),
        history=read_trace(history) if history else None,
        seed=seed,
    )


def run_replay(inputs: ReplayInputs) -> tuple[ReplayRun, Scores, dict[str, Any]]:
    run = replay(
        inputs.trace, inputs.service, inputs.policy, seed=inputs.seed, games=inputs.games, history=inputs.history
    )
    scores = score(run, inputs.games)
    summary = summary_dict(run, scores, policy_params=inputs.policy_params)
    return run, scores, summary


def write_atomically(path: str | Path, text: str) -> None:
    """Write the whole file or nothing: a temporary file beside it, renamed into place."""
    target = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent or Path())
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
        Path(tmp).replace(target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_outputs(
    run: ReplayRun, summary: dict[str, Any], *, out: str | Path | None, summary_path: str | Path | None
) -> None:
    if out:
        write_atomically(out, steps_csv(run))
    if summary_path:
        write_atomically(summary_path, summary_json(summary))
