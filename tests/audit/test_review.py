"""The audit review page and API: filters, seek pages, links to what each event is about, streamed CSV, the banner."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from django.conf import settings
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from scaling import services
from scaling.audit import Actor, EventType, audit_record, verify_and_record
from scaling.audit_selectors import AuditFilter, audit_events
from scaling.models import AuditEvent, Decision, Override
from scaling.tasks import verify_audit
from tests.audit.helpers import tampering
from tests.factories import T0, make_service, make_user
from tests.markup import broken_references, controls, out_of_band_ids

pytestmark = pytest.mark.django_db


@pytest.fixture
def viewer(client: Client) -> Client:
    client.force_login(make_user("viewer", "viewer"))
    return client


def _events(n: int, **fields: object) -> None:
    from django.db import transaction

    with transaction.atomic():
        for i in range(n):
            audit_record(
                actor=Actor.system("test"),
                event_type=EventType.DECISION_SCALED,
                reason=f"bulk {i}",
                at=T0 + timedelta(minutes=i),
                **fields,  # type: ignore[arg-type]
            )


def test_a_capacity_change_links_to_its_decision_and_says_who_and_why(viewer: Client) -> None:
    service = make_service(demand_scale=40.0)
    services.service_evaluate(service_id=service.pk, tick_at=services.align_tick(timezone.now()))
    decision = Decision.objects.get(service=service)
    page = viewer.get(reverse("dashboard:audit"), {"service": service.name, "event_type": "decision"})
    body = page.content.decode()
    assert page.status_code == 200
    assert reverse("dashboard:decision", args=[decision.pk]) in body
    event = AuditEvent.objects.get(event_type=EventType.DECISION_SCALED)
    assert event.actor_label in body and event.reason in body


def test_filters_combine_time_service_actor_type_and_text(viewer: Client) -> None:
    a, b = make_service("live-odds"), make_service("player-props")
    from django.db import transaction

    with transaction.atomic():
        audit_record(
            actor=Actor.system("w1"), event_type=EventType.DECISION_SCALED, service=a, reason="halftime surge", at=T0
        )
        audit_record(
            actor=Actor.system("w1"), event_type=EventType.DECISION_SCALED, service=b, reason="halftime surge", at=T0
        )
        audit_record(
            actor=Actor.system("w2"), event_type=EventType.OVERRIDE_CREATED, service=a, reason="marquee game", at=T0
        )
        audit_record(
            actor=Actor.system("w1"),
            event_type=EventType.DECISION_SCALED,
            service=a,
            reason="halftime surge",
            at=T0 + timedelta(days=2),
        )

    def ids(**params: str) -> list[int]:
        response = viewer.get(reverse("dashboard:audit"), params)
        assert response.status_code == 200
        return [e.pk for e, _ in response.context["rows"]]

    everything = ids()
    assert len(everything) == 4 and everything == sorted(everything, reverse=True)
    assert len(ids(service="live-odds")) == 3
    assert len(ids(service="live-odds", event_type="decision")) == 2
    assert len(ids(service="live-odds", event_type="override.created")) == 1
    assert len(ids(actor="system:w2")) == 1
    assert len(ids(q="HALFTIME")) == 3
    eastern = ZoneInfo(settings.OPERATOR_TIME_ZONE)  # the filters take the operator's clock
    window = {
        "since": (T0 - timedelta(hours=1)).astimezone(eastern).strftime("%Y-%m-%d %H:%M"),
        "until": (T0 + timedelta(days=1)).astimezone(eastern).strftime("%Y-%m-%d %H:%M"),
    }
    assert len(ids(**window)) == 3


def test_the_actor_filter_finds_everything_a_person_did_on_the_pages_and_with_their_tokens(viewer: Client) -> None:
    from django.db import transaction

    approver, approver2 = make_user("approver", "approver"), make_user("approver2", "approver")
    by = {
        "web": Actor.for_user(approver),
        "token": Actor(AuditEvent.ActorType.TOKEN, "approver (token review)", approver.pk),
        "other": Actor.for_user(approver2),
        "other token": Actor(AuditEvent.ActorType.TOKEN, "approver2 (token review)", approver2.pk),
        "system": Actor.system("approver"),
    }
    with transaction.atomic():
        for channel, actor in by.items():
            audit_record(actor=actor, event_type=EventType.OVERRIDE_APPROVED, reason=channel, at=T0)

    def reasons(actor: str) -> set[str]:
        page = viewer.get(reverse("dashboard:audit"), {"actor": actor})
        exported = csv.DictReader(
            io.StringIO(viewer.get(reverse("dashboard:audit-csv"), {"actor": actor}).getvalue().decode())
        )
        api = viewer.get("/api/audit/events", {"actor": actor}).json()["events"]
        found = {e.reason for e, _ in page.context["rows"]}
        assert {row["reason"] for row in exported} == found and {e["reason"] for e in api} == found
        return found

    assert reasons("approver") == {"web", "token"}
    assert reasons("approver2") == {"other", "other token"}
    assert reasons("approver (token review)") == {"token"}  # one channel, by its label
    assert reasons("system:approver") == {"system"}
    assert "all they did" in viewer.get(reverse("dashboard:audit")).content.decode()  # the box says so


def test_the_actor_filter_finds_a_person_renamed_or_deleted_since(viewer: Client) -> None:
    from django.db import transaction

    approver = make_user("approver", "approver")
    gone = make_user("gone", "operator")
    with transaction.atomic():
        audit_record(actor=Actor.for_user(approver), event_type=EventType.OVERRIDE_APPROVED, reason="as approver")
        audit_record(
            actor=Actor(AuditEvent.ActorType.TOKEN, "gone (token ci)", gone.pk),
            event_type=EventType.OVERRIDE_CREATED,
            reason="by a token of a user deleted since",
        )
    approver.username = "approver-renamed"
    approver.save()
    gone.delete()

    def reasons(actor: str) -> set[str]:
        return {e.reason for e, _ in viewer.get(reverse("dashboard:audit"), {"actor": actor}).context["rows"]}

    assert reasons("approver-renamed") == {"as approver"}  # the same person, by the user the event names
    assert reasons("approver") == {"as approver"}  # and by the name it was recorded under
    assert reasons("gone") == {"by a token of a user deleted since"}


def test_a_bad_filter_is_a_400_naming_the_field(viewer: Client) -> None:
    response = viewer.get(reverse("dashboard:audit"), {"since": "yesterday-ish", "event_type": "nope"})
    assert response.status_code == 400
    body = response.content.decode()
    assert "since" in body and "event_type" in body
    csv_response = viewer.get(
        reverse("dashboard:audit-csv"), {"since": "2026-02-01T00:00", "until": "2026-01-01T00:00"}
    )
    assert csv_response.status_code == 400 and b"until" in csv_response.content


def test_pages_seek_by_id_forwards_and_back(viewer: Client) -> None:
    _events(120)
    first = viewer.get(reverse("dashboard:audit"))
    page1 = [e.pk for e, _ in first.context["rows"]]
    assert len(page1) == 50 and first.context["page"].newer_cursor is None
    second = viewer.get(reverse("dashboard:audit"), {"before": first.context["page"].older_cursor})
    page2 = [e.pk for e, _ in second.context["rows"]]
    assert page2[0] == page1[-1] - 1 and len(page2) == 50
    third = viewer.get(reverse("dashboard:audit"), {"before": second.context["page"].older_cursor})
    assert len(third.context["rows"]) == 20 and third.context["page"].older_cursor is None
    back = viewer.get(reverse("dashboard:audit"), {"after": second.context["page"].newer_cursor})
    assert [e.pk for e, _ in back.context["rows"]] == page1


def test_the_csv_export_streams_the_filtered_view(viewer: Client) -> None:
    _events(30)
    from django.db import transaction

    with transaction.atomic():
        audit_record(actor=Actor.system("x"), event_type=EventType.AUTH_LOGIN, reason='=HYPERLINK("evil")')
    response = viewer.get(reverse("dashboard:audit-csv"), {"event_type": "decision.scaled"})
    assert response.status_code == 200 and response.streaming
    assert response["Content-Type"] == "text/csv" and "attachment" in response["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(response.getvalue().decode())))
    assert rows[0][:4] == ["id", "created_at (UTC)", "actor_type", "actor"] and len(rows) == 31
    assert {r[5] for r in rows[1:]} == {"decision.scaled"}
    everything = viewer.get(reverse("dashboard:audit-csv"))
    text = everything.getvalue().decode()
    assert "'=HYPERLINK" in text  # defused for spreadsheets


def test_the_api_answers_the_same_query(viewer: Client) -> None:
    service = make_service()
    _events(60, service=service)
    first = viewer.get("/api/audit/events", {"service": service.name, "limit": "25"}).json()
    assert len(first["events"]) == 25 and first["newer_cursor"] is None
    second = viewer.get(
        "/api/audit/events", {"service": service.name, "limit": "25", "before": str(first["older_cursor"])}
    ).json()
    assert second["events"][0]["id"] == first["events"][-1]["id"] - 1
    assert second["events"][0]["service"] == service.name and second["events"][0]["hash"]
    assert viewer.get("/api/audit/events", {"limit": 5000}).status_code == 422


def test_an_override_event_links_to_the_override(viewer: Client) -> None:
    service = make_service()
    override = Override.objects.create(
        service=service, kind="floor", replicas=4, reason="playoffs", starts_at=T0, ends_at=T0 + timedelta(hours=2)
    )
    from django.db import transaction

    with transaction.atomic():
        audit_record(
            actor=Actor.for_user(make_user("operator", "operator")),
            event_type=EventType.OVERRIDE_CREATED,
            service=service,
            object_type="override",
            object_id=override.pk,
            reason="playoffs",
        )
    rows = viewer.get(reverse("dashboard:audit"), {"object_type": "override", "object_id": str(override.pk)}).context[
        "rows"
    ]
    ((event, url),) = rows
    assert event.reason == "playoffs" and url == f"{reverse('dashboard:overrides')}#override-{override.pk}"


def test_a_broken_chain_shows_admins_a_red_banner_and_only_admins(client: Client) -> None:
    _events(3)
    assert verify_audit() is True
    client.force_login(make_user("admin", "admin"))
    assert b"audit-alarm" not in client.get(reverse("dashboard:fleet")).content
    with tampering():
        AuditEvent.objects.filter(pk=AuditEvent.objects.order_by("id").first().pk).update(reason="edited")  # type: ignore[union-attr]
    assert verify_and_record().ok is False  # a full walk (the task walks everything once a day)
    page = client.get(reverse("dashboard:fleet")).content.decode()
    assert 'class="banner alarm"' in page and "FAILED" in page
    other = Client()
    other.force_login(make_user("viewer", "viewer"))
    assert b"audit-alarm" not in other.get(reverse("dashboard:fleet")).content
    assert other.get("/api/audit/verification").json()["ok"] is False


def test_a_chain_broken_in_two_places_says_so_on_the_page_the_banner_and_the_api(viewer: Client) -> None:
    _events(5)
    first, *_, last = AuditEvent.objects.order_by("id")
    with tampering():
        AuditEvent.objects.filter(pk__in=[first.pk, last.pk]).update(reason="edited")
    verify_and_record()

    body = viewer.get(reverse("dashboard:audit")).content.decode()
    assert "2 broken links in 5 events walked from the start of the chain; the first: " in body
    assert 'data-testid="chain-breaks"' in body and f"event #{last.pk} was altered" in body
    admin = Client()
    admin.force_login(make_user("admin", "admin"))
    assert "2 broken links in 5 events" in admin.get(reverse("dashboard:fleet")).content.decode()
    verification = viewer.get("/api/audit/verification").json()
    assert (verification["ok"], verification["first_broken_id"], verification["broken_count"]) == (False, first.pk, 2)
    assert [b["event_id"] for b in verification["breaks"]] == [first.pk, last.pk]


def test_an_htmx_filter_with_a_bad_value_shows_the_error_under_its_field(viewer: Client) -> None:
    response = viewer.get(reverse("dashboard:audit"), {"since": "not a time"}, headers={"HX-Request": "true"})
    body = response.content.decode()
    assert response.status_code == 200 and "<html" not in body
    # The form comes back with the results, which it filters (so that Back restores both as they were): the
    # bad field's error beside it, the field marked, what was typed kept; nothing swapped out of band.
    assert out_of_band_ids(body) == []
    assert '<div class="error" data-field-error="since">enter a date and time as YYYY-MM-DD HH:MM</div>' in body
    fields = controls(body)
    assert fields["since"]["aria-invalid"] == "true" and fields["since"]["value"] == "not a time"
    assert broken_references(body) == []
    assert 'data-testid="filter-errors"' not in body  # the alert is for what no field shows


def test_a_filter_with_a_bad_value_shows_the_error_beside_its_field(viewer: Client) -> None:
    response = viewer.get(reverse("dashboard:audit"), {"since": "2026-01-02T10:00", "until": "2026-01-01T10:00"})
    body = response.content.decode()
    assert response.status_code == 400
    assert '<div class="error" data-field-error="until">must be later than From</div>' in body
    fields = controls(body)
    assert fields["until"]["aria-invalid"] == "true" and "aria-invalid" not in fields["since"]
    assert fields["until"]["aria-describedby"].split() == ["id_until_helptext", "id_until_error"]
    assert 'data-testid="filter-errors"' not in body and broken_references(body) == []


def test_a_bad_value_no_field_shows_is_said_in_the_alert(viewer: Client) -> None:
    response = viewer.get(reverse("dashboard:audit"), {"before": "soon"})
    body = response.content.decode()
    assert response.status_code == 400
    assert 'data-testid="filter-errors"' in body and "before: Enter a whole number." in body


def test_the_chain_is_verified_on_a_schedule(settings: object) -> None:
    from scaling.tasks import beat_schedule

    entry = beat_schedule()["verify_audit"]
    assert entry["task"] == "scaling.verify_audit" and entry["schedule"] == 600.0


def test_the_actor_box_suggests_recent_actors(viewer: Client) -> None:
    _events(2)
    body = viewer.get(reverse("dashboard:audit")).content.decode()
    assert '<option value="system:test">' in body


def test_the_page_says_when_the_chain_was_last_verified(viewer: Client) -> None:
    assert b"Not verified yet" in viewer.get(reverse("dashboard:audit")).content
    _events(2)
    verify_and_record()
    body = viewer.get(reverse("dashboard:audit")).content.decode()
    assert "Chain intact" in body and "2 events walked from the start" in body


def test_an_event_shows_a_change_toggle_only_for_what_it_has_to_show(viewer: Client) -> None:
    from django.db import transaction

    with transaction.atomic():
        for before, after in ((None, None), ({}, {}), (None, {"ip": "10.0.0.1"}), ({"mode": "active"}, {"mode": "x"})):
            audit_record(actor=Actor.system("t"), event_type=EventType.AUTH_LOGIN, before=before, after=after)
    body = viewer.get(reverse("dashboard:audit")).content.decode()
    cells = [row.split('<td class="change">')[1].split("</td>")[0] for row in body.split("<tr data-event-id=")[1:]]
    assert cells == [
        "<details><summary>before → after</summary><pre>{&#x27;mode&#x27;: &#x27;active&#x27;}</pre>"
        "<pre>{&#x27;mode&#x27;: &#x27;x&#x27;}</pre></details>",
        "<details><summary>after</summary><pre>{&#x27;ip&#x27;: &#x27;10.0.0.1&#x27;}</pre></details>",
        "",
        "",
    ]


def test_the_actor_filter_keeps_the_case_of_a_name_as_typed() -> None:
    # A reviewer's finding: on SQLite (make run's database) LIKE ignores case, so "operator" also took the
    # token events of a user named "Operator". Names differ by case; their events must not mix.
    make_user("operator", "operator")
    other = make_user("Operator", "operator")
    audit_record(
        actor=Actor(type="token", label="Operator (token ci)", user_id=other.pk),
        event_type=EventType.OVERRIDE_CREATED,
        reason="theirs",
    )
    assert [e.reason for e in audit_events(AuditFilter(actor="operator"))] == []
    assert [e.reason for e in audit_events(AuditFilter(actor="Operator"))] == ["theirs"]


@pytest.mark.parametrize(
    ("params", "field", "message"),
    [
        ({"event_type": "overide"}, "event_type", "unknown event type 'overide'"),
        ({"service": "no-such-service"}, "service", "unknown service 'no-such-service'"),
        (
            {"since": "2026-01-15T20:00:00Z", "until": "2026-01-15T19:00:00Z"},
            "until",
            "until (2026-01-15T19:00:00+00:00) must be later than since",
        ),
    ],
)
def test_the_api_refuses_a_filter_that_could_only_match_nothing_naming_it(
    viewer: Client, params: dict[str, str], field: str, message: str
) -> None:
    # An empty 200 read as "nothing happened": a typo in the event type hid every override from an auditor.
    make_service()
    response = viewer.get("/api/audit/events", params)
    assert response.status_code == 422, response.content
    assert response.json()["field"] == field and message in response.json()["detail"]


def test_the_api_takes_an_event_type_or_its_whole_domain(viewer: Client) -> None:
    service = make_service()
    _events(3, service=service)
    for event_type in ("decision", "decision.scaled"):
        assert len(viewer.get("/api/audit/events", {"event_type": event_type}).json()["events"]) == 3
    assert viewer.get("/api/audit/events", {"event_type": "override"}).json()["events"] == []


def test_the_page_refuses_a_service_that_is_none_beside_its_field(viewer: Client) -> None:
    make_service()
    # It had answered an empty page, as if nothing had happened to a service whose name was mistyped.
    response = viewer.get(reverse("dashboard:audit"), {"service": "no-such-service"})
    body = response.content.decode()
    assert response.status_code == 400 and "no service is named &#x27;no-such-service&#x27;" in body


def test_the_docs_say_the_time_filter_is_in_the_operators_zone_as_the_page_reads_it(viewer: Client) -> None:
    page = viewer.get(reverse("dashboard:audit")).content.decode()
    assert f"in {settings.OPERATOR_TIME_ZONE}" in page  # beside From and Until
    security = (settings.BASE_DIR / "docs" / "security.md").read_text()
    review = security[security.index("**Review.**") :].split("\n\n")[0]
    assert "(UTC)" not in review and "operator's zone" in review


def test_a_history_restore_htmx_no_longer_keeps_gets_the_whole_page(viewer: Client) -> None:
    headers = {"HX-Request": "true", "HX-History-Restore-Request": "true"}
    body = viewer.get(reverse("dashboard:audit"), {"event_type": "override"}, headers=headers).content.decode()
    assert "<html" in body and '<option value="override" selected>' in body
