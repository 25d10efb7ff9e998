"""One control tick for one service, against the database and Redis."""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis
import redis.lock
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.utils import timezone

from scaling import selectors, services, tasks
from scaling.audit import Actor, EventType
from scaling.backends import ActuationResult, FleetStatus, MetricsUnavailable, MetricWindow, aws, prometheus
from scaling.backends.simulated import SimulatedActuator, SimulatedMetricSource
from scaling.models import AuditEvent, Decision, MetricSample, Override, Service, SimulatedFleet
from tests.factories import make_service

pytestmark = pytest.mark.django_db


def _decision(result: services.EvaluationResult) -> Decision:
    assert result.decision_id is not None, result
    return Decision.objects.get(pk=result.decision_id)


def _tick() -> datetime:
    return services.align_tick(timezone.now())


def test_it_scales_out_under_load_and_actuates_after_commit() -> None:
    service = make_service(replicas=2, demand_scale=40.0)
    result = services.service_evaluate(service_id=service.pk, tick_at=_tick())
    decision = _decision(result)
    assert decision.changed and decision.desired > 2
    assert decision.actuation == Decision.Actuation.OK
    assert len(SimulatedFleet.objects.get(service=service).ready_at) == decision.desired
    assert AuditEvent.objects.filter(event_type=EventType.DECISION_SCALED, object_id=str(decision.pk)).exists()
    assert AuditEvent.objects.filter(event_type=EventType.ACTUATOR_OK).exists()
    assert MetricSample.objects.filter(service=service).count() == 1


def test_a_second_evaluation_of_the_same_tick_is_a_no_op() -> None:
    service = make_service()
    tick = _tick()
    services.service_evaluate(service_id=service.pk, tick_at=tick)
    again = services.service_evaluate(service_id=service.pk, tick_at=tick)
    assert again.status == "duplicate"
    assert Decision.objects.filter(service=service).count() == 1


def test_a_worker_that_loses_the_lock_exits_without_acting() -> None:
    service = make_service(demand_scale=40.0)
    lock = services.redis_client().lock(f"tipoff:evaluate:{service.pk}", timeout=30)
    assert lock.acquire(blocking=False)
    try:
        result = services.service_evaluate(service_id=service.pk, tick_at=_tick())
    finally:
        lock.release()
    assert result.status == "locked"
    assert not Decision.objects.filter(service=service).exists()


