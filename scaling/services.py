"""Every write. Each runs in one transaction with its audit event and returns
early when nothing changes."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import redis
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from scaling import selectors
from scaling.audit import Actor, EventType, audit_record
from scaling.backends import (
    ActuatorError,
    BackendError,
    FleetStatus,
    get_actuator,
    get_metric_source,
)
from scaling.backends.base import one_line
from scaling.models import Decision, MetricSample, PolicyRevision, Service
from scaling.policy import Decision as EngineDecision
from scaling.policy import MetricPoint, PolicyParams, decide, hold_on_refused_policy
from scaling.policy.explain import deciding_constraint
from scaling.policy.types import PolicyParamsError

log = logging.getLogger(__name__)

# A backend failure as a decision's summary and the fleet page show it: one line, this long at most.
FAILURE_LIMIT = 300

_redis: redis.Redis | None = None


def redis_client() -> redis.Redis:
    global _redis  # noqa: PLW0603 - one connection pool per process
    if _redis is None:
        _redis = redis.Redis.from_url(settings.REDIS_URL)
    return _redis


def align_tick(now: datetime, tick_s: int | None = None) -> datetime:
    """The start of the tick containing `now` (ticks are aligned to the epoch)."""
    step = tick_s or settings.TICK_SECONDS
    epoch = int(now.timestamp())
    return datetime.fromtimestamp(epoch - epoch % step, tz=now.tzinfo or UTC)


def evaluation_time_limits_s() -> tuple[int, int]:
    """(soft, hard) time limits of one service's evaluation task. The service's lock lasts as long as the hard
    limit, so a second evaluation of the service cannot start while the first may still be running."""
    tick_s = settings.TICK_SECONDS
    return max(tick_s * 3, 45), max(tick_s * 4, 60)


@dataclass(frozen=True)
class EvaluationResult:
    status: str  # decided | duplicate | locked | disabled
    decision_id: int | None = None
    service_name: str = ""  # for the logs: a service is named, not only numbered


def service_evaluate(*, service_id: int, tick_at: datetime, worker: str = "tipoff") -> EvaluationResult:
    """One control tick for one service (DESIGN: one control tick).

    1. Take the service's lock without blocking; another worker holding it wins.
    2. Read the metric window and fleet status; store the samples.
    3. Build the engine input and decide.
    4. Record the decision and its audit event in one transaction, unique per tick.
    5. After commit, actuate with an absolute count, guarded by the service version.
    """
    _, hard_limit_s = evaluation_time_limits_s()
    lock = redis_client().lock(f"tipoff:evaluate:{service_id}", timeout=hard_limit_s, blocking=False)
    if not lock.acquire(blocking=False):
        log.info("service %s: lock held by another worker; skipping tick %s", service_id, tick_at.isoformat())
        return EvaluationResult("locked")
    try:
        return _evaluate_locked(service_id, tick_at, worker)
    finally:
        try:
            lock.release()
        except redis.exceptions.LockError:
            log.warning("service %s: lock expired before release", service_id)
        except redis.exceptions.RedisError as exc:
            # The tick is recorded (and applied) already: Redis going away now must not report it failed. The
            # lock expires by itself within the evaluation's hard time limit.
            log.warning("service %s: lock not released, Redis unavailable (%s); it expires by itself", service_id, exc)


def _evaluate_locked(service_id: int, tick_at: datetime, worker: str) -> EvaluationResult:
    service = Service.objects.filter(pk=service_id, enabled=True).first()
    if service is None:
        return EvaluationResult("disabled")
    if Decision.objects.filter(service=service, tick=tick_at).exists():
        return EvaluationResult("duplicate", service_name=service.name)
    _interrupted_actuation_close(service, tick_at, worker)
    if service.mode != Service.Mode.ACTIVE and service.mode_until is not None and service.mode_until <= tick_at:
        service_mode_expire(service=service, now=tick_at, actor=Actor.system(worker))
    elif service.mode != Service.Mode.ACTIVE and service.mode_until is None:
        service_mode_bound(service=service, now=tick_at, actor=Actor.system(worker))
    version = service.version
    now = tick_at

    metrics: tuple[MetricPoint, ...] = ()
    unread: Mapping[str, str] = {}
    unavailable_error = ""
    actuator_error = ""
    try:
        status = get_actuator(service).status(service, now)
    except Exception as exc:
        # Without the fleet's status the engine cannot act safely: hold, and do not actuate. The actuator,
        # not the metric source, failed: the decision says so (ACTUATOR_UNAVAILABLE).
        actuator_error = _failure_text(service, "fleet status", exc)
        status = FleetStatus(provisioned=_last_known_provisioned(service), ready=0, busy=True, detail=actuator_error)
    if not actuator_error:
        try:
            window = get_metric_source(service).fetch(service, now)
            metrics, unread = window.points, window.unread
        except Exception as exc:
            # Whatever the source raised, the tick still decides: it holds, applies overrides, and counts
            # the time metrics have been missing towards the fallback.
            unavailable_error = _failure_text(service, "metric source", exc)

    sample_rows = [
        MetricSample(
            service=service,
            ts=m.ts,
            rps=m.rps,
            p50_ms=m.p50_ms,
            p95_ms=m.p95_ms,
            p99_ms=m.p99_ms,
            utilization=m.utilization,
            in_flight=m.in_flight,
            error_rate=m.error_rate,
            ready=status.ready,
            provisioned=status.provisioned,
        )
        for m in metrics
    ]
    refused: PolicyParamsError | None = None
    try:
        params = PolicyParams.from_dict(service.policy)
    except PolicyParamsError as exc:
        # Saved before a parameter's range narrowed (system check tipoff.W001): the tick still decides, holding
        # under the overrides and bounds; the default parameters it is given go unread.
        refused, params = exc, PolicyParams()
    inp = selectors.engine_input(
        service, now=now, provisioned=status.provisioned, ready=status.ready, metrics=metrics, params=params
    )
    if refused is not None:
        result = hold_on_refused_policy(inp, parameter=refused.field, problem=str(refused))
    else:
        result = decide(
            inp,
            metrics_unavailable=bool(unavailable_error),
            unread_signals=tuple(unread),
            actuator_unavailable=bool(actuator_error),
        )
    if actuator_error:
        # The breaker's own refusal already begins "actuator unavailable".
        prefix = "" if actuator_error.startswith("actuator unavailable") else "actuator unavailable: "
        result = _with_note(result, f"{prefix}{actuator_error}")
    elif unavailable_error:
        result = _with_note(result, f"metrics unavailable: {unavailable_error}")
    elif unread:
        result = _with_note(result, "; ".join(f"{signal} unread: {why}" for signal, why in unread.items()))

    try:
        with transaction.atomic():
            MetricSample.objects.bulk_create(sample_rows, ignore_conflicts=True)
            decision = decision_record(
                service=service, tick_at=tick_at, result=result, worker=worker, ready=status.ready
            )
    except IntegrityError:
        return EvaluationResult("duplicate", service_name=service.name)

    if refused is not None:
        log.warning(
            "%s tick %s: holding at %s: its stored policy is refused by the engine (%s); save a valid one on "
            "/services/%s/policy/",
            named(service),
            tick_at.isoformat(),
            result.current,
            refused,
            service.name,
        )
    if actuator_error:
        log.warning("%s tick %s: actuator unavailable: %s", named(service), tick_at.isoformat(), actuator_error)
    elif unavailable_error:
        log.warning("%s tick %s: metrics unavailable: %s", named(service), tick_at.isoformat(), unavailable_error)
    elif unread:
        log.warning("%s tick %s: %s", named(service), tick_at.isoformat(), "; ".join(f"{k} unread" for k in unread))
    if decision.changed and service.mode == Service.Mode.ACTIVE:
        decision_actuate(decision=decision, service=service, expected_version=version, busy=status.busy)
    return EvaluationResult("decided", decision.pk, service.name)


def named(service: Service) -> str:
    """A service as the logs name it: by name and id."""
    return f"service {service.name} (id {service.pk})"


def _interrupted_actuation_close(service: Service, tick_at: datetime, worker: str) -> None:
    """Close the last tick's actuation if it is still pending. The lock lasts as long as an evaluation may
    run, so holding it means the evaluation that left it pending is gone (killed at its hard time limit,
    or its worker stopped) and will never say how its call ended."""
    last = Decision.objects.filter(service=service, tick__lt=tick_at).order_by("-tick").first()
    if last is not None and last.actuation == Decision.Actuation.PENDING:
        detail = "outcome unknown: the evaluation stopped during the call; this tick reads the real count"
        _actuation_done(last, service, Actor.system(worker), Decision.Actuation.ERROR, detail)


def _failure_text(service: Service, what: str, exc: Exception) -> str:
    """A backend failure in words. A BackendError already describes itself; anything else is a bug in a
    backend, logged with its traceback."""
    if isinstance(exc, BackendError):
        return one_line(str(exc), FAILURE_LIMIT)
    log.error("%s: %s raised %s", named(service), what, type(exc).__name__, exc_info=exc)
    return one_line(f"{type(exc).__name__}: {exc}", FAILURE_LIMIT)


def _with_note(result: EngineDecision, note: str) -> EngineDecision:
    return replace(result, summary=f"{result.summary} ({note})")


def _last_known_provisioned(service: Service) -> int:
    last = selectors.latest_decision(service)
    return last.desired if last else service.min_replicas


def _goes_on(service: Service, tick_at: datetime, result: EngineDecision) -> Decision | None:
    """The decision before `tick_at` if it had the same mode, counts, recommendation and reason."""
    previous = Decision.objects.filter(service=service, tick__lt=tick_at).order_by("-tick").first()
    if previous is not None and (
        previous.mode,
        previous.provisioned,
        previous.desired,
        previous.recommendation,
        previous.reason_code,
    ) == (service.mode, result.current, result.desired, result.recommendation, str(result.reason)):
        return previous
    return None


def _binding(result: EngineDecision) -> str:
    """The name of the constraint that set the decision's count ("" when the policy's count stood)."""
    deciding = deciding_constraint(result.constraints)
    return deciding.name if deciding is not None else ""


def _hold_goes_on(service: Service, tick_at: datetime, result: EngineDecision) -> bool:
    """Whether a hold was already audited in the run of holds it belongs to: the ticks since the count, the
    mode or the count asked for last changed, one of which held for the same reason and binding constraint.

    The policy's count behind a hold moves every few ticks (a pin held at 8 while it asked 4, 5, 6, 7; the
    maximum while it asked 38, 39, 40): that is no news, and each had been audited again with the same
    words. Nor is a hold that alternates between two reasons (an override in force, then the scale-in held
    while demand climbs) audited at each switch back: each reason once per run."""
    broke = (
        Decision.objects.filter(service=service, tick__lt=tick_at)
        .exclude(mode=service.mode, provisioned=result.current, desired=result.desired, changed=False)
        .order_by("-tick")
        .values_list("tick", flat=True)
        .first()
    )
    # Blocked ticks only (those audited): the same reason at the count asked for was never audited.
    run = Decision.objects.filter(
        service=service,
        tick__lt=tick_at,
        recommendation__isnull=False,
        reason_code=str(result.reason),
        explanation__binding=_binding(result),
    ).exclude(recommendation=F("desired"))
    return run.filter(tick__gt=broke).exists() if broke is not None else run.exists()


# Actuations that left the count as it was and will end the same way next tick while nothing changes: the
# actuator refused (Application Auto Scaling owns the resource) or the resource was busy.
_TURNED_DOWN = (Decision.Actuation.SKIPPED, Decision.Actuation.BUSY)


def decision_record(
    *, service: Service, tick_at: datetime, result: EngineDecision, worker: str, ready: int
) -> Decision:
    """Store one engine decision and, when it changed or was blocked from changing capacity, its audit event.

    A block that goes on, at the same counts for a reason and binding constraint already audited since the
    count last changed (whatever the policy asks behind it), or a dry run's would-be change that goes on from
    the tick before, is not audited again: its first tick's event stands for it, and every tick stays in the
    decision timeline. Otherwise a fleet resting at its minimum would write four events a minute. So is a
    change that repeats one the actuator turned down the tick before (refused, or the resource busy)."""
    actuation = Decision.Actuation.NONE
    if result.changed:
        actuation = Decision.Actuation.DRY_RUN if service.mode == Service.Mode.DRY_RUN else Decision.Actuation.PENDING
    decision = Decision.objects.create(
        service=service,
        tick=tick_at,
        provisioned=result.current,
        ready=ready,
        desired=result.desired,
        recommendation=result.recommendation,
        changed=result.changed,
        reason_code=str(result.reason),
        summary=result.summary[:500],
        # The policy version in force, so the explanation can show the parameters it decided with.
        # The binding constraint's name, so that a hold going on is recognised whatever the policy asked.
        explanation={**result.to_dict(), "policy_version": service.policy_version, "binding": _binding(result)},
        mode=service.mode,
        actuation=actuation,
        worker=worker,
    )
    blocked = result.recommendation is not None and result.recommendation != result.desired and not result.changed
    audited = result.changed or blocked
    if audited:
        previous = _goes_on(service, tick_at, result)
        if result.changed and service.mode == Service.Mode.ACTIVE:
            audited = previous is None or previous.actuation not in _TURNED_DOWN
        elif result.changed:
            audited = previous is None
        else:
            audited = not _hold_goes_on(service, tick_at, result)
    if audited:
        if service.mode == Service.Mode.DRY_RUN:
            event = EventType.DECISION_DRY_RUN
        elif result.changed:
            event = EventType.DECISION_SCALED
        else:
            event = EventType.DECISION_BLOCKED
        audit_record(
            actor=Actor.system(worker),
            event_type=event,
            service=service,
            object_type="decision",
            object_id=decision.pk,
            before={"replicas": result.current},
            after={"replicas": result.desired, "recommendation": result.recommendation},
            reason=result.summary,
            cost_impact_per_hour=(result.desired - result.current) * service.price_per_replica_hour,
            at=tick_at,
        )
    return decision


def decision_actuate(*, decision: Decision, service: Service, expected_version: int, busy: bool = False) -> str:
    """Set the service to the decision's absolute count, unless a newer worker or config got there first."""
    actor = Actor.system(decision.worker or "tipoff")
    if busy:
        return _actuation_done(
            decision, service, actor, Decision.Actuation.BUSY, "resource is updating; retry next tick"
        )
    claimed = Service.objects.filter(pk=service.pk, version=expected_version).update(version=F("version") + 1)
    if not claimed:
        return _actuation_done(decision, service, actor, Decision.Actuation.STALE, "service changed since evaluation")
    try:
        outcome = get_actuator(service).set_capacity(service, decision.desired, timezone.now())
    except ActuatorError as exc:
        return _actuation_done(decision, service, actor, Decision.Actuation.ERROR, str(exc))
    except Exception as exc:
        # Stopped mid-call (the task's soft time limit) or a bug: whether the count was set is unknown.
        # Record that, so the decision does not stay pending, and let the task end as it was told to.
        cause = "the task's time limit" if isinstance(exc, SoftTimeLimitExceeded) else f"{type(exc).__name__}: {exc}"
        detail = f"outcome unknown: the call was interrupted ({cause}); the next tick reads the real count"
        _actuation_done(decision, service, actor, Decision.Actuation.ERROR, detail)
        raise
    if outcome.status == "busy":
        return _actuation_done(decision, service, actor, Decision.Actuation.BUSY, outcome.detail)
    if outcome.status != "ok":
        return _actuation_done(decision, service, actor, Decision.Actuation.SKIPPED, outcome.detail)
    return _actuation_done(decision, service, actor, Decision.Actuation.OK, outcome.detail)


