"""Parse league schedules into plain records, validating everything first.

A bad record raises ScheduleError naming the file, line (CSV) or index (JSON)
and field; callers write nothing unless the whole file parses.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from scaling.csv_lines import csv_lines
from scaling.schedule.teams import NBA_TEAMS, tricode_named


class ScheduleError(ValueError):
    pass


@dataclass(frozen=True)
class GameRecord:
    game_id: str
    tip_utc: datetime
    away_team: str
    home_team: str
    season_type: str = ""
    venue: str = ""
    national_tv: str = ""
    label: str = ""
    sub_label: str = ""
    postponed: bool = False
    # Teams and tip-off not yet set (a knockout round): the tip-off is a placeholder, not a time to plan for.
    tbd: bool = False
    # Where the record is in its file ("s.csv: line 4") and the field its tip-off was read from, for the
    # checks made after parsing (check_tip_offs, and the import's against the calendar) to name them.
    where: str = dataclasses.field(default="", compare=False)
    tip_field: str = dataclasses.field(default="tip_utc", compare=False)


TBD_TEAM = "TBD"
TRUE_VALUES = {"TRUE", "T", "YES", "Y", "1"}
FALSE_VALUES = {"", "FALSE", "F", "NO", "N", "0"}


def _tbd_team(name: str) -> bool:
    """A schedule's placeholder for a team not yet known: empty, or an empty "TRICODE (Name)" such as " ()"."""
    return name.replace("(", "").replace(")", "").strip().upper() in ("", TBD_TEAM)


CSV_REQUIRED = ("game_id", "away_team", "home_team")
# A CSV gives the tip-off as tip_utc, tip_et or both (then they must agree). A tip_et without an offset is
# New York's wall-clock time, the league's. The league's feed gives gameDateTimeUTC, and may give
# gameDateTimeEst beside it, which must agree (_feed_times_agree).
TIP_COLUMNS = ("tip_utc", "tip_et")
EASTERN = ZoneInfo("America/New_York")

# The widths of the Game table's text columns (scaling.models.Game; a test holds the two equal). A longer value,
# or a NUL character (PostgreSQL refuses it in text), is a bad record named here, not a database error later.
MAX_CHARS = {
    "game_id": 20,
    "season_type": 40,
    "away_team": 60,
    "home_team": 60,
    "venue": 120,
    "national_tv": 120,
    "label": 120,
    "sub_label": 120,
}


def _fits_the_table(record: GameRecord, where: str, names: dict[str, str]) -> GameRecord:
    """The record, once every text field is checked against its column; `names` maps a field to the file's name."""
    for field, limit in MAX_CHARS.items():
        value: str = getattr(record, field)
        name = names.get(field, field)
        if "\x00" in value:
            raise ScheduleError(f"{where}: field {name!r} holds a NUL character")
        if len(value) > limit:
            raise ScheduleError(f"{where}: field {name!r} is {len(value)} characters long, at most {limit} fit")
    return record


def _flag(row: dict[str, str], name: str, true: set[str], false: set[str], where: str) -> bool:
    """A yes/no column: anything else is a bad record, not a silent "no" ("maybe" had read as false)."""
    raw = (row.get(name) or "").strip()
    if raw.upper() in true:
        return True
    if raw.upper() in false:
        return False
    raise ScheduleError(
        f"{where}: field {name!r} is {raw[:40]!r}, not one of {', '.join(sorted(v.lower() for v in true))} "
        f"or {', '.join(sorted(v.lower() for v in false if v))} (or empty)"
    )


def _tricode(team: str) -> str:
    return team.split(" ", 1)[0].strip().upper()


def _two_teams(record: GameRecord, where: str, names: tuple[str, str]) -> GameRecord:
    """The record, once its two teams are checked to differ (a team does not play itself; TBD may face TBD)."""
    if not record.tbd and record.away_team != TBD_TEAM and _tricode(record.away_team) == _tricode(record.home_team):
        raise ScheduleError(
            f"{where}: fields {names[0]!r} and {names[1]!r} name the same team, {_tricode(record.home_team)}"
        )
    return record


