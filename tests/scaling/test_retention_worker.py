"""The hourly history prune goes through the broker to a real Celery worker on the control queue."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from django.conf import settings
from django.core.management import call_command
from django.utils import timezone

from config.celery import app
from scaling import tasks
from scaling.audit import EventType
from scaling.models import AuditEvent, Decision, MetricSample
from tests.factories import make_service
from tests.waiting import wait_until
from tests.workers import real_worker

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.celery]


@pytest.fixture
def control_worker() -> Iterator[None]:
    with real_worker("celery"):
        yield


def test_the_beat_task_prunes_old_history_through_the_broker(control_worker: None) -> None:
    service = make_service()
    now = timezone.now()
    metric_days, decision_days = settings.METRIC_RETENTION_DAYS, settings.DECISION_RETENTION_DAYS
    MetricSample.objects.create(service=service, ts=now - timedelta(days=metric_days, minutes=5), rps=1.0)
    young = MetricSample.objects.create(service=service, ts=now - timedelta(days=metric_days - 1), rps=1.0)
    for tick in (now - timedelta(days=decision_days, minutes=5), now - timedelta(days=decision_days - 1)):
        Decision.objects.create(
            service=service, tick=tick, provisioned=2, ready=2, desired=2, recommendation=2, reason_code="NO_CHANGE"
        )
    # What beat does every hour: send the task through the broker.
    app.send_task(tasks.beat_schedule()["prune_history"]["task"])
    wait_until(
        lambda: AuditEvent.objects.filter(event_type=EventType.HISTORY_PRUNED).exists(), timeout_s=30.0, interval_s=0.2
    )
    assert list(MetricSample.objects.values_list("pk", flat=True)) == [young.pk]
    assert Decision.objects.get().tick == now - timedelta(days=decision_days - 1)
    recorded = AuditEvent.objects.get(event_type=EventType.HISTORY_PRUNED).after
    assert recorded is not None and (recorded["samples"], recorded["decisions"]) == (1, 1)
    call_command("verify_audit")
