from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import transaction

from scaling.audit import Actor, EventType, audit_record, verify_archive_file, verify_chain
from scaling.models import AuditCheckpoint, AuditEvent
from tests.audit.helpers import make_chain, tampering
from tests.factories import T0

pytestmark = pytest.mark.django_db


def test_it_exports_then_prunes_and_the_rest_still_verifies(tmp_path: Path) -> None:
    events = make_chain(10)  # one a minute from T0
    cutoff = T0 + timedelta(minutes=6)
    call_command("archive_audit", "--before", cutoff.isoformat(), "--out-dir", str(tmp_path), "--operator", "ops")

    remaining = list(AuditEvent.objects.order_by("id"))
    assert [e.pk for e in remaining[:4]] == [e.pk for e in events[6:]]
    archived = remaining[-1]
    assert archived.event_type == EventType.AUDIT_ARCHIVED and archived.actor_label == "system:archive_audit:ops"
    checkpoint = AuditCheckpoint.objects.get()
    assert checkpoint.through_event_id == events[5].pk and checkpoint.anchor_hash == events[5].hash
    assert (archived.after or {})["sha256"] == checkpoint.archive_sha256

    (archive,) = tmp_path.glob("audit-*.jsonl")
    lines = archive.read_text().splitlines()
    assert len(lines) == 7 and json.loads(lines[1])["hash"] == events[0].hash
    assert verify_chain().ok
    assert verify_archive_file(archive).ok
    call_command("verify_audit", "--archive", str(archive))


def test_a_second_archive_continues_from_the_first_checkpoint(tmp_path: Path) -> None:
    make_chain(6)
    call_command("archive_audit", "--before", (T0 + timedelta(minutes=3)).isoformat(), "--out-dir", str(tmp_path))
    call_command("archive_audit", "--before", (T0 + timedelta(minutes=5)).isoformat(), "--out-dir", str(tmp_path))
    assert AuditCheckpoint.objects.count() == 2
    assert verify_chain().ok
    assert all(verify_archive_file(path).ok for path in tmp_path.glob("audit-*.jsonl"))


def test_deleting_the_first_event_after_a_checkpoint_is_detected(tmp_path: Path) -> None:
    events = make_chain(5)
    call_command("archive_audit", "--before", (T0 + timedelta(minutes=2)).isoformat(), "--out-dir", str(tmp_path))
    with tampering():
        AuditEvent.objects.filter(pk=events[2].pk).delete()
    report = verify_chain()
    assert not report.ok and report.first_broken_id == events[3].pk


def test_it_refuses_to_archive_a_broken_chain(tmp_path: Path) -> None:
    events = make_chain(3)
    with tampering():
        AuditEvent.objects.filter(pk=events[0].pk).update(reason="edited")
    with pytest.raises(CommandError, match="refusing to archive a broken chain"):
        call_command("archive_audit", "--older-than-days", "0", "--out-dir", str(tmp_path))
    assert AuditEvent.objects.count() == 3 and not list(tmp_path.iterdir())


def test_a_tampered_archive_file_is_detected(tmp_path: Path) -> None:
    make_chain(4)
    call_command("archive_audit", "--before", (T0 + timedelta(minutes=3)).isoformat(), "--out-dir", str(tmp_path))
    (archive,) = tmp_path.glob("audit-*.jsonl")
    archive.write_text(archive.read_text().replace("event 1", "event X"))
    with pytest.raises(CommandError, match="altered"):
        call_command("verify_audit", "--archive", str(archive))


def _archived_seven(tmp_path: Path) -> tuple[list[AuditEvent], Path]:
    """A chain of 8 events, the oldest 7 archived to a file in `tmp_path`: the events and the file."""
    events = make_chain(8)
    call_command("archive_audit", "--before", (T0 + timedelta(minutes=7)).isoformat(), "--out-dir", str(tmp_path))
    (archive,) = tmp_path.glob("audit-*.jsonl")
    return events, archive


