"""The control loop through a real Celery worker and the real broker (not eager mode)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from config.celery import app
from scaling import tasks
from scaling.models import Decision, SimulatedFleet
from tests.factories import make_service
from tests.waiting import wait_until
from tests.workers import real_worker

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.celery]


@pytest.fixture
def worker() -> Iterator[None]:
    # The control queue only, as the Procfile's worker (what-if replays have a queue and worker of their own).
    with real_worker("celery", concurrency=2):
        yield


def test_the_beat_schedule_sends_tick_every_tick_seconds(settings: object) -> None:
    schedule = tasks.beat_schedule()
    assert schedule["tick"]["task"] == tasks.tick.name
    assert schedule["tick"]["schedule"] == float(settings.TICK_SECONDS)  # type: ignore[attr-defined]


def test_one_tick_goes_from_the_broker_to_an_actuated_decision(worker: None) -> None:
    busy = make_service("win-probability", replicas=2, demand_scale=40.0)
    quiet = make_service("game-summaries", replicas=2, demand_scale=0.1)
    # What beat does every TICK_SECONDS: send the tick task through the broker.
    app.send_task(tasks.beat_schedule()["tick"]["task"])
    wait_until(
        lambda: (
            Decision.objects.filter(service__in=[busy, quiet]).count() == 2
            and not Decision.objects.filter(actuation=Decision.Actuation.PENDING).exists()
        )
    )
    decision = Decision.objects.get(service=busy)
    assert decision.changed and decision.actuation == Decision.Actuation.OK
    assert decision.worker.startswith("celery@") or decision.worker
    assert len(SimulatedFleet.objects.get(service=busy).ready_at) == decision.desired


def test_a_real_beat_process_drives_ticks_to_actuated_decisions(worker: None, tmp_path: Path) -> None:
    service = make_service("live-odds", replicas=2, demand_scale=40.0)
    env = os.environ | {"TICK_SECONDS": "1"}
    beat = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "config",
            "beat",
            "--loglevel=WARNING",
            "--schedule",
            str(tmp_path / "beat-schedule"),
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        wait_until(
            lambda: Decision.objects.filter(service=service, actuation=Decision.Actuation.OK).exists(), timeout_s=60.0
        )
    finally:
        beat.terminate()
        beat.wait(timeout=20)
    assert len(SimulatedFleet.objects.get(service=service).ready_at) > 2
