"""The overrides/games/rules/schedule API: same permissions as the UI, 409 for an overlapping pin."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import get_args

import pytest
from django.contrib.auth.models import User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client, override_settings

from scaling.audit import EventType
from scaling.models import AuditEvent, Game, GameDayRule, Override
from tests.factories import make_service, make_user

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 1, 15, 17, 0, tzinfo=UTC)
CSV = Path(__file__).resolve().parents[2] / "data" / "nba_2025_26_schedule.csv"


def _as(client: Client, username: str, role: str) -> Client:
    client.force_login(make_user(username, role))
    return client


def _pin(**extra: object) -> dict[str, object]:
    return {
        "services": ["win-probability"],
        "kind": "pin",
        "replicas": 6,
        "starts_at": "2026-01-15T12:30:00-05:00",
        "ends_at": "2026-01-15T14:30:00-05:00",
        "reason": "release 4.2 warm-up",
    } | extra


def test_an_operator_creates_lists_extends_and_cancels_an_override(client: Client) -> None:
    make_service()
    _as(client, "operator", "operator")
    response = client.post("/api/overrides", _pin(), content_type="application/json")
    assert response.status_code == 201, response.content
    [o] = response.json()
    assert o["starts_at"].startswith("2026-01-15T17:30") and o["status"] == "approved" and o["created_by"] == "operator"
    assert [x["id"] for x in client.get("/api/overrides").json()] == [o["id"]]
    response = client.post(
        f"/api/overrides/{o['id']}/extend",
        {"ends_at": "2026-01-15T20:30:00Z", "reason": "overtime"},
        content_type="application/json",
    )
    assert response.status_code == 200 and response.json()["ends_at"].startswith("2026-01-15T20:30")
    response = client.post(f"/api/overrides/{o['id']}/cancel", {"reason": "done"}, content_type="application/json")
    assert response.status_code == 200 and response.json()["status"] == "cancelled"
    types = set(AuditEvent.objects.values_list("event_type", flat=True))
    assert {EventType.OVERRIDE_CREATED, EventType.OVERRIDE_EXTENDED, EventType.OVERRIDE_CANCELLED} <= types


def test_an_overlapping_pin_gets_409_naming_the_existing_one(client: Client) -> None:
    make_service()
    _as(client, "operator", "operator")
    first = client.post("/api/overrides", _pin(), content_type="application/json").json()[0]
    response = client.post("/api/overrides", _pin(replicas=9), content_type="application/json")
    assert response.status_code == 409
    assert response.json()["existing"]["id"] == first["id"] and f"#{first['id']}" in response.json()["detail"]
    replaced = client.post("/api/overrides", _pin(replicas=9, replace=True), content_type="application/json")
    assert replaced.status_code == 201
    assert AuditEvent.objects.filter(event_type=EventType.OVERRIDE_REFUSED).count() == 1


def test_bad_input_gets_422_naming_the_field(client: Client) -> None:
    make_service()
    _as(client, "operator", "operator")
    naive = client.post("/api/overrides", _pin(starts_at="2026-01-15T12:30:00"), content_type="application/json")
    assert naive.status_code == 422 and "starts_at" in naive.json()["detail"]
    big = client.post("/api/overrides", _pin(replicas=1000), content_type="application/json")
    assert big.status_code == 422 and big.json()["field"] == "replicas"
    unknown = client.post("/api/overrides", _pin(services=["nope"]), content_type="application/json")
    assert unknown.status_code == 422 and "nope" in unknown.json()["detail"]


def test_a_reason_longer_than_500_characters_gets_422_naming_it(client: Client) -> None:
    make_service()
    _as(client, "operator", "operator")
    for body in [_pin(reason="r" * 501), _pin(bypass_reason="b" * 501)]:
        response = client.post("/api/overrides", body, content_type="application/json")
        assert response.status_code == 422
        [error] = response.json()["errors"]
        assert error["field"] in body and "500 characters" in error["message"]
    [o] = client.post("/api/overrides", _pin(), content_type="application/json").json()
    for action, payload in [
        ("cancel", {"reason": "r" * 501}),
        ("extend", {"ends_at": "2026-01-15T20:30:00Z", "reason": "r" * 501}),
    ]:
        response = client.post(f"/api/overrides/{o['id']}/{action}", payload, content_type="application/json")
        assert response.status_code == 422 and response.json()["field"] == "reason"
    assert Override.objects.get().status == Override.Status.APPROVED


def test_a_viewer_may_read_but_not_write(client: Client) -> None:
    make_service()
    _as(client, "viewer", "viewer")
    assert client.get("/api/overrides").status_code == 200
    assert client.post("/api/overrides", _pin(), content_type="application/json").status_code == 403


@override_settings(OVERRIDE_APPROVAL_REPLICAS=5)
def test_approval_needs_a_second_person_with_the_approve_capability(client: Client) -> None:
    make_service()
    _as(client, "operator", "operator")
    [o] = client.post("/api/overrides", _pin(replicas=12), content_type="application/json").json()
    assert o["status"] == "pending_approval"
    assert client.post(f"/api/overrides/{o['id']}/approve", {}, content_type="application/json").status_code == 403
    _as(client, "approver", "approver")
    response = client.post(f"/api/overrides/{o['id']}/approve", {"reason": "ok"}, content_type="application/json")
    assert response.status_code == 200 and response.json()[0]["approved_by"] == "approver"


@override_settings(OVERRIDE_APPROVAL_REPLICAS=5)
@pytest.mark.parametrize("content_type", ["application/json", ""])
def test_approving_needs_no_body(client: Client, content_type: str) -> None:
    make_service()
    _as(client, "operator", "operator")
    [o] = client.post("/api/overrides", _pin(replicas=12), content_type="application/json").json()
    _as(client, "approver", "approver")
    url = f"/api/overrides/{o['id']}/approve"

    response = client.generic("POST", url, data=b"", content_type=content_type)  # as curl -X POST sends it

    assert response.status_code == 200, response.content
    assert response.json()[0]["status"] == "approved" and response.json()[0]["approved_by"] == "approver"


@override_settings(OVERRIDE_APPROVAL_REPLICAS=5)
def test_an_approval_naming_the_version_read_is_refused_once_the_override_changed(client: Client) -> None:
    make_service()
    _as(client, "operator", "operator")
    [o] = client.post("/api/overrides", _pin(replicas=12), content_type="application/json").json()
    assert o["version"] == 1
    _as(client, "approver", "approver")
    url = f"/api/overrides/{o['id']}/approve"
    # Moved meanwhile (by a schedule import, say): the change is counted in its version.
    Override.objects.filter(pk=o["id"]).update(ends_at=datetime(2026, 1, 16, tzinfo=UTC), version=2)

    stale = client.post(url, {"version": 1}, content_type="application/json")

    assert stale.status_code == 409
    assert f"#{o['id']} pin 12 on win-probability" in stale.json()["detail"]
    assert "changed after you saw it" in stale.json()["detail"]
    assert Override.objects.get(pk=o["id"]).status == Override.Status.PENDING_APPROVAL
    current = client.get(f"/api/overrides/{o['id']}").json()
    assert current["version"] == 2
    response = client.post(url, {"version": current["version"]}, content_type="application/json")
    assert response.status_code == 200 and response.json()[0]["status"] == "approved"
    assert response.json()[0]["version"] == 3


@override_settings(OVERRIDE_APPROVAL_REPLICAS=5)
def test_a_version_that_is_no_version_number_gets_422_naming_it(client: Client) -> None:
    make_service()
    _as(client, "operator", "operator")
    [o] = client.post("/api/overrides", _pin(replicas=12), content_type="application/json").json()
    _as(client, "approver", "approver")
    for version in [0, "latest"]:
        response = client.post(
            f"/api/overrides/{o['id']}/approve", {"version": version}, content_type="application/json"
        )
        assert response.status_code == 422 and response.json()["field"] == "version"
    assert Override.objects.get(pk=o["id"]).status == Override.Status.PENDING_APPROVAL


@override_settings(OVERRIDE_APPROVAL_REPLICAS=5)
def test_extending_an_approved_override_past_approval_needs_an_admins_bypass_reason(client: Client) -> None:
    make_service()
    _as(client, "operator", "operator")
    [o] = client.post("/api/overrides", _pin(replicas=12), content_type="application/json").json()
    _as(client, "approver", "approver")
    client.post(f"/api/overrides/{o['id']}/approve", {}, content_type="application/json")
    extend = {"ends_at": "2026-01-15T20:30:00Z", "reason": "overtime"}
    _as(client, "op2", "operator")
    refused = client.post(f"/api/overrides/{o['id']}/extend", extend, content_type="application/json")
    assert refused.status_code == 422 and refused.json()["field"] == "ends_at"
    assert "second person" in refused.json()["detail"]
    _as(client, "boss", "admin")
    bypassed = extend | {"bypass_reason": "overtime, approvers asleep"}
    response = client.post(f"/api/overrides/{o['id']}/extend", bypassed, content_type="application/json")
    assert response.status_code == 200, response.content
    assert response.json()["approved_by"] == "boss" and response.json()["bypass_reason"] == "overtime, approvers asleep"


def test_the_preview_reports_forecast_and_cost(client: Client) -> None:
    make_service(price_per_replica_hour=1.5, min_replicas=2)
    _as(client, "operator", "operator")
    rows = client.post(
        "/api/overrides/preview", _pin(kind="floor", replicas=10), content_type="application/json"
    ).json()
    assert rows == [
        {
            "service": "win-probability",
            "forecast_replicas": 2,
            "override_replicas": 10,
            "hours": 2.0,
            "projected_cost_delta": 24.0,
            "projected_cost_per_hour": 12.0,
            "overruled_by_pins": [],
            "needs_approval": False,
            "approval_needed_because": "",
        }
    ]


@override_settings(OVERRIDE_APPROVAL_COST=30.0)
def test_the_preview_and_the_create_say_an_adjacent_slice_waits_naming_the_overrides_counted(client: Client) -> None:
    make_service(price_per_replica_hour=1.5, min_replicas=2)
    _as(client, "operator", "operator")
    [first] = client.post("/api/overrides", _pin(kind="floor", replicas=10), content_type="application/json").json()
    assert first["status"] == "approved" and first["approval_needed_because"] == ""  # $24.00 alone
    later = _pin(kind="floor", replicas=10, starts_at="2026-01-15T14:30:00-05:00", ends_at="2026-01-15T15:30:00-05:00")
    why = (
        "$36.00 together with the requester's adjacent overrides on win-probability that no second person "
        f"approved, #{first['id']} (+$24.00), above $30.00"
    )
    [preview] = client.post("/api/overrides/preview", later, content_type="application/json").json()
    assert preview["projected_cost_delta"] == 12.0
    assert preview["needs_approval"] is True and preview["approval_needed_because"] == why
    [second] = client.post("/api/overrides", later, content_type="application/json").json()
    assert second["status"] == "pending_approval" and second["approval_needed_because"] == why
    # Another person's preview of the same window counts none of the first requester's.
    _as(client, "op2", "operator")
    [theirs] = client.post("/api/overrides/preview", later, content_type="application/json").json()
    assert theirs["needs_approval"] is False and theirs["approval_needed_because"] == ""


def test_the_preview_needs_no_reason_as_the_pages_preview_needs_none(client: Client) -> None:
    make_service()
    _as(client, "operator", "operator")
    body = {k: v for k, v in _pin(kind="floor", replicas=10).items() if k != "reason"}
    response = client.post("/api/overrides/preview", body, content_type="application/json")
    assert response.status_code == 200, response.content
    assert response.json()[0]["override_replicas"] == 10


def test_the_preview_refuses_a_window_longer_than_the_kind_allows(client: Client) -> None:
    make_service()
    _as(client, "operator", "operator")
    body = _pin(kind="floor", replicas=10, ends_at="2027-01-15T14:30:00-05:00")
    response = client.post("/api/overrides/preview", body, content_type="application/json")
    assert response.status_code == 422 and response.json()["field"] == "ends_at"
    assert "at most 72 h" in response.json()["detail"]


@pytest.mark.parametrize(
    ("extra", "field", "message"),
    [
        ({"ends_at": "2026-01-15T11:00:00-05:00"}, "ends_at", "the end is in the past; it must be in the future"),
        ({"starts_at": "2026-01-15T10:00:00-05:00"}, "starts_at", "the start is in the past"),
        ({"replicas": None}, "replicas", "a floor needs a replica count"),
        ({"kind": "frieze"}, "kind", "unknown kind 'frieze'"),
        ({"replicas": 12}, "replicas", "above"),  # over the approved ceiling of 8
    ],
    ids=["end in the past", "start in the past", "no count", "unknown kind", "floor above a ceiling"],
)
def test_the_preview_refuses_what_the_create_refuses_as_the_pages_preview_does(
    client: Client, extra: dict[str, object], field: str, message: str
) -> None:
    # It checked only that the end followed a start it moved up to now, and the duration: a floor above an
    # approved ceiling, or a pin with no count, was priced as if it could be made.
    service = make_service()
    Override.objects.create(
        service=service, kind="ceiling", replicas=8, reason="budget", starts_at=NOW, ends_at=NOW + timedelta(hours=6)
    )
    _as(client, "operator", "operator")
    response = client.post(
        "/api/overrides/preview", _pin(kind="floor", replicas=10) | extra, content_type="application/json"
    )
    assert response.status_code == 422, response.content
    assert response.json()["field"] == field and message in response.json()["detail"]
    create = client.post("/api/overrides", _pin(kind="floor", replicas=10) | extra, content_type="application/json")
    assert create.status_code == 422 and create.json()["field"] == field


def test_games_rules_and_schedule_import(client: Client) -> None:
    make_service()
    Game.objects.create(
        game_id="g1", tip_utc=NOW + timedelta(days=1), away_team="BOS", home_team="NYK", national_tv="ESPN"
    )
    Game.objects.create(game_id="g2", tip_utc=NOW + timedelta(days=2), away_team="DEN", home_team="UTA")
    _as(client, "operator", "operator")
    assert [g["game_id"] for g in client.get("/api/games?national_only=true").json()] == ["g1"]
    rule = {
        "name": "tv",
        "services": ["win-probability"],
        "match": {"national_tv": True},
        "reason": "TV",
        "floor_replicas": 6,
    }
    assert client.post("/api/rules", rule, content_type="application/json").status_code == 403
    assert client.post("/api/schedule/import", {"file": SimpleUploadedFile("s.csv", b"x")}).status_code == 403

    _as(client, "boss", "admin")
    created = client.post("/api/rules", rule, content_type="application/json")
    assert created.status_code == 201 and created.json()["scheduled_overrides"] == 1
    assert Override.objects.filter(game__game_id="g1").count() == 1
    bad = client.post("/api/rules", rule | {"name": "none", "match": {}}, content_type="application/json")
    assert bad.status_code == 422 and bad.json()["field"] == "match"
    bad = client.post("/api/rules", rule | {"match": {"networks": "ESPN"}}, content_type="application/json")
    assert bad.status_code == 422 and bad.json()["field"] == "match.networks"
    for too_long in [{"name": "n" * 121}, {"reason": "r" * 301}]:
        bad = client.post("/api/rules", rule | too_long, content_type="application/json")
        assert bad.status_code == 422 and bad.json()["field"] in too_long
    updated = client.put(
        f"/api/rules/{created.json()['id']}", rule | {"floor_replicas": 8}, content_type="application/json"
    )
    assert updated.status_code == 200 and updated.json()["floor_replicas"] == 8
    assert client.delete(f"/api/rules/{created.json()['id']}?reason=season+over").status_code == 204
    assert not GameDayRule.objects.exists()

    lines = CSV.read_text().splitlines(keepends=True)
    good = client.post("/api/schedule/import", {"file": SimpleUploadedFile("s.csv", "".join(lines).encode())})
    assert good.status_code == 200 and (good.json()["created"], good.json()["demo_games_removed"]) == (1278, 0)
    lines[10] = lines[10].replace("Z,", "oops,", 1)
    bad = client.post("/api/schedule/import", {"file": SimpleUploadedFile("s.csv", "".join(lines).encode())})
    assert bad.status_code == 422 and "line 11" in bad.json()["detail"]
    lines[2] = lines[2].replace(",", ",\xfc", 1)  # not UTF-8: named by line and byte, as the page and command do
    body = "".join(lines[:10]).encode("latin-1", errors="replace")
    latin = client.post("/api/schedule/import", {"file": SimpleUploadedFile("s.csv", body)})
    assert latin.status_code == 422 and latin.json()["field"] == "file"
    assert "s.csv: line 3: not UTF-8 text (byte 0xfc at offset" in latin.json()["detail"]


def test_the_openapi_docs_list_the_override_endpoints(client: Client) -> None:
    _as(client, "viewer", "viewer")
    schema = client.get("/api/openapi.json").json()
    assert {"/api/overrides", "/api/overrides/{pk}/approve", "/api/games", "/api/rules", "/api/schedule/import"} <= set(
        schema["paths"]
    )


def test_an_override_cannot_link_to_a_game_still_to_be_decided(client: Client) -> None:
    make_service()
    Game.objects.create(
        game_id="0062500001", tip_utc=NOW + timedelta(days=1), away_team="TBD", home_team="TBD", tbd=True
    )
    _as(client, "operator", "operator")
    response = client.post("/api/overrides", _pin(game_id="0062500001"), content_type="application/json")
    assert response.status_code == 422
    assert response.json()["field"] == "game_id" and "not yet set" in response.json()["detail"]
    assert not Override.objects.exists()
    games = client.get("/api/games", {"start": NOW.isoformat(), "end": (NOW + timedelta(days=2)).isoformat()}).json()
    assert [(g["game_id"], g["tbd"]) for g in games] == [("0062500001", True)]


@override_settings(OVERRIDE_APPROVAL_REPLICAS=20)
def test_a_rule_whose_floor_would_need_approval_by_hand_warns_that_the_rule_approves_it(client: Client) -> None:
    make_service(max_replicas=100, hard_max_replicas=100)
    Game.objects.create(
        game_id="g1", tip_utc=NOW + timedelta(days=1), away_team="BOS", home_team="NYK", national_tv="ESPN"
    )
    _as(client, "boss", "admin")
    rule = {"services": ["win-probability"], "match": {"national_tv": True}, "reason": "TV", "floor_replicas": 25}
    created = client.post("/api/rules", rule | {"name": "big"}, content_type="application/json").json()
    assert created["warnings"] == [
        "Floors above 20 replicas would need a second person's approval if made by hand; this rule's are "
        "approved by the rule."
    ]
    assert Override.objects.get().status == Override.Status.APPROVED
    small = client.post("/api/rules", rule | {"name": "small", "floor_replicas": 20}, content_type="application/json")
    assert small.json()["warnings"] == []


def test_listing_by_an_unknown_status_is_refused_naming_the_statuses_there_are(client: Client) -> None:
    from dashboard.api_overrides import StatusName

    _as(client, "viewer", "viewer")
    for status in ("pending", "bogus"):
        response = client.get("/api/overrides", {"status": status})
        assert response.status_code == 422 and response.json()["field"] == "status"
        assert "'pending_approval'" in response.json()["detail"] and "'cancelled'" in response.json()["detail"]
    assert client.get("/api/overrides", {"status": "pending_approval"}).status_code == 200
    assert set(get_args(StatusName)) == set(Override.Status.values)  # the schema's statuses are the model's


def test_games_with_an_end_before_the_start_are_refused_naming_end(client: Client) -> None:
    _as(client, "viewer", "viewer")
    for end in ("2026-01-14T00:00:00Z", "2026-01-15T00:00:00Z"):
        response = client.get("/api/games", {"start": "2026-01-15T00:00:00Z", "end": end})
        assert response.status_code == 422 and response.json()["field"] == "end"
        assert "must be after start" in response.json()["detail"]
    assert client.get("/api/games", {"start": "2026-01-15T00:00:00Z", "end": "2026-01-16T00:00:00Z"}).status_code == 200


@override_settings(OVERRIDE_APPROVAL_REPLICAS=5)
def test_an_override_names_who_rejected_or_cancelled_it_and_when(client: Client) -> None:
    make_service()
    _as(client, "operator", "operator")
    [asked] = client.post("/api/overrides", _pin(replicas=12), content_type="application/json").json()
    assert (asked["state"], asked["rejected_by"], asked["cancelled_by"]) == ("pending", None, None)
    _as(client, "approver", "approver")
    [rejected] = client.post(
        f"/api/overrides/{asked['id']}/reject", {"reason": "too many"}, content_type="application/json"
    ).json()
    assert (rejected["rejected_by"], rejected["state"], rejected["cancelled_by"]) == ("approver", "rejected", None)
    assert rejected["rejected_at"].startswith("2026-01-15T17:00") and rejected["cancelled_at"] is None

    client.force_login(User.objects.get(username="operator"))
    [pin] = client.post("/api/overrides", _pin(), content_type="application/json").json()
    cancelled = client.post(f"/api/overrides/{pin['id']}/cancel", {"reason": "done"}, content_type="application/json")
    body = cancelled.json()
    assert (body["cancelled_by"], body["state"], body["rejected_by"]) == ("operator", "cancelled", None)
    assert body["cancelled_at"].startswith("2026-01-15T17:00") and body["rejected_at"] is None

    page = client.get("/overrides/?past=1").content.decode()
    assert "rejected by approver" in page and "cancelled by operator" in page


def test_an_override_has_a_state_read_against_its_window_as_the_list_shows_it(client: Client) -> None:
    service = make_service()
    hour = timedelta(hours=1)
    windows = {
        "lapsed": (Override.Status.PENDING_APPROVAL, NOW - 2 * hour, NOW - hour),
        "pending": (Override.Status.PENDING_APPROVAL, NOW + hour, NOW + 2 * hour),
        "approved": (Override.Status.APPROVED, NOW + hour, NOW + 2 * hour),
        "active": (Override.Status.APPROVED, NOW - hour, NOW + hour),
        "expired": (Override.Status.APPROVED, NOW - 2 * hour, NOW - hour),
    }
    ids = {}
    for state, (status, start, end) in windows.items():
        o = Override.objects.create(
            service=service, kind="floor", replicas=3, reason=state, starts_at=start, ends_at=end, status=status
        )
        ids[o.pk] = state
    _as(client, "viewer", "viewer")
    listed = client.get("/api/overrides", {"include_past": "true"}).json()
    assert {o["id"]: o["state"] for o in listed} == ids
    assert {o["id"]: o["status"] for o in listed} == {pk: windows[s][0] for pk, s in ids.items()}  # kept as stored
    page = client.get("/overrides/?past=1").content.decode()
    for pk, state in ids.items():
        assert f'data-state="{state}"' in page.split(f'<tr data-override="{pk}" class="status-')[1].split("</tr>")[0]
    assert "Lapsed (never approved)" in page and "Expired" in page
