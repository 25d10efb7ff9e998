"""The actions on an override's row: a refused extend, cancel or reject is said beside the input at fault, with
what was typed kept (in place for htmx, on a page of its own without JavaScript); approving goes through a
confirm step that shows what it approves."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime, timedelta

import pytest
from django.test import Client, override_settings
from django.urls import reverse

from scaling.audit import Actor, EventType
from scaling.models import AuditEvent, Game, Override, Service
from scaling.overrides import override_create
from scaling.schedule.services import schedule_import
from tests.factories import make_service, make_user
from tests.markup import broken_references, by_id
from tests.overrides.helpers import NOW, bypassed_floor, hour_floor, seen_in, shown_to

pytestmark = pytest.mark.django_db

HTMX = {"HX-Request": "true"}


def _big_floor(*services: Service, by: str = "operator", role: str = "operator") -> Override:
    """A floor of 12 for the next hour, made by `by`: above the threshold the tests set, so it waits."""
    first, *_ = override_create(
        services=list(services),
        kind="floor",
        replicas=12,
        starts_at=NOW,
        ends_at=NOW + timedelta(hours=1),
        reason="Celtics-Knicks on ESPN",
        actor=Actor.for_user(make_user(by, role)),
    )
    assert first.status == Override.Status.PENDING_APPROVAL
    return first


def _error_beside(body: str, input_id: str) -> str:
    """The error said beside the input `input_id`, checking that the input is marked invalid and described by
    the block that says it."""
    attrs = by_id(body)[input_id]
    assert attrs.get("aria-invalid") == "true", attrs
    assert f"{input_id}_error" in attrs.get("aria-describedby", "").split(), attrs
    block = re.search(rf'<div class="field-errors" id="{input_id}_error">(.*?)</div>', body, re.S)
    assert block is not None, f"no error block for {input_id}"
    return re.sub(r"<[^>]+>", " ", block.group(1)).strip()


REFUSALS = [
    pytest.param(
        "extend",
        {"ends_at_local": "2026-01-15T14:30", "reason": ""},
        "reason",
        "This field is required.",
        id="extend-without-a-reason",
    ),
    pytest.param(
        "extend",
        {"ends_at_local": "2026-01-15T11:00", "reason": "overtime"},
        "ends_at_local",
        "the new end must be after the current end",
        id="extend-to-an-end-in-the-past",
    ),
    pytest.param(
        "extend",
        {"ends_at_local": "2026-01-25T12:00", "reason": "all week"},
        "ends_at_local",
        "may last at most",
        id="extend-beyond-the-limit",
    ),
    pytest.param(
        "extend",
        {"ends_at_local": "2026-13-01T12:00", "reason": "typo"},
        "ends_at_local",
        "enter a date and time",
        id="extend-to-no-date",
    ),
    pytest.param(
        "cancel", {"reason": "x" * 501}, "reason", "at most 500 characters", id="cancel-with-a-reason-too-long"
    ),
]


@pytest.mark.parametrize(("action", "typed", "field", "message"), REFUSALS)
def test_a_refused_action_is_drawn_again_in_place_with_the_error_beside_its_field(
    client: Client, action: str, typed: dict[str, str], field: str, message: str
) -> None:
    o = hour_floor(make_service())
    client.force_login(make_user("operator", "operator"))
    url = reverse(f"dashboard:override-{action}", args=[o.pk])
    response = client.post(url, typed | {"next": "/overrides/", "place": "list"}, headers=HTMX)
    assert response.status_code == 200  # htmx swaps no 4xx answer
    body = response.content.decode()
    assert body.lstrip().startswith('<div class="override-actions"')  # the row's actions, not a page
    assert message in _error_beside(body, f"id_list{o.pk}_{action}_{field}")
    assert f"Override #{o.pk} not {action}" in body and broken_references(body) == []
    for name, value in typed.items():  # what was typed is still there to fix
        if value:
            assert by_id(body)[f"id_list{o.pk}_{action}_{name}"]["value"] == value
    assert f'<details class="inline" open><summary>{action.capitalize()}</summary>' in body
    o.refresh_from_db()
    assert o.status == Override.Status.APPROVED and o.ends_at == NOW + timedelta(hours=1)


@pytest.mark.parametrize(("action", "typed", "field", "message"), REFUSALS)
def test_without_javascript_a_refused_action_gets_a_page_with_the_error_beside_its_field(
    client: Client, action: str, typed: dict[str, str], field: str, message: str
) -> None:
    o = hour_floor(make_service())
    client.force_login(make_user("operator", "operator"))
    url = reverse(f"dashboard:override-{action}", args=[o.pk])
    response = client.post(url, typed | {"next": "/overrides/?past=1"})
    assert response.status_code == 400
    body = response.content.decode()
    assert message in _error_beside(body, f"id_list{o.pk}_{action}_{field}")
    assert f"Override #{o.pk} not {action}" in body  # the banner sums it up
    assert 'name="next" value="/overrides/?past=1"' in body  # a corrected submit still goes back there
    assert broken_references(body) == []
    for name, value in typed.items():
        if value:
            assert by_id(body)[f"id_list{o.pk}_{action}_{name}"]["value"] == value


@override_settings(OVERRIDE_APPROVAL_REPLICAS=5)
def test_a_refused_reject_says_its_reason_is_missing_beside_it_in_the_pending_approvals(client: Client) -> None:
    o = _big_floor(make_service())
    client.force_login(make_user("approver", "approver"))
    url = reverse("dashboard:override-reject", args=[o.pk])
    body = client.post(url, {"reason": "   ", "place": "approvals", "next": "/"}, headers=HTMX).content.decode()
    assert "This field is required." in _error_beside(body, f"id_approvals{o.pk}_reject_reason")
    page = client.post(url, {"reason": "   ", "next": "/"})
    assert page.status_code == 400
    assert f"Override #{o.pk} not rejected: Reason for rejecting: This field is required." in page.content.decode()
    o.refresh_from_db()
    assert o.status == Override.Status.PENDING_APPROVAL


@override_settings(OVERRIDE_APPROVAL_REPLICAS=10)
def test_an_admins_refused_extend_says_beside_the_end_that_it_needs_a_bypass_and_keeps_the_bypass_input(
    client: Client,
) -> None:
    o = bypassed_floor(make_service(hard_max_replicas=100))
    client.force_login(make_user("boss", "admin"))
    typed = {"ends_at_local": "2026-01-15T14:30", "reason": "overtime", "bypass_reason": "", "place": "list"}
    body = client.post(reverse("dashboard:override-extend", args=[o.pk]), typed, headers=HTMX).content.decode()
    assert "would need a second person" in _error_beside(body, f"id_list{o.pk}_extend_ends_at_local")
    assert f"id_list{o.pk}_extend_bypass_reason" in by_id(body)


def test_an_action_refused_once_the_override_has_ended_says_why_above_the_actions(
    client: Client, frozen: object
) -> None:
    o = hour_floor(make_service())
    client.force_login(make_user("operator", "operator"))
    frozen.shift(timedelta(hours=2))  # type: ignore[attr-defined]
    url = reverse("dashboard:override-extend", args=[o.pk])
    body = client.post(url, {"ends_at_local": "2026-01-15T16:00", "reason": "more"}, headers=HTMX).content.decode()
    summary = re.search(rf'data-testid="refused-{o.pk}">([^<]*)<', body)
    assert summary is not None and f"not extended: New end: override #{o.pk} is over" in summary.group(1)
    assert "Extend</summary>" not in body  # nothing left to extend


def test_a_pending_override_listed_twice_on_the_overrides_page_names_each_input_once(client: Client) -> None:
    with override_settings(OVERRIDE_APPROVAL_REPLICAS=5):
        o = _big_floor(make_service())
        client.force_login(make_user("approver", "approver"))
        page = client.get(reverse("dashboard:overrides")).content.decode()
    assert page.count(f'data-testid="approve-{o.pk}"') == 2  # the approvals and the list
    assert broken_references(page) == []


# --- approving: a confirm step ---------------------------------------------------------------------------


@override_settings(OVERRIDE_APPROVAL_REPLICAS=5)
def test_approve_first_shows_what_it_approves_and_approves_nothing(client: Client) -> None:
    o = _big_floor(make_service(price_per_replica_hour=1.2))
    client.force_login(make_user("approver", "approver"))
    url = reverse("dashboard:override-approve", args=[o.pk])
    response = client.get(url, {"next": "/", "place": "approvals"}, headers=HTMX)
    assert response.status_code == 200
    body = response.content.decode()
    assert f'data-testid="approve-confirm-{o.pk}"' in body
    assert "Win Probability: Floor (at least N), N = <strong>12</strong> replicas" in body
    assert "Thu Jan 15 12:00 EST (17:00 UTC) → Thu Jan 15 13:00 EST (18:00 UTC)" in body
    assert f"projected cost <strong>+${o.projected_cost_delta:,.2f}</strong>" in body
    assert 'data-testid="approve-requester">operator<' in body and "Celtics-Knicks on ESPN" in body
    assert f'data-testid="confirm-approve-{o.pk}"' in body and 'name="confirmed" value="1"' in body
    assert f"id_approvals{o.pk}_approve_reason" in by_id(body) and broken_references(body) == []
    # Without JavaScript, the same step on a page of its own; a post from a page drawn before the step shows it.
    page = client.get(url, {"next": "/"})
    assert page.status_code == 200 and f'data-testid="confirm-approve-{o.pk}"' in page.content.decode()
    posted = client.post(url, {"next": "/"})
    assert posted.status_code == 200 and f'data-testid="confirm-approve-{o.pk}"' in posted.content.decode()
    o.refresh_from_db()
    assert o.status == Override.Status.PENDING_APPROVAL


@override_settings(OVERRIDE_APPROVAL_REPLICAS=5)
def test_the_confirm_step_lists_every_override_of_the_group_approving_approves(client: Client) -> None:
    o = _big_floor(make_service(), make_service("player-props"))
    client.force_login(make_user("approver", "approver"))
    body = client.get(reverse("dashboard:override-approve", args=[o.pk]), headers=HTMX).content.decode()
    assert body.count('data-testid="approve-item"') == 2 and "Player Props: Floor" in body
    assert "and the 1 made with it?" in body


@override_settings(OVERRIDE_APPROVAL_REPLICAS=5)
def test_confirming_approves_and_keeps_the_note_in_the_audit_log(client: Client) -> None:
    o = _big_floor(make_service())
    client.force_login(make_user("approver", "approver"))
    url = reverse("dashboard:override-approve", args=[o.pk])
    confirm = {"confirmed": "1", "seen": shown_to(client, o), "reason": "checked the ESPN slot", "next": "/"}
    response = client.post(url, confirm, headers=HTMX)
    assert response.status_code == 200 and response["HX-Redirect"] == "/"
    o.refresh_from_db()
    assert o.status == Override.Status.APPROVED and o.approved_by is not None
    event = AuditEvent.objects.get(event_type=EventType.OVERRIDE_APPROVED, object_id=str(o.pk))
    assert event.reason == "checked the ESPN slot" and event.actor_label == "approver"


@override_settings(OVERRIDE_APPROVAL_REPLICAS=5)
def test_without_a_note_the_approval_keeps_the_overrides_reason(client: Client) -> None:
    o = _big_floor(make_service())
    client.force_login(make_user("approver", "approver"))
    confirm = {"confirmed": "1", "seen": shown_to(client, o), "next": "/"}
    response = client.post(reverse("dashboard:override-approve", args=[o.pk]), confirm)
    assert response.status_code == 302 and response["Location"] == "/"
    event = AuditEvent.objects.get(event_type=EventType.OVERRIDE_APPROVED, object_id=str(o.pk))
    assert event.reason == "Celtics-Knicks on ESPN"


@override_settings(OVERRIDE_APPROVAL_REPLICAS=5)
def test_a_note_too_long_is_said_beside_it_and_kept_and_nothing_is_approved(client: Client) -> None:
    o = _big_floor(make_service())
    client.force_login(make_user("approver", "approver"))
    url = reverse("dashboard:override-approve", args=[o.pk])
    note = "n" * 501
    confirm = {"confirmed": "1", "seen": shown_to(client, o), "reason": note, "place": "list"}
    body = client.post(url, confirm, headers=HTMX).content.decode()
    assert "at most 500 characters" in _error_beside(body, f"id_list{o.pk}_approve_reason")
    assert by_id(body)[f"id_list{o.pk}_approve_reason"]["value"] == note
    o.refresh_from_db()
    assert o.status == Override.Status.PENDING_APPROVAL


@override_settings(OVERRIDE_APPROVAL_REPLICAS=5)
def test_the_requester_is_shown_they_cannot_approve_and_is_refused_if_they_confirm(client: Client) -> None:
    o = _big_floor(make_service(), by="lead", role="approver")  # an approver who asked for it themselves
    client.force_login(o.created_by)  # type: ignore[arg-type]
    url = reverse("dashboard:override-approve", args=[o.pk])
    body = client.get(url, headers=HTMX).content.decode()
    assert "Cannot approve: the requester cannot approve their own override" in body
    assert f"confirm-approve-{o.pk}" not in body
    # A confirmation made by hand, naming the override as it is: refused all the same.
    refused = client.post(url, {"confirmed": "1", "seen": f"{o.pk}:{o.version}", "next": "/"})
    assert refused.status_code == 400
    assert f"Override #{o.pk} not approved: the requester cannot approve their own override" in refused.content.decode()
    o.refresh_from_db()
    assert o.status == Override.Status.PENDING_APPROVAL
    assert not AuditEvent.objects.filter(event_type=EventType.OVERRIDE_APPROVED).exists()


@override_settings(OVERRIDE_APPROVAL_REPLICAS=5)
def test_an_operator_may_neither_see_the_confirm_step_nor_approve(client: Client) -> None:
    o = _big_floor(make_service())
    client.force_login(make_user("other", "operator"))
    url = reverse("dashboard:override-approve", args=[o.pk])
    assert client.get(url).status_code == 403
    assert client.post(url, {"confirmed": "1"}).status_code == 403
    o.refresh_from_db()
    assert o.status == Override.Status.PENDING_APPROVAL


@override_settings(OVERRIDE_APPROVAL_REPLICAS=5)
def test_confirming_one_another_approver_approved_meanwhile_says_so(client: Client) -> None:
    o = _big_floor(make_service())
    first, second = Client(), client
    first.force_login(make_user("approver", "approver"))
    second.force_login(make_user("approver2", "approver"))
    url = reverse("dashboard:override-approve", args=[o.pk])
    seen = seen_in(second.get(url, headers=HTMX).content.decode())
    first.post(url, {"confirmed": "1", "seen": shown_to(first, o)})
    body = second.post(url, {"confirmed": "1", "seen": seen}, headers=HTMX).content.decode()
    assert "Cannot approve: override #" in body and "is approved, not pending" in body
    assert f"confirm-approve-{o.pk}" not in body


@override_settings(OVERRIDE_APPROVAL_REPLICAS=5)
def test_a_pending_row_says_it_is_one_of_a_group_and_the_message_names_each_override_approved(client: Client) -> None:
    first = _big_floor(make_service(), make_service("player-props"))
    second = Override.objects.exclude(pk=first.pk).get()
    Override.objects.filter(pk=first.pk).update(projected_cost_delta=57.42)
    Override.objects.filter(pk=second.pk).update(projected_cost_delta=219.78)
    alone = _big_floor(make_service("live-odds"), by="operator2")
    client.force_login(make_user("approver", "approver"))

    for page in ("dashboard:overrides", "dashboard:fleet"):
        body = client.get(reverse(page)).content.decode()
        approvals = body[body.index('data-testid="approvals"') :]
        rows = {pk: approvals.split(f'<tr data-override="{pk}">')[1].split("</tr>")[0] for pk in (first.pk, alone.pk)}
        assert "one of a group of 2, +$277.20 together: approving approves all 2" in rows[first.pk]
        assert 'data-testid="approval-group"' not in rows[alone.pk]
    step = client.get(reverse("dashboard:override-approve", args=[first.pk]), headers=HTMX).content.decode()
    assert "All 2 together: projected cost <strong>+$277.20</strong>" in step

    url = reverse("dashboard:override-approve", args=[first.pk])
    confirm = {"confirmed": "1", "seen": shown_to(client, first), "next": "/overrides/"}
    response = client.post(url, confirm, follow=True)
    said = [str(m) for m in response.context["messages"]]
    assert said == [
        f"Approved 2 override(s): #{first.pk} win-probability floor 12 (+$57.42), "
        f"#{second.pk} player-props floor 12 (+$219.78)."
    ]


# --- approving what was shown, and nothing else ------------------------------------------------------------

SCHEDULE = "game_id,tip_utc,away_team,home_team\n0022500601,{tip},BOS,NYK\n"


@override_settings(OVERRIDE_APPROVAL_REPLICAS=5)
def test_confirming_after_the_override_moved_approves_nothing_and_shows_it_as_it_is_now(client: Client) -> None:
    """A schedule import moves a pending override after its approver opened the step: their confirmation is of
    a window it no longer has."""
    schedule_import(text=SCHEDULE.format(tip="2026-01-15T20:00:00Z"), source="s.csv", actor=Actor.system("t"))
    game = Game.objects.get()
    [o] = override_create(
        services=[make_service()],
        kind="floor",
        replicas=12,
        starts_at=game.tip_utc - timedelta(minutes=20),
        ends_at=game.tip_utc + timedelta(hours=3),
        reason="Celtics-Knicks on ESPN",
        actor=Actor.for_user(make_user()),
        game=game,
    )
    client.force_login(make_user("approver", "approver"))
    url = reverse("dashboard:override-approve", args=[o.pk])
    step = client.get(url, {"next": "/"}).content.decode()
    assert "→ Thu Jan 15 18:00 EST (23:00 UTC)" in step
    schedule_import(text=SCHEDULE.format(tip="2026-01-16T00:00:00Z"), source="s.csv", actor=Actor.system("t"))

    response = client.post(url, {"confirmed": "1", "seen": seen_in(step), "next": "/"})

    assert response.status_code == 409
    body = response.content.decode()
    assert f"Override #{o.pk} not approved: nothing was approved: #{o.pk} floor 12 on win-probability" in body
    assert "changed after you saw it" in body
    assert "→ Thu Jan 15 22:00 EST (03:00 UTC)" in body  # the step again, as the override is now
    o.refresh_from_db()
    assert o.status == Override.Status.PENDING_APPROVAL
    assert not AuditEvent.objects.filter(event_type=EventType.OVERRIDE_APPROVED).exists()
    # Confirming what the step now shows approves it.
    again = client.post(url, {"confirmed": "1", "seen": seen_in(body), "next": "/"})
    assert again.status_code == 302
    o.refresh_from_db()
    assert o.status == Override.Status.APPROVED and o.ends_at == datetime(2026, 1, 16, 3, tzinfo=UTC)


@override_settings(OVERRIDE_APPROVAL_REPLICAS=5)
def test_the_requester_cannot_stretch_what_an_approver_is_looking_at(client: Client) -> None:
    """The reviewer's case: an approver opens the step for a floor of 1 h; the requester then asks the API to
    extend it to 70 h; the approver's confirmation must not approve 70 h."""
    o = _big_floor(make_service())
    approver = Client()
    approver.force_login(make_user("approver", "approver"))
    url = reverse("dashboard:override-approve", args=[o.pk])
    step = approver.get(url, headers=HTMX).content.decode()
    assert "→ Thu Jan 15 13:00 EST (18:00 UTC)" in step

    client.force_login(o.created_by)  # type: ignore[arg-type]
    extend = {"ends_at": "2026-01-18T15:00:00Z", "reason": "all weekend"}
    refused = client.post(f"/api/overrides/{o.pk}/extend", extend, content_type="application/json")
    assert refused.status_code == 422 and refused.json()["field"] == "ends_at"
    assert "a pending override cannot be extended: cancel it" in refused.json()["detail"]
    assert AuditEvent.objects.filter(event_type=EventType.OVERRIDE_REFUSED, object_id=str(o.pk)).exists()

    approved = approver.post(url, {"confirmed": "1", "seen": seen_in(step), "next": "/"}, headers=HTMX)
    assert approved.status_code == 200 and approved["HX-Redirect"] == "/"
    o.refresh_from_db()
    assert o.status == Override.Status.APPROVED and o.ends_at == NOW + timedelta(hours=1)


