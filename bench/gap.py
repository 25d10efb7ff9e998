"""Where tipoff's cost gap on a benchmark trace lies: in its model of demand, or in its rules.

    .venv/bin/python bench/gap.py [--case slow-provisioning] [--workers N] [--traces DIR]

On one trace of `bench/policies.py` (same traces, history and seed) it replays:

1. tipoff as it is;
2. the causal reference alone (`scaling/sim/reference.py`: told how the traffic is made, learning what
   was drawn tonight from the metric window), and again without one of its powers at a time: planning
   each game's worst finish (close, overtime) to its end instead of as it shows, seeing each finish only
   five minutes after it begins (about when a metric window could tell it), never being told a close
   finish before regulation ends (one game's climb can hide in the aggregate's noise) with overtime seen
   five minutes late, leaving each game's interest at the prior instead of learning it, and knowing no
   finish's shape at all (each game planned and read as its average over the close finishes and overtimes
   the generator draws, as a learned profile is);
3. tipoff with its forecast rule swapped for one that reads the reference's plan, at several headrooms z:
   it asks for the demand's mean + z·sd over [now + delay, now + delay + tick] and keeps running replicas
   for the highest over [now, now + delay], as tipoff's own forecast rule does. Every other rule, bound
   and stabilizer is tipoff's, unchanged;
4. tipoff with its forecast rule as it is, but its model of demand told the generator's average traffic
   in place of the one it learns (`scaling/sim/told.py`: the baseline as drawn, each tier's expected game
   shape), its headroom calibrated on the same history; and that model told each game's drawn interest too;
   and told each game's whole draw (interest, close finish, overtimes): the traffic but for its noise;
5. tipoff as it is, given four weeks of history in place of one, and refitting on as much as it goes.

If (3) meets the target where (1) does not, tipoff's rules are not what stands in the way: its demand
model is, and (2) shows how far a better one could go. (4) splits the demand model in two: what it learns
(the average traffic, which (4) is told) and how it corrects that for tonight and covers its errors (one
ratio for all of tonight's demand, and headroom from the history's shortfalls), which (4) keeps; told every
draw, (4) leaves only that reading of a model to tell apart from the reference's. (5) asks whether more of
the same data would do.

The swap in (3) replaces `scaling.policy.rules.prewarm` only while that policy decides a tick, in the
worker process replaying it; the engine knows nothing of the reference. Writes bench/GAP.md.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from policies import (  # noqa: E402
    CASES,
    SCHEDULE,
    SEED,
    Case,
    LedgerPolicy,
    case_drawn,
    case_target,
    case_traces,
    cost_breakdown,
    history_drawn,
    history_of,
    machine_and_time,
    run_case,
    script_parser,
    trace_paths,
)

from scaling.policy import rules  # noqa: E402
from scaling.policy.capacity import serving_model  # noqa: E402
from scaling.policy.driver import EngineDriver  # noqa: E402
from scaling.policy.forecast import Forecaster  # noqa: E402
from scaling.policy.signals import Observation as Signals  # noqa: E402
from scaling.policy.types import EngineInput, GameSpec, RuleResult, ServiceSpec  # noqa: E402
from scaling.sim.gentrace import GameDraw, Generated, GenParams  # noqa: E402
from scaling.sim.inputs import read_schedule, service_from_dict  # noqa: E402
from scaling.sim.reference import REFERENCE_Z, Powers, model_reference, plans  # noqa: E402
from scaling.sim.replay import Observation, ReplayContext, replay  # noqa: E402
from scaling.sim.score import score, summary_dict  # noqa: E402
from scaling.sim.told import told_forecaster  # noqa: E402
from scaling.sim.trace import Trace, read_trace  # noqa: E402

Z = (1.5, 1.75, 2.0, 2.5)
LONG_HISTORY_DAYS = 28.0  # tipoff given this much history in place of a week (and refitting on as much)
# The causal reference, and the same with one of its powers taken away or weakened: what each is worth.
LATE_REVEAL_S = 300.0  # about when the metric window could tell a close finish or an overtime from the rest
REFERENCE_ABLATIONS: dict[str, Powers] = {
    "reference": Powers(),
    "reference-no-reveal": Powers(reveal=False),
    "reference-late-reveal": Powers(reveal_delay_s=LATE_REVEAL_S),
    # A close finish's climb is one game's: a regional game's sits inside the aggregate's noise, so a policy
    # reading the metric window may not tell it at all. Planned for until regulation ends, overtime seen late.
    "reference-no-close-reveal": Powers(close_reveal=False, reveal_delay_s=LATE_REVEAL_S),
    "reference-no-interest": Powers(learn_interests=False),
    # Knowing no finish's shape: every game at its average over the finishes drawn, planned and read so.
    "reference-average-finish": Powers(finishes=False),
}
LABELS = {
    "reference": "causal reference alone",
    "reference-no-reveal": "causal reference, planning each game's worst finish to its end",
    "reference-late-reveal": f"causal reference, seeing each finish {LATE_REVEAL_S / 60:g} minutes after it begins",
    "reference-no-close-reveal": (
        "causal reference, never told a close finish (planned for until regulation ends), seeing overtime "
        f"{LATE_REVEAL_S / 60:g} minutes late"
    ),
    "reference-no-interest": "causal reference, not learning each game's interest",
    "reference-average-finish": (
        "causal reference, knowing no finish's shape (each game at its average over close finishes and overtimes)"
    ),
    "tipoff": "tipoff",
    "told": "tipoff told the average traffic (baseline, expected game shapes)",
    "told-interest": "tipoff told the average traffic and each game's interest",
    "told-draws": "tipoff told the average traffic and each game's whole draw (interest, close finish, overtimes)",
    "long-history": f"tipoff learning from {LONG_HISTORY_DAYS / 7:g} weeks of history in place of one",
}
# Tipoff's model told how the traffic is made (`run_told`), more of it in each.
TOLD = ("told", "told-interest", "told-draws")
# The ways of giving tipoff's model more to go on than a week of history: told the average traffic or each
# game's interest, or shown more of it. `conclusion` asks whether any of them meets the target; the row told
# every draw, which no forecast could know, is read apart (`_told_draws`).
MORE_KNOWN = ("told", "told-interest", "long-history")
TIPOFF_ROWS = ("tipoff", *TOLD, "long-history")  # tipoff's own rows, in the table's order


class ReferenceForecastPolicy(LedgerPolicy):
    """Tipoff whose forecast rule reads the causal reference's plan (mean and sd of demand per step from each
    tick until replicas asked for then could serve) with headroom z."""

    def __init__(self, means: np.ndarray, sds: np.ndarray, z: float) -> None:
        super().__init__(None)
        self.means, self.sds, self.z = means, sds, z

    def start(self, ctx: ReplayContext) -> None:
        super().start(ctx)
        self._t0 = ctx.start.timestamp()
        self._delay_steps = int(ctx.service.provisioning_delay_s // ctx.step_s)

    def decide(self, obs: Observation) -> int:
        with mock.patch.object(rules, "prewarm", self._prewarm):
            return super().decide(obs)

    def _prewarm(self, inp: EngineInput, obs: Signals) -> tuple[RuleResult, dict[str, object]]:
        tick = min(max(round((inp.now.timestamp() - self._t0) / inp.service.tick_s), 0), len(self.means) - 1)
        mean, wanted = self.means[tick], self.means[tick] + self.z * self.sds[tick]
        far = float(wanted[self._delay_steps :].max())
        needed = rules.size_for(far, inp)
        keep = min(inp.provisioned, rules.size_for(float(wanted[: self._delay_steps + 1].max()), inp))
        forecast_replicas = rules.size_for(float(mean[self._delay_steps :].max()), inp)
        at = (inp.now + timedelta(seconds=inp.service.provisioning_delay_s)).isoformat()
        inputs: dict[str, object] = {
            "forecast_at": at,
            "forecast_rps": round(far, 3),
            "forecast_replicas": forecast_replicas,
            "headroom_replicas": needed - forecast_replicas,
            "reference_z": self.z,
        }
        forecast = {"ts": at, "rps": round(far, 3), "replicas": needed, "predicted_rps": round(far, 3)}
        return RuleResult(rule="forecast", replicas=max(needed, keep), inputs=inputs), forecast


class ToldModelPolicy(LedgerPolicy):
    """Tipoff deciding on a given model of demand: never refit, so that it stays the one given."""

    def __init__(self, forecaster: Forecaster) -> None:
        super().__init__(None)
        self.forecaster = forecaster

    def start(self, ctx: ReplayContext) -> None:
        super().start(ctx)
        self.driver = EngineDriver(
            service=ctx.service, params=self.params, games=ctx.games, forecaster=self.forecaster, relearn_every_s=0
        )


class LongMemoryPolicy(LedgerPolicy):
    """Tipoff as it is, but refitting its model on LONG_HISTORY_DAYS of the past rather than a week."""

    def start(self, ctx: ReplayContext) -> None:
        super().start(ctx)
        self.driver.learn_window_s = LONG_HISTORY_DAYS * 86400.0


@dataclass(frozen=True)
class _Case:
    """A case's traces in a directory, and what the generator drew for the trace."""

    case: Case
    trace: Trace
    history: Trace
    games: Sequence[GameSpec]
    service: ServiceSpec
    drawn: Generated
    params: GenParams

    @classmethod
    def read(cls, case_name: str, directory: str) -> _Case:
        case = next(c for c in CASES if c.name == case_name)
        trace_path, history_path = trace_paths(case, Path(directory))
        trace, history = read_trace(trace_path), read_trace(history_path)
        games = read_schedule(SCHEDULE) if case.use_schedule else ()
        drawn, params = case_drawn(case, trace, games)
        return cls(case, trace, history, games, service_from_dict(dict(case.service)), drawn, params)

    def reference(self, powers: Powers) -> dict[str, float] | None:
        """What the causal reference with `powers` pays to reach the case's target on the trace
        (as `policies.causal_reference` does with all of them, on the draw this case already holds)."""
        model = serving_model(self.service)
        return model_reference(self.drawn, self.params, self.service, model, case_target(self.case)[0], powers=powers)

    def replayed(self, policy: LedgerPolicy) -> dict[str, Any]:
        """`policy` replayed on the trace: its scores and where its cost went."""
        run = replay(self.trace, self.service, policy, seed=SEED, games=self.games, history=self.history)
        return {
            "summary": summary_dict(run, score(run, self.games)),
            "cost_breakdown": cost_breakdown(run, policy.ledger),
        }