# A team as schedules write it: its code, alone or with its name ("BOS", "BOS (Celtics)").
TEAM_PATTERN = re.compile(r"(?P<code>[A-Za-z]{3})(?:\s+\((?P<name>[^()]*)\))?")
# Exhibitions, by season type or the stage digit of a league game id (SEASON_TYPES): a preseason game may
# have a visitor from outside the league (MEL (United)) against a team of the league, an All-Star game
# teams of its own (CGS (Chuck's Global Stars)).
PRESEASON, ALL_STAR = "Preseason", "All-Star"


def _stage(record: GameRecord) -> str:
    if record.season_type:
        return record.season_type
    return SEASON_TYPES.get(record.game_id[2:3], "") if re.fullmatch(r"00\d{8}", record.game_id) else ""


def _team_fault(team: str) -> tuple[str, bool]:
    """What is wrong with a team's entry ("" if nothing), and whether it is a team of the league."""
    match = TEAM_PATTERN.fullmatch(team)
    named = tricode_named(team)
    hint = f"; for the {NBA_TEAMS[named]}, write '{named} ({NBA_TEAMS[named]})'" if named else ""
    if match is None:
        return f"not a team's code, alone or with its name ('BOS' or 'BOS (Celtics)'){hint}", False
    code, name = match["code"].upper(), (match["name"] or "").strip()
    if code not in NBA_TEAMS:
        return f"{code} is not one of the league's 30 teams ({', '.join(sorted(NBA_TEAMS))}){hint}", False
    if name and tricode_named(name) != code:
        return f"{code} is the {NBA_TEAMS[code]}, not the {name}", True
    return "", True


def _known_teams(record: GameRecord, where: str, names: tuple[str, str]) -> GameRecord:
    """The record, once each team is checked to be one of the league's (a preseason visitor, an All-Star team
    from outside it, when written as a code); a team to be decided is not checked."""
    stage = _stage(record).casefold()
    sides = [(t, n) for t, n in zip((record.away_team, record.home_team), names, strict=True) if t != TBD_TEAM]
    league = 0
    for team, name in sides:
        fault, in_league = _team_fault(team)
        league += in_league
        exhibition_visitor = not in_league and stage in (PRESEASON.casefold(), ALL_STAR.casefold())
        if fault and not (exhibition_visitor and TEAM_PATTERN.fullmatch(team)):
            raise ScheduleError(f"{where}: field {name!r} is {team!r}: {fault}")
    if len(sides) == 2 and not league and stage == PRESEASON.casefold():
        raise ScheduleError(
            f"{where}: neither {names[0]!r} nor {names[1]!r} is one of the league's 30 teams: a preseason game "
            f"has a visitor from outside the league against a team of the league ({record.away_team} @ "
            f"{record.home_team})"
        )
    return record


class Fixture(Protocol):
    """A game as a record or as the calendar's row (scaling.models.Game)."""

    @property
    def away_team(self) -> str: ...
    @property
    def home_team(self) -> str: ...
    @property
    def tip_utc(self) -> datetime: ...
    @property
    def tbd(self) -> bool: ...


def matchup(record: Fixture) -> tuple[frozenset[str], datetime] | None:
    """The two teams and the tip-off that make a game, whatever its id (None for a game still to be decided)."""
    if record.tbd or TBD_TEAM in (record.away_team, record.home_team):
        return None
    return frozenset((_tricode(record.away_team), _tricode(record.home_team))), record.tip_utc


def said(record: Fixture) -> str:
    return f"{_tricode(record.away_team)} @ {_tricode(record.home_team)} at {record.tip_utc:%Y-%m-%d %H:%M} UTC"


def _no_twins(records: list[GameRecord], source: str, id_name: str) -> list[GameRecord]:
    """The records, once no game is listed twice under two ids (the calendar would count its demand twice).

    `id_name` names the id after a CSV's line ("line 3 (game_id X)"); a feed's place names it already."""

    def place(r: GameRecord) -> str:
        return r.where.removeprefix(f"{source}: ") + (f" ({id_name} {r.game_id})" if id_name else "")

    seen: dict[tuple[frozenset[str], datetime], GameRecord] = {}
    for record in records:
        key = matchup(record)
        if key is None:
            continue
        if key in seen:
            raise ScheduleError(
                f"{source}: {place(record)}: the game of {place(seen[key])} under another id: {said(record)}; "
                "one game listed twice would count its demand twice"
            )
        seen[key] = record
    return records