_ACTUATION_EVENTS = {
    Decision.Actuation.OK: EventType.ACTUATOR_OK,
    Decision.Actuation.ERROR: EventType.ACTUATOR_ERROR,
    Decision.Actuation.BUSY: EventType.ACTUATOR_BUSY,
    Decision.Actuation.STALE: EventType.ACTUATOR_STALE,
    Decision.Actuation.SKIPPED: EventType.ACTUATOR_ERROR,
}


def _actuation_done(decision: Decision, service: Service, actor: Actor, status: str, detail: str) -> str:
    """Record how the decision's actuation ended, and audit it unless it only goes on from the tick before:
    the same count turned down the same way, whose first tick's event stands for the whole stretch."""
    if status == Decision.Actuation.ERROR:
        what = f"setting {decision.desired} replicas failed"
        log.warning("%s tick %s: %s: %s", named(service), decision.tick.isoformat(), what, detail)
    with transaction.atomic():
        decision.actuation = status
        decision.actuation_error = "" if status == Decision.Actuation.OK else detail
        decision.actuated_at = timezone.now()
        decision.save(update_fields=["actuation", "actuation_error", "actuated_at"])
        if status in _TURNED_DOWN and _turned_down_before(decision):
            return status
        audit_record(
            actor=actor,
            event_type=_ACTUATION_EVENTS[Decision.Actuation(status)],
            service=service,
            object_type="decision",
            object_id=decision.pk,
            before={"replicas": decision.provisioned},
            after={"replicas": decision.desired, "status": status},
            reason=detail,
        )
    return status