def run_told(case_name: str, directory: str, told: str = "told") -> dict[str, Any]:
    """Replay tipoff on the case's traces in `directory` with its model of demand told the generator's
    average traffic (`told`), and each game's drawn interest (`told-interest`) or whole draw (`told-draws`),
    tonight's and the history's."""
    c = _Case.read(case_name, directory)
    draws = _draws(c.case, history_drawn(c.case, c.history, c.games), c.drawn) if told != "told" else []
    interests = {d.game.game_id: d.interest for d in draws} if draws else None
    model = told_forecaster(
        c.params, c.history.series(), c.games, interests, draws=draws if told == "told-draws" else ()
    )
    return c.replayed(ToldModelPolicy(model))


def _draws(case: Case, history: Generated, trace: Generated) -> list[GameDraw]:
    """Each game's draw from the draw whose traffic it is in: the history's for a game tipping off before the
    trace starts, the trace's for the rest. Each covers the whole schedule, with its own seed, so a game's
    draw in the other one is not the one its traffic carried."""
    start = case.start.timestamp()
    return [*(d for d in history.draws if d.game.tip_s < start), *(d for d in trace.draws if d.game.tip_s >= start)]


def run_long_history(case_name: str, directory: str) -> dict[str, Any]:
    """Replay tipoff on the case's trace in `directory` given LONG_HISTORY_DAYS of history, drawn as the
    benchmark draws its week (`bench/policies.py`), and refitting on that much as it goes."""
    c = _Case.read(case_name, directory)
    long = history_of(c.case, c.games, LONG_HISTORY_DAYS)
    return replace(c, history=long).replayed(LongMemoryPolicy(None))


