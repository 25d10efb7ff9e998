"""Policy benchmark: every built-in policy on every benchmark trace, in one run.

    .venv/bin/python bench/policies.py [--workers N] [--traces DIR] [--only NAME ...]

1. Generate the suite's traces (and the earlier week each policy may learn
   from) with the seeded trace generator, from the 2025-26 league schedule.
2. Replay each trace with tipoff, hpa, target-tracking, static-peak and oracle
   (the same code as `manage.py replay`), spread over a process pool.
3. Write bench/RESULTS.md (the tables, the machine, the times) and
   bench/results.json (every summary, for diffing after an engine change).

Nothing here needs Django: the simulator and the engine are pure.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import platform
import resource
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from scaling.policy.capacity import serving_model  # noqa: E402
from scaling.policy.types import GameSpec, PolicyParams, ServiceSpec, planned  # noqa: E402
from scaling.sim.gentrace import (  # noqa: E402
    OVERTIME_MIN,
    SPIKE_FADE_MIN,
    Generated,
    GenParams,
    Spike,
    generate_drawn,
)
from scaling.sim.inputs import read_schedule, service_from_dict  # noqa: E402
from scaling.sim.policies import BUILTIN, EnginePolicy, make_policy  # noqa: E402
from scaling.sim.reference import model_reference  # noqa: E402
from scaling.sim.replay import Observation, ReplayContext, ReplayPolicy, ReplayRun, replay  # noqa: E402
from scaling.sim.score import TIPOFF_WINDOW_S, score, summary_dict  # noqa: E402
from scaling.sim.serving import attainment_array, model_ceiling, oracle_array  # noqa: E402
from scaling.sim.trace import Trace, read_trace, trace_csv  # noqa: E402

SCHEDULE = ROOT / "data" / "nba_2025_26_schedule.csv"
POLICIES = ("tipoff", "hpa", "target-tracking", "static-peak", "oracle")
SEED = 1
STEP_S = 10


@dataclass(frozen=True)
class Case:
    name: str
    title: str
    start: datetime
    days: float
    gen_seed: int
    use_schedule: bool = True
    spikes: int = 0
    service: dict[str, float] = field(default_factory=dict)

    @property
    def history_start(self) -> datetime:
        return self.start - timedelta(days=HISTORY_DAYS)


CASES = (
    Case("regular-week", "Regular-season week (Mon 12 Jan 2026, 7 days)", datetime(2026, 1, 12, 5, tzinfo=UTC), 7, 11),
    Case(
        "christmas",
        "Christmas Day: five back-to-back national games (25 Dec 2025)",
        datetime(2025, 12, 25, 5, tzinfo=UTC),
        1,
        12,
    ),
    Case(
        "spikes-week",
        "Week with six unscheduled spikes (×3 within a minute; 2 Feb 2026)",
        datetime(2026, 2, 2, 5, tzinfo=UTC),
        7,
        13,
        spikes=6,
    ),
    Case(
        "slow-provisioning",
        "Slow provisioning: 420 s delay, 60 s metric lag (SageMaker + CloudWatch; 19 Jan 2026)",
        datetime(2026, 1, 19, 5, tzinfo=UTC),
        7,
        14,
        service={"provisioning_delay_s": 420, "metrics_lag_s": 60},
    ),
    Case(
        "diurnal",
        "No schedule: diurnal traffic only (7 days)",
        datetime(2026, 3, 2, 5, tzinfo=UTC),
        7,
        15,
        use_schedule=False,
    ),
)


def trace_paths(case: Case, directory: Path) -> tuple[Path, Path]:
    return directory / f"{case.name}.csv", directory / f"{case.name}-history.csv"


def spikes_path(case: Case, directory: Path) -> Path:
    return directory / f"{case.name}-spikes.json"


def make_traces(case: Case, directory: Path) -> None:
    games = read_schedule(SCHEDULE)
    trace_path, history_path = trace_paths(case, directory)
    drawn = _draw(case, games)
    spikes_path(case, directory).write_text(json.dumps([[s.onset, s.hold_end] for s in drawn.spikes]))
    trace_path.write_text(trace_csv(drawn.trace))
    history_path.write_text(trace_csv(_draw(case, games, history=True).trace))


HISTORY_DAYS = 7.0
HISTORY_SEED_OFFSET = 100


def _draw(
    case: Case, games: Sequence[GameSpec], *, history: bool = False, history_days: float = HISTORY_DAYS
) -> Generated:
    """The case's trace as its generator draws it, or (`history`) the `history_days` before it (a week),
    drawn with another seed and half the spikes."""
    if history:
        params = GenParams(spikes=case.spikes // 2, use_schedule=case.use_schedule)
        start, days, seed = case.start - timedelta(days=history_days), history_days, case.gen_seed + HISTORY_SEED_OFFSET
    else:
        params = GenParams(spikes=case.spikes, use_schedule=case.use_schedule)
        start, days, seed = case.start, case.days, case.gen_seed
    return generate_drawn(start, days, step_s=STEP_S, games=games, params=params, seed=seed)


def trace_of(case: Case, games: Sequence[GameSpec]) -> Trace:
    """The case's trace, drawn as `make_traces` draws it."""
    return _draw(case, games).trace


def history_of(case: Case, games: Sequence[GameSpec], days: float = HISTORY_DAYS) -> Trace:
    """The `days` before the case's trace, drawn as its week of history is drawn (`make_traces`)."""
    return _draw(case, games, history=True, history_days=days).trace


@contextmanager
def case_traces(cases: list[Case], traces: str | None) -> Iterator[Path]:
    """A directory holding each case's traces: `traces` if given (kept), else a temporary one."""
    with tempfile.TemporaryDirectory(prefix="tipoff-bench-") as scratch:
        directory = Path(traces) if traces else Path(scratch)
        directory.mkdir(parents=True, exist_ok=True)
        for case in cases:
            make_traces(case, directory)
        yield directory


