"""Thin Celery tasks: ids in, a service call, explicit limits. Every task and
its schedule is listed here."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from scaling import selectors, services, whatif

log = logging.getLogger(__name__)


# A disabled service's scalable target, left changed by a hand-back that failed, waits at most this long.
RELEASE_EVERY_S = 300.0
# A what-if run is deleted within this long of its RUNS_KEPT_DAYS.
PRUNE_WHATIF_EVERY_S = 3600.0
# Samples and decisions are deleted within this long of their retention (longer while a backlog is cleared).
PRUNE_HISTORY_EVERY_S = 3600.0
# Each closed rollup bucket is computed within this long of closing; the charts read the samples until then.
ROLLUP_METRICS_EVERY_S = 300.0


def beat_schedule() -> dict[str, dict[str, Any]]:
    return {
        # A tick that waited in the queue past the next one is dropped: the next tick decides for now.
        "tick": {
            "task": "scaling.tick",
            "schedule": float(settings.TICK_SECONDS),
            "options": {"expires": 0.9 * settings.TICK_SECONDS},
        },
        "refresh_schedule": {"task": "scaling.refresh_schedule", "schedule": float(settings.SCHEDULE_REFRESH_SECONDS)},
        "record_override_transitions": {
            "task": "scaling.record_override_transitions",
            "schedule": float(settings.TICK_SECONDS),
        },
        "release_scalable_targets": {
            "task": "scaling.release_scalable_targets",
            "schedule": RELEASE_EVERY_S,
            "options": {"expires": RELEASE_EVERY_S},
        },
        "verify_audit": {
            "task": "scaling.verify_audit",
            "schedule": float(settings.AUDIT_VERIFY_SECONDS),
            "options": {"expires": float(settings.AUDIT_VERIFY_SECONDS)},  # a late run is replaced by the next
        },
        "prune_whatif_runs": {
            "task": "scaling.prune_whatif_runs",
            "schedule": PRUNE_WHATIF_EVERY_S,
            "options": {"expires": PRUNE_WHATIF_EVERY_S},
        },
        "prune_history": {
            "task": "scaling.prune_history",
            "schedule": PRUNE_HISTORY_EVERY_S,
            "options": {"expires": PRUNE_HISTORY_EVERY_S},
        },
        "rollup_metrics": {
            "task": "scaling.rollup_metrics",
            "schedule": ROLLUP_METRICS_EVERY_S,
            "options": {"expires": ROLLUP_METRICS_EVERY_S},  # a late run is replaced by the next
        },
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


_EVALUATE_SOFT_LIMIT_S, _EVALUATE_HARD_LIMIT_S = services.evaluation_time_limits_s()


@shared_task(
    name="scaling.evaluate_service",
    bind=True,
    time_limit=_EVALUATE_HARD_LIMIT_S,
    soft_time_limit=_EVALUATE_SOFT_LIMIT_S,
    ignore_result=True,
)
def evaluate_service(self: Any, service_id: int, tick_iso: str) -> str:
    worker = str(getattr(self.request, "hostname", None) or "tipoff-worker")
    result = services.service_evaluate(service_id=service_id, tick_at=datetime.fromisoformat(tick_iso), worker=worker)
    label = f"service {result.service_name} (id {service_id})" if result.service_name else f"service id {service_id}"
    log.info("%s tick %s: %s", label, tick_iso, result.status)
    return result.status


@shared_task(
    name="scaling.record_override_transitions",
    time_limit=60,
    soft_time_limit=45,
    ignore_result=True,
    expires=max(settings.TICK_SECONDS * 0.9, 1.0),
)
def record_override_transitions() -> int:
    """Audit each override's start and expiry (the engine already applies them by their windows)."""
    from scaling.overrides import override_transitions_record

    return override_transitions_record()


