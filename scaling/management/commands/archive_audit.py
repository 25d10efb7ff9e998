from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from scaling.audit import Actor, AuditChainBroken, audit_archive


class Command(BaseCommand):
    help = (
        "Export audit events older than a cutoff to a JSON-lines file, then prune them from the database. "
        "The chain stays verifiable through a checkpoint; the archive itself is an audit event."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        when = parser.add_mutually_exclusive_group(required=True)
        when.add_argument("--older-than-days", type=int, help="archive events created more than this many days ago")
        when.add_argument("--before", help="archive events created before this ISO 8601 time (UTC if no offset)")
        parser.add_argument(
            "--out-dir",
            type=Path,
            default=Path(settings.VAR_DIR) / "audit-archive",
            help="where to write the archive file (default: $TIPOFF_VAR_DIR/audit-archive)",
        )
        parser.add_argument("--operator", default="", help="who runs the archive (recorded in the audit log)")

    def handle(self, *args: Any, **options: Any) -> None:
        now = timezone.now()
        if options["before"]:
            try:
                before = datetime.fromisoformat(options["before"])
            except ValueError:
                raise CommandError(f"--before={options['before']!r} is not an ISO 8601 time") from None
            if timezone.is_naive(before):
                before = before.replace(tzinfo=UTC)
        else:
            days = options["older_than_days"]
            if days < 0:
                raise CommandError("--older-than-days must be 0 or more")
            try:
                before = now - timedelta(days=days)
            except OverflowError:
                raise CommandError(f"--older-than-days {days} reaches back before the year 1") from None
        out_dir: Path = options["out_dir"]
        if out_dir.exists() and not out_dir.is_dir():
            raise CommandError(f"--out-dir {out_dir}: not a directory")
        identity = f"archive_audit:{options['operator']}" if options["operator"] else "archive_audit"
        try:
            result = audit_archive(actor=Actor.system(identity), before=before, out_dir=out_dir, now=now)
        except AuditChainBroken as exc:
            raise CommandError(f"refusing to archive a broken chain: {exc}") from None
        except OSError as exc:  # the transaction rolled back: nothing was pruned
            raise CommandError(f"--out-dir {out_dir}: cannot write the archive: {exc.strerror or exc}") from None
        if result is None:
            self.stdout.write(f"nothing to archive before {before.isoformat()}")
            return
        self.stdout.write(
            f"archived {result.event_count} events (through #{result.through_event_id}) to {result.path} "
            f"sha256={result.sha256}"
        )
