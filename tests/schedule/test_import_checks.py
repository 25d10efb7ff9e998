"""What a schedule import refuses before it writes anything: each refusal names the file, the line and the field."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from scaling.audit import Actor, EventType
from scaling.models import AuditEvent, Game, Override
from scaling.overrides import override_create
from scaling.schedule.parse import ScheduleError
from scaling.schedule.services import moved_words, schedule_import
from tests.factories import make_service, make_user

pytestmark = pytest.mark.django_db

SYSTEM = Actor.system("test")
NOW = datetime(2026, 11, 20, 17, tzinfo=UTC)
HEADER = "game_id,tip_utc,away_team,home_team\n"
FIRST = "0022600100,2026-12-01T00:00:00Z,LAL,DEN\n"


def _csv(*rows: str) -> str:
    return HEADER + "".join(f"{row}\n" for row in rows)


def _imported_with_a_floor(tip: str = "2026-12-02T00:30:00Z") -> Override:
    schedule_import(text=_csv(FIRST.strip(), f"0022600101,{tip},BOS,NYK"), source="s.csv", actor=SYSTEM, now=NOW)
    game = Game.objects.get(game_id="0022600101")
    [floor] = override_create(
        services=[make_service()],
        kind="floor",
        replicas=6,
        starts_at=game.tip_utc - timedelta(minutes=30),
        ends_at=game.tip_utc + timedelta(hours=3),
        reason="BOS-NYK game-day floor",
        actor=Actor.for_user(make_user()),
        game=game,
        now=NOW,
    )
    return floor


@pytest.mark.parametrize("tip", ["1900-01-01T00:00:00Z", "2199-01-01T00:00:00Z", "2062-12-02T00:30:00Z"])
def test_a_tip_off_years_from_today_imports_nothing_and_names_line_and_field(tip: str) -> None:
    floor = _imported_with_a_floor()
    text = _csv(FIRST.strip(), f"0022600101,{tip},BOS,NYK")
    with pytest.raises(ScheduleError, match=rf"^s\.csv: line 3: field 'tip_utc' is {tip[:10]} 00:\d\d UTC, more than "):
        schedule_import(text=text, source="s.csv", actor=SYSTEM, now=NOW)
    floor.refresh_from_db()
    assert floor.starts_at == datetime(2026, 12, 2, tzinfo=UTC)
    assert Game.objects.get(game_id="0022600101").tip_utc == datetime(2026, 12, 2, 0, 30, tzinfo=UTC)


def test_a_tip_off_a_year_away_from_the_rest_of_its_file_is_a_typo_named_by_line() -> None:
    rows = [f"00226001{i:02},2026-12-{i + 1:02}T00:30:00Z,BOS,NYK" for i in range(5)]
    rows.append("0022600105,2027-12-06T00:30:00Z,LAL,DEN")  # 2027 for 2026, within two years of today
    with pytest.raises(
        ScheduleError, match=r"^s\.csv: line 7: field 'tip_utc' is 2027-12-06 00:30 UTC, 368 days from the middle"
    ):
        schedule_import(text=_csv(*rows), source="s.csv", actor=SYSTEM, now=NOW)
    assert not Game.objects.exists()
    # A whole season, October to June, is one file.
    season = [
        f"0022600{i:03},{datetime(2026, 10, 1, tzinfo=UTC) + timedelta(days=i):%Y-%m-%dT%H:%M:%SZ},"
        + ("BOS,NYK" if i % 2 else "NYK,BOS")
        for i in range(0, 270, 3)
    ]
    assert schedule_import(text=_csv(*season), source="s.csv", actor=SYSTEM, now=NOW).created == 90


def test_an_import_that_would_move_a_game_day_floor_by_more_than_a_week_is_refused() -> None:
    floor = _imported_with_a_floor()
    text = _csv(FIRST.strip(), "0022600101,2026-12-10T00:30:00Z,BOS,NYK")
    with pytest.raises(
        ScheduleError,
        match=r"^s\.csv: line 3: field 'tip_utc' moves the tip-off of 0022600101 8 days later, from 2026-12-02 00:30 "
        r"to 2026-12-10 00:30 UTC, and 1 override\(s\) are scheduled around it: an import moves them by at most 7 days",
    ):
        schedule_import(text=text, source="s.csv", actor=SYSTEM, now=NOW)
    floor.refresh_from_db()
    assert floor.starts_at == datetime(2026, 12, 2, tzinfo=UTC)
    assert Game.objects.get(game_id="0022600101").tip_utc == datetime(2026, 12, 2, 0, 30, tzinfo=UTC)
    # Without a floor around it, the game moves: nothing is moved with it.
    floor.status = Override.Status.CANCELLED
    floor.save(update_fields=["status"])
    assert schedule_import(text=text, source="s.csv", actor=SYSTEM, now=NOW).updated == 1


def test_a_moved_floor_is_audited_in_words() -> None:
    floor = _imported_with_a_floor()
    text = _csv(FIRST.strip(), "0022600101,2026-12-02T03:00:00Z,BOS,NYK")
    summary = schedule_import(text=text, source="s.csv", actor=SYSTEM, now=NOW)
    assert summary.overrides_moved == 1
    event = AuditEvent.objects.get(event_type=EventType.OVERRIDE_MOVED, object_id=str(floor.pk))
    assert event.reason == "tip-off of 0022600101 moved 2 h 30 min later"


@pytest.mark.parametrize(
    ("delta", "words"),
    [
        (timedelta(hours=2, minutes=30), "2 h 30 min later"),
        (-timedelta(minutes=45), "45 min earlier"),
        (timedelta(days=1), "1 day later"),
        (-timedelta(days=6, hours=23, minutes=30), "6 days 23 h 30 min earlier"),
        (timedelta(seconds=20), "20 s later"),
    ],
)
def test_a_move_reads_in_words(delta: timedelta, words: str) -> None:
    assert moved_words(delta) == words


REAL_CSV = Path(__file__).resolve().parents[2] / "data" / "nba_2025_26_schedule.csv"
SHARED_CSV = Path("/work/shared/data/nba_2025_26_schedule.csv")
FEED = Path(__file__).parent / "fixtures" / "league_schedule.json"


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("0022600101,2026-12-02T00:30:00Z,XYZ (Nobodies),NYK", r"field 'away_team' is 'XYZ \(Nobodies\)': XYZ is not"),
        ("0022600101,2026-12-02T00:30:00Z,BOS,Celtics", r"field 'home_team' is 'Celtics': .*'BOS \(Celtics\)'"),
        ("0022600101,2026-12-02T00:30:00Z,BOS,Heat", r"field 'home_team' is 'Heat': .*'MIA \(Heat\)'"),
        (
            "0022600101,2026-12-02T00:30:00Z,BOS (Lakers),NYK",
            r"field 'away_team' is 'BOS \(Lakers\)': BOS is the Celtics",
        ),
        ("0022600101,2026-12-02T00:30:00Z,BOS,", r"field 'home_team' is empty"),
        # A preseason visitor from abroad plays a team of the league, not another visitor.
        ("0012600101,2026-10-02T00:30:00Z,MEL (United),GUA (Loong-Lions)", r"neither 'away_team' nor 'home_team'"),
    ],
)
def test_a_team_outside_the_league_imports_nothing_and_names_line_and_field(row: str, message: str) -> None:
    with pytest.raises(ScheduleError, match=rf"^s\.csv: line 3: {message}"):
        schedule_import(text=_csv(FIRST.strip(), row), source="s.csv", actor=SYSTEM, now=NOW)
    assert not Game.objects.exists()


def test_a_feed_team_outside_the_league_is_named_by_its_index() -> None:
    feed = FEED.read_text().replace('"teamTricode": "DEN"', '"teamTricode": "XYZ"')
    with pytest.raises(ScheduleError, match=r"gameDates\[0\]\.games\[1\] \(gameId 0022500602\): field 'awayTeam' is "):
        schedule_import(text=feed, source="feed.json", actor=SYSTEM, now=NOW)
    assert not Game.objects.exists()


def test_the_teams_as_real_schedules_write_them_import() -> None:
    rows = [
        "0022600101,2026-12-02T00:30:00Z,BOS (Celtics),nyk",
        "0022600102,2026-12-02T01:30:00Z,LAC (LA Clippers),POR (Trail Blazers)",  # a city before the name
        "0012600103,2026-10-02T00:30:00Z,MEL (United),NOP (Pelicans)",  # a preseason visitor
        "0032600104,2027-02-15T01:00:00Z,CGS (Chuck's Global Stars),KEN (Kenny's Young Stars)",  # All-Star
        "0062600105,2026-12-17T01:30:00Z, (), ()",  # a knockout game still to be decided
    ]
    assert schedule_import(text=_csv(FIRST.strip(), *rows), source="s.csv", actor=SYSTEM, now=NOW).created == 6


def test_the_league_teams_are_those_of_the_shared_schedule_which_imports_cleanly() -> None:
    from scaling.schedule.teams import NBA_TEAMS

    assert REAL_CSV.read_bytes() == SHARED_CSV.read_bytes()
    text = SHARED_CSV.read_text()
    regular = {
        team
        for line in text.splitlines()[1:]
        if ",Regular Season," in line
        for team in line.split(",")[4:6]
        if team != " ()"
    }
    assert regular == {f"{code} ({name})" for code, name in NBA_TEAMS.items()}
    now = datetime(2026, 1, 12, tzinfo=UTC)
    assert schedule_import(text=text, source=SHARED_CSV.name, actor=SYSTEM, now=now).created == 1278


def test_one_game_under_two_ids_imports_nothing_and_names_both_lines() -> None:
    rows = ["0022600101,2026-12-02T00:30:00Z,BOS,NYK", "0022600102,2026-12-02T00:30:00Z,BOS (Celtics),NYK (Knicks)"]
    with pytest.raises(
        ScheduleError,
        match=r"^s\.csv: line 4 \(game_id 0022600102\): the game of line 3 \(game_id 0022600101\) under another id: "
        r"BOS @ NYK at 2026-12-02 00:30 UTC",
    ):
        schedule_import(text=_csv(FIRST.strip(), *rows), source="s.csv", actor=SYSTEM, now=NOW)
    assert not Game.objects.exists()
    feed = (
        FEED.read_text().replace('"0022500602"', '"0022500603"').replace("2026-01-16T03:00:00Z", "2026-01-16T00:30:00Z")
    )
    feed = feed.replace("2026-01-15T22:00:00Z", "2026-01-15T19:30:00Z")  # its New York time, moved alike
    for before, after in (("DEN", "BOS"), ("Nuggets", "Celtics"), ("LAL", "NYK"), ("Lakers", "Knicks")):
        feed = feed.replace(f'"{before}"', f'"{after}"')
    with pytest.raises(
        ScheduleError,
        match=r"^feed\.json: gameDates\[0\]\.games\[1\] \(gameId 0022500603\): the game of gameDates\[0\]\.games\[0\] "
        r"\(gameId 0022500601\) under another id",
    ):
        schedule_import(text=feed, source="feed.json", actor=SYSTEM, now=NOW)
    assert not Game.objects.exists()


def test_a_game_on_the_calendar_imported_again_under_another_id_is_refused() -> None:
    schedule_import(
        text=_csv(FIRST.strip(), "0022600101,2026-12-02T00:30:00Z,BOS,NYK"), source="a.csv", actor=SYSTEM, now=NOW
    )
    again = _csv("G-17,2026-12-02T00:30:00Z,BOS (Celtics),NYK (Knicks)")
    with pytest.raises(
        ScheduleError,
        match=r"^b\.csv: line 2: game G-17 is game 0022600101 already on the calendar \(from a\.csv\) under another",
    ):
        schedule_import(text=again, source="b.csv", actor=SYSTEM, now=NOW)
    assert set(Game.objects.values_list("game_id", flat=True)) == {"0022600100", "0022600101"}


ET_HEADER = "game_id,tip_utc,tip_et,away_team,home_team\n"


def test_a_tip_et_that_contradicts_tip_utc_imports_nothing_and_names_line_and_fields() -> None:
    text = ET_HEADER + "0022600101,2026-12-02T00:30:00Z,2026-12-01T19:30:00-05:00,BOS,NYK\n"
    text += "0022600102,2026-12-02T00:30:00Z,2026-12-01T20:30:00-05:00,LAL,DEN\n"
    with pytest.raises(
        ScheduleError,
        match=r"^s\.csv: line 3: fields 'tip_utc' and 'tip_et' disagree: '2026-12-02T00:30:00Z' is 2026-12-02 00:30 "
        r"UTC, '2026-12-01T20:30:00-05:00' is 2026-12-02 01:30 UTC, 1 h later",
    ):
        schedule_import(text=text, source="s.csv", actor=SYSTEM, now=NOW)
    assert not Game.objects.exists()


def test_either_tip_off_alone_is_used_and_an_eastern_time_without_offset_is_new_york_time() -> None:
    text = ET_HEADER + "0022600101,2026-12-02T00:30:00Z,,BOS,NYK\n"
    text += "0022600102,,2026-12-01T22:00:00-05:00,LAL,DEN\n"
    text += "0022600103,,2026-10-20T19:30:00,MIA,CHI\n"  # New York is on daylight time: -04:00
    schedule_import(text=text, source="s.csv", actor=SYSTEM, now=NOW)
    assert dict(Game.objects.values_list("game_id", "tip_utc")) == {
        "0022600101": datetime(2026, 12, 2, 0, 30, tzinfo=UTC),
        "0022600102": datetime(2026, 12, 2, 3, tzinfo=UTC),
        "0022600103": datetime(2026, 10, 20, 23, 30, tzinfo=UTC),
    }
    only_et = "game_id,tip_et,away_team,home_team\n0022600104,2026-12-03T19:00:00-05:00,PHX,GSW\n"
    schedule_import(text=only_et, source="et.csv", actor=SYSTEM, now=NOW)
    assert Game.objects.get(game_id="0022600104").tip_utc == datetime(2026, 12, 4, tzinfo=UTC)


def test_a_feed_eastern_time_that_contradicts_its_utc_time_imports_nothing_and_names_index_and_fields() -> None:
    # The feed gives each tip-off twice; its gameDateTimeEst is New York's wall-clock time with a "Z" it does not
    # mean (7:30 pm ET is "...T19:30:00Z"). The UTC time alone was read: a feed whose two disagreed imported.
    feed = FEED.read_text().replace(
        '"gameDateTimeEst": "2026-01-15T22:00:00Z"', '"gameDateTimeEst": "2026-01-15T23:00:00Z"'
    )
    with pytest.raises(
        ScheduleError,
        match=r"^feed\.json: gameDates\[0\]\.games\[1\] \(gameId 0022500602\): fields 'gameDateTimeUTC' and "
        r"'gameDateTimeEst' disagree: '2026-01-16T03:00:00Z' is 2026-01-16 03:00 UTC, '2026-01-15T23:00:00Z' \(New "
        r"York time\) is 2026-01-16 04:00 UTC, 1 h later$",
    ):
        schedule_import(text=feed, source="feed.json", actor=SYSTEM, now=NOW)
    unreadable = FEED.read_text().replace('"2026-01-15T22:00:00Z"', '"tonight"')
    with pytest.raises(ScheduleError, match=r"\(gameId 0022500602\): field 'gameDateTimeEst' 'tonight': "):
        schedule_import(text=unreadable, source="feed.json", actor=SYSTEM, now=NOW)
    assert not Game.objects.exists()
    # The feed as the league writes it imports.
    assert '"gameDateTimeEst"' in FEED.read_text()
    assert schedule_import(text=FEED.read_text(), source="feed.json", actor=SYSTEM, now=NOW).created == 4


@pytest.mark.parametrize(
    ("header", "row", "message"),
    [
        ("game_id,away_team,home_team", "0022600101,BOS,NYK", r"line 1: missing column\(s\) tip_utc \(or tip_et\)"),
        (ET_HEADER.strip(), "0022600101,,,BOS,NYK", r"line 2: fields 'tip_utc' and 'tip_et' are both empty"),
        (ET_HEADER.strip(), "0022600101,,2027-03-14T02:30:00,BOS,NYK", r"line 2: field 'tip_et' '2027-03-14T02:30:00'"),
        (ET_HEADER.strip(), "0022600101,,1 Dec 7pm,BOS,NYK", r"line 2: field 'tip_et' '1 Dec 7pm'"),
    ],
)
def test_a_missing_or_unreadable_tip_off_is_named(header: str, row: str, message: str) -> None:
    with pytest.raises(ScheduleError, match=rf"^s\.csv: {message}"):
        schedule_import(text=f"{header}\n{row}\n", source="s.csv", actor=SYSTEM, now=NOW)