@shared_task(name="scaling.release_scalable_targets", time_limit=300, soft_time_limit=240, ignore_result=True)
def release_scalable_targets() -> int:
    """Retry handing back Application Auto Scaling targets of services no tick reads (disabled)."""
    from scaling.audit import Actor
    from scaling.backends.autoscaling import release_untended

    return release_untended(Actor.system("release_scalable_targets"))


@shared_task(name="scaling.refresh_schedule", time_limit=300, soft_time_limit=240, ignore_result=True)
def refresh_schedule() -> str:
    """Re-import the league schedule from SCHEDULE_URL (off when unset), then let game-day rules roll forward."""
    from scaling.audit import Actor
    from scaling.schedule.fetch import read_schedule_source
    from scaling.schedule.parse import ScheduleError
    from scaling.schedule.rules import rules_apply
    from scaling.schedule.services import schedule_import

    actor = Actor.system("refresh_schedule")
    if not settings.SCHEDULE_URL:
        rules_apply(actor=actor)
        return "off"
    try:
        text, source = read_schedule_source(settings.SCHEDULE_URL)
        summary = schedule_import(text=text, source=source, actor=actor)
    except ScheduleError as exc:
        log.error("schedule refresh: nothing imported: %s", exc)
        return "error"
    rules_apply(actor=actor)
    log.info("schedule refresh: %s", summary.as_dict())
    return "ok"


@shared_task(name="scaling.verify_audit", time_limit=600, soft_time_limit=540, ignore_result=True)
def verify_audit() -> bool:
    """Recompute the audit hash chain; a broken result raises the admins' red banner."""
    from scaling.audit import verify_and_record, verify_is_due_in_full

    now = timezone.now()
    result = verify_and_record(now=now, full=verify_is_due_in_full(now))
    if not result.ok:
        log.error("audit chain BROKEN at event #%s: %s", result.first_broken_id, result.message)
    return result.ok


@shared_task(
    name="scaling.whatif_run",
    # The job's slot (scaling.whatif) lapses by the hard limit: the two must be the same number.
    time_limit=whatif.RUN_TIME_LIMIT_S,
    soft_time_limit=whatif.RUN_SOFT_TIME_LIMIT_S,
    ignore_result=True,
)
def whatif_run(job_id: str) -> str:
    """Replay a policy over a service's recorded traffic (the dashboard's what-if)."""
    return whatif.whatif_execute(job_id)


@shared_task(name="scaling.prune_whatif_runs", time_limit=300, soft_time_limit=240, ignore_result=True)
def prune_whatif_runs() -> int:
    """Delete the what-if runs older than whatif.RUNS_KEPT_DAYS."""
    deleted = whatif.whatif_runs_prune(now=timezone.now())
    if deleted:
        log.info("what-if: %s runs older than %s days deleted", deleted, whatif.RUNS_KEPT_DAYS)
    return deleted


@shared_task(name="scaling.prune_history", time_limit=300, soft_time_limit=240, ignore_result=True)
def prune_history() -> int:
    """Delete the metric samples and decisions older than their retention, in batches, within a time budget."""
    from scaling.audit import Actor
    from scaling.retention import TIME_BUDGET_S, history_prune

    result = history_prune(actor=Actor.system("prune_history"), now=timezone.now())
    counts = result.counts
    if counts.total:
        log.info(
            "history: deleted %s metric samples older than %s days and %s decisions older than %s days%s",
            counts.samples,
            settings.METRIC_RETENTION_DAYS,
            counts.decisions,
            settings.DECISION_RETENTION_DAYS,
            "" if result.finished else f"; more are left after the {TIME_BUDGET_S:.0f} s budget, for the next run",
        )
    return counts.total


@shared_task(name="scaling.rollup_metrics", time_limit=300, soft_time_limit=240, ignore_result=True)
def rollup_metrics() -> int:
    """Compute the metric rollups of the buckets closed since the last run (and again the last LATE_MARGIN's)."""
    from scaling.rollups import rollups_refresh

    run = rollups_refresh(now=timezone.now())
    log.debug("rollups: %s written for %s to %s", run.written, run.start, run.end)
    return run.written