@override_settings(OVERRIDE_APPROVAL_REPLICAS=5)
@pytest.mark.parametrize(
    ("seen", "said"),
    [
        pytest.param(None, "does not say which overrides you were shown", id="missing"),
        pytest.param("", "does not say which overrides you were shown", id="empty"),
        pytest.param("latest", "'latest' is not an override and its version", id="malformed"),
    ],
)
def test_a_confirmation_that_does_not_say_what_was_shown_approves_nothing(
    client: Client, seen: str | None, said: str
) -> None:
    o = _big_floor(make_service())
    client.force_login(make_user("approver", "approver"))
    url = reverse("dashboard:override-approve", args=[o.pk])
    posted = {"confirmed": "1", "next": "/"} | ({} if seen is None else {"seen": seen})
    response = client.post(url, posted)
    assert response.status_code == 400
    body = html.unescape(response.content.decode())
    assert said in body and f'data-testid="confirm-approve-{o.pk}"' in body  # shown again, to confirm
    assert seen_in(body) == f"{o.pk}:{o.version}"
    o.refresh_from_db()
    assert o.status == Override.Status.PENDING_APPROVAL


@override_settings(OVERRIDE_APPROVAL_REPLICAS=5)
def test_a_pending_override_offers_no_extend_and_an_approved_one_does(client: Client) -> None:
    pending = _big_floor(make_service())
    approved = hour_floor(make_service("player-props"))
    client.force_login(make_user("lead", "approver"))
    page = client.get(reverse("dashboard:overrides")).content.decode()
    assert f'data-testid="extend-{approved.pk}"' in page and f'data-testid="cancel-{approved.pk}"' in page
    assert f'data-testid="extend-{pending.pk}"' not in page and f'data-testid="cancel-{pending.pk}"' in page