def _turned_down_before(decision: Decision) -> bool:
    previous = Decision.objects.filter(service_id=decision.service_id, tick__lt=decision.tick).order_by("-tick").first()
    return previous is not None and (
        previous.actuation,
        previous.actuation_error,
        previous.provisioned,
        previous.desired,
    ) == (decision.actuation, decision.actuation_error, decision.provisioned, decision.desired)


class ModeError(ValueError):
    """A mode change refused, naming the field at fault."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


_MODE_NOUNS: dict[str, str] = {Service.Mode.PAUSED: "pause", Service.Mode.DRY_RUN: "dry run"}


def service_set_mode(
    *, service: Service, mode: str, actor: Actor, reason: str, until: datetime | None, now: datetime | None = None
) -> bool:
    """Pause, dry-run or activate a service. Returns False when nothing changed.

    A pause or dry run, like every override, has a reason and an end (`until`, at most MODE_MAX_HOURS
    ahead); the first tick at or after it makes the service active again. Activating needs no end."""
    now = now or timezone.now()
    if mode not in Service.Mode.values:
        raise ModeError("mode", f"unknown mode {mode!r}")
    if not reason.strip():
        raise ModeError("reason", "a reason is required")
    noun = _MODE_NOUNS.get(mode, mode)
    if mode == Service.Mode.ACTIVE:
        if until is not None:
            raise ModeError("until", "an active service has no end")
    elif until is None:
        raise ModeError("until", f"a {noun} needs an end: when should the service be active again?")
    elif until.tzinfo is None:
        raise ModeError("until", "the end needs a time zone")
    elif until <= now:
        raise ModeError("until", "the end must be in the future")
    elif until - now > timedelta(hours=settings.MODE_MAX_HOURS):
        hours = (until - now).total_seconds() / 3600
        raise ModeError("until", f"a {noun} may last at most {settings.MODE_MAX_HOURS:g} h (asked {hours:.1f} h)")
    with transaction.atomic():
        locked = Service.objects.select_for_update().get(pk=service.pk)
        if (locked.mode, locked.mode_until) == (mode, until):
            return False
        _switch_mode(locked, mode, until, actor=actor, reason=reason)
    service.refresh_from_db()
    if mode not in (locked.mode, Service.Mode.ACTIVE) and service.backend != Service.Backend.SIMULATED:
        # Tipoff stops managing the resource: hand it back to Application Auto Scaling now, not next tick.
        from scaling.backends.autoscaling import release_quietly

        release_quietly(service, actor, f"service {mode}: {reason}")
    return True


def _switch_mode(
    locked: Service, mode: str, until: datetime | None, *, actor: Actor, reason: str, at: datetime | None = None
) -> None:
    """Set a service's mode and its end (the row locked by the caller's transaction), and audit the change."""
    Service.objects.filter(pk=locked.pk).update(mode=mode, mode_until=until, version=F("version") + 1)
    audit_record(
        actor=actor,
        event_type=EventType.SERVICE_MODE_CHANGED,
        service=locked,
        object_type="service",
        object_id=locked.pk,
        before={"mode": locked.mode, "until": _iso(locked.mode_until)},
        after={"mode": mode, "until": _iso(until)},
        reason=reason,
        at=at,
    )


def _iso(at: datetime | None) -> str | None:
    return at.isoformat() if at else None


def service_mode_expire(*, service: Service, now: datetime, actor: Actor) -> bool:
    """Make a paused or dry-run service active again once its end has passed. Returns False if it had not."""
    with transaction.atomic():
        locked = Service.objects.select_for_update().get(pk=service.pk)
        until = locked.mode_until
        if locked.mode == Service.Mode.ACTIVE or until is None or until > now:
            return False
        noun = _MODE_NOUNS.get(locked.mode, locked.mode)
        ended = f"the {noun} set to end at {until.astimezone(UTC):%Y-%m-%d %H:%M} UTC has ended: active again"
        _switch_mode(locked, Service.Mode.ACTIVE, None, actor=actor, reason=ended, at=now)
    service.refresh_from_db()
    return True


def service_mode_bound(*, service: Service, now: datetime, actor: Actor) -> bool:
    """Give a paused or dry-run service that has no end one, MODE_MAX_HOURS from now. Returns False if it had one.

    Every pause and dry run set through Tipoff has an end; one without (set before they needed one, or by
    hand in the database) would otherwise hold the service out of the engine's hands for good, unnoticed."""
    with transaction.atomic():
        locked = Service.objects.select_for_update().get(pk=service.pk)
        if locked.mode == Service.Mode.ACTIVE or locked.mode_until is not None:
            return False
        until = now + timedelta(hours=settings.MODE_MAX_HOURS)
        noun = _MODE_NOUNS.get(locked.mode, locked.mode)
        reason = (
            f"the {noun} had no end: it now ends at {until.astimezone(UTC):%Y-%m-%d %H:%M} UTC, "
            f"the longest a {noun} may last ({settings.MODE_MAX_HOURS:g} h)"
        )
        _switch_mode(locked, locked.mode, until, actor=actor, reason=reason, at=now)
    service.refresh_from_db()
    return True