def moved_words(delta: timedelta) -> str:
    """A move in words: "2 h 30 min later", "6 days 23 h earlier"."""
    seconds = int(abs(delta).total_seconds())
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{days} day{'s' if days != 1 else ''}"] if days else []
    parts += [f"{hours} h"] if hours else []
    parts += [f"{minutes} min"] if minutes else []
    parts += [f"{secs} s"] if secs or not parts else []
    return " ".join(parts) + (" earlier" if delta < timedelta(0) else " later")


def parse_eastern(value: str) -> datetime:
    """A tip_et: with an offset, that instant; without one, New York's wall-clock time, which must be one
    instant (not skipped or repeated by a daylight-saving change)."""
    parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    if parsed.tzinfo is not None:
        return parse_utc(value)
    first, second = parsed.replace(tzinfo=EASTERN, fold=0), parsed.replace(tzinfo=EASTERN, fold=1)
    if first.utcoffset() != second.utcoffset():
        raise ValueError("a time that New York's daylight-saving change skips or repeats; give its UTC offset")
    try:
        return first.astimezone(UTC)
    except OverflowError:
        raise ValueError("timestamp is out of range") from None


def _csv_tip(row: dict[str, str], where: str) -> tuple[datetime, str]:
    """The tip-off of a CSV row and the field it was read from; ScheduleError when neither field gives one,
    one is not a time, or the two disagree."""
    raws = {name: (row.get(name) or "").strip() for name in TIP_COLUMNS if name in row}
    tips: dict[str, datetime] = {}
    for name, raw in raws.items():
        if raw:
            try:
                tips[name] = parse_utc(raw) if name == "tip_utc" else parse_eastern(raw)
            except ValueError as exc:
                raise ScheduleError(f"{where}: field {name!r} {raw!r}: {exc}") from None
    if not tips:
        names = list(raws)
        if len(names) == 1:
            raise ScheduleError(f"{where}: field {names[0]!r} is empty")
        raise ScheduleError(f"{where}: fields {' and '.join(map(repr, names))} are both empty")
    if len(tips) == 2 and tips["tip_utc"] != tips["tip_et"]:
        utc, et = tips["tip_utc"], tips["tip_et"]
        raise ScheduleError(
            f"{where}: fields 'tip_utc' and 'tip_et' disagree: {raws['tip_utc']!r} is {utc:%Y-%m-%d %H:%M} UTC, "
            f"{raws['tip_et']!r} is {et:%Y-%m-%d %H:%M} UTC, {moved_words(et - utc)}"
        )
    name = next(iter(tips))
    return tips[name], name


def parse_utc(value: str) -> datetime:
    parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        raise ValueError("timestamp has no time zone")
    try:
        return parsed.astimezone(UTC)
    except OverflowError:
        raise ValueError("timestamp is out of range") from None


def _csv_rows(text: str, source: str) -> list[tuple[int, list[str]]]:
    """Every non-blank row with its line number, each one physical line with the header's number of fields:
    one game is one line, and csv alone would pad or cut a short or long row without a word."""
    rows: list[tuple[int, list[str]]] = []
    for line, row in csv_lines(text, source, ScheduleError):
        if rows and row and len(row) != len(rows[0][1]):
            raise ScheduleError(f"{source}: line {line}: expected {len(rows[0][1])} fields, found {len(row)}")
        if row:
            rows.append((line, row))
    return rows


