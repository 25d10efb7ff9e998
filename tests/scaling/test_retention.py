"""Samples and decisions older than their retention are pruned, in batches, and nothing else is."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from scaling import retention, services, tasks
from scaling.audit import Actor, EventType
from scaling.models import AuditEvent, Decision, MetricSample, Service
from scaling.retention import Reader, check_retention, history_prune
from tests.factories import T0, make_service

pytestmark = pytest.mark.django_db

NOW = T0 + timedelta(days=200)
SYSTEM = Actor.system("prune_history")


def _sample(service: Service, ts: datetime) -> MetricSample:
    return MetricSample.objects.create(service=service, ts=ts, rps=100.0, provisioned=2, ready=2)


def _decision(service: Service, tick: datetime) -> Decision:
    return Decision.objects.create(
        service=service, tick=tick, provisioned=2, ready=2, desired=2, recommendation=2, reason_code="NO_CHANGE"
    )


def _kept(model: type[MetricSample] | type[Decision]) -> set[int]:
    return set(model.objects.values_list("pk", flat=True))


def test_a_sample_exactly_at_the_retention_is_kept_and_one_a_second_older_deleted(settings: Any) -> None:
    settings.METRIC_RETENTION_DAYS = 35
    service = make_service()
    at_limit = _sample(service, NOW - timedelta(days=35))
    _sample(service, NOW - timedelta(days=35, seconds=1))
    result = history_prune(actor=SYSTEM, now=NOW)
    assert _kept(MetricSample) == {at_limit.pk}
    assert (result.counts.samples, result.counts.decisions, result.finished) == (1, 0, True)


def test_a_decision_exactly_at_the_retention_is_kept_and_one_a_second_older_deleted(settings: Any) -> None:
    settings.DECISION_RETENTION_DAYS = 90
    service = make_service()
    at_limit = _decision(service, NOW - timedelta(days=90))
    _decision(service, NOW - timedelta(days=90, seconds=1))
    result = history_prune(actor=SYSTEM, now=NOW)
    assert _kept(Decision) == {at_limit.pk}
    assert (result.counts.samples, result.counts.decisions) == (0, 1)


def test_samples_and_decisions_each_keep_their_own_retention(settings: Any) -> None:
    settings.METRIC_RETENTION_DAYS, settings.DECISION_RETENTION_DAYS = 35, 90
    service = make_service()
    forty_days_ago = NOW - timedelta(days=40)
    _sample(service, forty_days_ago)
    decision = _decision(service, forty_days_ago)
    history_prune(actor=SYSTEM, now=NOW)
    assert not MetricSample.objects.exists()
    assert _kept(Decision) == {decision.pk}


def test_more_rows_than_a_batch_go_in_several_deletes_by_primary_key() -> None:
    service = make_service()
    old = NOW - timedelta(days=100)
    MetricSample.objects.bulk_create(
        MetricSample(service=service, ts=old + timedelta(seconds=15 * i), rps=1.0) for i in range(10)
    )
    with CaptureQueriesContext(connection) as queries:
        result = history_prune(actor=SYSTEM, now=NOW, batch_rows=3)
    table = MetricSample._meta.db_table
    deletes = [q["sql"] for q in queries.captured_queries if q["sql"].startswith("DELETE") and table in q["sql"]]
    assert result.counts.samples == 10 and not MetricSample.objects.exists()
    assert len(deletes) == 4  # 3 + 3 + 3 + 1
    assert all(f'"{MetricSample._meta.db_table}"."id" IN' in sql for sql in deletes), deletes


def test_other_services_rows_and_newer_rows_are_untouched() -> None:
    pruned, other = make_service("win-probability"), make_service("player-props")
    old, recent = NOW - timedelta(days=100), NOW - timedelta(days=1)
    _sample(pruned, old), _decision(pruned, old)
    kept = {_sample(pruned, recent).pk, _sample(other, recent).pk}
    kept_decisions = {_decision(pruned, recent).pk, _decision(other, recent).pk}
    other_old = _sample(other, old)
    history_prune(actor=SYSTEM, now=NOW)
    assert _kept(MetricSample) == kept and _kept(Decision) == kept_decisions
    assert not MetricSample.objects.filter(pk=other_old.pk).exists()  # its own old rows go


def test_a_disabled_services_old_rows_are_pruned_too() -> None:
    service = make_service(enabled=False)
    _sample(service, NOW - timedelta(days=100))
    assert history_prune(actor=SYSTEM, now=NOW).counts.samples == 1


def test_it_stops_when_the_time_budget_is_spent_and_the_next_run_goes_on() -> None:
    service = make_service()
    MetricSample.objects.bulk_create(
        MetricSample(service=service, ts=NOW - timedelta(days=100, seconds=15 * i), rps=1.0) for i in range(10)
    )
    ticks = iter(range(1000))  # a clock that moves one second each time it is read
    first = history_prune(actor=SYSTEM, now=NOW, batch_rows=2, time_budget_s=2.5, clock=lambda: float(next(ticks)))
    assert not first.finished and 0 < first.counts.samples < 10
    assert MetricSample.objects.count() == 10 - first.counts.samples
    # Oldest first: what is left is the newest of the old rows.
    assert min(MetricSample.objects.values_list("ts", flat=True)) > NOW - timedelta(days=100, seconds=15 * 9)
    second = history_prune(actor=SYSTEM, now=NOW, time_budget_s=None)
    assert second.finished and not MetricSample.objects.exists()


def test_a_prune_that_deleted_rows_is_one_audit_event_with_its_counts(settings: Any) -> None:
    settings.METRIC_RETENTION_DAYS, settings.DECISION_RETENTION_DAYS = 35, 90
    service = make_service()
    _sample(service, NOW - timedelta(days=100)), _decision(service, NOW - timedelta(days=100))
    history_prune(actor=SYSTEM, now=NOW)
    event = AuditEvent.objects.get(event_type=EventType.HISTORY_PRUNED)
    recorded = event.after
    assert event.actor_label == "system:prune_history" and recorded is not None
    assert recorded["samples"] == 1 and recorded["decisions"] == 1
    assert recorded["by_service"] == {service.name: {"samples": 1, "decisions": 1}}
    assert recorded["decisions_before"] == (NOW - timedelta(days=90)).isoformat()
    assert "older than 35 days" in event.reason and "older than 90 days" in event.reason


def test_a_prune_with_nothing_to_delete_records_nothing() -> None:
    _sample(make_service(), NOW)
    assert history_prune(actor=SYSTEM, now=NOW).counts.total == 0
    assert not AuditEvent.objects.filter(event_type=EventType.HISTORY_PRUNED).exists()


def test_the_audit_chain_still_verifies_after_audited_decisions_are_pruned(settings: Any) -> None:
    settings.DECISION_RETENTION_DAYS = 90
    service = make_service(demand_scale=40.0)  # demand above 2 replicas: the tick scales out, and is audited
    tick = services.align_tick(NOW - timedelta(days=100))
    result = services.service_evaluate(service_id=service.pk, tick_at=tick)
    assert result.decision_id is not None
    about_it = AuditEvent.objects.filter(object_type="decision", object_id=str(result.decision_id))
    recorded = list(about_it.values_list("pk", "hash"))
    assert recorded, "the scale-out should have been audited"
    call_command("verify_audit")

    assert history_prune(actor=SYSTEM, now=NOW).counts.decisions == 1
    assert not Decision.objects.filter(pk=result.decision_id).exists()
    assert list(about_it.values_list("pk", "hash")) == recorded  # audit events are not touched
    call_command("verify_audit")  # raises CommandError on a broken chain


def test_the_command_dry_run_prints_what_would_go_and_deletes_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    service = make_service()
    now = timezone.now()
    _sample(service, now - timedelta(days=400)), _decision(service, now - timedelta(days=400))
    _sample(service, now - timedelta(days=1)), _decision(service, now - timedelta(days=1))
    call_command("prune_history", "--dry-run")
    out = capsys.readouterr().out
    assert f"{service.name}: would delete 1 samples, 1 decisions" in out
    assert "would delete 1 metric samples and 1 decisions in all" in out
    assert MetricSample.objects.count() == 2 and Decision.objects.count() == 2
    assert not AuditEvent.objects.filter(event_type=EventType.HISTORY_PRUNED).exists()


def test_the_command_prunes_and_names_who_ran_it(capsys: pytest.CaptureFixture[str]) -> None:
    service = make_service()
    now = timezone.now()  # the command prunes as of now
    _sample(service, now - timedelta(days=400))
    kept = _sample(service, now - timedelta(days=1))
    call_command("prune_history", "--operator", "ops")
    assert "deleted 1 metric samples and 0 decisions in all" in capsys.readouterr().out
    assert _kept(MetricSample) == {kept.pk}
    assert AuditEvent.objects.get(event_type=EventType.HISTORY_PRUNED).actor_label == "system:prune_history:ops"


def test_the_task_prunes_hourly() -> None:
    entry = tasks.beat_schedule()["prune_history"]
    assert entry["task"] == tasks.prune_history.name and entry["schedule"] == 3600.0


def test_the_retention_check_names_the_variable_and_the_longest_reader() -> None:
    readers = (Reader("the short one", timedelta(days=2)), Reader("the long one", timedelta(days=10)))
    with pytest.raises(ImproperlyConfigured, match=r"^X_DAYS=9 is shorter .*: the long one reaches 10 days; set it"):
        check_retention("X_DAYS", 9, readers)
    check_retention("X_DAYS", 10, readers)


def test_the_metric_retention_covers_every_reader_of_samples() -> None:
    # What the settings check is measured against: the engine's week of learning, read back from the start of
    # its refit period (up to 6 h 10 min before now), the 7 d charts, what-if.
    reaches = {r.what: r.reach for r in retention.sample_readers()}
    learning = next(reach for what, reach in reaches.items() if "FORECAST_LEARN_WINDOW" in what)
    assert learning == timedelta(days=7, hours=6, minutes=10) == max(reaches.values())
    assert sorted(reaches.values())[:-1] == [timedelta(days=7)] * 2
