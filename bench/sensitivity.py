"""How tipoff's scores move when one policy parameter moves, in one run.

    .venv/bin/python bench/sensitivity.py [--workers N] [--traces DIR]

Each variant changes one parameter from its default (the JSON a service's policy stores) and replays
the benchmark's slow-provisioning, regular and spikes weeks exactly as `bench/policies.py` does (same
traces, history and seed). Writes bench/SENSITIVITY.md: per trace, each variant's attainment and cost
ratio against the trace's target, and where the cost goes (`cost_breakdown`). It answers a question
the results table cannot: whether a cheaper setting of the rules already there meets a target the
defaults miss, or whether every knob moves along the same attainment-for-cost line.
"""

from __future__ import annotations

import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from policies import (  # noqa: E402
    CASES,
    case_target,
    case_traces,
    machine_and_time,
    run_case,
    script_parser,
)

from scaling.policy.types import PolicyParams  # noqa: E402

RUN_CASES = ("slow-provisioning", "regular-week", "spikes-week")
DEFAULTS = PolicyParams()
VARIANTS: tuple[tuple[str, dict[str, Any]], ...] = (
    ("defaults", {}),
    ("learned headroom × 0.8", {"forecast_uncertainty": 0.8}),
    ("learned headroom × 0.9", {"forecast_uncertainty": 0.9}),
    ("learned headroom × 1.1", {"forecast_uncertainty": 1.1}),
    ("no look-ahead past the next tick", {"forecast_lookahead_s": 0.0}),
    ("no trend extrapolation", {"forecast_trend": 0.0}),
    ("scale-in window 0.1 × delay", {"stabilization_per_delay": 0.1}),
    ("scale-in window 30 s, whatever the delay", {"stabilization_per_delay": 0.0}),
    ("no scale-in hold while the rate climbs", {"scale_in_hold_rising": 0.0}),
    ("serving model sized for the SLO target", {"sizing_target": 0.999}),
)


def _job(case: str, label: str, params: dict[str, Any], directory: str) -> dict[str, Any]:
    result = run_case(case, "tipoff", directory, params)
    return {"case": case, "variant": label, "params": params, **result}


def render(results: list[dict[str, Any]], *, wall_s: float, workers: int) -> str:
    lines = [
        "# Sensitivity of tipoff to its policy parameters",
        "",
        "`.venv/bin/python bench/sensitivity.py`: each row changes one parameter from its default and replays",
        "the same traces, history and seed as [RESULTS.md](RESULTS.md). **Shares** split the cost above the",
        "oracle's bound between the stages of every decision, as under each table there (`cost_breakdown`).",
        "",
    ]
    for name in RUN_CASES:
        case = next(c for c in CASES if c.name == name)
        least, most = case_target(case)
        rows = [r for r in results if r["case"] == name]
        if not rows:
            continue
        lines += [
            f"## {name}: {case.title}",
            "",
            f"Target: ≥ {least:.1%} within the SLO at ≤ {most:g} × the oracle.",
            "",
            "| variant | parameter | attainment | cost ratio | meets | forecast | headroom | kept | stability |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for r in sorted(rows, key=lambda r: [v for v, _ in VARIANTS].index(r["variant"])):
            s, shares = r["summary"], r["cost_breakdown"]
            changed = ", ".join(f"`{k}` {getattr(DEFAULTS, k):g} → {v:g}" for k, v in r["params"].items())
            meets = "yes" if s["attainment"] >= least and s["cost_ratio"] <= most else "no"
            lines.append(
                f"| {r['variant']} | {changed or '—'} | {s['attainment']:.5f} | {s['cost_ratio']:.4f} | {meets} | "
                f"{shares['forecast']:+.3f} | {shares['headroom']:+.3f} | {shares['kept']:+.3f} | "
                f"{shares['stability']:+.3f} |"
            )
        passing = [r for r in rows if r["summary"]["attainment"] >= least]
        cheapest = min(passing, key=lambda r: r["summary"]["cost_ratio"]) if passing else None
        if cheapest is not None:
            lines += [
                "",
                f"Cheapest variant at ≥ {least:.1%}: {cheapest['variant']}, "
                f"{cheapest['summary']['attainment']:.5f} at {cheapest['summary']['cost_ratio']:.4f} ×.",
            ]
        lines.append("")
    lines += machine_and_time(len(results), "replays", workers, wall_s)
    return "\n".join(lines)


def main() -> None:
    parser = script_parser(__doc__)
    parser.add_argument("--out", default=str(ROOT / "bench" / "SENSITIVITY.md"))
    args = parser.parse_args()
    began = time.perf_counter()
    with case_traces([c for c in CASES if c.name in RUN_CASES], args.traces) as directory:
        jobs = [(case, label, params, str(directory)) for case in RUN_CASES for label, params in VARIANTS]
        with ProcessPoolExecutor(max_workers=args.workers) as pool:
            futures = [pool.submit(_job, *job) for job in jobs]
            results = []
            for future in futures:
                r = future.result()
                results.append(r)
                s = r["summary"]
                print(f"{r['case']:18s} {r['variant']:42s} {s['attainment']:.5f} {s['cost_ratio']:.4f}", flush=True)
    wall_s = time.perf_counter() - began
    Path(args.out).write_text(render(results, wall_s=wall_s, workers=args.workers))
    print(f"wrote {args.out} in {wall_s:.1f} s")


if __name__ == "__main__":
    main()
