from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from django.db import DatabaseError, connection, transaction

from scaling.audit import Actor, audit_archive, verify_chain
from scaling.models import AuditEvent
from tests.audit.helpers import make_chain
from tests.factories import T0

pytestmark = pytest.mark.django_db


def test_postgres_rejects_update_of_an_audit_event(on_postgres: None) -> None:
    event = make_chain(2)[0]
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEvent.objects.filter(pk=event.pk).update(reason="rewritten")
    assert AuditEvent.objects.get(pk=event.pk).reason == "event 0"


def test_postgres_rejects_delete_of_an_audit_event(on_postgres: None) -> None:
    event = make_chain(2)[1]
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEvent.objects.filter(pk=event.pk).delete()
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("DELETE FROM scaling_auditevent")
    assert AuditEvent.objects.count() == 2


def test_postgres_allows_delete_only_inside_the_archive_flag(on_postgres: None) -> None:
    event = make_chain(1)[0]
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL tipoff.audit_archive = 'on'")
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
            AuditEvent.objects.filter(pk=event.pk).update(reason="still no")
        AuditEvent.objects.filter(pk=event.pk).delete()
        cursor.execute("SET LOCAL tipoff.audit_archive = 'off'")
    assert not AuditEvent.objects.exists()


def test_postgres_refuses_deletes_again_after_an_archive(on_postgres: None, tmp_path: Path) -> None:
    make_chain(3)
    result = audit_archive(actor=Actor.system("test"), before=T0 + timedelta(minutes=2), out_dir=tmp_path)
    assert result is not None and result.event_count == 2
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEvent.objects.all().delete()
    assert verify_chain().ok
