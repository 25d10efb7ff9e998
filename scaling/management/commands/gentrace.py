"""`manage.py gentrace`: write a synthetic game-night trace (shape: scaling/sim/gentrace.py)."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from django.core.management.base import BaseCommand, CommandError, CommandParser

from scaling.sim.cli import check_output, write_atomically
from scaling.sim.gentrace import GenParams, generate
from scaling.sim.inputs import read_schedule
from scaling.sim.trace import MAX_STEP_S, MIN_STEP_S, trace_csv

# A year: a longer trace is a typo whose arrays would take gigabytes.
MAX_DAYS = 366


def _utc(value: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value)
        return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    except (ValueError, OverflowError):
        raise CommandError(f"--start {value!r} is not an ISO-8601 date or timestamp") from None


class Command(BaseCommand):
    help = "Generate a request-rate trace (ts,rps) from the game schedule: diurnal baseline plus game nights."
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        defaults = GenParams()
        parser.add_argument("--start", required=True, help="UTC start, e.g. 2026-01-12T05:00:00Z")
        parser.add_argument("--days", type=float, default=7.0, help=f"how long (above 0, at most {MAX_DAYS})")
        parser.add_argument("--step", type=int, default=10, help="seconds per row (1..60)")
        parser.add_argument("--schedule", help="league schedule CSV; without it the trace is diurnal only")
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--spikes", type=int, default=0, help="unscheduled spikes (traffic x3 within a minute)")
        parser.add_argument("--base-rps", type=float, default=defaults.base_rps)
        parser.add_argument("--per-game-rps", type=float, default=defaults.per_game_rps)
        parser.add_argument("--national-multiple", type=float, default=defaults.national_multiple)
        parser.add_argument("--out", required=True, help="CSV file to write")

    def handle(self, *args: Any, **options: Any) -> None:
        step, days = options["step"], options["days"]
        if not MIN_STEP_S <= step <= MAX_STEP_S:
            raise CommandError(f"--step must be between {MIN_STEP_S} and {MAX_STEP_S} seconds")
        if not (math.isfinite(days) and 0 < days <= MAX_DAYS):
            raise CommandError(f"--days {days}: must be above 0 and at most {MAX_DAYS}")
        for key in ("seed", "spikes", "base_rps", "per_game_rps", "national_multiple"):
            if not (math.isfinite(options[key]) and options[key] >= 0):
                raise CommandError(f"--{key.replace('_', '-')} {options[key]}: must be a finite number >= 0")
        # The generator's row count; a trace needs two rows to define its step (SERVING_MODEL.md).
        if round(days * 86400 / step) < 2:
            raise CommandError(f"--days {days} holds fewer than two {step} s steps")
        start = _utc(options["start"])
        if start > datetime.max.replace(tzinfo=UTC) - timedelta(days=days):
            raise CommandError(f"--start {options['start']} with --days {days} runs past the year 9999")
        try:
            check_output(options["out"], "--out")
            games = read_schedule(options["schedule"]) if options["schedule"] else ()
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        params = GenParams(
            base_rps=options["base_rps"],
            per_game_rps=options["per_game_rps"],
            national_multiple=options["national_multiple"],
            spikes=options["spikes"],
            use_schedule=bool(games),
        )
        with np.errstate(over="ignore"):  # reported below, naming the options
            trace = generate(start, days, step_s=step, games=games, params=params, seed=options["seed"])
        if not np.isfinite(trace.rps).all():
            raise CommandError("the rates overflow: lower --base-rps, --per-game-rps or --national-multiple")
        write_atomically(options["out"], trace_csv(trace))
        self.stdout.write(
            f"wrote {trace.steps} rows to {options['out']}: {trace.start:%Y-%m-%d %H:%M} UTC, step {trace.step_s} s, "
            f"peak {float(trace.rps.max()):,.0f} rps"
        )
