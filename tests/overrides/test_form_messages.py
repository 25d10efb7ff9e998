"""The override form says each problem once, under the field it concerns, with times in the operator's zone
and UTC beside; a form prefilled from the calendar shows no error before the operator types."""

from __future__ import annotations

import html
import re
from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse

from dashboard.overrides import PREVIEW_FIELDS
from scaling.models import Game
from tests.factories import make_service, make_user
from tests.markup import broken_references, descriptions, ids, out_of_band_ids
from tests.overrides.helpers import NOW, earlier_pin, pin_form

pytestmark = pytest.mark.django_db


@pytest.fixture
def operator(client: Client) -> Client:
    make_service()
    client.force_login(make_user("operator", "operator"))
    return client


def _errors(body: str) -> list[tuple[str, str]]:
    """(field, message) for every error shown under a field, in page order."""
    found = re.findall(r'data-field-error="([^"]+)">([^<]*)<', body)
    return [(field, html.unescape(message)) for field, message in found]


def _page_and_preview(client: Client, form: dict[str, object]) -> tuple[str, str]:
    """The page after a refused submit, and the preview htmx asks for as that page loads."""
    page = client.post(reverse("dashboard:override-new"), form)
    assert page.status_code in {400, 409}
    preview = client.post(reverse("dashboard:override-preview"), form, headers={"HX-Request": "true"})
    return page.content.decode(), preview.content.decode()


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ({"replicas": "-3"}, [("replicas", "Ensure this value is greater than or equal to 0.")]),
        ({"replicas": "thirty"}, [("replicas", "enter the replica count as a whole number, e.g. 12")]),
        (
            {"ends_at_local": "", "duration_minutes": "two hours"},
            [("duration_minutes", "enter the duration as a whole number of minutes, e.g. 120 for two hours")],
        ),
        ({"ends_at_local": "2026-01-15T12:30"}, [("ends_at_local", "the end must be after the start")]),
    ],
)
def test_each_problem_is_said_once_under_its_field(
    operator: Client, extra: dict[str, object], expected: list[tuple[str, str]]
) -> None:
    page, preview = _page_and_preview(operator, pin_form(**extra))
    assert _errors(page) == expected
    # The preview replaces the messages under the fields (out of band) rather than listing them again.
    assert _errors(preview) == expected
    assert 'hx-swap-oob="true"' in preview and '<ul class="errors">' not in preview


def test_what_describes_each_field_is_on_the_page_and_where_the_preview_puts_its_errors(operator: Client) -> None:
    page, preview = _page_and_preview(operator, pin_form(replicas="thirty", ends_at_local="2026-01-15T12:30"))
    assert broken_references(page) == []
    # Each block of errors the preview swaps in replaces one the page has, which its field names from the start.
    swapped = out_of_band_ids(preview)
    assert len(swapped) == len(PREVIEW_FIELDS) and set(swapped) <= ids(page)
    described_by = descriptions(page)
    assert all(block in described_by[block.removeprefix("id_").removesuffix("_error")] for block in swapped)


def test_an_overlapping_pin_is_reported_once_with_its_times_in_both_zones(operator: Client) -> None:
    service = make_service("scores")
    existing = earlier_pin(service)
    response = operator.post(reverse("dashboard:override-new"), pin_form(services=["scores"]))
    assert response.status_code == 409
    body = html.unescape(response.content.decode())
    assert body.count(f"#{existing.pk}") == 1 and body.count("earlier pin") == 1
    assert "Thu Jan 15 12:30 EST (17:30 UTC)" in body
    response = operator.post(
        "/api/overrides",
        pin_form(services=["scores"], starts_at=NOW.isoformat(), ends_at=(NOW + timedelta(hours=1)).isoformat()),
        content_type="application/json",
    )
    assert response.status_code == 409
    assert "2026-01-15 12:30 EST (17:30 UTC) → 2026-01-15 14:00 EST (19:00 UTC)" in response.json()["detail"]


