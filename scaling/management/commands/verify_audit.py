from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from scaling.audit import verify_and_record, verify_archive_file


class Command(BaseCommand):
    help = "Recompute the audit hash chain and name the first broken link (exit 1 when broken)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--archive", type=Path, help="verify an archive file written by archive_audit instead")
        parser.add_argument(
            "--incremental", action="store_true", help="start where the last good verification ended (default: all)"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["archive"]:
            path: Path = options["archive"]
            if not path.is_file():
                raise CommandError(f"{path}: no such archive file")
            try:
                report = verify_archive_file(path)
            except OSError as exc:
                raise CommandError(f"{path}: cannot read: {exc.strerror or exc}") from None
            if not report.ok:
                raise CommandError(f"audit archive BROKEN: {report.message}")
            self.stdout.write(report.message)
            return
        result = verify_and_record(full=not options["incremental"])
        if not result.ok:
            raise CommandError(f"audit chain BROKEN at event #{result.first_broken_id}: {result.message}")
        self.stdout.write(result.message)
