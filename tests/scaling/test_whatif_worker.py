"""The what-if replay runs in a real Celery worker through the broker, not in the web request, and writes its
state to the database."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from celery.contrib.testing.worker import start_worker
from django.utils import timezone

from config.celery import app
from scaling.models import MetricSample, WhatIfRun
from scaling.whatif import WhatIfRequest, whatif_start
from tests.factories import make_service, make_user
from tests.waiting import wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.celery, pytest.mark.usefixtures("whatif_slots_free")]


@pytest.fixture
def worker() -> Iterator[None]:
    app.conf.task_always_eager = False
    # Only the what-if queue, as the what-if worker of the Procfile: the run must be routed there.
    with start_worker(
        app, pool="threads", concurrency=1, perform_ping_check=False, loglevel="WARNING", queues=["whatif"]
    ):
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