def parse_csv(text: str, *, source: str = "schedule.csv") -> list[GameRecord]:
    rows = _csv_rows(text, source)
    header = rows[0][1] if rows else []
    missing = [name for name in CSV_REQUIRED if name not in header]
    if not any(name in header for name in TIP_COLUMNS):
        missing.insert(1, "tip_utc (or tip_et)")
    if missing:
        raise ScheduleError(f"{source}: line 1: missing column(s) {', '.join(missing)}")
    records: list[GameRecord] = []
    seen: dict[str, int] = {}
    for line, fields in rows[1:]:
        row = dict(zip(header, fields, strict=True))
        where = f"{source}: line {line}"
        for name in CSV_REQUIRED:
            if not row[name].strip():
                raise ScheduleError(f"{where}: field {name!r} is empty")
        game_id = row["game_id"].strip()
        if game_id in seen:
            raise ScheduleError(f"{where}: game_id {game_id} repeats line {seen[game_id]}")
        seen[game_id] = line
        tip, tip_field = _csv_tip(row, where)
        away, home = row["away_team"].strip(), row["home_team"].strip()
        is_tbd = _flag(row, "is_tbd", TRUE_VALUES, FALSE_VALUES, where)
        postponed = _flag(row, "postponed", POSTPONED_VALUES, NOT_POSTPONED_VALUES, where)
        tbd = is_tbd or (_tbd_team(away) and _tbd_team(home))
        record = GameRecord(
            game_id=game_id,
            tip_utc=tip,
            away_team=TBD_TEAM if _tbd_team(away) else away,
            home_team=TBD_TEAM if _tbd_team(home) else home,
            tbd=tbd,
            season_type=(row.get("season_type") or "").strip(),
            venue=(row.get("venue") or "").strip(),
            national_tv=(row.get("national_tv") or "").strip(),
            label=(row.get("label") or "").strip(),
            sub_label=(row.get("sub_label") or "").strip(),
            postponed=postponed,
            where=where,
            tip_field=tip_field,
        )
        checked = _two_teams(_fits_the_table(record, where, {}), where, ("away_team", "home_team"))
        records.append(_known_teams(checked, where, ("away_team", "home_team")))
    if not records:
        raise ScheduleError(f"{source}: no games found")
    return _no_twins(records, source, "game_id")


# The third digit of a league game id names the season stage.
SEASON_TYPES = {
    "1": "Preseason",
    "2": "Regular Season",
    "3": "All-Star",
    "4": "Playoffs",
    "5": "Play-In",
    "6": "NBA Cup",
}
POSTPONED_VALUES = {"P", "PPD", "POSTPONED", "Y", "YES", "TRUE", "T", "1"}
# "A" is the league feed's status for a game on as planned.
NOT_POSTPONED_VALUES = FALSE_VALUES | {"A"}


def _team(entry: Any, where: str, field: str) -> str:
    if entry is None:
        raise ScheduleError(f"{where}: field {field!r} is missing")
    if not isinstance(entry, dict):
        raise ScheduleError(f"{where}: field {field!r} is not an object")
    tricode = str(entry.get("teamTricode") or "").strip()
    if not tricode:
        raise ScheduleError(f"{where}: field '{field}.teamTricode' is empty")
    name = str(entry.get("teamName") or "").strip()
    return f"{tricode} ({name})" if name else tricode


def _national_tv(game: dict[str, Any], where: str) -> str:
    broadcasters = game.get("broadcasters") or {}
    if not isinstance(broadcasters, dict):
        raise ScheduleError(f"{where}: field 'broadcasters' is not an object")
    national = broadcasters.get("nationalBroadcasters") or []
    if not isinstance(national, list):
        raise ScheduleError(f"{where}: field 'broadcasters.nationalBroadcasters' is not a list")
    names = [str(b.get("broadcasterDisplay") or "").strip() for b in national if isinstance(b, dict)]
    return " | ".join(n for n in names if n)


# The feed's name for each GameRecord field it fills, for the messages.
FEED_NAMES = {
    "game_id": "gameId",
    "away_team": "awayTeam",
    "home_team": "homeTeam",
    "venue": "arenaName",
    "national_tv": "broadcasters.nationalBroadcasters",
    "label": "gameLabel",
    "sub_label": "gameSubLabel",
}


def _feed_eastern(raw: str) -> tuple[datetime, ...]:
    """The instants a feed's gameDateTimeEst may be: New York's wall-clock time, which the feed writes with a
    "Z" it does not mean (7:30 pm ET is "2026-01-15T19:30:00Z"); two when a daylight-saving change repeats or
    skips the hour. A time with another offset is taken at its word."""
    text = raw.strip().removesuffix("Z")
    parsed = datetime.fromisoformat(text)
    try:
        if parsed.tzinfo is not None:
            return (parsed.astimezone(UTC),)
        return tuple(sorted({parsed.replace(tzinfo=EASTERN, fold=fold).astimezone(UTC) for fold in (0, 1)}))
    except OverflowError:
        raise ValueError("timestamp is out of range") from None