def tipoffs_with_violations(run: ReplayRun, tips: list[int]) -> tuple[int, int]:
    """(tip-offs whose ±30 min window holds at least one SLO-violation minute, tip-offs in the trace)."""
    trace = run.trace
    ts = trace.start_epoch_s + trace.step_s * np.arange(trace.steps, dtype=np.int64)
    minute = ts // 60
    served = np.bincount(minute - minute[0], weights=trace.rps * run.attainment)
    offered = np.bincount(minute - minute[0], weights=trace.rps)
    bad = (offered > 0) & (served < run.service.slo_target * offered)
    inside = [t for t in tips if ts[0] <= t < ts[-1]]
    hit = 0
    for tip in inside:
        lo = max(0, (tip - TIPOFF_WINDOW_S) // 60 - minute[0])
        hi = (tip + TIPOFF_WINDOW_S) // 60 - minute[0] + 1
        hit += bool(bad[lo:hi].any())
    return hit, len(inside)


def _spike_shortfalls(run: ReplayRun, spikes: list[Spike]) -> Iterator[tuple[Spike, int, np.ndarray]]:
    """Per spike: its first step at or after the onset, and which steps from there through its hold had
    fewer ready replicas than the replay's n*(t)."""
    trace = run.trace
    short = run.ready < run.oracle
    for spike in spikes:
        begin = max(int(np.ceil((spike.onset - trace.start_epoch_s) / trace.step_s)), 0)
        end = min(int(np.ceil((spike.hold_end - trace.start_epoch_s) / trace.step_s)), trace.steps)
        yield spike, begin, short[begin:end]


def _since_onset_s(trace: Trace, spike: Spike, step: int) -> float:
    """Seconds from the spike's onset to the start of step `step` (0 if before it)."""
    return round(max(trace.start_epoch_s + step * trace.step_s - spike.onset, 0.0), 1)


def spike_catch_up_s(run: ReplayRun, spikes: list[Spike]) -> list[float]:
    """Per spike: seconds from its onset to the end of the last step, through its hold, whose ready
    replicas fell short of n*(t) — how long capacity took to catch up (0 if it never fell short)."""
    out = []
    for spike, begin, short in _spike_shortfalls(run, spikes):
        hits = np.nonzero(short)[0]
        out.append(_since_onset_s(run.trace, spike, begin + int(hits[-1]) + 1) if hits.size else 0.0)
    return out


def spike_first_caught_up_s(run: ReplayRun, spikes: list[Spike]) -> list[float]:
    """Per spike: seconds from its onset to the end of the first run of short steps after it (0 if none):
    when ready replicas first reached n*(t), whatever fell short later in the hold. `spike_catch_up_s`,
    which the target reads, counts those later shortfalls too."""
    out = []
    for spike, begin, short in _spike_shortfalls(run, spikes):
        if not short.any():
            out.append(0.0)
            continue
        first = int(np.argmax(short))
        met = np.nonzero(~short[first:])[0]
        out.append(_since_onset_s(run.trace, spike, begin + first + (int(met[0]) if met.size else len(short) - first)))
    return out


def _spike_order_tick(trace: Trace, service: ServiceSpec, spike: Spike, later_ticks: int) -> tuple[float, int]:
    """The tick (epoch s) `later_ticks` after the first whose metric window wholly holds a step starting at or
    after the spike's onset, and the newest step (index) that tick has wholly seen."""
    t0, step, tick = trace.start_epoch_s, trace.step_s, service.tick_s
    first = math.ceil((spike.onset - t0) / step)
    seen = t0 + (first + 1) * step + service.metrics_lag_s
    ordered = t0 + (math.ceil((seen - t0) / tick) + later_ticks) * tick
    return ordered, math.floor((ordered - service.metrics_lag_s - t0) / step + 1e-9) - 1


def spike_seen_floor_s(trace: Trace, service: ServiceSpec, spikes: list[Spike], later_ticks: int = 0) -> list[float]:
    """Per spike: the least catch-up (as `spike_catch_up_s` measures it) of capacity ordered on seeing the
    spike — at the first tick whose metric window wholly holds a step starting at or after its onset, or
    `later_ticks` after it — under the replay conventions. No causal policy does better without capacity
    already standing."""
    t0, step = trace.start_epoch_s, trace.step_s
    out = []
    for spike in spikes:
        ordered, _ = _spike_order_tick(trace, service, spike, later_ticks)
        ready = t0 + math.ceil((ordered + service.provisioning_delay_s - t0) / step) * step
        out.append(round(ready - spike.onset, 1))
    return out


def spike_first_seen_rise(
    trace: Trace,
    service: ServiceSpec,
    spikes: list[Spike],
    later_ticks: int = 0,
    multiple: float = GenParams().spike_multiple,
) -> list[float]:
    """Per spike: the share of its rise held by the newest step the seen-spike floor's tick (or the one
    `later_ticks` after it) has seen, against the mean rate of the minute before the onset: how much that
    tick could tell the spike from noise."""
    t0, step = trace.start_epoch_s, trace.step_s
    out = []
    for spike in spikes:
        first = math.ceil((spike.onset - t0) / step)
        _, newest = _spike_order_tick(trace, service, spike, later_ticks)
        before = trace.rps[max(first - 1 - round(60 / step), 0) : max(first - 1, 0)]
        if newest >= trace.steps or not before.size or before.mean() <= 0:
            out.append(math.nan)
            continue
        rise = (float(trace.rps[newest]) / float(before.mean()) - 1.0) / (multiple - 1.0)
        out.append(round(min(max(rise, 0.0), 1.0), 3))
    return out


def tipoff_attainment_outside_spikes(run: ReplayRun, tips: list[int], spikes: list[Spike]) -> float | None:
    """Tip-off attainment (±30 min) over the steps outside every spike (onset to hold end + its fade)."""
    trace = run.trace
    ts = trace.start_epoch_s + trace.step_s * np.arange(trace.steps, dtype=np.float64)
    near = np.zeros(trace.steps, dtype=bool)
    for tip in tips:
        near |= np.abs(ts - tip) <= TIPOFF_WINDOW_S
    for spike in spikes:
        near &= ~((ts >= spike.onset) & (ts < spike.hold_end + SPIKE_FADE_MIN * 60))
    offered = float(trace.rps[near].sum())
    return float((trace.rps[near] * run.attainment[near]).sum()) / offered if offered > 0 else None


BOUND_BELOW = 3  # the foresight bound weighs each ready count from n* − 3 ...
BOUND_ABOVE = 8  # ... to n* + 8 at every step, and stands-ins for every count outside them


def foresight_bound(trace: Trace, service: ServiceSpec, replica_steps: float) -> float:
    """The most attainment any policy could reach spending `replica_steps` (Σ provisioned over the steps),
    even one that knew the whole trace: a Lagrangian upper bound over per-step ready counts.

    For every θ ≥ 0, Σ_t rps·A(c_t) ≤ Σ_t max_c [rps·A(c) − θ·c] + θ·budget for any counts within the
    budget (ready ≤ provisioned), so the least right-hand side over θ bounds them all. θ is bisected to
    where the per-step best counts spend the budget, which is where that minimum lies. Counts are weighed
    one by one around n*; every count above them is stood in for by the model's ceiling at the cost of the
    first of them, and every count below by the lowest one's attainment at the cost of the fewest
    replicas allowed — each at least as good as what it stands for, so the bound still holds."""
    model = serving_model(service)
    rps = trace.rps
    total = float(rps.sum())
    if total <= 0:
        return 1.0
    nstar = oracle_array(rps, model, service.min_replicas)
    lowest = service.min_replicas
    counts_list = [np.maximum(nstar + k, lowest) for k in range(-BOUND_BELOW, BOUND_ABOVE + 1)]
    served_list = [rps * attainment_array(c, rps, model) for c in counts_list]
    counts_list += [np.full_like(nstar, lowest), nstar + BOUND_ABOVE + 1]
    served_list += [served_list[0], rps * model_ceiling(model)]
    counts, served = np.stack(counts_list), np.stack(served_list)
    columns = np.arange(rps.size)

    def best(theta: float) -> tuple[float, float]:
        pick = np.argmax(served - theta * counts, axis=0)
        return float(served[pick, columns].sum()), float(counts[pick, columns].sum())

    lo, hi = 0.0, 1.0
    while best(hi)[1] > replica_steps and hi < 1e6:
        hi *= 2.0
    for _ in range(60):
        mid = (lo + hi) / 2.0
        if best(mid)[1] > replica_steps:
            lo = mid
        else:
            hi = mid
    bounds = []
    for theta in (lo, hi):
        value, spent = best(theta)
        bounds.append(value + theta * (replica_steps - spent))
    return min(min(bounds) / total, 1.0)


def spike_blind_steps(trace: Trace, service: ServiceSpec, spikes: list[Spike]) -> np.ndarray:
    """Per-step attainment with n*(t) ready at every step — except that from each spike's onset until its
    seen-spike floor (`spike_seen_floor_s`) the fleet stays at n* of the minute before it: perfect
    foresight of everything but the spikes, and the spikes caught up as early as a causal policy can
    without standing capacity."""
    model = serving_model(service)
    t0, step = trace.start_epoch_s, trace.step_s
    ready = oracle_array(trace.rps, model, service.min_replicas)
    blind = ready.copy()
    for spike, floor_s in zip(spikes, spike_seen_floor_s(trace, service, spikes), strict=True):
        begin = max(math.ceil((spike.onset - t0) / step), 0)
        end = min(math.ceil((spike.onset + floor_s - t0) / step), trace.steps)
        before = int(ready[max(begin - round(60 / step), 0) : begin].max(initial=service.min_replicas))
        blind[begin:end] = before
    steps: np.ndarray = attainment_array(blind, trace.rps, model)
    return steps


def spike_blind_attainment(
    trace: Trace, service: ServiceSpec, spikes: list[Spike], *, steps: np.ndarray | None = None
) -> float:
    """Attainment over the whole trace as `spike_blind_steps` has it (or `steps`, its answer already at
    hand): what no causal policy without standing capacity beats when spikes land."""
    blind = spike_blind_steps(trace, service, spikes) if steps is None else steps
    offered = float(trace.rps.sum())
    return float((trace.rps * blind).sum()) / offered if offered > 0 else 1.0


def spike_blind_tipoff_attainment(
    trace: Trace, service: ServiceSpec, games: list[int], spikes: list[Spike], *, steps: np.ndarray | None = None
) -> float | None:
    """Tip-off attainment as `spike_blind_steps` has it (or `steps`, its answer already at hand)."""
    t0, step = trace.start_epoch_s, trace.step_s
    ts = t0 + step * np.arange(trace.steps, dtype=np.float64)
    near = np.zeros(trace.steps, dtype=bool)
    for tip in games:
        near |= np.abs(ts - tip) <= TIPOFF_WINDOW_S
    offered = float(trace.rps[near].sum())
    if offered <= 0:
        return None
    blind = spike_blind_steps(trace, service, spikes) if steps is None else steps
    served = trace.rps[near] * blind[near]
    return float(served.sum()) / offered


def case_drawn(case: Case, trace: Trace, games: Sequence[GameSpec]) -> tuple[Generated, GenParams]:
    """What the generator drew for the case's `trace` (run again with the case's seed on `games`, the
    schedule the trace was drawn from), carrying `trace` itself, and the generator's params."""
    drawn = _carrying(case, _draw(case, games), trace, "trace")
    return drawn, GenParams(spikes=case.spikes, use_schedule=case.use_schedule)


def history_drawn(case: Case, history: Trace, games: Sequence[GameSpec]) -> Generated:
    """What the generator drew for the case's `history` (the week before its trace), carrying `history`."""
    return _carrying(case, _draw(case, games, history=True), history, "history")


def _carrying(case: Case, drawn: Generated, trace: Trace, what: str) -> Generated:
    """`drawn` carrying `trace`, which must be the one it drew (else ValueError naming the case and `what`)."""
    if drawn.trace.steps != trace.steps or not np.allclose(drawn.trace.rps, trace.rps, atol=1e-3):
        raise ValueError(f"{case.name}: the {what} is not the one the case's generator draws")
    return replace(drawn, trace=trace)


def causal_reference(case: Case, trace: Trace, service: ServiceSpec, games: list[GameSpec]) -> dict[str, float] | None:
    """What `scaling.sim.reference`'s policy (told the generator's model, learning tonight's draws causally)
    pays to reach the case's attainment target on `trace` (`case_drawn`)."""
    drawn, params = case_drawn(case, trace, games)
    return model_reference(drawn, params, service, serving_model(service), case_target(case)[0])


class LedgerPolicy(EnginePolicy):
    """Tipoff, keeping per tick what each stage of its decision asked for (`cost_breakdown` reads it):
    (tick s from the start, replicas for the forecast, with its headroom, the forecast rule's count
    (with the replicas it keeps), the largest rule's, the decision's). Ticks without a forecast (metrics
    missing) count the recommendation, or the decision, for each stage."""

    def start(self, ctx: ReplayContext) -> None:
        super().start(ctx)
        self.ledger: list[tuple[float, int, int, int, int, int]] = []
        self._origin = ctx.start

    def decide(self, obs: Observation) -> int:
        desired = super().decide(obs)
        decision = self.last_decision
        assert decision is not None
        recommended = decision.desired if decision.recommendation is None else decision.recommendation
        rule = next((r for r in decision.rules if r.rule == "forecast"), None)
        if rule is None or rule.replicas is None:
            sized = with_headroom = kept = recommended
        else:
            sized = int(rule.inputs["forecast_replicas"])
            with_headroom, kept = sized + int(rule.inputs["headroom_replicas"]), rule.replicas
        elapsed = (obs.now - self._origin).total_seconds()
        self.ledger.append((elapsed, sized, with_headroom, kept, recommended, decision.desired))
        return desired


COST_STAGES = ("forecast", "headroom", "kept", "other rules", "stability")


def cost_breakdown(run: ReplayRun, ledger: list[tuple[float, int, int, int, int, int]]) -> dict[str, float]:
    """Where the replica-hours above Σ n*(t) go, as shares of Σ n*(t): each stage of every decision
    against the one before it, weighted by the steps the decision stays in force.

    - *window*: the highest n* over the steps a tick's replicas serve (from a delay after it until the next
      tick's arrive), above n*(t) step by step;
    - *forecast*: replicas for the forecast (its peak over the window, the sizing target) above that;
    - *headroom*: the calibrated headroom above the forecast;
    - *kept*: replicas kept for demand before new ones could arrive;
    - *other rules*: a larger recommendation from another rule (target tracking, the SLO guard, panic);
    - *stability*: the decision above the recommendation (the scale-in window, rate limits, bounds).

    The shares add up to the cost ratio − 1 (ticks whose window runs past the trace's end read its last step)."""
    step, n = run.trace.step_s, run.trace.steps
    delay = run.service.provisioning_delay_s
    nstar = run.oracle
    parts = dict.fromkeys(("window", *COST_STAGES), 0.0)
    for i, (t, sized, with_headroom, kept, recommended, desired) in enumerate(ledger):
        until = ledger[i + 1][0] if i + 1 < len(ledger) else n * step
        weight = min(math.ceil(until / step - 1e-9), n) - math.ceil(t / step - 1e-9)
        lo = min(math.ceil((t + delay) / step - 1e-9), n - 1)
        hi = max(min(math.ceil((until + delay) / step - 1e-9), n), lo + 1)
        ahead = int(nstar[lo:hi].max())
        stages = (ahead, sized, with_headroom, kept, recommended, desired)
        parts["window"] += weight * ahead
        for name, (before, after) in zip(COST_STAGES, itertools.pairwise(stages), strict=True):
            parts[name] += weight * (after - before)
    total = float(nstar.sum())
    parts["window"] -= total
    return {name: value / total for name, value in parts.items()}


def largest_losses(run: ReplayRun, games: list[GameSpec], top: int = 3) -> list[dict[str, Any]]:
    """Where a run lost most: the `top` 10-minute blocks by requests lost beyond the model's ceiling, each
    with its worst step, how far ready fell short of n*(t) there, and the games then (minutes from tip)."""
    trace = run.trace
    ceiling = model_ceiling(serving_model(run.service))
    step = float(trace.step_s)
    excess = trace.rps * step * np.maximum(ceiling - run.attainment, 0.0)
    total = float(excess.sum())
    if total <= 0:
        return []
    block = np.arange(trace.steps) * trace.step_s // 600
    per_block = np.bincount(block, weights=excess)
    out = []
    for b in np.argsort(-per_block)[:top].tolist():
        steps = np.nonzero(block == b)[0]
        worst = int(steps[np.argmax(excess[steps])])
        at = trace.start_epoch_s + worst * step
        playing = sorted(
            (round((at - g.tip_s) / 60.0), g.tier) for g in games if -10.0 <= (at - g.tip_s) / 60.0 <= 240.0
        )
        out.append(
            {
                "at": datetime.fromtimestamp(at, UTC).isoformat(),
                "share": float(per_block[b]) / total,
                "ready": int(run.ready[worst]),
                "needed": int(run.oracle[worst]),
                "games": [f"{'+' if m >= 0 else ''}{m} min ({tier})" for m, tier in playing],
            }
        )
    return out


def run_case(case_name: str, policy_name: str, directory: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
    """Replay one policy on one case's traces in `directory` and score it; tipoff may take policy `params`
    (the JSON the dashboard stores) in place of the defaults."""
    case = next(c for c in CASES if c.name == case_name)
    trace_path, history_path = trace_paths(case, Path(directory))
    trace: Trace = read_trace(trace_path)
    history = read_trace(history_path)
    games = read_schedule(SCHEDULE) if case.use_schedule else ()
    service = service_from_dict(dict(case.service))
    if policy_name == "tipoff":
        policy: ReplayPolicy = LedgerPolicy(PolicyParams.from_dict(params) if params else None)
    else:
        policy, _ = make_policy(policy_name)
    began, began_cpu = time.perf_counter(), time.process_time()
    run = replay(trace, service, policy, seed=SEED, games=games, history=history)
    scores = score(run, games)
    elapsed, cpu = time.perf_counter() - began, time.process_time() - began_cpu
    summary = summary_dict(run, scores)
    tips = sorted({int(g.tip_utc.timestamp()) for g in planned(games)})
    hit, total = tipoffs_with_violations(run, tips)
    spikes = [Spike(onset, end) for onset, end in json.loads(spikes_path(case, Path(directory)).read_text())]
    replica_steps = float(run.provisioned.sum())
    return {
        "cost_breakdown": cost_breakdown(run, policy.ledger) if isinstance(policy, LedgerPolicy) else None,
        "foresight_bound": foresight_bound(trace, service, replica_steps),
        "largest_losses": largest_losses(run, list(planned(games))) if policy_name == "tipoff" else [],
        "causal_reference": causal_reference(case, trace, service, list(games)) if policy_name == "oracle" else None,
        "spike_blind_tipoff_attainment": (
            spike_blind_tipoff_attainment(trace, service, tips, spikes) if spikes and policy_name == "oracle" else None
        ),
        "spike_catch_up_s": spike_catch_up_s(run, spikes),
        "spike_first_caught_up_s": spike_first_caught_up_s(run, spikes),
        "spike_seen_floor_s": spike_seen_floor_s(trace, service, spikes),
        "spike_first_seen_rise": spike_first_seen_rise(trace, service, spikes),
        "spike_next_tick_floor_s": spike_seen_floor_s(trace, service, spikes, later_ticks=1),
        "spike_next_tick_rise": spike_first_seen_rise(trace, service, spikes, later_ticks=1),
        "tipoff_attainment_outside_spikes": tipoff_attainment_outside_spikes(run, tips, spikes) if spikes else None,
        "case": case_name,
        "policy": policy_name,
        "summary": summary,
        "seconds": elapsed,
        "cpu_seconds": cpu,
        "decide_seconds": run.decide_seconds,
        "tipoffs_violated": hit,
        "tipoffs": total,
    }


# Issue 4's targets: (least attainment, most cost ratio) per kind of trace, and the tip-off attainment.
GAME_NIGHT_TARGET = (0.999, 1.25)
SPIKES_TARGET = (0.995, 1.35)
DIURNAL_TARGET = (0.999, 1.6)
TIPOFF_TARGET = 0.999


def case_target(case: Case) -> tuple[float, float]:
    """Issue 4's (attainment, cost ratio) target for the case's trace."""
    return SPIKES_TARGET if case.spikes else GAME_NIGHT_TARGET if case.use_schedule else DIURNAL_TARGET


BASELINES = ("hpa", "target-tracking")


def targets(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Issue 4's targets against tipoff's rows of this run, one row per target and trace: what it asks,
    what was measured, whether it is met and, where it is not, this run's own reference for how far a
    causal policy could go there (the causal reference, the seen-spike floor, the foresight bound)."""
    by = {(r["case"], r["policy"]): r for r in results}
    rows: list[dict[str, Any]] = []

    def add(case: str, target: str, measured: str, met: bool, reference: str = "") -> None:
        rows.append(
            {"case": case, "target": target, "measured": measured, "met": met, "reference": "" if met else reference}
        )

    for case in CASES:
        own = by.get((case.name, "tipoff"))
        if own is None:
            continue
        s = own["summary"]
        att, cost = s["attainment"], s["cost_ratio"]
        least, most = case_target(case)
        oracle = by.get((case.name, "oracle"), {})
        reference = oracle.get("causal_reference")
        add(
            case.name,
            f"≥ {least:.1%} within the SLO at ≤ {most:g} × the oracle",
            f"{att:.5f} at {cost:.4f} ×",
            att >= least and cost <= most,
            f"a causal policy told the traffic model: {reference['attainment']:.5f} at {reference['cost_ratio']:.3f} ×"
            if reference
            else "",
        )
        if case.spikes:
            service = service_from_dict(dict(case.service))
            limit = service.provisioning_delay_s + 2 * service.tick_s
            per, floor = own["spike_catch_up_s"], own["spike_seen_floor_s"]
            rise = own.get("spike_first_seen_rise") or [math.nan] * len(per)
            next_floor = own.get("spike_next_tick_floor_s") or [math.nan] * len(per)
            next_rise = own.get("spike_next_tick_rise") or [math.nan] * len(per)
            late = [i for i, v in enumerate(per) if v > limit]
            add(
                case.name,
                f"capacity caught up within delay + 2 ticks ({limit:g} s) of each spike",
                f"worst {max(per, default=0.0):g} s; {len(per) - len(late)} of {len(per)} within",
                not late,
                "; ".join(
                    f"spike {i + 1} at {per[i]:g} s; its seen-spike floor {floor[i]:g} s orders on a step holding "
                    f"{rise[i]:.0%} of its rise"
                    + (
                        f", or {next_floor[i]:g} s a tick later, on a step holding {next_rise[i]:.0%}"
                        if math.isfinite(next_floor[i]) and math.isfinite(next_rise[i])
                        else ""
                    )
                    for i in late
                ),
            )
        better_att = [b for b in BASELINES if (case.name, b) in by]
        if better_att:
            theirs = {b: by[(case.name, b)]["summary"] for b in better_att}
            qualifying = [b for b in better_att if theirs[b]["attainment"] >= GAME_NIGHT_TARGET[0]]
            beats = all(att > theirs[b]["attainment"] for b in better_att) and all(
                cost < theirs[b]["cost_ratio"] for b in qualifying
            )
            note = ""
            if not beats and qualifying:
                # Strictly better asks for more attainment than every baseline at less cost than each one at
                # the SLO target: the foresight bound at the cheapest such baseline's replica-hours caps it.
                cheapest = min(qualifying, key=lambda b: theirs[b]["cost_ratio"])
                best = max(theirs[b]["attainment"] for b in better_att)
                bound = by[(case.name, cheapest)]["foresight_bound"]
                note = (
                    f"needs > {best:.7f} at < {theirs[cheapest]['cost_ratio']:.3f} × ({cheapest}), where even "
                    f"perfect foresight reaches {bound:.7f}"
                )
            add(
                case.name,
                "strictly better than hpa and target-tracking (attainment; cost where theirs reaches the SLO)",
                f"{att:.5f} at {cost:.3f} × against "
                + ", ".join(
                    f"{b} {theirs[b]['attainment']:.5f} at {theirs[b]['cost_ratio']:.3f} ×" for b in better_att
                ),
                beats,
                note,
            )
        tip = s["tipoff_attainment"]
        if tip is not None:
            blind = oracle.get("spike_blind_tipoff_attainment")
            outside = own.get("tipoff_attainment_outside_spikes")
            note = ""
            if tip < TIPOFF_TARGET and blind is not None:
                note = f"perfect foresight of all but the spikes: {blind:.5f}"
                if outside is not None:
                    note += f"; tipoff outside the spikes: {outside:.5f}"
            add(case.name, f"tip-off attainment ≥ {TIPOFF_TARGET:.1%}", f"{tip:.5f}", tip >= TIPOFF_TARGET, note)
    return rows


def render_targets(rows: list[dict[str, Any]]) -> list[str]:
    """The targets section of RESULTS.md."""
    if not rows:
        return []
    met = sum(1 for r in rows if r["met"])
    lines = [
        "## Issue 4's targets, from this run",
        "",
        f"{met} of {len(rows)} met (`targets`: read from the tables below, not typed in). Where one is not, "
        "the last column gives this run's own reference for how far a causal policy could go there: the causal "
        "reference (told how the traffic is made, learning what was drawn), the seen-spike floor, or the "
        "foresight bound (each explained under its trace's table).",
        "",
        "| trace | target | tipoff measured | met | reference where not met |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        status = "yes" if r["met"] else "**no**"
        lines.append(f"| {r['case']} | {r['target']} | {r['measured']} | {status} | {r['reference']} |")
    lines += [
        "",
        "`decide()` under 1 ms at the median is measured apart, by `bench/decide_speed.py`: see "
        "[DECIDE.md](DECIDE.md). Whether a missed cost target is tipoff's demand model or its rules is measured "
        "apart too, by `bench/gap.py`, which replays tipoff's rules on the causal reference's forecast, and "
        "tipoff told the traffic's average in place of what it learns: see [GAP.md](GAP.md). These targets "
        "are read on one draw of each trace; `bench/seeds.py` replays tipoff on four more draws of each, where "
        "they hold less often: see [SEEDS.md](SEEDS.md).",
        "",
    ]
    return lines


def script_parser(doc: str | None) -> argparse.ArgumentParser:
    """The arguments every benchmark script takes: --workers and --traces."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--traces", help="directory for the generated traces (default: a temporary one)")
    return parser


def machine_and_time(jobs: int, what: str, workers: int, wall_s: float) -> list[str]:
    """A results file's closing section: the CPU, and how long its run took on how many processes."""
    return [
        "## Machine and time",
        "",
        f"- CPU: {cpu_model()}, {os.cpu_count()} cores; {jobs} {what} on {workers} worker processes, "
        f"{wall_s:.1f} s wall.",
        "",
    ]


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _f(value: float | None, digits: int) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def render(results: list[dict[str, Any]], *, wall_s: float, workers: int, generate_s: float, cpu_s: float = 0.0) -> str:
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg()) if hasattr(os, "getloadavg") else "n/a"
    lines = [
        "# Policy benchmark",
        "",
        "Every built-in policy replayed on every benchmark trace in one run of",
        "`.venv/bin/python bench/policies.py` (scores as defined in",
        "[SERVING_MODEL.md](SERVING_MODEL.md); traces from `scaling/sim/gentrace.py`,",
        "shape documented below). Default service unless noted: 40 ms service time, concurrency 4,",
        "180 s provisioning, SLO 99.9 % within 300 ms, tick 15 s, 60 s metric window; step 10 s; seed 1.",
        "",
        "Columns: **attainment** = share of requests within the SLO; **tip-off att.** = the same within",
        "30 min of a tip-off; **cost ratio** = replica-hours ÷ the oracle's lower bound; **viol. min** =",
        "wall-clock minutes below the SLO target; **tip-offs hit** = tip-offs with at least one violation",
        "minute within ±30 min; **events** = ticks where the desired count changed; **cpu s** = CPU time of",
        "that replay + scoring on one core (**wall s** is longer when the machine is shared; **decide s** is",
        "the wall time spent in the policy's own decisions, engine included).",
        "",
        "**Bound at this cost** = the most attainment any policy spending the same replica-hours could reach,",
        "even one that knew the whole trace (`foresight_bound`: a Lagrangian upper bound over per-step ready",
        "counts; the gap to it is what being causal, and this policy, cost).",
        "",
    ]
    lines += render_targets(targets(results))
    for case in CASES:
        rows = [r for r in results if r["case"] == case.name]
        if not rows:
            continue
        lines += [f"## {case.name}: {case.title}", ""]
        first = rows[0]["summary"]
        lines.append(
            f"{first['trace']['start']} → {first['trace']['end']}, {first['trace']['steps']:,} steps, "
            f"{first['ticks']:,} ticks; oracle {first['oracle_replica_hours']:,.1f} replica-h; "
            f"static peak {first['static_peak_replica_hours']:,.1f} replica-h."
        )
        lines += [
            "",
            "| policy | attainment | tip-off att. | cost ratio | bound at this cost | viol. min | tip-offs hit "
            "| events | replica-h | cpu s | wall s | decide s |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for policy in POLICIES:
            match = [r for r in rows if r["policy"] == policy]
            if not match:
                continue
            r = match[0]
            s = r["summary"]
            hit = f"{r['tipoffs_violated']}/{r['tipoffs']}" if r["tipoffs"] else "—"
            lines.append(
                f"| {policy} | {_f(s['attainment'], 5)} | {_f(s['tipoff_attainment'], 5)} | "
                f"{_f(s['cost_ratio'], 3)} | {_f(r['foresight_bound'], 5)} | {s['slo_violation_minutes']} | {hit} | "
                f"{s['scale_events']} | "
                f"{s['replica_hours']:,.1f} | {r['cpu_seconds']:.1f} | {r['seconds']:.1f} | "
                f"{r['decide_seconds']:.1f} |"
            )
        digits = "; ".join(
            f"{r['policy']} {_f(r['summary']['attainment'], 7)} / {_f(r['foresight_bound'], 7)}"
            for policy in POLICIES
            for r in rows
            if r["policy"] == policy
        )
        lines += ["", f"To seven digits, attainment / bound at its cost: {digits}."]
        reference = next((r.get("causal_reference") for r in rows if r["policy"] == "oracle"), None)
        if reference:
            lines += [
                "",
                "A causal reference policy told how the traffic is made (the generator's baseline, game shapes and "
                "laws of chance) but not what it drew (each game's interest is learned from the metric window by "
                "a Kalman filter, a close finish or overtime is planned for until it shows, a spike is known "
                f"from its onset) reaches {reference['attainment']:.5f} at {reference['cost_ratio']:.3f} × the "
                f"oracle (headroom {reference['z']:g} sd of its forecast; `causal_reference`, "
                "scaling/sim/reference.py). Not a bound. It shows the target within a causal policy's reach "
                "with the right model of demand: the rest of tipoff's cost is its learned model and its rules.",
            ]
        breakdown = next((r.get("cost_breakdown") for r in rows if r["policy"] == "tipoff"), None)
        if breakdown:
            shares = ", ".join(f"{name} {value:+.3f}" for name, value in breakdown.items())
            lines += [
                "",
                "Where tipoff's replica-hours above n*(t) go, as shares of n*(t)'s (`cost_breakdown`: each stage "
                "of every decision against the one before; window = the highest n* until the next tick's replicas "
                "could serve; kept = replicas held for demand before new ones could arrive, which the oracle row "
                "pays too, and for most of its cost above 1): " + shares + ".",
            ]
        losses = next((r.get("largest_losses") for r in rows if r["policy"] == "tipoff"), None)
        if losses:
            lines += [
                "",
                "Where tipoff lost most (requests lost beyond the model's ceiling, by 10-minute block; in these "
                f"traces a game's regulation ends {GenParams().regulation_min:g} minutes after its tip, with a "
                f"final-buzzer surge, and each overtime adds {OVERTIME_MIN:g}):",
                "",
            ]
            for loss in losses:
                playing = ", ".join(loss["games"]) or "no game"
                lines.append(
                    f"- {loss['at'][5:10]} {loss['at'][11:19]} UTC: {loss['share']:.1%} of the run's loss; "
                    f"{loss['ready']} ready where n* was {loss['needed']}; games then, from their tip: {playing}."
                )
        if case.spikes:
            service = service_from_dict(dict(case.service))
            target = service.provisioning_delay_s + 2 * service.tick_s
            lines += [
                "",
                f"Spike catch-up: seconds from each spike's onset to the end of the last step (through its hold) "
                f"with fewer ready replicas than n*(t); target ≤ provisioning delay + 2 ticks = {target:g} s.",
                "",
                "| policy | per spike (s) | worst (s) | tip-off att. | tip-off att. outside spikes |",
                "|---|---|---|---|---|",
            ]
            for policy in POLICIES:
                for r in rows:
                    if r["policy"] == policy:
                        per = r["spike_catch_up_s"]
                        lines.append(
                            f"| {policy} | {', '.join(f'{v:g}' for v in per)} | {max(per, default=0):g} | "
                            f"{_f(r['summary']['tipoff_attainment'], 5)} | "
                            f"{_f(r.get('tipoff_attainment_outside_spikes'), 5)} |"
                        )
            floor = rows[0]["spike_seen_floor_s"] if rows else []
            blind = next((r["spike_blind_tipoff_attainment"] for r in rows if r["policy"] == "oracle"), None)
            lines += [
                f"| *seen-spike floor* | {', '.join(f'{v:g}' for v in floor)} | {max(floor, default=0):g} | "
                f"{_f(blind, 5)} | |",
                "",
                "The *seen-spike floor* is the catch-up of capacity ordered, at exactly n*, on the first tick whose "
                "metric window holds a step of the spike (`spike_seen_floor_s`): what a causal policy could do "
                "with no capacity already standing. The first step of a spike may hold only a few percent of its "
                "rise, and a step is seen only once it has ended. *Tip-off att. outside spikes* leaves out the "
                f"steps from each spike's onset to {SPIKE_FADE_MIN:g} minutes after its hold (its fade). The floor "
                "row's tip-off att. is that of n*(t) ready at every step except from each spike's onset to its "
                "floor, where the fleet stays at the n* of the minute before (`spike_blind_tipoff_attainment`): "
                "perfect foresight of all but the spikes, which no causal policy without standing capacity beats.",
            ]
        lines.append("")
    week = [r for r in results if r["case"] == "regular-week"]
    timing = ", ".join(f"{r['policy']} {r['cpu_seconds']:.1f} s" for r in week)
    lines += [
        "## Machine and time",
        "",
        f"- CPU: {cpu_model()}, {os.cpu_count()} cores (nproc); Python {platform.python_version()}, "
        f"numpy {np.__version__}, {platform.system()} {platform.machine()}",
        f"- Whole suite: {wall_s:.1f} s wall, {cpu_s:.1f} s CPU over all processes ({len(results)} replays on "
        f"{workers} worker processes; trace generation {generate_s:.1f} s); load average when it ended: "
        f"{load}.",
        f"- One 7-day trace at 10 s steps (60,480 steps, 40,320 ticks), CPU seconds per policy: {timing}.",
        "  The replay loop, observed metrics and scoring cost what the baselines show; the rest of",
        "  tipoff's time is its engine (`EngineDriver.step`: `decide` plus its demand-profile refits).",
        "",
        "## Replay conventions (where SERVING_MODEL.md leaves a choice)",
        "",
        "- Start: the fleet starts warm with max n*(t) over the first tick + provisioning delay, all ready.",
        "- Ticks at 0, tick_s, 2·tick_s, … from the first step; a step's ready/provisioned counts are those",
        "  at its start, after any tick due by then; a replica requested at τ serves from the first step",
        "  starting at or after τ + provisioning_delay_s.",
        "- Observed window: the steps lying wholly inside [now − lag − window, now − lag); rate = realised",
        "  arrivals ÷ the covered time; no such step → no metric (the policy must hold). An overloaded window",
        "  reports p50/p95/p99 = 2·L and error_rate 1; otherwise error_rate is the share of the window's",
        "  arrivals in steps that were overloaded.",
        "- Look-ahead baselines: oracle asks at τ for max n* over [τ, τ + tick_s + delay); static-peak",
        "  for max n* over the trace. Both read the future and exist only for this table.",
        "- HPA reads CPU as min(utilization, 100 %); target tracking divides the rate by ready instances.",
        "",
        "## Traces",
        "",
        "Generated by `scaling.sim.gentrace.generate` (also `manage.py gentrace`) from",
        "`data/nba_2025_26_schedule.csv` at 10 s steps; each case replays with the week before it as",
        "`--history` (another seed). Demand = diurnal baseline (400 rps at the 20:00 ET peak, ×1.15 at",
        "weekends) + per game 450 rps × tier (national TV ×4) × log-normal interest (σ 0.25) × shape:",
        "a 90-minute pre-tip ramp to 0.5, a jump to the in-game level 1.0 within the first minute plus a",
        "tip-off surge (+0.5, τ 5 min), surges rising within a minute at the end",
        "of Q1 (+0.6), halftime (+1.0) and Q3 (+0.6) and the final buzzer (+1.2), close finishes (30 %:",
        "+1.0 over the last 15 minutes), overtime (6 %: 1.6 per 15-minute period), a 12-minute fade;",
        "× correlated log-normal noise (σ 4 %). Spikes multiply traffic by 3 within a minute for 5–20",
        "minutes. Regenerate a trace alone with e.g.",
        "`manage.py gentrace --start 2026-01-12T05:00:00Z --days 7 --schedule data/nba_2025_26_schedule.csv"
        " --seed 11 --out week.csv`.",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = script_parser(__doc__)
    parser.add_argument("--only", nargs="*", help="run only these cases")
    parser.add_argument("--policies", nargs="*", default=list(POLICIES), choices=list(BUILTIN))
    parser.add_argument("--results", default=str(ROOT / "bench" / "RESULTS.md"))
    args = parser.parse_args()
    cases = [c for c in CASES if not args.only or c.name in args.only]
    began = time.perf_counter()
    with case_traces(cases, args.traces) as directory:
        generate_s = time.perf_counter() - began
        jobs = [(c.name, p, str(directory)) for c in cases for p in args.policies]
        # Slowest first, so the pool stays busy to the end.
        jobs.sort(key=lambda j: (j[1] != "tipoff", -next(c.days for c in CASES if c.name == j[0])))
        with ProcessPoolExecutor(max_workers=args.workers) as pool:
            futures = [pool.submit(run_case, *job) for job in jobs]
            results = []
            for future in futures:
                result = future.result()
                results.append(result)
                s = result["summary"]
                print(
                    f"{result['case']:18s} {result['policy']:16s} attainment {s['attainment']:.5f} "
                    f"cost ratio {s['cost_ratio']:.3f} ({result['seconds']:.1f} s)",
                    flush=True,
                )
    wall_s = time.perf_counter() - began
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu_s = own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime
    results.sort(key=lambda r: ([c.name for c in CASES].index(r["case"]), POLICIES.index(r["policy"])))
    Path(args.results).write_text(
        render(results, wall_s=wall_s, workers=args.workers, generate_s=generate_s, cpu_s=cpu_s)
    )
    keep = (
        "case",
        "cost_breakdown",
        "causal_reference",
        "largest_losses",
        "foresight_bound",
        "spike_blind_tipoff_attainment",
        "policy",
        "summary",
        "tipoffs_violated",
        "tipoffs",
        "spike_catch_up_s",
        "spike_seen_floor_s",
        "spike_first_seen_rise",
        "spike_first_caught_up_s",
        "spike_next_tick_floor_s",
        "spike_next_tick_rise",
        "tipoff_attainment_outside_spikes",
    )
    machine_free = [{k: r[k] for k in keep} for r in results]
    Path(args.results).with_name("results.json").write_text(json.dumps(machine_free, indent=1, sort_keys=True) + "\n")
    print(f"wrote {args.results} in {wall_s:.1f} s")


if __name__ == "__main__":
    main()
