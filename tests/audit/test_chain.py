from __future__ import annotations

import json
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


def test_it_names_every_broken_link_not_only_the_first() -> None:
    events = make_chain(8)
    with tampering():
        AuditEvent.objects.filter(pk=events[1].pk).update(reason="edited")
        AuditEvent.objects.filter(pk=events[5].pk).delete()

    report = verify_chain(chunk_size=3)

    assert not report.ok and report.broken_count == 2 and report.first_broken_id == events[1].pk
    assert [(b.event_id, b.reason) for b in report.breaks] == [
        (events[1].pk, f"event #{events[1].pk} was altered: its content no longer matches its hash"),
        (
            events[6].pk,
            f"event #{events[6].pk} does not link to event #{events[4].pk}: an event was deleted or inserted here",
        ),
    ]
    assert report.events_checked == 7
    assert report.message.startswith(
        f"2 broken links in 7 events walked from the start of the chain; the first: event #{events[1].pk} was altered"
    )
    assert report.through_event_id is None  # nothing an incremental run could start from


def test_after_a_break_the_events_that_still_link_are_not_flagged() -> None:
    events = make_chain(6)
    with tampering():  # the stored hash itself rewritten: the next event still links to what the content gives
        AuditEvent.objects.filter(pk=events[2].pk).update(hash="e" * 64)
        AuditEvent.objects.filter(pk=events[4].pk).update(prev_hash="f" * 64)

    report = verify_chain()

    assert [b.event_id for b in report.breaks] == [events[2].pk, events[4].pk]
    assert report.breaks[1].reason.endswith(
        "an event was deleted or inserted here, and was altered: its content no longer matches its hash"
    )


def test_it_counts_every_broken_link_but_names_only_the_first_few() -> None:
    from scaling.audit import BREAKS_LISTED

    events = make_chain(BREAKS_LISTED + 5)
    with tampering():
        AuditEvent.objects.update(reason="all edited")

    report = verify_chain()

    assert report.broken_count == BREAKS_LISTED + 5
    assert [b.event_id for b in report.breaks] == [e.pk for e in events[:BREAKS_LISTED]]
    assert report.message.startswith(f"{BREAKS_LISTED + 5} broken links in")


def test_an_altered_event_and_the_newest_deleted_are_both_named_with_the_chain_head_check() -> None:
    events = make_chain(5)
    with tampering():
        AuditEvent.objects.filter(pk=events[0].pk).update(reason="edited")
        AuditEvent.objects.filter(pk=events[-1].pk).delete()

    report = verify_chain()

    assert [b.event_id for b in report.breaks] == [events[0].pk, events[-1].pk]
    assert "newest events were deleted" in report.breaks[1].reason


def test_an_incremental_run_whose_start_was_altered_still_walks_the_events_after_it() -> None:
    from django.db import transaction

    from scaling.audit import verify_and_record

    events = make_chain(3)
    verify_and_record()
    with transaction.atomic():
        later = audit_record(actor=Actor.system("later"), event_type=EventType.AUTH_LOGIN)
    with tampering():
        AuditEvent.objects.filter(pk=events[-1].pk).update(hash="d" * 64)
        AuditEvent.objects.filter(pk=later.pk).update(reason="edited")

    result = verify_and_record(full=False)

    assert not result.ok and not result.full and result.events_checked == 1
    assert [b["event_id"] for b in result.breaks] == [events[-1].pk, later.pk]


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
    assert latest.broken_count == 1 and latest.message.startswith("1 broken link in 4 events walked")