def test_every_tampered_line_of_an_archive_is_named_not_only_the_first(tmp_path: Path) -> None:
    # Two events altered far apart and a line of garbage between them: a reviewer sees all three at once, and
    # the file no longer matching its checkpoint, instead of fixing one and rerunning to find the next.
    events, archive = _archived_seven(tmp_path)
    lines = archive.read_text().splitlines(keepends=True)
    lines[2] = lines[2].replace("event 1", "event X")
    lines[6] = lines[6].replace("event 5", "event Y")
    lines.insert(4, "not an event\n")
    archive.write_text("".join(lines))
    report = verify_archive_file(archive)
    assert not report.ok and report.broken_count == 4 and report.events_checked == 7
    reasons = [b.reason for b in report.breaks]
    assert reasons[0].endswith(f":3: event #{events[1].pk} was altered")
    assert reasons[1].endswith(":5: not an archived event")
    assert reasons[2].endswith(f":8: event #{events[5].pk} was altered")
    assert "does not match its checkpoint" in reasons[3]
    assert report.message.startswith(f"4 broken links in 7 events walked from the start of {archive.name}; the first:")
    with pytest.raises(CommandError, match="audit archive BROKEN: 4 broken links"):
        call_command("verify_audit", "--archive", str(archive))


def test_one_edited_hash_in_an_archive_is_one_tampered_line(tmp_path: Path) -> None:
    # The next line links to the hash the edited line's content gives: it is not named as unlinked too.
    events, archive = _archived_seven(tmp_path)
    lines = archive.read_text().splitlines(keepends=True)
    record = json.loads(lines[3])
    record["hash"] = "f" * 64
    lines[3] = json.dumps(record) + "\n"
    archive.write_text("".join(lines))
    report = verify_archive_file(archive)
    reasons = [b.reason for b in report.breaks]
    assert report.broken_count == 2, reasons  # the line, and the file no longer matching its checkpoint
    assert reasons[0].endswith(f":4: event #{events[2].pk} was altered")
    assert "does not match its checkpoint" in reasons[1]


def test_nothing_older_than_the_cutoff_means_nothing_is_archived(tmp_path: Path) -> None:
    make_chain(2)
    with transaction.atomic():
        audit_record(actor=Actor.system(), event_type=EventType.AUTH_LOGIN, at=T0 - timedelta(days=1))
    call_command("archive_audit", "--before", (T0 - timedelta(minutes=1)).isoformat(), "--out-dir", str(tmp_path))
    assert AuditEvent.objects.count() == 3 and not AuditCheckpoint.objects.exists()


def test_an_out_dir_that_is_a_file_is_refused_and_nothing_is_archived(tmp_path: Path) -> None:
    make_chain(3)
    taken = tmp_path / "taken"
    taken.write_text("")
    with pytest.raises(CommandError, match=r"--out-dir .*taken: not a directory"):
        call_command("archive_audit", "--older-than-days", "0", "--out-dir", str(taken))
    assert AuditEvent.objects.count() == 3 and not AuditCheckpoint.objects.exists()


def test_a_cutoff_before_the_year_1_is_refused(tmp_path: Path) -> None:
    with pytest.raises(CommandError, match=r"--older-than-days 99999999 reaches back before the year 1"):
        call_command("archive_audit", "--older-than-days", "99999999", "--out-dir", str(tmp_path))


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"\xff\xfe\x00", r"not UTF-8 text"),
        (b'["tipoff-audit-archive/1"]\n', r"line 1 is not a tipoff-audit-archive/1 header"),
        (b'{"format": "tipoff-audit-archive/1"}\n', r"line 1 is not a tipoff-audit-archive/1 header"),
        (
            b'{"format": "tipoff-audit-archive/1", "start_prev_hash": "0", "through_event_id": 1}\n{"id": 1}\n',
            r"archive.jsonl:2: not an archived event",
        ),
    ],
)
def test_a_file_that_is_not_an_archive_is_reported_broken(tmp_path: Path, content: bytes, message: str) -> None:
    archive = tmp_path / "archive.jsonl"
    archive.write_bytes(content)
    with pytest.raises(CommandError, match=rf"audit archive BROKEN: .*{message}"):
        call_command("verify_audit", "--archive", str(archive))
