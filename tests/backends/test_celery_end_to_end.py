"""The whole loop against moto's server: beat's tick through the broker to a real Celery
worker, which reads CloudWatch, decides, and scales the SageMaker endpoint over HTTP."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest
from celery.contrib.testing.worker import start_worker
from django.utils import timezone

from config.celery import app
from scaling import services, tasks
from scaling.models import Decision
from tests.backends.conftest import create_sagemaker_endpoint, publish_invocations, sagemaker_counts, sagemaker_service

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.celery]


@pytest.fixture
def worker() -> Iterator[None]:
    app.conf.task_always_eager = False
    with start_worker(app, pool="threads", concurrency=2, perform_ping_check=False, loglevel="WARNING"):
        yield


def _wait_for(predicate: Callable[[], bool], timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError("condition not met within the timeout")


def test_a_celery_worker_scales_a_sagemaker_endpoint_on_moto(aws: str, worker: None) -> None:
    create_sagemaker_endpoint(aws, instances=2)
    publish_invocations(aws, services.align_tick(timezone.now()), per_minute=60 * 700)
    service = sagemaker_service()

    app.send_task(tasks.beat_schedule()["tick"]["task"])

    _wait_for(lambda: Decision.objects.filter(service=service).exclude(actuation=Decision.Actuation.PENDING).exists())
    decision = Decision.objects.get(service=service)
    assert decision.actuation == Decision.Actuation.OK, (decision.summary, decision.actuation_error)
    assert decision.desired > 2
    assert sagemaker_counts(aws)[1] == decision.desired