# --- where the actions send the browser back to ---------------------------------------------------------

OFFSITE = [
    pytest.param("/\\evil.example/login", id="backslash"),  # browsers read /\ as //
    pytest.param("/\t/evil.example/login", id="tab"),  # browsers drop the tab
    pytest.param("//evil.example/login", id="scheme-relative"),
    pytest.param("https://evil.example/login", id="absolute"),
]


@override_settings(OVERRIDE_APPROVAL_REPLICAS=5)
@pytest.mark.parametrize("offsite", OFFSITE)
def test_the_approve_step_links_back_to_no_other_site(client: Client, offsite: str) -> None:
    o = _big_floor(make_service())
    client.force_login(make_user("approver", "approver"))
    body = client.get(reverse("dashboard:override-approve", args=[o.pk]), {"next": offsite}).content.decode()
    fleet = reverse("dashboard:fleet")
    assert 'name="next" value="' + fleet + '"' in body and f'<a href="{fleet}">Not now</a>' in body
    assert "evil.example" not in body


@pytest.mark.parametrize("offsite", OFFSITE)
def test_an_action_redirects_to_no_other_site(client: Client, offsite: str) -> None:
    o = hour_floor(make_service())
    client.force_login(make_user("operator", "operator"))
    response = client.post(reverse("dashboard:override-cancel", args=[o.pk]), {"reason": "done", "next": offsite})
    assert response.status_code == 302 and response["Location"] == reverse("dashboard:overrides")


def test_an_action_goes_back_to_a_page_of_this_site_it_came_from(client: Client) -> None:
    o = hour_floor(make_service())
    client.force_login(make_user("operator", "operator"))
    response = client.post(
        reverse("dashboard:override-cancel", args=[o.pk]), {"reason": "done", "next": "/overrides/?past=1"}
    )
    assert response.status_code == 302 and response["Location"] == "/overrides/?past=1"