def run_swapped(case_name: str, directory: str, z: float) -> dict[str, Any]:
    """Replay tipoff with the reference's forecast at headroom `z` on the case's traces in `directory`."""
    c = _Case.read(case_name, directory)
    return c.replayed(ReferenceForecastPolicy(*plans(c.drawn, c.params, c.service), z))


def _job(kind: str, case_name: str, directory: str, z: float | None) -> dict[str, Any]:
    if kind == "tipoff":
        result = run_case(case_name, "tipoff", directory)
    elif kind in REFERENCE_ABLATIONS:
        result = {"reference": _Case.read(case_name, directory).reference(REFERENCE_ABLATIONS[kind])}
    elif kind in TOLD:
        result = run_told(case_name, directory, kind)
    elif kind == "long-history":
        result = run_long_history(case_name, directory)
    else:
        assert z is not None
        result = run_swapped(case_name, directory, z)
    return {"kind": kind, "z": z, **result}


def conclusion(results: list[dict[str, Any]], least: float, most: float) -> str:
    """What the rows say, read from them: whether tipoff's own rules meet the target on the reference's
    forecast, and what its demand model's stages cost against the reference's."""
    own = next(r for r in results if r["kind"] == "tipoff")
    swapped = [r for r in results if r["kind"] == "swapped"]
    good = [r for r in swapped if r["summary"]["attainment"] >= least and r["summary"]["cost_ratio"] <= most]

    def model(r: dict[str, Any]) -> float:
        return float(r["cost_breakdown"]["forecast"] + r["cost_breakdown"]["headroom"])

    if not good:
        return (
            "On the reference's forecast, tipoff's own rules do not meet the target at any z tried: the rules "
            "(kept replicas, other rules, stability) stand in the way as well as the demand model."
        )
    best = min(good, key=lambda r: r["summary"]["cost_ratio"])
    s = best["summary"]
    first = (
        f"On the reference's forecast, tipoff's own rules meet the target (z {best['z']:g}: {s['attainment']:.5f} "
        f"at {s['cost_ratio']:.4f} ×), so what stands in the way is tipoff's model of demand: its forecast and "
        f"headroom stages cost {model(own):+.3f} of the oracle's replica-hours, the reference's {model(best):+.3f}."
    )
    told = [r for r in results if r["kind"] in MORE_KNOWN]
    if not told:
        return first
    reads = "; ".join(
        f"{LABELS[r['kind']].removeprefix('tipoff ')}, {r['summary']['attainment']:.5f} at "
        f"{r['summary']['cost_ratio']:.4f} × ({model(r):+.3f})"
        for r in told
    )
    if any(r["summary"]["attainment"] >= least and r["summary"]["cost_ratio"] <= most for r in told):
        second = f"Told or shown more of it, tipoff meets the target ({reads}): what it learns is what falls short."
    else:
        second = (
            f"Not what it learns, though: {reads}. With the average traffic given, even each game's interest, "
            "or more history, its forecast and headroom still cost well above the reference's. The rest lies in "
            "how it corrects the average for tonight (one ratio for all of tonight's demand) and covers its "
            "errors (headroom from the history's shortfalls, per phase of each game, weighed by its share), where "
            "the reference tracks each game's draw and plans for each close finish and overtime until it shows."
        )
    return "\n\n".join([first, second, *_told_draws(results, least, most), *_ablations(results)])


