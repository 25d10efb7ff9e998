"""The periodic schedule refresh and the command read the league feed from a URL (a local server here)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import time_machine
from django.core.management import call_command

from scaling import tasks
from scaling.audit import EventType
from scaling.models import AuditEvent, Game

pytestmark = pytest.mark.django_db

FIXTURES = Path(__file__).parent / "fixtures"
# The feed's 2025-26 games are imported at a fixed date in their season: at the real clock's, the import would
# refuse them from December 2028 on, as more than 3 years before today.
NOW = datetime(2026, 1, 10, tzinfo=UTC)


@pytest.fixture
def frozen() -> Iterator[object]:
    """The clock at NOW, for the task and the command, which read it."""
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        pass


@pytest.fixture
def feed_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_Quiet, directory=str(FIXTURES)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/league_schedule.json"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.usefixtures("frozen")
def test_the_periodic_task_imports_from_the_configured_url(feed_url: str, settings: Any) -> None:
    settings.SCHEDULE_URL = feed_url
    assert tasks.refresh_schedule() == "ok"
    assert Game.objects.count() == 4
    assert tasks.refresh_schedule() == "ok"  # idempotent
    events = AuditEvent.objects.filter(event_type=EventType.SCHEDULE_IMPORTED).order_by("id")
    assert [(e.after or {})["created"] for e in events] == [4, 0]
    assert "schedule" in tasks.beat_schedule()["refresh_schedule"]


def test_the_task_is_off_without_a_url_and_reports_a_bad_feed(settings: Any) -> None:
    settings.SCHEDULE_URL = ""
    assert tasks.refresh_schedule() == "off"
    settings.SCHEDULE_URL = "http://127.0.0.1:9/nothing-listens-here.json"
    assert tasks.refresh_schedule() == "error"
    assert not Game.objects.exists()


@pytest.mark.usefixtures("frozen")
def test_the_command_accepts_a_url(feed_url: str) -> None:
    call_command("import_schedule", feed_url)
    assert Game.objects.get(game_id="0022500450").label == "NBA Christmas Day"