def test_the_command_lists_each_broken_link_and_the_recorded_result_counts_them(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from scaling.audit import latest_verification

    events = make_chain(6)
    with tampering():
        AuditEvent.objects.filter(pk=events[0].pk).update(actor_label="someone-else")
        AuditEvent.objects.filter(pk=events[3].pk).delete()

    with pytest.raises(CommandError, match=rf"BROKEN at event #{events[0].pk}: 2 broken links in 5 events"):
        call_command("verify_audit")

    listed = capsys.readouterr().err.splitlines()
    assert listed == [
        f"  event #{events[0].pk} was altered: its content no longer matches its hash",
        f"  event #{events[4].pk} does not link to event #{events[2].pk}: an event was deleted or inserted here",
    ]
    latest = latest_verification()
    assert latest is not None and (latest.broken_count, latest.first_broken_id) == (2, events[0].pk)
    assert [b["event_id"] for b in latest.breaks] == [events[0].pk, events[4].pk]


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
    from scaling.audit import PAYLOAD_FIELDS, payload_of

    (event,) = make_chain(1)
    row = AuditEvent.objects.filter(pk=event.pk).values_list(*PAYLOAD_FIELDS).get()
    assert payload_of(list(row)) == event.payload()


def test_an_incremental_run_walks_only_the_new_events_from_where_the_last_one_ended() -> None:
    from django.db import transaction

    from scaling.audit import verify_and_record

    make_chain(5)
    first = verify_and_record()
    assert first.ok and first.full and first.events_checked == 5
    with transaction.atomic():
        for _ in range(3):
            audit_record(actor=Actor.system("later"), event_type=EventType.AUTH_LOGIN)
    second = verify_and_record(full=False)
    assert second.ok and not second.full and second.events_checked == 3
    assert second.through_event_id == AuditEvent.objects.order_by("-id").values_list("id", flat=True).first()


def test_an_incremental_run_notices_its_starting_point_was_tampered_with() -> None:
    from scaling.audit import verify_and_record

    events = make_chain(4)
    verify_and_record()
    with tampering():
        AuditEvent.objects.filter(pk=events[-1].pk).update(hash="d" * 64)
    result = verify_and_record(full=False)
    assert not result.ok and result.first_broken_id == events[-1].pk


def test_once_broken_the_alarm_stays_until_a_full_run_finds_the_chain_intact() -> None:
    from scaling.audit import verify_and_record

    events = make_chain(4)
    with tampering():
        AuditEvent.objects.filter(pk=events[0].pk).update(reason="edited")
    assert not verify_and_record().ok
    again = verify_and_record(full=False)
    assert not again.ok and again.full and again.first_broken_id == events[0].pk


def test_the_periodic_task_walks_everything_once_a_day_and_only_new_events_between() -> None:
    from datetime import UTC, datetime

    import time_machine

    from scaling.audit import latest_verification
    from scaling.tasks import verify_audit

    events = make_chain(3)
    with time_machine.travel(datetime(2026, 3, 1, tzinfo=UTC), tick=False) as clock:
        assert verify_audit() is True
        assert latest_verification().full  # type: ignore[union-attr]
        clock.shift(timedelta(minutes=10))
        with tampering():  # an old, already verified event: only the next full walk can see it
            AuditEvent.objects.filter(pk=events[0].pk).update(reason="edited")
        assert verify_audit() is True
        assert not latest_verification().full  # type: ignore[union-attr]
        clock.shift(timedelta(days=1))
        assert verify_audit() is False
        assert latest_verification().full  # type: ignore[union-attr]


# Values jsonb gives back differently from how Python's json writes them, and some it keeps.
JSONB_NUMBERS: list[Any] = [
    1e16,
    -2e16,
    1.2345678901234567e20,
    1.5e300,
    -0.0,
    [0.0, -0.0],
    1.0,
    0.1,
    1e-7,
    5e-324,
    9999999999999998.0,
    10**30,
    -(2**63),
    {"nested": {"price": 1e16, "rps": [2e16, 3.5]}},
]


@pytest.mark.parametrize("value", JSONB_NUMBERS, ids=repr)
def test_a_number_jsonb_rewrites_still_matches_its_hash(value: Any) -> None:
    from django.db import transaction

    from scaling.audit import canonical

    with transaction.atomic():
        written = audit_record(
            actor=Actor.system(), event_type=EventType.SERVICE_UPDATED, before={"v": value}, after=value
        )
    stored = AuditEvent.objects.get(pk=written.pk)
    # what was hashed is what PostgreSQL gives back, type for type (1e16 and 10**16 write differently)
    assert canonical(stored.payload()) == canonical(written.payload())
    assert verify_chain().ok


def test_hashes_of_values_jsonb_keeps_are_unchanged() -> None:
    """Events written before numbers were normalised still verify: only values that never round-tripped changed."""
    from scaling.audit import canonical, jsonb_value

    for value in [1.0, 0.1, 1e-7, 9999999999999998.0, 10**30, {"a": [1.5, "x", None, True]}]:
        assert canonical({"v": jsonb_value(value)}) == canonical({"v": json.loads(canonical({"v": value}))["v"]})