def _told_draws(results: list[dict[str, Any]], least: float, most: float) -> list[str]:
    """What the row told each game's whole draw says: whether, with nothing left to learn but the noise,
    tipoff's forecast rule meets the target (read after `conclusion` has found whether the same rules meet it
    on the reference's plan)."""
    row = next((r for r in results if r["kind"] == "told-draws"), None)
    if row is None:
        return []
    s, shares = row["summary"], row["cost_breakdown"]
    told = (
        "Told each game's whole draw as well (interest, close finish, overtimes: the traffic but for its noise), "
        f"{s['attainment']:.5f} at {s['cost_ratio']:.4f} × ({shares['forecast'] + shares['headroom']:+.3f})"
    )
    if s["attainment"] >= least and s["cost_ratio"] <= most:
        return [f"{told}, tipoff meets the target: with its model of demand right, its forecast rule would do."]
    return [
        f"{told}, tipoff still misses the target. So part of the gap lies in how its forecast rule reads a model "
        "of demand (one ratio for tonight, headroom from the history's shortfall quantiles), whatever the model "
        "knows: with every draw told, only that reading and the rules after it remain."
    ]


def _ablations(results: list[dict[str, Any]]) -> list[str]:
    """What the reference's ablation rows say each of its powers is worth, against the reference itself."""
    found = {r["kind"]: r["reference"] for r in results if r["kind"] in REFERENCE_ABLATIONS}
    whole = found.get("reference")
    if whole is None:
        return []
    parts = [
        f"{LABELS[kind].removeprefix('causal reference, ')}: "
        + (
            f"{ref['cost_ratio']:.4f} × ({ref['cost_ratio'] - whole['cost_ratio']:+.3f})"
            if ref is not None
            else f"no headroom up to {REFERENCE_Z[-1]:g} sd reaches the target"
        )
        for kind, ref in found.items()
        if kind != "reference"
    ]
    if not parts:
        return []
    return [
        f"What each of the reference's powers is worth, as the cost it reaches the target at without it, or "
        f"with it weakened (against its {whole['cost_ratio']:.4f} ×): " + "; ".join(parts) + "."
    ]


