"""The calendar, rule pages and schedule upload."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import time_machine
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from scaling.audit import EventType
from scaling.models import AuditEvent, Game, GameDayRule, Override
from tests.factories import make_service, make_user
from tests.markup import broken_references

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 1, 12, 17, tzinfo=UTC)  # Monday noon in New York
CSV = Path(__file__).resolve().parents[2] / "data" / "nba_2025_26_schedule.csv"


@pytest.fixture(autouse=True)
def frozen() -> object:
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


def test_an_admin_schedules_floors_for_every_national_tv_game_next_week_through_one_rule(client: Client) -> None:
    services = [make_service("win-probability"), make_service("live-odds")]
    for i in range(7):
        Game.objects.create(
            game_id=f"tv{i}",
            tip_utc=NOW + timedelta(days=i, hours=7),
            away_team="BOS",
            home_team="NYK",
            national_tv="ESPN" if i % 2 == 0 else "",
        )
    client.force_login(make_user("boss", "admin"))
    assert client.get(reverse("dashboard:rule-new")).status_code == 200
    response = client.post(
        reverse("dashboard:rule-new"),
        {
            "name": "National TV",
            "enabled": "on",
            "services": [s.name for s in services],
            "national_tv": "on",
            "floor_replicas": "10",
            "tail_minutes": "180",
            "reason": "national TV triples traffic",
        },
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    rule = GameDayRule.objects.get()
    assert Override.objects.filter(rule=rule).count() == 4 * 2  # games 0, 2, 4, 6 × two services
    assert AuditEvent.objects.filter(event_type=EventType.RULE_CREATED).count() == 1
    page = client.get(reverse("dashboard:rules")).content.decode()
    assert "National TV" in page and "national TV" in page and "provisioning delay + 15 min" in page
    calendar = client.get(reverse("dashboard:calendar")).content.decode()
    assert calendar.count("rule National TV") == 8
    edit = client.get(reverse("dashboard:rule-edit", args=[rule.pk]))
    assert edit.status_code == 200 and 'value="National TV"' in edit.content.decode()


def test_a_rule_without_criteria_is_refused_with_a_message(client: Client) -> None:
    make_service("win-probability")
    client.force_login(make_user("boss", "admin"))
    response = client.post(
        reverse("dashboard:rule-new"),
        {"name": "x", "services": ["win-probability"], "floor_replicas": "3", "tail_minutes": "180", "reason": "r"},
    )
    assert response.status_code == 400 and "at least one criterion" in response.content.decode()


def test_an_operator_cannot_change_rules_or_import(client: Client) -> None:
    make_service("win-probability")
    client.force_login(make_user("operator", "operator"))
    assert client.post(reverse("dashboard:rule-new"), {}).status_code == 403
    assert client.post(reverse("dashboard:schedule-import"), {}).status_code == 403
    assert client.get(reverse("dashboard:rules")).status_code == 200


def test_the_schedule_upload_imports_or_names_the_bad_row(client: Client) -> None:
    client.force_login(make_user("boss", "admin"))
    lines = CSV.read_text().splitlines(keepends=True)
    lines[3] = lines[3].replace("Z,", "nope,", 1)
    response = client.post(
        reverse("dashboard:schedule-import"),
        {"file": SimpleUploadedFile("bad.csv", "".join(lines).encode())},
        follow=True,
    )
    assert "Nothing imported: bad.csv: line 4" in response.content.decode()
    assert not Game.objects.exists()
    response = client.post(
        reverse("dashboard:schedule-import"), {"file": SimpleUploadedFile("s.csv", CSV.read_bytes())}, follow=True
    )
    assert "created 1278" in response.content.decode()


def test_an_upload_that_is_not_utf8_names_its_line_and_byte(client: Client) -> None:
    client.force_login(make_user("boss", "admin"))
    body = b"game_id,tip_utc,away_team,home_team\n0022500001,2025-11-02T23:00:00Z,BOS,M\xfcnchen\n"
    response = client.post(
        reverse("dashboard:schedule-import"), {"file": SimpleUploadedFile("bad.csv", body)}, follow=True
    )
    assert "Nothing imported: bad.csv: line 2: not UTF-8 text (byte 0xfc at offset 73)" in response.content.decode()
    assert not Game.objects.exists()


@pytest.mark.parametrize("body", [b"", b"\xef\xbb\xbf", b"\n  \r\n"])
def test_an_empty_file_is_named_empty_by_the_page_the_api_and_the_command(
    client: Client, body: bytes, tmp_path: Path
) -> None:
    from django.core.management import CommandError, call_command

    client.force_login(make_user("boss", "admin"))
    page = client.post(
        reverse("dashboard:schedule-import"), {"file": SimpleUploadedFile("empty.csv", body)}, follow=True
    ).content.decode()
    assert "Nothing imported: empty.csv: the file is empty" in page
    api = client.post("/api/schedule/import", {"file": SimpleUploadedFile("empty.csv", body)})
    assert api.status_code == 422
    assert api.json()["detail"] == "nothing imported: empty.csv: the file is empty" and api.json()["field"] == "file"
    (tmp_path / "empty.csv").write_bytes(body)
    with pytest.raises(CommandError, match=r"^nothing imported: empty\.csv: the file is empty$"):
        call_command("import_schedule", str(tmp_path / "empty.csv"))
    assert not Game.objects.exists()


def test_an_upload_over_the_size_limit_is_refused_on_the_calendar_page_unread(client: Client, settings: Any) -> None:
    settings.TIPOFF_MAX_REQUEST_BYTES = 1024
    body = b"game_id,tip_utc,away_team,home_team\n" + b"0022600001,2026-01-20T00:00:00Z,BOS,NYK\n" * 40
    client.force_login(make_user("boss", "admin"))
    response = client.post(
        reverse("dashboard:schedule-import"),
        {"file": SimpleUploadedFile("big.csv", body)},
        HTTP_REFERER="http://testserver/calendar/?from=2026-01-19",
    )
    assert response.status_code == 303 and response["Location"] == "http://testserver/calendar/?from=2026-01-19"
    page = client.get(response["Location"]).content.decode()
    assert re.search(r"Nothing imported: the upload of [\d.]+ KiB is over the 1 KiB a request may carry", page)
    assert "manage.py import_schedule" in page and "Game calendar" in page
    assert not Game.objects.exists()  # nothing read it
    # Without a page to go back to, the calendar; signed out, a page of the app's saying the same.
    response = client.post(reverse("dashboard:schedule-import"), {"file": SimpleUploadedFile("big.csv", body)})
    assert response.status_code == 303 and response["Location"] == reverse("dashboard:calendar")
    client.logout()
    response = client.post(reverse("dashboard:schedule-import"), {"file": SimpleUploadedFile("big.csv", body)})
    assert response.status_code == 413 and response["Content-Type"].startswith("text/html")
    assert re.search(r"the upload of [\d.]+ KiB is over the 1 KiB a request may carry", response.content.decode())
    assert '<link rel="stylesheet"' in response.content.decode()
    # The API keeps its error shape.
    client.force_login(make_user("boss2", "admin"))
    api = client.post("/api/schedule/import", {"file": SimpleUploadedFile("big.csv", body)})
    assert api.status_code == 413 and "byte limit" in api.json()["detail"] and api.json()["errors"] == []


def test_an_upload_that_replaces_the_demo_says_what_it_removed_and_cancelled(client: Client) -> None:
    demo = Game.objects.create(
        game_id="0022500003", tip_utc=NOW + timedelta(days=1), away_team="MIA", home_team="CHI", source="demo:d.csv"
    )
    Override.objects.create(
        service=make_service("win-probability"),
        kind=Override.Kind.FLOOR,
        replicas=4,
        starts_at=demo.tip_utc - timedelta(hours=1),
        ends_at=demo.tip_utc + timedelta(hours=3),
        reason="pre-warm",
        status=Override.Status.APPROVED,
        game=demo,
    )
    client.force_login(make_user("boss", "admin"))
    body = b"game_id,tip_utc,away_team,home_team\n0022600001,2026-01-20T00:00:00Z,BOS,NYK\n"
    page = client.post(
        reverse("dashboard:schedule-import"), {"file": SimpleUploadedFile("real.csv", body)}, follow=True
    ).content.decode()
    assert "demo games removed 1" in page and "overrides cancelled 1" in page
    assert "The import removed 1 demo game(s) still to come and cancelled 1 override(s)" in page


def test_the_demo_banner_shows_only_while_demo_games_are_to_come(client: Client) -> None:
    banner = "These are not real upcoming games"
    Game.objects.create(
        game_id="demo:1", tip_utc=NOW - timedelta(days=1), away_team="BOS", home_team="NYK", shifted_weeks=52
    )
    Game.objects.create(game_id="0022600001", tip_utc=NOW + timedelta(days=1), away_team="MIA", home_team="CHI")
    client.force_login(make_user("operator", "operator"))
    # After an import: the played demo games stay as the history's record, every game to come is real.
    assert banner not in client.get(reverse("dashboard:calendar")).content.decode()
    Game.objects.create(
        game_id="0022500002", tip_utc=NOW + timedelta(days=2), away_team="LAL", home_team="DEN", shifted_weeks=52
    )
    assert banner in client.get(reverse("dashboard:calendar")).content.decode()


def test_the_calendar_shows_a_game_to_be_decided_without_a_time_or_an_override_button(client: Client) -> None:
    Game.objects.create(
        game_id="0062500001",
        tip_utc=NOW + timedelta(hours=12),
        away_team="TBD",
        home_team="TBD",
        tbd=True,
        national_tv="Prime Video",
    )
    client.force_login(make_user("operator", "operator"))
    page = client.get(reverse("dashboard:calendar")).content.decode()
    assert "TBD @ TBD" in page and "time to be decided" in page and 'data-testid="tbd"' in page
    # A placeholder tip-off overlaps nothing, not even another placeholder the same night.
    from scaling import override_selectors as reads

    Game.objects.create(
        game_id="0062500002", tip_utc=NOW + timedelta(hours=12), away_team="TBD", home_team="TBD", tbd=True
    )
    rows = reads.calendar_games(start=NOW, end=NOW + timedelta(days=1))
    assert [r.overlaps for r in rows] == [0, 0]
    assert 'data-testid="add-override-0062500001"' not in page
    # Nor does the override form take it as the game to plan around.
    game = Game.objects.get(game_id="0062500001")
    form = client.get(reverse("dashboard:override-new"), {"game": game.pk}).content.decode()
    assert "TBD @ TBD" not in form


@pytest.mark.parametrize(
    ("query", "named"),
    [
        ({"from": "0001-01-01"}, "from=&#x27;0001-01-01&#x27;: more than ten years from today"),
        ({"from": "9999-12-30"}, "from=&#x27;9999-12-30&#x27;: more than ten years from today"),
        ({"from": "next tuesday"}, "from=&#x27;next tuesday&#x27;: not a date"),
        ({"days": "²"}, "days=&#x27;²&#x27;: not a whole number"),
        (
            {"days": "9" * 5000},
            "days=&#x27;99999999999999999999…&#x27;: not a whole number",
        ),  # past int()'s digit limit
    ],
    ids=["year-1", "year-9999", "words", "superscript-two", "5000-digits"],
)
def test_the_calendar_names_a_bad_query_param_and_shows_the_default(
    client: Client, query: dict[str, str], named: str
) -> None:
    client.force_login(make_user("viewer", "viewer"))
    response = client.get(reverse("dashboard:calendar"), query)
    page = response.content.decode()
    assert response.status_code == 200
    assert named in page
    assert "in the next 7 days, Mon Jan 12 to Sun Jan 18" in page


def test_the_calendar_clamps_days_and_takes_a_date_within_reach(client: Client) -> None:
    client.force_login(make_user("viewer", "viewer"))
    page = client.get(reverse("dashboard:calendar"), {"from": "2030-03-01", "days": "400"}).content.decode()
    assert "0 games from Fri Mar 1 to Sun Mar 31" in page and "Ignored" not in page


def _summary(page: str) -> str:
    text = page[page.index('data-testid="calendar-summary">') :]
    return re.sub(r"\s+", " ", text[text.index(">") + 1 : text.index(" (")])


@pytest.mark.parametrize(
    ("query", "summary"),
    [
        ({"days": "1"}, "1 game in the next day, Mon Jan 12"),
        ({}, "1 game in the next 7 days, Mon Jan 12 to Sun Jan 18"),
        ({"from": "2026-01-05"}, "0 games from Mon Jan 5 to Sun Jan 11"),  # a past week is not "the next" one
        ({"from": "2026-01-05", "days": "1"}, "0 games on Mon Jan 5"),
        ({"from": "2026-01-11", "days": "2"}, "1 game from Sun Jan 11 to Mon Jan 12"),
        ({"from": "2026-01-13", "days": "3"}, "0 games from Tue Jan 13 to Thu Jan 15"),
    ],
)
def test_the_calendar_says_its_range_in_words_that_fit_it(client: Client, query: dict[str, str], summary: str) -> None:
    Game.objects.create(game_id="g1", tip_utc=NOW + timedelta(hours=7), away_team="BOS", home_team="NYK")
    client.force_login(make_user("viewer", "viewer"))
    assert _summary(client.get(reverse("dashboard:calendar"), query).content.decode()) == summary


@pytest.mark.parametrize(("mode", "said"), [("paused", "not applied: paused"), ("dry_run", "dry run: not applied")])
def test_the_calendar_marks_the_floors_of_a_paused_or_dry_run_service_not_applied(
    client: Client, mode: str, said: str
) -> None:
    from scaling import services
    from scaling.audit import Actor

    held, active = make_service("win-probability"), make_service("live-odds")
    game = Game.objects.create(game_id="g1", tip_utc=NOW + timedelta(hours=7), away_team="BOS", home_team="NYK")
    floors = {
        svc.name: Override.objects.create(
            service=svc,
            kind="floor",
            replicas=3,
            reason="r",
            game=game,
            status=Override.Status.APPROVED,
            starts_at=game.tip_utc - timedelta(minutes=20),
            ends_at=game.tip_utc + timedelta(hours=3),
        )
        for svc in (held, active)
    }
    ad_hoc = Override.objects.create(
        service=held, kind="floor", replicas=3, reason="r", status=Override.Status.APPROVED,
        starts_at=NOW + timedelta(hours=1), ends_at=NOW + timedelta(hours=2),
    )  # fmt: skip
    services.service_set_mode(
        service=held, mode=mode, actor=Actor.system("t"), reason="maintenance", until=NOW + timedelta(hours=12)
    )
    client.force_login(make_user("viewer", "viewer"))
    page = client.get(reverse("dashboard:calendar")).content.decode()

    def block(o: Override) -> str:
        text = page[page.index(f'data-override="{o.pk}"') :]
        return text[: text.index("</div>")]

    assert said in block(floors["win-probability"]) and said in block(ad_hoc)
    assert "not applied" not in block(floors["live-odds"])


def _new_rule(client: Client, **criteria: str) -> Any:
    make_service("win-probability")
    client.force_login(make_user("boss", "admin"))
    data = {"name": "Lakers", "services": ["win-probability"], "floor_replicas": "3", "tail_minutes": "180"}
    return client.post(reverse("dashboard:rule-new"), {**data, "reason": "r", **criteria}, follow=True)


def test_a_rule_naming_an_unknown_team_is_refused_naming_it_and_the_valid_codes(client: Client) -> None:
    response = _new_rule(client, teams="LAKERS, ZZZ")
    body = response.content.decode()
    assert response.status_code == 400
    assert "unknown team code(s) LAKERS, ZZZ" in body and "ATL, BKN, BOS" in body
    assert not GameDayRule.objects.exists()


def test_a_refused_rule_names_only_help_and_errors_that_are_on_the_page(client: Client) -> None:
    response = _new_rule(client, floor_replicas="0", weekdays="9", lead_minutes="-1")
    body = response.content.decode()
    assert response.status_code == 400 and 'aria-invalid="true"' in body
    assert broken_references(body) == []


def test_a_rule_on_a_network_no_game_is_on_is_created_with_a_warning_saying_so(client: Client) -> None:
    Game.objects.create(
        game_id="g", tip_utc=NOW + timedelta(days=1), away_team="BOS", home_team="NYK", national_tv="ESPN"
    )
    response = _new_rule(client, networks="HBO Max Ultra")
    body = response.content.decode()
    assert response.status_code == 200 and GameDayRule.objects.filter(name="Lakers").exists()
    assert "&#x27;HBO Max Ultra&#x27; matches no game on the calendar" in body


def _window(service_name: str, cost: float, status: str, game: Game | None = None) -> Override:
    # Monday 18:30–23:30 in New York (NOW is Monday noon there).
    return Override.objects.create(
        service=make_service(service_name),
        kind="floor",
        replicas=8,
        reason="evening",
        starts_at=NOW + timedelta(hours=6, minutes=30),
        ends_at=NOW + timedelta(hours=11, minutes=30),
        status=status,
        projected_cost_delta=cost,
        game=game,
    )


def test_the_calendar_lists_and_counts_an_override_tied_to_no_game_on_its_day(client: Client) -> None:
    game = Game.objects.create(
        game_id="g1", tip_utc=NOW + timedelta(hours=7), away_team="BOS", home_team="NYK", national_tv="ESPN"
    )
    on_game = _window("live-odds", 2.00, Override.Status.APPROVED, game=game)
    group = [_window("win-probability", 0.95, "approved"), _window("box-score", 0.90, "pending_approval")]
    _window("play-by-play", 5.00, Override.Status.CANCELLED)
    _window("lineups", 7.00, Override.Status.REJECTED)
    client.force_login(make_user("viewer", "viewer"))
    page = client.get(reverse("dashboard:calendar")).content.decode()
    other = page[page.index('data-testid="other-overrides"') :]
    other = other[: other.index("</tr>")]
    listed = {int(pk) for pk in re.findall(r'data-override="(\d+)"', other)}
    # Not the game's own; nor, as under "Active and upcoming", the cancelled and rejected ones: they never run.
    assert listed == {group[0].pk, group[1].pk}
    assert "18:30" in other and "23:30" in other and "+$1.85" in other
    assert f'data-override="{on_game.pk}"' in page[page.index('data-game="g1"') : page.index("other-overrides")]
    assert 'data-testid="calendar-cost">+$3.85<' in page


def test_a_day_whose_only_other_overrides_were_cancelled_lists_none(client: Client) -> None:
    Game.objects.create(game_id="g1", tip_utc=NOW + timedelta(hours=7), away_team="BOS", home_team="NYK")
    _window("play-by-play", 5.00, Override.Status.CANCELLED)
    client.force_login(make_user("viewer", "viewer"))
    page = client.get(reverse("dashboard:calendar")).content.decode()
    assert 'data-testid="other-overrides"' not in page and "play-by-play" not in page


def test_the_calendar_shows_a_day_with_overrides_but_no_game(client: Client) -> None:
    floor = _window("win-probability", 1.25, Override.Status.APPROVED)
    client.force_login(make_user("viewer", "viewer"))
    page = client.get(reverse("dashboard:calendar")).content.decode()
    assert "No games in these days" not in page and f'data-override="{floor.pk}"' in page
    assert 'data-testid="calendar-cost">+$1.25<' in page


def test_the_schedule_upload_input_has_a_label(client: Client) -> None:
    client.force_login(make_user("boss", "admin"))
    page = client.get(reverse("dashboard:calendar")).content.decode()
    assert '<label for="id_file">' in page and 'id="id_file"' in page


def test_every_page_names_its_icon_so_browsers_stop_asking_for_favicon_ico(client: Client) -> None:
    client.force_login(make_user("viewer", "viewer"))
    page = client.get(reverse("dashboard:calendar")).content.decode()
    assert '<link rel="icon" href="/static/favicon.svg"' in page
    assert (Path(__file__).resolve().parents[2] / "static" / "favicon.svg").is_file()
