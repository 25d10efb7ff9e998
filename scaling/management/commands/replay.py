"""`manage.py replay`: score a policy on a trace (SERVING_MODEL.md, "Replay contract").

Needs no database, broker or network: it reads files, runs the pure simulator
and the same engine as the live controller, and writes files.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from scaling.sim.cli import check_output, load_inputs, run_replay, write_outputs
from scaling.sim.policies import BUILTIN
from scaling.sim.score import scores_table


class Command(BaseCommand):
    help = "Replay a request-rate trace against a scaling policy and score SLO attainment and cost."
    requires_system_checks: list[str] = []  # no database: nothing to check

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--trace", required=True, help="CSV with header ts,rps (fixed step 1..60 s, UTC)")
        parser.add_argument("--schedule", help="league schedule CSV (game_id, tip_utc, ..., national_tv)")
        parser.add_argument("--history", help="an earlier trace the policy may learn from before the run")
        parser.add_argument("--service", help="service JSON (SERVING_MODEL.md keys; all optional)")
        parser.add_argument(
            "--policy",
            default="tipoff",
            help=f"built-in policy ({', '.join(BUILTIN)}) or a policy JSON file / inline JSON object",
        )
        parser.add_argument("--seed", type=int, default=0, help="seed of the observed-arrivals noise")
        parser.add_argument("--out", help="write one row per step: ts,rps,desired,provisioned,ready,attainment")
        parser.add_argument("--summary", help="write the scores, policy, seed and service as JSON")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            for key in ("out", "summary"):
                if options[key]:
                    check_output(options[key], f"--{key}")
            inputs = load_inputs(
                trace=options["trace"],
                schedule=options["schedule"],
                history=options["history"],
                service=options["service"],
                policy=options["policy"],
                seed=options["seed"],
            )
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        run, scores, summary = run_replay(inputs)
        write_outputs(run, summary, out=options["out"], summary_path=options["summary"])
        self.stdout.write(scores_table(run.policy, scores), ending="")
