"""The replay run behind `manage.py replay` and the benchmark: validate every input, run, score.

Kept out of the management command so the benchmark and the what-if task call
the same code, and so nothing here needs Django.
"""

from __future__ import annotations

import os
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from scaling.policy.capacity import serving_model
from scaling.policy.types import GameSpec, ServiceSpec
from scaling.sim.inputs import InputError, read_schedule, read_service
from scaling.sim.policies import make_policy
from scaling.sim.replay import ReplayPolicy, ReplayRun, replay
from scaling.sim.score import Scores, score, steps_csv, summary_dict, summary_json
from scaling.sim.serving import oracle_array
from scaling.sim.trace import Trace, format_ts, read_trace


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
    """Read and validate every input before anything runs (each raises a ValueError naming the file).

    Besides each file on its own: the seed, a history that ends before the run, a metrics window that can
    hold a step of each trace, and a peak the oracle can find a fleet for.
    """
    if seed < 0:
        raise InputError(f"seed {seed}: must be 0 or more")
    policy_obj, params = make_policy(policy)
    inputs = ReplayInputs(
        trace=read_trace(trace),
        service=read_service(service),
        policy=policy_obj,
        policy_params=params,
        games=read_schedule(schedule) if schedule else (),
        history=read_trace(history) if history else None,
        seed=seed,
    )
    history_trace, run = inputs.history, inputs.trace
    # The policy sees the run only causally (SERVING_MODEL.md): what it learns from beforehand must be over by then.
    if history_trace is not None and history_trace.end > run.start:
        raise InputError(
            f"{history_trace.source}: the history ends at {format_ts(int(history_trace.end.timestamp()))}, after "
            f"{run.source} starts at {format_ts(run.start_epoch_s)}; it must end by the start of the run"
        )
    window = inputs.service.metrics_window_s
    for each in (run, history_trace):
        if each is not None and window < each.step_s:
            raise InputError(
                f"{service or 'defaults'}: key 'metrics_window_s': {window:g} s is shorter than the {each.step_s} s "
                f"step of {each.source}, so no window would ever hold a whole step: the policy would see no metric"
            )
    peak_step = int(np.argmax(run.rps))
    try:
        oracle_array(run.rps[peak_step : peak_step + 1], serving_model(inputs.service), inputs.service.min_replicas)
    except ValueError as exc:
        raise InputError(f"{run.source}: line {peak_step + 2}: {exc}") from None
    return inputs


def run_replay(inputs: ReplayInputs) -> tuple[ReplayRun, Scores, dict[str, Any]]:
    run = replay(
        inputs.trace, inputs.service, inputs.policy, seed=inputs.seed, games=inputs.games, history=inputs.history
    )
    scores = score(run, inputs.games)
    summary = summary_dict(run, scores, policy_params=inputs.policy_params)
    return run, scores, summary


def check_output(path: str | Path, option: str) -> None:
    """Refuse an output that could not be written, before anything runs or any other output is written."""
    target = Path(path)
    if target.is_dir():
        raise InputError(f"{option} {path}: is a directory")
    if not target.resolve().parent.is_dir():
        raise InputError(f"{option} {path}: directory does not exist")
    if not os.access(target.resolve().parent, os.W_OK):
        raise InputError(f"{option} {path}: directory is not writable")


def _file_mode(target: Path) -> int:
    """The mode `open(target, "w")` would leave: the file's own when it exists, else as the umask allows."""
    if target.exists():
        return stat.S_IMODE(target.stat().st_mode)
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def write_atomically(path: str | Path, text: str) -> None:
    """Write the whole file or nothing: a temporary file beside it, renamed into place."""
    target = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent or Path())
    try:
        os.fchmod(fd, _file_mode(target))  # mkstemp's private 0600 is for the temporary file only
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