def service_update_policy(*, service: Service, params: dict[str, Any], actor: Actor, reason: str) -> bool:
    """Replace a service's engine parameters (validated), bump its policy version, audit the change."""
    if not reason.strip():
        raise ValueError("a reason is required")
    new = PolicyParams.from_dict(params).to_dict()
    with transaction.atomic():
        locked = Service.objects.select_for_update().get(pk=service.pk)
        old = _stored_policy(locked.policy)
        if old == new:
            return False
        Service.objects.filter(pk=service.pk).update(
            policy=new, policy_version=F("policy_version") + 1, version=F("version") + 1
        )
        _policy_revisions_write(service=locked, old=old, new=new, actor=actor, reason=reason)
        audit_record(
            actor=actor,
            event_type=EventType.POLICY_CHANGED,
            service=locked,
            object_type="service",
            object_id=locked.pk,
            before={k: v for k, v in old.items() if new.get(k) != v},
            after={k: v for k, v in new.items() if old.get(k) != v},
            reason=reason,
        )
    service.refresh_from_db()
    return True


def _stored_policy(stored: Any) -> dict[str, Any]:
    """A service's stored policy in full, as the engine reads it; one the engine refuses (saved before a range
    narrowed: its ticks hold, POLICY_INVALID) as it is stored over the defaults, so that the change replacing it,
    the fix those ticks ask for, can be made and records the values it replaced."""
    try:
        return PolicyParams.from_dict(stored).to_dict()
    except PolicyParamsError:
        return {**PolicyParams().to_dict(), **(stored if isinstance(stored, dict) else {})}


def _policy_revisions_write(
    *, service: Service, old: dict[str, Any], new: dict[str, Any], actor: Actor, reason: str
) -> None:
    """Keep every policy version: the one being replaced (once, if it predates revisions) and the new one."""
    now = timezone.now()
    PolicyRevision.objects.get_or_create(
        service=service,
        version=service.policy_version,
        defaults={
            "params": old,
            "actor_label": "system:initial",
            "reason": "policy in force before the first recorded change",
            "created_at": service.created_at or now,
        },
    )
    PolicyRevision.objects.create(
        service=service,
        version=service.policy_version + 1,
        params=new,
        actor_user_id=actor.user_id,
        actor_label=actor.label,
        reason=reason,
        created_at=now,
    )
