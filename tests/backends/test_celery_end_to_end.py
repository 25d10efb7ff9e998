"""The whole loop against moto's server: beat's tick through the broker to a real Celery
worker, which reads CloudWatch, decides, and scales the SageMaker endpoint over HTTP."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.test import Client
from django.utils import timezone

from config.celery import app
from scaling import services, tasks
from scaling.models import Decision, Service
from tests.backends.conftest import (
    MOTO_LATENCY_STATS,
    SAGEMAKER_FORM,
    create_sagemaker_endpoint,
    publish_invocations,
    sagemaker_counts,
    sagemaker_service,
)
from tests.factories import make_user
from tests.waiting import wait_until
from tests.workers import real_worker

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.celery]


@pytest.fixture
def worker() -> Iterator[None]:
    # The control queue only, as the Procfile's worker (what-if replays have a queue and worker of their own).
    with real_worker("celery", concurrency=2):
        yield


def test_a_celery_worker_scales_a_sagemaker_endpoint_on_moto(aws: str, worker: None) -> None:
    create_sagemaker_endpoint(aws, instances=2)
    publish_invocations(aws, services.align_tick(timezone.now()), per_minute=60 * 700)
    service = sagemaker_service()

    app.send_task(tasks.beat_schedule()["tick"]["task"])

    wait_until(
        timeout_s=60.0,
        predicate=lambda: (
            Decision.objects.filter(service=service).exclude(actuation=Decision.Actuation.PENDING).exists()
        ),
    )
    decision = Decision.objects.get(service=service)
    assert decision.actuation == Decision.Actuation.OK, (decision.summary, decision.actuation_error)
    assert decision.desired > 2
    assert sagemaker_counts(aws)[1] == decision.desired


def test_the_documented_flow_register_test_connection_and_watch_it_scale(
    aws: str, worker: None, client: Client
) -> None:
    """docs/aws.md sections 3-4: add the service in the UI, press Test connection, watch Tipoff scale it."""
    create_sagemaker_endpoint(aws, instances=2)
    client.force_login(make_user("root", role="admin"))
    form = SAGEMAKER_FORM | {"max_replicas": "12", "price_per_replica_hour": "1.5"}

    probe = client.post("/services/test-connection/", form, headers={"HX-Request": "true"}).content.decode()
    assert "endpoint InService; 2 ready of 2 provisioned" in probe
    assert client.post("/services/new/", form).status_code == 302
    service = Service.objects.get(name="win-probability")
    # moto's GetMetricData cannot compute percentiles (see tests/backends/conftest.py).
    Service.objects.filter(pk=service.pk).update(
        backend_config=service.backend_config | {"latency_stats": MOTO_LATENCY_STATS}
    )
    publish_invocations(aws, services.align_tick(timezone.now()), per_minute=60 * 700)

    app.send_task(tasks.beat_schedule()["tick"]["task"])

    wait_until(
        timeout_s=60.0,
        predicate=lambda: Decision.objects.filter(service=service, actuation=Decision.Actuation.OK).exists(),
    )
    decision = Decision.objects.get(service=service, actuation=Decision.Actuation.OK)
    assert sagemaker_counts(aws)[1] == decision.desired > 2
    assert 'data-service="win-probability"' in client.get("/").content.decode()
