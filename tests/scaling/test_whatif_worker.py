"""What-if runs go through the broker to real Celery workers, not the web request: the replay to the what-if
queue's worker, writing its state to the database, and the periodic pruning to the control queue's."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from django.utils import timezone

from config.celery import app
from scaling import tasks
from scaling.models import MetricSample, WhatIfRun
from scaling.whatif import RUNS_KEPT_DAYS, WhatIfRequest, whatif_start
from tests.factories import make_service, make_user, make_whatif_run
from tests.waiting import wait_until
from tests.workers import real_worker

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.celery, pytest.mark.usefixtures("whatif_slots_free")]


@pytest.fixture
def worker() -> Iterator[None]:
    # Only the what-if queue, as the what-if worker of the Procfile: the run must be routed there.
    with real_worker("whatif"):
        yield


@pytest.fixture
def control_worker() -> Iterator[None]:
    with real_worker("celery"):
        yield


def test_a_whatif_job_goes_through_the_broker_to_a_result(worker: None) -> None:
    service = make_service("win-probability")
    now = timezone.now()
    MetricSample.objects.bulk_create(
        MetricSample(service=service, ts=now - timedelta(seconds=15 * (240 - i)), rps=450.0, provisioned=5, ready=5)
        for i in range(240)
    )
    request = WhatIfRequest(service_id=service.pk, start=now - timedelta(hours=1), end=now, policy="hpa")
    job_id = whatif_start(request, user_id=make_user().pk)
    run = WhatIfRun.objects.filter(pk=job_id)
    wait_until(lambda: run.filter(status__in=("done", "failed")).exists(), timeout_s=60.0, interval_s=0.2)
    done = run.get()
    assert done.status == "done", done.error
    assert done.started_at is not None and done.finished_at is not None and done.started_at <= done.finished_at
    assert done.result is not None and done.result["policy"] == "hpa"
    assert done.result["actual"]["replica_hours"] == pytest.approx(5 * 240 * 15 / 3600, rel=0.01)


def test_the_beat_task_prunes_runs_through_the_broker(control_worker: None) -> None:
    service = make_service("win-probability")
    now = timezone.now()
    make_whatif_run(service, created_at=now - timedelta(days=RUNS_KEPT_DAYS, minutes=5), status="done")
    young = make_whatif_run(service, created_at=now - timedelta(days=RUNS_KEPT_DAYS - 1), status="done")
    # What beat does every hour: send the task through the broker.
    app.send_task(tasks.beat_schedule()["prune_whatif_runs"]["task"])
    wait_until(lambda: WhatIfRun.objects.count() == 1, timeout_s=30.0, interval_s=0.2)
    assert WhatIfRun.objects.get().pk == young.pk