def test_a_missing_replica_count_or_end_waits_for_the_submit(operator: Client) -> None:
    form = pin_form(kind="floor", replicas="", ends_at_local="")
    preview = operator.post(reverse("dashboard:override-preview"), form, headers={"HX-Request": "true"})
    assert _errors(preview.content.decode()) == [] and "Choose services, a kind and an end" in preview.content.decode()
    expected = [("replicas", "a floor needs a replica count"), ("ends_at_local", "give an end, or a duration")]
    # After a submit the page says so, and the preview it asks for on load keeps saying it (once).
    page, preview_after = _page_and_preview(operator, form | {"submitted": "1"})
    assert _errors(page) == expected and 'name="submitted" value="1"' in page
    assert _errors(preview_after) == expected


def test_add_override_from_the_calendar_shows_no_error_until_the_operator_types(operator: Client) -> None:
    tip = NOW + timedelta(hours=6)
    game = Game.objects.create(game_id="0022500777", tip_utc=tip, away_team="BOS", home_team="NYK", national_tv="ESPN")
    page = operator.get(reverse("dashboard:override-new"), {"game": str(game.pk), "service": "win-probability"})
    assert page.status_code == 200 and _errors(page.content.decode()) == []
    # What htmx posts as the page loads: the prefilled form, with no replica count yet.
    form = page.context["form"]
    data = {name: form[name].value() for name in ("kind", "starts_at_local", "ends_at_local", "reason")}
    data |= {"services": ["win-probability"], "game": game.pk, "replicas": ""}
    preview = operator.post(reverse("dashboard:override-preview"), data, headers={"HX-Request": "true"})
    body = preview.content.decode()
    assert _errors(body) == [] and "needs a replica count" not in body


def test_an_end_in_the_past_stays_said_under_the_end_and_nothing_is_priced(operator: Client) -> None:
    # No start typed (so "after the start" would puzzle): the end is an hour before NOW, 12:00 in New York.
    form = pin_form(kind="floor", replicas="3", starts_at_local="", ends_at_local="2026-01-15T11:00", reason="x")
    page, preview = _page_and_preview(operator, form | {"submitted": "1"})
    assert _errors(page) == [("ends_at_local", "the end is in the past; it must be in the future")]
    # The preview htmx asks for as the page loads says the same, and prices no window that ended before it began.
    assert _errors(preview) == _errors(page)
    assert "preview-table" not in preview and "$" not in preview


def test_the_preview_keeps_saying_what_the_submit_refused_against_other_overrides(operator: Client) -> None:
    ceiling = pin_form(kind="ceiling", replicas="4", reason="cap")
    assert operator.post(reverse("dashboard:override-new"), ceiling).status_code == 302
    page, preview = _page_and_preview(operator, pin_form(kind="floor", replicas="8"))
    [(field, message)] = _errors(page)
    assert field == "replicas" and "floor 8 is above the overlapping ceiling" in message
    assert _errors(preview) == _errors(page) and "preview-table" not in preview


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        # No start: 90 minutes from NOW (12:00) is 13:30, not the End's 15:00.
        (
            {"starts_at_local": ""},
            "End and “…or lasting (minutes)” disagree: 90 minutes from now ends 2026-01-15 13:30 EST, the End "
            "2026-01-15 15:00 EST; give one of them",
        ),
        (
            {},
            "End and “…or lasting (minutes)” disagree: 90 minutes from the start ends 2026-01-15 14:30 EST, the End "
            "2026-01-15 15:00 EST; give one of them",
        ),
    ],
)
def test_an_end_and_a_duration_that_disagree_are_refused_naming_both(
    operator: Client, extra: dict[str, object], message: str
) -> None:
    page, preview = _page_and_preview(operator, pin_form(duration_minutes="90", **extra))
    assert _errors(page) == [("duration_minutes", message)]
    assert _errors(preview) == _errors(page) and "preview-table" not in preview


def test_an_end_and_a_duration_that_agree_are_taken(operator: Client) -> None:
    # 13:00 to 15:00 is 120 minutes.
    response = operator.post(reverse("dashboard:override-new"), pin_form(duration_minutes="120"))
    assert response.status_code == 302
