"""Would tracking each game's interest tonight beat tipoff's one ratio? A probe of the learned model.

    .venv/bin/python bench/pergame.py [--case NAME ...] [--traces DIR]

GAP.md shows what learning each game's interest is worth to the causal reference (`scaling/sim/reference.py`):
without it the reference pays +0.247 of the oracle's replica-hours more on slow provisioning. But the reference
is told every game's shape exactly, its close finish and overtimes included. This probe asks the same question
of the model tipoff learns. It fits `Forecaster` on the case's week of history as tipoff does, then walks the
case's trace a minute at a time and, from the same metric windows (60 s, the case's metric lag behind the
tick), forecasts the demand a provisioning delay and a tick ahead two ways:

- **one ratio**: the model's forecast × observed / forecast over the last window, as `rules.forecast_ratio`
  corrects it (without its trend);
- **per game**: the level of the baseline and of each live game (its interest, relative to its tier's profile)
  by ridge regression on the window means of the last `--window-min` minutes, each pulled toward 1 (prior sd
  0.15 for the baseline, 0.3 for a game, about the generator's interest σ 0.25); each window weighs as 2 × the
  generator's noise σ of its level, since the noise is correlated from one minute to the next; each level held to
  [0.2, 5], as the one ratio is held to [0.6, 5]; times the last
  window's residual ratio, decaying by ρ a minute ahead (ρ 1: held, as the one ratio is; 0.9: the
  generator's own correlation).

It tabulates the relative error (served / forecast − 1): its sd, and its 99th percentile over all and by the
phase of the game leading then; and **planned / served**: each forecast plus its phase's 99th-percentile error
(the headroom tipoff's `surprise` table would give it, calibrated here on the trace itself, which flatters
both rows alike) over the demand served. Not a replay: no rule, bound or fleet is involved. Writes
bench/PERGAME.md.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from policies import CASES, SCHEDULE, Case, cpu_model, history_of, trace_of  # noqa: E402

from scaling.policy.forecast import (  # noqa: E402
    PROFILE_START_MIN,
    SURPRISE_BUCKET_MIN,
    SURPRISE_BUCKETS,
    SURPRISE_QUANTILE,
    Forecaster,
    profile_value,
)
from scaling.policy.types import GameSpec  # noqa: E402
from scaling.sim.gentrace import GenParams  # noqa: E402
from scaling.sim.inputs import read_schedule, service_from_dict  # noqa: E402

WINDOW_S = 60.0
PRIOR_SD_BASELINE = 0.15
PRIOR_SD_GAME = 0.3
LEVEL_RANGE = (0.2, 5.0)  # a level the regression puts outside is clipped (one ratio is held to [0.6, 5])
NOISE_WEIGHT = 2.0  # × the generator's noise σ: the windows' errors are correlated, so each tells less
DEFAULT_CASES = ("slow-provisioning", "regular-week")
# Phases by minutes from the leading game's tip: [start, end) of each row
PHASES = (
    ("pre-game (−120 to −5 min)", PROFILE_START_MIN, -5.0),
    ("tipping off (−5 to 15 min)", -5.0, 15.0),
    ("in game (15 to 110 min)", 15.0, 110.0),
    ("finish (110 min on)", 110.0, 240.0),
)


@dataclass(frozen=True)
class Errors:
    name: str
    errors: np.ndarray  # served / forecast − 1, per forecast
    served: np.ndarray
    phase: np.ndarray  # surprise bucket of the leading game at the forecast's instant


def _epochs_to_datetimes(start_s: float, step_s: float, n: int) -> list[datetime]:
    return [datetime.fromtimestamp(start_s + i * step_s, UTC) for i in range(n)]


def probe(case: Case, games: Sequence[GameSpec], window_min: float, rhos: Sequence[float]) -> list[Errors]:
    """Both forecasts over the case's trace, once a minute; per game once per ρ."""
    history = history_of(case, games)
    trace = trace_of(case, games)
    service = service_from_dict(dict(case.service))
    model = Forecaster.fit(
        _epochs_to_datetimes(history.start_epoch_s, history.step_s, history.steps), list(history.rps), games
    )
    step, n = float(trace.step_s), trace.steps
    epoch = trace.start_epoch_s + step * np.arange(n)
    near = [g for g in games if epoch[0] - 6 * 3600 < g.tip_s < epoch[-1] + 3 * 3600]
    prepared = model.prepare(near)
    total = np.array([model.predict_epoch(float(t), prepared) for t in epoch])
    base = np.array([model.predict_epoch(float(t), []) for t in epoch])
    each = np.array([[profile_value(tip, profile, float(t)) for t in epoch] for tip, profile in prepared])
    each = each.reshape(len(prepared), n)
    summed = each.sum(axis=0)
    # The overlap factor scales all live games alike: fold it into each game's part.
    each = each * np.where(summed > 1e-9, (total - base) / np.maximum(summed, 1e-9), 1.0)
    phase = model._phases(epoch, near)
    served = trace.rps

    def means(series: np.ndarray) -> np.ndarray:  # window means ending at each step (sum over [i - w, i))
        return np.concatenate([[0.0], np.cumsum(series, axis=-1)])

    w = round(WINDOW_S / step)
    lag = round(service.metrics_lag_s / step)
    ahead = round((service.provisioning_delay_s + service.tick_s) / step)
    rows = round(window_min * 60.0 / step)
    c_served, c_total, c_base = means(served), means(total), means(base)
    c_each = np.concatenate([np.zeros((len(prepared), 1)), np.cumsum(each, axis=1)], axis=1)
    sigma = GenParams().noise_sigma * NOISE_WEIGHT
    at, ratio_forecast, level_forecast, residual, ahead_min = [], [], [], [], []
    for i in range(rows + w + lag, n - ahead, round(60.0 / step)):
        hi = i - lag
        target = i + ahead
        ratio = np.clip((c_served[hi] - c_served[hi - w]) / max(c_total[hi] - c_total[hi - w], 1e-9), 0.6, 5.0)
        ends = np.arange(hi - rows + w, hi + 1, w)
        observed = (c_served[ends] - c_served[ends - w]) / w
        parts = (c_each[:, ends] - c_each[:, ends - w]) / w
        live = np.flatnonzero((parts.max(axis=1) > 1e-6) | (each[:, target] > 1e-6))
        design = np.column_stack([(c_base[ends] - c_base[ends - w]) / w, *parts[live]])
        weight = 1.0 / (sigma * np.maximum(observed, 1.0))
        a = design * weight[:, None]
        prior = np.array([PRIOR_SD_BASELINE, *[PRIOR_SD_GAME] * len(live)]) ** -2.0
        levels = 1.0 + np.linalg.solve(a.T @ a + np.diag(prior), a.T @ ((observed - design.sum(axis=1)) * weight))
        levels = np.clip(levels, *LEVEL_RANGE)
        fitted = float(design[-1] @ levels)
        at.append(target)
        ratio_forecast.append(total[target] * ratio)
        level_forecast.append(levels[0] * base[target] + float(levels[1:] @ each[live, target]))
        residual.append(observed[-1] / fitted if fitted > 0 else 1.0)
        ahead_min.append((target - (hi - w / 2.0)) * step / 60.0)
    idx = np.array(at)
    out = [Errors("one ratio", served[idx] / np.array(ratio_forecast) - 1.0, served[idx], phase[idx])]
    for rho in rhos:
        forecast = np.array(level_forecast) * np.array(residual) ** (rho ** np.array(ahead_min))
        out.append(Errors(f"per game, ρ {rho:g}", served[idx] / forecast - 1.0, served[idx], phase[idx]))
    return out


