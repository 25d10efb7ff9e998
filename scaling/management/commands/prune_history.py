from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from scaling.audit import Actor
from scaling.retention import BATCH_ROWS, PruneResult, history_prune, history_to_prune


class Command(BaseCommand):
    help = (
        "Delete the metric samples older than METRIC_RETENTION_DAYS and the decisions older than "
        "DECISION_RETENTION_DAYS, as the hourly prune_history task does, in batches; the prune is an audit event. "
        "Audit events are not touched (see archive_audit)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--dry-run", action="store_true", help="print what would be deleted, and delete nothing")
        parser.add_argument(
            "--time-budget-s",
            type=float,
            default=None,
            help="stop deleting after this many seconds, leaving the rest for the next run (default: run until done)",
        )
        parser.add_argument("--operator", default="", help="who runs the prune (recorded in the audit log)")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["time_budget_s"] is not None and options["time_budget_s"] <= 0:
            raise CommandError("--time-budget-s must be more than 0")
        now = timezone.now()
        if options["dry_run"]:
            self._report(history_to_prune(now=now), "would delete")
            return
        identity = f"prune_history:{options['operator']}" if options["operator"] else "prune_history"
        result = history_prune(
            actor=Actor.system(identity), now=now, batch_rows=BATCH_ROWS, time_budget_s=options["time_budget_s"]
        )
        self._report(result, "deleted")
        if not result.finished:
            self.stdout.write("the time budget ran out: older rows are left; run it again to go on")

    def _report(self, result: PruneResult, verb: str) -> None:
        cutoffs = result.cutoffs
        self.stdout.write(
            f"metric samples before {cutoffs.samples_before.isoformat()} (METRIC_RETENTION_DAYS="
            f"{settings.METRIC_RETENTION_DAYS}), decisions before {cutoffs.decisions_before.isoformat()} "
            f"(DECISION_RETENTION_DAYS={settings.DECISION_RETENTION_DAYS})"
        )
        for name, counts in sorted(result.by_service.items()):
            self.stdout.write(f"  {name}: {verb} {counts.samples} samples, {counts.decisions} decisions")
        total = result.counts
        self.stdout.write(f"{verb} {total.samples} metric samples and {total.decisions} decisions in all")