def _feed_times_agree(game: dict[str, Any], tip: datetime, raw_tip: str, where: str) -> None:
    """ScheduleError when the feed's gameDateTimeEst, if given, is another instant than its gameDateTimeUTC."""
    raw_et = game.get("gameDateTimeEst")
    if raw_et is None or not str(raw_et).strip():
        return
    try:
        instants = _feed_eastern(str(raw_et))
    except ValueError as exc:
        raise ScheduleError(f"{where}: field 'gameDateTimeEst' {raw_et!r}: {exc}") from None
    if tip not in instants:
        et = instants[0]
        raise ScheduleError(
            f"{where}: fields 'gameDateTimeUTC' and 'gameDateTimeEst' disagree: {raw_tip!r} is "
            f"{tip:%Y-%m-%d %H:%M} UTC, {raw_et!r} (New York time) is {et:%Y-%m-%d %H:%M} UTC, {moved_words(et - tip)}"
        )


def parse_league_json(text: str, *, source: str = "schedule.json") -> list[GameRecord]:
    """The league's official schedule feed: leagueSchedule.gameDates[].games[]."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ScheduleError(f"{source}: line {exc.lineno}: not valid JSON: {exc.msg}") from None
    league = data.get("leagueSchedule") if isinstance(data, dict) else None
    dates = league.get("gameDates") if isinstance(league, dict) else None
    if not isinstance(dates, list):
        raise ScheduleError(f"{source}: no leagueSchedule.gameDates list")
    records: list[GameRecord] = []
    seen: dict[str, str] = {}
    for di, day in enumerate(dates):
        games = day.get("games") if isinstance(day, dict) else None
        if not isinstance(games, list):
            raise ScheduleError(f"{source}: gameDates[{di}]: field 'games' is not a list")
        for gi, game in enumerate(games):
            where = f"{source}: gameDates[{di}].games[{gi}]"
            if not isinstance(game, dict):
                raise ScheduleError(f"{where}: not an object")
            game_id = str(game.get("gameId") or "").strip()
            if not game_id:
                raise ScheduleError(f"{where}: field 'gameId' is empty")
            if game_id in seen:
                raise ScheduleError(f"{where}: gameId {game_id} repeats {seen[game_id]}")
            seen[game_id] = f"gameDates[{di}].games[{gi}]"
            raw_tip = str(game.get("gameDateTimeUTC") or "")
            try:
                tip = parse_utc(raw_tip)
            except ValueError as exc:
                raise ScheduleError(f"{where} (gameId {game_id}): field 'gameDateTimeUTC' {raw_tip!r}: {exc}") from None
            postponed = _flag(
                {"postponedStatus": str(game.get("postponedStatus") or "")},
                "postponedStatus",
                POSTPONED_VALUES,
                NOT_POSTPONED_VALUES,
                f"{where} (gameId {game_id})",
            )
            # A knockout game whose teams are not yet known: both teams without a tricode, a placeholder tip.
            tbd = all(
                isinstance(game.get(side), dict) and not str(game[side].get("teamTricode") or "").strip()
                for side in ("awayTeam", "homeTeam")
            )
            if not tbd:  # a placeholder's two times need not make one instant
                _feed_times_agree(game, tip, raw_tip, f"{where} (gameId {game_id})")
            record = GameRecord(
                game_id=game_id,
                tip_utc=tip,
                away_team=TBD_TEAM if tbd else _team(game.get("awayTeam"), where, "awayTeam"),
                home_team=TBD_TEAM if tbd else _team(game.get("homeTeam"), where, "homeTeam"),
                tbd=tbd,
                season_type=SEASON_TYPES.get(game_id[2:3], ""),
                venue=str(game.get("arenaName") or "").strip(),
                national_tv=_national_tv(game, where),
                label=str(game.get("gameLabel") or "").strip(),
                sub_label=str(game.get("gameSubLabel") or "").strip(),
                postponed=postponed,
                where=f"{where} (gameId {game_id})",
                tip_field="gameDateTimeUTC",
            )
            checked = _fits_the_table(record, where, FEED_NAMES)
            checked = _two_teams(checked, f"{where} (gameId {game_id})", ("awayTeam", "homeTeam"))
            records.append(_known_teams(checked, f"{where} (gameId {game_id})", ("awayTeam", "homeTeam")))
    if not records:
        raise ScheduleError(f"{source}: no games found")
    return _no_twins(records, source, "")


# The tip-offs an import takes (check_tip_offs). A schedule is this season's or the next, or a past one
# imported again for the record: a tip-off more than TIP_PAST before today or TIP_FUTURE after it is a typo'd
# year (1900, 2199, 2062 for 2026), not a game. A season runs from October to June, under five months either
# side of its middle game: in a file of three games or more, one more than TIP_SPREAD from the middle tip-off (a
# year off: 2027 for 2026) is a typo too. One file holds one season.
TIP_PAST = timedelta(days=3 * 365)
TIP_FUTURE = timedelta(days=2 * 365)
TIP_SPREAD = timedelta(days=270)


def _years(span: timedelta) -> str:
    years = round(span / timedelta(days=365))
    return f"{years} year{'s' if years != 1 else ''}"


def _tip_is(r: GameRecord) -> str:
    return f"{r.where or r.game_id}: field {r.tip_field!r} is {r.tip_utc:%Y-%m-%d %H:%M} UTC"


def check_tip_offs(records: Sequence[GameRecord], *, now: datetime) -> None:
    """ScheduleError naming the line and field of the first tip-off out of reach (TIP_PAST, TIP_FUTURE,
    TIP_SPREAD)."""
    if not records:
        return
    for r in records:
        if r.tip_utc < now - TIP_PAST or r.tip_utc > now + TIP_FUTURE:
            side = "before" if r.tip_utc < now else "after"
            raise ScheduleError(
                f"{_tip_is(r)}, more than {_years(TIP_PAST if side == 'before' else TIP_FUTURE)} {side} today "
                f"({now:%Y-%m-%d}): a typo'd year? A tip-off is taken from {_years(TIP_PAST)} before today "
                f"to {_years(TIP_FUTURE)} after"
            )
    # A typo'd year far out is named above by its own line, before it can make the middle. Of two games,
    # either may be the one a year off (or neither: a game of last season imported beside this one's).
    if len(records) < 3:
        return
    middle = sorted(r.tip_utc for r in records)[(len(records) - 1) // 2]
    for r in records:
        if abs(r.tip_utc - middle) > TIP_SPREAD:
            raise ScheduleError(
                f"{_tip_is(r)}, {abs(r.tip_utc - middle).days} days from the middle of the file's games "
                f"({middle:%Y-%m-%d}): a typo'd year? One file holds one season, its games within "
                f"{TIP_SPREAD.days} days of their middle"
            )


def decode_schedule(body: bytes, source: str) -> str:
    """The text of an uploaded or fetched schedule; ScheduleError naming the line and byte that are not UTF-8."""
    try:
        return body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        # utf-8-sig reports the offset past a byte-order mark it has taken off; the file's offset counts it.
        bom = len(body) - len(exc.object)
        line = exc.object[: exc.start].count(b"\n") + 1
        byte = exc.object[exc.start : exc.start + 1].hex()
        raise ScheduleError(
            f"{source}: line {line}: not UTF-8 text (byte 0x{byte} at offset {exc.start + bom}): {exc.reason}"
        ) from None


def detect_format(text: str) -> str:
    """'json' when the content is a JSON document, else 'csv'."""
    return "json" if text.lstrip("\ufeff \t\r\n").startswith(("{", "[")) else "csv"


def parse_schedule(text: str, *, source: str) -> list[GameRecord]:
    """Parse a schedule in either format, detected from its content."""
    text = text.lstrip("\ufeff")
    if not text.strip():
        raise ScheduleError(f"{source}: the file is empty")
    if detect_format(text) == "json":
        return parse_league_json(text, source=source)
    return parse_csv(text, source=source)