def _quantile(errors: np.ndarray) -> float:
    return float(np.quantile(errors, SURPRISE_QUANTILE)) if errors.size else float("nan")


def planned_over_served(e: Errors) -> float:
    """Σ forecast × (1 + its phase's quantile error) over Σ served: the headroom rule's cost for this forecast."""
    overall = _quantile(e.errors)
    by_phase = np.array(
        [
            _quantile(e.errors[e.phase == b]) if np.count_nonzero(e.phase == b) >= 20 else overall
            for b in range(SURPRISE_BUCKETS + 1)
        ]
    )
    forecast = e.served / (1.0 + e.errors)
    return float(np.sum(forecast * (1.0 + np.maximum(by_phase[e.phase], 0.0))) / np.sum(e.served))


def _phase_mask(phase: np.ndarray, lo_min: float, hi_min: float) -> np.ndarray:
    lo = round((lo_min - PROFILE_START_MIN) / SURPRISE_BUCKET_MIN)
    hi = round((hi_min - PROFILE_START_MIN) / SURPRISE_BUCKET_MIN)
    return (phase >= lo) & (phase < hi)


def table(results: list[Errors]) -> list[str]:
    heads = ["forecast", "error sd", "q99 all", *[f"q99 {label}" for label, _, _ in PHASES], "q99 no game"]
    lines = ["| " + " | ".join([*heads, "planned / served"]) + " |", "|" + "---|" * (len(heads) + 1)]
    for e in results:
        cells = [e.name, f"{e.errors.std():.4f}", f"{_quantile(e.errors):.4f}"]
        cells += [f"{_quantile(e.errors[_phase_mask(e.phase, lo, hi)]):.4f}" for _, lo, hi in PHASES]
        cells += [f"{_quantile(e.errors[e.phase == SURPRISE_BUCKETS]):.4f}", f"{planned_over_served(e):.4f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def main(argv: Sequence[str] | None = None) -> None:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--case", action="append", choices=[c.name for c in CASES])
    parser.add_argument("--window-min", type=float, default=90.0)
    parser.add_argument("--results", default=str(ROOT / "bench" / "PERGAME.md"))
    args = parser.parse_args(argv)
    games = read_schedule(SCHEDULE)
    started = time.perf_counter()
    out = [
        "# Tracking each game's interest on the learned model: a probe",
        "",
        "`.venv/bin/python bench/pergame.py`: tipoff's model, fitted on each case's week of history as tipoff fits it,",
        "forecasts the case's trace once a minute, a provisioning delay and a tick ahead, corrected for tonight two",
        "ways from the same metric windows: by one ratio (observed / forecast over the last window, as",
        "`rules.forecast_ratio` without its trend), or per game (the baseline's and each live game's level by ridge",
        "regression on the recent window means, toward 1, times the last residual decaying by ρ a minute). See the",
        "script's docstring for the details. Not a replay: no rule, bound or fleet is involved.",
        "",
        "**Planned / served** is each forecast plus its phase's 99th-percentile error (the headroom tipoff's",
        "`surprise` table would give it; calibrated here on the trace itself, which flatters every row alike) over",
        "the demand served: the cost of the forecast and headroom stages, before sizing and the fleet.",
        "",
        f"Per game reads the last {args.window_min:g} minutes of window means. Errors are served / forecast − 1;",
        "q99 is their 99th percentile (tipoff's `SURPRISE_QUANTILE`), by the leading game's phase.",
        "",
    ]
    for name in args.case or DEFAULT_CASES:
        case = next(c for c in CASES if c.name == name)
        service = service_from_dict(dict(case.service))
        horizon = service.provisioning_delay_s + service.tick_s
        out += [f"## {case.title}", "", f"Forecast {horizon:g} s past the tick, from a window ending "]
        out[-1] += f"{service.metrics_lag_s:g} s before it."
        out += ["", *table(probe(case, games, args.window_min, (1.0, 0.9))), ""]
    out += [
        "## Machine and time",
        "",
        f"- CPU: {cpu_model()}; one process, {time.perf_counter() - started:.1f} s wall.",
        "",
    ]
    Path(args.results).write_text("\n".join(out), encoding="utf-8")
    print("\n".join(out))


if __name__ == "__main__":
    main()
