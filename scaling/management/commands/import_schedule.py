from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from scaling.audit import Actor
from scaling.schedule.fetch import read_schedule_source
from scaling.schedule.parse import ScheduleError
from scaling.schedule.services import schedule_import


class Command(BaseCommand):
    help = (
        "Import the league schedule from a CSV file or the league's schedule feed JSON (format detected from "
        "content), by path or http(s) URL. Upserts by game id; a bad record imports nothing."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path_or_url")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            text, source = read_schedule_source(options["path_or_url"])
            summary = schedule_import(text=text, source=source, actor=Actor.system("import_schedule"))
        except ScheduleError as exc:
            raise CommandError(f"nothing imported: {exc}") from None
        counts = summary.as_dict()
        self.stdout.write(", ".join(f"{k.replace('_', ' ')} {v}" for k, v in counts.items()))