def render(case_name: str, results: list[dict[str, Any]], *, wall_s: float, workers: int) -> str:
    case = next(c for c in CASES if c.name == case_name)
    least, most = case_target(case)

    def meets(att: float, cost: float) -> str:
        return "yes" if att >= least and cost <= most else "no"

    lines = [
        "# Where tipoff's cost gap lies",
        "",
        f"`.venv/bin/python bench/gap.py --case {case_name}`: {case.title}, the same traces, history and seed as",
        "[RESULTS.md](RESULTS.md). Target: "
        f"≥ {least:.1%} within the SLO at ≤ {most:g} × the oracle. Rows: tipoff as it is; the causal reference",
        "alone (`scaling/sim/reference.py`, told how the traffic is made, learning tonight's draws from the metric",
        "window), and again without one of its powers at a time (each game's finish revealed as it shows, or",
        f"only {LATE_REVEAL_S / 60:g} minutes after it begins, or a close finish never revealed before regulation",
        "ends, or no finish's shape known at all; each game's interest learned); tipoff with only its",
        "forecast rule swapped for one reading the reference's",
        "plan (mean + z·sd of demand), every other rule and stabilizer its own; and tipoff as it is, its model",
        "of demand told the generator's average traffic in place of what it learns (`scaling/sim/told.py`: the",
        "baseline as drawn, each tier's expected game shape; then each game's drawn interest as well; then each",
        "game's whole draw: its interest, close finish and overtimes, so that only the noise is unknown), never",
        "refit, its headroom calibrated on the same history; and tipoff given "
        f"{LONG_HISTORY_DAYS / 7:g} weeks of history in place of one, refitting on as much as it goes. **Shares**",
        "split the cost above the oracle's bound",
        "between the stages of every decision, as in RESULTS.md (`cost_breakdown`).",
        "",
        "| row | attainment | cost ratio | meets | forecast | headroom | kept | other rules | stability |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    order = [*TIPOFF_ROWS, *REFERENCE_ABLATIONS, "swapped"]
    for r in sorted(results, key=lambda r: (order.index(r["kind"]), r["z"] or 0.0)):
        if r["kind"] in REFERENCE_ABLATIONS:
            ref, label = r["reference"], LABELS[r["kind"]]
            if ref is None:
                lines.append(f"| {label} | did not reach the target | | no | | | | | |")
            else:
                lines.append(
                    f"| {label} (z {ref['z']:g}) | {ref['attainment']:.5f} | {ref['cost_ratio']:.4f} | "
                    f"{meets(ref['attainment'], ref['cost_ratio'])} | | | | | |"
                )
            continue
        s, shares = r["summary"], r["cost_breakdown"]
        label = LABELS.get(r["kind"]) or f"tipoff's rules on the reference's forecast, z {r['z']:g}"
        lines.append(
            f"| {label} | {s['attainment']:.5f} | {s['cost_ratio']:.4f} | {meets(s['attainment'], s['cost_ratio'])} | "
            + " | ".join(f"{shares[k]:+.3f}" for k in ("forecast", "headroom", "kept", "other rules", "stability"))
            + " |"
        )
    lines += ["", conclusion(results, least, most)]
    lines += ["", *machine_and_time(len(results), "jobs", workers, wall_s)]
    return "\n".join(lines)


def main() -> None:
    parser = script_parser(__doc__)
    parser.add_argument("--case", default="slow-provisioning", choices=[c.name for c in CASES])
    parser.add_argument("--out", default=str(ROOT / "bench" / "GAP.md"))
    args = parser.parse_args()
    began = time.perf_counter()
    with case_traces([c for c in CASES if c.name == args.case], args.traces) as directory:
        jobs: list[tuple[str, float | None]] = [(kind, None) for kind in TIPOFF_ROWS]
        jobs += [(kind, None) for kind in REFERENCE_ABLATIONS]
        jobs += [("swapped", z) for z in Z]
        with ProcessPoolExecutor(max_workers=args.workers) as pool:
            futures = [pool.submit(_job, kind, args.case, str(directory), z) for kind, z in jobs]
            results = [f.result() for f in futures]
    wall_s = time.perf_counter() - began
    Path(args.out).write_text(render(args.case, results, wall_s=wall_s, workers=args.workers))
    print(Path(args.out).read_text())


if __name__ == "__main__":
    main()
