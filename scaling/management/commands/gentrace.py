"""`manage.py gentrace`: write a synthetic game-night trace (shape: scaling/sim/gentrace.py)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from scaling.sim.cli import write_atomically
from scaling.sim.gentrace import GenParams, generate
from scaling.sim.inputs import read_schedule
from scaling.sim.trace import trace_csv


def _utc(value: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise CommandError(f"--start {value!r} is not an ISO-8601 date or timestamp") from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


class Command(BaseCommand):
    help = "Generate a request-rate trace (ts,rps) from the game schedule: diurnal baseline plus game nights."
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        defaults = GenParams()
        parser.add_argument("--start", required=True, help="UTC start, e.g. 2026-01-12T05:00:00Z")
        parser.add_argument("--days", type=float, default=7.0)
        parser.add_argument("--step", type=int, default=10, help="seconds per row (1..60)")
        parser.add_argument("--schedule", help="league schedule CSV; without it the trace is diurnal only")
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--spikes", type=int, default=0, help="unscheduled spikes (traffic x3 within a minute)")
        parser.add_argument("--base-rps", type=float, default=defaults.base_rps)
        parser.add_argument("--per-game-rps", type=float, default=defaults.per_game_rps)
        parser.add_argument("--national-multiple", type=float, default=defaults.national_multiple)
        parser.add_argument("--out", required=True, help="CSV file to write")

    def handle(self, *args: Any, **options: Any) -> None:
        if not 1 <= options["step"] <= 60:
            raise CommandError("--step must be between 1 and 60 seconds")
        if options["days"] <= 0:
            raise CommandError("--days must be positive")
        try:
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
        trace = generate(
            _utc(options["start"]),
            options["days"],
            step_s=options["step"],
            games=games,
            params=params,
            seed=options["seed"],
        )
        write_atomically(options["out"], trace_csv(trace))
        self.stdout.write(
            f"wrote {trace.steps} rows to {options['out']}: {trace.start:%Y-%m-%d %H:%M} UTC, step {trace.step_s} s, "
            f"peak {float(trace.rps.max()):,.0f} rps"
        )