def test_redis_going_away_after_the_decision_does_not_report_the_tick_failed(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # Seen with Redis shut down mid-evaluation: the count was scaled and audited, then the lock's release raised
    # ConnectionError and the task was logged as failed. Only the release is made to fail here.
    def gone(self: redis.lock.Lock) -> None:
        raise redis.exceptions.ConnectionError("Connection refused")

    monkeypatch.setattr(redis.lock.Lock, "release", gone)
    service = make_service(replicas=2, demand_scale=40.0)
    with caplog.at_level(logging.WARNING, logger="scaling.services"):
        result = services.service_evaluate(service_id=service.pk, tick_at=_tick())
    assert result.status == "decided" and _decision(result).actuation == Decision.Actuation.OK
    assert any("Redis unavailable" in r.getMessage() for r in caplog.records)
    monkeypatch.undo()
    services.redis_client().delete(f"tipoff:evaluate:{service.pk}")


def test_the_lock_lasts_as_long_as_the_task_may_run_even_with_short_ticks(
    settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The task's limits are the same pair, read once at import.
    limits = (tasks.evaluate_service.soft_time_limit, tasks.evaluate_service.time_limit)
    assert limits == services.evaluation_time_limits_s()
    settings.TICK_SECONDS = 5
    service = make_service()
    ttl_ms: list[int] = []

    def fetch(self: SimulatedMetricSource, svc: Service, now: datetime) -> MetricWindow:
        ttl_ms.append(int(services.redis_client().pttl(f"tipoff:evaluate:{svc.pk}")))
        return original(self, svc, now)

    original = SimulatedMetricSource.fetch
    monkeypatch.setattr(SimulatedMetricSource, "fetch", fetch)
    services.service_evaluate(service_id=service.pk, tick_at=_tick())
    _, hard_limit_s = services.evaluation_time_limits_s()
    assert ttl_ms[0] > (hard_limit_s - 1) * 1000


def test_it_holds_and_says_so_when_the_metric_source_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    service = make_service(demand_scale=40.0)
    other = make_service("live-odds", demand_scale=40.0)

    def broken(self: SimulatedMetricSource, svc: Service, now: datetime) -> MetricWindow:
        if svc == service:
            raise MetricsUnavailable("connection refused")
        return original(self, svc, now)

    original = SimulatedMetricSource.fetch
    monkeypatch.setattr(SimulatedMetricSource, "fetch", broken)
    tick = _tick()
    held = _decision(services.service_evaluate(service_id=service.pk, tick_at=tick))
    assert (held.reason_code, held.desired, held.changed) == ("METRICS_UNAVAILABLE", 2, False)
    assert "metrics unavailable" in held.summary
    moved = _decision(services.service_evaluate(service_id=other.pk, tick_at=tick))
    assert moved.changed


def test_a_signal_the_source_could_not_read_is_named_and_the_tick_still_scales_out(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    service = make_service(replicas=2, demand_scale=40.0)

    def partial(self: SimulatedMetricSource, svc: Service, now: datetime) -> MetricWindow:
        points = tuple(replace(p, p95_ms=None) for p in original(self, svc, now).points)
        return MetricWindow(points=points, unread={"p95_ms": "no answer within 8 s"})

    original = SimulatedMetricSource.fetch
    monkeypatch.setattr(SimulatedMetricSource, "fetch", partial)
    decision = _decision(services.service_evaluate(service_id=service.pk, tick_at=_tick()))
    assert decision.changed and decision.desired > 2
    assert decision.summary.endswith("(p95_ms unread: no answer within 8 s)")
    assert MetricSample.objects.get(service=service).p95_ms is None


def test_an_unexpected_error_from_the_metric_source_holds_instead_of_losing_the_tick(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    service = make_service(demand_scale=40.0, policy={"fallback_replicas": 5, "fallback_after_s": 10})

    def broken(self: SimulatedMetricSource, svc: Service, now: datetime) -> MetricWindow:
        raise KeyError("value")

    monkeypatch.setattr(SimulatedMetricSource, "fetch", broken)
    tick = _tick()
    held = _decision(services.service_evaluate(service_id=service.pk, tick_at=tick))
    assert (held.reason_code, held.desired, held.changed) == ("METRICS_UNAVAILABLE", 2, False)
    assert "KeyError" in held.summary
    assert "metric source raised KeyError" in caplog.text
    # The tick was recorded, so the missing metrics count towards the fallback, which applies once it is due.
    later = _decision(services.service_evaluate(service_id=service.pk, tick_at=tick + timedelta(seconds=15)))
    assert (later.desired, later.actuation) == (5, Decision.Actuation.OK)


def test_an_unexpected_error_from_the_fleet_status_holds_without_actuating(monkeypatch: pytest.MonkeyPatch) -> None:
    service = make_service(demand_scale=40.0)

    def broken(self: SimulatedActuator, svc: Service, now: datetime) -> FleetStatus:
        raise TypeError("'NoneType' object is not subscriptable")

    monkeypatch.setattr(SimulatedActuator, "status", broken)
    held = _decision(services.service_evaluate(service_id=service.pk, tick_at=_tick()))
    assert held.reason_code == "ACTUATOR_UNAVAILABLE" and not held.changed
    assert "actuator unavailable: TypeError" in held.summary


def test_a_stored_policy_the_engine_refuses_holds_the_count_and_names_the_parameter(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Little demand on 8 replicas: a valid policy scales in at once (the twin below); the refused one holds all 8.
    prompt = {"scale_down_stabilization_s": 0, "stabilization_per_delay": 0}
    service = make_service(replicas=8, demand_scale=0.01, policy=prompt)
    twin = make_service("live-odds", replicas=8, demand_scale=0.01, policy=prompt)
    # Saved before the range narrowed (system check tipoff.W001): written past the form and the API.
    Service.objects.filter(pk=service.pk).update(policy={**prompt, "tolerance": 0.9})
    tick = _tick()
    with caplog.at_level(logging.WARNING, logger="scaling.services"):
        assert tasks.evaluate_service.run(service.pk, tick.isoformat()) == "decided"  # the worker's own task
    held = Decision.objects.get(service=service, tick=tick)
    assert (held.reason_code, held.provisioned, held.desired, held.changed) == ("POLICY_INVALID", 8, 8, False)
    assert "policy parameter tolerance must be in [0, 0.5], not 0.9" in held.summary
    assert held.recommendation is None and held.actuation == Decision.Actuation.NONE
    assert len(SimulatedFleet.objects.get(service=service).ready_at) == 8
    assert MetricSample.objects.filter(service=service).count() == 1  # the samples are still kept
    (warning,) = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert "win-probability" in warning.getMessage() and "tolerance" in warning.getMessage()
    scaled_in = _decision(services.service_evaluate(service_id=twin.pk, tick_at=tick))
    assert scaled_in.desired < 8


def test_a_pin_still_applies_under_a_stored_policy_the_engine_refuses() -> None:
    # The operator pins while the policy is being mended: the tick actuates the pin and still names the policy.
    service = make_service(replicas=3, demand_scale=0.01)
    Service.objects.filter(pk=service.pk).update(policy={"tolerance": 0.9})
    now = timezone.now()
    Override.objects.create(
        service=service,
        kind="pin",
        replicas=6,
        reason="marquee game",
        starts_at=now - timedelta(minutes=1),
        ends_at=now + timedelta(hours=1),
    )
    decision = _decision(services.service_evaluate(service_id=service.pk, tick_at=_tick()))
    assert (decision.reason_code, decision.desired, decision.actuation) == (
        "OVERRIDE_ACTIVE",
        6,
        Decision.Actuation.OK,
    )
    assert "pins 6" in decision.summary and "tolerance must be in [0, 0.5], not 0.9" in decision.summary
    assert len(SimulatedFleet.objects.get(service=service).ready_at) == 6


def test_a_stale_version_is_not_actuated() -> None:
    service = make_service(demand_scale=40.0)
    tick = _tick()
    result = services.service_evaluate(service_id=service.pk, tick_at=tick - timedelta(seconds=30))
    first = _decision(result)
    assert first.actuation == Decision.Actuation.OK
    stale = services.decision_actuate(decision=first, service=service, expected_version=service.version)
    assert stale == Decision.Actuation.STALE


def test_an_actuation_interrupted_by_the_time_limit_is_recorded_as_unknown(monkeypatch: pytest.MonkeyPatch) -> None:
    service = make_service(replicas=2, demand_scale=40.0)

    def interrupted(self: SimulatedActuator, svc: Service, replicas: int, now: datetime) -> ActuationResult:
        raise SoftTimeLimitExceeded()

    monkeypatch.setattr(SimulatedActuator, "set_capacity", interrupted)
    tick = _tick()
    with pytest.raises(SoftTimeLimitExceeded):
        services.service_evaluate(service_id=service.pk, tick_at=tick)
    decision = Decision.objects.get(service=service, tick=tick)
    assert decision.actuation == Decision.Actuation.ERROR
    assert decision.actuation_error.startswith("outcome unknown: the call was interrupted (the task's time limit)")
    event = AuditEvent.objects.get(event_type=EventType.ACTUATOR_ERROR, object_id=str(decision.pk))
    assert event.after == {"replicas": decision.desired, "status": "error"}


def test_the_next_tick_closes_an_actuation_left_pending_by_a_killed_evaluation() -> None:
    service = make_service(replicas=2, demand_scale=40.0)
    tick = _tick()
    # What a worker killed at the hard time limit leaves: the decision committed, its call never answered.
    services.service_evaluate(service_id=service.pk, tick_at=tick - timedelta(seconds=15))
    killed = Decision.objects.get(service=service)
    Decision.objects.filter(pk=killed.pk).update(actuation=Decision.Actuation.PENDING, actuated_at=None)

    services.service_evaluate(service_id=service.pk, tick_at=tick)

    killed.refresh_from_db()
    assert killed.actuation == Decision.Actuation.ERROR and killed.actuation_error.startswith("outcome unknown")
    assert AuditEvent.objects.filter(event_type=EventType.ACTUATOR_ERROR, object_id=str(killed.pk)).exists()


def test_one_aws_call_gives_up_well_inside_the_evaluation_soft_time_limit(settings: Any) -> None:
    settings.TICK_SECONDS = 1
    soft_limit_s, _ = services.evaluation_time_limits_s()
    assert aws.worst_call_s() < soft_limit_s


def test_a_prometheus_fetch_ends_inside_a_tick_and_after_the_fleet_status_inside_the_soft_time_limit(
    settings: Any,
) -> None:
    assert prometheus.TIMEOUT_S <= prometheus.FETCH_BUDGET_S < settings.TICK_SECONDS
    settings.TICK_SECONDS = 1
    soft_limit_s, _ = services.evaluation_time_limits_s()
    assert aws.worst_call_s() + prometheus.FETCH_BUDGET_S < soft_limit_s


def test_dry_run_records_but_never_actuates() -> None:
    service = make_service(demand_scale=40.0, mode="dry_run")
    result = services.service_evaluate(service_id=service.pk, tick_at=_tick())
    decision = _decision(result)
    assert decision.changed and decision.actuation == Decision.Actuation.DRY_RUN
    assert len(SimulatedFleet.objects.get(service=service).ready_at) == 2


def test_a_pause_lasts_until_its_end_then_the_tick_makes_the_service_active_and_decides() -> None:
    service = make_service(replicas=2, demand_scale=40.0)
    tick = _tick()
    services.service_set_mode(
        service=service,
        mode=Service.Mode.PAUSED,
        actor=Actor.system("test"),
        reason="backend maintenance",
        until=tick + timedelta(seconds=20),
        now=tick - timedelta(minutes=1),
    )

    held = _decision(services.service_evaluate(service_id=service.pk, tick_at=tick + timedelta(seconds=15)))
    assert (held.mode, held.changed) == ("paused", False)
    # The decision says until when (the engine reads the end from its input).
    assert held.summary.startswith("Held at 2: service paused until ") and held.summary.endswith(" ET")

    after_end = _decision(services.service_evaluate(service_id=service.pk, tick_at=tick + timedelta(seconds=30)))
    service.refresh_from_db()
    assert (service.mode, service.mode_until) == (Service.Mode.ACTIVE, None)
    assert (after_end.mode, after_end.actuation) == ("active", Decision.Actuation.OK) and after_end.desired > 2
    event = AuditEvent.objects.filter(event_type=EventType.SERVICE_MODE_CHANGED).latest("id")
    assert event.actor_label == "system:tipoff" and event.actor_type == AuditEvent.ActorType.SYSTEM
    assert event.before == {"mode": "paused", "until": (tick + timedelta(seconds=20)).isoformat()}
    assert event.after == {"mode": "active", "until": None}
    assert event.reason.startswith("the pause set to end at ") and event.reason.endswith("has ended: active again")


def test_a_pause_without_an_end_is_given_one_by_the_next_tick_once_and_audited() -> None:
    # A pause set before every pause needed an end (or by hand in the database) would hold for good.
    service = make_service(replicas=2, demand_scale=40.0, mode="paused")
    assert service.mode_until is None
    tick = _tick()

    held = _decision(services.service_evaluate(service_id=service.pk, tick_at=tick))
    service.refresh_from_db()
    until = tick + timedelta(hours=settings.MODE_MAX_HOURS)
    assert (service.mode, service.mode_until) == (Service.Mode.PAUSED, until)
    assert (held.mode, held.changed) == ("paused", False)
    event = AuditEvent.objects.get(event_type=EventType.SERVICE_MODE_CHANGED)
    assert event.actor_type == AuditEvent.ActorType.SYSTEM
    assert (event.before, event.after) == (
        {"mode": "paused", "until": None},
        {"mode": "paused", "until": until.isoformat()},
    )
    assert event.reason == (
        f"the pause had no end: it now ends at {until:%Y-%m-%d %H:%M} UTC, "
        f"the longest a pause may last ({settings.MODE_MAX_HOURS:g} h)"
    )

    services.service_evaluate(service_id=service.pk, tick_at=tick + timedelta(seconds=15))
    assert AuditEvent.objects.filter(event_type=EventType.SERVICE_MODE_CHANGED).count() == 1


def test_a_block_that_goes_on_is_audited_once_and_a_new_one_again() -> None:
    # Resting at its minimum of two while the policy would go lower: blocked every tick, audited once. (No
    # panic or pre-warm: at a fraction of a request a second, Poisson noise alone would move them.)
    quiet = {"panic_threshold": 0, "prewarm": False}
    service = make_service(replicas=2, demand_scale=0.01, min_replicas=2, policy=quiet)
    tick = _tick()
    first = _decision(services.service_evaluate(service_id=service.pk, tick_at=tick))
    second = _decision(services.service_evaluate(service_id=service.pk, tick_at=tick + timedelta(seconds=15)))
    assert (first.reason_code, second.reason_code) == ("AT_MIN", "AT_MIN")
    assert first.recommendation == second.recommendation == 1
    blocked = AuditEvent.objects.filter(service=service, event_type=EventType.DECISION_BLOCKED)
    assert [e.object_id for e in blocked] == [str(first.pk)]
    # In dry run the same block is a new state, recorded once as a dry-run event, then not again.
    Service.objects.filter(pk=service.pk).update(mode=Service.Mode.DRY_RUN)
    dry = [
        _decision(services.service_evaluate(service_id=service.pk, tick_at=tick + timedelta(seconds=s)))
        for s in (30, 45)
    ]
    assert [d.reason_code for d in dry] == ["DRY_RUN", "DRY_RUN"]
    events = AuditEvent.objects.filter(service=service, event_type=EventType.DECISION_DRY_RUN)
    assert [e.object_id for e in events] == [str(dry[0].pk)]
    assert blocked.count() == 1
    assert Decision.objects.filter(service=service).count() == 4


def test_ticks_without_metrics_count_towards_the_fallback_whatever_set_their_count() -> None:
    # An override decided the middle tick (OVERRIDE_ACTIVE), yet it had no metrics either: the run of
    # missing metrics began at the first; a paused tick reads none and breaks no run.
    service = make_service()
    t0 = _tick()

    def record(k: int, reason: str, recommendation: int | None, mode: str = "active") -> None:
        Decision.objects.create(
            service=service,
            tick=t0 + timedelta(seconds=15 * k),
            provisioned=4,
            ready=4,
            desired=4,
            recommendation=recommendation,
            reason_code=reason,
            summary="",
            mode=mode,
        )

    record(0, "NO_CHANGE", 4)
    record(1, "METRICS_STALE", None)
    record(2, "OVERRIDE_ACTIVE", None)
    assert selectors.metrics_missing_since(service, t0 + timedelta(seconds=45)) == t0 + timedelta(seconds=15)
    record(3, "PAUSED", None, mode="paused")
    assert selectors.metrics_missing_since(service, t0 + timedelta(seconds=60)) is None
    inp = selectors.engine_input(service, now=t0 + timedelta(seconds=1), provisioned=4, ready=4, metrics=())
    # The rate limit starts a period from the count provisioned when its oldest decision was made.
    assert [(p.replicas, p.provisioned) for p in inp.recent] == [(4, 4)]


def test_services_refit_their_demand_models_on_different_ticks() -> None:
    # 00:00 UTC (19:00 ET) starts a new refit period for at most one of twenty services.
    midnight = datetime(2026, 1, 16, tzinfo=UTC)
    renewed = [
        pk
        for pk in range(1, 21)
        if selectors.refit_period(pk, midnight) != selectors.refit_period(pk, midnight - timedelta(seconds=15))
    ]
    assert len(renewed) <= 1


def test_a_tick_that_waited_past_the_next_is_dropped() -> None:
    assert 0 < tasks.beat_schedule()["tick"]["options"]["expires"] < settings.TICK_SECONDS


def test_the_override_preview_reads_tonight_from_the_decision_a_real_tick_stored() -> None:
    # The preview's baseline reads tonight's ratio and headroom from the latest decision's forecast rule: a tick
    # that stored them under other names would leave it falling back to the bare profile, unnoticed.
    from scaling.override_selectors import Tonight, engine_tonight

    service = make_service(replicas=2, demand_scale=40.0)
    tick = _tick()
    decision = _decision(services.service_evaluate(service_id=service.pk, tick_at=tick))
    [forecast] = [r for r in decision.explanation["rules"] if r["rule"] == "forecast"]
    inputs = forecast["inputs"]
    assert isinstance(inputs["ratio"], float) and inputs["ratio"] > 0
    read = engine_tonight(service, now=tick + timedelta(seconds=1), learned=inputs["learned"])
    assert read == Tonight(inputs["ratio"], inputs["headroom"])


def _hold(recommendation: int, reason: str, binding: str, desired: int = 8) -> Any:
    from scaling.policy.types import Constraint, Reason
    from scaling.policy.types import Decision as EngineDecision

    constraint = Constraint(binding, recommendation, desired, f"{binding} holds")
    return EngineDecision(
        desired, desired, recommendation, Reason(reason), f"Held at {desired}: {binding}", (), (constraint,)
    )


def test_a_hold_is_audited_when_its_reason_changes_not_when_the_hidden_recommendation_moves() -> None:
    # A pin held 8 while the policy's count went 4 → 5 → 6 → 7: it was audited at each, with the same text.
    service = make_service()
    tick = _tick()
    holds = [
        _hold(4, "OVERRIDE_ACTIVE", "override_pin"),
        _hold(5, "OVERRIDE_ACTIVE", "override_pin"),
        _hold(6, "OVERRIDE_ACTIVE", "override_pin"),
        _hold(5, "STABILIZING_SCALE_IN", "demand_rising"),  # a new reason: audited
        _hold(7, "OVERRIDE_ACTIVE", "override_pin"),  # back to the pin, still the same hold: not again
        _hold(4, "STABILIZING_SCALE_IN", "demand_rising"),
        _hold(9, "AT_MAX", "max_replicas"),
        _hold(10, "AT_MAX", "max_replicas"),
    ]
    decisions = [
        services.decision_record(
            service=service, tick_at=tick + timedelta(seconds=15 * k), result=hold, worker="w", ready=8
        )
        for k, hold in enumerate(holds)
    ]
    blocked = AuditEvent.objects.filter(service=service, event_type=EventType.DECISION_BLOCKED).order_by("id")
    assert [e.object_id for e in blocked] == [str(decisions[i].pk) for i in (0, 3, 6)]
    # A real change ends the hold: the same hold after it is audited again.
    scaled = replace(_hold(9, "SCALED_OUT", "max_replicas"), current=8, desired=9, summary="Scaled 8 → 9")
    services.decision_record(service=service, tick_at=tick + timedelta(seconds=150), result=scaled, worker="w", ready=8)
    again = services.decision_record(
        service=service,
        tick_at=tick + timedelta(seconds=165),
        result=_hold(4, "OVERRIDE_ACTIVE", "override_pin", 9),
        worker="w",
        ready=9,
    )
    assert [e.object_id for e in blocked.all()][-1] == str(again.pk)
    assert AuditEvent.objects.filter(service=service, event_type=EventType.DECISION_SCALED).count() == 1
