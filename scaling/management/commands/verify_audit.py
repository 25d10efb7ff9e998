from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from scaling.audit import BREAKS_LISTED, verify_and_record, verify_archive_file


class Command(BaseCommand):
    help = (
        f"Recompute the audit hash chain; when broken, say how many links are broken and name the first "
        f"{BREAKS_LISTED} (exit 1)."
    )

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
                for archived in report.breaks:
                    self.stderr.write(f"  {archived.reason}")
                if report.broken_count > len(report.breaks):
                    self.stderr.write(f"  ... and {report.broken_count - len(report.breaks)} more")
                raise CommandError(f"audit archive BROKEN: {report.message}")
            self.stdout.write(report.message)
            return
        result = verify_and_record(full=not options["incremental"])
        if not result.ok:
            # every broken link it named, then the count and the first in the error
            for broken in result.breaks:
                self.stderr.write(f"  {broken['reason']}")
            if result.broken_count > len(result.breaks):
                self.stderr.write(f"  ... and {result.broken_count - len(result.breaks)} more")
            raise CommandError(f"audit chain BROKEN at event #{result.first_broken_id}: {result.message}")
        self.stdout.write(result.message)
