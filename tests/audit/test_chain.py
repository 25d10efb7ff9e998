from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scaling.audit import Actor, EventType, audit_record, verify_chain
from scaling.models import AuditChainHead, AuditEvent
from tests.audit.helpers import forge_after, make_chain, tampering

pytestmark = pytest.mark.django_db

FIELDS_TO_ALTER: dict[str, Any] = {
    "reason": "nothing to see here",
    "actor_label": "someone-else",
    "event_type": "override.cancelled",
    "before": {"desired": 999},
    "after": None,
    "cost_impact_per_hour": 123.0,
    "object_id": "42",
    "service_id": 777,
    "actor_user_id": 1,
    "prev_hash": "f" * 64,
    "hash": "e" * 64,
}
HYPO = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
chains = st.integers(min_value=1, max_value=12).flatmap(lambda n: st.tuples(st.just(n), st.integers(0, n - 1)))


def _reset() -> None:
    with tampering():
        AuditEvent.objects.all().delete()
        AuditChainHead.objects.all().delete()


def test_it_vouches_for_an_untouched_chain() -> None:
    make_chain(5)
    report = verify_chain()
    assert report.ok and report.events_checked == 5


def test_it_vouches_for_an_empty_log() -> None:
    assert verify_chain().ok


@HYPO
@given(chain=chains, field=st.sampled_from(sorted(FIELDS_TO_ALTER)))
def test_it_detects_any_altered_event(chain: tuple[int, int], field: str) -> None:
    _reset()
    n, position = chain
    events = make_chain(n)
    target = events[position]
    with tampering():
        AuditEvent.objects.filter(pk=target.pk).update(**{field: FIELDS_TO_ALTER[field]})
    report = verify_chain()
    assert not report.ok
    assert report.first_broken_id == target.pk or (field == "hash" and position == n - 1)


@HYPO
@given(chain=chains)
def test_it_detects_any_deleted_event(chain: tuple[int, int]) -> None:
    _reset()
    n, position = chain
    events = make_chain(n)
    with tampering():
        AuditEvent.objects.filter(pk=events[position].pk).delete()
    report = verify_chain()
    assert not report.ok
    if position < n - 1:
        assert report.first_broken_id == events[position + 1].pk
    else:
        assert "newest events were deleted" in report.message


@HYPO
@given(n=st.integers(min_value=1, max_value=12), data=st.data())
def test_it_detects_a_well_formed_event_inserted_anywhere(n: int, data: st.DataObject) -> None:
    _reset()
    events = make_chain(n)
    position = data.draw(st.integers(min_value=0, max_value=n))
    with tampering():
        forged = forge_after(events, position)
    report = verify_chain()
    assert not report.ok
    expected = events[position].pk if position < n else forged.pk
    assert report.first_broken_id == expected


def test_it_detects_the_newest_events_deleted_together() -> None:
    events = make_chain(6)
    with tampering():
        AuditEvent.objects.filter(pk__in=[e.pk for e in events[-3:]]).delete()
    report = verify_chain()
    assert not report.ok and report.first_broken_id == events[-1].pk


def test_it_keeps_walking_events_appended_while_it_runs() -> None:
    make_chain(3)
    from django.db import transaction

    with transaction.atomic():
        audit_record(actor=Actor.system("late"), event_type=EventType.AUTH_LOGIN, at=None)
    assert verify_chain(chunk_size=1).ok


def test_the_command_names_the_first_broken_link_and_records_the_result() -> None:
    events = make_chain(4)
    call_command("verify_audit")
    with tampering():
        AuditEvent.objects.filter(pk=events[1].pk).update(reason="edited")
    with pytest.raises(CommandError, match=rf"BROKEN at event #{events[1].pk}"):
        call_command("verify_audit")
    from scaling.audit import latest_verification

    latest = latest_verification()
    assert latest is not None and not latest.ok and latest.first_broken_id == events[1].pk


def test_a_time_in_another_zone_hashes_the_same_after_the_round_trip() -> None:
    from zoneinfo import ZoneInfo

    from django.db import transaction

    from tests.factories import T0

    with transaction.atomic():
        audit_record(
            actor=Actor.system(),
            event_type=EventType.AUTH_LOGIN,
            at=(T0 + timedelta(hours=1)).astimezone(ZoneInfo("America/New_York")),
            before={"b": 1, "a": [1.5, "x"]},
        )
    assert verify_chain().ok


def test_the_fast_verifier_hashes_exactly_what_the_model_hashes() -> None:
    from scaling.audit import _PAYLOAD_FIELDS, payload_of

    (event,) = make_chain(1)
    row = AuditEvent.objects.filter(pk=event.pk).values_list(*_PAYLOAD_FIELDS).get()
    assert payload_of(list(row)) == event.payload()
