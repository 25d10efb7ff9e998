"""The scores of SERVING_MODEL.md, vectorized over a replayed trace, and the
replay's output files (`--out` steps CSV, `--summary` JSON, printed table)."""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from scaling.policy.types import GameSpec, planned
from scaling.sim.inputs import service_to_dict
from scaling.sim.replay import ReplayRun
from scaling.sim.trace import format_rps, format_ts

TIPOFF_WINDOW_S = 30 * 60


@dataclass(frozen=True)
class Scores:
    attainment: float
    replica_hours: float
    cost: float
    oracle_replica_hours: float
    cost_ratio: float | None
    static_peak_replica_hours: float
    slo_violation_minutes: int
    tipoff_attainment: float | None
    scale_events: int
    requests: float
    ticks: int


def request_weighted(rps: npt.NDArray[np.float64], attainment: npt.NDArray[np.float64]) -> float:
    total = float(rps.sum())
    return float((rps * attainment).sum() / total) if total > 0 else 1.0


def tipoff_mask(start_epoch_s: int, step_s: int, steps: int, games: Sequence[GameSpec]) -> npt.NDArray[np.bool_]:
    """Steps whose start lies within 30 minutes either side of a scheduled tip-off."""
    ts = start_epoch_s + step_s * np.arange(steps, dtype=np.int64)
    tips = np.unique(np.asarray([int(g.tip_utc.timestamp()) for g in planned(games)], dtype=np.int64))
    if tips.size == 0 or steps == 0:
        return np.zeros(steps, dtype=bool)
    pos = np.searchsorted(tips, ts)
    after = tips[np.minimum(pos, tips.size - 1)]
    before = tips[np.maximum(pos - 1, 0)]
    nearest = np.minimum(np.abs(after - ts), np.abs(ts - before))
    mask: npt.NDArray[np.bool_] = nearest <= TIPOFF_WINDOW_S
    return mask


def score(run: ReplayRun, games: Sequence[GameSpec] = ()) -> Scores:
    trace, spec = run.trace, run.service
    rps, att, dt = trace.rps, run.attainment, float(trace.step_s)
    replica_hours = float(run.provisioned.sum()) * dt / 3600.0
    oracle_hours = float(run.oracle.sum()) * dt / 3600.0
    # Wall-clock minutes, request-weighted; a minute without requests cannot violate.
    minute = (trace.start_epoch_s + trace.step_s * np.arange(trace.steps, dtype=np.int64)) // 60
    minute_ids = minute - minute[0]
    served = np.bincount(minute_ids, weights=rps * att)
    offered = np.bincount(minute_ids, weights=rps)
    with np.errstate(divide="ignore", invalid="ignore"):
        minute_attainment = np.where(offered > 0, served / np.where(offered > 0, offered, 1.0), 1.0)
    violations = int(np.count_nonzero((offered > 0) & (minute_attainment < spec.slo_target)))
    mask = tipoff_mask(trace.start_epoch_s, trace.step_s, trace.steps, games)
    tipoff = request_weighted(rps[mask], att[mask]) if mask.any() and float(rps[mask].sum()) > 0 else None
    previous = np.concatenate(([run.initial_replicas], run.tick_desired[:-1])) if run.ticks else np.zeros(0)
    return Scores(
        attainment=request_weighted(rps, att),
        replica_hours=replica_hours,
        cost=replica_hours * spec.price_per_replica_hour,
        oracle_replica_hours=oracle_hours,
        cost_ratio=replica_hours / oracle_hours if oracle_hours > 0 else None,
        static_peak_replica_hours=float(run.oracle.max()) * trace.duration_s / 3600.0,
        slo_violation_minutes=violations,
        tipoff_attainment=tipoff,
        scale_events=int(np.count_nonzero(run.tick_desired != previous)),
        requests=float(rps.sum()) * dt,
        ticks=run.ticks,
    )


def steps_csv(run: ReplayRun) -> str:
    """`ts,rps,desired,provisioned,ready,attainment`, one row per step, floats written exactly."""
    out = io.StringIO()
    out.write("ts,rps,desired,provisioned,ready,attainment\n")
    base, step = run.trace.start_epoch_s, run.trace.step_s
    rows = zip(
        run.trace.rps.tolist(),
        run.desired.tolist(),
        run.provisioned.tolist(),
        run.ready.tolist(),
        run.attainment.tolist(),
        strict=True,
    )
    for i, (rps, desired, provisioned, ready, att) in enumerate(rows):
        out.write(f"{format_ts(base + i * step)},{format_rps(rps)},{desired},{provisioned},{ready},{att!r}\n")
    return out.getvalue()


def summary_dict(
    run: ReplayRun, scores: Scores, *, policy_params: dict[str, Any] | None = None, inputs: dict[str, Any] | None = None
) -> dict[str, Any]:
    data: dict[str, Any] = {
        "policy": run.policy,
        "seed": run.seed,
        "service": service_to_dict(run.service),
        "trace": {
            "start": format_ts(run.trace.start_epoch_s),
            "end": format_ts(run.trace.start_epoch_s + run.trace.duration_s),
            "step_s": run.trace.step_s,
            "steps": run.trace.steps,
        },
        "initial_replicas": run.initial_replicas,
        **asdict(scores),
    }
    if policy_params is not None:
        data["policy_params"] = policy_params
    if inputs:
        data["inputs"] = inputs
    return data


def summary_json(data: dict[str, Any]) -> str:
    return json.dumps(data, indent=2, sort_keys=True, allow_nan=False, default=str) + "\n"


def _fmt(value: float | None, digits: int) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def scores_table(policy: str, scores: Scores) -> str:
    rows = [
        ("policy", policy),
        ("attainment", _fmt(scores.attainment, 6)),
        ("tip-off attainment", _fmt(scores.tipoff_attainment, 6)),
        ("SLO-violation minutes", str(scores.slo_violation_minutes)),
        ("replica-hours", _fmt(scores.replica_hours, 2)),
        ("cost", _fmt(scores.cost, 2)),
        ("oracle replica-hours", _fmt(scores.oracle_replica_hours, 2)),
        ("cost ratio", _fmt(scores.cost_ratio, 3)),
        ("static-peak replica-hours", _fmt(scores.static_peak_replica_hours, 2)),
        ("scale events", str(scores.scale_events)),
        ("ticks", str(scores.ticks)),
    ]
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k.ljust(width)}  {v}" for k, v in rows) + "\n"
