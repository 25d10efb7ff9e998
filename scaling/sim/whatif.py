"""What-if: replay a policy on a service's recorded traffic and set it beside what happened.

The recorded samples (one per control tick, possibly with gaps) become a
contract trace on a fixed step: each step carries the latest sample at or
before it forward. "Actual" is scored from the recorded ready/provisioned
counts on that trace, the policy from a replay of it — both with the same
serving model and scorer as `manage.py replay`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import numpy.typing as npt

from scaling.policy.capacity import serving_model
from scaling.policy.types import GameSpec, ServiceSpec
from scaling.sim.replay import ReplayPolicy, ReplayRun, replay
from scaling.sim.score import Scores, score
from scaling.sim.serving import attainment_array, oracle_array
from scaling.sim.trace import Trace, format_ts

MAX_POINTS = 600  # per chart series


class WhatIfError(ValueError):
    """Recorded data that cannot be replayed (the message says why)."""


@dataclass(frozen=True)
class RecordedSample:
    ts: datetime
    rps: float | None
    provisioned: int | None
    ready: int | None


@dataclass(frozen=True)
class Recorded:
    trace: Trace
    provisioned: npt.NDArray[np.int64]
    ready: npt.NDArray[np.int64]
    # The first step with a recorded replica count (None: none in the range). Samples before it carry a rate
    # only (from before Tipoff managed the service): what happened to the fleet then is not known.
    counted_from: int | None = 0


def recorded_trace(samples: Sequence[RecordedSample], step_s: int) -> Recorded:
    """Resample recorded samples onto a fixed grid, carrying each value forward."""
    usable = sorted((s for s in samples if s.rps is not None), key=lambda s: s.ts)
    if len(usable) < 2:
        raise WhatIfError("fewer than two recorded samples with a request rate in this range")
    step_s = min(max(int(step_s), 1), 60)
    start = usable[0].ts.replace(microsecond=0)
    steps = int((usable[-1].ts - start).total_seconds() // step_s) + 1
    if steps < 2:
        raise WhatIfError("the range holds less than two steps of recorded traffic")
    times = np.array([(s.ts - start).total_seconds() for s in usable])
    grid = step_s * np.arange(steps, dtype=np.float64)
    index = np.searchsorted(times, grid, side="right") - 1
    index = np.clip(index, 0, len(usable) - 1)
    rps = np.array([max(float(usable[i].rps or 0.0), 0.0) for i in index], dtype=np.float64)
    # Replica counts carry forward from the latest sample that recorded one (a rate-only sample between
    # two counted ones leaves the fleet as it was).
    counted = [i for i, sample in enumerate(usable) if sample.provisioned is not None]
    if not counted:
        zeros = np.zeros(steps, dtype=np.int64)
        return Recorded(Trace(start=start, step_s=step_s, rps=rps, source="recorded"), zeros, zeros, None)
    counted_times = times[counted]
    last = np.searchsorted(counted_times, grid, side="right") - 1
    first_step = int(np.argmax(last >= 0))
    which = [counted[max(j, 0)] for j in last.tolist()]
    provisioned = np.array([int(usable[i].provisioned or 0) for i in which], dtype=np.int64)
    ready = np.array(
        [int(usable[i].ready if usable[i].ready is not None else usable[i].provisioned or 0) for i in which],
        dtype=np.int64,
    )
    trace = Trace(start=start, step_s=step_s, rps=rps, source="recorded")
    return Recorded(trace, provisioned, ready, first_step)


def _from_step(run: ReplayRun, first: int, first_tick: int) -> ReplayRun:
    """`run` from step `first` (and tick `first_tick`) on: what scoring a part of the range reads."""
    if first == 0:
        return run
    trace = run.trace
    part = Trace(
        start=trace.start + timedelta(seconds=first * trace.step_s),
        step_s=trace.step_s,
        rps=trace.rps[first:],
        source=trace.source,
    )
    ticks = run.tick_desired[first_tick:]
    return replace(
        run,
        trace=part,
        initial_replicas=int(run.provisioned[first]),
        desired=run.desired[first:],
        provisioned=run.provisioned[first:],
        ready=run.ready[first:],
        attainment=run.attainment[first:],
        oracle=run.oracle[first:],
        tick_desired=ticks,
        ticks=int(ticks.size),
    )


def _actual_run(recorded: Recorded, service: ServiceSpec) -> ReplayRun:
    model = serving_model(service)
    trace = recorded.trace
    return ReplayRun(
        trace=trace,
        service=service,
        policy="actual",
        seed=0,
        initial_replicas=int(recorded.provisioned[0]),
        desired=recorded.provisioned,
        provisioned=recorded.provisioned,
        ready=recorded.ready,
        attainment=attainment_array(recorded.ready, trace.rps, model),
        oracle=oracle_array(trace.rps, model, service.min_replicas),
        tick_desired=recorded.provisioned,
        ticks=trace.steps,
    )


def _downsample(values: npt.NDArray[Any], stride: int, *, peak: bool) -> list[Any]:
    if stride <= 1:
        return list(values.tolist())
    chunks = [values[i : i + stride] for i in range(0, values.size, stride)]
    return [(c.max() if peak else c.mean()).item() for c in chunks]


def _scores_dict(scores: Scores) -> dict[str, Any]:
    return asdict(scores)


def compare(
    samples: Sequence[RecordedSample],
    service: ServiceSpec,
    policy: ReplayPolicy,
    *,
    games: Sequence[GameSpec] = (),
    seed: int = 0,
    progress: Callable[[float], None] | None = None,
) -> dict[str, Any]:
    """Scores and chart series of what happened and of what `policy` would have done (JSON-ready)."""
    step = service.tick_s if service.tick_s <= 60 else 60
    recorded = recorded_trace(samples, int(max(step, 1)))
    try:
        actual = _actual_run(recorded, service)
        run = replay(recorded.trace, service, policy, seed=seed, games=games, progress=progress)
    except ValueError as exc:
        raise WhatIfError(str(exc)) from None
    trace = recorded.trace
    stride = max(1, math.ceil(trace.steps / MAX_POINTS))
    ts = [format_ts(trace.start_epoch_s + i * trace.step_s) for i in range(0, trace.steps, stride)]
    # Both are scored over the same steps: from the first recorded replica count (the replay still runs from
    # the range's start, so it arrives there warmed up, as the fleet did).
    first = recorded.counted_from
    if first is None:
        actual_scores, replayed_scores, compared_from = None, _scores_dict(score(run, games)), None
    else:
        first_tick = math.ceil(first * trace.step_s / service.tick_s - 1e-9)
        actual_scores = _scores_dict(score(_from_step(actual, first, first), games))
        replayed_scores = _scores_dict(score(_from_step(run, first, first_tick), games))
        compared_from = format_ts(trace.start_epoch_s + first * trace.step_s)
    known_from = trace.steps if first is None else first

    def actual_series(values: npt.NDArray[Any], *, peak: bool) -> list[Any]:
        """What happened, downsampled; None where no replica count had been recorded yet."""
        points = _downsample(values, stride, peak=peak)
        return [None if i * stride < known_from else v for i, v in enumerate(points)]

    return {
        "start": format_ts(trace.start_epoch_s),
        "end": format_ts(trace.start_epoch_s + trace.duration_s),
        "step_s": trace.step_s,
        "steps": trace.steps,
        "policy": run.policy,
        "compared_from": compared_from,
        "actual": actual_scores,
        "replayed": replayed_scores,
        "series": {
            "ts": ts,
            "rps": _downsample(trace.rps, stride, peak=True),
            "actual_provisioned": actual_series(actual.provisioned, peak=True),
            "replayed_provisioned": _downsample(run.provisioned, stride, peak=True),
            "oracle": _downsample(run.oracle, stride, peak=True),
            "actual_attainment": actual_series(actual.attainment, peak=False),
            "replayed_attainment": _downsample(run.attainment, stride, peak=False),
        },
    }
