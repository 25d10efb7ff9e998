"""Thin Celery tasks: ids in, a service call, explicit limits. Every task and
its schedule is listed here."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from scaling import selectors, services

log = logging.getLogger(__name__)


def beat_schedule() -> dict[str, dict[str, Any]]:
    return {
        "tick": {"task": "scaling.tick", "schedule": float(settings.TICK_SECONDS)},
        "verify_audit": {"task": "scaling.verify_audit", "schedule": float(settings.AUDIT_VERIFY_SECONDS)},
    }


@shared_task(name="scaling.tick", time_limit=30, soft_time_limit=20, ignore_result=True)
def tick() -> int:
    """Fan out one evaluation per enabled service; a late evaluation expires rather than pile up."""
    tick_at = services.align_tick(timezone.now())
    ids = selectors.enabled_service_ids()
    for service_id in ids:
        evaluate_service.apply_async(
            args=(service_id, tick_at.isoformat()), expires=max(settings.TICK_SECONDS * 0.9, 1.0)
        )
    return len(ids)


@shared_task(
    name="scaling.evaluate_service",
    bind=True,
    time_limit=max(settings.TICK_SECONDS * 4, 60),
    soft_time_limit=max(settings.TICK_SECONDS * 3, 45),
    ignore_result=True,
)
def evaluate_service(self: Any, service_id: int, tick_iso: str) -> str:
    worker = str(getattr(self.request, "hostname", None) or "tipoff-worker")
    result = services.service_evaluate(service_id=service_id, tick_at=datetime.fromisoformat(tick_iso), worker=worker)
    log.info("service %s tick %s: %s", service_id, tick_iso, result.status)
    return result.status


@shared_task(name="scaling.verify_audit", time_limit=600, soft_time_limit=540, ignore_result=True)
def verify_audit() -> bool:
    """Recompute the audit hash chain; a broken result raises the admins' red banner."""
    from scaling.audit import verify_and_record

    result = verify_and_record()
    if not result.ok:
        log.error("audit chain BROKEN at event #%s: %s", result.first_broken_id, result.message)
    return result.ok
