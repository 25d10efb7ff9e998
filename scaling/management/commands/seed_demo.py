from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand

from scaling.demo import DEMO_USERS, seed_demo


class Command(BaseCommand):
    help = "Create the demo services, users and game calendar (idempotent)."

    def handle(self, *args: Any, **options: Any) -> None:
        summary = seed_demo(schedule_path=Path(settings.DEMO_SCHEDULE_PATH))
        self.stdout.write(
            f"demo ready: games created {summary.created}, updated {summary.updated}, unchanged {summary.unchanged}; "
            f"users: {', '.join(DEMO_USERS)}"
        )
