from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from scaling.demo import DEMO_USERS, seed_demo
from scaling.schedule.parse import ScheduleError


class Command(BaseCommand):
    help = "Create the demo services, users and game calendar (idempotent)."

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            seeded = seed_demo(schedule_path=Path(settings.DEMO_SCHEDULE_PATH))
        except ScheduleError as exc:
            raise CommandError(f"nothing seeded: {exc} (the DEMO_SCHEDULE_PATH setting)") from None
        if seeded.games is None:
            calendar = f"calendar left alone: it holds {seeded.imported_games} imported games"
        else:
            summary = seeded.games
            calendar = f"games created {summary.created}, updated {summary.updated}, unchanged {summary.unchanged}"
        self.stdout.write(f"demo ready: {calendar}; users: {', '.join(DEMO_USERS)}")
