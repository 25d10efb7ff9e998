"""The what-if replay runs in a real Celery worker through the broker, not in the web request."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from celery.contrib.testing.worker import start_worker
from django.utils import timezone

from config.celery import app
from scaling.models import MetricSample
from scaling.whatif import WhatIfRequest, whatif_start, whatif_state
from tests.factories import make_service, make_user
from tests.waiting import wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.celery, pytest.mark.usefixtures("whatif_slots_free")]


@pytest.fixture
def worker() -> Iterator[None]:
    app.conf.task_always_eager = False
    # Only the what-if queue, as the what-if worker of the Procfile: the job must be routed there.
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
    wait_until(lambda: (whatif_state(job_id) or {}).get("status") in ("done", "failed"), timeout_s=60.0, interval_s=0.2)
    state = whatif_state(job_id)
    assert state is not None
    assert state["status"] == "done", state.get("error")
    assert state["result"]["policy"] == "hpa"
    assert state["result"]["actual"]["replica_hours"] == pytest.approx(5 * 240 * 15 / 3600, rel=0.01)
